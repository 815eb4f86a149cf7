package image

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
)

// vhd is a dynamic or differencing VHD read and written in place. The file
// is a copy of the footer, the dynamic disk header, the block allocation
// table (BAT: one big-endian sector number per block, 0xFFFFFFFF when the
// block is not allocated), the blocks (a sector bitmap, then the block's
// data), and the footer at the very end.
//
// The sector bitmap (most significant bit first) says which sectors the
// block holds; the others read as zeros on a dynamic disk and from the
// parent on a differencing disk. A write into an allocated block writes
// in place and sets the bits of the sectors it fills (reading what the
// guest sees there now for partly written sectors); a write into an
// unallocated block appends a new block where the footer was, holding the
// block's current content (zeros or the parent's data) with the write on
// top and every bit set, then writes the footer at the new end and the BAT
// entry.
type vhd struct {
	f       *containerFile
	foot    vhdFooter
	footRaw []byte
	dyn     *vhdDynamicHeader
	bat     []uint32
	bitmap  int64 // bytes of sector bitmap before each block's data
	parent  layer
	reserve int64 // end of the header structures: blocks start at or after it
}

const vhdUnallocated = 0xFFFFFFFF

// openVHD parses the footer, dynamic header and BAT of a dynamic or
// differencing VHD and opens its parent.
func openVHD(f *containerFile, path string, c *chain) (*vhd, error) {
	if f.size < 3*vhdFooterSize+vhdDynHeaderSize || f.size%512 != 0 {
		return nil, fmt.Errorf("%s: a dynamic VHD of %d bytes is cut short (its size is not a whole number of sectors or it cannot hold a footer, a header and its copy)", f.name, f.size)
	}
	foot := make([]byte, vhdFooterSize)
	if err := f.read(foot, f.size-vhdFooterSize, "VHD footer"); err != nil {
		return nil, err
	}
	ft, err := parseVHDFooter(foot)
	if err != nil {
		return nil, fmt.Errorf("%s: VHD footer at %d: %w", f.name, f.size-vhdFooterSize, err)
	}
	if ft.diskType != vhdTypeDynamic && ft.diskType != vhdTypeDifferencing {
		return nil, fmt.Errorf("%s: VHD footer says disk type %d, not dynamic (3) or differencing (4)", f.name, ft.diskType)
	}
	if ft.currentSize > maxVirtualSize || ft.currentSize == 0 {
		return nil, fmt.Errorf("%s: VHD footer declares a virtual size of %d bytes (0 or more than %d)", f.name, ft.currentSize, int64(maxVirtualSize))
	}
	if ft.dataOffset < vhdFooterSize || ft.dataOffset > uint64(f.size-vhdFooterSize-vhdDynHeaderSize) {
		return nil, fmt.Errorf("%s: the dynamic header offset %d in the VHD footer is not within the file", f.name, ft.dataOffset)
	}
	hb := make([]byte, vhdDynHeaderSize)
	if err := f.read(hb, int64(ft.dataOffset), "VHD dynamic header"); err != nil {
		return nil, err
	}
	dh, err := parseVHDDynamicHeader(hb)
	if err != nil {
		return nil, fmt.Errorf("%s: at %d: %w", f.name, ft.dataOffset, err)
	}
	bs := uint64(dh.blockSize)
	if uint64(dh.maxTableEntries)*bs < ft.currentSize {
		return nil, fmt.Errorf("%s: the BAT has %d entries of %d-byte blocks, too few for the %d-byte disk", f.name, dh.maxTableEntries, bs, ft.currentSize)
	}
	batBytes := uint64(dh.maxTableEntries) * 4
	end := uint64(f.size - vhdFooterSize)
	if dh.tableOffset < vhdFooterSize || dh.tableOffset > end || batBytes > end-dh.tableOffset {
		return nil, fmt.Errorf("%s: the BAT (%d entries at %d) is not within the file", f.name, dh.maxTableEntries, dh.tableOffset)
	}
	if rangesOverlap(dh.tableOffset, batBytes, ft.dataOffset, vhdDynHeaderSize) {
		return nil, fmt.Errorf("%s: the BAT at %d overlaps the dynamic header at %d", f.name, dh.tableOffset, ft.dataOffset)
	}
	v := &vhd{f: f, foot: ft, footRaw: foot, dyn: dh}
	v.bitmap = (int64(bs)/512/8 + 511) &^ 511
	raw := make([]byte, batBytes)
	if err := f.read(raw, int64(dh.tableOffset), "VHD BAT"); err != nil {
		return nil, err
	}
	v.bat = make([]uint32, dh.maxTableEntries)
	for i := range v.bat {
		v.bat[i] = binary.BigEndian.Uint32(raw[i*4:])
	}
	v.reserve = int64(max(ft.dataOffset+vhdDynHeaderSize, dh.tableOffset+batBytes))
	if ft.diskType == vhdTypeDifferencing {
		parent, _, err := c.openParent(path, "", dh.parentPaths(f))
		if err != nil {
			return nil, fmt.Errorf("%s: differencing VHD (parent %q): %w", f.name, dh.parentName, err)
		}
		id, ok := parent.(interface{ vhdUniqueID() [16]byte })
		if !ok {
			return nil, fmt.Errorf("%s: the parent of this differencing VHD is not a VHD", f.name)
		}
		if got := id.vhdUniqueID(); got != dh.parentUniqueID {
			return nil, fmt.Errorf("%s: the parent found (%q) has unique ID %x, the disk records %x: it is not this disk's parent, or it was changed after the child was made", f.name, dh.parentName, got, dh.parentUniqueID)
		}
		v.parent = parent
	}
	return v, nil
}

