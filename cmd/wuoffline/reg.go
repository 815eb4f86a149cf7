package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/wuoffline/wuoffline/offline"
	"github.com/wuoffline/wuoffline/session"
)

const regHelp = `Usage:
  wuoffline reg export HIVE [KEY]
  wuoffline reg get    HIVE KEY [VALUE]
  wuoffline reg set    [--dry-run] [--yes] [--time RFC3339] HIVE KEY VALUE TYPE DATA
  wuoffline reg delete [--dry-run] [--yes] [--time RFC3339] HIVE KEY [VALUE]
  wuoffline reg check  HIVE
  wuoffline reg undo   [--yes] HIVE

An offline regedit for registry hive files (SYSTEM, SOFTWARE, NTUSER.DAT...).

KEY is a path below the hive's root with \ separators, matched
case-insensitively as Windows does; "" is the root. VALUE "" is the key's
default value. TYPE is REG_SZ, REG_EXPAND_SZ, REG_MULTI_SZ, REG_DWORD,
REG_QWORD, REG_BINARY or REG_NONE. DATA is the text for REG_SZ and
REG_EXPAND_SZ; the strings separated by \0 for REG_MULTI_SZ; a number in
decimal or 0x hex for REG_DWORD and REG_QWORD; hex bytes ("01 02 ff",
"01,02,ff" or "0102ff") for REG_BINARY and REG_NONE.

Transaction logs beside the hive (HIVE.LOG1, HIVE.LOG2, any case) are used
when the hive is dirty: reading shows the recovered state, and the first
write saves it, so the hive is clean afterwards.

set creates missing keys along KEY; delete removes a key with its whole
subtree, or one value. Both write the hive file in place, after saving the
bytes they change in a journal beside the hive; 'reg undo HIVE' takes the
newest change back. They refuse a hive the checker finds damaged (run
'reg check') and a hive with an interrupted change (run 'reg undo').
'reg undo' exits 4 when it cannot take the change back whole: bytes changed
since (Windows wrote the hive), or a journal beside the hive is damaged, cut
or unreadable (it restores only what the journal still describes whole, and
names the file and the damage).

Options:
  -n, --dry-run   print the planned changes and the byte ranges; write nothing
  -y, --yes       write without asking (required when stdin is not a terminal)
  --time RFC3339  the last-written time stamped into the keys and the hive
                  header the change writes (default: now), e.g.
                  2026-12-04T19:00:00Z: the same change with the same --time
                  on two copies of a hive gives the same bytes

export prints a .reg-style text (UTF-8): [\KEY] headers, "name"="text" for
strings, dword:xxxxxxxx, hex(N):.. for other types, @ for the default value.
`

func runReg(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("reg", regHelp, stdout, stderr)
	// After SUBCOMMAND and HIVE, a word that is not an option is an
	// argument: DATA such as "-1".
	fl.looseAfter = 2
	dry := fl.boolFlag("dry-run", "n")
	yes := fl.yesFlag()
	stamp := fl.timeFlag()
	pos, code, done := fl.parse(args, 2, -1)
	if done {
		return code
	}
	sub, rest := pos[0], pos[1:]
	nargs := map[string][2]int{"export": {1, 2}, "get": {2, 3}, "set": {5, 5}, "delete": {2, 3}, "check": {1, 1}, "undo": {1, 1}}
	lim, ok := nargs[sub]
	switch {
	case !ok:
		return fl.usageError("unknown subcommand %q (export, get, set, delete, check, undo)", sub)
	case len(rest) < lim[0] || len(rest) > lim[1]:
		return fl.usageError("reg %s takes %d to %d arguments, not %d", sub, lim[0], lim[1], len(rest))
	case *dry && sub != "set" && sub != "delete":
		return fl.usageError("--dry-run is for reg set and reg delete")
	case *yes && sub != "set" && sub != "delete" && sub != "undo":
		return fl.usageError("--yes is for reg set, reg delete and reg undo")
	case !stamp.IsZero() && sub != "set" && sub != "delete":
		return fl.usageError("--time is for reg set and reg delete")
	}
	c := &regCmd{stdout: stdout, stderr: stderr, path: rest[0], dry: *dry, now: *stamp}
	if sub == "export" || sub == "get" || sub == "check" {
		return c.read(sub, rest[1:])
	}
	// Writing needs --yes or a yes on the terminal (after the arguments
	// are known to be good, so a typo is reported first).
	confirm := func() (int, bool) {
		ask, code, done := fl.confirmer(*yes)
		if done {
			return code, true
		}
		if !ask(fmt.Sprintf("reg %s %s: write it?", sub, strings.Join(rest, " "))) {
			fmt.Fprintln(stderr, "wuoffline reg: declined: nothing written")
			return exitOK, true
		}
		return 0, false
	}
	if sub == "undo" {
		if code, stop := confirm(); stop {
			return code
		}
		return c.undo()
	}
	var (
		ch  offline.RegChange
		err error
	)
	if sub == "set" {
		ch, err = offline.ParseRegChange("set", rest[1], &rest[2], rest[3], rest[4])
	} else if len(rest) == 3 {
		ch, err = offline.ParseRegChange("delete", rest[1], &rest[2], "", "")
	} else {
		ch, err = offline.ParseRegChange("delete", rest[1], nil, "", "")
	}
	if err != nil {
		return c.fail(exitUsage, "%s", strings.TrimPrefix(err.Error(), "usage: "))
	}
	if !*dry {
		if code, stop := confirm(); stop {
			return code
		}
	}
	return c.edit(ch)
}

