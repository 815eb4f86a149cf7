package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"
)

// Outcome is what undo or resume did with one saved range or unit.
type Outcome string

const (
	// Restored: the range held our new bytes (or a mix of old and new left
	// by an interrupted write) and was written back to its original bytes;
	// a unit: its group was taken back and it had bytes to restore.
	Restored Outcome = "restored"
	// AlreadyOriginal: the range already held its original bytes.
	AlreadyOriginal Outcome = "already-original"
	// Written: (resume) the range held its old bytes (or a mix) and was
	// written with its new bytes.
	Written Outcome = "written"
	// AlreadyApplied: (resume) the range already held its new bytes.
	AlreadyApplied Outcome = "already-applied"
	// ChangedSince: some byte of the range is neither the original nor
	// ours: something wrote it after us. Its whole group was left.
	ChangedSince Outcome = "changed-since"
	// Lost: the journal's copy of the range is unreadable; its whole group
	// was left.
	Lost Outcome = "lost"
	// Left: the range (or unit) is fine, but another one of its group
	// changed since or is lost: the group was left whole, as it is now.
	Left Outcome = "left"
	// Incomplete: the journal is damaged and lost part of the range's
	// group (or cannot tell which group a damaged frame belonged to): the
	// group was left whole, as it is now.
	Incomplete Outcome = "incomplete"
)

// Result is the outcome for one saved range.
type Result struct {
	Index   int
	Off     int64 // offset in the journal's coordinate space
	Len     int64
	Label   string
	Units   []int
	Group   int
	Outcome Outcome
	// For ChangedSince: how many bytes match neither the original nor our
	// bytes, and the offset of the first of them.
	ChangedBytes int64
	FirstChanged int64
	// For Lost: why.
	Err error
}

// UnitResult is the outcome for one plan unit: a unit is restored (or
// finished) whole or left whole, never in part.
type UnitResult struct {
	ID      int
	Label   string
	Group   int
	Outcome Outcome // Restored, AlreadyOriginal, Written, AlreadyApplied, ChangedSince, Lost, Left or Incomplete
	Ranges  int     // how many ranges it wrote
	// Why says, for a unit left, what was found ("3 of its 4 ranges
	// changed since the fix, first at 0x1a2b000"); Advice what the user
	// can do. Both are "" for a unit taken back. Callers that know what a
	// unit is (a rename of SoftwareDistribution) may say more.
	Why, Advice string
}

// Report is what [UndoOn] or [ResumeOn] did, range by range and unit by
// unit.
type Report struct {
	Path    string
	Action  string   // "undo" or "resume"
	Results []Result // in the order they were processed (groups in reverse order for undo)
	Units   []UnitResult
	// Range counts.
	Done    int // Restored (undo) or Written (resume)
	Already int // AlreadyOriginal or AlreadyApplied
	Changed int // ChangedSince
	Lost    int // Lost
	Left    int // Left or Incomplete: untouched because their group was left
	// Unit counts.
	UnitsDone, UnitsAlready, UnitsLeft int
	// Damage is the journal's damage (a *DamagedError, also returned as
	// the error): only the groups the journal still describes whole were
	// considered.
	Damage error
	// OldSize and NewSize are the target's sizes before and after a fix
	// that grew it (both 0 otherwise). Truncated tells whether undo cut the
	// target back to OldSize; SizeLeft that the growth is still there
	// (SizeNote says why).
	OldSize, NewSize int64
	Truncated        bool
	SizeLeft         bool
	SizeNote         string
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
	if r.UnitsLeft > 0 {
		s += fmt.Sprintf("; %d of %d change(s) left whole as they are now", r.UnitsLeft, len(r.Units))
		if r.Action == "resume" {
			s += " (nothing written: roll the fix back with undo)"
		}
	}
	if r.Truncated {
		s += fmt.Sprintf("; the target was cut back to %d bytes", r.OldSize)
	}
	if r.SizeNote != "" {
		s += "; " + r.SizeNote
	}
	if r.Damage != nil {
		s += fmt.Sprintf("; %v", r.Damage)
	}
	if !r.Marked {
		s += "; the journal was not updated"
	}
	return s
}

// Complete reports whether every saved range is now in the wanted state
// (original after undo, new after resume), the target has its wanted
// size, and the whole journal was read.
func (r *Report) Complete() bool {
	return r.Changed == 0 && r.Lost == 0 && r.Left == 0 && r.UnitsLeft == 0 && !r.SizeLeft && r.Damage == nil
}

