package offline

import (
	"errors"
	"fmt"
	"sync"

	"github.com/wuoffline/wuoffline/journal"
	"github.com/wuoffline/wuoffline/session"
)

// UndoOptions controls an undo run.
type UndoOptions struct {
	// JournalDir is --journal DIR, as given to fix.
	JournalDir string
	// Last undoes only the newest fix; otherwise every fix not yet undone
	// is taken back, newest first (back to the state before wuoffline).
	Last bool

	onlyInterrupted bool // fix rolling back a half-made directory fix
}

// UndoReport is the output of one undo run.
type UndoReport struct {
	SchemaVersion int                `json:"schema_version"`
	Targets       []UndoTargetReport `json:"targets"`
}

// Exit is the worst exit code of every target.
func (r *UndoReport) Exit() int {
	worst := ExitOK
	for _, t := range r.Targets {
		worst = worseExit(worst, t.Exit)
	}
	return worst
}

// Undo states of a target: the values fix's states have for the same
// outcomes (FixNothing, FixRefused, FixFailed), and UndoDone.
const (
	UndoDone = "undone" // every journal's units taken back
)

// UndoTargetReport is what undo did on one TARGET.
type UndoTargetReport struct {
	Target   string           `json:"target"`
	Journals []JournalOutcome `json:"journals"`
	// State is undone; nothing-to-do when no journal needed undoing (none
	// of a fix not yet undone, none damaged or missing) in JournalDir;
	// refused (nothing written); failed (an error, or something could not
	// be taken back). The same name and values as a fix's state.
	State      string   `json:"state"`
	JournalDir string   `json:"journal_dir,omitempty"`
	Error      string   `json:"error,omitempty"`
	Refusal    *Refusal `json:"-"` // printed as "refusals" (UndoDocument)
	Exit       int      `json:"exit"`
}

// Undo takes back the fixes recorded for every target.
func Undo(targets []string, opts UndoOptions) *UndoReport {
	rep := &UndoReport{SchemaVersion: SchemaVersion, Targets: make([]UndoTargetReport, len(targets))}
	var wg sync.WaitGroup
	for i, p := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep.Targets[i] = UndoTarget(p, opts)
		}()
	}
	wg.Wait()
	return rep
}

// UndoTarget restores the bytes a fix changed on one TARGET from its
// journals, unit by unit (one rename, one hive edit, one file rewrite,
// each taken back whole or left whole) and only where the volume still
// holds the fix's bytes: a unit that changed since is left alone and
// reported with why and what to do (journal.UndoOn). A damaged, cut,
// missing or unreadable journal is reported as such (exit 4) and only what
// it still describes whole is taken back. The target is opened once,
// through a session with exclusive access.
func UndoTarget(path string, opts UndoOptions) (ur UndoTargetReport) {
	ur = UndoTargetReport{Target: path, Journals: []JournalOutcome{}}
	defer func() {
		if e := recover(); e != nil {
			ur.Error = fmt.Sprintf("internal error: %v", e)
		}
		ur.Exit = ur.exitCode()
		ur.State = ur.state()
	}()
	if session.IsDirectory(path) {
		undoDirectory(&ur, path, opts)
		return ur
	}
	s, err := session.Open(path, session.Options{Write: true, JournalDir: opts.JournalDir})
	if err != nil {
		var re *session.RefusedError
		if errors.As(err, &re) {
			r := re.Refusals[0]
			if r.ID == "journal" {
				ur.Error = fmt.Sprintf("%s (name the directory fix used with --journal DIR)", r.Reason)
				return ur
			}
			ur.Refusal = &Refusal{ID: r.ID, Reason: r.Reason, Advice: r.Advice}
			return ur
		}
		ur.Error = err.Error()
		return ur
	}
	defer s.Close()
	ur.JournalDir, _ = s.JournalDir()
	if s.Device() && isDriveLetter(path) && runningWindowsDir(path) {
		ur.Refusal = &Refusal{ID: "mounted", Reason: fmt.Sprintf("%s is in use: it is the running Windows", path), Advice: "boot WinPE and run wuoffline from there"}
		return ur
	}
	for _, v := range s.Volumes() {
		infos, err := s.Journals(v)
		if err != nil {
			ur.Error = err.Error()
			return ur
		}
		todo := undoable(infos)
		if opts.Last && len(todo) > 1 {
			todo = todo[:1]
		}
		for _, info := range todo {
			ur.Journals = append(ur.Journals, replayJournal(s, v, info, "undo"))
		}
	}
	return ur
}

