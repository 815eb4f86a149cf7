package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// Outcome is what undo or resume did with one saved range.
type Outcome string

const (
	// Restored: the range held our new bytes (or a mix of old and new left
	// by an interrupted write) and was written back to its original bytes.
	Restored Outcome = "restored"
	// AlreadyOriginal: the range already held its original bytes.
	AlreadyOriginal Outcome = "already-original"
	// Written: (resume) the range held its old bytes (or a mix) and was
	// written with its new bytes.
	Written Outcome = "written"
	// AlreadyApplied: (resume) the range already held its new bytes.
	AlreadyApplied Outcome = "already-applied"
	// ChangedSince: some byte of the range is neither the original nor
	// ours: something wrote it after us. It was not touched.
	ChangedSince Outcome = "changed-since"
	// Lost: the journal's copy of the range is unreadable; the range was
	// not touched.
	Lost Outcome = "lost"
)

// Result is the outcome for one saved range.
type Result struct {
	Index   int
	Off     int64 // volume offset
	Len     int64
	Label   string
	Outcome Outcome
	// For ChangedSince: how many bytes match neither the original nor our
	// bytes, and the volume offset of the first of them.
	ChangedBytes int64
	FirstChanged int64
	// For Lost: why.
	Err error
}

// Report is what [Undo] or [Resume] did, range by range.
type Report struct {
	Path    string
	Action  string   // "undo" or "resume"
	Results []Result // in the order they were processed (reverse order for undo)
	Done    int      // Restored (undo) or Written (resume)
	Already int      // AlreadyOriginal or AlreadyApplied
	Changed int      // ChangedSince
	Lost    int      // Lost
	// Damage is the journal's damage (see Info.Damage): ranges saved after
	// it are unknown and were not taken back.
	Damage error
	// Marked tells whether the journal file got its new mark ('U' for
	// undo, 'C' for a completed resume). A damaged journal (not merely
	// torn) is never modified.
	Marked bool
}

// Summary says in one line what was done, for the text report.
func (r *Report) Summary() string {
	var s string
	if r.Action == "resume" {
		s = fmt.Sprintf("resume: %d range(s) written, %d already applied", r.Done, r.Already)
	} else {
		s = fmt.Sprintf("undo: %d range(s) restored, %d already original", r.Done, r.Already)
	}
	if r.Changed > 0 {
		s += fmt.Sprintf(", %d changed since (not touched)", r.Changed)
	}
	if r.Lost > 0 {
		s += fmt.Sprintf(", %d unreadable in the journal (not touched)", r.Lost)
	}
	if r.Damage != nil {
		s += fmt.Sprintf("; the journal is damaged (%v): ranges saved after the damage are unknown", r.Damage)
	}
	if !r.Marked {
		s += "; the journal was not updated"
	}
	return s
}

// Complete reports whether every saved range is now in the wanted state
// (original after undo, new after resume) and the whole journal was read.
func (r *Report) Complete() bool { return r.Changed == 0 && r.Lost == 0 && r.Damage == nil }

// Undo rolls back the change recorded in the journal at path: for every
// saved range, last first, it reads the volume's current bytes from r and
// writes the original bytes to w when every current byte is either the
// original or ours; a range changed since is left untouched and reported.
// Then it calls sync (the volume's flush; nil if none) and appends the undo
// mark to the journal. Undo is idempotent: repeating it changes nothing.
// The caller must check that the journal belongs to the volume (Find does)
// and should undo a volume's journals newest first.
func Undo(path string, r io.ReaderAt, w io.WriterAt, sync func() error) (*Report, error) {
	return run(path, r, w, sync, false)
}

// Resume finishes an interrupted change: for every saved range, first
// first, it writes the new bytes when every current byte is either the
// original or ours, then flushes and appends the commit mark. It refuses a
// journal that was never prepared or is damaged (its plan is not fully
// known), and does not commit when a range changed since; [Undo] is the
// way back in both cases.
func Resume(path string, r io.ReaderAt, w io.WriterAt, sync func() error) (*Report, error) {
	return run(path, r, w, sync, true)
}

