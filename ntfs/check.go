package ntfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// CheckOptions selects what Check verifies.
type CheckOptions struct {
	// Dirs are directories by MFT record number.
	Dirs []uint64
	// Paths are directories by path from the volume root (`\` or `/`).
	Paths []string
	// Ranges are volume byte ranges a change wrote (a plan's, a journal's):
	// every directory whose record they touch (DirsTouchedBy) is checked
	// where they touch it. A directory whose index allocation is at most
	// wholeIndexCheck is checked whole; in a larger one the $INDEX_ROOT and
	// each INDX block the ranges overlap are checked completely (see
	// checker.nodes), the rest of the index is not read.
	Ranges []Range
	// All checks every directory of the volume, every $FILE_NAME against
	// its parent's index, and cluster ownership of every file against
	// $Bitmap.
	All bool
}

// wholeIndexCheck is the largest index allocation (bytes of INDX blocks)
// that a change, or a check of what a change wrote, examines whole. A
// directory with more is examined at the nodes the change edits, each
// completely: every entry's back-link costs a read of the record it names,
// and the WinSxS of an old installation names 10,000-100,000 files (tens
// of MiB of records) where a rename edits two or three blocks. 256 KiB is
// 64 blocks of 4 KiB: \Windows, System32\config and the other folders the
// catalogue renames in are checked whole on real installations.
const wholeIndexCheck = 256 << 10

// Problem is one inconsistency found by Check.
type Problem struct {
	Record uint64 // the directory or file concerned
	What   string
}

func (p Problem) String() string { return fmt.Sprintf("record %d: %s", p.Record, p.What) }

// CheckReport is what Check found.
type CheckReport struct {
	Dirs     int // directories checked
	Entries  int // index entries checked
	Records  int // file records checked
	Problems []Problem
}

// Check verifies directories of the volume read through r, with the
// project's own parsers: index order under the volume's $UpCase, node flags
// and child VCNs, END entries, the index $BITMAP (every block in use is
// reachable exactly once, every reachable block is in use), every entry
// matching a $FILE_NAME of the record it points to (sequence number
// included) and every $FILE_NAME in the directory having its entry, link
// counts, the clusters of each index against $Bitmap (with All: of every
// file, and no cluster owned twice), and the fixups of every record and
// block read. A damaged structure is a Problem; an error means the check
// itself could not run.
func Check(r io.ReaderAt, size int64, opts CheckOptions) (*CheckReport, error) {
	w, err := newWriter(r, nil, size, WriterOptions{})
	if err != nil {
		return nil, err
	}
	return w.Check(opts)
}

// Check runs Check on the writer's device (no caches: everything is read
// again).
func (w *Writer) Check(opts CheckOptions) (*CheckReport, error) {
	g, err := loadGeometry(w.r, w.size)
	if err != nil {
		return nil, err
	}
	c := newChecker(w, g)
	dirs := append([]uint64(nil), opts.Dirs...)
	for _, p := range opts.Paths {
		nums, err := c.t.resolve(p)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, nums[len(nums)-1])
	}
	if opts.All {
		return c.all()
	}
	if len(opts.Ranges) > 0 {
		if err := c.ranges(opts.Ranges); err != nil {
			return nil, err
		}
		if len(dirs) == 0 {
			return c.rep, nil
		}
	}
	if len(dirs) == 0 {
		dirs = []uint64{mftRecRoot}
	}
	seen := map[uint64]bool{}
	for _, d := range dirs {
		if seen[d] {
			continue
		}
		seen[d] = true
		c.dir(d, nil)
	}
	return c.rep, nil
}

// newChecker checks the writer's device as it is (no staged writes).
func newChecker(w *Writer, g *geometry) *checker {
	return &checker{t: &tx{w: w, g: g, up: w.up, o: &overlay{r: w.r}, recs: map[uint64]*Record{}, dirtyR: map[uint64]bool{}, trees: map[uint64]*ixTree{}}, rep: &CheckReport{}, seenRec: map[uint64]bool{}}
}

type checker struct {
	t       *tx
	rep     *CheckReport
	seenRec map[uint64]bool
	cbm     *clusterBitmap
	win     mftWindow
}