func (v *vhd) virtualSize() int64 { return int64(v.foot.currentSize) }

func (v *vhd) vhdUniqueID() [16]byte { return v.foot.uniqueID }

// blockAt returns the file offset of block i's bitmap, or -1 when the
// block is not allocated, checking it against the header structures and
// the footer.
func (v *vhd) blockAt(i int64) (int64, error) {
	e := v.bat[i]
	if e == vhdUnallocated {
		return -1, nil
	}
	off := int64(e) * 512
	end := off + v.bitmap + int64(v.dyn.blockSize)
	if off < v.reserve || end > v.f.size-vhdFooterSize {
		return 0, fmt.Errorf("%s: BAT entry %d points at %d, which is not a whole block between the headers and the footer: the disk is damaged", v.f.name, i, off)
	}
	return off, nil
}

// ReadAt reads guest data.
func (v *vhd) ReadAt(p []byte, off int64) (int, error) {
	return readUnits(p, off, v.virtualSize(), int64(v.dyn.blockSize), v.readBlock)
}

// readBlock reads p at guest offset pos, within one block.
func (v *vhd) readBlock(p []byte, pos int64) error {
	bs := int64(v.dyn.blockSize)
	blk, err := v.blockAt(pos / bs)
	if err != nil {
		return err
	}
	if blk < 0 {
		return v.readAbsent(p, pos)
	}
	bm := make([]byte, v.bitmap)
	if err := v.f.read(bm, blk, "sector bitmap"); err != nil {
		return err
	}
	// Runs of sectors present or absent.
	in := pos % bs
	for done := 0; done < len(p); {
		s := (in + int64(done)) / 512
		present := sectorSet(bm, s)
		n := 0
		for done+n < len(p) && sectorSet(bm, (in+int64(done+n))/512) == present {
			n += int(min(int64(len(p)-done-n), 512-(in+int64(done+n))%512))
		}
		if present {
			if err := v.f.read(p[done:done+n], blk+v.bitmap+in+int64(done), "block data"); err != nil {
				return err
			}
		} else if err := v.readAbsent(p[done:done+n], pos+int64(done)); err != nil {
			return err
		}
		done += n
	}
	return nil
}

// readAbsent reads what the disk holds where it stores nothing: the
// parent's data, or zeros.
func (v *vhd) readAbsent(p []byte, pos int64) error {
	if v.parent != nil {
		return readVirtual(v.parent, p, pos)
	}
	clear(p)
	return nil
}

