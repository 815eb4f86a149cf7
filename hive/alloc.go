package hive

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
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

// edAlloc is the editor's cell allocator. It learns bins lazily: a bin is
// enlisted (its free cells put in the free list) when a cell in it is
// freed, or when an allocation finds no room in the bins enlisted so far
// (further bins in file order, at most maxScanBytes of them, then a new
// bin is appended), so setting a value whose cells fit reads no bin at
// all. Only sound bins are enlisted (soundBin): a damaged bin the edit
// does not otherwise touch is passed over, not a refusal.
type edAlloc struct {
	enlisted map[uint32]bool // bins whose free cells are in free
	frontier uint32          // bins below it have been looked at in order
	scanned  uint32          // bytes of bins looked at by the frontier
	free     freeList
}

// maxScanBytes bounds how much of the hive the allocator reads looking for
// room before it appends a bin instead: an edit of a few cells must not
// read a 50 MB hive.
const maxScanBytes = 1 << 20

// freeList holds free cells bucketed by size: one bucket per size up to
// exactBuckets*8 bytes, then one per power of two. Each bucket is sorted by
// size, then offset, so the best fit (smallest cell that holds the
// request, lowest offset on ties) is the first fitting entry of the first
// non-empty bucket at or above the request's.
type freeList struct {
	buckets [exactBuckets + 33][]edFree
	n       int
}

const exactBuckets = 128 // sizes 8 .. 1024

func bucketOf(size uint32) int {
	if size <= exactBuckets*cellAlign {
		return int(size/cellAlign) - 1
	}
	return exactBuckets + bits.Len32(size-1) - bits.Len32(exactBuckets*cellAlign)
}

func freeLess(a, b edFree) int {
	switch {
	case a.size != b.size:
		return cmp.Compare(a.size, b.size)
	}
	return cmp.Compare(a.off, b.off)
}

func (l *freeList) add(f edFree) {
	b := &l.buckets[bucketOf(f.size)]
	i, found := slices.BinarySearchFunc(*b, f, freeLess)
	if !found {
		*b = slices.Insert(*b, i, f)
		l.n++
	}
}

func (l *freeList) remove(f edFree) bool {
	b := &l.buckets[bucketOf(f.size)]
	i, found := slices.BinarySearchFunc(*b, f, freeLess)
	if found {
		*b = slices.Delete(*b, i, i+1)
		l.n--
	}
	return found
}

// best returns the best fit for need bytes.
func (l *freeList) best(need uint32) (edFree, bool) {
	for bi := bucketOf(need); bi < len(l.buckets); bi++ {
		b := l.buckets[bi]
		i, _ := slices.BinarySearchFunc(b, edFree{0, need}, freeLess)
		if i < len(b) {
			return b[i], true
		}
	}
	return edFree{}, false
}

// cellBytes is the cell size holding n data bytes: n plus the size field,
// rounded up to 8 (formats.md "Bins and cells").
func cellBytes(n int) uint32 { return uint32((n + cellSizeLen + cellAlign - 1) &^ (cellAlign - 1)) }

// soundCells returns the cell index of bin b after checking the bin is
// sound.
func (h *Hive) soundCells(b hbin) (*binCells, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bins.soundBin(h.src, b)
}

// enlist puts the free cells of sound bin b in the free list, once.
func (e *Editor) enlist(b hbin, bc *binCells) {
	if e.alloc.enlisted[b.off] {
		return
	}
	e.alloc.enlisted[b.off] = true
	e.h.mu.Lock()
	defer e.h.mu.Unlock()
	forCells(bc, b, func(rel, size uint32, allocated bool) {
		if !allocated {
			e.alloc.free.add(edFree{b.off + rel, size})
		}
	})
}

// forCells calls fn for every cell of a bin that tiles exactly, in order.
func forCells(bc *binCells, b hbin, fn func(rel, size uint32, allocated bool)) {
	prev := uint32(0)
	have := false
	for i, w := range bc.starts {
		for w != 0 {
			bit := uint32(bits.TrailingZeros64(w))
			w &^= 1 << bit
			rel := (uint32(i)*64 + bit) * cellAlign
			if have {
				fn(prev, rel-prev, bc.alloc.get(prev))
			}
			prev, have = rel, true
		}
	}
	if have {
		fn(prev, b.size-prev, bc.alloc.get(prev))
	}
}

