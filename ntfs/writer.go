package ntfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"

	ftime "github.com/wuoffline/wuoffline/internal/filetime"
)

// Writer edits an NTFS volume in place: renames and moves, and file data.
// Every operation runs in two steps on a private overlay: it computes all
// the blocks it will change without writing (Plan* methods return their
// byte ranges), then writes them through the caller's io.WriterAt, drops
// every cache, re-reads the touched structures from the device and checks
// them. A Writer is not safe for concurrent use.
type Writer struct {
	r    io.ReaderAt
	w    io.WriterAt
	size int64
	g    *geometry
	up   *UpCase
	opts WriterOptions
	// wholeIndex is the largest index checked whole (wholeIndexCheck;
	// tests lower it to exercise the check of edited nodes on small
	// volumes).
	wholeIndex int64
}

// WriterOptions tune a Writer.
type WriterOptions struct {
	// Now gives the time stored in changed timestamps; time.Now if nil.
	Now func() time.Time
	// NoVerify skips the re-read and check after each write (tests of the
	// checker use it to keep a deliberately damaged state).
	NoVerify bool
	// Allow lists refusal IDs the caller has dealt with (RefusalHibernated,
	// when the plan makes the hibernated session unusable before anything
	// else); every other refusal still refuses.
	Allow []string
}

// RefusedError is returned when the volume, or a structure a plan would
// change, is not safe to write: by OpenWriter (hibernated, Fast Startup,
// unclean $LogFile, dirty, $MFTMirr differing, $MFT run list damaged,
// unknown NTFS version) and by the Plan*/Rename/data methods before they
// stage anything (a damaged directory index, a cluster claimed twice, a
// $Bitmap that disagrees with the records read). Nothing has been written
// when it is returned. Callers map it to "refused" (exit 3).
type RefusedError struct {
	Refusals []Refusal
}

func (e *RefusedError) Error() string {
	var parts []string
	for _, r := range e.Refusals {
		parts = append(parts, r.ID+": "+r.Reason)
	}
	return "ntfs: refusing to write: " + strings.Join(parts, "; ")
}

// refused builds a RefusedError with one refusal.
func refused(id, structure, reason, advice string) *RefusedError {
	return &RefusedError{Refusals: []Refusal{{ID: id, Structure: structure, Reason: reason, Advice: advice}}}
}

// OpenWriter opens a volume for writing. r and w are the same volume (w is
// typically the repair journal wrapping the device). It refuses every
// Safety refusal of the read side, which includes the volume invariants
// ntfs-3g checks at mount ($MFTMirr, $MFT's run list, the NTFS version);
// nothing is written by opening.
func OpenWriter(r io.ReaderAt, w io.WriterAt, size int64, opts WriterOptions) (*Writer, error) {
	v, err := Open(r, size)
	if err != nil {
		// The read side could not open it at all; when the reason is one
		// of the invariants, say so with its refusal.
		if refs := metadataRefusals(r, size); len(refs) > 0 {
			return nil, &RefusedError{Refusals: refs}
		}
		return nil, err
	}
	if s := v.Safety(); s == nil {
		return nil, errors.New("ntfs: volume safety state unknown; refusing to write")
	} else if rs := s.refusalsExcept(opts.Allow); len(rs) > 0 {
		return nil, &RefusedError{Refusals: rs}
	}
	// The writer loads $UpCase itself: collation must follow the volume's
	// own table, never a fallback.
	return newWriter(r, w, size, opts)
}

// newWriter opens without the safety check (tests, Check).
func newWriter(r io.ReaderAt, w io.WriterAt, size int64, opts WriterOptions) (*Writer, error) {
	g, err := loadGeometry(r, size)
	if err != nil {
		return nil, err
	}
	wr := &Writer{r: r, w: w, size: size, g: g, opts: opts, wholeIndex: wholeIndexCheck}
	t := wr.begin()
	up, err := t.loadUpCase()
	if err != nil {
		return nil, err
	}
	wr.up = up
	return wr, nil
}

func (w *Writer) now() time.Time {
	if w.opts.Now != nil {
		return w.opts.Now()
	}
	return time.Now()
}

