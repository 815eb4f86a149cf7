package image

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// vhdx is a VHDX file ([MS-VHDX]), fixed, dynamic or differencing, read and
// written in place.
//
// The block allocation table (BAT) holds one 64-bit entry per payload
// block (state in bits 0-2, file offset in MiB in bits 20-63), with a
// sector bitmap entry after every chunk-ratio payload entries. A write
// into a FULLY_PRESENT block writes in place; a write anywhere else
// appends a new block at the 1 MiB-aligned end of the file holding what
// the guest reads there now (zeros or the parent's data) with the write on
// top, and sets its entry to FULLY_PRESENT (a PARTIALLY_PRESENT block of a
// differencing disk, and a ZERO block that keeps preallocated space, are
// filled in place the same way). Before the first
// write the headers get new FileWriteGuid and DataWriteGuid values
// ([MS-VHDX] 2.2.2: changed before the first modification of the file and
// of the user-visible data), written to both header slots in turn.
//
// The BAT entries are written directly, not through the VHDX log: this
// program's own journal makes the whole change atomic and undoable. A file
// whose log is not empty (LogGuid set) is refused: its metadata may be
// older than what the log holds.
type vhdx struct {
	f       *containerFile
	head    *vhdxHeader
	headAt  int64
	meta    *vhdxMetadata
	batOff  int64
	bat     []uint64
	chunk   int64 // chunk ratio: payload blocks per sector bitmap block
	bs      int64
	regions [][2]int64 // regions no block may overlap
	parent  layer
	stamped bool // the write GUIDs were changed
}

// BAT entry states ([MS-VHDX] 2.5.1.1, 2.5.1.2).
const (
	vhdxNotPresent       = 0
	vhdxUndefined        = 1
	vhdxZero             = 2
	vhdxUnmapped         = 3
	vhdxFullyPresent     = 6
	vhdxPartiallyPresent = 7
	vhdxSBPresent        = 6
)

