package ntfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
)

// Well-known MFT records used by the writer (the first 16 records are the
// file system's own metadata files).
const (
	mftRecMFT     = 0
	mftRecMFTMirr = 1
	mftRecLogFile = 2
	mftRecVolume  = 3
	mftRecBitmap  = 6
	mftRecBoot    = 7 // $Boot: the boot sectors
	mftRecBadClus = 8 // $BadClus: its $Bad stream maps every bad cluster
	mftRecRoot    = 5
	mftRecUpCase  = 10
)

// Range is a byte range of the volume: what an operation will change.
type Range struct {
	Off int64
	Len int64
}

// physSpan is a piece of a logical byte range mapped onto the volume.
type physSpan struct {
	off int64 // volume byte offset
	n   int64
}

// geometry is what every structure read needs to find bytes on the volume.
type geometry struct {
	boot      *BootSector
	size      int64 // volume size in bytes
	cluster   int64
	recSize   int64
	mftRuns   []Run
	mftBytes  int64 // $MFT data size
	mirrRuns  []Run
	mirrCount uint64 // records mirrored in $MFTMirr
}

// spans maps the logical byte range [off, off+n) of a non-resident
// attribute with the given runs onto volume offsets. Holes and ranges past
// the runs are errors: the writer never reads or writes through them.
func (g *geometry) spans(runs []Run, off, n int64) ([]physSpan, error) {
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("negative range %d+%d", off, n)
	}
	var out []physSpan
	for n > 0 {
		vcn := off / g.cluster
		lcn, cont, ok := vcnToLCN(runs, vcn)
		if !ok {
			return nil, fmt.Errorf("byte 0x%x (VCN %d) is not allocated", off, vcn)
		}
		in := off % g.cluster
		avail := cont*g.cluster - in
		take := min(avail, n)
		p := lcn*g.cluster + in
		if p+take > g.size {
			return nil, fmt.Errorf("byte 0x%x maps to 0x%x, past the volume end 0x%x", off, p, g.size)
		}
		if k := len(out); k > 0 && out[k-1].off+out[k-1].n == p {
			out[k-1].n += take
		} else {
			out = append(out, physSpan{p, take})
		}
		off += take
		n -= take
	}
	return out, nil
}

// readRuns reads len(buf) bytes at logical offset off through runs.
func readRuns(r io.ReaderAt, g *geometry, runs []Run, off int64, buf []byte) error {
	sp, err := g.spans(runs, off, int64(len(buf)))
	if err != nil {
		return err
	}
	pos := 0
	for _, s := range sp {
		if _, err := r.ReadAt(buf[pos:pos+int(s.n)], s.off); err != nil {
			return fmt.Errorf("reading 0x%x: %w", s.off, err)
		}
		pos += int(s.n)
	}
	return nil
}

