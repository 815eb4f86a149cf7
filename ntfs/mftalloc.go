package ntfs

import (
	"errors"
	"fmt"
)

// This file allocates MFT records for extension records from $MFT:$Bitmap
// (the $BITMAP attribute of record 0: one bit per record, set when in use)
// and frees them again. $MFT itself never grows here: growing it the way
// Windows does (the MFT zone, $MFTMirr, the reserved records 16-23 for
// $MFT's own extension records) is refused with ErrMFTFull.

// ErrMFTFull is returned when an extension record is needed and $MFT has no
// free record: the writer does not grow $MFT.
var ErrMFTFull = errors.New("ntfs: no free MFT record for an extension record and growing $MFT is not supported; refused")

// firstUserRecord is where record allocation starts: records 0-15 are the
// file system's own and 16-23 are kept for $MFT's extension records
// (ntfs-3g and Windows both start allocating files at 24).
const firstUserRecord = 24

// mftBitmap is $MFT:$Bitmap loaded for one operation.
type mftBitmap struct {
	bits  []byte
	runs  []Run
	dirty map[int64]bool // bytes changed
}

func (t *tx) mftBits() (*mftBitmap, error) {
	if t.mbm != nil {
		return t.mbm, nil
	}
	rec, err := t.record(mftRecMFT)
	if err != nil {
		return nil, err
	}
	a, ok, err := rec.FindAttr(AttrBitmap, "")
	if err != nil || !ok {
		return nil, fmt.Errorf("ntfs: $MFT has no $BITMAP (%v)", err)
	}
	if !a.NonResident {
		return nil, fmt.Errorf("ntfs: $MFT:$Bitmap is resident; not supported for record allocation: %w", ErrMFTFull)
	}
	bits, err := readAttrData(t.o, t.g, a, int64(t.g.records()/8)+1<<16)
	if err != nil {
		return nil, fmt.Errorf("ntfs: reading $MFT:$Bitmap: %w", err)
	}
	runs, err := a.Runs()
	if err != nil {
		return nil, fmt.Errorf("ntfs: $MFT:$Bitmap run list: %w", err)
	}
	t.mbm = &mftBitmap{bits: bits, runs: runs, dirty: map[int64]bool{}}
	return t.mbm, nil
}

func (m *mftBitmap) used(n uint64) bool {
	return n/8 >= uint64(len(m.bits)) || m.bits[n/8]&(1<<(n%8)) != 0
}

func (m *mftBitmap) set(n uint64, on bool) {
	if on {
		m.bits[n/8] |= 1 << (n % 8)
	} else {
		m.bits[n/8] &^= 1 << (n % 8)
	}
	m.dirty[int64(n/8)] = true
}

// newExtensionRecord takes a free MFT record (clear in $MFT:$Bitmap and
// without the in-use flag in its header) and formats it as an empty
// extension record of base. The record keeps the sequence number it has
// on disk (NTFS bumps it when a record is freed), 1 if that is 0.
func (t *tx) newExtensionRecord(base *Record) (*Record, error) {
	m, err := t.mftBits()
	if err != nil {
		return nil, err
	}
	for n := uint64(firstUserRecord); n < t.g.records(); n++ {
		if m.used(n) {
			continue
		}
		if r := t.recs[n]; r != nil {
			continue // freed in this operation: not reused before commit
		}
		buf := make([]byte, t.g.recSize)
		if err := readRuns(t.o, t.g, t.g.mftRuns, int64(n)*t.g.recSize, buf); err != nil {
			return nil, fmt.Errorf("ntfs: MFT record %d: %w", n, err)
		}
		seq := uint16(0)
		if string(buf[:4]) == "FILE" {
			if le16(buf[recFlags:])&RecordInUse != 0 {
				continue // inconsistent: in use but free in the bitmap; leave it alone
			}
			seq = le16(buf[recSeq:])
		}
		if seq == 0 {
			seq = 1
		}
		r := t.formatRecord(n, seq, base.Ref())
		m.set(n, true)
		t.recs[n] = r
		t.dirty(r)
		return r, nil
	}
	return nil, fmt.Errorf("ntfs: file record %d: %w", base.Num, ErrMFTFull)
}

// formatRecord builds an empty in-use record (layout.h MFT_RECORD, NTFS
// 3.1): update sequence array at 0x30, attributes after it, 8-aligned.
func (t *tx) formatRecord(n uint64, seq uint16, baseRef uint64) *Record {
	b := make([]byte, t.g.recSize)
	copy(b, "FILE")
	usaCount := int(t.g.recSize/512) + 1
	putLE16(b[4:], 0x30)
	putLE16(b[6:], uint16(usaCount))
	putLE16(b[0x30:], 1) // update sequence number
	putLE16(b[recSeq:], seq)
	first := align8(0x30 + 2*usaCount)
	putLE16(b[recAttrsOff:], uint16(first))
	putLE16(b[recFlags:], RecordInUse)
	putLE32(b[recAlloc:], uint32(t.g.recSize))
	putLE64(b[recBase:], baseRef)
	putLE16(b[recNextAttrID:], 0)
	putLE32(b[recNumber:], uint32(n))
	r := &Record{Num: n, Data: b}
	r.setUsed(first)
	return r
}

// freeExtensionRecord marks an emptied extension record free: the in-use
// flag goes, the sequence number is bumped (so stale references fail), and
// its $MFT:$Bitmap bit is cleared.
func (t *tx) freeExtensionRecord(r *Record) error {
	m, err := t.mftBits()
	if err != nil {
		return err
	}
	putLE16(r.Data[recFlags:], r.Flags()&^RecordInUse)
	seq := r.Seq() + 1
	if seq == 0 {
		seq = 1
	}
	putLE16(r.Data[recSeq:], seq)
	m.set(r.Num, false)
	t.dirty(r)
	return nil
}

// flushMFTBits stages the changed bytes of $MFT:$Bitmap.
func (t *tx) flushMFTBits() error {
	if t.mbm == nil {
		return nil
	}
	for off := range t.mbm.dirty {
		if err := stageRuns(t.o, t.g, t.mbm.runs, off, t.mbm.bits[off:off+1]); err != nil {
			return fmt.Errorf("ntfs: writing $MFT:$Bitmap: %w", err)
		}
	}
	t.mbm.dirty = map[int64]bool{}
	return nil
}
