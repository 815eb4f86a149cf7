package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"wuoffline/offline"
)

const undoHelp = `Usage: wuoffline undo [--json] [--last] [--journal DIR] TARGET...

Takes back what 'wuoffline fix' changed on each TARGET, from the journals fix wrote
(beside an image file, or in --journal DIR). A fix is made of units (one rename, one
hive edit, one file rewrite); units sharing a cluster go together. Each is taken back
whole or left whole, never in part: its saved ranges are compared with the volume
first, and only when every one still holds the fix's bytes (or a half-written mix,
after a crash) or the original is the unit restored. A unit that changed since (Windows
booted and wrote there: it recreated SoftwareDistribution) is left as it is now and
listed with why and what you can do, so undo never clobbers newer data and never
leaves a half-undone rename. Undo is idempotent. By default every fix not yet undone
is taken back, newest first; --last takes back only the newest.

A damaged, cut, missing or unreadable journal is reported as such (which file, what
damage, how many units are still whole in it, whether the fix had started writing):
only the units it still describes whole are taken back, and the journal file is kept
as it is for inspection.

Exit codes:
  0  everything taken back (or no journal of a fix not yet undone in the journal
     directory: "nothing to undo" names the directory searched)
  3  refused, nothing written (read-only, in use)
  4  something could not be taken back: a unit changed since (listed as LEFT with
     why), a damaged or missing journal, or an error
`

// runUndo implements `wuoffline undo`.
func runUndo(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("undo", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	asJSON := fl.Bool("json", false, "")
	last := fl.Bool("last", false, "")
	jdir := fl.String("journal", "", "")
	help := fl.Bool("help", false, "")
	fl.BoolVar(help, "h", false, "")
	if err := fl.Parse(args); err != nil {
		fmt.Fprintf(stderr, "wuoffline undo: %v\n\n%s", err, undoHelp)
		return exitUsage
	}
	if *help {
		fmt.Fprint(stdout, undoHelp)
		return exitOK
	}
	targets := fl.Args()
	if len(targets) == 0 {
		fmt.Fprintf(stderr, "wuoffline undo: no TARGET given\n\n%s", undoHelp)
		return exitUsage
	}
	for _, t := range targets {
		if strings.HasPrefix(t, "-") {
			fmt.Fprintf(stderr, "wuoffline undo: options go before the TARGETs (%q)\n", t)
			return exitUsage
		}
	}
	rep := offline.Undo(targets, offline.UndoOptions{JournalDir: *jdir, Last: *last})
	if *asJSON {
		if code := writeJSON(stdout, stderr, "undo", rep); code >= 0 {
			return code
		}
		return rep.Exit()
	}
	for _, t := range rep.Targets {
		writeUndoTarget(stdout, t)
	}
	return rep.Exit()
}

// writeUndoTarget prints what undo did on one target, unit by unit.
func writeUndoTarget(w io.Writer, t offline.UndoTargetReport) {
	fmt.Fprintf(w, "== %s\n", t.Target)
	if t.Nothing && t.Error == "" && t.Refusal == nil {
		fmt.Fprintf(w, "   nothing to undo: no journal of a fix not yet undone in %s\n", t.JournalDir)
		fmt.Fprintln(w, "   (if fix wrote its journal elsewhere, name that directory with --journal DIR; a fix whose journal was deleted cannot be undone)")
	}
	for _, j := range t.Journals {
		fmt.Fprintf(w, "   volume %d: %s\n      journal %s\n", j.Volume, j.Summary, j.Journal)
		for _, u := range j.Units {
			if !u.Left {
				fmt.Fprintf(w, "      %-16s %s\n", u.Outcome, clipText(u.Label, 120))
				continue
			}
			fmt.Fprintf(w, "      LEFT (%s) %s\n", u.Outcome, u.Label)
			if u.Why != "" {
				fmt.Fprintf(w, "         why: %s\n", u.Why)
			}
			if u.Advice != "" {
				fmt.Fprintf(w, "         what to do: %s\n", u.Advice)
			}
		}
		if len(j.Units) == 0 {
			for _, r := range j.NotRestored {
				fmt.Fprintf(w, "      NOT restored: %#x +%d %s\n", r.Off, r.Len, r.Label)
			}
		}
		if j.Damage != nil {
			fmt.Fprintf(w, "      JOURNAL DAMAGED: %s\n", j.Damage)
			if j.Damage.Advice != "" {
				fmt.Fprintf(w, "         what to do: %s\n", j.Damage.Advice)
			}
		} else if j.Error != "" {
			fmt.Fprintf(w, "      error: %s\n", j.Error)
		}
	}
	if t.Refusal != nil {
		writeRefusalList(w, "undo refused", []offline.Refusal{*t.Refusal})
	}
	if t.Error != "" {
		fmt.Fprintf(w, "   error: %s\n", t.Error)
	}
}

// writeRefusalList prints refusals with their way out.
func writeRefusalList(w io.Writer, what string, rs []offline.Refusal) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintf(w, "   %s (nothing written):\n", what)
	for _, r := range rs {
		fmt.Fprintf(w, "     [%s] %s\n         what to do: %s\n", r.ID, r.Reason, r.Advice)
	}
}
