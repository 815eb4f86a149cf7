package offline

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/wuoffline/wuoffline/image"
	"github.com/wuoffline/wuoffline/journal"
	"github.com/wuoffline/wuoffline/session"
)

// How `wuoffline fix` works (FixTarget):
//
//  1. An interrupted earlier fix on the target is finished first
//     (journal.Resume; a dry run refuses and says so).
//  2. DiagnoseTarget gives the safety refusals (refuse: nothing written)
//     and each check's structured Evidence; planActions turns the evidence
//     into actions, by the catalogue's default / opt-in rule and --only /
//     --skip.
//  3. Raw volume: every action runs against a journal.Overlay of the volume
//     through the NTFS engine (renames; the hosts file and the hives as
//     DataFiles, the hives edited by hive.Editor, recovered first when
//     dirty). The overlay's ranges are the exact plan: --dry-run stops here.
//  4. journal.Commit saves every range's original bytes outside the volume,
//     flushes, writes, syncs and marks the journal committed.
//  5. The target is re-opened read-only (new objects, page cache dropped),
//     the touched directories and hives are checked (only problems the
//     volume did not already have count), and diagnose runs again: each
//     acted-on check is reported fixed or still problem with the reason.
//
// A directory target (fix_dir.go) runs the same plan with the operating
// system's calls, with a manifest and saved originals instead of a journal.

// Exit codes of fix and undo beyond diagnose's (README "Exit codes").
const (
	// ExitUsage is a usage error (the command line itself).
	ExitUsage = 2
)

// Tool is what journals record as the program that wrote them.
const Tool = session.Tool

// FixOptions controls a fix run (`wuoffline fix`).
type FixOptions struct {
	// With names the opt-ins the user gave: "wsus", "proxy", "os-upgrade",
	// "txr" (repair-catalog.md, column "default").
	With []string
	// Only restricts the fix to these check ids; Skip leaves these out.
	// Naming an opt-in check in Only ("--only txr") opts in to it.
	Only, Skip []string
	// DryRun computes the whole plan against an overlay and writes nothing.
	DryRun bool
	// JournalDir is --journal DIR ("" = beside an image file, or the
	// executable's directory for a device; see journal.ChooseDir).
	JournalDir string
	// Letter is the drive letter of the Windows volume in printed commands.
	Letter string
	// DiscardHibernation (--discard-hibernation) lets fix write to a
	// hibernated volume whose $LogFile needs no replay, by making the
	// hibernated session unusable first (docs/catalogue.md, "Hibernation").
	DiscardHibernation bool
	// Now is the time written into changed NTFS timestamps and registry
	// last-written times (zero: time.Now at each write).
	Now time.Time
	// Confirm is called with a target's plan before anything is written;
	// returning false writes nothing (state "declined"). Nil confirms.
	Confirm func(*FixTargetReport) bool
	// WrapWriter, when set, wraps every volume writer before the journal
	// applies a plan to it (tests inject faults with it).
	WrapWriter func(io.WriterAt) io.WriterAt
	// Progress receives short progress messages (may be nil).
	Progress func(target, msg string)

	// dirFault, in tests, is called before each change to a directory
	// target (0-based); an error stops the fix there, as a crash would.
	dirFault func(step int) error
}

func (o *FixOptions) progress(target, format string, args ...any) {
	if o.Progress != nil {
		o.Progress(target, fmt.Sprintf(format, args...))
	}
}

// clock returns the clock editors stamp changes with.
func (o *FixOptions) clock() func() time.Time { return StampClock(o.Now) }

// StampClock is the clock a journaled write stamps changed NTFS times and
// registry last-written times with: always t (--time), or for the zero t
// the moment of each write.
func StampClock(t time.Time) func() time.Time {
	if t.IsZero() {
		return time.Now
	}
	return func() time.Time { return t }
}

// FixReport is the whole output of one fix run (JSON schema 1).
type FixReport struct {
	SchemaVersion int               `json:"schema_version"`
	DryRun        bool              `json:"dry_run"`
	Targets       []FixTargetReport `json:"targets"`
}

// Exit is the worst exit code of every target.
func (r *FixReport) Exit() int {
	worst := ExitOK
	for _, t := range r.Targets {
		worst = worseExit(worst, t.Exit)
	}
	return worst
}

