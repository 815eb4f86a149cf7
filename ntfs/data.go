package ntfs

import (
	"errors"
	"fmt"
	"io"
	"sort"

	ftime "github.com/wuoffline/wuoffline/internal/filetime"
)

// DataFile edits the unnamed $DATA of one file in place: overwrite bytes,
// grow or shrink. Changes are staged: ReadAt sees them, Plan lists the
// byte ranges they will write, Commit writes them through the Writer's
// io.WriterAt and checks the parent directory. Resident data that no
// longer fits in the record becomes non-resident; growth beyond the
// allocated clusters takes clusters from $Bitmap next to the file's last
// ones. Data whose run list spans extension records (an $ATTRIBUTE_LIST)
// is mapped across every extent; a run list that outgrows its record
// continues in new extension records. Compressed and encrypted files, and writes into sparse holes, are
// refused. The sizes in the record's $FILE_NAME attributes and in the
// parent's index entries follow the $DATA sizes.
type DataFile struct {
	w    *Writer
	path string
	num  uint64
	t    *tx
	done bool
	// pages caches non-resident data written or read since the last
	// commit, in dataPageSize pieces of the file, with the dirty part of
	// each: many small writes (a hive editor's) stay cheap, and only the
	// bytes written are staged.
	pages map[int64]*dataPage
	// nr maps every extent of non-resident data (nil until needed, or
	// when the data is resident).
	nr *nrAttr
}

// dataView is the staged $DATA: the record and attribute of its first
// extent (the sizes, or the resident value) and, when non-resident, every
// extent's runs.
type dataView struct {
	rec *Record
	a   Attr
	nr  *nrAttr
}

func (v dataView) runs() []Run { return v.nr.runs }

// view locates the data, following the $ATTRIBUTE_LIST into extension
// records when the file has one.
func (f *DataFile) view() (dataView, error) {
	base, err := f.t.record(f.num)
	if err != nil {
		return dataView{}, err
	}
	rec, a, n, err := f.t.findAttrAny(base, AttrData, "")
	if err != nil {
		return dataView{}, fmt.Errorf("ntfs: %q: %w", f.path, err)
	}
	if n == 0 || rec == nil {
		return dataView{}, fmt.Errorf("ntfs: %q has no unnamed $DATA", f.path)
	}
	if !a.NonResident {
		if n > 1 {
			return dataView{}, fmt.Errorf("ntfs: %q: resident $DATA listed %d times", f.path, n)
		}
		return dataView{rec: rec, a: a}, nil
	}
	if f.nr == nil {
		nr, ok, err := f.t.loadNR(base, AttrData, "")
		if err != nil {
			return dataView{}, fmt.Errorf("ntfs: %q: %w", f.path, err)
		}
		if !ok {
			return dataView{}, fmt.Errorf("ntfs: %q has no unnamed $DATA", f.path)
		}
		f.nr = nr
	}
	rec, a, err = f.nr.first()
	if err != nil {
		return dataView{}, fmt.Errorf("ntfs: %q: %w", f.path, err)
	}
	return dataView{rec: rec, a: a, nr: f.nr}, nil
}

const dataPageSize = 4096

type dataPage struct {
	buf    []byte
	lo, hi int // dirty bytes [lo, hi)
}

// ErrUnsupportedData is returned for data the writer will not edit in
// place (compressed, encrypted, sparse holes, resident data in an extension
// record that outgrows it).
var ErrUnsupportedData = errors.New("ntfs: data layout not supported for in-place writes")

