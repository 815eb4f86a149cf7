package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/wuoffline/wuoffline/offline"
)

const undoHelp = `Usage: wuoffline undo [--yes] [--json] [--jobs N] [--last] [--journal DIR] TARGET...

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

Options:
  -y, --yes       do not ask (required when stdin is not a terminal)
  --json          print one JSON document per TARGET, one a line (JSON Lines;
                  docs/undo.schema.json)
  --jobs N        work on at most N TARGETs at once (default: the CPUs)
  --last          take back only the newest fix
  --journal DIR   where fix was told to keep its journals
`

// runUndo implements `wuoffline undo`.
func runUndo(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("undo", undoHelp, stdout, stderr)
	asJSON := fl.Bool("json", false, "")
	last := fl.Bool("last", false, "")
	jdir := fl.String("journal", "", "")
	yes := fl.yesFlag()
	jobs := fl.jobsFlag()
	targets, code, done := fl.parse(args, 1, -1)
	if done {
		return code
	}
	ask, code, done := fl.confirmer(*yes)
	if done {
		return code
	}
	if !ask(fmt.Sprintf("Take back the journaled fixes on %s?", strings.Join(targets, ", "))) {
		fmt.Fprintln(stderr, "wuoffline undo: declined: nothing was written")
		return exitOK
	}
	opts := offline.UndoOptions{JournalDir: *jdir, Last: *last}
	prog := newProgressLine(stderr, len(targets))
	return fleetRun[offline.UndoTargetReport]{
		command: "undo", stdout: stdout, stderr: stderr, jobs: *jobs, asJSON: *asJSON, prog: prog,
		do: func(t string) offline.UndoTargetReport {
			prog.report(t, "taking the fixes back")
			return offline.UndoTarget(t, opts)
		},
		exit:    func(t offline.UndoTargetReport) int { return t.Exit },
		outcome: undoOutcome,
		document: func(t offline.UndoTargetReport) any {
			return offline.NewUndoDocument(header("undo"), t)
		},
		text: writeUndoTarget,
	}.run(targets)
}

// undoOutcome names a target's undo in the summary line.
func undoOutcome(t offline.UndoTargetReport) string {
	if t.State == offline.FixNothing {
		return "nothing to undo"
	}
	return t.State
}

// writeUndoTarget prints what undo did on one target, unit by unit,
// wrapped to the console's width.
func writeUndoTarget(out io.Writer, t offline.UndoTargetReport) {
	w := newWrapWriter(out)
	defer w.Flush()
	fmt.Fprintf(w, "== %s\n", t.Target)
	if t.State == offline.FixNothing {
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
			if u.Reason != "" {
				fmt.Fprintf(w, "         why: %s\n", u.Reason)
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
		if j.Note != "" {
			fmt.Fprintf(w, "      note: %s\n", j.Note)
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