// The MFT read-ahead of a check: a directory's back-links need the record
// of every entry, and in a directory whose files were created in name
// order (WinSxS, a freshly installed tree) those records are mostly
// consecutive. Once windowAfter requests ask for the next few records,
// the check reads the records that follow in one read into one buffer, as
// many as windowAhead times the requests of the sequence so far (at least
// windowMin, at most windowMax bytes): one read per window instead of one
// per record or cache block, and what is read past the last record asked
// for is bounded by what the sequence already used. A request outside
// the window and out of sequence starts the count again; requests in no
// order read single records as before.
const (
	windowAfter = 8        // sequential requests before reading ahead
	windowGap   = 4        // a request at most this many records on is sequential
	windowAhead = 4        // read-ahead per record of the sequence so far
	windowMin   = 64 << 10 // smallest read-ahead, bytes
	windowMax   = 4 << 20  // largest read-ahead (and the most the buffer grows to), bytes
)

// mftWindow holds the records read ahead: [first, first+n).
type mftWindow struct {
	buf      []byte
	first, n uint64
	last     uint64 // the record asked for last
	run      int64  // sequential requests so far
}

// readRecord is geometry.readRecord through the check's read-ahead: the
// same bytes (read through the same overlay), fixups and parse, and the
// same errors.
func (c *checker) readRecord(num uint64) (*Record, error) {
	g, w := c.t.g, &c.win
	inWindow := w.n > 0 && num >= w.first && num < w.first+w.n
	switch {
	case num > w.last && num-w.last <= windowGap:
		w.run++
	case num != w.last && !inWindow:
		w.run = 0
	}
	w.last = num
	if num >= g.records() || g.recSize <= 0 || g.recSize > windowMin {
		return g.readRecord(c.t.o, num)
	}
	if !inWindow {
		if w.run < windowAfter || !c.readAhead(num) {
			return g.readRecord(c.t.o, num)
		}
	}
	off := int64(num-w.first) * g.recSize
	buf := append([]byte(nil), w.buf[off:off+g.recSize]...)
	if err := applyFixups(buf); err != nil {
		return nil, fmt.Errorf("ntfs: MFT record %d: %w", num, err)
	}
	return ParseRecord(num, buf)
}

// readAhead fills the window with the records from num on; false when the
// read fails (the caller then reads the one record and reports its error).
func (c *checker) readAhead(num uint64) bool {
	g, w := c.t.g, &c.win
	size := min(max(windowAhead*w.run*g.recSize, windowMin), windowMax)
	n := min(uint64(size/g.recSize), g.records()-num)
	// The buffer grows with the sequence: a check that reads a few records
	// in order never holds windowMax.
	if need := int(int64(n) * g.recSize); len(w.buf) < need {
		w.buf = make([]byte, need)
	}
	w.n = 0
	if err := readRuns(c.t.o, g, g.mftRuns, int64(num)*g.recSize, w.buf[:int64(n)*g.recSize]); err != nil {
		return false
	}
	w.first, w.n = num, n
	return true
}

func (c *checker) problem(rec uint64, format string, args ...any) {
	c.rep.Problems = append(c.rep.Problems, Problem{rec, fmt.Sprintf(format, args...)})
}

// nameKey identifies a name in a directory: namespace and exact name.
type nameKey struct {
	ns   byte
	name string
}

// dir checks one directory. When names is non-nil it holds every
// $FILE_NAME (from an MFT scan) whose parent is this directory.
func (c *checker) dir(d uint64, names map[nameKey]uint64) {
	drec := c.dirRecord(d)
	if drec == nil {
		return
	}
	tr, err := c.t.tree(d)
	if err != nil {
		c.problem(d, "%v", err)
		return
	}
	// Walk every node, in order.
	var prev *ixEntry
	visited := map[int64]bool{}
	indexed := map[nameKey]uint64{}
	var walk func(n *ixNode, depth int)
	walk = func(n *ixNode, depth int) {
		if depth > 64 {
			c.problem(d, "index deeper than 64 levels")
			return
		}
		for _, e := range n.entries {
			if n.internal {
				if visited[e.childVCN] {
					c.problem(d, "block VCN %d referenced twice", e.childVCN)
				} else {
					visited[e.childVCN] = true
					ch, err := tr.load(e.childVCN)
					if err != nil {
						c.problem(d, "%v", err)
					} else {
						walk(ch, depth+1)
						forgetLeaf(tr, e, ch)
					}
				}
			}
			if e.end {
				continue
			}
			c.rep.Entries++
			c.order(d, prev, e)
			prev = e
			c.entry(d, drec, e, indexed)
		}
	}
	walk(tr.root, 0)
	// Index bitmap: every block in use must be reachable.
	nblocks := tr.allocSize / tr.blockSize
	for i := int64(0); i < int64(len(tr.bitmap))*8; i++ {
		if !tr.bitSet(i) {
			continue
		}
		vcn := i * tr.blockSize / tr.vcnUnit
		if i >= nblocks {
			c.problem(d, "index $BITMAP marks block %d beyond the allocation of %d blocks", i, nblocks)
		} else if !visited[vcn] {
			c.problem(d, "index block VCN %d marked in use but unreachable", vcn)
		}
	}
	if len(tr.bitmap) > 0 && len(tr.bitmap)%8 != 0 && tr.bmResident {
		c.problem(d, "index $BITMAP of %d bytes is not a multiple of 8", len(tr.bitmap))
	}
	if tr.allocRuns != nil {
		c.owned(d, tr.allocRuns, nil)
	}
	if names != nil {
		for k, ref := range names {
			if _, ok := indexed[k]; !ok {
				c.problem(d, "record %d has $FILE_NAME %q (namespace %d) with no index entry", RefNum(ref), k.name, k.ns)
			}
		}
	}
}

