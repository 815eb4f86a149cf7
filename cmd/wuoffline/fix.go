package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/wuoffline/wuoffline/offline"
)

const fixHelp = `Usage: wuoffline fix [--dry-run] [--yes] [-v] [--json] [--jobs N] [--with LIST] [--only IDS]
                     [--skip IDS] [--journal DIR] [--letter X:] [--time RFC3339]
                     [--discard-hibernation] TARGET...

Repairs what 'wuoffline diagnose' reports as problem, as docs/catalogue.md says:
renames aside (SoftwareDistribution -> SoftwareDistribution.old, .old.1, ...; catroot2,
pending.xml, the BITS queue), registry edits through the hive engine (dirty hives are
recovered first), the hosts file's update lines commented out with '# wuoffline:'.

Every change is first planned against an in-memory overlay of the volume; --dry-run
prints that plan (one line per change; with -v each registry value with its old
and new data, each edited line, and the byte ranges of the volume) and writes nothing. Otherwise the
original bytes are saved in a journal outside the volume (beside an image file, or
--journal DIR), flushed, and only then is the volume written; what was touched is
re-read from the device, checked, and diagnosed again.

Options:
  -n, --dry-run    compute and print the plan, write nothing
  -y, --yes        do not ask for confirmation (needed when stdin is not a terminal)
  -v, --verbose    print every change in full, with the byte ranges it writes
  --json           print one JSON document per TARGET, one a line (JSON Lines;
                   docs/fix.schema.json)
  --jobs N         work on at most N TARGETs at once (default: the CPUs)
  --with LIST      opt-ins, comma-separated: wsus, proxy, os-upgrade, txr
  --only IDS       fix only these check ids (comma-separated)
  --skip IDS       leave these check ids alone
  --journal DIR    where the undo journal goes (required for a device when the
                   program's own directory is not writable or is on that device)
  --letter X:      the Windows volume's drive letter, for printed commands
  --time RFC3339   the time written into the NTFS times and registry
                   last-written times the fix changes (default: now, at each
                   write), e.g. 2026-12-04T19:00:00Z. The same --time on two
                   copies of a disk (a raw image and its qcow2, say) gives the
                   same bytes in the Windows volume
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
	stamp := fl.timeFlag()
	verbose := fl.boolFlag("verbose", "v")
	jobs := fl.jobsFlag()
	targets, code, done := fl.parse(args, 1, -1)
	if done {
		return code
	}
	opts := offline.FixOptions{DryRun: *dry, JournalDir: *jdir, Letter: strings.ToUpper(strings.TrimRight(*letter, `\`))}
	opts.DiscardHibernation = *discard
	opts.Now = *stamp
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
	prog := newProgressLine(stderr, len(targets))
	opts.Progress = prog.report
	if !*dry && !*yes {
		ask, code, done := fl.confirmer(false)
		if done {
			return code
		}
		var mu sync.Mutex // one question at a time on the terminal
		opts.Confirm = func(t *offline.FixTargetReport) bool {
			mu.Lock()
			defer mu.Unlock()
			prog.clear(false)
			writeFixTarget(stderr, *t, fixText{planOnly: true, verbose: *verbose})
			return ask(fmt.Sprintf("Write these changes to %s?", t.Target))
		}
	}
	return fleetRun[offline.FixTargetReport]{
		command: "fix", stdout: stdout, stderr: stderr, jobs: *jobs, asJSON: *asJSON, prog: prog,
		do:      func(t string) offline.FixTargetReport { return offline.FixTarget(t, opts) },
		exit:    func(t offline.FixTargetReport) int { return t.Exit },
		outcome: func(t offline.FixTargetReport) string { return t.State },
		document: func(t offline.FixTargetReport) any {
			return offline.NewFixDocument(header("fix"), *dry, t)
		},
		text: func(w io.Writer, t offline.FixTargetReport) { writeFixTarget(w, t, fixText{verbose: *verbose}) },
	}.run(targets)
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

// fixText selects how much of a fix report is printed.
type fixText struct {
	planOnly bool // before the question: the plan, the journal's place, no outcome
	verbose  bool // -v: every action in full with the byte ranges it writes
}

// writeFixTarget prints one target's report: a summary that fits an
// 80x25 console (one line per change, grouped where one key loses several
// values), or with -v every action with its byte ranges. After writing it
// prints one line per change with its outcome instead of the plan again.
func writeFixTarget(out io.Writer, t offline.FixTargetReport, how fixText) {
	w := newWrapWriter(out)
	defer w.Flush()
	fmt.Fprintf(w, "== %s\n", t.Target)
	for _, j := range t.Resumed {
		fmt.Fprintf(w, "interrupted fix finished first (journal %s): %s\n", j.Journal, j.Summary)
		if j.Note != "" {
			fmt.Fprintf(w, "   note: %s\n", j.Note)
		}
	}
	written := t.State == offline.FixDone || (t.State == offline.FixFailed && anyJournal(t))
	for _, v := range t.Volumes {
		fmt.Fprintf(w, "%s on volume %d: %d change(s)\n", v.Windows, v.Volume, len(v.Actions))
		switch {
		case how.verbose:
			for _, a := range v.Actions {
				writeAction(w, a)
			}
			if len(v.Ranges) > 0 {
				fmt.Fprintf(w, "   volume byte ranges (%d, %s, offsets within the volume at %#x):\n", len(v.Ranges), humanBytes(v.Bytes), v.Offset)
				for _, r := range v.Ranges {
					fmt.Fprintf(w, "      %#010x +%-6d %s\n", r.Off, r.Len, clipText(r.Label, 100))
				}
				fmt.Fprintf(w, "   the journal saves %d range(s) of the file, %s (--json: file_ranges)\n", len(v.FileRanges), humanBytes(v.FileBytes))
			}
		case written:
			for _, line := range actionLines(v.Actions) {
				state := "done  "
				if line.err != "" {
					state = "FAILED"
				}
				fmt.Fprintf(w, "  %s %s\n", state, line.text)
				if line.err != "" {
					fmt.Fprintf(w, "         error: %s\n", line.err)
				}
			}
		default:
			for _, line := range actionLines(v.Actions) {
				fmt.Fprintf(w, "  %s\n", line.text)
			}
		}
		for _, c := range v.Remaining {
			fmt.Fprintf(w, "  left alone: [%s] %s\n", c.ID, c.Reason)
		}
		switch {
		case v.Journal != "":
			fmt.Fprintf(w, "journal: %s\n", v.Journal)
		case v.JournalDir != "" && len(v.Actions) > 0 && (how.planOnly || t.State != offline.FixPlanned):
			fmt.Fprintf(w, "journal: in %s\n", v.JournalDir)
		}
		if how.planOnly {
			continue
		}
		writeVerify(w, v.Verify)
		writeCheckOutcomes(w, v.Checks)
	}
	writeRefusalList(w, "fix refused", t.Refusals)
	if t.Error != "" {
		fmt.Fprintf(w, "error: %s\n", t.Error)
		if t.Advice != "" {
			fmt.Fprintf(w, "what to do: %s\n", t.Advice)
		}
	}
	if how.planOnly {
		return
	}
	switch t.State {
	case offline.FixPlanned:
		fmt.Fprintln(w, "-> dry run: nothing written; without --dry-run it is applied (-v: byte ranges)")
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

func anyJournal(t offline.FixTargetReport) bool {
	for _, v := range t.Volumes {
		if v.Journal != "" {
			return true
		}
	}
	return false
}

// writeVerify prints the check after writing in one line, and what failed.
func writeVerify(w io.Writer, vr *offline.Verification) {
	if vr == nil {
		return
	}
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
	fmt.Fprintf(w, "verify (re-read from the device): %s: %d ranges read back; %shives checked: %s\n", state, vr.Ranges, ntfsPart, hv)
	for _, r := range vr.Mismatched {
		fmt.Fprintf(w, "   NOT on the device as written: file offset %#x +%d %s\n", r.Off, r.Len, r.Label)
	}
	for _, p := range append(append([]string{}, vr.NTFSProblems...), vr.HiveProblems...) {
		fmt.Fprintf(w, "   problem: %s\n", p)
	}
	if vr.Error != "" {
		fmt.Fprintf(w, "   error: %s\n", vr.Error)
	}
}

// writeCheckOutcomes prints the checks fixed on one line and every other
// outcome on its own.
func writeCheckOutcomes(w io.Writer, cs []offline.CheckOutcome) {
	var fixed []string
	for _, c := range cs {
		if c.After == offline.StatusFixed {
			fixed = append(fixed, c.ID)
		}
	}
	if len(fixed) > 0 {
		fmt.Fprintf(w, "fixed: %s\n", strings.Join(fixed, ", "))
	}
	for _, c := range cs {
		if c.After != offline.StatusFixed {
			fmt.Fprintf(w, "%-7s [%s] %s\n", strings.ToUpper(string(c.After)), c.ID, c.Reason)
		}
	}
}

// actionLine is one line of the summary: one change, or several deletions
// under one key.
type actionLine struct {
	text string
	err  string
}

// actionLines summarises actions one line each, merging consecutive
// deletions of values of one key (or of subkeys of one key) of a check.
func actionLines(as []offline.FixAction) []actionLine {
	var out []actionLine
	var group string // the merge key of the last line; "" none
	var names []string
	var errs []string
	flush := func(head string) {
		if group != "" {
			out = append(out, actionLine{text: head + strings.Join(names, ", "), err: strings.Join(errs, "; ")})
		}
		group, names, errs = "", nil, nil
	}
	head := ""
	for _, a := range as {
		var g, name, h string
		switch a.Op {
		case "delete-value":
			name = a.Value
			if name == "" {
				name = "(default)"
			}
			g = a.Check + "\x00v\x00" + a.Hive + `\` + a.Key
			h = fmt.Sprintf("%s: %s delete ", a.Hive, shortKey(a.Key))
		case "delete-key":
			parent, leaf := splitKey(a.Key)
			name = leaf
			g = a.Check + "\x00k\x00" + a.Hive + `\` + parent
			h = fmt.Sprintf("%s: %s delete key ", a.Hive, shortKey(parent))
		}
		if g == "" || g != group {
			flush(head)
		}
		if g == "" {
			out = append(out, actionLine{text: actionSummary(a, false), err: a.Error})
			continue
		}
		group, head = g, h
		names = append(names, name)
		if a.Error != "" {
			errs = append(errs, a.Error)
		}
	}
	flush(head)
	// Two lines alike (the same value under SOFTWARE\WOW6432Node and
	// SOFTWARE): those are not grouped, print their whole keys.
	seen := map[string]int{}
	for _, l := range out {
		seen[l.text]++
	}
	i := 0
	for _, a := range as {
		if a.Op == "delete-value" || a.Op == "delete-key" {
			continue // grouped lines keep their short keys
		}
		for i < len(out) && out[i].text != actionSummary(a, false) {
			i++
		}
		if i < len(out) && seen[out[i].text] > 1 {
			out[i].text = actionSummary(a, true)
		}
	}
	return out
}

// actionSummary is one change in a line: "rename Windows\SoftwareDistribution
// -> SoftwareDistribution.old", "SYSTEM: Services\wuauserv Start 4 -> 3".
func actionSummary(a offline.FixAction, fullKey bool) string {
	switch a.Op {
	case "rename":
		to := a.To
		if dir, base := splitKey(a.To); strings.EqualFold(dir, parentOf(a.Path)) {
			to = base
		}
		return fmt.Sprintf("rename %s -> %s", a.Path, to)
	case "comment-out":
		return fmt.Sprintf("%s: comment out %d line(s)", a.Path, len(a.Lines))
	case "rewrite":
		return fmt.Sprintf("rewrite %s", a.Path)
	}
	name := a.Value
	if name == "" {
		name = "(default)"
	}
	key := shortKey(a.Key)
	if fullKey {
		key = a.Key
	}
	return fmt.Sprintf("%s: %s %s %s -> %s", a.Hive, key, name, clipMiddle(a.Old, 30), clipMiddle(a.New, 30))
}

// shortKey is a key's last two components ("Services\wuauserv"): enough to
// recognise it on a console; -v and --json give the whole path.
func shortKey(key string) string {
	if key == "" {
		return "(root)"
	}
	parts := strings.Split(key, `\`)
	if len(parts) <= 2 {
		return key
	}
	return strings.Join(parts[len(parts)-2:], `\`)
}

// splitKey splits a registry key or a volume path at its last \.
func splitKey(p string) (parent, leaf string) {
	i := strings.LastIndexByte(p, '\\')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// clipMiddle shortens s to about n runes keeping both ends, where a path's
// file name is.
func clipMiddle(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	head := n / 3
	return string(r[:head]) + "..." + string(r[len(r)-(n-head-3):])
}

func parentOf(p string) string { parent, _ := splitKey(p); return parent }

// writeAction prints one action in full (-v): old and new data, the byte
// ranges it writes.
func writeAction(w io.Writer, a offline.FixAction) {
	switch a.Op {
	case "rename":
		fmt.Fprintf(w, "   [%s] rename %s -> %s\n", a.Check, a.Path, a.To)
	case "comment-out":
		fmt.Fprintf(w, "   [%s] edit %s: %d line(s)\n", a.Check, a.Path, len(a.Lines))
		for _, l := range a.Lines {
			fmt.Fprintf(w, "        line %d: %q -> %q\n", l.Line, l.Old, l.New)
		}
	case "rewrite":
		fmt.Fprintf(w, "   [%s] rewrite %s\n", a.Check, a.Path)
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
