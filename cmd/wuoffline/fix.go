package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"wuoffline/offline"
)

const fixHelp = `Usage: wuoffline fix [--dry-run] [--yes] [--json] [--with LIST] [--only IDS] [--skip IDS]
                     [--journal DIR] [--letter X:] [--discard-hibernation] TARGET...

Repairs what 'wuoffline diagnose' reports as problem, as docs/catalogue.md says:
renames aside (SoftwareDistribution -> SoftwareDistribution.old, .old.1, ...; catroot2,
pending.xml, the BITS queue), registry edits through the hive engine (dirty hives are
recovered first), the hosts file's update lines commented out with '# wuoffline:'.

Every change is first planned against an in-memory overlay of the volume; --dry-run
prints that plan (each rename, each registry value with its old and new data, each
edited line, and the byte ranges of the volume) and writes nothing. Otherwise the
original bytes are saved in a journal outside the volume (beside an image file, or
--journal DIR), flushed, and only then is the volume written; what was touched is
re-read from the device, checked, and diagnosed again.

Options:
  -n, --dry-run    compute and print the plan, write nothing
  -y, --yes        do not ask for confirmation (needed when stdin is not a terminal)
  --json           print the report as JSON (schema_version 1)
  --with LIST      opt-ins, comma-separated: wsus, proxy, os-upgrade, txr
  --only IDS       fix only these check ids (comma-separated)
  --skip IDS       leave these check ids alone
  --journal DIR    where the undo journal goes (required for a device when the
                   program's own directory is not writable or is on that device)
  --letter X:      the Windows volume's drive letter, for printed commands
  --discard-hibernation
                   write to a hibernated Windows that cannot be booted and shut
                   down: hiberfil.sys is renamed aside first (journaled), so the
                   hibernated session is LOST (open programs, unsaved work;
                   nothing after a Fast Startup shutdown) and Windows starts
                   afresh; undo brings it back. Refused while $LogFile needs
                   replay (then do what the refusal says, from WinPE)

Exit codes: 0 fixed (or nothing to do), 1 problems remain (or --dry-run: changes
planned), 2 usage, 3 refused (nothing written: the reason and the way out are
printed), 4 error. With many TARGETs the worst code wins; one target's refusal or
failure does not stop the others.

Undo: 'wuoffline undo TARGET' restores the original bytes from the journal.
`