// order checks that entry e follows prev (nil: e is the first) in the
// index's collation: strictly after it under $UpCase, and not equal to it
// ignoring case unless one of them is a POSIX name (names equal ignoring
// case sort next to each other, and only POSIX names may differ by case
// alone: Windows could not tell them apart).
func (c *checker) order(d uint64, prev, e *ixEntry) {
	if prev == nil {
		return
	}
	if c.t.up.Compare(prev.name, e.name) >= 0 {
		c.problem(d, "index out of order: %q before %q", string16(prev.name), string16(e.name))
	}
	if c.t.up.EqualFold(prev.name, e.name) && RefNum(prev.ref) != RefNum(e.ref) &&
		len(prev.key) > 0x41 && len(e.key) > 0x41 && prev.key[0x41] != NamespacePOSIX && e.key[0x41] != NamespacePOSIX {
		c.problem(d, "names %q and %q of different files are equal ignoring case", string16(prev.name), string16(e.name))
	}
}

// dirRecord starts the check of directory d: it counts it, gives it its
// own MFT read-ahead and returns its record, or nil (a problem reported)
// when that is not an in-use directory record.
func (c *checker) dirRecord(d uint64) *Record {
	c.rep.Dirs++
	c.win.run = 0
	drec, err := c.t.g.readRecord(c.t.o, d)
	if err != nil {
		c.problem(d, "%v", err)
		return nil
	}
	if !drec.InUse() || !drec.IsDir() {
		c.problem(d, "not an in-use directory record")
		return nil
	}
	return drec
}

// forgetLeaf drops a leaf node the walk has finished with (child of e),
// so that a check holds the path it is on and not the whole directory (a
// WinSxS of 10,000 entries is about 8 MB of parsed nodes). A later
// descent that needs the node again (another name of a record checked
// here) loads it again from the same bytes. Internal nodes are few and
// kept; a node with staged changes is never dropped.
func forgetLeaf(tr *ixTree, e *ixEntry, n *ixNode) {
	if n.internal || n.dirty {
		return
	}
	if tr.nodes[e.childVCN] == n {
		delete(tr.nodes, e.childVCN)
	}
	if e.child == n {
		e.child = nil
	}
}

