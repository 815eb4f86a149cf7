package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/wuoffline/wuoffline/session"
)

const checkHelp = `Usage: wuoffline check [--all] [--partition N] [--journal DIR] TARGET [PATH...]

Check NTFS structures with wuoffline's own parsers: for each directory PATH
(default: the directories the newest fix or mv on this volume touched, found
from its journal, else the root directory; a damaged newest journal is
used for what it still holds and reported; --all: every directory and file
of the volume) the index order under the volume's $UpCase, node flags and child
VCNs, END entries, the index bitmap, every index entry against the
$FILE_NAME of the record it points to (sequence number included) and every
$FILE_NAME against its entry, link counts, cluster ownership against $Bitmap
and the update sequence fixups of everything read. Read-only.

Options:
  --all           the whole volume
  --partition N   the partition holding the volume (see 'wuoffline ls --help')
  --journal DIR   where the journals are, when fix or mv was given --journal

Exit codes: 0 no problem, 1 problems found, 2 usage, 4 the check could not run
or a journal of the volume is damaged, cut, missing or unreadable (listed with
what to do: its fix can be undone only in part).
`

func runCheck(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("check", checkHelp, stdout, stderr)
	all := fl.Bool("all", false, "")
	partition := fl.Int("partition", 0, "")
	journalFlag := fl.String("journal", "", "")
	pos, code, done := fl.parse(args, 1, -1)
	if done {
		return code
	}
	s, v, err := ntOpen(pos[0], *partition, session.Options{JournalDir: *journalFlag})
	if err != nil {
		fmt.Fprintf(stderr, "wuoffline check: %v\n", err)
		return exitError
	}
	defer s.Close()
	opts := session.CheckOptions{All: *all, Paths: pos[1:]}
	var damaged []string
	if !*all && len(opts.Paths) == 0 {
		dirs, from, dmg, err := s.TouchedDirs(v)
		damaged = dmg
		writeDamagedJournals(stdout, damaged)
		switch {
		case err != nil:
			fmt.Fprintf(stderr, "wuoffline check: %s: finding what the last fix touched: %v\n", v.Describe(), err)
			return exitError
		case from == "":
			fmt.Fprintf(stdout, "%s: no fix or mv journal found for this volume: checking the root directory (name directories, or use --all)\n", v.Describe())
		default:
			fmt.Fprintf(stdout, "%s: checking the %d directories (MFT records %s) touched by %s\n", v.Describe(), len(dirs), joinNums(dirs), from)
			opts.Dirs = dirs // none: the root, as with no journal
		}
	}
	rep, err := v.Check(opts)
	if err != nil {
		fmt.Fprintf(stderr, "wuoffline check: %s: %v\n", v.Describe(), err)
		return exitError
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(stdout, "problem: %s\n", p)
	}
	fmt.Fprintf(stdout, "%s: %d directories, %d index entries, %d records checked: %d problems\n", v.Describe(), rep.Dirs, rep.Entries, rep.Records, len(rep.Problems))
	switch {
	case len(damaged) > 0:
		return exitError
	case len(rep.Problems) > 0:
		return exitProblem
	}
	return exitOK
}

// writeDamagedJournals prints each damaged, cut, missing or unreadable
// journal with what to do: a command that reads journals never passes
// over one silently.
func writeDamagedJournals(w io.Writer, damaged []string) {
	for _, d := range damaged {
		fmt.Fprintf(w, "journal DAMAGED: %s\n", d)
	}
}

// joinNums formats record numbers as "5, 37, 1234".
func joinNums(nums []uint64) string {
	parts := make([]string, len(nums))
	for i, n := range nums {
		parts[i] = strconv.FormatUint(n, 10)
	}
	return strings.Join(parts, ", ")
}
