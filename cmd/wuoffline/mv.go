package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"wuoffline/ntfs"
	"wuoffline/offline"
)

const mvHelp = `Usage: wuoffline mv [--yes] [--partition N] TARGET OLD NEW

Rename or move a file or directory on an NTFS volume without mounting it,
the way Windows and ntfs-3g do (index B-tree insert and delete, Win32 and
DOS names, link counts, parent times). OLD and NEW are paths from the volume
root, with \ or /; NEW's directory must exist and NEW must not.

Before writing, mv refuses volumes that are not safe to write (hibernated,
Fast Startup, unclean $LogFile, dirty), prints the exact byte ranges it will
change and asks for confirmation on a terminal. It saves the current bytes
of every block it changes to a backup file next to TARGET
(TARGET.wuoffline-mv-TIME.bak) before writing, and checks the touched
directories after writing.

Options:
  --yes           do not ask (required when stdin is not a terminal)
  --dry-run       only print what would change
  --partition N   the partition holding the volume (see 'wuoffline ls --help')
`

func runMv(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mv", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, mvHelp) }
	yes := fs.Bool("yes", false, "")
	dry := fs.Bool("dry-run", false, "")
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
	var w *ntfs.Writer
	var bw *ntBackupWriter
	if *dry {
		w, err = ntfs.OpenReadOnly(r, v.vol.Size)
	} else {
		dev, derr := v.target.WriterAt(v.vol)
		if derr != nil {
			fmt.Fprintf(stderr, "wuoffline mv: %v\n", derr)
			return exitError
		}
		bw = &ntBackupWriter{r: r, w: dev, path: fmt.Sprintf("%s.wuoffline-mv-%s.bak", strings.TrimSuffix(target, "/"), time.Now().UTC().Format("20060102T150405Z")), volOff: v.vol.Offset}
		w, err = ntfs.OpenWriter(r, bw, v.vol.Size, ntfs.WriterOptions{})
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
	_, err = w.Rename(oldPath, newPath)
	if cerr := bw.close(); cerr != nil && err == nil {
		err = cerr
	}
	if bw.n > 0 {
		fmt.Fprintf(stdout, "backup of the %d changed blocks: %s\n", bw.n, bw.path)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wuoffline mv: %s: %v\n", v.describe(), err)
		return exitError
	}
	if err := v.target.Sync(); err != nil {
		fmt.Fprintf(stderr, "wuoffline mv: flushing %s: %v\n", target, err)
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

// ntBackupWriter saves the bytes every write overwrites to a file (synced
// before the write), until the repair journal takes over. The file is
// "WUOFFLINE-MV-BACKUP v1\n", then per block: volume offset of the
// partition (u64), offset within the volume (u64), length (u64), the old
// bytes; all little-endian.
type ntBackupWriter struct {
	r      io.ReaderAt
	w      io.WriterAt
	path   string
	volOff int64
	f      *os.File
	n      int
}

func (b *ntBackupWriter) WriteAt(p []byte, off int64) (int, error) {
	if b.f == nil {
		f, err := os.OpenFile(b.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return 0, fmt.Errorf("creating backup: %w", err)
		}
		b.f = f
		if _, err := f.WriteString("WUOFFLINE-MV-BACKUP v1\n"); err != nil {
			return 0, err
		}
	}
	old := make([]byte, len(p))
	if _, err := b.r.ReadAt(old, off); err != nil {
		return 0, fmt.Errorf("reading the bytes to back up at 0x%x: %w", off, err)
	}
	var hdr [24]byte
	binary.LittleEndian.PutUint64(hdr[0:], uint64(b.volOff))
	binary.LittleEndian.PutUint64(hdr[8:], uint64(off))
	binary.LittleEndian.PutUint64(hdr[16:], uint64(len(p)))
	if _, err := b.f.Write(append(hdr[:], old...)); err != nil {
		return 0, fmt.Errorf("writing backup: %w", err)
	}
	if err := b.f.Sync(); err != nil {
		return 0, fmt.Errorf("syncing backup: %w", err)
	}
	b.n++
	return b.w.WriteAt(p, off)
}

func (b *ntBackupWriter) close() error {
	if b == nil || b.f == nil {
		return nil
	}
	return b.f.Close()
}