// OpenData opens the unnamed $DATA of the file at path for editing.
func (w *Writer) OpenData(path string) (*DataFile, error) {
	f := &DataFile{w: w, path: path}
	if err := f.reset(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *DataFile) reset() error {
	t := f.w.begin()
	nums, err := t.resolve(f.path)
	if err != nil {
		return t.pathDamage(f.path, err)
	}
	f.num, f.t, f.done, f.nr = nums[len(nums)-1], t, false, nil
	f.pages = map[int64]*dataPage{}
	rec, err := t.record(f.num)
	if err != nil {
		return err
	}
	// Preflight (claims.go): the file's clusters must agree with $Bitmap
	// and with every other record read before anything is planned.
	if err := t.soundClusters(); err != nil {
		return fmt.Errorf("ntfs: %q: %w", f.path, err)
	}
	if rec.IsDir() {
		return fmt.Errorf("ntfs: %q is a directory", f.path)
	}
	// A size change rewrites the sizes copied into every parent's index
	// entry: check those indexes now, before anything is staged, so the
	// check never reads a half-staged file (an attribute list whose
	// clusters are written but whose record is not yet).
	if err := f.soundParents(rec); err != nil {
		return err
	}
	if f.num < 24 {
		return fmt.Errorf("ntfs: %q is a file system metadata file", f.path)
	}
	v, err := f.view()
	if err != nil {
		return err
	}
	if a := v.a; a.Flags&(AttrFlagCompressed|AttrFlagEncrypted) != 0 {
		return fmt.Errorf("ntfs: %q: $DATA is compressed or encrypted: %w", f.path, ErrUnsupportedData)
	}
	return nil
}

// Size is the current (staged) data size.
func (f *DataFile) Size() (int64, error) {
	v, err := f.view()
	if err != nil {
		return 0, err
	}
	return v.a.Size(), nil
}

// ReadAt reads the staged data.
func (f *DataFile) ReadAt(p []byte, off int64) (int, error) {
	v, err := f.view()
	if err != nil {
		return 0, err
	}
	a := v.a
	size := a.Size()
	if off < 0 {
		return 0, fmt.Errorf("ntfs: %q: negative offset", f.path)
	}
	if off >= size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), size-off))
	if !a.NonResident {
		copy(p, a.Value()[off:])
	} else {
		for done := 0; done < n; {
			pos := off + int64(done)
			idx, in := pos/dataPageSize, int(pos%dataPageSize)
			k := min(n-done, dataPageSize-in)
			if pg := f.pages[idx]; pg != nil {
				copy(p[done:done+k], pg.buf[in:])
			} else if err := f.readDevice(v, pos, p[done:done+k]); err != nil {
				return 0, err
			}
			done += k
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readDevice reads data as the device (with staged writes) holds it:
// bytes past the initialized size read as zero.
func (f *DataFile) readDevice(v dataView, off int64, p []byte) error {
	clear(p)
	init := v.a.InitSize()
	if off >= init {
		return nil
	}
	if err := readRunsHoles(f.t.o, f.t.g, v.runs(), off, p[:min(int64(len(p)), init-off)]); err != nil {
		return fmt.Errorf("ntfs: %q: %w", f.path, err)
	}
	return nil
}

// writePages copies p (or n zeros when p is nil) into the page cache at
// off, marking the bytes dirty.
func (f *DataFile) writePages(v dataView, off int64, p []byte, n int64) error {
	if p != nil {
		n = int64(len(p))
	}
	for done := int64(0); done < n; {
		pos := off + done
		idx, in := pos/dataPageSize, int(pos%dataPageSize)
		k := int(min(n-done, int64(dataPageSize-in)))
		pg := f.pages[idx]
		if pg == nil {
			pg = &dataPage{buf: make([]byte, dataPageSize)}
			if err := f.readDevice(v, idx*dataPageSize, pg.buf); err != nil {
				return err
			}
			f.pages[idx] = pg
		}
		if p != nil {
			copy(pg.buf[in:in+k], p[done:])
		} else {
			clear(pg.buf[in : in+k])
		}
		if pg.hi == pg.lo {
			pg.lo, pg.hi = in, in+k
		} else {
			pg.lo, pg.hi = min(pg.lo, in), max(pg.hi, in+k)
		}
		done += int64(k)
	}
	return nil
}

// flushPages stages the dirty bytes of every cached page.
func (f *DataFile) flushPages() error {
	if len(f.pages) == 0 {
		return nil
	}
	v, err := f.view()
	if err != nil {
		return err
	}
	if v.nr == nil {
		return nil
	}
	runs := v.runs()
	idxs := make([]int64, 0, len(f.pages))
	for i, pg := range f.pages {
		if pg.hi > pg.lo {
			idxs = append(idxs, i)
		}
	}
	sort.Slice(idxs, func(i, j int) bool { return idxs[i] < idxs[j] })
	for _, i := range idxs {
		pg := f.pages[i]
		if err := f.stage(runs, i*dataPageSize+int64(pg.lo), pg.buf[pg.lo:pg.hi]); err != nil {
			return err
		}
		pg.lo, pg.hi = 0, 0
	}
	return nil
}

// clipPages forgets cached bytes at and past size.
func (f *DataFile) clipPages(size int64) {
	for i, pg := range f.pages {
		start := i * dataPageSize
		switch {
		case start >= size:
			delete(f.pages, i)
		case start+dataPageSize > size:
			cut := int(size - start)
			clear(pg.buf[cut:])
			pg.hi = min(pg.hi, cut)
			pg.lo = min(pg.lo, pg.hi)
		}
	}
}

// readRunsHoles reads like readRuns but returns zeros for sparse runs.
func readRunsHoles(r io.ReaderAt, g *geometry, runs []Run, off int64, buf []byte) error {
	for len(buf) > 0 {
		vcn := off / g.cluster
		lcn, cont, ok := vcnToLCN(runs, vcn)
		in := off % g.cluster
		n := min(int64(len(buf)), cont*g.cluster-in)
		if cont == 0 {
			return fmt.Errorf("byte 0x%x beyond the run list", off)
		}
		if ok {
			if _, err := r.ReadAt(buf[:n], lcn*g.cluster+in); err != nil {
				return err
			}
		} else {
			clear(buf[:n])
		}
		buf, off = buf[n:], off+n
	}
	return nil
}

// WriteAt stages p at off, growing the file when it ends past the size.
func (f *DataFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > 1<<48 {
		return 0, fmt.Errorf("ntfs: %q: write at %d+%d out of range", f.path, off, len(p))
	}
	size, err := f.Size()
	if err != nil {
		return 0, err
	}
	if end := off + int64(len(p)); end > size {
		if err := f.Truncate(end); err != nil {
			return 0, err
		}
	}
	v, err := f.view()
	if err != nil {
		return 0, err
	}
	base, err := f.t.record(f.num)
	if err != nil {
		return 0, err
	}
	a := v.a
	if !a.NonResident {
		copy(a.Value()[off:], p)
		f.t.dirty(v.rec)
		return len(p), f.touchTimes(base)
	}
	runs := v.runs()
	init := a.InitSize()
	// Refuse holes before changing anything.
	from := min(off, init)
	if _, err := f.t.g.spans(runs, from, off+int64(len(p))-from); err != nil {
		return 0, fmt.Errorf("ntfs: %q: %w (sparse hole?): %w", f.path, err, ErrUnsupportedData)
	}
	if off > init {
		// Bytes between the initialized size and the write read as zero
		// but hold anything on disk: write the zeros.
		if err := f.writePages(v, init, nil, off-init); err != nil {
			return 0, err
		}
	}
	if err := f.writePages(v, off, p, 0); err != nil {
		return 0, err
	}
	if end := off + int64(len(p)); end > init {
		v.rec.SetSizes(a, a.AllocSize(), a.DataSize(), end)
	}
	f.t.dirty(v.rec)
	return len(p), f.touchTimes(base)
}

func (f *DataFile) stage(runs []Run, off int64, p []byte) error {
	for len(p) > 0 {
		n := min(int64(len(p)), 1<<20)
		if err := stageRuns(f.t.o, f.t.g, runs, off, p[:n]); err != nil {
			return fmt.Errorf("ntfs: %q: %w (sparse hole?): %w", f.path, err, ErrUnsupportedData)
		}
		p, off = p[n:], off+n
	}
	return nil
}

// Truncate changes the size. Growing fills with zeros (non-resident data
// only moves its data size: bytes past the initialized size read as zero);
// shrinking frees the clusters past the new end.
func (f *DataFile) Truncate(size int64) error {
	if size < 0 || size > 1<<48 {
		return fmt.Errorf("ntfs: %q: size %d out of range", f.path, size)
	}
	rec, err := f.t.record(f.num)
	if err != nil {
		return err
	}
	v, err := f.view()
	if err != nil {
		return err
	}
	a := v.a
	if !a.NonResident {
		old := append([]byte(nil), a.Value()...)
		nv := make([]byte, size)
		copy(nv, old)
		if err := v.rec.SetResidentValue(a, nv); err == nil {
			f.t.dirty(v.rec)
			return f.sizesChanged(rec)
		} else if !errors.Is(err, ErrNeedsAttributeList) {
			return err
		}
		if v.rec != rec {
			return fmt.Errorf("ntfs: %q: resident $DATA in extension record %d outgrows it: %w", f.path, v.rec.Num, ErrUnsupportedData)
		}
		// Too big for the record: move the data to clusters.
		if err = f.makeNonResident(rec, a, old); err != nil {
			return err
		}
		if v, err = f.view(); err != nil {
			return err
		}
		a = v.a
	}
	cl := f.t.g.cluster
	runs := append([]Run(nil), v.runs()...)
	if a.Flags&AttrFlagSparse != 0 {
		return fmt.Errorf("ntfs: %q: resizing sparse data: %w", f.path, ErrUnsupportedData)
	}
	need := (size + cl - 1) / cl
	have := runsClusters(runs)
	alloc := a.AllocSize()
	switch {
	case need > have:
		near := int64(0)
		if k := len(runs); k > 0 {
			near = runs[k-1].LCN + runs[k-1].Length
		}
		got, err := f.t.allocClusters(need-have, near)
		if err != nil {
			return fmt.Errorf("ntfs: %q: %w", f.path, err)
		}
		for _, r := range got {
			runs = appendRun(runs, r.LCN, r.Length)
		}
		if err := v.nr.setRuns(runs); err != nil {
			f.t.freeClusters(got)
			return fmt.Errorf("ntfs: %q: %w", f.path, err)
		}
		alloc = need * cl
	case need < have:
		var keep, drop []Run
		left := need
		for _, r := range runs {
			switch {
			case left >= r.Length:
				keep = append(keep, r)
				left -= r.Length
			case left > 0:
				keep = append(keep, Run{LCN: r.LCN, Length: left})
				drop = append(drop, Run{LCN: r.LCN + left, Length: r.Length - left})
				left = 0
			default:
				drop = append(drop, r)
			}
		}
		if err := v.nr.setRuns(keep); err != nil {
			return fmt.Errorf("ntfs: %q: %w", f.path, err)
		}
		if err := f.t.freeClusters(drop); err != nil {
			return err
		}
		alloc = need * cl
	}
	if v, err = f.view(); err != nil {
		return err
	}
	init := min(v.a.InitSize(), size)
	f.clipPages(size)
	if err := v.nr.setSizes(alloc, size, init); err != nil {
		return err
	}
	return f.sizesChanged(rec)
}

// makeNonResident replaces resident data by a non-resident attribute
// holding the same bytes in newly allocated clusters.
func (f *DataFile) makeNonResident(rec *Record, a Attr, data []byte) error {
	cl := f.t.g.cluster
	n := max(1, (int64(len(data))+cl-1)/cl)
	runs, err := f.t.allocClusters(n, 0)
	if err != nil {
		return fmt.Errorf("ntfs: %q: %w", f.path, err)
	}
	buf := make([]byte, n*cl)
	copy(buf, data)
	if err := f.stage(runs, 0, buf); err != nil {
		return err
	}
	if err := rec.RemoveAttr(a.Off); err != nil {
		return err
	}
	if _, err := rec.InsertNonResident(AttrData, "", runs, n*cl, int64(len(data)), int64(len(data))); err != nil {
		return fmt.Errorf("ntfs: %q: %w", f.path, err)
	}
	f.t.dirty(rec)
	f.nr = nil
	if _, ok, _ := rec.FindAttr(AttrAttributeList, ""); ok {
		na, _, err := rec.FindAttr(AttrData, "")
		if err != nil {
			return err
		}
		return f.t.syncAttrList(rec, map[alKey]bool{{rec.Num, a.ID}: true}, []Attr{na})
	}
	return nil
}

// touchTimes sets the modification and MFT change times.
func (f *DataFile) touchTimes(rec *Record) error {
	f.t.setChangeTime(rec, ftime.FromTime(f.w.now()), true)
	return nil
}

// soundParents checks the index of every directory that names the file
// (tx.soundIndex, once per directory and transaction).
func (f *DataFile) soundParents(rec *Record) error {
	recs, err := f.t.fileRecords(rec)
	if err != nil {
		return err
	}
	for _, fr := range recs {
		fns, err := fr.fileNames()
		if err != nil {
			return err
		}
		for _, fn := range fns {
			if err := f.t.soundIndex(RefNum(fn.parent)); err != nil {
				return fmt.Errorf("ntfs: %q: %w", f.path, err)
			}
		}
	}
	return nil
}

// sizesChanged brings the duplicated sizes (and times) in the record's
// $FILE_NAME attributes and the parents' index entries up to date.
func (f *DataFile) sizesChanged(rec *Record) error {
	if err := f.touchTimes(rec); err != nil {
		return err
	}
	recs, err := f.t.fileRecords(rec)
	if err != nil {
		return err
	}
	now := ftime.FromTime(f.w.now())
	for _, fr := range recs {
		fns, err := fr.fileNames()
		if err != nil {
			return err
		}
		for _, fn := range fns {
			nv := f.t.refreshDupInfo(rec, fn.raw, now)
			as, err := fr.Attrs()
			if err != nil {
				return err
			}
			for _, a := range as {
				if a.Off == fn.off {
					copy(a.Value()[:fnMinLen], nv[:fnMinLen])
				}
			}
			f.t.dirty(fr)
			tr, err := f.t.tree(RefNum(fn.parent))
			if err != nil {
				return err
			}
			// The entry's copy of the sizes is about to change: the
			// parent's index must check clean first (check.go, soundIndex).
			if err := f.t.soundIndex(tr.dir); err != nil {
				return fmt.Errorf("ntfs: %q: %w", f.path, err)
			}
			p, ok, err := tr.descend(fn.name, f.t.up.Compare)
			if err != nil {
				return f.t.indexDamage(tr.dir, err)
			}
			if !ok {
				return fmt.Errorf("ntfs: %q: name %q not in its parent's index", f.path, string16(fn.name))
			}
			s := p[len(p)-1]
			e := s.n.entries[s.i]
			if RefNum(e.ref) == rec.Num {
				copy(e.key[8:fnMinLen], nv[8:fnMinLen])
				s.n.dirty = true
			}
		}
	}
	f.t.dirty(rec)
	return nil
}

// Plan returns the byte ranges the staged changes will write.
func (f *DataFile) Plan() ([]Range, error) {
	if err := f.flushPages(); err != nil {
		return nil, err
	}
	if err := f.t.flush(); err != nil {
		return nil, err
	}
	return f.t.o.ranges(), nil
}

// Commit writes the staged changes, re-reads and checks the parent
// directories, and starts a new set of changes. It returns what it wrote.
func (f *DataFile) Commit() ([]Range, error) {
	if err := f.flushPages(); err != nil {
		return nil, err
	}
	if err := f.t.flush(); err != nil {
		return nil, err
	}
	rs := f.t.o.ranges()
	if len(rs) == 0 {
		return nil, nil
	}
	if err := f.w.commit(f.t); err != nil {
		return rs, err
	}
	return rs, f.reset()
}

// Discard drops the staged changes.
func (f *DataFile) Discard() error { return f.reset() }