// openVHDX reads the headers, region table, metadata and BAT, and opens
// the parent of a differencing disk.
func openVHDX(f *containerFile, path string, c *chain) (*vhdx, error) {
	if f.size < 2*vhdxHeaderArea || f.size > vhdxMaxFileSize {
		return nil, fmt.Errorf("%s: a VHDX of %d bytes is cut short (or beyond any VHDX size)", f.name, f.size)
	}
	head, at, err := readVHDXHeaders(f)
	if err != nil {
		return nil, err
	}
	if head.log != (guid{}) && head.logLength > 0 {
		return nil, fmt.Errorf("%s: VHDX refused: its log holds changes not yet applied (LogGuid is set: the disk was not closed cleanly); let Hyper-V or qemu replay it first (qemu-img check -r all DISK.vhdx replays the log), then try again", f.name)
	}
	var regions []vhdxRegion
	var errs []string
	for _, off := range []int64{vhdxRegion1, vhdxRegion2} {
		b := make([]byte, vhdxRegionSize)
		if err := f.read(b, off, "VHDX region table"); err != nil {
			return nil, err
		}
		rs, err := parseVHDXRegions(b, f.size)
		if err != nil {
			errs = append(errs, fmt.Sprintf("region table at %d: %v", off, err))
			continue
		}
		regions = rs
		break
	}
	if regions == nil {
		return nil, fmt.Errorf("%s: no valid VHDX region table: %v", f.name, errs)
	}
	v := &vhdx{f: f, head: head, headAt: at}
	v.regions = [][2]int64{{0, vhdxHeaderArea}, {int64(head.logOffset), int64(head.logLength)}}
	var bat, meta *vhdxRegion
	for i := range regions {
		r := &regions[i]
		v.regions = append(v.regions, [2]int64{int64(r.offset), int64(r.length)})
		switch r.id {
		case vhdxRegionBAT:
			bat = r
		case vhdxRegionMetadata:
			meta = r
		}
	}
	if bat == nil || meta == nil {
		return nil, fmt.Errorf("%s: the VHDX region table has no BAT or no metadata region", f.name)
	}
	for _, r := range regions {
		if rangesOverlap(r.offset, uint64(r.length), head.logOffset, uint64(head.logLength)) {
			return nil, fmt.Errorf("%s: a VHDX region at %d overlaps the log", f.name, r.offset)
		}
	}
	mb := make([]byte, meta.length)
	if err := f.read(mb, int64(meta.offset), "VHDX metadata region"); err != nil {
		return nil, err
	}
	if v.meta, err = parseVHDXMetadata(mb); err != nil {
		return nil, fmt.Errorf("%s: %w", f.name, err)
	}
	v.bs = int64(v.meta.blockSize)
	v.chunk = (int64(1) << 23) * int64(v.meta.logicalSect) / v.bs
	payload := (int64(v.meta.diskSize) + v.bs - 1) / v.bs
	var entries int64
	if v.meta.hasParent {
		entries = (payload + v.chunk - 1) / v.chunk * (v.chunk + 1)
	} else {
		entries = payload + (payload-1)/v.chunk
	}
	if entries*8 > int64(bat.length) {
		return nil, fmt.Errorf("%s: the BAT region (%d bytes) is too small for %d entries", f.name, bat.length, entries)
	}
	v.batOff = int64(bat.offset)
	raw := make([]byte, entries*8)
	if err := f.read(raw, v.batOff, "VHDX BAT"); err != nil {
		return nil, err
	}
	v.bat = make([]uint64, entries)
	for i := range v.bat {
		v.bat[i] = binary.LittleEndian.Uint64(raw[i*8:])
	}
	if v.meta.hasParent {
		parent, _, err := c.openParent(path, "", v.meta.parentPaths())
		if err != nil {
			return nil, fmt.Errorf("%s: differencing VHDX: %w", f.name, err)
		}
		pv, ok := parent.(*vhdx)
		if !ok {
			return nil, fmt.Errorf("%s: the parent of this differencing VHDX is not a VHDX", f.name)
		}
		link := strings.Trim(v.meta.parent["parent_linkage"], "{}")
		want, err := uuid.Parse(link)
		if err != nil || mustGUID(want.String()) != pv.head.dataWrite {
			return nil, fmt.Errorf("%s: the parent found does not carry the DataWriteGuid the disk records (%q): it is not this disk's parent, or it was changed after the child was made", f.name, link)
		}
		v.parent = parent
	}
	return v, nil
}

func (v *vhdx) virtualSize() int64 { return int64(v.meta.diskSize) }

// entryIndex is the BAT index of payload block i: a sector bitmap entry
// follows every chunk-ratio payload entries.
func (v *vhdx) entryIndex(i int64) int64 { return i + i/v.chunk }

// blockAt returns payload block i's state and file offset, checking the
// offset of a present block against the file and the regions.
func (v *vhdx) blockAt(i int64) (uint64, int64, error) {
	e := v.bat[v.entryIndex(i)]
	state := e & 7
	off := int64(e>>20) << 20
	switch state {
	case vhdxNotPresent, vhdxUndefined, vhdxUnmapped:
		return state, 0, nil
	case vhdxZero:
		// A ZERO block may keep the space preallocated for it: a write
		// fills it in place, as qemu does.
		if off == 0 {
			return state, 0, nil
		}
	case vhdxFullyPresent:
	case vhdxPartiallyPresent:
		if !v.meta.hasParent {
			return 0, 0, fmt.Errorf("%s: BAT entry of block %d is PARTIALLY_PRESENT in a disk without a parent: the disk is damaged", v.f.name, i)
		}
	default:
		return 0, 0, fmt.Errorf("%s: BAT entry of block %d has unknown state %d: the disk is damaged", v.f.name, i, state)
	}
	if err := v.checkObject(off, v.bs, fmt.Sprintf("block %d", i)); err != nil {
		return 0, 0, err
	}
	return state, off, nil
}

