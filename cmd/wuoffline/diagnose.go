package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"

	"github.com/wuoffline/wuoffline/internal/bytesize"
	"github.com/wuoffline/wuoffline/offline"
	"github.com/wuoffline/wuoffline/session"
)

const diagnoseHelp = `Usage: wuoffline diagnose [--json] [--jobs N] [--letter X:] [--journal DIR] TARGET...

Find every Windows installation on each TARGET and report what stops Windows
Update (error 0x80070002 and friends) or stops Windows from starting after an
update. Read-only: diagnose never writes a byte.

TARGET is a disk or volume image (raw .img, VHD, VHDX, qcow2), a block device
(/dev/sdb, /dev/nvme0n1p3), a directory where the Windows volume is mounted,
or on Windows a drive letter (D:). Several TARGETs are read in parallel (--jobs)
and reported in the order given, each as soon as it and those before it are
done; text output ends with a summary ("3 targets: 2 to fix, 1 healthy").
On Windows (WinPE) with no TARGET, every fixed volume is looked at, and the
ones without Windows do not count for the exit code.

Options:
  --json        print one JSON document per TARGET, one a line (JSON Lines;
                docs/diagnose.schema.json) for scripts
  --jobs N      diagnose at most N TARGETs at once (default: the CPUs)
  --letter X:   the drive letter WinPE gives the Windows volume, used in the
                printed sfc/dism commands (default: the TARGET's letter when
                it is one, else D: as a placeholder)
  --journal DIR where 'wuoffline fix' was told to keep its journals; an
                interrupted fix found there (or in the default place: beside
                an image file, or this program's directory) is reported as a
                refusal with how to roll it back or finish it

What it looks at (ids as in 'wuoffline fix'):
  failed startup:       pending-xml cbs-pending components-markers setup-execute
                        servicing-triggers pending-renames reboot-flags txr
  failed installation:  softwaredistribution catroot2 bits-queue services
                        service-config renamed-binaries update-tasks wu-policies
                        group-policy-file update-pause ifeo-debuggers hosts
                        firewall proxy os-upgrade clock minifilters
  and the logs: CBS.log, CbsPersist_*.log, SrtTrail.txt, ReportingEvents.log,
  WindowsUpdate.log, setuperr.log, dism.log, System.evtx.

Each check says: problem (wuoffline fix repairs it), info (worth knowing),
ok, skipped or failed (could not be read).

Exit codes:
  0  nothing to fix
  1  problems found that 'wuoffline fix' would repair
  2  usage error
  3  'wuoffline fix' would refuse for safety (BitLocker, hibernation or Fast
     Startup, NTFS dirty flag, unreadable hive, mounted device...); the
     report still shows all it could read, and says what to do
  4  other error (target unreadable, no Windows found)
  With several TARGETs, the highest code of any of them.

Examples:
  wuoffline diagnose /dev/nvme0n1          # a whole disk, from a Linux rescue stick
  wuoffline diagnose D:                    # in WinPE, the Windows volume
  wuoffline diagnose --json disk-*.img     # many VM disks, one JSON line each

In WinPE, find the Windows volume's letter with: diskpart, then list volume
(it is rarely C: there). On Linux, lsblk -f lists the NTFS partitions.
Next step: 'wuoffline fix TARGET' repairs what diagnose reports as problem;
'wuoffline fix --help' lists the opt-ins (wsus, proxy, os-upgrade, txr).
`

