package hive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// ErrNoGrow is wrapped by the editor's error when the hive needs a new
// bin beyond the end of the file and the caller gave no grow function.
var ErrNoGrow = errors.New("the hive must grow and no grow function was given")

// ErrHiveFull is wrapped when a new bin would take the hive past the
// largest hive-bins size a base block can describe.
var ErrHiveFull = errors.New("hive full")

// edFree is one free cell the allocator knows.
type edFree struct{ off, size uint32 }

// edBin is a bin whose cells the allocator has read: its free cells,
// sorted by offset.
type edBin struct {
	b    hbin
	free []edFree
}

// edAlloc is the editor's cell allocator. It learns bins lazily: a bin is
// read when a cell in it is freed, or when an allocation finds no room in
// the bins read so far (first the bins in file order, then a new bin is
// appended), so setting a value whose cells fit reads no bin at all.
type edAlloc struct {
	bins     map[uint32]*edBin // by bin offset
	frontier uint32            // bins below it have been looked at in order
}

// cellBytes is the cell size holding n data bytes: n plus the size field,
// rounded up to 8 (formats.md "Bins and cells").
func cellBytes(n int) uint32 { return uint32((n + cellSizeLen + cellAlign - 1) &^ (cellAlign - 1)) }

// loadBin reads the cells of bin b and records its free cells. The cells
// must tile the bin exactly.
func (e *Editor) loadBin(b hbin) (*edBin, error) {
	if eb, ok := e.alloc.bins[b.off]; ok {
		return eb, nil
	}
	buf := make([]byte, b.size)
	if _, err := e.view.ReadAt(buf, BaseBlockSize+int64(b.off)); err != nil {
		return nil, &CellError{Offset: b.off, Struct: "hive bin", Err: fmt.Errorf("%w: %w", ErrTruncated, err)}
	}
	eb := &edBin{b: b}
	for p := uint32(binHeaderSize); p < b.size; {
		raw := int32(leUint32(buf[p:]))
		size := uint32(raw)
		if raw < 0 {
			size = uint32(-int64(raw))
		}
		if size < minCellSize || size%cellAlign != 0 || size > b.size-p {
			return nil, cellErr(b.off+p, "hive bin", ErrBin, "cell size %d does not fit the bin at 0x%x", raw, b.off)
		}
		if raw > 0 {
			eb.free = append(eb.free, edFree{b.off + p, size})
		}
		p += size
	}
	e.alloc.bins[b.off] = eb
	return eb, nil
}

// putCellSize writes a cell's size field (negative when allocated).
func (e *Editor) putCellSize(off, size uint32, allocated bool) error {
	v := int32(size)
	if allocated {
		v = -v
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(v))
	return e.view.write(b[:], BaseBlockSize+int64(off))
}

// allocCell allocates a cell holding n data bytes and returns its offset.
// The data area is zeroed (no remnant of freed data leaks into it). Free
// cells of the bins already read are tried first (smallest that fits,
// lowest offset on ties), then further bins in file order; when none has
// room, a bin is appended.
func (e *Editor) allocCell(n int) (uint32, error) {
	if n < 0 || n > maxHiveBinsSize {
		return 0, fmt.Errorf("hive: editor: cell of %d bytes: %w", n, ErrHiveFull)
	}
	need := cellBytes(n)
	eb, i := e.bestFit(need)
	for eb == nil && e.alloc.frontier < e.binsSize {
		b, err := e.h.findBin(e.alloc.frontier)
		if err != nil {
			return 0, err
		}
		e.alloc.frontier = b.end()
		if _, seen := e.alloc.bins[b.off]; seen {
			continue
		}
		nb, err := e.loadBin(b)
		if err != nil {
			return 0, err
		}
		if j := fitIn(nb.free, need); j >= 0 {
			eb, i = nb, j
		}
	}
	if eb == nil {
		var err error
		if eb, err = e.appendBin(need); err != nil {
			return 0, err
		}
		i = 0
	}
	f := eb.free[i]
	if f.size-need >= minCellSize {
		eb.free[i] = edFree{f.off + need, f.size - need}
		if err := e.putCellSize(f.off+need, f.size-need, false); err != nil {
			return 0, err
		}
	} else {
		need = f.size
		eb.free = slices.Delete(eb.free, i, i+1)
	}
	buf := make([]byte, need)
	v := int32(need)
	binary.LittleEndian.PutUint32(buf, uint32(-v))
	if err := e.view.write(buf, BaseBlockSize+int64(f.off)); err != nil {
		return 0, err
	}
	return f.off, nil
}

// fitIn returns the index of the smallest free cell of at least need
// bytes (lowest offset on ties), or -1.
func fitIn(free []edFree, need uint32) int {
	best := -1
	for i, f := range free {
		if f.size >= need && (best < 0 || f.size < free[best].size) {
			best = i
		}
	}
	return best
}

