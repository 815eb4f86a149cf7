package journal

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Journal is a journal being written: create it, Add every range the plan
// changes, Prepare, then Apply. It is not safe for concurrent use.
type Journal struct {
	f      *os.File
	path   string
	dir    string
	pos    int64     // end of the journal file
	sum    hash.Hash // SHA-256 over 'W' payloads, for the 'P' frame
	spans  []span    // saved ranges, sorted by offset, never overlapping
	recs   []Record
	bytes  int64
	state  State // StatePlanned, then StateInterrupted (prepared), then StateCommitted
	closed bool
	failed error // a failed journal write: the journal cannot be completed
}

// span is a half-open byte range [off, end).
type span struct{ off, end int64 }

// Create creates a new journal for the volume h.ID in dir, named by
// [FileName], and writes its header. It fails, wrapping [ErrNoJournalDir],
// if dir is not a writable directory. Nothing is written to the volume by anything in this package
// until [Journal.Prepare] has returned.
func Create(dir string, h Header) (*Journal, error) {
	if h.Created.IsZero() {
		h.Created = time.Now()
	}
	h.Created = h.Created.UTC()
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
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) || i >= 99 {
			return nil, fmt.Errorf("journal: %w: %w", ErrNoJournalDir, err)
		}
	}
	j := &Journal{f: f, path: path, dir: dir, sum: sha256.New(), state: StatePlanned}
	buf := appendFrame([]byte(magic), frameHeader, encodeHeader(h))
	if err := j.write(buf); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return j, nil
}

// Path returns the journal file's path.
func (j *Journal) Path() string { return j.path }

// Len returns the number of ranges saved so far.
func (j *Journal) Len() int { return len(j.recs) }

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

// Add saves the range [off, off+len(newData)) of the volume: its current
// bytes, read from old, and newData. Ranges must not overlap ranges already
// added (so that the saved bytes are the original bytes); adjacent ranges
// are fine. A range larger than 1 GiB is saved in parts. label says what
// the range is, for reports ("MFT record 0x1234 (\Windows)").
func (j *Journal) Add(off int64, newData []byte, label string, old io.ReaderAt) error {
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
	i := sort.Search(len(j.spans), func(i int) bool { return j.spans[i].end > off })
	if i < len(j.spans) && j.spans[i].off < off+n {
		return fmt.Errorf("journal %s: range %#x+%d (%s) overlaps a range already saved at %#x+%d",
			j.path, off, n, label, j.spans[i].off, j.spans[i].end-j.spans[i].off)
	}
	label = cut(label, maxLabel)
	for done := int64(0); done < n; {
		part := min(n-done, maxRecord)
		l := label
		if part < n {
			l = cut(fmt.Sprintf("%s (part at +%#x)", label, done), maxLabel)
		}
		if err := j.addOne(off+done, newData[done:done+part], l, old); err != nil {
			return err
		}
		done += part
	}
	j.spans = append(j.spans, span{})
	copy(j.spans[i+1:], j.spans[i:])
	j.spans[i] = span{off, off + n}
	return nil
}

func (j *Journal) addOne(off int64, newData []byte, label string, old io.ReaderAt) error {
	n := len(newData)
	payload := make([]byte, writeFixed, writeFixed+len(label)+2*n)
	binary.LittleEndian.PutUint64(payload[0:], uint64(off))
	binary.LittleEndian.PutUint32(payload[8:], uint32(n))
	binary.LittleEndian.PutUint16(payload[12:], uint16(len(label)))
	payload = append(payload, label...)
	oldb := payload[len(payload) : len(payload)+n]
	if m, err := old.ReadAt(oldb, off); m < n {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		// The range is not saved; ranges of an earlier part of the same
		// Add may be: the journal can no longer be completed.
		j.failed = fmt.Errorf("journal %s: reading the original bytes of %s at volume offset %#x: %w", j.path, label, off, err)
		return j.failed
	}
	payload = payload[:len(payload)+n]
	payload = append(payload, newData...)
	pos := j.pos
	if err := j.write(appendFrame(nil, frameWrite, payload)); err != nil {
		return err
	}
	j.sum.Write(payload)
	j.recs = append(j.recs, Record{Index: len(j.recs), Off: off, Len: int64(n), Label: label, pos: pos, size: int64(len(payload))})
	j.bytes += int64(n)
	return nil
}

