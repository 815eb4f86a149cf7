package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"wuoffline/journal"
	"wuoffline/ntfs"
	"wuoffline/offline"
)

const mvHelp = `Usage: wuoffline mv [--yes] [--dry-run] [--partition N] [--journal DIR] TARGET OLD NEW

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
  --yes           do not ask (required when stdin is not a terminal)
  --dry-run       only print what would change
  --partition N   the partition holding the volume (see 'wuoffline ls --help')
  --journal DIR   where the undo journal goes (default: beside an image file,
                  or this program's directory for a device)
`

func runMv(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mv", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, mvHelp) }
	yes := fs.Bool("yes", false, "")
	dry := fs.Bool("dry-run", false, "")
	journalFlag := fs.String("journal", "", "")
	partition := fs.Int("partition", 0, "")
	pos, err := ntArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, mvHelp)
		return exitOK
	}
	if err != nil || len(pos) != 3 {
		fmt.Fprint(stderr, mvHelp)
		return exitUsage
	}
	target, oldPath, newPath := pos[0], pos[1], pos[2]
	// A fix interrupted on this target left it half-made: renaming on top
	// of that would make the journal's undo report "changed since" instead
	// of restoring. Refuse, and say how to roll back or finish.
	if refusals := offline.InterruptedRefusals(target, ""); len(refusals) > 0 {
		for _, r := range refusals {
			fmt.Fprintf(stderr, "wuoffline mv: refused: %s\n  what to do: %s\n", r.Reason, r.Advice)
		}
		return exitRefused
	}
	v, err := ntOpen(target, *partition, !*dry)
	if err != nil {
		fmt.Fprintf(stderr, "wuoffline mv: %v\n", err)
		return exitError
	}
	defer v.target.Close()
	r := v.target.ReaderAt(v.vol)
	// The rename is made in an overlay of the volume (the dry run: nothing
	// reaches the device), then journaled and written by journal.Commit.
	ov := journal.NewOverlay(r, v.vol.Size)
	var w *ntfs.Writer
	if *dry {
		w, err = ntfs.OpenReadOnly(r, v.vol.Size)
	} else {
		align := int64(v.target.SectorSize)
		if bs, berr := ntfs.ReadBootSector(r); berr == nil && int64(bs.BytesPerSector) > align {
			align = int64(bs.BytesPerSector)
		}
		if align > 0 {
			ov.SetAlign(align) // raw devices refuse partial-sector writes
		}
		w, err = ntfs.OpenWriter(ov, ov, v.vol.Size, ntfs.WriterOptions{})
	}
	var ref *ntfs.RefusedError
	if errors.As(err, &ref) {
		fmt.Fprintf(stderr, "wuoffline mv: %s: refused, nothing written:\n", v.describe())
		for _, x := range ref.Refusals {
			fmt.Fprintf(stderr, "  %s: %s\n    %s\n", x.ID, x.Reason, x.Advice)
		}
		return exitRefused
	}
	if err != nil {
		fmt.Fprintf(stderr, "wuoffline mv: %s: %v\n", v.describe(), err)
		return exitError
	}
	plan, err := w.PlanRename(oldPath, newPath)
	if err != nil {
		fmt.Fprintf(stderr, "wuoffline mv: %s: %v\n", v.describe(), err)
		if errors.Is(err, ntfs.ErrExist) || errors.Is(err, iofsErrNotExist) {
			return exitUsage
		}
		return exitError
	}
	var total int64
	for _, rg := range plan {
		total += rg.Len
	}
	fmt.Fprintf(stdout, "%s: rename %q -> %q changes %d bytes in %d ranges (volume offsets):\n", v.describe(), oldPath, newPath, total, len(plan))
	for _, rg := range ntSortRanges(plan) {
		fmt.Fprintf(stdout, "  0x%x +%d\n", rg.Off, rg.Len)
	}
	if *dry {
		return exitOK
	}
	if !*yes {
		if !ntStdinTerminal() {
			fmt.Fprintln(stderr, "wuoffline mv: not a terminal: add --yes to write")
			return exitUsage
		}
		fmt.Fprint(stderr, "Write these changes? [y/N] ")
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			fmt.Fprintln(stderr, "nothing written")
			return exitOK
		}
	}
	if _, err = w.Rename(oldPath, newPath); err != nil {
		fmt.Fprintf(stderr, "wuoffline mv: %s: planning: %v (nothing written)\n", v.describe(), err)
		return exitError
	}
	bs, err := ntfs.ReadBootSector(r)
	if err != nil {
		fmt.Fprintf(stderr, "wuoffline mv: %s: %v (nothing written)\n", v.describe(), err)
		return exitError
	}
	jdir, err := offline.JournalDir(target, v.target.Device, *journalFlag)
	if err != nil {
		fmt.Fprintf(stderr, "wuoffline mv: refused, nothing written: no place for the undo journal: %v\n  what to do: pass --journal DIR (a writable directory that is not on %s)\n", err, target)
		return exitRefused
	}
	dev, err := v.target.WriterAt(v.vol)
	if err != nil {
		fmt.Fprintf(stderr, "wuoffline mv: %v (nothing written)\n", err)
		return exitError
	}
	h := journal.Header{ID: offline.JournalVolumeID(target, v.target.Device, bs.Serial, v.vol.Size),
		Target: target, Offset: v.vol.Offset, Tool: offline.Tool,
		Note: fmt.Sprintf("mv %s -> %s", oldPath, newPath), Created: time.Now().UTC()}
	jpath, err := journal.Commit(jdir, h, ov, dev, v.target.Sync)
	if err != nil {
		if jpath != "" {
			fmt.Fprintf(stderr, "wuoffline mv: writing failed: %v\n  the volume may be half-changed: `wuoffline undo %s` rolls it back (journal %s)\n", err, target, jpath)
		} else {
			fmt.Fprintf(stderr, "wuoffline mv: journaling failed, nothing written: %v\n", err)
		}
		return exitError
	}
	fmt.Fprintf(stdout, "journal: %s (take it back with: wuoffline undo %s)\n", jpath, target)
	// Re-read from the device, not the overlay, and check what was touched.
	rep, err := ntfs.Check(v.target.ReaderAt(v.vol), v.vol.Size, ntfs.CheckOptions{Paths: mvParents(oldPath, newPath)})
	if err != nil || len(rep.Problems) > 0 {
		fmt.Fprintf(stderr, "wuoffline mv: the check after writing failed: %v %v\n  `wuoffline undo %s` takes the rename back\n", err, mvProblems(rep), target)
		return exitError
	}
	fmt.Fprintln(stdout, "renamed; the touched directories were re-read and checked")
	return exitOK
}

// ntStdinTerminal reports whether stdin is a terminal: a character device
// other than /dev/null (NUL on Windows).
func ntStdinTerminal() bool {
	fi, err := os.Stdin.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, null) {
		return false
	}
	return true
}

// mvParents returns the directories a rename touches: the old and the new
// name's parents, as volume paths.
func mvParents(oldPath, newPath string) []string {
	dir := func(p string) string {
		p = strings.Trim(strings.ReplaceAll(p, `\`, "/"), "/")
		if d := path.Dir(p); d != "." {
			return d
		}
		return ""
	}
	a, b := dir(oldPath), dir(newPath)
	if strings.EqualFold(a, b) {
		return []string{a}
	}
	return []string{a, b}
}

// mvProblems lists a check report's problems for an error message.
func mvProblems(rep *ntfs.CheckReport) string {
	if rep == nil {
		return ""
	}
	var b strings.Builder
	for _, p := range rep.Problems {
		fmt.Fprintf(&b, "\n  record %d: %s", p.Record, p.What)
	}
	return b.String()
}
