package main

import (
	"fmt"
	"io"
	"strings"

	"wuoffline/offline"
)

const undoHelp = `Usage: wuoffline undo [--yes] [--json] [--last] [--journal DIR] TARGET...

Takes back what 'wuoffline fix' changed on each TARGET, from the journals fix wrote
(beside an image file, or in --journal DIR). Every saved range is compared with the
volume first: a range that still holds the fix's bytes (or a half-written mix, after a
crash) is restored to its original bytes; a range that changed since (Windows ran and
wrote it) is left alone and reported, so undo never clobbers newer data. Undo is
idempotent. By default every fix not yet undone is taken back, newest first;
--last takes back only the newest.

Options:
  -y, --yes       do not ask (required when stdin is not a terminal)
  --json          print the report as JSON
  --last          take back only the newest fix
  --journal DIR   where fix was told to keep its journals

Exit codes: 0 everything taken back (or nothing to undo), 3 refused (read-only,
in use), 4 something could not be taken back (listed) or an error.
`

// runUndo implements `wuoffline undo`.
func runUndo(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("undo", undoHelp, stdout, stderr)
	asJSON := fl.Bool("json", false, "")
	last := fl.Bool("last", false, "")
	jdir := fl.String("journal", "", "")
	yes := fl.yesFlag()
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
	rep := offline.Undo(targets, offline.UndoOptions{JournalDir: *jdir, Last: *last})
	if *asJSON {
		if code := writeJSON(stdout, stderr, "undo", rep); code >= 0 {
			return code
		}
		return rep.Exit()
	}
	for _, t := range rep.Targets {
		fmt.Fprintf(stdout, "== %s\n", t.Target)
		if t.Nothing && t.Error == "" && t.Refusal == nil {
			fmt.Fprintln(stdout, "   nothing to undo (no journal of a fix not yet undone)")
		}
		for _, j := range t.Journals {
			fmt.Fprintf(stdout, "   volume %d: %s\n      journal %s\n", j.Volume, j.Summary, j.Journal)
			for _, r := range j.NotRestored {
				fmt.Fprintf(stdout, "      NOT restored: %#x +%d %s\n", r.Off, r.Len, r.Label)
			}
			if j.Error != "" {
				fmt.Fprintf(stdout, "      error: %s\n", j.Error)
			}
		}
		if t.Refusal != nil {
			writeRefusalList(stdout, "undo refused", []offline.Refusal{*t.Refusal})
		}
		if t.Error != "" {
			fmt.Fprintf(stdout, "   error: %s\n", t.Error)
		}
	}
	return rep.Exit()
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