// nextStart returns the bin offset of the first cell start after rel, or
// the bin's size.
func nextStart(bc *binCells, b hbin, rel uint32) uint32 {
	i := rel/cellAlign + 1
	for w := int(i / 64); w < len(bc.starts); w++ {
		word := bc.starts[w]
		if w == int(i/64) {
			word &^= (1 << (i % 64)) - 1
		}
		if word != 0 {
			return (uint32(w)*64 + uint32(bits.TrailingZeros64(word))) * cellAlign
		}
	}
	return b.size
}

// prevStart returns the bin offset of the last cell start before rel (the
// bin header's end at least: cells start at 32).
func prevStart(bc *binCells, rel uint32) (uint32, bool) {
	if rel <= binHeaderSize {
		return 0, false
	}
	i := rel/cellAlign - 1
	for w := int(i / 64); w >= 0; w-- {
		word := bc.starts[w]
		if w == int(i/64) && i%64 != 63 {
			word &= (1 << (i%64 + 1)) - 1
		}
		if word != 0 {
			return (uint32(w)*64 + uint32(63-bits.LeadingZeros64(word))) * cellAlign, true
		}
	}
	return 0, false
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
// The data area is zeroed (no remnant of freed data leaks into it). The
// best fit among the free cells of the bins enlisted so far is taken,
// else further bins are enlisted in file order, else a bin is appended.
// The cell handed out is checked once more against the planned bytes: a
// free cell starting there, of the size the list says, in a sound bin.
func (e *Editor) allocCell(n int) (uint32, error) {
	if n < 0 || n > maxHiveBinsSize {
		return 0, fmt.Errorf("hive: editor: cell of %d bytes: %w", n, ErrHiveFull)
	}
	need := cellBytes(n)
	f, ok := e.alloc.free.best(need)
	for !ok && e.alloc.frontier < e.binsSize && e.alloc.scanned < maxScanBytes {
		b, err := e.h.findBin(e.alloc.frontier)
		if err != nil {
			// The chain is damaged past here: allocate elsewhere.
			e.alloc.frontier = e.binsSize
			break
		}
		e.alloc.frontier = b.end()
		e.alloc.scanned += b.size
		if e.alloc.enlisted[b.off] {
			continue
		}
		bc, err := e.h.soundCells(b)
		if err != nil {
			continue // damage the edit does not touch: not used
		}
		e.enlist(b, bc)
		f, ok = e.alloc.free.best(need)
	}
	if !ok {
		var err error
		if f, err = e.appendBin(need); err != nil {
			return 0, err
		}
	}
	b, bc, err := e.checkFree(f)
	if err != nil {
		return 0, err
	}
	e.alloc.free.remove(f)
	rel := f.off - b.off
	e.h.mu.Lock()
	if f.size-need >= minCellSize {
		e.alloc.free.add(edFree{f.off + need, f.size - need})
		bc.setCell(rel+need, false)
	} else {
		need = f.size
	}
	bc.setCell(rel, true)
	e.h.mu.Unlock()
	if need != f.size {
		if err := e.putCellSize(f.off+need, f.size-need, false); err != nil {
			return 0, err
		}
	}
	buf := make([]byte, need)
	v := int32(need)
	binary.LittleEndian.PutUint32(buf, uint32(-v))
	if err := e.view.write(buf, BaseBlockSize+int64(f.off)); err != nil {
		return 0, err
	}
	e.h.touched.allocated(f.off)
	e.h.touched.bins[b.off] = b
	return f.off, nil
}

// checkFree verifies a free cell before it is handed out: its bin is
// sound, the index has a free cell starting there whose extent is f.size,
// and the planned bytes hold that size.
func (e *Editor) checkFree(f edFree) (hbin, *binCells, error) {
	b, err := e.h.findBin(f.off)
	if err != nil {
		return hbin{}, nil, asDamaged(cellErr(f.off, "free cell", ErrBin, "%v", err))
	}
	bc, err := e.h.soundCells(b)
	if err != nil {
		return hbin{}, nil, asDamaged(&CellError{Offset: f.off, Struct: "free cell", Err: err})
	}
	rel := f.off - b.off
	e.h.mu.Lock()
	ok := bc.starts.get(rel) && !bc.alloc.get(rel) && nextStart(bc, b, rel)-rel == f.size
	e.h.mu.Unlock()
	var sz [4]byte
	if _, err := e.view.ReadAt(sz[:], BaseBlockSize+int64(f.off)); err != nil {
		return hbin{}, nil, err
	}
	if !ok || int32(leUint32(sz[:])) != int32(f.size) {
		return hbin{}, nil, asDamaged(cellErr(f.off, "free cell", ErrBin, "the free list says %d bytes, the bin disagrees (size field %d)", f.size, int32(leUint32(sz[:]))))
	}
	return b, bc, nil
}

// appendBin adds a bin big enough for a cell of need bytes after the last
// one. The whole bin is written (header, one free cell, zeros), so the
// file holds exactly the bins once flushed.
func (e *Editor) appendBin(need uint32) (edFree, error) {
	size := (uint64(need) + binHeaderSize + binAlign - 1) &^ (binAlign - 1)
	off := e.binsSize
	if uint64(off)+size > maxHiveBinsSize {
		return edFree{}, fmt.Errorf("hive: editor: a bin of %d bytes after 0x%x: %w", size, off, ErrHiveFull)
	}
	// The new bin goes right after the last one: the chain of bins must
	// end exactly where the base block says, or the bin would overlap one
	// or leave a gap.
	if off > 0 {
		last, err := e.h.findBin(off - 1)
		if err != nil {
			return edFree{}, asDamaged(fmt.Errorf("hive: editor: finding the last bin: %w", err))
		}
		if last.end() != off {
			return edFree{}, asDamaged(cellErr(last.off, "hive bin", ErrBin, "the last bin ends at 0x%x, the base block says 0x%x", last.end(), off))
		}
	}
	if e.grow == nil && BaseBlockSize+int64(off)+int64(size) > e.fileSize {
		return edFree{}, fmt.Errorf("hive: editor: no free cell of %d bytes and the file cannot grow: %w", need, ErrNoGrow)
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
		return edFree{}, err
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
	nb2 := hbin{off, uint32(size)}
	bc := &binCells{starts: newBitmap(nb2.size), alloc: newBitmap(nb2.size)}
	bc.setCell(binHeaderSize, false)
	h.mu.Lock()
	if h.bins.cells == nil {
		h.bins.cells = map[uint32]*binCells{}
	}
	h.bins.cells[off] = bc
	h.mu.Unlock()
	f := edFree{off + binHeaderSize, uint32(size) - binHeaderSize}
	e.alloc.enlisted[off] = true
	e.alloc.free.add(f)
	e.alloc.frontier = end
	e.h.touched.bins[off] = nb2
	return f, nil
}

// freeCell marks the allocated cell at off free and merges it with free
// neighbours in its bin (Windows keeps no two free cells adjacent). The
// bin must be sound: its cells tile it, so a neighbour that the size
// fields call free cannot overlap a live cell.
func (e *Editor) freeCell(off uint32, what string) error {
	ci, _, err := e.h.cellAt(off, what)
	if err != nil {
		return err
	}
	if !ci.allocated {
		return cellErr(off, what, ErrCellOffset, "freeing a cell that is already free")
	}
	b := ci.bin
	bc, err := e.h.soundCells(b)
	if err != nil {
		return &CellError{Offset: off, Struct: what, Err: err}
	}
	e.enlist(b, bc)
	rel := off - b.off
	start, size := rel, ci.size
	e.h.mu.Lock()
	if p, ok := prevStart(bc, rel); ok && !bc.alloc.get(p) {
		if !e.alloc.free.remove(edFree{b.off + p, rel - p}) {
			e.h.mu.Unlock()
			return cellErr(b.off+p, "free cell", ErrBin, "not in the free list at the size its bin gives (%d bytes)", rel-p)
		}
		bc.clearCell(rel)
		start, size = p, size+rel-p
	}
	if nx := rel + ci.size; nx < b.size && bc.starts.get(nx) && !bc.alloc.get(nx) {
		ns := nextStart(bc, b, nx) - nx
		if !e.alloc.free.remove(edFree{b.off + nx, ns}) {
			e.h.mu.Unlock()
			return cellErr(b.off+nx, "free cell", ErrBin, "not in the free list at the size its bin gives (%d bytes)", ns)
		}
		bc.clearCell(nx)
		size += ns
	}
	bc.setCell(start, false)
	e.alloc.free.add(edFree{b.off + start, size})
	e.h.mu.Unlock()
	e.h.touched.freedCell(off)
	e.h.touched.bins[b.off] = b
	return e.putCellSize(b.off+start, size, false)
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
