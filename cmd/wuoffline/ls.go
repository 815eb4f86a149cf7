package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"sort"
	"strings"

	"wuoffline/image"
	"wuoffline/ntfs"
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

// ntArgs parses flags that may come before, between or after positional
// arguments (technicians type them anywhere).
func ntArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// ntVolume is an NTFS volume chosen on a TARGET.
type ntVolume struct {
	target *image.Target
	vol    image.Volume
}

func (v *ntVolume) describe() string {
	if v.vol.Index == 0 {
		return v.target.Path
	}
	return fmt.Sprintf("%s partition %d", v.target.Path, v.vol.Index)
}

// ntOpen opens TARGET and picks its NTFS volume: --partition when given,
// else on a disk the volume holding Windows\System32\config\SYSTEM, else
// the only NTFS volume.
func ntOpen(path string, partition int, writable bool) (*ntVolume, error) {
	t, err := image.Open(path, image.Options{Writable: writable})
	if err != nil {
		return nil, err
	}
	if t.Kind == image.KindDirectory {
		t.Close()
		return nil, fmt.Errorf("%s is a directory (a mounted volume): use the operating system's own tools on it, or point at the device", path)
	}
	pick := func() (image.Volume, error) {
		if partition > 0 {
			for _, v := range t.Volumes {
				if v.Index == partition {
					if v.Content != image.ContentNTFS {
						return v, fmt.Errorf("partition %d of %s is not NTFS (%s)", partition, path, v.Content)
					}
					return v, nil
				}
			}
			return image.Volume{}, fmt.Errorf("%s has no partition %d", path, partition)
		}
		var nt, win []image.Volume
		for _, v := range t.Volumes {
			if v.Content != image.ContentNTFS {
				continue
			}
			nt = append(nt, v)
			if vol, err := ntfs.Open(t.ReaderAt(v), v.Size); err == nil {
				if _, err := iofs.Stat(vol.FS(), "Windows/System32/config/SYSTEM"); err == nil {
					win = append(win, v)
				}
			}
		}
		switch {
		case len(win) == 1:
			return win[0], nil
		case len(nt) == 1:
			return nt[0], nil
		case len(nt) == 0:
			return image.Volume{}, fmt.Errorf("%s holds no NTFS volume", path)
		}
		var idx []string
		for _, v := range nt {
			idx = append(idx, fmt.Sprint(v.Index))
		}
		return image.Volume{}, fmt.Errorf("%s holds several NTFS volumes (partitions %s): choose one with --partition N", path, strings.Join(idx, ", "))
	}
	v, err := pick()
	if err != nil {
		t.Close()
		return nil, err
	}
	return &ntVolume{target: t, vol: v}, nil
}

func runLs(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, lsHelp) }
	partition := fs.Int("partition", 0, "")
	pos, err := ntArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, lsHelp)
		return exitOK
	}
	if err != nil || len(pos) < 1 || len(pos) > 2 {
		fmt.Fprint(stderr, lsHelp)
		return exitUsage
	}
	dir := ""
	if len(pos) == 2 {
		dir = pos[1]
	}
	v, err := ntOpen(pos[0], *partition, false)
	if err != nil {
		fmt.Fprintf(stderr, "wuoffline ls: %v\n", err)
		return exitError
	}
	defer v.target.Close()
	w, err := ntfs.OpenReadOnly(v.target.ReaderAt(v.vol), v.vol.Size)
	if err != nil {
		fmt.Fprintf(stderr, "wuoffline ls: %s: %v\n", v.describe(), err)
		return exitError
	}
	es, err := w.List(dir)
	if err != nil {
		fmt.Fprintf(stderr, "wuoffline ls: %s: %v\n", v.describe(), err)
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
func ntSortRanges(rs []ntfs.Range) []ntfs.Range {
	out := append([]ntfs.Range(nil), rs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Off < out[j].Off })
	return out
}