// entry checks one index entry against the record it points to.
func (c *checker) entry(d uint64, drec *Record, e *ixEntry, indexed map[nameKey]uint64) {
	fn, err := parseFileName(e.key)
	if err != nil {
		c.problem(d, "entry %q: %v", string16(e.name), err)
		return
	}
	k := nameKey{fn.ns, string16(fn.name)}
	if _, dup := indexed[k]; dup {
		c.problem(d, "name %q indexed twice", k.name)
	}
	indexed[k] = e.ref
	if RefNum(fn.parent) != d || RefSeq(fn.parent) != drec.Seq() {
		c.problem(d, "entry %q: key's parent reference %d/%d, directory is %d/%d", k.name, RefNum(fn.parent), RefSeq(fn.parent), d, drec.Seq())
	}
	rec, err := c.readRecord(RefNum(e.ref))
	if err != nil {
		c.problem(d, "entry %q: %v", k.name, err)
		return
	}
	if !rec.InUse() || rec.Seq() != RefSeq(e.ref) || rec.BaseRef() != 0 {
		c.problem(d, "entry %q points to record %d sequence %d: record in use=%v sequence %d base=%d", k.name, RefNum(e.ref), RefSeq(e.ref), rec.InUse(), rec.Seq(), RefNum(rec.BaseRef()))
		return
	}
	fns, err := c.fileNames(rec)
	if err != nil {
		c.problem(rec.Num, "%v", err)
		return
	}
	found := false
	for _, f := range fns {
		if RefNum(f.parent) == d && f.ns == fn.ns && slicesEqual16(f.name, fn.name) {
			found = true
			if RefSeq(f.parent) != RefSeq(fn.parent) {
				c.problem(rec.Num, "$FILE_NAME %q parent sequence %d, index entry says %d", k.name, RefSeq(f.parent), RefSeq(fn.parent))
			}
		}
	}
	if !found {
		c.problem(d, "entry %q (namespace %d) has no matching $FILE_NAME in record %d", k.name, fn.ns, rec.Num)
	}
	if (fn.raw[0x3B]&0x10 != 0) != rec.IsDir() {
		c.problem(d, "entry %q: directory flag in the key (%v) disagrees with record %d (%v)", k.name, fn.raw[0x3B]&0x10 != 0, rec.Num, rec.IsDir())
	}
	if c.seenRec[rec.Num] {
		return
	}
	c.seenRec[rec.Num] = true
	c.record(rec, fns)
	// Every name this record has in this directory must be indexed: checked
	// once the walk is over via the per-directory list when scanning
	// everything; here, look each one up.
	tr, err := c.t.tree(d)
	if err != nil {
		return
	}
	for _, f := range fns {
		if RefNum(f.parent) != d {
			continue
		}
		p, ok, err := tr.descend(f.name, c.t.up.Compare)
		if err != nil {
			c.problem(d, "%v", err)
			continue
		}
		if !ok || RefNum(p[len(p)-1].n.entries[p[len(p)-1].i].ref) != rec.Num {
			c.problem(d, "record %d has $FILE_NAME %q (namespace %d) that the index does not find", rec.Num, string16(f.name), f.ns)
		}
	}
}

// record checks what belongs to one file record: the link count, and the
// DOS/Win32 pairing.
func (c *checker) record(rec *Record, fns []fileName) {
	c.rep.Records++
	if int(rec.LinkCount()) != len(fns) {
		c.problem(rec.Num, "link count %d, %d $FILE_NAME attributes", rec.LinkCount(), len(fns))
	}
	byParent := map[uint64][2]int{}
	for _, f := range fns {
		v := byParent[RefNum(f.parent)]
		switch f.ns {
		case NamespaceWin32:
			v[0]++
		case NamespaceDOS:
			v[1]++
		}
		byParent[RefNum(f.parent)] = v
	}
	for p, v := range byParent {
		if v[1] > 1 || v[1] == 1 && v[0] != 1 {
			c.problem(rec.Num, "in directory %d: %d Win32 and %d DOS names (a DOS name needs exactly one Win32 partner)", p, v[0], v[1])
		}
	}
}

// fileNames returns every $FILE_NAME of a base record, following its
// $ATTRIBUTE_LIST into extension records.
func (c *checker) fileNames(rec *Record) ([]fileName, error) {
	fns, err := rec.fileNames()
	if err != nil {
		return nil, err
	}
	al, ok, err := rec.FindAttr(AttrAttributeList, "")
	if err != nil || !ok {
		return fns, err
	}
	b, err := readAttrData(c.t.o, c.t.g, al, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("ntfs: MFT record %d: $ATTRIBUTE_LIST: %w", rec.Num, err)
	}
	seen := map[uint64]bool{rec.Num: true}
	for off := 0; off+0x1A <= len(b); {
		l := int(le16(b[off+4:]))
		if l < 0x1A || off+l > len(b) {
			return nil, fmt.Errorf("ntfs: MFT record %d: $ATTRIBUTE_LIST entry at %d has length %d", rec.Num, off, l)
		}
		if le32(b[off:]) == AttrFileName {
			ext := RefNum(le64(b[off+0x10:]))
			if !seen[ext] {
				seen[ext] = true
				er, err := c.readRecord(ext)
				if err != nil {
					return nil, err
				}
				efns, err := er.fileNames()
				if err != nil {
					return nil, err
				}
				fns = append(fns, efns...)
			}
		}
		off += l
	}
	return fns, nil
}

