package ntfs

import (
	"fmt"
)

// This file allocates clusters from $Bitmap (MFT record 6: one bit per
// cluster, set when in use) and blocks of a directory's index allocation.

// clusterBitmap is the volume's $Bitmap loaded for one operation.
type clusterBitmap struct {
	bits  []byte
	runs  []Run
	dirty map[int64]bool // 512-byte chunks of bits to write back
}

func (t *tx) clusters() (*clusterBitmap, error) {
	if t.cbm != nil {
		return t.cbm, nil
	}
	rec, err := t.record(mftRecBitmap)
	if err != nil {
		return nil, err
	}
	a, ok, err := rec.FindAttr(AttrData, "")
	if err != nil || !ok || !a.NonResident {
		return nil, fmt.Errorf("ntfs: $Bitmap has no non-resident $DATA (%v)", err)
	}
	total := int64(t.g.boot.TotalClusters())
	if a.DataSize() < (total+7)/8 {
		return nil, fmt.Errorf("ntfs: $Bitmap holds %d bytes for %d clusters", a.DataSize(), total)
	}
	bits, err := readAttrData(t.o, t.g, a, (total+7)/8+1<<20)
	if err != nil {
		return nil, fmt.Errorf("ntfs: reading $Bitmap: %w", err)
	}
	runs, err := a.Runs()
	if err != nil {
		return nil, err
	}
	t.cbm = &clusterBitmap{bits: bits, runs: runs, dirty: map[int64]bool{}}
	return t.cbm, nil
}

func (c *clusterBitmap) used(lcn int64) bool { return c.bits[lcn/8]&(1<<(lcn%8)) != 0 }

func (c *clusterBitmap) set(lcn int64, on bool) {
	if on {
		c.bits[lcn/8] |= 1 << (lcn % 8)
	} else {
		c.bits[lcn/8] &^= 1 << (lcn % 8)
	}
	c.dirty[lcn/8/512] = true
}

// allocClusters takes n contiguous free clusters, first fit from near
// (the end of the structure being extended) and then from the start of
// the volume; when no run of n is free it takes the first free clusters
// in pieces. It returns the runs taken.
//
// A cluster is taken only when $Bitmap marks it free and no record this
// operation has read claims it (claims.go); the metadata files are read
// first, and the claims must agree with $Bitmap, or it refuses.
func (t *tx) allocClusters(n, near int64) ([]Run, error) {
	if err := t.claimMetadata(); err != nil {
		return nil, err
	}
	c, err := t.clusters()
	if err != nil {
		return nil, err
	}
	if err := t.soundClusters(); err != nil {
		return nil, err
	}
	total := int64(t.g.boot.TotalClusters())
	if near < 0 || near >= total {
		near = 0
	}
	taken := func(l int64) bool { return c.used(l) || t.claims.taken(l) }
	find := func(from, to int64) int64 {
		run := int64(0)
		for l := from; l < to; l++ {
			if taken(l) {
				run = 0
				continue
			}
			run++
			if run == n {
				return l - n + 1
			}
		}
		return -1
	}
	start := find(near, total)
	if start < 0 {
		start = find(0, min(near+n, total))
	}
	var runs []Run
	if start >= 0 {
		runs = []Run{{LCN: start, Length: n}}
	} else {
		left := n
		for l := int64(0); l < total && left > 0; l++ {
			if !taken(l) {
				runs = appendRun(runs, l, 1)
				left--
			}
		}
		if left > 0 {
			return nil, fmt.Errorf("ntfs: volume full: %d clusters wanted, %d free", n, n-left)
		}
	}
	for _, r := range runs {
		for l := r.LCN; l < r.LCN+r.Length; l++ {
			c.set(l, true)
		}
		t.claims.add(ownerPlan, r.LCN, r.Length, total)
	}
	return runs, nil
}

// freeClusters returns clusters to $Bitmap. They stay claimed: this
// operation never hands out again what it freed.
func (t *tx) freeClusters(runs []Run) error {
	c, err := t.clusters()
	if err != nil {
		return err
	}
	if err := t.soundClusters(); err != nil {
		return err
	}
	for _, r := range runs {
		if r.Sparse {
			continue
		}
		for l := r.LCN; l < r.LCN+r.Length; l++ {
			c.set(l, false)
		}
	}
	return nil
}

// flushClusters stages the changed 512-byte chunks of $Bitmap.
func (t *tx) flushClusters() error {
	if t.cbm == nil {
		return nil
	}
	for ch := range t.cbm.dirty {
		lo := ch * 512
		hi := min(lo+512, int64(len(t.cbm.bits)))
		if err := stageRuns(t.o, t.g, t.cbm.runs, lo, t.cbm.bits[lo:hi]); err != nil {
			return fmt.Errorf("ntfs: writing $Bitmap: %w", err)
		}
	}
	return nil
}