// Undo is [UndoOn] for callers with a loose reader, writer and flush
// function (sync may be nil); the target is never truncated.
func Undo(path string, r io.ReaderAt, w io.WriterAt, sync func() error) (*Report, error) {
	return UndoOn(path, funcDevice{r, w, sync})
}

// UndoOn rolls back the change recorded in the journal at path on dev,
// group by group, newest group first. A group (units that share bytes)
// is restored only if every byte of every one of its ranges is either the
// original or the fix's (a torn write leaves a mix): then every range
// not already original is written back, and the group is whole original
// again. If any range of a group changed since (something wrote there
// after the fix: Windows booted) or its saved bytes are unreadable, the
// whole group is left as it is now and each of its units reported. Undo
// never writes part of a unit. A grown target is cut back to its old size
// when every group with a range past the old end was restored and dev is
// a [Truncater] whose size is known and not larger than the fix made it.
// Then dev is flushed and the undo mark appended. Undo is idempotent.
//
// A damaged, cut, missing or unreadable journal returns a *[DamagedError]
// (with a report of what was done when the journal could be read): only
// groups the journal still describes whole are restored, and the journal
// file is not modified. The caller must check that the journal belongs to
// the volume (Find does) and should undo a volume's journals newest
// first.
func UndoOn(path string, dev Device) (*Report, error) {
	return run(path, dev, false)
}

// Resume is [ResumeOn] for callers with a loose reader, writer and flush
// function.
func Resume(path string, r io.ReaderAt, w io.WriterAt, sync func() error) (*Report, error) {
	return ResumeOn(path, funcDevice{r, w, sync})
}

// ResumeOn finishes an interrupted change on dev: only if every range of
// every group holds the original bytes, the fix's or a mix does it write
// them (extending a grown target first), flush, and append the commit
// mark. If any group changed since or is unreadable, it writes nothing
// and returns a report saying which (Complete false): an interrupted fix
// is finished whole or not at all, and [UndoOn] is then the way back. It
// refuses a journal that was never prepared or is damaged (its plan is
// not fully known).
func ResumeOn(path string, dev Device) (*Report, error) {
	return run(path, dev, true)
}