// owned checks that runs are marked in $Bitmap; with claim, also that no
// cluster is claimed twice.
func (c *checker) owned(rec uint64, runs []Run, claim map[int64]uint64) {
	if c.cbm == nil {
		cbm, err := c.t.clusters()
		if err != nil {
			c.problem(mftRecBitmap, "%v", err)
			return
		}
		c.cbm = cbm
	}
	total := int64(c.t.g.boot.TotalClusters())
	for _, r := range runs {
		if r.Sparse {
			continue
		}
		if r.LCN+r.Length > total {
			c.problem(rec, "run %d+%d beyond the volume's %d clusters", r.LCN, r.Length, total)
			continue
		}
		free := int64(0)
		for l := r.LCN; l < r.LCN+r.Length; l++ {
			if !c.cbm.used(l) {
				free++
			}
			if claim != nil {
				if o, dup := claim[l]; dup && o != rec {
					c.problem(rec, "cluster %d also belongs to record %d", l, o)
				}
				claim[l] = rec
			}
		}
		if free > 0 {
			c.problem(rec, "%d clusters of run %d+%d are free in $Bitmap", free, r.LCN, r.Length)
		}
	}
}

// all scans the whole MFT: every directory, every name, every cluster.
func (c *checker) all() (*CheckReport, error) {
	g := c.t.g
	type dirNames map[nameKey]uint64
	byDir := map[uint64]dirNames{}
	var dirs []uint64
	claim := map[int64]uint64{}
	for n := uint64(0); n < g.records(); n++ {
		rec, err := c.readRecord(n)
		if err != nil {
			// Never-used records are zero; records of a damaged volume
			// are reported.
			buf := make([]byte, g.recSize)
			if rerr := readRuns(c.t.o, g, g.mftRuns, int64(n)*g.recSize, buf); rerr == nil && bytes.Equal(buf[:4], make([]byte, 4)) {
				continue
			}
			if n < 16 || !bytes.HasPrefix(buf, []byte("BAAD")) {
				c.problem(n, "%v", err)
			}
			continue
		}
		if !rec.InUse() {
			continue
		}
		as, _ := rec.Attrs()
		for _, a := range as {
			if a.NonResident {
				runs, err := a.Runs()
				if err != nil {
					c.problem(n, "attribute 0x%x: %v", a.Type, err)
					continue
				}
				if a.StartVCN() == 0 || len(runs) > 0 {
					c.owned(n, runs, claim)
				}
			}
		}
		if rec.BaseRef() != 0 {
			continue
		}
		fns, err := c.fileNames(rec)
		if err != nil {
			c.problem(n, "%v", err)
			continue
		}
		for _, f := range fns {
			p := RefNum(f.parent)
			if byDir[p] == nil {
				byDir[p] = dirNames{}
			}
			// The root directory names itself "." in itself.
			byDir[p][nameKey{f.ns, string16(f.name)}] = rec.Ref()
		}
		// The directory flag means "has an $I30 index"; its attributes may
		// live in extension records (attribute list).
		if rec.IsDir() {
			dirs = append(dirs, n)
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i] < dirs[j] })
	for _, d := range dirs {
		names := byDir[d]
		if names == nil {
			names = dirNames{}
		}
		if d == mftRecRoot {
			delete(names, nameKey{NamespaceWin32DOS, "."})
		}
		c.dir(d, names)
	}
	return c.rep, nil
}

