package hive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
)

// Hive-bin layout (formats.md, "Bins and cells"): every bin starts with a
// 32-byte header: "hbin", its own offset relative to the first bin (u32 @4),
// its size (u32 @8, a multiple of 4096), then reserved fields and a
// timestamp. Cells fill the rest of the bin with no gaps.
const (
	binHeaderSize = 32
	binAlign      = 4096
)

// hbin is one hive bin: [off, off+size) relative to the first bin.
type hbin struct {
	off, size uint32
}

func (b hbin) end() uint32 { return b.off + b.size }

// binIndex learns the chain of hive bins lazily, one 32-byte header at a
// time, only as far as the cells actually read require. Its memory is one
// hbin per header read.
type binIndex struct {
	bins []hbin // contiguous from offset 0, in order
	// probed: bins found by probe beyond the walked chain, sorted.
	probed []hbin
	next   uint32 // offset of the next header to read
	limit  uint32 // hive-bins data may not extend past this offset
	// lenient: the base block's size is untrusted (a dirty hive read
	// without recovery); the chain ends quietly at the first non-bin
	// instead of being an error.
	lenient bool
	done    bool
	err     error // sticky error for everything at or after next

	// cells: for each bin whose cells were walked, where cells start.
	cells map[uint32]*binCells
}

// binCells is the per-bin cell-start index: which 8-byte slots of one bin
// start a cell and which of those cells are allocated, as found by walking
// the size fields from the bin's first cell once; broken is the bin offset
// where the walk met an impossible size (0 when the cells tile the bin
// exactly). Its memory is two bits per 8 bytes of the bin. An editor keeps
// it up to date as it splits and merges cells (setCell, clearCell), so a
// miss is final and no bin is walked twice.
type binCells struct {
	starts bitmap // slot i = bin offset 8*i
	alloc  bitmap // ... and the cell there is allocated
	broken uint32
	why    string
	// sound caches the strict check of the bin (soundBin); checked says
	// whether it ran.
	checked bool
	sound   error
}

// setCell records a cell starting at bin offset rel.
func (bc *binCells) setCell(rel uint32, allocated bool) {
	bc.starts.set(rel)
	if allocated {
		bc.alloc.set(rel)
	} else {
		bc.alloc.clear(rel)
	}
}

// clearCell records that no cell starts at bin offset rel any more.
func (bc *binCells) clearCell(rel uint32) {
	bc.starts.clear(rel)
	bc.alloc.clear(rel)
}

// readBinHeader reads and validates the bin header at off (relative to the
// first bin) through ra, where hive-bins data starts at file offset 4096.
func readBinHeader(ra io.ReaderAt, off, limit uint32) (hbin, error) {
	var hdr [binHeaderSize]byte
	if uint64(off)+binHeaderSize > uint64(limit) {
		return hbin{}, cellErr(off, "hive bin", ErrBin, "header past the end of hive-bins data (0x%x)", limit)
	}
	if _, err := ra.ReadAt(hdr[:], BaseBlockSize+int64(off)); err != nil {
		return hbin{}, &CellError{Offset: off, Struct: "hive bin", Err: fmt.Errorf("%w: reading header: %w", ErrTruncated, err)}
	}
	if string(hdr[0:4]) != "hbin" {
		return hbin{}, cellErr(off, "hive bin", ErrBin, "signature %q, want \"hbin\"", hdr[0:4])
	}
	le := binary.LittleEndian
	own, size := le.Uint32(hdr[4:]), le.Uint32(hdr[8:])
	if own != off {
		return hbin{}, cellErr(off, "hive bin", ErrBin, "header says it is at 0x%x", own)
	}
	if size < binAlign || size%binAlign != 0 {
		return hbin{}, cellErr(off, "hive bin", ErrBin, "size 0x%x is not a positive multiple of 4096", size)
	}
	if uint64(off)+uint64(size) > uint64(limit) {
		return hbin{}, cellErr(off, "hive bin", ErrBin, "size 0x%x runs past the end of hive-bins data (0x%x)", size, limit)
	}
	return hbin{off: off, size: size}, nil
}

