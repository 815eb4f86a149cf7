package main

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/wuoffline/wuoffline/session"
)

const lsHelp = `Usage: wuoffline ls [--partition N] TARGET [PATH]

List a directory of an NTFS volume from its index, without mounting it:
every index entry in on-disk (collation) order, DOS short names included,
with the MFT record and sequence number each one points to.

TARGET is a disk or volume image or a block device. On a whole disk the
volume is the Windows installation's, else the only NTFS volume; otherwise
name it with --partition N (the partition number). PATH is relative to the
volume root, with \ or / (default: the root).

Options:
  --partition N   the partition holding the volume

Columns: type (d directory, - file), namespace (W Win32, D DOS, WD both,
P POSIX), record/sequence, size, modification time (UTC), name.
`

// ntOpen opens TARGET through a session and picks its NTFS volume
// (session.Pick: --partition, else the Windows volume, else the only one).
func ntOpen(path string, partition int, opts session.Options) (*session.Session, *session.Volume, error) {
	s, err := session.Open(path, opts)
	if errors.Is(err, session.ErrDirectory) {
		return nil, nil, fmt.Errorf("%s is a directory (a mounted volume): use the operating system's own tools on it, or point at the device", path)
	}
	if err != nil {
		return nil, nil, err
	}
	v, err := s.Pick(partition)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, v, nil
}

func runLs(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("ls", lsHelp, stdout, stderr)
	partition := fl.Int("partition", 0, "")
	pos, code, done := fl.parse(args, 1, 2)
	if done {
		return code
	}
	dir := ""
	if len(pos) == 2 {
		dir = pos[1]
	}
	s, v, err := ntOpen(pos[0], *partition, session.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "wuoffline ls: %v\n", err)
		return exitError
	}
	defer s.Close()
	es, err := v.List(dir)
	if err != nil {
		fmt.Fprintf(stderr, "wuoffline ls: %s: %v\n", v.Describe(), err)
		return exitError
	}
	for _, e := range es {
		typ := "-"
		if e.IsDir {
			typ = "d"
		}
		ns := [...]string{"P", "W", "D", "WD"}[e.Namespace&3]
		size := fmt.Sprint(e.Size)
		if e.IsDir {
			size = "-"
		}
		fmt.Fprintf(stdout, "%s %-2s %8d/%-5d %12s  %s  %s\n", typ, ns, e.Record, e.Seq, size, e.Modified.Format("2006-01-02 15:04:05"), e.Name)
	}
	return exitOK
}

// ntSortRanges orders ranges for printing.
func ntSortRanges(rs []session.Range) []session.Range {
	out := append([]session.Range(nil), rs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Off < out[j].Off })
	return out
}