func slicesEqual16(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// soundIndex is the preflight of a directory index: before an operation
// first changes the index of dir, the directory is checked as Check does
// (B-tree order under $UpCase, names, node flags, INDX fixups, the index
// $BITMAP, every entry's back-link to a $FILE_NAME of its record, and its
// clusters against $Bitmap), on the bytes as they are before the change.
// Any problem refuses the change: editing a damaged B-tree spreads the
// damage, and a later check could not tell it from what was there.
// Directories the operation only reads are not checked. An index larger
// than wholeIndexCheck is checked at the nodes the operation edits, once
// it knows them: soundNodes, when the operation stages its writes.
func (t *tx) soundIndex(dir uint64) error {
	if t.checked[dir] {
		return nil
	}
	if t.checked == nil {
		t.checked = map[uint64]bool{}
	}
	if tr, err := t.tree(dir); err == nil && tr.allocSize > t.w.wholeIndex {
		t.checked[dir] = true
		t.local = append(t.local, dir)
		return nil
	}
	if err := t.soundCheck(dir, func(c *checker) { c.dir(dir, nil) }); err != nil {
		return err
	}
	t.checked[dir] = true
	return nil
}

// soundNodes is the preflight of the large indexes soundIndex deferred:
// the original bytes of every node the operation changed (the $INDEX_ROOT,
// and each INDX block it rewrites or frees) are checked completely
// (checker.nodes). A block it allocates was free in the index $BITMAP; one
// inside the allocation is checked not to be a live node all the same (a
// bit cleared by damage would have the new node overwrite names another
// parent still points to). It runs before anything is staged.
func (t *tx) soundNodes() error {
	for _, dir := range t.local {
		tr := t.trees[dir]
		if tr == nil {
			continue
		}
		var vcns []int64
		if tr.root.dirty {
			vcns = append(vcns, -1)
		}
		for vcn, n := range tr.nodes {
			if n.dirty {
				vcns = append(vcns, vcn)
			}
		}
		if len(vcns) == 0 {
			continue
		}
		if err := t.soundCheck(dir, func(c *checker) { c.nodes(dir, vcns) }); err != nil {
			return err
		}
	}
	return nil
}

// soundCheck runs check on a fresh view of the bytes before the operation
// and turns what it finds into a RefusalIndex refusal.
func (t *tx) soundCheck(dir uint64, check func(*checker)) error {
	ct := &tx{w: t.w, g: t.g, up: t.up, o: t.o, recs: map[uint64]*Record{}, dirtyR: map[uint64]bool{}, trees: map[uint64]*ixTree{}, cbm: t.cbm}
	c := &checker{t: ct, rep: &CheckReport{}, seenRec: map[uint64]bool{}}
	check(c)
	if t.cbm == nil && ct.cbm != nil && len(ct.cbm.dirty) == 0 {
		// Read from the same bytes and unchanged: no need to read $Bitmap twice.
		t.cbm = ct.cbm
	}
	n := len(c.rep.Problems)
	if n == 0 {
		return nil
	}
	what := fmt.Sprintf("directory %s", dirName(ct, dir))
	var first []string
	for i, p := range c.rep.Problems {
		if i == 3 {
			first = append(first, "...")
			break
		}
		first = append(first, p.String())
	}
	return refused(RefusalIndex, what+" $I30 index",
		fmt.Sprintf("the index of %s, which this change would edit, has %d problems: %s", what, n, strings.Join(first, "; ")),
		adviceChkdsk)
}

// indexDamage turns an error that a damaged index of dir caused while an
// operation changed it (a block that does not parse, a lookup that loops)
// into the refusal the preflight would have given: in an index larger than
// wholeIndexCheck the preflight runs only once the operation knows which
// nodes it edits, so damage on the way there surfaces here first.
func (t *tx) indexDamage(dir uint64, err error) error {
	var re *RefusedError
	if err == nil || !errors.Is(err, errIndex) || errors.As(err, &re) {
		return err
	}
	what := fmt.Sprintf("directory %s", dirName(t, dir))
	return refused(RefusalIndex, what+" $I30 index",
		fmt.Sprintf("the index of %s, which this change would edit, is damaged: %v", what, err), adviceChkdsk)
}

// pathDamage is indexDamage for an error met while looking up path (the
// directory whose index failed is one of its components).
func (t *tx) pathDamage(path string, err error) error {
	var re *RefusedError
	if err == nil || !errors.Is(err, errIndex) || errors.As(err, &re) {
		return err
	}
	return refused(RefusalIndex, fmt.Sprintf("the $I30 index of a directory on the path %q", path),
		fmt.Sprintf("looking up %q, which this change would edit, met a damaged directory index: %v", path, err), adviceChkdsk)
}

// dirName names a directory record for a message: its Win32 (or any) name
// and record number.
func dirName(t *tx, dir uint64) string {
	if dir == mftRecRoot {
		return "\\ (MFT record 5)"
	}
	rec, err := t.g.readRecord(t.o, dir)
	if err == nil {
		if fns, err := rec.fileNames(); err == nil {
			for _, f := range fns {
				if f.ns != NamespaceDOS {
					return fmt.Sprintf("%q (MFT record %d)", string16(f.name), dir)
				}
			}
		}
	}
	return fmt.Sprintf("MFT record %d", dir)
}
