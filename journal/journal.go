package journal

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"
)

// partSuffix ends the name of a journal being planned: it is renamed to
// its final name only once its plan mark is on stable storage, so a file
// with the final name is always a prepared plan, and one that lacks its
// plan mark is damaged, never a crash while planning.
const partSuffix = ".part"

// Journal is a journal being written: create it, Add every range the plan
// changes (or AddOverlay), Prepare, then Apply (or ApplyOn). It is not
// safe for concurrent use.
type Journal struct {
	f       *os.File
	path    string // the final name
	part    string // the name while planning
	dir     string
	pos     int64 // end of the journal file
	h       Header
	pend    []pending // ranges added, sorted by offset, never overlapping
	labels  []string  // unit labels, by id-1
	byLabel map[string]int
	recs    []Record // after Prepare, in file order
	bytes   int64
	state   State // StatePlanned, then StateInterrupted (prepared), then StateCommitted
	closed  bool
	failed  error // a failed journal write: the journal cannot be completed
}

// pending is a range added but not yet written to the journal.
type pending struct {
	off   int64
	new   []byte
	old   []byte // nil for the part past Header.OldSize (grown)
	units []int
}

func (p *pending) end() int64 { return p.off + int64(len(p.new)) }

// Create creates a new journal for the volume h.ID in dir, named by
// [FileName], and writes its header. While it is planned the file has the
// suffix ".part"; [Journal.Prepare] gives it its name. It fails, wrapping
// [ErrNoJournalDir], if dir is not a writable directory. Nothing is
// written to the target by anything in this package until Prepare has
// returned.
func Create(dir string, h Header) (*Journal, error) {
	if h.Created.IsZero() {
		h.Created = time.Now()
	}
	h.Created = h.Created.UTC()
	if h.Space == "" {
		h.Space = SpaceVolume
	}
	if h.Space != SpaceVolume && h.Space != SpaceFile {
		return nil, fmt.Errorf("journal: coordinate space %q, want %q or %q", h.Space, SpaceVolume, SpaceFile)
	}
	if h.OldSize < 0 || h.NewSize < 0 || h.Block < 0 || h.Block > 1<<30 {
		return nil, fmt.Errorf("journal: sizes %d and %d, block %d out of range", h.OldSize, h.NewSize, h.Block)
	}
	h.Block = h.block()
	h.Version = Version
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	h.jid = binary.LittleEndian.Uint64(id[:])
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("journal: %w: %w", ErrNoJournalDir, err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("journal: %w: %s is not a directory", ErrNoJournalDir, dir)
	}
	seq, err := nextSeq(dir, h.ID)
	if err != nil {
		return nil, fmt.Errorf("journal: %w: %w", ErrNoJournalDir, err)
	}
	h.Seq = seq
	var f *os.File
	var path string
	for i := 0; ; i++ {
		// Two journals for one volume within a nanosecond are unlikely but
		// not impossible with a coarse clock: never overwrite one.
		path = filepath.Join(dir, fileName(h, i))
		var err error
		if _, err = os.Lstat(path); err == nil {
			err = os.ErrExist
		} else if errors.Is(err, os.ErrNotExist) {
			f, err = os.OpenFile(path+partSuffix, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) || i >= 99 {
			return nil, fmt.Errorf("journal: %w: %w", ErrNoJournalDir, err)
		}
	}
	j := &Journal{f: f, path: path, part: path + partSuffix, dir: dir, h: h, byLabel: map[string]int{}, state: StatePlanned}
	buf := appendFrame([]byte(magic), frameHeader, encodeHeader(h))
	if err := j.write(buf); err != nil {
		f.Close()
		os.Remove(j.part)
		return nil, err
	}
	return j, nil
}

// Path returns the journal file's path (its final name: while planned,
// the file is this path with ".part" appended).
func (j *Journal) Path() string { return j.path }

// Header returns the header as written (with Seq, Space and Block set).
func (j *Journal) Header() Header { return j.h }

// Len returns the number of ranges saved so far (a range is saved in
// parts when it is larger than 1 GiB or crosses the old end of a grown
// target).
func (j *Journal) Len() int {
	if j.recs != nil {
		return len(j.recs)
	}
	n := 0
	for i := range j.pend {
		n += len(j.pieces(&j.pend[i]))
	}
	return n
}

func (j *Journal) write(b []byte) error {
	if j.failed != nil {
		return j.failed
	}
	if _, err := j.f.WriteAt(b, j.pos); err != nil {
		j.failed = fmt.Errorf("journal %s: writing at %#x: %w", j.path, j.pos, err)
		return j.failed
	}
	j.pos += int64(len(b))
	return nil
}

// unitFor returns the unit of label, made on first use ("" is the unit
// of unlabelled ranges).
func (j *Journal) unitFor(label string) int {
	label = cut(label, maxString)
	id, ok := j.byLabel[label]
	if !ok {
		j.labels = append(j.labels, label)
		id = len(j.labels)
		j.byLabel[label] = id
	}
	return id
}

// Add saves the range [off, off+len(newData)) of the target: its current
// bytes, read from old now, and newData (copied). The range belongs to
// the unit named label (one unit per distinct label; "" is one unit of
// unlabelled ranges). Ranges must not overlap ranges already added (so
// that the saved bytes are the original bytes); adjacent ranges are fine.
// When the header says the target grows (OldSize < NewSize), bytes past
// OldSize are not read: they have no original.
func (j *Journal) Add(off int64, newData []byte, label string, old io.ReaderAt) error {
	return j.add(off, slices.Clone(newData), []int{j.unitFor(label)}, old)
}

func (j *Journal) add(off int64, newData []byte, units []int, old io.ReaderAt) error {
	if j.closed || j.state != StatePlanned {
		return fmt.Errorf("journal %s: Add after Prepare", j.path)
	}
	if j.failed != nil {
		return j.failed
	}
	n := int64(len(newData))
	if n == 0 {
		return nil
	}
	if off < 0 || off > (1<<62)-n {
		return fmt.Errorf("journal %s: range %#x+%d out of bounds", j.path, off, n)
	}
	if len(units) > 1<<16-1 {
		return fmt.Errorf("journal %s: range %#x+%d written by %d units, more than a frame holds", j.path, off, n, len(units))
	}
	i := sort.Search(len(j.pend), func(i int) bool { return j.pend[i].end() > off })
	if i < len(j.pend) && j.pend[i].off < off+n {
		return fmt.Errorf("journal %s: range %#x+%d overlaps a range already saved at %#x+%d",
			j.path, off, n, j.pend[i].off, len(j.pend[i].new))
	}
	p := pending{off: off, new: newData, units: units}
	if keep := j.oldEnd(off, n); keep > 0 {
		p.old = make([]byte, keep)
		if m, err := old.ReadAt(p.old, off); int64(m) < keep {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			// The plan cannot be journaled whole: refuse to complete it.
			j.failed = fmt.Errorf("journal %s: reading the original bytes at %#x+%d: %w", j.path, off, keep, err)
			return j.failed
		}
	}
	j.pend = slices.Insert(j.pend, i, p)
	return nil
}

// oldEnd returns how many bytes of [off, off+n) have original bytes.
func (j *Journal) oldEnd(off, n int64) int64 {
	if !j.h.grows() {
		return n
	}
	return max(0, min(n, j.h.OldSize-off))
}

// AddOverlay adds every range changed in o (see [Overlay.Changes]) with
// its units, reading the original bytes from o's base. The planned bytes
// are not copied: o must not be written until the journal is prepared.
func (j *Journal) AddOverlay(o *Overlay) error {
	cs, err := o.Changes()
	if err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	ids := map[int]int{} // overlay unit -> journal unit
	for _, c := range cs {
		units := make([]int, 0, len(c.Units))
		for _, u := range c.Units {
			id, ok := ids[u]
			if !ok {
				j.labels = append(j.labels, o.UnitLabel(u))
				id = len(j.labels)
				ids[u] = id
			}
			units = append(units, id)
		}
		sort.Ints(units)
		if err := j.add(c.Off, c.Data, units, o.base); err != nil {
			return err
		}
	}
	return nil
}

// piece is one 'W' frame to write.
type piece struct {
	off   int64
	new   []byte
	old   []byte // nil: grown
	units []int
	group int
}

// pieces splits a pending range into frames: at the old end of a grown
// target (the part past it has no original bytes) and every maxRecord
// bytes.
func (j *Journal) pieces(p *pending) []piece {
	var out []piece
	split := func(off int64, nw, old []byte) {
		for done := 0; done < len(nw); {
			k := min(len(nw)-done, maxRecord)
			pc := piece{off: off + int64(done), new: nw[done : done+k], units: p.units}
			if old != nil {
				pc.old = old[done : done+k]
			}
			out = append(out, pc)
			done += k
		}
	}
	k := len(p.old)
	split(p.off, p.new[:k], p.old)
	if k < len(p.new) {
		split(p.off+int64(k), p.new[k:], nil)
	}
	return out
}

// Prepare completes the plan: it groups the units (units whose ranges
// overlap or share a block of Header.Block bytes are one group), writes
// every range group by group, each frame numbered within its group so
// that a lost frame shows, appends the plan mark (range, group and unit
// counts and a checksum of every saved range), flushes the journal file,
// gives it its name and flushes the directory. After it returns, and only
// then, the target may be written.
func (j *Journal) Prepare() error {
	if j.closed || j.state != StatePlanned {
		return fmt.Errorf("journal %s: Prepare twice", j.path)
	}
	if j.failed != nil {
		return j.failed
	}
	rs := make([]unitRange, len(j.pend))
	for i, p := range j.pend {
		rs[i] = unitRange{p.off, p.end(), p.units}
	}
	group := groupUnits(len(j.labels), rs, j.h.block(), false)
	var ps []piece
	for i := range j.pend {
		for _, pc := range j.pieces(&j.pend[i]) {
			pc.group = group[pc.units[0]]
			ps = append(ps, pc)
		}
	}
	sort.SliceStable(ps, func(a, b int) bool {
		if ps[a].group != ps[b].group {
			return ps[a].group < ps[b].group
		}
		return ps[a].off < ps[b].off
	})
	count := map[int]int{}
	for _, pc := range ps {
		count[pc.group]++
	}
	sum := sha256.New()
	named := map[int]bool{}
	idx := map[int]int{}
	for _, pc := range ps {
		payload := j.encodeWrite(pc, idx[pc.group], count[pc.group], named)
		idx[pc.group]++
		pos := j.pos
		if err := j.write(appendFrame(nil, frameWrite, payload)); err != nil {
			return err
		}
		sum.Write(payload)
		n := int64(len(pc.new))
		j.recs = append(j.recs, Record{Index: len(j.recs), Off: pc.off, Len: n, Units: pc.units, Group: pc.group, Grown: pc.old == nil,
			pos: pos, size: int64(len(payload)), data: int64(len(payload)) - n*int64(2-boolInt(pc.old == nil))})
		j.bytes += n
	}
	units := 0
	for u := 1; u <= len(j.labels); u++ {
		if named[u] {
			units++
		}
	}
	p := make([]byte, 20, preparedSize)
	binary.LittleEndian.PutUint32(p[0:], uint32(len(j.recs)))
	binary.LittleEndian.PutUint64(p[4:], uint64(j.bytes))
	binary.LittleEndian.PutUint32(p[12:], uint32(len(count)))
	binary.LittleEndian.PutUint32(p[16:], uint32(units))
	p = sum.Sum(p)
	if err := j.write(appendFrame(nil, framePrepared, p)); err != nil {
		return err
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal %s: flushing: %w", j.path, err)
	}
	if _, err := os.Lstat(j.path); err == nil {
		return fmt.Errorf("journal %s: a file of that name appeared while planning", j.path)
	}
	// Windows renames no file that is open (Go opens files without
	// FILE_SHARE_DELETE): close, rename, open again.
	if err := j.f.Close(); err != nil {
		j.closed = true
		return fmt.Errorf("journal %s: closing the planned journal: %w", j.path, err)
	}
	if err := os.Rename(j.part, j.path); err != nil {
		j.closed = true
		os.Remove(j.part)
		return fmt.Errorf("journal %s: naming the prepared journal: %w", j.path, err)
	}
	j.pend = nil // the bytes are in the journal now
	j.state = StateInterrupted
	if err := syncDir(j.dir); err != nil {
		j.closed = true
		return fmt.Errorf("journal %s: flushing its directory: %w", j.path, err)
	}
	f, err := os.OpenFile(j.path, os.O_RDWR, 0)
	if err != nil {
		j.closed = true
		return fmt.Errorf("journal %s: opening the prepared journal again: %w", j.path, err)
	}
	j.f = f
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// encodeWrite lays out a version 3 'W' payload (see writeFixed and
// parser.write3). A unit's label goes in the first frame naming it.
func (j *Journal) encodeWrite(pc piece, gidx, gcnt int, named map[int]bool) []byte {
	le := binary.LittleEndian
	n := len(pc.new)
	var flags uint16
	if pc.old == nil {
		flags |= flagGrown
	}
	b := make([]byte, 0, writeFixed+len(pc.units)*unitFixed+2*n)
	b = le.AppendUint64(b, uint64(pc.off))
	b = le.AppendUint32(b, uint32(n))
	b = le.AppendUint16(b, flags)
	b = le.AppendUint16(b, uint16(len(pc.units)))
	b = le.AppendUint32(b, uint32(pc.group))
	b = le.AppendUint32(b, uint32(gidx))
	b = le.AppendUint32(b, uint32(gcnt))
	b = le.AppendUint64(b, j.h.jid)
	for _, u := range pc.units {
		l := ""
		if !named[u] {
			l = j.labels[u-1]
			named[u] = true
		}
		b = le.AppendUint32(b, uint32(u))
		b = le.AppendUint16(b, uint16(len(l)))
		b = append(b, l...)
	}
	b = append(b, pc.old...)
	return append(b, pc.new...)
}

// Apply writes every saved range's new bytes to w, reading them back
// from the journal file so that exactly what is journaled is written,
// then calls sync (nil when w has nothing to flush) and appends the
// commit mark. It is [Journal.ApplyOn] for callers with loose functions.
func (j *Journal) Apply(w io.WriterAt, sync func() error) error {
	return j.ApplyOn(funcDevice{w: w, sync: sync})
}

// ApplyOn writes every saved range's new bytes to dev, group by group,
// reading them back from the journal file so that exactly what is
// journaled is written. A grown plan first extends dev to the new size
// when dev is a [Truncater] of known size. Then it flushes dev, appends
// the commit mark and flushes the journal. If it fails the journal stays
// interrupted: roll back with [UndoOn] (or [Journal.Rollback]) or finish
// with [ResumeOn].
func (j *Journal) ApplyOn(dev Device) error {
	if j.closed || j.state != StateInterrupted {
		return fmt.Errorf("journal %s: Apply needs a prepared, not yet applied journal (state %s)", j.path, j.state)
	}
	if err := extend(dev, j.h); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	for i := range j.recs {
		rec := &j.recs[i]
		_, newb, err := rec.payload(j.f)
		if err != nil {
			return fmt.Errorf("journal %s: range %d: %w", j.path, i, err)
		}
		if m, err := dev.WriteAt(newb, rec.Off); m < len(newb) {
			if err == nil {
				err = io.ErrShortWrite
			}
			return fmt.Errorf("journal %s: writing range %d (%s) at offset %#x: %w", j.path, i, j.recLabel(rec), rec.Off, err)
		}
	}
	if err := dev.Sync(); err != nil {
		return fmt.Errorf("journal %s: flushing the target: %w", j.path, err)
	}
	if err := j.mark(commitPayload(time.Now())); err != nil {
		return err
	}
	j.state = StateCommitted
	return nil
}

func (j *Journal) recLabel(rec *Record) string {
	ls := make([]string, 0, len(rec.Units))
	for _, u := range rec.Units {
		ls = append(ls, j.labels[u-1])
	}
	return joinLabels(ls)
}

// extend grows dev to h.NewSize before a grown plan is written, when dev
// can be truncated and tells its size. Writes past the end extend a
// regular file anyway; extending first makes the size exact even where
// the last range ends short of it.
func extend(dev Device, h Header) error {
	if !h.grows() {
		return nil
	}
	t, ok := dev.(Truncater)
	if !ok {
		return nil
	}
	size, ok := deviceSize(dev)
	if !ok || size >= h.NewSize {
		return nil
	}
	if err := t.Truncate(h.NewSize); err != nil {
		return fmt.Errorf("extending the target from %d to %d bytes: %w", size, h.NewSize, err)
	}
	return nil
}

// Rollback undoes what Apply wrote (all of it, part of it or nothing),
// exactly as [Undo] does for this journal's path.
func (j *Journal) Rollback(r io.ReaderAt, w io.WriterAt, sync func() error) (*Report, error) {
	return j.RollbackOn(funcDevice{r, w, sync})
}

// RollbackOn undoes what ApplyOn wrote (all of it, part of it or
// nothing), exactly as [UndoOn] does for this journal's path, cutting a
// grown target back.
func (j *Journal) RollbackOn(dev Device) (*Report, error) {
	if j.state == StatePlanned {
		return nil, fmt.Errorf("journal %s: not prepared: nothing was written", j.path)
	}
	return UndoOn(j.path, dev)
}

// mark appends a mark frame and flushes the journal.
func (j *Journal) mark(frame []byte) error {
	if err := j.write(frame); err != nil {
		return err
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal %s: flushing: %w", j.path, err)
	}
	return nil
}

func commitPayload(t time.Time) []byte {
	return appendFrame(nil, frameCommitted, binary.LittleEndian.AppendUint64(nil, uint64(t.UnixNano())))
}

// Close closes the journal file. A prepared journal stays: it is what
// undo needs. One never prepared is removed: it is no journal (by
// contract nothing was written).
func (j *Journal) Close() error {
	if j.closed {
		return nil
	}
	j.closed = true
	err := j.f.Close()
	if j.state == StatePlanned {
		os.Remove(j.part)
	}
	if err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	return nil
}

// Abort closes and removes a journal that was never prepared (the plan
// was abandoned, nothing was written). A prepared journal is kept: the
// target may have been written, and only Undo may decide.
func (j *Journal) Abort() error {
	if j.state != StatePlanned {
		return fmt.Errorf("journal %s: prepared, not removed (use Undo)", j.path)
	}
	j.Close() // removes the unprepared file
	if err := os.Remove(j.part); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// Commit journals and applies a whole plan in one call; it is [CommitOn]
// for callers with a loose writer and flush function (no growth: w is
// never truncated).
func Commit(dir string, h Header, o *Overlay, w io.WriterAt, sync func() error) (string, error) {
	return CommitOn(dir, h, o, funcDevice{w: w, sync: sync})
}

// CommitOn journals and applies a whole plan in one call: Create in dir,
// AddOverlay(o), Prepare, ApplyOn(dev), Close. It sets h.OldSize and
// h.NewSize from the overlay (BaseSize and Size) and h.Block from its
// grouping (SetGroup) unless h.Block is set. It returns the journal's
// path. If the plan fails before Prepare no journal is left and the
// target is untouched; if writing fails the path is returned with the
// error and the journal is left interrupted, for [UndoOn] or [ResumeOn].
// An empty plan writes nothing, creates no journal and returns "".
func CommitOn(dir string, h Header, o *Overlay, dev Device) (string, error) {
	if len(o.ext) == 0 && o.size == o.baseSize {
		return "", nil
	}
	h.OldSize, h.NewSize = o.baseSize, o.size
	if h.Block == 0 {
		h.Block = o.groupBlock()
	}
	j, err := Create(dir, h)
	if err != nil {
		return "", err
	}
	if err := j.AddOverlay(o); err != nil {
		j.Abort()
		return "", err
	}
	if err := j.Prepare(); err != nil {
		// The journal may or may not have its name: if it has, nothing
		// was written to the target, and Undo finds every range original.
		j.Close()
		if _, serr := os.Stat(j.path); serr != nil {
			return "", err
		}
		return j.path, err
	}
	if err := j.ApplyOn(dev); err != nil {
		j.Close()
		return j.path, err
	}
	return j.path, j.Close()
}