// regCmd is one run of reg on a hive file.
type regCmd struct {
	stdout, stderr io.Writer
	path           string
	dry            bool
	now            time.Time // --time (zero: now)
}

func (c *regCmd) fail(code int, format string, args ...any) int {
	fmt.Fprintf(c.stderr, "wuoffline reg: "+format+"\n", args...)
	return code
}

// read runs export, get and check.
func (c *regCmd) read(sub string, args []string) int {
	r, err := offline.OpenRegFile(c.path)
	if err != nil {
		return c.fail(exitError, "%v", err)
	}
	defer r.Close()
	if n := r.DirtyNote(); n != "" {
		fmt.Fprintf(c.stderr, "wuoffline reg: %s\n", n)
	}
	switch {
	case sub == "check":
		if !r.Check(c.stdout) {
			return exitProblem
		}
		return exitOK
	case sub == "export":
		key := ""
		if len(args) > 0 {
			key = args[0]
		}
		err = r.Export(c.stdout, key)
	case len(args) == 2:
		var line string
		if line, err = r.GetValue(args[0], args[1]); err == nil {
			fmt.Fprintln(c.stdout, line)
		}
	default:
		err = r.GetKey(c.stdout, args[0])
	}
	if err != nil {
		return c.fail(exitError, "%v", err)
	}
	return exitOK
}

// refused prints a session refusal.
func (c *regCmd) refused(err error) (int, bool) {
	var re *session.RefusedError
	if !errors.As(err, &re) {
		return 0, false
	}
	for _, r := range re.Refusals {
		fmt.Fprintf(c.stderr, "wuoffline reg: %s; refusing to write, nothing written\n  what to do: %s\n", r.Reason, r.Advice)
	}
	return exitRefused, true
}

// edit plans one change on an overlay of the hive file, prints it, and
// unless it is a dry run journals and applies it.
func (c *regCmd) edit(ch offline.RegChange) int {
	res, err := offline.RegEdit(c.path, ch, c.dry, "wuoffline reg "+version, c.now)
	if res != nil {
		for _, n := range res.Notes {
			fmt.Fprintf(c.stderr, "wuoffline reg: %s\n", n)
		}
	}
	if code, ok := c.refused(err); ok {
		return code
	}
	if err != nil && (res == nil || res.Journal == "") {
		return c.fail(exitError, "%v; nothing written", err)
	}
	for _, ch := range res.Changes {
		fmt.Fprintln(c.stdout, ch)
	}
	if res.SizeAfter > res.SizeBefore {
		fmt.Fprintf(c.stdout, "the file grows from %d to %d bytes\n", res.SizeBefore, res.SizeAfter)
	}
	if err != nil {
		return c.fail(exitError, "%v\nthe change was interrupted; take it back with: wuoffline reg undo %s", err, c.path)
	}
	if c.dry {
		fmt.Fprintf(c.stdout, "dry run: %d byte ranges would change (%d bytes); nothing written\n", len(res.Ranges), res.Bytes)
		for _, r := range res.Ranges {
			fmt.Fprintf(c.stdout, "  0x%08x +%d\n", r.Off, r.Len)
		}
		return exitOK
	}
	fmt.Fprintf(c.stdout, "changed %d byte ranges (%d bytes) of %s\n", len(res.Ranges), res.Bytes, c.path)
	fmt.Fprintf(c.stdout, "journal: %s\nundo with: wuoffline reg undo %s\n", res.Journal, c.path)
	return exitOK
}

// undo takes back the newest change journaled for the hive.
func (c *regCmd) undo() int {
	u, err := offline.RegUndo(c.path)
	if code, ok := c.refused(err); ok {
		return code
	}
	if u != nil && u.Report != nil {
		fmt.Fprintln(c.stdout, offline.RegJournalNote(u))
	}
	if u != nil {
		for _, d := range u.Damaged {
			fmt.Fprintf(c.stdout, "journal DAMAGED: %s\n", d)
		}
	}
	if err != nil {
		return c.fail(exitError, "%v", err)
	}
	if len(u.Damaged) > 0 {
		return c.fail(exitError, "undo incomplete: %d damaged journal(s) beside the hive (listed above)", len(u.Damaged))
	}
	if !u.Complete {
		return c.fail(exitError, "undo incomplete: some ranges changed since the change (Windows wrote the hive?); they were left alone")
	}
	if u.CutTo > 0 {
		fmt.Fprintf(c.stdout, "file cut back to its size before the change (%d bytes)\n", u.CutTo)
	}
	return exitOK
}