// loadGeometry reads the boot sector and $MFT's own record to learn where
// every MFT record lives (formats.md: compute offsets from $MFT's run list).
func loadGeometry(r io.ReaderAt, size int64) (*geometry, error) {
	bs, err := ReadBootSector(r)
	if err != nil {
		return nil, err
	}
	g := &geometry{boot: bs, size: size, cluster: int64(bs.ClusterSize), recSize: int64(bs.RecordSize)}
	if vs := bs.VolumeSize(); vs < size {
		g.size = vs
	}
	buf := make([]byte, g.recSize)
	at := int64(bs.MFTCluster) * g.cluster
	if _, err := r.ReadAt(buf, at); err != nil {
		return nil, fmt.Errorf("ntfs: reading $MFT record 0 at 0x%x: %w", at, err)
	}
	if err := applyFixups(buf); err != nil {
		return nil, fmt.Errorf("ntfs: $MFT record 0 at 0x%x: %w", at, err)
	}
	rec, err := ParseRecord(0, buf)
	if err != nil {
		return nil, err
	}
	if _, ok, _ := rec.FindAttr(AttrAttributeList, ""); ok {
		return nil, ErrMFTAttrList
	}
	a, ok, err := rec.FindAttr(AttrData, "")
	if err != nil || !ok || !a.NonResident {
		return nil, fmt.Errorf("ntfs: $MFT record 0 has no non-resident $DATA (%v)", err)
	}
	if g.mftRuns, err = a.Runs(); err != nil {
		return nil, mftRunsRefused("$MFT (MFT record 0)", fmt.Sprintf("its run list cannot be decoded: %v", err))
	}
	if err := g.runsInside(g.mftRuns); err != nil {
		return nil, mftRunsRefused("$MFT (MFT record 0)", err.Error())
	}
	g.mftBytes = a.DataSize()
	if g.mftBytes > g.size {
		return nil, mftRunsRefused("$MFT (MFT record 0)", fmt.Sprintf("its data size %d exceeds the volume's %d bytes", g.mftBytes, g.size))
	}
	if runsClusters(g.mftRuns)*g.cluster < g.mftBytes || g.mftBytes < 16*g.recSize {
		return nil, mftRunsRefused("$MFT (MFT record 0)", fmt.Sprintf("its runs cover %d clusters for %d bytes", runsClusters(g.mftRuns), g.mftBytes))
	}
	mirr, err := g.readRecord(r, mftRecMFTMirr)
	if err != nil {
		return nil, err
	}
	if a, ok, err := mirr.FindAttr(AttrData, ""); err == nil && ok && a.NonResident {
		if g.mirrRuns, err = a.Runs(); err != nil {
			return nil, mftRunsRefused("$MFTMirr (MFT record 1)", fmt.Sprintf("its run list cannot be decoded: %v", err))
		}
		if err := g.runsInside(g.mirrRuns); err != nil {
			return nil, mftRunsRefused("$MFTMirr (MFT record 1)", err.Error())
		}
		g.mirrCount = uint64(a.DataSize() / g.recSize)
		if c := uint64(runsClusters(g.mirrRuns) * g.cluster / g.recSize); c < g.mirrCount {
			g.mirrCount = c
		}
	}
	return g, nil
}

// ErrMFTAttrList is returned when $MFT describes itself through an $ATTRIBUTE_LIST. That
// is not damage (a heavily fragmented MFT), but the writer cannot follow it.
var ErrMFTAttrList = errors.New("ntfs: $MFT has an $ATTRIBUTE_LIST (heavily fragmented MFT); the writer does not support it")

// runsInside checks that runs have no holes and lie inside the volume:
// what $MFT and $MFTMirr need to be readable at all.
func (g *geometry) runsInside(runs []Run) error {
	total := int64(g.boot.TotalClusters())
	for _, r := range runs {
		if r.Sparse {
			return fmt.Errorf("its run list has a hole of %d clusters", r.Length)
		}
		if r.LCN+r.Length > total || r.LCN+r.Length < r.LCN {
			return fmt.Errorf("its run at cluster %d (+%d) lies outside the volume's %d clusters", r.LCN, r.Length, total)
		}
	}
	return nil
}

func mftRunsRefused(structure, reason string) *RefusedError {
	return &RefusedError{Refusals: []Refusal{{ID: RefusalMFTRunList, Structure: structure,
		Reason: structure + ": " + reason, Advice: adviceChkdsk}}}
}

// metadataRefusals checks the invariants ntfs-3g checks before it mounts a
// volume at all: $MFT's run list decodes and lies inside the volume, and
// $MFTMirr holds the same first records as $MFT. The NTFS version is
// checked with $Volume (checkVolumeInfo).
func metadataRefusals(r io.ReaderAt, size int64) []Refusal {
	g, err := loadGeometry(r, size)
	if err != nil {
		var re *RefusedError
		if errors.As(err, &re) {
			return re.Refusals
		}
		if errors.Is(err, ErrMFTAttrList) {
			// Not damage: the read side still works; the writer says why
			// it cannot write when it is opened.
			return nil
		}
		return []Refusal{{ID: RefusalUnreadable, Structure: "$MFT (MFT record 0)", Reason: err.Error(), Advice: adviceChkdsk}}
	}
	if ref := g.mirrorRefusal(r); ref != nil {
		return []Refusal{*ref}
	}
	return nil
}