// allocBlock returns the VCN of a free index block, marking it in the index
// $BITMAP; when every block is in use, the allocation grows by one block
// (or one cluster when clusters are larger), with clusters taken next to
// the directory's last ones. The first block creates $INDEX_ALLOCATION
// and $BITMAP.
func (tr *ixTree) allocBlock() (int64, error) {
	nblocks := tr.allocSize / tr.blockSize
	for i := int64(0); i < nblocks; i++ {
		if !tr.bitSet(i) {
			if err := tr.setBit(i); err != nil {
				return 0, err
			}
			return i * tr.blockSize / tr.vcnUnit, nil
		}
	}
	grow := max(tr.blockSize, tr.t.g.cluster)
	ncl := grow / tr.t.g.cluster
	near := int64(0)
	if k := len(tr.allocRuns); k > 0 && !tr.allocRuns[k-1].Sparse {
		near = tr.allocRuns[k-1].LCN + tr.allocRuns[k-1].Length
	}
	got, err := tr.t.allocClusters(ncl, near)
	if err != nil {
		return 0, fmt.Errorf("ntfs: directory %d: growing the index: %w", tr.dir, err)
	}
	runs := tr.allocRuns
	for _, r := range got {
		runs = appendRun(runs, r.LCN, r.Length)
	}
	newSize := tr.allocSize + grow
	if err := tr.growAllocation(runs, newSize); err != nil {
		tr.t.freeClusters(got)
		return 0, err
	}
	if err := tr.setBit(nblocks); err != nil {
		return 0, err
	}
	return nblocks * tr.blockSize / tr.vcnUnit, nil
}

// setBit marks block i in use, growing the bitmap 8 bytes at a time.
func (tr *ixTree) setBit(i int64) error {
	for i/8 >= int64(len(tr.bitmap)) {
		if err := tr.growBitmap(); err != nil {
			return err
		}
	}
	tr.bitmap[i/8] |= 1 << (i % 8)
	tr.bmDirty = true
	return nil
}

// syncRoot writes the in-memory root into the record's $INDEX_ROOT.
func (tr *ixTree) syncRoot() error {
	rec, err := tr.t.record(tr.rootRec)
	if err != nil {
		return err
	}
	a, ok, err := rec.FindAttr(AttrIndexRoot, i30)
	if err != nil || !ok {
		return fmt.Errorf("ntfs: directory %d: $INDEX_ROOT vanished (%v)", tr.dir, err)
	}
	used := tr.root.used()
	v := make([]byte, 0x20+used)
	copy(v, tr.rootHdr)
	putLE32(v[0x10:], 0x10)
	putLE32(v[0x14:], uint32(0x10+used))
	putLE32(v[0x18:], uint32(0x10+used))
	if tr.root.internal {
		v[0x1C] = indexNodeLarge
	}
	encodeEntries(v[0x20:], tr.root.entries, tr.root.internal)
	if err := rec.SetResidentValue(a, v); err != nil {
		return fmt.Errorf("ntfs: directory %d: $INDEX_ROOT: %w", tr.dir, err)
	}
	tr.t.dirty(rec)
	tr.root.dirty = false
	return nil
}

// flush writes the changed nodes, the root and the index bitmap.
func (tr *ixTree) flush() error {
	if tr.root.dirty {
		if err := tr.syncRoot(); err != nil {
			return err
		}
	}
	for vcn, n := range tr.nodes {
		if !n.dirty {
			continue
		}
		buf := make([]byte, tr.blockSize)
		if n.raw != nil {
			copy(buf, n.raw[:0x28])
		} else {
			copy(buf, "INDX")
			putLE16(buf[4:], 0x28)
			putLE16(buf[6:], uint16(tr.blockSize/512+1))
			n.entriesOff = tr.newEntriesOff()
		}
		putLE64(buf[0x10:], uint64(vcn))
		used := n.used()
		if used > tr.nodeCap(n) {
			return fmt.Errorf("ntfs: directory %d: block VCN %d overflows", tr.dir, vcn)
		}
		putLE32(buf[0x18:], uint32(n.entriesOff))
		putLE32(buf[0x1C:], uint32(n.entriesOff+used))
		putLE32(buf[0x20:], uint32(tr.blockSize-0x18))
		if n.internal {
			buf[0x24] = indexNodeLarge
		}
		encodeEntries(buf[0x18+n.entriesOff:], n.entries, n.internal)
		// Keep the update sequence number in step with what was on disk.
		if n.raw != nil {
			uo := int(le16(n.raw[4:]))
			copy(buf[uo:uo+2], n.raw[uo:uo+2])
		}
		plain := append([]byte(nil), buf...)
		if err := protectFixups(buf); err != nil {
			return err
		}
		uo := int(le16(buf[4:]))
		copy(plain[uo:uo+2], buf[uo:uo+2])
		if err := stageRuns(tr.t.o, tr.t.g, tr.allocRuns, vcn*tr.vcnUnit, buf); err != nil {
			return fmt.Errorf("ntfs: directory %d: writing block VCN %d: %w", tr.dir, vcn, err)
		}
		n.raw, n.dirty = plain, false
	}
	if tr.bmDirty {
		rec, a, err := tr.bitmapAttr()
		if err != nil {
			return err
		}
		if tr.bmResident {
			if err := rec.SetResidentValue(a, tr.bitmap); err != nil {
				return fmt.Errorf("ntfs: directory %d: index $BITMAP: %w", tr.dir, err)
			}
			tr.t.dirty(rec)
		} else {
			if err := tr.writeBitmap(); err != nil {
				return err
			}
		}
		tr.bmDirty = false
	}
	return nil
}