// tx is one operation's view of the volume: cached records and index
// trees, the cluster bitmap, and the staged writes.
type tx struct {
	w      *Writer
	g      *geometry
	up     *UpCase
	o      *overlay
	recs   map[uint64]*Record
	dirtyR map[uint64]bool
	trees  map[uint64]*ixTree
	cbm    *clusterBitmap
	mbm    *mftBitmap // $MFT:$Bitmap, loaded when a record is allocated
	// claims are the clusters of every record read (see claims.go);
	// metaClaimed is set once the metadata files' records are in it.
	claims      claimSet
	metaClaimed bool
	bmPages     map[int64][]byte // $Bitmap pages read to verify claims (claims.go)
	// checked lists the directories whose index was checked before this
	// operation first changed it, or is checked at flush (see soundIndex);
	// local lists the latter, the large ones (soundNodes).
	checked map[uint64]bool
	local   []uint64
}

func (w *Writer) begin() *tx {
	return &tx{w: w, g: w.g, up: w.up, o: &overlay{r: w.r}, recs: map[uint64]*Record{}, dirtyR: map[uint64]bool{}, trees: map[uint64]*ixTree{}}
}

// record returns the operation's copy of MFT record num.
func (t *tx) record(num uint64) (*Record, error) {
	if r := t.recs[num]; r != nil {
		return r, nil
	}
	r, err := t.g.readRecord(t.o, num)
	if err != nil {
		return nil, err
	}
	t.recs[num] = r
	t.claimRecord(r)
	return r, nil
}

func (t *tx) dirty(r *Record) { t.dirtyR[r.Num] = true }

// tree returns the index of directory dir.
func (t *tx) tree(dir uint64) (*ixTree, error) {
	if tr := t.trees[dir]; tr != nil {
		return tr, nil
	}
	tr, err := t.loadTree(dir)
	if err != nil {
		return nil, err
	}
	t.trees[dir] = tr
	return tr, nil
}

// flush stages everything changed: index nodes first (they change their
// directory's record and the cluster bitmap), then records, then $Bitmap.
func (t *tx) flush() error {
	// Nothing is staged unless every large index node the operation edits
	// checked clean as it was (soundIndex checked the small ones whole),
	// and the clusters of every record read agree with each other and with
	// $Bitmap.
	if err := t.soundNodes(); err != nil {
		return err
	}
	if err := t.soundClusters(); err != nil {
		return err
	}
	dirs := make([]uint64, 0, len(t.trees))
	for d := range t.trees {
		dirs = append(dirs, d)
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i] < dirs[j] })
	for _, d := range dirs {
		if err := t.trees[d].flush(); err != nil {
			return err
		}
	}
	nums := make([]uint64, 0, len(t.dirtyR))
	for n := range t.dirtyR {
		nums = append(nums, n)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	for _, n := range nums {
		if err := t.g.writeRecordTo(t.o, t.recs[n]); err != nil {
			return err
		}
	}
	t.dirtyR = map[uint64]bool{}
	if err := t.flushMFTBits(); err != nil {
		return err
	}
	return t.flushClusters()
}

// commit writes the staged blocks through the caller's WriterAt in offset
// order, then re-reads and checks what was touched.
func (w *Writer) commit(t *tx) error {
	if w.w == nil {
		return errors.New("ntfs: writer has no io.WriterAt")
	}
	// Staging order: a byte written twice ends with its last value.
	for _, pw := range t.o.writes {
		if pw.off < 0 || pw.off+int64(len(pw.data)) > w.g.size {
			return fmt.Errorf("ntfs: write at 0x%x+%d outside the volume", pw.off, len(pw.data))
		}
		if _, err := w.w.WriteAt(pw.data, pw.off); err != nil {
			return fmt.Errorf("ntfs: writing %d bytes at 0x%x: %w", len(pw.data), pw.off, err)
		}
	}
	if w.opts.NoVerify {
		return nil
	}
	// Drop every cache: geometry and records come from the device again.
	g, err := loadGeometry(w.r, w.size)
	if err != nil {
		return fmt.Errorf("ntfs: re-reading after write: %w", err)
	}
	w.g = g
	// What the writes touched: each directory whose record or index they
	// changed (whole when small, at the written nodes when large).
	rep, err := w.Check(CheckOptions{Ranges: t.o.ranges()})
	if err != nil {
		return fmt.Errorf("ntfs: checking after write: %w", err)
	}
	if len(rep.Problems) > 0 {
		return fmt.Errorf("ntfs: check after write found %d problems, first: %s", len(rep.Problems), rep.Problems[0])
	}
	return nil
}

