package offline

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"wuoffline/access"
	"wuoffline/image"
	"wuoffline/journal"
	"wuoffline/ntfs"
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

// UndoTargetReport is what undo did on one TARGET.
type UndoTargetReport struct {
	Target   string           `json:"target"`
	Journals []JournalOutcome `json:"journals"`
	// Nothing is true when no journal needed undoing.
	Nothing bool     `json:"nothing"`
	Error   string   `json:"error,omitempty"`
	Refusal *Refusal `json:"refusal,omitempty"`
	Exit    int      `json:"exit"`
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
// journals, range by range and only where the volume still holds the fix's
// bytes: what changed since is left alone and listed (journal.Undo).
func UndoTarget(path string, opts UndoOptions) (ur UndoTargetReport) {
	ur = UndoTargetReport{Target: path, Journals: []JournalOutcome{}}
	defer func() {
		if e := recover(); e != nil {
			ur.Error = fmt.Sprintf("internal error: %v", e)
		}
		ur.Exit = ur.exitCode()
	}()
	probe, err := image.Open(path, image.Options{})
	if err != nil {
		ur.Error = err.Error()
		return ur
	}
	kind := probe.Kind
	probe.Close()
	if kind == image.KindDirectory {
		undoDirectory(&ur, path, opts)
		return ur
	}
	t, err := image.Open(path, image.Options{Writable: true})
	if iu := (*access.InUseError)(nil); errors.As(err, &iu) {
		ur.Refusal = &Refusal{ID: "mounted", Reason: fmt.Sprintf("%s is in use: %s", path, strings.Join(iu.Users, "; ")), Advice: iu.Advice()}
		return ur
	}
	if err != nil {
		ur.Refusal = &Refusal{ID: "read-only", Reason: fmt.Sprintf("%s cannot be opened for writing: %v", path, err), Advice: "check the file's permissions or the device's write protection"}
		return ur
	}
	defer t.Close()
	m := openedElsewhere(path)
	if t.Device {
		if mm := mountedElsewhere(path); mm != "" {
			m = "mounted (" + mm + ")"
		}
		if isDriveLetter(path) && runningWindowsDir(path) {
			m = "it is the running Windows"
		}
	}
	if m != "" {
		ur.Refusal = &Refusal{ID: "mounted", Reason: fmt.Sprintf("%s is in use: %s", path, m), Advice: "unmount it or detach the loop device first (for the running Windows: boot WinPE)"}
		return ur
	}
	jdir, err := journalDirFor(path, t.Device, opts.JournalDir)
	if err != nil {
		ur.Error = fmt.Sprintf("no journal directory: %v (name the one fix used with --journal DIR)", err)
		return ur
	}
	for _, v := range t.Volumes {
		if v.Content != image.ContentNTFS {
			continue
		}
		bs, err := ntfs.ReadBootSector(t.ReaderAt(v))
		if err != nil {
			continue
		}
		infos, err := journal.Find(jdir, volumeID(path, t.Device, bs.Serial, v.Size))
		if err != nil {
			ur.Error = err.Error()
			return ur
		}
		todo := journal.Undoable(infos)
		if opts.Last && len(todo) > 1 {
			todo = todo[:1]
		}
		for _, info := range todo {
			ur.Journals = append(ur.Journals, replayJournal(t, v, info.Path, "undo", journal.Undo))
		}
	}
	ur.Nothing = len(ur.Journals) == 0
	return ur
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
	t, err := image.Open(path, image.Options{})
	if err != nil {
		return nil, err
	}
	defer t.Close()
	if t.Kind == image.KindDirectory {
		return findInterruptedDir(path, journalDir)
	}
	jdir := journalDir
	if jdir == "" {
		if jdir, err = journalDirFor(path, t.Device, ""); err != nil {
			if errors.Is(err, journal.ErrNoJournalDir) {
				return nil, nil
			}
			return nil, err
		}
	}
	var out []InterruptedFix
	for _, v := range t.Volumes {
		if v.Content != image.ContentNTFS {
			continue
		}
		bs, err := ntfs.ReadBootSector(t.ReaderAt(v))
		if err != nil {
			continue
		}
		infos, _ := journal.Find(jdir, volumeID(path, t.Device, bs.Serial, v.Size))
		for _, info := range infos {
			if info.Interrupted() {
				out = append(out, InterruptedFix{Volume: v.Index, Journal: info.Path, Advice: info.Advice(path)})
			}
		}
	}
	return out, nil
}

// InterruptedRefusals turns FindInterrupted into refusals for a report
// (diagnose, and any other command on the target): an interrupted fix means
// the volume may be half-changed, and the advice says how to roll it back
// (`wuoffline undo TARGET`) or finish it (`wuoffline fix TARGET`). Errors
// finding journals are ignored: they are reported by undo and fix.
func InterruptedRefusals(path, journalDir string) []Refusal {
	intr, _ := FindInterrupted(path, journalDir)
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