// worseExit orders exit codes by how bad they are: 4 (error) > 3 (refused)
// > 1 (problems remain / would change) > 0.
func worseExit(a, b int) int {
	rank := func(c int) int {
		switch c {
		case ExitError:
			return 4
		case ExitRefused:
			return 3
		case ExitUsage:
			return 2
		case ExitProblem:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// Fix states of a target.
const (
	FixPlanned  = "planned"       // dry run: the plan was computed, nothing written
	FixNothing  = "nothing-to-do" // no selected check has anything to change
	FixDone     = "fixed"         // written, verified
	FixRefused  = "refused"       // a precondition failed: nothing written
	FixDeclined = "declined"      // the user said no: nothing written
	FixFailed   = "failed"        // an error; see Error (and Journal for what to do)
)

// FixTargetReport is what fix did on one TARGET.
type FixTargetReport struct {
	Target string `json:"target"`
	Kind   string `json:"kind,omitempty"`
	Format string `json:"format,omitempty"`
	Table  string `json:"table,omitempty"`
	// State is one of planned, nothing-to-do, fixed, refused, declined, failed.
	State string `json:"state"`
	// Refusals is never nil in a document (NewFixDocument).
	Refusals []Refusal `json:"refusals"`
	// Resumed lists interrupted fixes found on the target and finished
	// before planning (fix) — what every later command must do first.
	Resumed []JournalOutcome `json:"resumed,omitempty"`
	Volumes []FixVolume      `json:"volumes"`
	// IO counts what fix read from the target: opens (one to plan and
	// write, one to verify), reads and bytes that reached the medium.
	IO    *IOStats `json:"io,omitempty"`
	Error string   `json:"error,omitempty"`
	// Advice says how to get past Error, as a refusal's does.
	Advice string `json:"advice,omitempty"`
	Exit   int    `json:"exit"`
}

// IOStats counts what a command read from its target.
type IOStats struct {
	Opens     int   `json:"opens"`
	Reads     int64 `json:"reads"`
	BytesRead int64 `json:"bytes_read"`
}

func (tr *FixTargetReport) count(st session.Stats) {
	if tr.IO == nil {
		tr.IO = &IOStats{}
	}
	tr.IO.Opens += st.Opens
	tr.IO.Reads += st.Reads
	tr.IO.BytesRead += st.Bytes
}

// FixVolume is the plan (and its outcome) for one Windows installation.
type FixVolume struct {
	Volume int `json:"volume"` // image volume index (0 for a bare volume or a directory)
	// Offset is the volume's byte offset on the disk: in the target file
	// for a raw image or a device, in the virtual disk a qcow2, VHD or
	// VHDX holds (where FileRanges say the bytes are in the file).
	Offset  int64   `json:"offset"`
	Size    int64   `json:"size"`
	Windows Version `json:"version"` // the Windows version, named as in diagnose's installations
	// Actions are the changes, in the order they are made.
	Actions []FixAction `json:"actions"`
	// Ranges are the byte ranges of the volume the whole plan changes, in
	// volume coordinates (offset 0 is the volume's first byte, whatever
	// the container), merged; Bytes is their total.
	Ranges []ByteRange `json:"ranges"`
	Bytes  int64       `json:"bytes"`
	// FileRanges are the byte ranges of the TARGET file the plan changes,
	// merged and aligned to sectors: exactly what the journal saves, in
	// the journal's coordinates. For a raw image or a device, volume byte
	// o is file byte Offset+o; a qcow2, VHD or VHDX stores it where its
	// tables say, and its FileRanges include the container's own metadata
	// the plan updates. FileBytes is their total.
	FileRanges []ByteRange `json:"file_ranges,omitempty"`
	FileBytes  int64       `json:"file_bytes,omitempty"`
	// JournalDir is where the journal goes; Journal its path once written.
	JournalDir string `json:"journal_dir,omitempty"`
	Journal    string `json:"journal,omitempty"`
	// Verify is the check of everything touched, re-read from the device.
	Verify *Verification `json:"verify,omitempty"`
	// Checks compares each planned check before and after.
	Checks []CheckOutcome `json:"checks,omitempty"`
	// Remaining lists checks still `problem` that fix left alone
	// (opt-in not given, --skip, --only), with why.
	Remaining []CheckOutcome `json:"remaining,omitempty"`
}

// FixAction is one change of a plan.
type FixAction struct {
	Check string `json:"id"` // the check it repairs, named as in diagnose
	// Op is rename, delete-key, delete-value, set, remove-entry, comment-out.
	Op string `json:"op"`
	// Path is the file or directory (volume path, `\` separators); To is
	// the new name for rename (full path).
	Path string `json:"path,omitempty"`
	To   string `json:"to,omitempty"`
	// Hive, Key, Value and Type locate a registry change.
	Hive  string `json:"hive,omitempty"`
	Key   string `json:"key,omitempty"`
	Value string `json:"value,omitempty"`
	Type  string `json:"type,omitempty"`
	// Old and New are the data before and after in readable form.
	Old string `json:"old,omitempty"`
	New string `json:"new,omitempty"`
	// Lines are the edited lines of a text file.
	Lines []LineEdit `json:"lines,omitempty"`
	// Ranges are the volume byte ranges this action writes (a registry
	// action shares its hive's ranges, listed on the hive's last action).
	Ranges []ByteRange `json:"ranges,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// LineEdit is one changed line of a text file.
type LineEdit struct {
	Line int    `json:"line"`
	Old  string `json:"old"`
	New  string `json:"new"`
}

// ByteRange is a range of volume bytes.
type ByteRange struct {
	Off   int64  `json:"offset"` // named as a volume's offset and size
	Len   int64  `json:"size"`
	Label string `json:"label,omitempty"`
}

// Verification is the check of the written volume, re-read from the device.
type Verification struct {
	OK bool `json:"ok"`
	// Ranges is how many journaled ranges were read back from the device
	// and compared with the planned bytes; Mismatched lists those that
	// differ (a write that did not reach the device), in the target file's
	// coordinates (as FileRanges).
	Ranges     int         `json:"ranges_read"` // a count: "ranges" is a list everywhere else
	Mismatched []ByteRange `json:"mismatched,omitempty"`
	// NTFS: directories, entries and records checked, and problems.
	NTFSDirs     int      `json:"ntfs_dirs"`
	NTFSEntries  int      `json:"ntfs_entries"`
	NTFSProblems []string `json:"ntfs_problems,omitempty"`
	// Hives checked by the hive checker, with their problems.
	Hives        []string `json:"hives,omitempty"`
	HiveProblems []string `json:"hive_problems,omitempty"`
	Error        string   `json:"error,omitempty"`
}

// CheckOutcome is one check before and after fix.
type CheckOutcome struct {
	ID     string `json:"id"`
	Before Status `json:"before"`
	After  Status `json:"after"` // fixed, problem, ...
	Reason string `json:"reason,omitempty"`
	// NotRepairable is set when what remains is reported only: nothing
	// fix can do offline (a missing service is reported, not invented).
	NotRepairable bool `json:"not_repairable,omitempty"`
}

// JournalOutcome is what undo (or resume) did with one journal.
type JournalOutcome struct {
	Journal string `json:"journal"`
	Volume  int    `json:"volume"`
	// Op is what was done with the journal: "undo" or "resume" (the verb
	// is "op" in every document, as a fix action's).
	Op      string `json:"op"`
	Summary string `json:"summary"`
	// Complete is true when every saved range is now as wanted.
	Complete bool `json:"complete"`
	// Restored / Already / Changed / Lost count ranges.
	Done    int `json:"done"`
	Already int `json:"already"`
	Changed int `json:"changed"`
	Lost    int `json:"lost"`
	// NotRestored lists the ranges that were left alone, and why.
	NotRestored []ByteRange `json:"not_restored,omitempty"`
	// Units is what happened to each plan unit (one rename, one hive
	// edit, one file rewrite): each is taken back whole or left whole.
	Units []UnitOutcome `json:"units,omitempty"`
	// UnitsDone, UnitsAlready and UnitsLeft count them.
	UnitsDone    int `json:"units_done"`
	UnitsAlready int `json:"units_already"`
	UnitsLeft    int `json:"units_left"`
	// Damage is set when the journal is damaged, cut, missing or
	// unreadable: only what it still describes whole was taken back.
	Damage *JournalDamage `json:"damage,omitempty"`
	// Note says what the user should know that lost nothing: the journal's
	// last frame (a mark appended after the writes) cut short or damaged,
	// read as a change interrupted after its plan was saved.
	Note  string `json:"note,omitempty"`
	Error string `json:"error,omitempty"`
}

// UnitOutcome is what undo (or resume) did with one plan unit.
type UnitOutcome struct {
	Label string `json:"label"`
	// Outcome is restored, already-original, written, already-applied,
	// changed-since, lost, left or incomplete (journal.Outcome).
	Outcome string `json:"outcome"`
	// Left is true when the unit was not taken back (or finished).
	Left bool `json:"left"`
	// Reason and Advice say, for a unit left, what was found and what the
	// user can do (named as a refusal's).
	Reason string `json:"reason,omitempty"`
	Advice string `json:"advice,omitempty"`
}

// JournalDamage describes a damaged journal: which file, what damage, how
// much of it is still whole, and whether the fix had started writing.
type JournalDamage struct {
	// Journal is the journal file's path, named as JournalOutcome's.
	Journal string `json:"journal"`
	// Kind is missing, unreadable, header, cut or frames.
	Kind string `json:"kind"`
	// Offset is the offset in the journal file of the first damage; nil
	// when not applicable (a missing or unreadable file).
	Offset *int64 `json:"offset,omitempty"`
	Err    string `json:"error"`
	// Units seen in frames that verify, and how many of them are whole
	// (only those can be undone); PlannedUnits is what the plan mark
	// says (-1 unknown).
	Units        int `json:"units"`
	UnitsIntact  int `json:"units_intact"`
	PlannedUnits int `json:"planned_units"`
	// Written is whether the fix had started writing the volume: some,
	// none or unknown.
	Written string `json:"written"`
	// Advice is what to do, with the --journal DIR the user gave.
	Advice string `json:"advice"`
}

// Fix repairs every target, in parallel, and returns the report with the
// targets in argument order. One target's refusal or failure does not stop
// the others. Confirm (if set) is called for one target at a time.
func Fix(targets []string, opts FixOptions) *FixReport {
	rep := &FixReport{SchemaVersion: SchemaVersion, DryRun: opts.DryRun, Targets: make([]FixTargetReport, len(targets))}
	var mu sync.Mutex // serialises Confirm: one question at a time on the terminal
	if c := opts.Confirm; c != nil {
		opts.Confirm = func(t *FixTargetReport) bool {
			mu.Lock()
			defer mu.Unlock()
			return c(t)
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, p := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			rep.Targets[i] = FixTarget(p, opts)
		}()
	}
	wg.Wait()
	return rep
}

// FixTarget repairs one TARGET: it diagnoses it, refuses when a
// precondition fails, plans every selected change against an overlay (the
// dry run), and unless DryRun journals and writes the plan, re-reads and
// checks what it touched, and diagnoses again. Errors are in the report.
func FixTarget(path string, opts FixOptions) (tr FixTargetReport) {
	tr = FixTargetReport{Target: path, Volumes: []FixVolume{}}
	defer func() {
		if e := recover(); e != nil {
			tr.State, tr.Error = FixFailed, fmt.Sprintf("internal error: %v (nothing written unless a journal is named above)", e)
		}
		tr.Exit = tr.exitCode()
	}()
	if session.IsDirectory(path) {
		tr.Kind, tr.Format = string(image.KindDirectory), image.FormatDirectory
		fixDirectory(&tr, path, opts)
		return tr
	}
	fixImage(&tr, path, opts)
	return tr
}

func (tr *FixTargetReport) exitCode() int {
	switch tr.State {
	case FixRefused:
		return ExitRefused
	case FixFailed:
		return ExitError
	case FixPlanned:
		for _, v := range tr.Volumes {
			if len(v.Actions) > 0 {
				return ExitProblem
			}
		}
		return ExitOK
	case FixDone:
		for _, v := range tr.Volumes {
			if v.Verify != nil && !v.Verify.OK {
				return ExitError
			}
			for _, c := range v.Checks {
				if c.After == StatusFailed || c.After == StatusProblem && !c.NotRepairable {
					return ExitProblem
				}
			}
		}
	case FixDeclined:
		return ExitProblem
	}
	return ExitOK
}

// refuse records a refusal.
func (tr *FixTargetReport) refuse(id, reason, advice string) {
	tr.Refusals = append(tr.Refusals, Refusal{ID: id, Reason: reason, Advice: advice})
	tr.State = FixRefused
}

// journalDirFor applies journal.ChooseDir.
func journalDirFor(path string, device bool, flagDir string) (string, error) {
	return journal.ChooseDir(path, !device, flagDir)
}

// containsFold reports whether list holds s (case-insensitive).
func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(strings.TrimSpace(x), s) {
			return true
		}
	}
	return false
}
