package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"

	"wuoffline/ntfs"
)

// iofsErrNotExist is fs.ErrNotExist (named so to keep ls.go's import alias).
var iofsErrNotExist = iofs.ErrNotExist

const checkHelp = `Usage: wuoffline check [--all] [--partition N] TARGET [PATH...]

Check NTFS structures with wuoffline's own parsers: for each directory PATH
(default: the root directory; --all: every directory and file of the
volume) the index order under the volume's $UpCase, node flags and child
VCNs, END entries, the index bitmap, every index entry against the
$FILE_NAME of the record it points to (sequence number included) and every
$FILE_NAME against its entry, link counts, cluster ownership against $Bitmap
and the update sequence fixups of everything read. Read-only.

Options:
  --all           the whole volume
  --partition N   the partition holding the volume (see 'wuoffline ls --help')

Exit codes: 0 no problem, 1 problems found, 2 usage, 4 the check could not run.
`

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, checkHelp) }
	all := fs.Bool("all", false, "")
	partition := fs.Int("partition", 0, "")
	pos, err := ntArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, checkHelp)
		return exitOK
	}
	if err != nil || len(pos) < 1 {
		fmt.Fprint(stderr, checkHelp)
		return exitUsage
	}
	v, err := ntOpen(pos[0], *partition, false)
	if err != nil {
		fmt.Fprintf(stderr, "wuoffline check: %v\n", err)
		return exitError
	}
	defer v.target.Close()
	opts := ntfs.CheckOptions{All: *all, Paths: pos[1:]}
	rep, err := ntfs.Check(v.target.ReaderAt(v.vol), v.vol.Size, opts)
	if err != nil {
		fmt.Fprintf(stderr, "wuoffline check: %s: %v\n", v.describe(), err)
		return exitError
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(stdout, "problem: %s\n", p)
	}
	fmt.Fprintf(stdout, "%s: %d directories, %d index entries, %d records checked: %d problems\n", v.describe(), rep.Dirs, rep.Entries, rep.Records, len(rep.Problems))
	if len(rep.Problems) > 0 {
		return exitProblem
	}
	return exitOK
}