// bestFit searches the bins read so far.
func (e *Editor) bestFit(need uint32) (*edBin, int) {
	var eb *edBin
	bi := -1
	for _, b := range e.alloc.bins {
		i := fitIn(b.free, need)
		if i < 0 {
			continue
		}
		f := b.free[i]
		if eb == nil || f.size < eb.free[bi].size || (f.size == eb.free[bi].size && f.off < eb.free[bi].off) {
			eb, bi = b, i
		}
	}
	return eb, bi
}

// appendBin adds a bin big enough for a cell of need bytes after the last
// one. The whole bin is written (header, one free cell, zeros), so the
// file holds exactly the bins once flushed.
func (e *Editor) appendBin(need uint32) (*edBin, error) {
	size := (uint64(need) + binHeaderSize + binAlign - 1) &^ (binAlign - 1)
	off := e.binsSize
	if uint64(off)+size > maxHiveBinsSize {
		return nil, fmt.Errorf("hive: editor: a bin of %d bytes after 0x%x: %w", size, off, ErrHiveFull)
	}
	// The new bin goes right after the last one: the chain of bins must
	// end exactly where the base block says, or the bin would overlap one
	// or leave a gap.
	if off > 0 {
		last, err := e.h.findBin(off - 1)
		if err != nil {
			return nil, fmt.Errorf("hive: editor: finding the last bin: %w", err)
		}
		if last.end() != off {
			return nil, fmt.Errorf("hive: editor: %w: the last bin ends at 0x%x, the base block says 0x%x", ErrBin, last.end(), off)
		}
	}
	if e.grow == nil && BaseBlockSize+int64(off)+int64(size) > e.fileSize {
		return nil, fmt.Errorf("hive: editor: no free cell of %d bytes and the file cannot grow: %w", need, ErrNoGrow)
	}
	buf := make([]byte, size)
	copy(buf, "hbin")
	le := binary.LittleEndian
	le.PutUint32(buf[4:], off)
	le.PutUint32(buf[8:], uint32(size))
	le.PutUint32(buf[binHeaderSize:], uint32(size)-binHeaderSize)
	end := off + uint32(size)
	e.binsSize = end
	e.view.size = max(e.view.size, BaseBlockSize+int64(end))
	if err := e.view.write(buf, BaseBlockSize+int64(off)); err != nil {
		return nil, err
	}
	// Let the reader see the new bin.
	h := e.h
	h.mu.Lock()
	h.bins.limit = end
	h.bins.done = false
	h.srcSize = max(h.srcSize, e.view.size)
	h.mu.Unlock()
	nb := *h.base
	nb.HiveBinsSize = end
	h.base = &nb
	eb := &edBin{b: hbin{off, uint32(size)}, free: []edFree{{off + binHeaderSize, uint32(size) - binHeaderSize}}}
	e.alloc.bins[off] = eb
	e.alloc.frontier = end
	return eb, nil
}

// freeCell marks the allocated cell at off free and merges it with free
// neighbours in its bin (Windows keeps no two free cells adjacent).
func (e *Editor) freeCell(off uint32, what string) error {
	ci, _, err := e.h.cellAt(off, what)
	if err != nil {
		return err
	}
	if !ci.allocated {
		return cellErr(off, what, ErrCellOffset, "freeing a cell that is already free")
	}
	eb, err := e.loadBin(ci.bin)
	if err != nil {
		return err
	}
	start, size := off, ci.size
	i, _ := slices.BinarySearchFunc(eb.free, off, func(f edFree, o uint32) int { return int(int64(f.off) - int64(o)) })
	j := i
	if i > 0 && eb.free[i-1].off+eb.free[i-1].size == off {
		i--
		start = eb.free[i].off
		size += eb.free[i].size
	}
	if j < len(eb.free) && eb.free[j].off == off+ci.size {
		size += eb.free[j].size
		j++
	}
	eb.free = slices.Replace(eb.free, i, j, edFree{start, size})
	return e.putCellSize(start, size, false)
}

// fitCell returns a cell holding n data bytes: off itself when it is
// allocated and big enough, else a new cell (and off is freed). nilCell
// as off allocates.
func (e *Editor) fitCell(off uint32, n int, what string) (uint32, error) {
	if off == nilCell {
		return e.allocCell(n)
	}
	ci, _, err := e.h.cellAt(off, what)
	if err != nil {
		return 0, err
	}
	if !ci.allocated {
		return 0, cellErr(off, what, ErrCellOffset, "free cell")
	}
	if int(ci.size)-cellSizeLen >= n {
		return off, nil
	}
	no, err := e.allocCell(n)
	if err != nil {
		return 0, err
	}
	return no, e.freeCell(off, what)
}

// writeCell writes data at the start of the data of the cell at off.
func (e *Editor) writeCell(off uint32, data []byte) error {
	return e.view.write(data, BaseBlockSize+int64(off)+cellSizeLen)
}

// put32 writes a u32 field at pos in the data of the cell at off.
func (e *Editor) put32(off uint32, pos int, v uint32) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	return e.view.write(b[:], BaseBlockSize+int64(off)+cellSizeLen+int64(pos))
}