// mirrorSize is how many records ntfs-3g compares between $MFT and
// $MFTMirr: four, or a whole cluster's worth when a cluster holds more
// (ntfs-3g bootsect.c), and never more than $MFTMirr holds.
func (g *geometry) mirrorSize() uint64 {
	n := uint64(4)
	if g.cluster > 4*g.recSize {
		n = uint64(g.cluster / g.recSize)
	}
	return min(n, g.mirrCount)
}

// mirrorRefusal compares $MFTMirr with $MFT the way ntfs-3g does at mount
// (volume.c, ntfs_device_mount): for each mirrored record, a copy marked in
// use must carry FILE and intact fixups, and the bytes in use of the $MFT
// copy (after fixups) must equal the mirror's.
func (g *geometry) mirrorRefusal(r io.ReaderAt) *Refusal {
	refuse := func(structure, reason string) *Refusal {
		return &Refusal{ID: RefusalMFTMirr, Structure: structure, Reason: reason, Advice: adviceChkdsk}
	}
	if g.mirrCount == 0 {
		return refuse("$MFTMirr (MFT record 1)", "$MFTMirr holds no copy of $MFT's first records")
	}
	read := func(runs []Run, i uint64) ([]byte, bool, error) {
		b := make([]byte, g.recSize)
		if err := readRuns(r, g, runs, int64(i)*g.recSize, b); err != nil {
			return nil, false, err
		}
		torn := applyFixups(b) != nil
		return b, torn, nil
	}
	for i := uint64(0); i < g.mirrorSize(); i++ {
		m, mTorn, err := read(g.mftRuns, i)
		if err != nil {
			return refuse("$MFT", fmt.Sprintf("$MFT record %d cannot be read: %v", i, err))
		}
		mm, mmTorn, err := read(g.mirrRuns, i)
		if err != nil {
			return refuse("$MFTMirr (MFT record 1)", fmt.Sprintf("$MFTMirr copy of record %d cannot be read: %v", i, err))
		}
		for _, c := range []struct {
			where string
			b     []byte
			torn  bool
		}{{"$MFT", m, mTorn}, {"$MFTMirr", mm, mmTorn}} {
			if le16(c.b[recFlags:])&RecordInUse == 0 {
				continue
			}
			if c.torn || string(c.b[:4]) != "FILE" {
				return refuse(c.where, fmt.Sprintf("%s copy of record %d is marked in use but is torn or not a FILE record", c.where, i))
			}
		}
		used := 0
		if string(m[:4]) == "FILE" && !mTorn {
			used = int(le32(m[recUsed:]))
		}
		if used > len(m) || !bytes.Equal(m[:used], mm[:used]) {
			return refuse("$MFTMirr (MFT record 1)", fmt.Sprintf("$MFTMirr does not match $MFT (record %d)", i))
		}
	}
	return nil
}

// records is the number of MFT records $MFT holds.
func (g *geometry) records() uint64 { return uint64(g.mftBytes / g.recSize) }

// readRecord reads and fixes up MFT record num.
func (g *geometry) readRecord(r io.ReaderAt, num uint64) (*Record, error) {
	if num >= g.records() {
		return nil, fmt.Errorf("ntfs: MFT record %d: beyond the %d records of $MFT", num, g.records())
	}
	buf := make([]byte, g.recSize)
	if err := readRuns(r, g, g.mftRuns, int64(num)*g.recSize, buf); err != nil {
		return nil, fmt.Errorf("ntfs: MFT record %d: %w", num, err)
	}
	if err := applyFixups(buf); err != nil {
		return nil, fmt.Errorf("ntfs: MFT record %d: %w", num, err)
	}
	return ParseRecord(num, buf)
}

// overlay holds staged writes on top of the device: reads see them, the
// device does not until commit. It is how every operation can report the
// exact ranges it will write before writing any.
type overlay struct {
	r      io.ReaderAt
	writes []physWrite
}

type physWrite struct {
	off  int64
	data []byte
}

// ReadAt reads from the device and patches in staged writes, oldest first.
func (o *overlay) ReadAt(p []byte, off int64) (int, error) {
	n, err := o.r.ReadAt(p, off)
	if err != nil && !(errors.Is(err, io.EOF) && n == len(p)) {
		return n, err
	}
	end := off + int64(len(p))
	for _, w := range o.writes {
		we := w.off + int64(len(w.data))
		if we <= off || w.off >= end {
			continue
		}
		lo, hi := max(off, w.off), min(end, we)
		copy(p[lo-off:hi-off], w.data[lo-w.off:hi-w.off])
	}
	return len(p), nil
}