func sectorSet(bm []byte, s int64) bool { return bm[s/8]&(0x80>>(s%8)) != 0 }

// WriteAt writes guest data, planning the whole write first.
func (v *vhd) WriteAt(p []byte, off int64) (int, error) {
	return writePlanned(v.f, v.virtualSize(), p, off, v.plan)
}

// plan works out the file writes for writing p at guest offset off.
// It returns them with the function that records the new BAT entries in
// memory once they are written.
func (v *vhd) plan(p []byte, off int64) ([]fileWrite, func(), error) {
	bs := int64(v.dyn.blockSize)
	footAt := v.f.size - vhdFooterSize
	next := footAt // where the next new block goes: over the old footer
	var ws, batWs []fileWrite
	newBAT := map[int64]uint32{}
	for done := 0; done < len(p); {
		pos := off + int64(done)
		bi, in := pos/bs, pos%bs
		n := int(min(int64(len(p)-done), bs-in))
		chunk := p[done : done+n]
		done += n
		blk, err := v.blockAt(bi)
		if err != nil {
			return nil, nil, err
		}
		if blk < 0 {
			// A new block: the block's current content (zeros or the
			// parent's) with the write on top, every sector present.
			if next/512 >= vhdUnallocated {
				return nil, nil, fmt.Errorf("the file would grow past what a BAT entry can address")
			}
			bm := bytes.Repeat([]byte{0xFF}, int(v.bitmap))
			ws = append(ws, fileWrite{off: next, b: bm, what: "new VHD block's sector bitmap"},
				fileWrite{off: next + v.bitmap, n: bs, fill: blockFill(v.readAbsent, bi*bs, chunk, in), what: "new VHD block"})
			newBAT[bi] = uint32(next / 512)
			batWs = append(batWs, fileWrite{off: int64(v.dyn.tableOffset) + bi*4, b: binary.BigEndian.AppendUint32(nil, uint32(next/512)), what: "BAT entry"})
			next += v.bitmap + bs
			continue
		}
		bm := make([]byte, v.bitmap)
		if err := v.f.read(bm, blk, "sector bitmap"); err != nil {
			return nil, nil, err
		}
		first, last := in/512, (in+int64(n)-1)/512
		missing := false
		for s := first; s <= last; s++ {
			missing = missing || !sectorSet(bm, s)
		}
		if !missing {
			ws = append(ws, fileWrite{off: blk + v.bitmap + in, b: chunk, what: "VHD block data"})
			continue
		}
		// Some sectors are not in the block yet: write the whole sectors
		// the write touches, partly written ones completed with what the
		// guest reads there now, and set their bits.
		span := make([]byte, (last-first+1)*512)
		if err := v.readBlock(span, bi*bs+first*512); err != nil {
			return nil, nil, err
		}
		copy(span[in-first*512:], chunk)
		old := slices.Clone(bm)
		for s := first; s <= last; s++ {
			bm[s/8] |= 0x80 >> (s % 8)
		}
		ws = append(ws, fileWrite{off: blk + v.bitmap + first*512, b: span, what: "VHD block data"})
		if lo, hi := diffSpan(old, bm); lo < hi {
			ws = append(ws, fileWrite{off: blk + int64(lo), b: bm[lo:hi], what: "sector bitmap"})
		}
	}
	if next != footAt {
		// The footer moves to the new end of the file.
		ws = append(ws, fileWrite{off: next, b: v.footRaw, what: "VHD footer"})
	}
	commit := func() {
		for i, e := range newBAT {
			v.bat[i] = e
		}
	}
	return append(ws, batWs...), commit, nil
}

// diffSpan returns the byte span [lo, hi) where a and b differ.
func diffSpan(a, b []byte) (int, int) {
	lo, hi := 0, len(a)
	for lo < hi && a[lo] == b[lo] {
		lo++
	}
	for hi > lo && a[hi-1] == b[hi-1] {
		hi--
	}
	return lo, hi
}