// undoable is what undo takes back or reports, newest first: the journals
// journal.Undoable names (not yet undone, damaged, missing), and those an
// earlier undo could not take back whole. Undo is defined by content, so
// running it again on those is safe: it restores the units that can be
// restored now (the user deleted what Windows recreated) and reports the
// others again, instead of "nothing to undo" over a volume still
// half-changed.
func undoable(infos []*journal.Info) []*journal.Info {
	want := map[*journal.Info]bool{}
	for _, in := range journal.Undoable(infos) {
		want[in] = true
	}
	var out []*journal.Info
	for _, in := range infos {
		if want[in] || (in.State == journal.StateUndone && in.LastUndo != nil &&
			(in.LastUndo.UnitsLeft > 0 || in.LastUndo.Changed > 0 || in.LastUndo.Lost > 0 || in.LastUndo.Left > 0)) {
			out = append(out, in)
		}
	}
	return out
}

// state names the outcome its exit code and journals say.
func (ur *UndoTargetReport) state() string {
	switch {
	case ur.Refusal != nil:
		return FixRefused
	case ur.Exit != ExitOK:
		return FixFailed
	case len(ur.Journals) == 0:
		return FixNothing
	}
	return UndoDone
}

func (ur *UndoTargetReport) exitCode() int {
	switch {
	case ur.Refusal != nil:
		return ExitRefused
	case ur.Error != "":
		return ExitError
	}
	for _, j := range ur.Journals {
		if j.Error != "" || !j.Complete {
			return ExitError
		}
	}
	return ExitOK
}

// InterruptedFix is a fix that was interrupted on a target's volume.
type InterruptedFix struct {
	Volume  int    `json:"volume"`
	Journal string `json:"journal"`
	Advice  string `json:"advice"`
}

// FindInterrupted returns the interrupted fixes of a TARGET (an image file
// or device; a directory target's journals are per file). Every command
// calls it first and prints each Advice: `wuoffline undo TARGET` rolls the
// half-made change back, `wuoffline fix TARGET` finishes it. journalDir is
// --journal DIR ("" = the default place).
func FindInterrupted(path, journalDir string) ([]InterruptedFix, error) {
	if session.IsDirectory(path) {
		return findInterruptedDir(path, journalDir)
	}
	s, err := session.Open(path, session.Options{JournalDir: journalDir})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return findInterrupted(s)
}

func findInterrupted(s *session.Session) ([]InterruptedFix, error) {
	intr, err := s.Interrupted()
	out := make([]InterruptedFix, 0, len(intr))
	for _, f := range intr {
		out = append(out, InterruptedFix{Volume: f.Volume, Journal: f.Journal, Advice: f.Advice})
	}
	return out, err
}

// InterruptedRefusals turns FindInterrupted into refusals for a report
// (diagnose, and any other command on the target): an interrupted fix means
// the volume may be half-changed, and the advice says how to roll it back
// (`wuoffline undo TARGET`) or finish it (`wuoffline fix TARGET`). Errors
// finding journals are ignored: they are reported by undo and fix.
func InterruptedRefusals(path, journalDir string) []Refusal {
	if !session.IsDirectory(path) {
		s, err := session.Open(path, session.Options{JournalDir: journalDir})
		if err != nil {
			return nil
		}
		defer s.Close()
		return interruptedRefusals(s)
	}
	intr, _ := findInterruptedDir(path, journalDir)
	return refusalsOfInterrupted(intr)
}

// interruptedRefusals is InterruptedRefusals on an opened session.
func interruptedRefusals(s *session.Session) []Refusal {
	var out []Refusal
	for _, r := range s.InterruptedRefusals() {
		out = append(out, Refusal{ID: r.ID, Reason: r.Reason, Advice: r.Advice})
	}
	return out
}

func refusalsOfInterrupted(intr []InterruptedFix) []Refusal {
	var out []Refusal
	for _, f := range intr {
		where := "the target"
		if f.Volume > 0 {
			where = fmt.Sprintf("volume %d", f.Volume)
		}
		out = append(out, Refusal{ID: "interrupted", Reason: fmt.Sprintf("a fix of %s was interrupted (journal %s): it may be half-made", where, f.Journal), Advice: f.Advice})
	}
	return out
}
