package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/wuoffline/wuoffline/offline"
	"github.com/wuoffline/wuoffline/session"
)

const mvHelp = `Usage: wuoffline mv [--yes] [--dry-run] [--partition N] [--journal DIR] [--time RFC3339]
                    TARGET OLD NEW

Rename or move a file or directory on an NTFS volume without mounting it,
the way Windows and ntfs-3g do (index B-tree insert and delete, Win32 and
DOS names, link counts, parent times). OLD and NEW are paths from the volume
root, with \ or /; NEW's directory must exist and NEW must not.

Before writing, mv refuses volumes that are not safe to write (hibernated,
Fast Startup, unclean $LogFile, dirty), prints the exact byte ranges it will
change and asks for confirmation on a terminal. The rename is planned in
memory; the original and new bytes of every range are saved in a journal
(beside an image file, or --journal DIR / this program's directory for a
device) and flushed before the volume is written, exactly as 'wuoffline fix'
does, and the touched directories are checked on the device afterwards.
'wuoffline undo TARGET' takes the rename back byte for byte.

Options:
  -y, --yes       do not ask (required when stdin is not a terminal)
  -n, --dry-run   only print what would change
  --partition N   the partition holding the volume (see 'wuoffline ls --help')
  --journal DIR   where the undo journal goes (default: beside an image file,
                  or this program's directory for a device)
  --time RFC3339  the time written into the NTFS times the rename changes
                  (default: now), e.g. 2026-12-04T19:00:00Z: the same rename
                  with the same --time on two copies of a volume gives the
                  same bytes
`

func runMv(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("mv", mvHelp, stdout, stderr)
	yes := fl.yesFlag()
	dry := fl.boolFlag("dry-run", "n")
	journalFlag := fl.String("journal", "", "")
	partition := fl.Int("partition", 0, "")
	stamp := fl.timeFlag()
	pos, code, done := fl.parse(args, 3, 3)
	if done {
		return code
	}
	target, oldPath, newPath := pos[0], pos[1], pos[2]
	if samePath(oldPath, newPath) {
		return fl.usageError("OLD and NEW are the same path (%s): nothing to rename", oldPath)
	}
	var ask func(string) bool
	if !*dry {
		if ask, code, done = fl.confirmer(*yes); done {
			return code
		}
	}
	refused := func(what string, rs []session.Refusal) int {
		fmt.Fprintf(stderr, "wuoffline mv: %s: refused, nothing written:\n", what)
		for _, r := range rs {
			fmt.Fprintf(stderr, "  %s: %s\n    what to do: %s\n", r.ID, r.Reason, r.Advice)
		}
		return exitRefused
	}
	// The same session as fix: exclusive access (or, for a dry run, the
	// refusals a write would meet), the journal's place and device.
	s, v, err := ntOpen(target, *partition, session.Options{Write: !*dry, DryRun: *dry, JournalDir: *journalFlag, Now: offline.StampClock(*stamp)})
	var re *session.RefusedError
	if errors.As(err, &re) {
		return refused(target, re.Refusals)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wuoffline mv: %v\n", err)
		return exitError
	}
	defer s.Close()
	// A fix interrupted on this target left it half-made: renaming on top
	// of that would make the journal's undo report "changed since" instead
	// of restoring. Refuse, and say how to roll back or finish.
	if rs := append(s.Refusals(), s.InterruptedRefusals()...); len(rs) > 0 {
		return refused(target, rs)
	}
	// The rename is made in an overlay of the target (the dry run: nothing
	// reaches the device), then journaled and written by Commit.
	p, err := s.Plan(v)
	if errors.As(err, &re) {
		return refused(v.Describe(), re.Refusals)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wuoffline mv: %s: %v\n", v.Describe(), err)
		return exitError
	}
	note := fmt.Sprintf("mv %s -> %s", oldPath, newPath)
	if _, err := p.Rename(note, oldPath, newPath); err != nil {
		if errors.As(err, &re) {
			return refused(v.Describe(), re.Refusals)
		}
		fmt.Fprintf(stderr, "wuoffline mv: %s: %v\n", v.Describe(), err)
		if errors.Is(err, session.ErrExist) {
			return exitUsage
		}
		return exitError
	}
	before, bad := p.Check()
	if len(bad) > 0 {
		fmt.Fprintf(stderr, "wuoffline mv: %s: the planned state fails the NTFS check, nothing written:\n  %s\n", v.Describe(), strings.Join(bad, "\n  "))
		return exitError
	}
	rs := p.Ranges()
	fmt.Fprintf(stdout, "%s: rename %q -> %q changes %d bytes in %d ranges (offsets in %s):\n", v.Describe(), oldPath, newPath, p.Bytes(), len(rs), target)
	for _, rg := range ntSortRanges(rs) {
		fmt.Fprintf(stdout, "  0x%x +%d\n", rg.Off, rg.Len)
	}
	if *dry {
		return exitOK
	}
	if !ask("Write these changes?") {
		fmt.Fprintln(stderr, "nothing written")
		return exitOK
	}
	undo := "wuoffline undo " + s.CommandTarget()
	jpath, err := s.Commit(p, session.CommitOptions{Note: note})
	if err != nil {
		if jpath != "" {
			fmt.Fprintf(stderr, "wuoffline mv: writing failed: %v\n  the volume may be half-changed: `%s` rolls it back (journal %s)\n", err, undo, jpath)
		} else {
			fmt.Fprintf(stderr, "wuoffline mv: journaling failed, nothing written: %v\n", err)
		}
		return exitError
	}
	fmt.Fprintf(stdout, "journal: %s (take it back with: %s)\n", jpath, undo)
	// Re-read from the medium, caches dropped, and check what was touched.
	rv, err := s.Reopen()
	if err != nil {
		fmt.Fprintf(stderr, "wuoffline mv: re-reading after writing: %v\n  `%s` takes the rename back\n", err, undo)
		return exitError
	}
	defer rv.Close()
	if vr := rv.Verify(p, before); !vr.OK {
		fmt.Fprintf(stderr, "wuoffline mv: the check after writing failed: %s %d range(s) differ\n  %s\n  `%s` takes the rename back\n",
			vr.Error, len(vr.Mismatched), strings.Join(vr.NTFSProblems, "\n  "), undo)
		return exitError
	}
	fmt.Fprintln(stdout, "renamed; the touched ranges and directories were re-read from the device and checked")
	return exitOK
}

// samePath reports whether two volume paths name the same file: \ and /
// alike, case-insensitively as NTFS looks names up through $UpCase (this is
// only the usage check; the volume's own lookup decides the rest).
func samePath(a, b string) bool {
	norm := func(p string) string {
		return strings.Trim(strings.ReplaceAll(p, "/", `\`), `\`)
	}
	return strings.EqualFold(norm(a), norm(b))
}