func run(path string, dev Device, forward bool) (*Report, error) {
	readOnly := false
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EROFS) {
		// A write-protected stick: the target can still be restored, the
		// journal just cannot record it.
		readOnly = true
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, openError(path, err)
	}
	defer f.Close()
	info, size, err := readOpen(f, path)
	if err != nil {
		return nil, err
	}
	rep, err := replayInfo(f, info, dev, forward)
	if err != nil {
		return rep, err
	}
	if forward && rep.UnitsLeft > 0 {
		return rep, nil // not finished: stays interrupted
	}
	if readOnly {
		return rep, nil
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
		counts := []int{rep.Done, rep.Already, rep.Changed, rep.Lost}
		if info.Header.Version >= 3 {
			counts = append(counts, rep.Left, rep.UnitsDone+rep.UnitsAlready, rep.UnitsLeft)
		}
		for _, n := range counts {
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

// replayInfo does the work of UndoOn and ResumeOn for a journal already
// read from jr; it never modifies the journal.
func replayInfo(jr io.ReaderAt, info *Info, dev Device, forward bool) (*Report, error) {
	path := info.Path
	de := info.Damaged()
	if forward {
		switch {
		case info.State == StatePlanned:
			return nil, fmt.Errorf("journal %s: never prepared, so nothing was written: nothing to finish", path)
		case de != nil:
			return nil, fmt.Errorf("the plan is not fully known, it cannot be finished; undo it: %w", de)
		case info.State != StateInterrupted:
			return nil, fmt.Errorf("journal %s: %s, not interrupted: nothing to finish", path, info.State)
		}
	}
	rep, plans, err := classify(jr, info, dev, forward)
	if err != nil {
		return rep, err
	}
	if de != nil {
		de.Written = writtenFrom(info, plans)
		rep.Damage = de
	}
	if forward && rep.UnitsLeft > 0 {
		notFinished(rep) // finished whole or not at all: nothing written
		return rep, nil
	}
	if forward {
		if err := extend(dev, info.Header); err != nil {
			return rep, fmt.Errorf("journal %s: %w", path, err)
		}
	}
	err = replay(jr, info, dev, plans, rep)
	if rep.Done > 0 {
		// Flush even after a failure: what was written should stick.
		if serr := dev.Sync(); serr != nil && err == nil {
			err = fmt.Errorf("journal %s: flushing the target: %w", path, serr)
		}
	}
	if err != nil {
		return rep, err
	}
	if !forward {
		if err := cutBack(dev, info, plans, rep); err != nil {
			return rep, fmt.Errorf("journal %s: %w", path, err)
		}
	}
	if de != nil {
		return rep, de // never modify a damaged journal: it is evidence
	}
	return rep, nil
}

// groupPlan is the decision for one group.
type groupPlan struct {
	g       *GroupInfo
	results []int // indexes into Report.Results
	ok      bool  // every range may be written: the group is taken back (or finished)
	grown   bool  // the group has a range past the old end
	ours    bool  // some range holds bytes of the fix (for DamagedError.Written)
	checked bool  // some range could be compared
}

// classify compares every range with the target, group by group, and
// decides which groups are restored (or finished) and which are left. It
// writes nothing. It fails only on an I/O error of the target.
func classify(jr io.ReaderAt, info *Info, dev Device, forward bool) (*Report, []*groupPlan, error) {
	rep := &Report{Path: info.Path, Action: "undo"}
	if forward {
		rep.Action = "resume"
	}
	if info.Header.grows() {
		rep.OldSize, rep.NewSize = info.Header.OldSize, info.Header.NewSize
	}
	var plans []*groupPlan
	n := len(info.Groups)
	var cur []byte
	for k := range n {
		gi := n - 1 - k
		if forward {
			gi = k
		}
		gp := &groupPlan{g: &info.Groups[gi], ok: info.Groups[gi].Intact}
		for _, ri := range gp.g.Ranges {
			rec := &info.Records[ri]
			res := Result{Index: rec.Index, Off: rec.Off, Len: rec.Len, Label: rec.Label, Units: rec.Units, Group: rec.Group}
			gp.grown = gp.grown || rec.Grown
			old, newb, err := rec.payload(jr)
			if err != nil {
				res.Outcome, res.Err = Lost, err
				gp.ok = false
				gp.results = append(gp.results, len(rep.Results))
				rep.Results = append(rep.Results, res)
				continue
			}
			if int64(cap(cur)) < rec.Len {
				cur = make([]byte, rec.Len)
			}
			cur = cur[:rec.Len]
			m, err := dev.ReadAt(cur, rec.Off)
			if m < len(cur) && !(rec.Grown && (err == nil || errors.Is(err, io.EOF))) {
				if !gp.g.Intact {
					// Only compared to tell whether the fix had written:
					// a group that cannot be undone is no reason to fail.
					res.Outcome = Incomplete
					gp.results = append(gp.results, len(rep.Results))
					rep.Results = append(rep.Results, res)
					continue
				}
				if err == nil {
					err = io.ErrUnexpectedEOF
				}
				return rep, nil, fmt.Errorf("journal %s: reading range %d (%s) at offset %#x: %w", info.Path, rec.Index, rec.Label, rec.Off, err)
			}
			same, changed, first, mine := compare(cur[:m], old, newb, forward, rec.Grown)
			gp.checked = true
			gp.ours = gp.ours || mine
			switch {
			case changed > 0:
				res.Outcome, res.ChangedBytes, res.FirstChanged = ChangedSince, changed, rec.Off+first
				gp.ok = false
			case same:
				res.Outcome = AlreadyOriginal
				if forward {
					res.Outcome = AlreadyApplied
				}
			default:
				res.Outcome = Restored
				if forward {
					res.Outcome = Written
				}
			}
			gp.results = append(gp.results, len(rep.Results))
			rep.Results = append(rep.Results, res)
		}
		// A group left: its ranges that would have been written are not.
		for _, i := range gp.results {
			r := &rep.Results[i]
			if !gp.ok && r.Outcome != ChangedSince && r.Outcome != Lost {
				if gp.g.Intact {
					r.Outcome = Left
				} else {
					r.Outcome = Incomplete
				}
			}
			switch r.Outcome {
			case ChangedSince:
				rep.Changed++
			case Lost:
				rep.Lost++
			case Left, Incomplete:
				rep.Left++
			case AlreadyOriginal, AlreadyApplied:
				rep.Already++
			}
		}
		plans = append(plans, gp)
	}
	unitResults(info, rep, plans, forward)
	return rep, plans, nil
}

// compare classifies the target's current bytes cur of a range: same
// (every byte already the wanted one), how many bytes are neither the
// original nor the fix's and the first of them, and mine (some byte is
// the fix's where it differs from the original: the fix had written
// there). For a grown range (old == nil) the original is "nothing": bytes
// past the target's end (cur is short) or zeros the target was extended
// with.
func compare(cur, old, newb []byte, forward, grown bool) (same bool, changed, first int64, mine bool) {
	if grown {
		if forward {
			same = len(cur) == len(newb)
		} else {
			same = len(cur) == 0 // the bytes are there: cut back by truncation
		}
		for b, c := range cur {
			if c == newb[b] {
				mine = mine || c != 0
				continue
			}
			if forward {
				same = false
			}
			if c != 0 {
				if changed == 0 {
					first = int64(b)
				}
				changed++
			}
		}
		return same, changed, first, mine
	}
	same = true
	want, other := old, newb
	if forward {
		want, other = newb, old
	}
	for b, c := range cur {
		if old[b] != newb[b] && c == newb[b] {
			mine = true
		}
		if c == want[b] {
			continue
		}
		same = false
		if c != other[b] {
			if changed == 0 {
				first = int64(b)
			}
			changed++
		}
	}
	return same, changed, first, mine
}

// unitResults derives each unit's outcome from its group's decision, in
// one pass over the results (a hostile journal may hold many units).
func unitResults(info *Info, rep *Report, plans []*groupPlan, forward bool) {
	byID := make(map[int]*UnitInfo, len(info.Units))
	for i := range info.Units {
		byID[info.Units[i].ID] = &info.Units[i]
	}
	unit := func(id int) *UnitInfo {
		if u := byID[id]; u != nil {
			return u
		}
		return &UnitInfo{ID: id}
	}
	type stats struct {
		changed, lost, total int
		firstChanged         int64
		did                  bool
		lostErr              error
	}
	for _, gp := range plans {
		st := make(map[int]*stats, len(gp.g.Units))
		for _, uid := range gp.g.Units {
			st[uid] = &stats{firstChanged: -1}
		}
		for _, i := range gp.results {
			r := &rep.Results[i]
			for _, uid := range r.Units {
				s := st[uid]
				if s == nil {
					continue
				}
				s.total++
				switch r.Outcome {
				case ChangedSince:
					s.changed++
					if s.firstChanged < 0 {
						s.firstChanged = r.FirstChanged
					}
				case Lost:
					s.lost++
					s.lostErr = r.Err
				case Restored, Written:
					s.did = true
				}
			}
		}
		for _, uid := range gp.g.Units {
			u, s := unit(uid), st[uid]
			ur := UnitResult{ID: uid, Label: u.Label, Group: gp.g.ID, Ranges: len(u.Ranges)}
			switch {
			case gp.ok && s.did:
				ur.Outcome = Restored
				if forward {
					ur.Outcome = Written
				}
				rep.UnitsDone++
			case gp.ok:
				ur.Outcome = AlreadyOriginal
				if forward {
					ur.Outcome = AlreadyApplied
				}
				rep.UnitsAlready++
			default:
				rep.UnitsLeft++
				ur.Outcome, ur.Why, ur.Advice = leftReason(gp, uid, unit, s.changed, s.lost, s.total, s.firstChanged, s.lostErr, forward)
			}
			rep.Units = append(rep.Units, ur)
		}
	}
}

// leftReason says why a unit was left and what to do.
func leftReason(gp *groupPlan, uid int, unit func(int) *UnitInfo, changed, lost, total int, firstChanged int64, lostErr error, forward bool) (Outcome, string, string) {
	verb := "take it back"
	if forward {
		verb = "finish it"
	}
	switch {
	case !gp.g.Intact:
		return Incomplete, "the journal is damaged and lost part of this change (or cannot tell which change a damaged part belonged to): it was left whole, as it is now",
			"keep the journal for inspection; check the volume (`wuoffline check`); " + verb + " by hand if it is still needed"
	case changed > 0:
		return ChangedSince, fmt.Sprintf("changed since the fix: %d of its %d range(s) hold bytes that are neither the original nor the fix's (first at %#x): something wrote there after the fix (Windows booted?); it was left whole, as it is now", changed, total, firstChanged),
			"nothing to do if what is there now works; otherwise " + verb + " by hand, the rest of the fix was handled without it"
	case lost > 0:
		return Lost, fmt.Sprintf("the journal's copy of %d of its range(s) cannot be read (%v): it was left whole, as it is now", lost, lostErr),
			"keep the journal for inspection and run undo again; " + verb + " by hand if it stays unreadable"
	}
	var others []string
	for _, o := range gp.g.Units {
		if o == uid {
			continue
		}
		if len(others) == maxLabels {
			others = append(others, fmt.Sprintf("%d more", len(gp.g.Units)-1-maxLabels))
			break
		}
		others = append(others, fmt.Sprintf("%q", unit(o).Label))
	}
	return Left, fmt.Sprintf("shares bytes with %s, which could not be undone: all were left whole, as they are now", strings.Join(others, ", ")),
		"see the other change; " + verb + " by hand if it is still needed"
}

// writtenFrom says whether a damaged journal's fix had started writing,
// from what classify found.
func writtenFrom(info *Info, plans []*groupPlan) WriteProgress {
	if info.State == StateCommitted || info.State == StateUndone {
		return WrittenSome
	}
	checked := false
	for _, gp := range plans {
		if gp.ours {
			return WrittenSome
		}
		checked = checked || gp.checked
	}
	if checked {
		return WrittenNone
	}
	return WrittenUnknown
}

// replay writes the wanted bytes of every range of the groups classify
// accepted. It returns early only on an I/O error; what was done before is
// in the report (rerunning is safe: a torn group is a mix of old and new).
func replay(jr io.ReaderAt, info *Info, dev Device, plans []*groupPlan, rep *Report) error {
	for _, gp := range plans {
		if !gp.ok {
			continue
		}
		for _, i := range gp.results {
			res := &rep.Results[i]
			if res.Outcome != Restored && res.Outcome != Written {
				continue
			}
			rec := &info.Records[res.Index]
			old, newb, err := rec.payload(jr)
			if err != nil {
				return fmt.Errorf("journal %s: range %d changed while undoing: %w", info.Path, rec.Index, err)
			}
			want := old
			if rep.Action == "resume" {
				want = newb
			}
			if want == nil {
				rep.Done++ // a grown range: undone by cutting the target back
				continue
			}
			if m, err := dev.WriteAt(want, rec.Off); m < len(want) {
				if err == nil {
					err = io.ErrShortWrite
				}
				// The group is half written: every range of it still holds
				// the original or the fix's bytes, so running again
				// completes it.
				return fmt.Errorf("journal %s: writing range %d (%s) at offset %#x: %w; the change is half %s: run %s again to complete it",
					info.Path, rec.Index, rec.Label, rec.Off, err, map[bool]string{false: "undone", true: "finished"}[rep.Action == "resume"], rep.Action)
			}
			rep.Done++
		}
	}
	return nil
}

// cutBack truncates a grown target back to its old size once every group
// with a range past the old end was restored.
func cutBack(dev Device, info *Info, plans []*groupPlan, rep *Report) error {
	h := info.Header
	if !h.grows() {
		return nil
	}
	for _, gp := range plans {
		if gp.grown && !gp.ok {
			rep.SizeLeft = true
			rep.SizeNote = fmt.Sprintf("the target keeps what the fix appended past its original end (%d bytes): a change there was left", h.OldSize)
			return nil
		}
	}
	size, known := deviceSize(dev)
	t, can := dev.(Truncater)
	switch {
	case known && size <= h.OldSize:
		return nil
	case !known || !can:
		rep.SizeLeft = true
		rep.SizeNote = fmt.Sprintf("the target keeps the bytes the fix appended past its original end (%d bytes): this device cannot be cut back", h.OldSize)
		return nil
	case size > h.NewSize:
		rep.SizeLeft = true
		rep.SizeNote = fmt.Sprintf("the target grew to %d bytes since the fix made it %d: not cut back to %d, which would lose what was appended since", size, h.NewSize, h.OldSize)
		return nil
	}
	if err := t.Truncate(h.OldSize); err != nil {
		return fmt.Errorf("cutting the target back to %d bytes: %w", h.OldSize, err)
	}
	if err := dev.Sync(); err != nil {
		return fmt.Errorf("flushing the target: %w", err)
	}
	rep.Truncated = true
	return nil
}

// notFinished marks every group of a resume that will not be written
// because another group cannot be finished: an interrupted fix is
// finished whole or not at all.
func notFinished(rep *Report) {
	for i := range rep.Results {
		if rep.Results[i].Outcome == Written {
			rep.Results[i].Outcome = Left
			rep.Left++
		}
	}
	for i := range rep.Units {
		u := &rep.Units[i]
		switch u.Outcome {
		case Written:
			rep.UnitsDone--
		case AlreadyApplied:
			rep.UnitsAlready--
		default:
			continue
		}
		u.Outcome = Left
		u.Why = "not finished: another change of this fix cannot be finished, and a fix is finished whole or not at all"
		u.Advice = "roll the fix back with undo"
		rep.UnitsLeft++
	}
}