// checkObject checks that n bytes at off lie within the file and outside
// the header section, the log, the BAT and the metadata region.
func (v *vhdx) checkObject(off, n int64, what string) error {
	if off < vhdxHeaderArea || off > v.f.size || n > v.f.size-off {
		return fmt.Errorf("%s: the BAT entry of %s points at %d, not a whole block within the file (%d bytes): the disk is damaged", v.f.name, what, off, v.f.size)
	}
	for _, r := range v.regions {
		if rangesOverlap(uint64(off), uint64(n), uint64(r[0]), uint64(r[1])) {
			return fmt.Errorf("%s: the BAT entry of %s points at %d, inside the VHDX's headers, log, BAT or metadata: the disk is damaged", v.f.name, what, off)
		}
	}
	return nil
}

// ReadAt reads guest data.
func (v *vhdx) ReadAt(p []byte, off int64) (int, error) {
	return readUnits(p, off, v.virtualSize(), v.bs, v.readBlock)
}

// readBlock reads p at guest offset pos, within one block.
func (v *vhdx) readBlock(p []byte, pos int64) error {
	state, off, err := v.blockAt(pos / v.bs)
	if err != nil {
		return err
	}
	in := pos % v.bs
	switch state {
	case vhdxFullyPresent:
		return v.f.read(p, off+in, "block data")
	case vhdxPartiallyPresent:
		return v.readPartial(p, pos, off)
	case vhdxZero:
		clear(p)
		return nil
	}
	if v.parent != nil {
		return readVirtual(v.parent, p, pos)
	}
	clear(p)
	return nil
}

// readPartial reads from a PARTIALLY_PRESENT block of a differencing disk:
// its sector bitmap (one bit per logical sector, least significant bit
// first, in the bitmap block that covers the chunk) says which sectors are
// in this file and which come from the parent.
func (v *vhdx) readPartial(p []byte, pos, blockOff int64) error {
	bi := pos / v.bs
	sbOff, err := v.sectorBitmapAt(bi)
	if err != nil {
		return err
	}
	ss := int64(v.meta.logicalSect)
	in := pos % v.bs
	first := (bi%v.chunk)*(v.bs/ss) + in/ss
	last := (bi%v.chunk)*(v.bs/ss) + (in+int64(len(p))-1)/ss
	bm := make([]byte, last/8-first/8+1)
	if err := v.f.read(bm, sbOff+first/8, "sector bitmap"); err != nil {
		return err
	}
	set := func(s int64) bool { return bm[s/8-first/8]&(1<<(s%8)) != 0 }
	for done := 0; done < len(p); {
		n := int(min(int64(len(p)-done), ss-(in+int64(done))%ss))
		sec := first + (in%ss+int64(done))/ss
		if set(sec) {
			if err := v.f.read(p[done:done+n], blockOff+in+int64(done), "block data"); err != nil {
				return err
			}
		} else if err := readVirtual(v.parent, p[done:done+n], pos+int64(done)); err != nil {
			return err
		}
		done += n
	}
	return nil
}

// sectorBitmapAt returns the file offset of the sector bitmap block that
// covers payload block bi, checked.
func (v *vhdx) sectorBitmapAt(bi int64) (int64, error) {
	idx := (bi/v.chunk)*(v.chunk+1) + v.chunk
	if idx >= int64(len(v.bat)) {
		return 0, fmt.Errorf("%s: block %d is PARTIALLY_PRESENT but the BAT has no sector bitmap entry for it: the disk is damaged", v.f.name, bi)
	}
	e := v.bat[idx]
	if e&7 != vhdxSBPresent {
		return 0, fmt.Errorf("%s: block %d is PARTIALLY_PRESENT but its sector bitmap block is not present: the disk is damaged", v.f.name, bi)
	}
	off := int64(e>>20) << 20
	if err := v.checkObject(off, 1<<20, fmt.Sprintf("the sector bitmap of block %d", bi)); err != nil {
		return 0, err
	}
	return off, nil
}