// runDiagnose implements `wuoffline diagnose`.
func runDiagnose(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("diagnose", diagnoseHelp, stdout, stderr)
	asJSON := fl.Bool("json", false, "")
	letter := fl.String("letter", "", "")
	journalDir := fl.String("journal", "", "")
	jobs := fl.jobsFlag()
	// At a WinPE prompt with no TARGET: every fixed volume, and only the
	// ones holding Windows count for the exit code.
	minTargets := 1
	if runtime.GOOS == "windows" {
		minTargets = 0
	}
	targets, code, done := fl.parse(args, minTargets, -1)
	if done {
		return code
	}
	auto := len(targets) == 0
	if auto {
		vols, err := session.FixedVolumes()
		if err != nil || len(vols) == 0 {
			fmt.Fprintf(stderr, "wuoffline diagnose: no TARGET given and no fixed volume found (%v): name the Windows volume, e.g. D: (diskpart, list volume)\n", err)
			return exitError
		}
		fmt.Fprintf(stderr, "wuoffline diagnose: no TARGET given: looking at every fixed volume: %s\n", strings.Join(vols, " "))
		targets = vols
	}
	if *letter != "" && !offline.IsDriveLetter(*letter) {
		return fl.usageError("--letter %q is not a drive letter like D:", *letter)
	}
	for _, t := range targets {
		if runtime.GOOS != "windows" && offline.IsDriveLetter(t) {
			if _, err := os.Stat(t); err != nil {
				// Not found, as any missing TARGET: exit 4, not a usage error.
				fmt.Fprintf(stderr, "wuoffline diagnose: %q is a Windows drive letter; on %s name the device (/dev/sdb2, see lsblk), the image file, or the directory where the volume is mounted\n", t, runtime.GOOS)
				return exitError
			}
		}
	}
	opts := offline.Options{Letter: strings.ToUpper(strings.TrimRight(*letter, `\`)), JournalDir: *journalDir}
	prog := newProgressLine(stderr, len(targets))
	opts.Progress = prog.report
	return fleetRun[offline.TargetReport]{
		command: "diagnose", stdout: stdout, stderr: stderr, jobs: *jobs, asJSON: *asJSON, prog: prog,
		do: func(t string) offline.TargetReport { return offline.DiagnoseTarget(t, opts) },
		exit: func(t offline.TargetReport) int {
			if auto && len(t.Installations) == 0 && t.Exit == exitError {
				return exitOK // a data volume, not a failure
			}
			return t.Exit
		},
		outcome: func(t offline.TargetReport) string { return diagnoseOutcome(t.Exit) },
		document: func(t offline.TargetReport) any {
			return offline.NewDiagnoseDocument(header("diagnose"), t)
		},
		text: writeDiagnoseTarget,
	}.run(targets)
}

// diagnoseOutcome names a target's exit code in the summary line.
func diagnoseOutcome(code int) string {
	switch code {
	case exitOK:
		return "healthy"
	case exitProblem:
		return "to fix"
	case exitRefused:
		return "refused"
	}
	return "failed"
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// writeDiagnoseTarget prints a target's report for people: per Windows
// installation, the cases (most important first), every problem with its
// evidence and fix, then the commands for WinPE, then safety refusals.
func writeDiagnoseTarget(out io.Writer, t offline.TargetReport) {
	w := newWrapWriter(out) // to the console's width, continuations indented
	defer w.Flush()
	fmt.Fprintf(w, "== %s", t.Target)
	if t.Kind != "" {
		fmt.Fprintf(w, " (%s", t.Kind)
		if t.Table != "" {
			fmt.Fprintf(w, ", %s", strings.ToUpper(t.Table))
		}
		if t.SectorSize != 0 {
			fmt.Fprintf(w, ", %d-byte sectors", t.SectorSize)
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintln(w)
	for _, v := range t.Volumes {
		if t.Kind == "directory" {
			break
		}
		line := fmt.Sprintf("   volume %d: %s, %s", v.Index, v.Content, humanBytes(v.Size))
		if v.Type != "" {
			line += ", " + v.Type
		}
		if v.Name != "" {
			line += fmt.Sprintf(" %q", v.Name)
		}
		if v.Windows {
			line += "  <- Windows"
		}
		if v.Note != "" {
			line += " (" + v.Note + ")"
		}
		if v.Error != "" {
			line += " (unreadable: " + v.Error + ")"
		}
		fmt.Fprintln(w, line)
	}
	if t.Error != "" {
		fmt.Fprintf(w, "ERROR: %s\n", t.Error)
		if t.Advice != "" && !strings.Contains(t.Error, t.Advice) {
			fmt.Fprintf(w, "  what to do: %s\n", t.Advice)
		}
	}
	for _, in := range t.Installations {
		writeInstallation(w, t, in)
	}
	writeRefusals(w, "this target", t.Refusals)
	fmt.Fprintf(w, "-> exit %d: %s\n", t.Exit, exitMeaning(t.Exit))
}

func exitMeaning(code int) string {
	switch code {
	case exitOK:
		return "nothing to fix"
	case exitProblem:
		return "problems found; `wuoffline fix` repairs them"
	case exitRefused:
		return "`wuoffline fix` would refuse for safety (see above)"
	}
	return "error"
}

func writeInstallation(w io.Writer, t offline.TargetReport, in offline.InstallationReport) {
	where := "the directory"
	if t.Kind != "directory" {
		where = fmt.Sprintf("volume %d", in.Volume)
	}
	fmt.Fprintf(w, "\nWindows on %s: %s\n", where, in.Version.String())
	var cases []string
	for _, c := range in.Cases {
		cases = append(cases, caseTitle(c))
	}
	fmt.Fprintf(w, "Diagnosis: %s\n", strings.Join(cases, " + "))
	if lf := in.LastFailure; lf != nil {
		fmt.Fprintf(w, "Past evidence: %s\n", pastFailure(lf, containsCase(in.Cases, offline.CaseHealthy)))
	}

	order := append([]offline.Case{}, in.Cases...)
	for _, c := range []offline.Case{offline.CaseStartup, offline.CaseInstall} {
		if !containsCase(order, c) {
			order = append(order, c)
		}
	}
	shown := map[string]string{} // evidence line -> the check it was printed under
	for _, c := range order {
		var probs, infos []offline.Result
		for _, r := range in.Checks {
			if r.Case != c {
				continue
			}
			switch r.Status {
			case offline.StatusProblem, offline.StatusFailed:
				probs = append(probs, r)
			case offline.StatusInfo:
				infos = append(infos, r)
			}
		}
		if len(probs) == 0 && len(infos) == 0 {
			continue
		}
		title := caseTitle(c)
		if !containsCase(in.Cases, c) {
			// Only notes for a case that does not apply: do not shout.
			title = map[offline.Case]string{offline.CaseStartup: "notes on startup", offline.CaseInstall: "notes on updates"}[c]
		}
		fmt.Fprintf(w, "\n-- %s --\n", title)
		// Problems first, those with most evidence first (stable).
		sort.SliceStable(probs, func(i, j int) bool {
			return probs[i].Status == offline.StatusProblem && probs[j].Status != offline.StatusProblem
		})
		for _, r := range probs {
			label := "PROBLEM"
			if r.Status == offline.StatusFailed {
				label = "FAILED "
			}
			fmt.Fprintf(w, "%s [%s] %s\n", label, r.ID, r.Summary)
			if r.Error != "" {
				fmt.Fprintf(w, "        error: %s\n", r.Error)
			}
			writeEvidence(w, r.ID, r.Evidence, shown)
			if r.Fix != "" {
				fix := r.Fix
				if r.OptIn != "" {
					fix += " (opt-in: " + r.OptIn + ")"
				}
				fmt.Fprintf(w, "        fix: %s\n", fix)
			}
		}
		for _, r := range infos {
			fmt.Fprintf(w, "info    [%s] %s\n", r.ID, r.Summary)
			if r.OptIn != "" && r.Fix != "" {
				fmt.Fprintf(w, "        %s\n", r.Fix)
			}
		}
	}
	writeLogs(w, in.Logs)
	var ok []string
	for _, r := range in.Checks {
		if r.Status == offline.StatusOK || r.Status == offline.StatusSkipped {
			ok = append(ok, r.ID)
		}
	}
	if len(ok) > 0 {
		fmt.Fprintf(w, "\nok: %s\n", strings.Join(ok, ", "))
	}
	if len(in.Commands) > 0 {
		fmt.Fprintln(w, "\nCommands only WinPE/WinRE can run (not done by wuoffline):")
		for _, c := range in.Commands {
			fmt.Fprintf(w, "  %s\n      %s\n", c.Line, c.Why)
		}
		if !in.LetterKnown {
			fmt.Fprintf(w, "  %s is a placeholder: use the letter WinPE gives this volume (see `diskpart` > `list volume`), or pass --letter.\n", in.Letter)
		}
	}
	writeRefusals(w, "this installation", in.Safety.Refusals)
}

// maxEvidenceLines is how many evidence lines a check prints (the rest are
// in --json): a console shows 25 lines.
const maxEvidenceLines = 6

// writeLogs prints the logs that show failures (and the presence-only ones).
func writeLogs(w io.Writer, logs []offline.LogFinding) {
	header := false
	for _, l := range logs {
		if l.Failures == 0 && l.Error == "" {
			continue
		}
		if !header {
			fmt.Fprintln(w, "\nEvidence in logs:")
			header = true
		}
		line := fmt.Sprintf("  %s: %d failure line(s)", l.Path, l.Failures)
		if l.Tail {
			line += " (last 4 MiB read)"
		}
		if l.Error != "" {
			line += " (unreadable: " + l.Error + ")"
		}
		fmt.Fprintln(w, line)
		for _, c := range l.RootCauses {
			fmt.Fprintf(w, "      root cause: %s\n", c)
		}
		if len(l.KBs) > 0 {
			fmt.Fprintf(w, "      updates: %s\n", strings.Join(l.KBs, ", "))
		}
		for _, f := range l.MissingFiles {
			fmt.Fprintf(w, "      missing file: %s\n", f)
		}
		if n := len(l.Excerpts); n > 0 {
			x := l.Excerpts[n-1]
			loc := ""
			if x.Line > 0 {
				loc = fmt.Sprintf("line %d: ", x.Line)
			}
			fmt.Fprintf(w, "      last: %s%s\n", loc, clipText(x.Text, 200))
		}
	}
}

// writeEvidence prints a check's evidence, each line once per installation:
// a line already printed under another check (the same CBS.log failure
// behind softwaredistribution and catroot2) is only counted.
func writeEvidence(w io.Writer, id string, evs []offline.Evidence, shown map[string]string) {
	printed, again := 0, map[string]int{}
	var order []string
	for i, e := range evs {
		line := evidenceLine(e)
		if first, ok := shown[line]; ok && first != id {
			if again[first] == 0 {
				order = append(order, first)
			}
			again[first]++
			continue
		}
		if printed == maxEvidenceLines {
			fmt.Fprintf(w, "        ... and %d more (see --json)\n", len(evs)-i)
			break
		}
		shown[line] = id
		printed++
		fmt.Fprintf(w, "        - %s\n", clipText(line, 140))
	}
	for _, first := range order {
		fmt.Fprintf(w, "        - and %d line(s) shown under [%s]\n", again[first], first)
	}
}

func evidenceLine(e offline.Evidence) string {
	var loc string
	switch e.Kind {
	case "value":
		loc = e.Hive + `\` + e.Key
		if e.Key == "" {
			loc = e.Hive
		}
		name := e.Value
		if name == "" {
			name = "(default)"
		}
		loc += " : " + name
		if e.Old != "" {
			loc += " = " + clipText(e.Old, 100)
		}
	case "key":
		loc = e.Hive + `\` + e.Key
	case "line", "log":
		loc = e.Path
		if e.Line > 0 {
			loc += fmt.Sprintf(":%d", e.Line)
		}
		if e.Kind == "line" && e.Old != "" {
			loc += "  " + clipText(e.Old, 100)
		}
	case "rename":
		return e.Detail
	default:
		loc = e.Path
	}
	if e.OptIn != "" {
		loc += " [opt-in " + e.OptIn + "]"
	}
	if e.Detail == "" {
		return loc
	}
	if loc == "" {
		return e.Detail
	}
	return loc + " — " + clipText(e.Detail, 300)
}

func writeRefusals(w io.Writer, what string, rs []offline.Refusal) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintf(w, "\nSAFETY: `wuoffline fix` would refuse %s:\n", what)
	for _, r := range rs {
		fmt.Fprintf(w, "  [%s] %s\n      what to do: %s\n", r.ID, r.Reason, r.Advice)
	}
}

// pastFailure is "last failure 2024-09-12 (Windows\Logs\CBS\CBS.log): ...";
// on a healthy installation it says that this is history.
func pastFailure(lf *offline.PastFailure, healthy bool) string {
	s := "last failure"
	if lf.Time != nil {
		s += " " + lf.Time.Format("2006-01-02")
	}
	s += " (" + lf.Path + "): " + clipText(lf.Text, 160)
	if healthy {
		s += " [history: nothing wuoffline repairs is left on the disk]"
	}
	return s
}

func caseTitle(c offline.Case) string {
	switch c {
	case offline.CaseStartup:
		return "FAILED STARTUP (Windows does not boot after an update)"
	case offline.CaseInstall:
		return "FAILED INSTALLATION (updates fail to download or install)"
	case offline.CaseHealthy:
		return "healthy (no problem that wuoffline repairs)"
	}
	return string(c)
}

func containsCase(cs []offline.Case, c offline.Case) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

func clipText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "..."
}

// humanBytes renders a byte count (fix.go uses it too).
func humanBytes(n int64) string { return bytesize.Format(n) }