// find returns the bin holding offset off, reading further bin headers
// through ra as needed.
func (x *binIndex) find(ra io.ReaderAt, off uint32) (hbin, error) {
	if off >= x.next && !x.lenient {
		if off >= x.limit {
			return hbin{}, errBeyondBins
		}
		if b, ok := x.probe(ra, off); ok {
			return b, nil
		}
	}
	return x.walkTo(ra, off)
}

// walkTo reads the chain of bin headers up to the bin holding off.
func (x *binIndex) walkTo(ra io.ReaderAt, off uint32) (hbin, error) {
	if off >= x.next {
		for !x.done && off >= x.next {
			if x.err != nil {
				return hbin{}, x.err
			}
			if x.next >= x.limit {
				x.done = true
				break
			}
			b, err := readBinHeader(ra, x.next, x.limit)
			if err != nil {
				if x.lenient {
					x.done = true
					break
				}
				x.err = err
				return hbin{}, err
			}
			x.bins = append(x.bins, b)
			x.next = b.end()
		}
		if off >= x.next {
			return hbin{}, errBeyondBins
		}
	}
	i := sort.Search(len(x.bins), func(i int) bool { return x.bins[i].end() > off })
	return x.bins[i], nil
}

// probe finds the bin holding off without walking the chain from the
// first bin: bins start on 4096-byte boundaries and their header names its
// own offset, so the bin is the nearest page at or below off with a valid
// header that covers off. Bins found this way are remembered. It gives up
// (and find walks the chain, which has the final word) when it reaches
// memory of a bin that ends before off without finding a header.
//
// This is as strict as the chain for what the reader does: a header forged
// inside a large cell could only make the reader parse bytes that an offset
// into the middle of a cell would reach anyway; the checker walks the chain.
func (x *binIndex) probe(ra io.ReaderAt, off uint32) (hbin, bool) {
	i := sort.Search(len(x.probed), func(i int) bool { return x.probed[i].off > off })
	floor := x.next
	if i > 0 {
		b := x.probed[i-1]
		if off < b.end() {
			return b, true
		}
		floor = max(floor, b.end())
	}
	for p := off &^ (binAlign - 1); p >= floor; p -= binAlign {
		b, err := readBinHeader(ra, p, x.limit)
		if err == nil {
			if off >= b.end() {
				return hbin{}, false
			}
			x.probed = slices.Insert(x.probed, i, b)
			return b, true
		}
		if p == 0 {
			break
		}
	}
	return hbin{}, false
}

// all reads every remaining bin header and returns the bins; it is what the
// checker and the effective hive-bins size use.
func (x *binIndex) all(ra io.ReaderAt) ([]hbin, error) {
	_, err := x.walkTo(ra, ^uint32(0)-1)
	if err != nil && !errors.Is(err, errBeyondBins) {
		return x.bins, err
	}
	return x.bins, nil
}

// errBeyondBins: the offset lies past the last hive bin.
var errBeyondBins = errors.New("offset beyond the hive-bins data")

// binWalkChunk is how much of a bin one read brings in while walking its
// cells: small bins come in one read; cells larger than this are skipped
// over by reading only their neighbours' size fields.
const binWalkChunk = 64 << 10

// walkCells reads the size fields of every cell of bin b.
func walkCells(ra io.ReaderAt, b hbin) (*binCells, error) {
	bc := &binCells{starts: newBitmap(b.size), alloc: newBitmap(b.size)}
	var buf []byte
	var bufOff uint32 // bin offset of buf[0]
	for p := uint32(binHeaderSize); p < b.size; {
		if p < bufOff || p+4 > bufOff+uint32(len(buf)) {
			n := min(binWalkChunk, b.size-p)
			if cap(buf) < int(n) {
				buf = make([]byte, n)
			}
			buf, bufOff = buf[:n], p
			if _, err := ra.ReadAt(buf, BaseBlockSize+int64(b.off)+int64(p)); err != nil {
				return nil, &CellError{Offset: b.off + p, Struct: "hive bin", Err: fmt.Errorf("%w: %w", ErrTruncated, err)}
			}
		}
		raw := int32(binary.LittleEndian.Uint32(buf[p-bufOff:]))
		size := uint32(raw)
		if raw < 0 {
			size = uint32(-int64(raw))
		}
		if size < 8 || size%8 != 0 || size > b.size-p {
			bc.broken = p
			bc.why = fmt.Sprintf("cell at 0x%x has an impossible size %d", b.off+p, raw)
			break
		}
		bc.setCell(p, raw < 0)
		p += size
	}
	return bc, nil
}