// WriteAt writes guest data, planning the whole write first.
func (v *vhdx) WriteAt(p []byte, off int64) (int, error) {
	return writePlanned(v.f, v.virtualSize(), p, off, v.plan)
}

// plan works out the file writes for writing p at guest offset off.
// It returns them with the function that updates the in-memory header
// and BAT once they are written.
func (v *vhdx) plan(p []byte, off int64) ([]fileWrite, func(), error) {
	var ws, batWs []fileWrite
	stamped := func() {}
	if !v.stamped {
		hs, commit, err := v.stamp()
		if err != nil {
			return nil, nil, err
		}
		ws, stamped = append(ws, hs...), commit
	}
	next := (v.f.size + vhdxAlign - 1) &^ (vhdxAlign - 1)
	newBAT := map[int64]uint64{}
	for done := 0; done < len(p); {
		pos := off + int64(done)
		bi, in := pos/v.bs, pos%v.bs
		n := int(min(int64(len(p)-done), v.bs-in))
		chunk := p[done : done+n]
		done += n
		state, boff, err := v.blockAt(bi)
		if err != nil {
			return nil, nil, err
		}
		if state == vhdxFullyPresent {
			ws = append(ws, fileWrite{off: boff + in, b: chunk, what: "VHDX block data"})
			continue
		}
		// What the guest reads in the whole block now, with the write on
		// top, becomes a FULLY_PRESENT block: in place for a partly
		// present one, at the end of the file otherwise.
		if state == vhdxPartiallyPresent {
			// Checked now: the block is read while it is written.
			if _, err := v.sectorBitmapAt(bi); err != nil {
				return nil, nil, err
			}
		}
		if boff == 0 {
			boff = next
			next += v.bs
			if next > vhdxMaxFileSize {
				return nil, nil, fmt.Errorf("the file would grow past %d bytes", int64(vhdxMaxFileSize))
			}
		}
		ws = append(ws, fileWrite{off: boff, n: v.bs, fill: blockFill(v.readBlock, bi*v.bs, chunk, in), what: "VHDX block"})
		idx := v.entryIndex(bi)
		e := uint64(boff>>20)<<20 | vhdxFullyPresent
		newBAT[idx] = e
		batWs = append(batWs, fileWrite{off: v.batOff + idx*8, b: binary.LittleEndian.AppendUint64(nil, e), what: "BAT entry"})
	}
	commit := func() {
		stamped()
		for i, e := range newBAT {
			v.bat[i] = e
		}
	}
	return append(ws, batWs...), commit, nil
}

// stamp returns the header writes that give the file new FileWriteGuid
// and DataWriteGuid values: the other header slot first with the next
// sequence number, then the current slot with the one after, so that both
// headers end up valid and identical but for their sequence numbers (as
// qemu does), and the function that records them in memory once written.
func (v *vhdx) stamp() ([]fileWrite, func(), error) {
	fw, err := newGUID()
	if err != nil {
		return nil, nil, err
	}
	dw, err := newGUID()
	if err != nil {
		return nil, nil, err
	}
	other := int64(vhdxHeader1)
	if v.headAt == vhdxHeader1 {
		other = vhdxHeader2
	}
	first := v.head.encode(v.head.seq+1, fw, dw)
	second := v.head.encode(v.head.seq+2, fw, dw)
	commit := func() {
		v.stamped = true
		v.head.seq += 2
		v.head.fileWrite, v.head.dataWrite = fw, dw
		v.head.raw = second
	}
	return []fileWrite{{off: other, b: first, what: "VHDX header"}, {off: v.headAt, b: second, what: "VHDX header"}}, commit, nil
}
