package hive

import (
	"encoding/binary"
	"fmt"
)

// Internal cell-access API (for the editor and the checker; all offsets
// are cell offsets, relative to the first hive bin):
//
//	h.cellAt(off, what)    size field + bin of any cell (free or not), one read
//	h.cellData(off, what)  data of an allocated cell (after the size field)
//	h.findBin(off)         the bin holding off; h.allBins() every bin
//	h.setBinsLimit(n)      after appending bins: the new hive-bins size
//	h.checkCellStart(b, off, what)  a cell starts at off (bins' cell walks are cached;
//	                       a miss re-walks the bin once, so cells created by edits are seen)
//	parseNK / parseVK / parseList / parseSK   decode cell data (nkOff*, vkOff*, skOff* are the field offsets)
//	k.leaves(), k.lookup(units), k.child(off), k.valueList(), h.valueData(off, vk), h.bigSegments(...)
//	compareNames, nameHash (lh), hintMatches (lf), upcase, decodeName, stringUnits/unitsString
//
// The reader caches no cell contents, only the bin index, so bytes written
// through the hive's source (h.src) are seen by the next read.

// Cell layout (formats.md, "Bins and cells"): a cell starts with its size,
// an int32 that includes the 4 size bytes, a multiple of 8, negative when
// the cell is allocated. Cell offsets are relative to the first hive bin and
// 8-aligned (bins are 4096-aligned and their 32-byte header keeps cells on
// 8-byte boundaries).
const (
	cellAlign    = 8
	cellSizeLen  = 4
	minCellSize  = 8
	cellPrefetch = 128 // most nk/vk/list cells fit: one read per cell
)

func leUint16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }
func leUint32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func leUint64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// cellInfo is the header of one cell: where it is and how big (including
// the 4-byte size field).
type cellInfo struct {
	off       uint32
	size      uint32 // absolute size, including the size field
	allocated bool
	bin       hbin
}

// cellAt reads the size field of the cell starting at off and checks that
// the cell lies inside one bin. It does not require the cell to be
// allocated. It returns up to cellPrefetch bytes of the cell (size field
// included) already read, so that small cells cost one read.
func (h *Hive) cellAt(off uint32, what string) (cellInfo, []byte, error) {
	if off == nilCell {
		return cellInfo{}, nil, cellErr(off, what, ErrCellOffset, "nil reference")
	}
	if off%cellAlign != 0 {
		return cellInfo{}, nil, cellErr(off, what, ErrCellOffset, "offset not 8-aligned")
	}
	bin, err := h.findBin(off)
	if err != nil {
		if err == errBeyondBins {
			return cellInfo{}, nil, cellErr(off, what, ErrCellOffset, "beyond the hive-bins data")
		}
		return cellInfo{}, nil, fmt.Errorf("%s at 0x%x: %w", what, off, err)
	}
	if off < bin.off+binHeaderSize {
		return cellInfo{}, nil, cellErr(off, what, ErrCellOffset, "inside the header of the bin at 0x%x", bin.off)
	}
	if err := h.checkCellStart(bin, off, what); err != nil {
		return cellInfo{}, nil, err
	}
	if h.touched != nil {
		h.touched.bins[bin.off] = bin
	}
	n := min(uint32(cellPrefetch), bin.end()-off)
	buf := make([]byte, n)
	if _, err := h.src.ReadAt(buf, BaseBlockSize+int64(off)); err != nil {
		return cellInfo{}, nil, &CellError{Offset: off, Struct: what, Err: fmt.Errorf("%w: %w", ErrTruncated, err)}
	}
	raw := int32(leUint32(buf))
	ci := cellInfo{off: off, bin: bin, allocated: raw < 0}
	if raw < 0 {
		ci.size = uint32(-int64(raw))
	} else {
		ci.size = uint32(raw)
	}
	if ci.size < minCellSize || ci.size%cellAlign != 0 {
		return cellInfo{}, nil, cellErr(off, what, ErrCellOffset, "bad cell size %d", raw)
	}
	if uint64(off)+uint64(ci.size) > uint64(bin.end()) {
		return cellInfo{}, nil, cellErr(off, what, ErrCellOffset, "cell of %d bytes runs past the end of its bin (0x%x)", ci.size, bin.end())
	}
	if uint32(len(buf)) > ci.size {
		buf = buf[:ci.size]
	}
	return ci, buf, nil
}

// cellData returns the data of the allocated cell at off (without the size
// field). The slice is freshly allocated and at most the cell's size, which
// the bin bounds.
func (h *Hive) cellData(off uint32, what string) ([]byte, error) {
	ci, head, err := h.cellAt(off, what)
	if err != nil {
		return nil, err
	}
	if !ci.allocated {
		return nil, cellErr(off, what, ErrCellOffset, "free cell of %d bytes", ci.size)
	}
	if uint32(len(head)) == ci.size {
		return head[cellSizeLen:], nil
	}
	buf := make([]byte, ci.size)
	copy(buf, head)
	if _, err := h.src.ReadAt(buf[len(head):], BaseBlockSize+int64(off)+int64(len(head))); err != nil {
		return nil, &CellError{Offset: off, Struct: what, Err: fmt.Errorf("%w: %w", ErrTruncated, err)}
	}
	return buf[cellSizeLen:], nil
}

// setBinsLimit moves the end of the hive-bins data to n (a multiple of 4096,
// not below the current end), for an editor that appended bins. The bin
// index keeps what it learned: bins only grow at the end.
func (h *Hive) setBinsLimit(n uint32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n > h.bins.limit {
		h.bins.limit = n
		h.bins.done = false
	}
}

// checkCellStart verifies that a cell starts at off (a reference into the
// middle of a cell, or past a damaged size field, is an ErrCellOffset). The
// first cell read in a bin walks the bin's size fields once (one read for
// bins up to 64 KiB); the result is kept per bin.
func (h *Hive) checkCellStart(b hbin, off uint32, what string) error {
	h.mu.Lock()
	ok, bc, err := h.bins.isCellStart(h.src, b, off)
	if err == nil && h.strict {
		// An editor reads only from sound bins.
		if _, serr := h.bins.soundBin(h.src, b); serr != nil {
			h.mu.Unlock()
			return &CellError{Offset: off, Struct: what, Err: serr}
		}
	}
	h.mu.Unlock()
	switch {
	case err != nil:
		return &CellError{Offset: off, Struct: what, Err: err}
	case ok:
		return nil
	case bc.broken != 0 && off >= b.off+bc.broken:
		return cellErr(off, what, ErrCellOffset, "at or beyond a damaged cell of its bin (%s)", bc.why)
	}
	return cellErr(off, what, ErrCellOffset, "no cell starts here (inside another cell of the bin at 0x%x)", b.off)
}