// AddOverlay adds every range changed in o (see [Overlay.Changes]), reading
// the original bytes from o's base.
func (j *Journal) AddOverlay(o *Overlay) error {
	cs, err := o.Changes()
	if err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	for _, c := range cs {
		if err := j.Add(c.Off, c.Data, c.Label, o.base); err != nil {
			return err
		}
	}
	return nil
}

// Prepare completes the plan: it appends the prepared mark (record count,
// byte count and a checksum of every saved range) and flushes the journal
// file and its directory to stable storage. After it returns, and only
// then, the volume may be written.
func (j *Journal) Prepare() error {
	if j.closed || j.state != StatePlanned {
		return fmt.Errorf("journal %s: Prepare twice", j.path)
	}
	p := make([]byte, 12, preparedSize)
	binary.LittleEndian.PutUint32(p[0:], uint32(len(j.recs)))
	binary.LittleEndian.PutUint64(p[4:], uint64(j.bytes))
	p = j.sum.Sum(p)
	if err := j.write(appendFrame(nil, framePrepared, p)); err != nil {
		return err
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal %s: flushing: %w", j.path, err)
	}
	if err := syncDir(j.dir); err != nil {
		return fmt.Errorf("journal %s: flushing its directory: %w", j.path, err)
	}
	j.state = StateInterrupted
	return nil
}

// Apply writes every saved range's new bytes to w, in the order they were
// added, reading them back from the journal file so that exactly what is
// journaled is written. Then it calls sync (the volume's flush, e.g.
// (*os.File).Sync; nil when w has nothing to flush), appends the commit
// mark and flushes the journal. If Apply fails the journal stays
// interrupted: roll back with [Undo] (or [Journal.Rollback]).
func (j *Journal) Apply(w io.WriterAt, sync func() error) error {
	if j.closed || j.state != StateInterrupted {
		return fmt.Errorf("journal %s: Apply needs a prepared, not yet applied journal (state %s)", j.path, j.state)
	}
	for i := range j.recs {
		rec := &j.recs[i]
		_, newb, err := rec.payload(j.f)
		if err != nil {
			return fmt.Errorf("journal %s: range %d: %w", j.path, i, err)
		}
		if m, err := w.WriteAt(newb, rec.Off); m < len(newb) {
			if err == nil {
				err = io.ErrShortWrite
			}
			return fmt.Errorf("journal %s: writing range %d (%s) at volume offset %#x: %w", j.path, i, rec.Label, rec.Off, err)
		}
	}
	if sync != nil {
		if err := sync(); err != nil {
			return fmt.Errorf("journal %s: flushing the volume: %w", j.path, err)
		}
	}
	if err := j.mark(commitPayload(time.Now())); err != nil {
		return err
	}
	j.state = StateCommitted
	return nil
}

// Rollback undoes what Apply wrote (all of it, part of it or nothing),
// exactly as [Undo] does for this journal's path.
func (j *Journal) Rollback(r io.ReaderAt, w io.WriterAt, sync func() error) (*Report, error) {
	if j.state == StatePlanned {
		return nil, fmt.Errorf("journal %s: not prepared: nothing was written", j.path)
	}
	return Undo(j.path, r, w, sync)
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

// Close closes the journal file. The file stays: it is what undo needs.
func (j *Journal) Close() error {
	if j.closed {
		return nil
	}
	j.closed = true
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	return nil
}

// Abort closes and removes a journal that was never prepared (the plan
// was abandoned, nothing was written). A prepared journal is kept: the
// volume may have been written, and only Undo may decide.
func (j *Journal) Abort() error {
	if j.state != StatePlanned {
		return fmt.Errorf("journal %s: prepared, not removed (use Undo)", j.path)
	}
	j.Close()
	if err := os.Remove(j.path); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// Commit journals and applies a whole plan in one call: Create in dir,
// AddOverlay(o), Prepare, Apply(w, sync), Close. It returns the journal's
// path. If the plan fails before Prepare the journal is removed and the
// volume untouched; if Apply fails the path is returned with the error and
// the journal is left interrupted, for [Undo]. An empty plan writes
// nothing, creates no journal and returns "".
func Commit(dir string, h Header, o *Overlay, w io.WriterAt, sync func() error) (string, error) {
	if len(o.ext) == 0 {
		return "", nil
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
		// The prepared mark may be on disk: keep the journal, nothing was
		// written to the volume, Undo finds every range already original.
		j.Close()
		return j.path, err
	}
	if err := j.Apply(w, sync); err != nil {
		j.Close()
		return j.path, err
	}
	return j.path, j.Close()
}