func run(path string, r io.ReaderAt, w io.WriterAt, sync func() error, forward bool) (*Report, error) {
	readOnly := false
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EROFS) {
		// A write-protected stick: the volume can still be restored, the
		// journal just cannot record it.
		readOnly = true
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	info, size, err := readOpen(f, path)
	if err != nil {
		return nil, err
	}
	if forward {
		switch {
		case info.State == StatePlanned:
			return nil, fmt.Errorf("journal %s: never prepared, so nothing was written: nothing to finish", path)
		case info.State != StateInterrupted:
			return nil, fmt.Errorf("journal %s: %s, not interrupted: nothing to finish", path, info.State)
		case info.Damage != nil && !info.Torn:
			return nil, fmt.Errorf("journal %s: damaged (%v): the plan is not fully known, it cannot be finished; undo it", path, info.Damage)
		}
	}
	rep, err := replay(f, info, r, w, forward)
	if rep.Done > 0 && sync != nil {
		// Flush even after a failure: what was written should stick.
		if serr := sync(); serr != nil && err == nil {
			err = fmt.Errorf("journal %s: flushing the volume: %w", path, serr)
		}
	}
	if err != nil {
		return rep, err
	}
	if readOnly || (info.Damage != nil && !info.Torn) {
		return rep, nil // never modify a damaged journal: it is evidence
	}
	if forward && rep.Changed > 0 {
		return rep, nil // not finished: stays interrupted
	}
	if info.Torn && info.End < size {
		// Cut the torn append off, or the new mark would follow garbage
		// and never be read.
		if err := f.Truncate(info.End); err != nil {
			return rep, fmt.Errorf("journal %s: cutting a torn tail at %#x: %w", path, info.End, err)
		}
	}
	var frame []byte
	if forward {
		frame = commitPayload(time.Now())
	} else {
		b := binary.LittleEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
		for _, n := range []int{rep.Done, rep.Already, rep.Changed, rep.Lost} {
			b = binary.LittleEndian.AppendUint32(b, uint32(n))
		}
		frame = appendFrame(nil, frameUndone, b)
	}
	if _, err := f.WriteAt(frame, info.End); err != nil {
		return rep, fmt.Errorf("journal %s: writing the %s mark at %#x: %w", path, rep.Action, info.End, err)
	}
	if err := f.Sync(); err != nil {
		return rep, fmt.Errorf("journal %s: flushing: %w", path, err)
	}
	rep.Marked = true
	return rep, nil
}

// replay compares each saved range with the volume and writes where it is
// safe. It returns early only on an I/O error of the volume; what was done
// before is in the report (rerunning is safe).
func replay(jr io.ReaderAt, info *Info, r io.ReaderAt, w io.WriterAt, forward bool) (*Report, error) {
	rep := &Report{Path: info.Path, Action: "undo", Damage: info.Damage}
	if forward {
		rep.Action = "resume"
	}
	n := len(info.Records)
	var cur []byte
	for k := range n {
		i := n - 1 - k
		if forward {
			i = k
		}
		rec := &info.Records[i]
		res := Result{Index: rec.Index, Off: rec.Off, Len: rec.Len, Label: rec.Label}
		old, newb, err := rec.payload(jr)
		if err != nil {
			res.Outcome, res.Err = Lost, err
			rep.Lost++
			rep.Results = append(rep.Results, res)
			continue
		}
		if int64(cap(cur)) < rec.Len {
			cur = make([]byte, rec.Len)
		}
		cur = cur[:rec.Len]
		if m, err := r.ReadAt(cur, rec.Off); m < len(cur) {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return rep, fmt.Errorf("journal %s: reading range %d (%s) at volume offset %#x: %w", info.Path, rec.Index, rec.Label, rec.Off, err)
		}
		want, other := old, newb
		if forward {
			want, other = newb, old
		}
		same := true
		for b := range cur {
			c := cur[b]
			if c == want[b] {
				continue
			}
			same = false
			if c != other[b] {
				if res.ChangedBytes == 0 {
					res.FirstChanged = rec.Off + int64(b)
				}
				res.ChangedBytes++
			}
		}
		switch {
		case res.ChangedBytes > 0:
			res.Outcome = ChangedSince
			rep.Changed++
		case same:
			res.Outcome = AlreadyOriginal
			if forward {
				res.Outcome = AlreadyApplied
			}
			rep.Already++
		default:
			if m, err := w.WriteAt(want, rec.Off); m < len(want) {
				if err == nil {
					err = io.ErrShortWrite
				}
				return rep, fmt.Errorf("journal %s: writing range %d (%s) at volume offset %#x: %w", info.Path, rec.Index, rec.Label, rec.Off, err)
			}
			res.Outcome = Restored
			if forward {
				res.Outcome = Written
			}
			rep.Done++
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}