// runFix implements `wuoffline fix`.
func runFix(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("fix", fixHelp, stdout, stderr)
	dry := fl.boolFlag("dry-run", "n")
	yes := fl.yesFlag()
	asJSON := fl.Bool("json", false, "")
	with := fl.String("with", "", "")
	only := fl.String("only", "", "")
	skip := fl.String("skip", "", "")
	jdir := fl.String("journal", "", "")
	letter := fl.String("letter", "", "")
	discard := fl.Bool("discard-hibernation", false, "")
	targets, code, done := fl.parse(args, 1, -1)
	if done {
		return code
	}
	opts := offline.FixOptions{DryRun: *dry, JournalDir: *jdir, Letter: strings.ToUpper(strings.TrimRight(*letter, `\`))}
	opts.DiscardHibernation = *discard
	opts.With = splitList(*with)
	opts.Only = splitList(*only)
	opts.Skip = splitList(*skip)
	for _, w := range opts.With {
		if !containsString(offline.OptIns(), strings.ToLower(w)) {
			return fl.usageError("unknown opt-in %q (known: %s)", w, strings.Join(offline.OptIns(), ", "))
		}
	}
	for _, id := range append(append([]string{}, opts.Only...), opts.Skip...) {
		if !containsString(offline.CheckIDs(), strings.ToLower(id)) {
			return fl.usageError("unknown check id %q (known: %s)", id, strings.Join(offline.CheckIDs(), ", "))
		}
	}
	if !*dry && !*yes {
		ask, code, done := fl.confirmer(false)
		if done {
			return code
		}
		opts.Confirm = func(t *offline.FixTargetReport) bool {
			writeFixTarget(stderr, *t, true)
			return ask(fmt.Sprintf("Write these changes to %s?", t.Target))
		}
	}
	opts.Progress = progressTo(stderr)
	rep := offline.Fix(targets, opts)
	if *asJSON {
		if code := writeJSON(stdout, stderr, "fix", rep); code >= 0 {
			return code
		}
	} else {
		for i, t := range rep.Targets {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			writeFixTarget(stdout, t, false)
		}
	}
	return rep.Exit()
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// writeFixTarget prints one target's plan and outcome.
func writeFixTarget(w io.Writer, t offline.FixTargetReport, planOnly bool) {
	fmt.Fprintf(w, "== %s\n", t.Target)
	for _, j := range t.Resumed {
		fmt.Fprintf(w, "   interrupted fix finished first (journal %s): %s\n", j.Journal, j.Summary)
	}
	for _, v := range t.Volumes {
		fmt.Fprintf(w, "\nWindows on volume %d: %s\n", v.Volume, v.Windows)
		if len(v.Actions) == 0 {
			fmt.Fprintln(w, "   nothing to change")
		}
		for _, a := range v.Actions {
			writeAction(w, a)
		}
		if len(v.Ranges) > 0 {
			fmt.Fprintf(w, "   volume byte ranges (%d, %s, offsets within the volume at %#x):\n", len(v.Ranges), humanBytes(v.Bytes), v.Offset)
			for _, r := range v.Ranges {
				fmt.Fprintf(w, "      %#010x +%-6d %s\n", r.Off, r.Len, clipText(r.Label, 100))
			}
		}
		for _, c := range v.Remaining {
			fmt.Fprintf(w, "   left alone: [%s] %s\n", c.ID, c.Reason)
		}
		if planOnly {
			continue
		}
		if v.Journal != "" {
			fmt.Fprintf(w, "   journal: %s\n", v.Journal)
		}
		if vr := v.Verify; vr != nil {
			state := "ok"
			if !vr.OK {
				state = "FAILED"
			}
			ntfsPart := ""
			if vr.NTFSDirs > 0 {
				ntfsPart = fmt.Sprintf("NTFS: %d directories, %d entries checked; ", vr.NTFSDirs, vr.NTFSEntries)
			}
			hv := strings.Join(vr.Hives, ", ")
			if hv == "" {
				hv = "none edited"
			}
			fmt.Fprintf(w, "   verify (re-read from the device): %s — %d ranges read back; %shives checked: %s\n", state, vr.Ranges, ntfsPart, hv)
			for _, r := range vr.Mismatched {
				fmt.Fprintf(w, "      NOT on the device as written: %#x +%d %s\n", r.Off, r.Len, r.Label)
			}
			for _, p := range append(append([]string{}, vr.NTFSProblems...), vr.HiveProblems...) {
				fmt.Fprintf(w, "      problem: %s\n", p)
			}
			if vr.Error != "" {
				fmt.Fprintf(w, "      error: %s\n", vr.Error)
			}
		}
		for _, c := range v.Checks {
			if c.After == offline.StatusFixed {
				fmt.Fprintf(w, "   fixed   [%s]\n", c.ID)
			} else {
				fmt.Fprintf(w, "   %-7s [%s] %s\n", strings.ToUpper(string(c.After)), c.ID, c.Reason)
			}
		}
	}
	writeRefusalList(w, "fix refused", t.Refusals)
	if t.Error != "" {
		fmt.Fprintf(w, "   error: %s\n", t.Error)
		if t.Hint != "" {
			fmt.Fprintf(w, "   hint: %s\n", t.Hint)
		}
	}
	if planOnly {
		return
	}
	switch t.State {
	case offline.FixPlanned:
		fmt.Fprintln(w, "-> dry run: nothing was written; run without --dry-run to apply this plan")
	case offline.FixNothing:
		fmt.Fprintln(w, "-> nothing to fix")
	case offline.FixDone:
		fmt.Fprintf(w, "-> fixed; 'wuoffline undo %s' takes it back\n", t.Target)
	case offline.FixDeclined:
		fmt.Fprintln(w, "-> declined: nothing was written")
	case offline.FixRefused:
		fmt.Fprintln(w, "-> refused: nothing was written")
	case offline.FixFailed:
		fmt.Fprintln(w, "-> failed")
	}
}

func writeAction(w io.Writer, a offline.FixAction) {
	switch a.Op {
	case "rename":
		fmt.Fprintf(w, "   [%s] rename %s -> %s\n", a.Check, a.Path, a.To)
	case "comment-out":
		fmt.Fprintf(w, "   [%s] edit %s: %d line(s)\n", a.Check, a.Path, len(a.Lines))
		for _, l := range a.Lines {
			fmt.Fprintf(w, "        line %d: %q -> %q\n", l.Line, l.Old, l.New)
		}
	case "delete-key":
		fmt.Fprintf(w, "   [%s] delete key %s\\%s (with its subtree)\n", a.Check, a.Hive, a.Key)
	default:
		loc := a.Hive + `\` + a.Key
		name := a.Value
		if name == "" {
			name = "(default)"
		}
		fmt.Fprintf(w, "   [%s] %s %s : %s (%s)\n        old: %s\n        new: %s\n", a.Check, a.Op, loc, name, a.Type, clipText(a.Old, 160), clipText(a.New, 160))
	}
	for _, r := range a.Ranges {
		fmt.Fprintf(w, "        writes %#010x +%d\n", r.Off, r.Len)
	}
	if a.Error != "" {
		fmt.Fprintf(w, "        error: %s\n", a.Error)
	}
}

// isInteractive reports whether f is a terminal someone can answer on: a
// character device that is not /dev/null (which is one too).
func isInteractive(f *os.File) bool {
	if !isTerminal(f) {
		return false
	}
	fi, err1 := f.Stat()
	null, err2 := os.Stat(os.DevNull)
	return err1 == nil && (err2 != nil || !os.SameFile(fi, null))
}