// loadUpCase reads $UpCase (record 10).
func (t *tx) loadUpCase() (*UpCase, error) {
	rec, err := t.record(mftRecUpCase)
	if err != nil {
		return nil, err
	}
	a, ok, err := rec.FindAttr(AttrData, "")
	if err != nil || !ok {
		return nil, fmt.Errorf("ntfs: $UpCase has no $DATA (%v)", err)
	}
	b, err := readAttrData(t.o, t.g, a, 2*UpCaseEntries)
	if err != nil {
		return nil, fmt.Errorf("ntfs: reading $UpCase: %w", err)
	}
	return ParseUpCase(b)
}

// splitPath splits a volume path at `\` and `/`, dropping empty parts.
func splitPath(p string) []string {
	f := strings.FieldsFunc(p, func(r rune) bool { return r == '\\' || r == '/' })
	out := f[:0]
	for _, s := range f {
		if s != "." {
			out = append(out, s)
		}
	}
	return out
}

// resolve walks a path from the root directory and returns the record
// number of every component, the root first.
func (t *tx) resolve(p string) ([]uint64, error) {
	nums := []uint64{mftRecRoot}
	for _, comp := range splitPath(p) {
		if comp == ".." {
			return nil, fmt.Errorf("ntfs: path %q: \"..\" is not supported", p)
		}
		dir := nums[len(nums)-1]
		tr, err := t.tree(dir)
		if err != nil {
			return nil, fmt.Errorf("ntfs: path %q: %w", p, err)
		}
		e, err := tr.lookup(encodeName(comp))
		if err != nil {
			return nil, fmt.Errorf("ntfs: path %q: %w", p, err)
		}
		if e == nil {
			return nil, fmt.Errorf("ntfs: path %q: %q: %w", p, comp, fs.ErrNotExist)
		}
		rec, err := t.record(RefNum(e.ref))
		if err != nil {
			return nil, fmt.Errorf("ntfs: path %q: %w", p, err)
		}
		if !rec.InUse() || rec.Seq() != RefSeq(e.ref) {
			return nil, fmt.Errorf("ntfs: path %q: index entry %q points to record %d sequence %d, which is not in use with that sequence", p, comp, RefNum(e.ref), RefSeq(e.ref))
		}
		nums = append(nums, RefNum(e.ref))
	}
	return nums, nil
}

// OpenReadOnly opens a volume for List, Check and the Plan* methods only:
// there is no safety refusal because nothing can be written.
func OpenReadOnly(r io.ReaderAt, size int64) (*Writer, error) {
	return newWriter(r, nil, size, WriterOptions{})
}

// Exists reports whether path names a file or directory, looked up as
// Windows does (case-insensitively under the volume's $UpCase): one
// descent of each directory's index, not a listing.
func (w *Writer) Exists(path string) (bool, error) {
	_, err := w.begin().resolve(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// DirEntry is one $I30 index entry of a directory as stored on disk.
type DirEntry struct {
	Name      string
	Namespace uint8  // NamespacePOSIX, NamespaceWin32, NamespaceDOS, NamespaceWin32DOS
	Record    uint64 // MFT record number
	Seq       uint16 // the record's sequence number the entry names
	IsDir     bool
	Size      int64     // data size from the entry's duplicated information
	Modified  time.Time // modification time from the duplicated information
}

// List returns every index entry of the directory at path in index
// (collation) order, DOS names included.
func (w *Writer) List(path string) ([]DirEntry, error) {
	t := w.begin()
	nums, err := t.resolve(path)
	if err != nil {
		return nil, err
	}
	tr, err := t.tree(nums[len(nums)-1])
	if err != nil {
		return nil, err
	}
	var out []DirEntry
	var walk func(n *ixNode, depth int) error
	walk = func(n *ixNode, depth int) error {
		if depth > 64 {
			return fmt.Errorf("ntfs: directory %d: %w: index loop", tr.dir, errIndex)
		}
		for _, e := range n.entries {
			if n.internal {
				c, err := tr.childOf(e)
				if err != nil {
					return err
				}
				if err := walk(c, depth+1); err != nil {
					return err
				}
			}
			if e.end {
				continue
			}
			if len(out) > 1<<24 {
				return fmt.Errorf("ntfs: directory %d: too many entries", tr.dir)
			}
			out = append(out, DirEntry{
				Name: string16(e.name), Namespace: e.key[0x41], Record: RefNum(e.ref), Seq: RefSeq(e.ref),
				IsDir: le32(e.key[0x38:])&fileAttrDirIndex != 0, Size: int64(le64(e.key[0x30:])),
				Modified: ftime.ToTime(le64(e.key[0x10:])),
			})
		}
		return nil
	}
	return out, walk(tr.root, 0)
}