// stage records a write, replacing an earlier one of the same range.
func (o *overlay) stage(off int64, data []byte) {
	d := append([]byte(nil), data...)
	// A rewrite of the same range replaces the earlier one and moves to
	// the end: writes are applied (and committed) in staging order, so
	// the last write of any byte wins.
	for i := range o.writes {
		if o.writes[i].off == off && len(o.writes[i].data) == len(d) {
			o.writes = append(o.writes[:i], o.writes[i+1:]...)
			break
		}
	}
	o.writes = append(o.writes, physWrite{off, d})
}

// ranges returns the staged writes as sorted, merged byte ranges.
func (o *overlay) ranges() []Range {
	rs := make([]Range, 0, len(o.writes))
	for _, w := range o.writes {
		rs = append(rs, Range{w.off, int64(len(w.data))})
	}
	return mergeRanges(rs)
}

func mergeRanges(rs []Range) []Range {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Off < rs[j].Off })
	var out []Range
	for _, r := range rs {
		if k := len(out); k > 0 && out[k-1].Off+out[k-1].Len >= r.Off {
			if e := r.Off + r.Len; e > out[k-1].Off+out[k-1].Len {
				out[k-1].Len = e - out[k-1].Off
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// writeRecordTo protects a copy of rec with fixups (incrementing the update
// sequence number) and stages it at its place in $MFT, and in $MFTMirr for
// the mirrored records 0-3.
func (g *geometry) writeRecordTo(o *overlay, rec *Record) error {
	if err := rec.validate(); err != nil {
		return fmt.Errorf("ntfs: MFT record %d would be invalid: %w", rec.Num, err)
	}
	buf := append([]byte(nil), rec.Data...)
	if err := protectFixups(buf); err != nil {
		return fmt.Errorf("ntfs: MFT record %d: %w", rec.Num, err)
	}
	// The in-memory copy keeps the new sequence number so a second write
	// in the same operation increments again from there.
	copy(rec.Data[le16(rec.Data[4:]):], buf[le16(buf[4:]):le16(buf[4:])+2])
	if err := stageRuns(o, g, g.mftRuns, int64(rec.Num)*g.recSize, buf); err != nil {
		return fmt.Errorf("ntfs: MFT record %d: %w", rec.Num, err)
	}
	if rec.Num < g.mirrCount {
		if err := stageRuns(o, g, g.mirrRuns, int64(rec.Num)*g.recSize, buf); err != nil {
			return fmt.Errorf("ntfs: $MFTMirr copy of record %d: %w", rec.Num, err)
		}
	}
	return nil
}

// stageRuns stages buf at logical offset off of an attribute with runs.
func stageRuns(o *overlay, g *geometry, runs []Run, off int64, buf []byte) error {
	sp, err := g.spans(runs, off, int64(len(buf)))
	if err != nil {
		return err
	}
	pos := 0
	for _, s := range sp {
		o.stage(s.off, buf[pos:pos+int(s.n)])
		pos += int(s.n)
	}
	return nil
}

// readAttrData reads a whole attribute value, resident or not, refusing
// values larger than limit (callers bound it by what the structure can be).
func readAttrData(r io.ReaderAt, g *geometry, a Attr, limit int64) ([]byte, error) {
	if !a.NonResident {
		return append([]byte(nil), a.Value()...), nil
	}
	if a.Flags&(AttrFlagCompressed|AttrFlagEncrypted) != 0 {
		return nil, fmt.Errorf("attribute 0x%x is compressed or encrypted", a.Type)
	}
	n := a.DataSize()
	if n < 0 || n > limit || n > g.size {
		return nil, fmt.Errorf("attribute 0x%x: data size %d out of range", a.Type, n)
	}
	runs, err := a.Runs()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	init := min(a.InitSize(), n)
	if init > 0 {
		if err := readRuns(r, g, runs, 0, buf[:init]); err != nil {
			return nil, err
		}
	}
	return buf, nil
}