// cellsOf returns the cell-start index of bin b, walking the bin once.
func (x *binIndex) cellsOf(ra io.ReaderAt, b hbin) (*binCells, error) {
	if bc := x.cells[b.off]; bc != nil {
		return bc, nil
	}
	bc, err := walkCells(ra, b)
	if err != nil {
		return nil, err
	}
	if x.cells == nil {
		x.cells = map[uint32]*binCells{}
	}
	x.cells[b.off] = bc
	return bc, nil
}

// isCellStart reports whether a cell starts at off in bin b, from the
// bin's index (walked once; the editor keeps it current, so a miss is
// final).
func (x *binIndex) isCellStart(ra io.ReaderAt, b hbin, off uint32) (bool, *binCells, error) {
	bc, err := x.cellsOf(ra, b)
	if err != nil {
		return false, nil, err
	}
	return bc.starts.get(off - b.off), bc, nil
}

// forget drops what the index knows of the cells of bin b, so the next
// read walks it again (a verification of planned bytes does this).
func (x *binIndex) forget(b hbin) { delete(x.cells, b.off) }

// soundBin is the strict check of bin b that an editor needs before it
// reads, changes or allocates in it: the header is valid (readBinHeader
// did that), the chain around it holds (the bin before ends exactly where
// it starts, and the next bin's header is valid where it ends, or it is the
// last bin), and its cells tile it exactly. The reader alone accepts cells
// before a broken size field; an editor must not, since freeing or
// splitting a cell there could merge live cells it cannot see. The result
// is cached in the bin's index.
func (x *binIndex) soundBin(ra io.ReaderAt, b hbin) (*binCells, error) {
	bc, err := x.cellsOf(ra, b)
	if err != nil {
		return nil, err
	}
	if bc.checked {
		return bc, bc.sound
	}
	bc.checked = true
	bc.sound = x.chainAround(ra, b)
	if bc.sound == nil && bc.broken != 0 {
		bc.sound = cellErr(b.off+bc.broken, "hive bin", ErrBin, "the cells of the bin at 0x%x do not tile it: %s", b.off, bc.why)
	}
	return bc, bc.sound
}

// chainAround checks the bin chain next to b: the bin before it ends at
// b.off and the bin after it starts at b.end() (or b ends the hive bins).
func (x *binIndex) chainAround(ra io.ReaderAt, b hbin) error {
	if b.end() < x.limit {
		if _, err := readBinHeader(ra, b.end(), x.limit); err != nil {
			return cellErr(b.off, "hive bin", ErrBin, "the bin after it (at 0x%x) is damaged: %v", b.end(), err)
		}
	} else if b.end() > x.limit {
		return cellErr(b.off, "hive bin", ErrBin, "ends at 0x%x, past the hive-bins data (0x%x)", b.end(), x.limit)
	}
	if b.off == 0 {
		return nil
	}
	// Walked bins are a chain from the first one: proven.
	if i := sort.Search(len(x.bins), func(i int) bool { return x.bins[i].off >= b.off }); i < len(x.bins) && x.bins[i] == b {
		return nil
	}
	prev, err := x.find(ra, b.off-1)
	switch {
	case err != nil:
		return cellErr(b.off, "hive bin", ErrBin, "no sound bin before it: %v", err)
	case prev.end() != b.off:
		return cellErr(b.off, "hive bin", ErrBin, "the bin before it (at 0x%x, 0x%x bytes) ends at 0x%x", prev.off, prev.size, prev.end())
	}
	return nil
}
