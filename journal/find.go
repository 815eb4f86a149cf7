package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// ErrNoJournalDir is wrapped by [ChooseDir] and [CheckDir] when there is no
// writable place for the journal: the caller must refuse to write.
var ErrNoJournalDir = errors.New("no writable journal directory")

// suffix ends every journal file name.
const suffix = ".journal"

// FileName returns the name a journal with header h gets:
// "[NAME.]wuoffline-SERIAL-TIME.journal", SERIAL the volume serial in hex
// and TIME the creation time in UTC, so that a listing sorts by volume and
// time and a person can tell what each file is.
func FileName(h Header) string { return fileName(h, 0) }

func fileName(h Header, attempt int) string {
	s := prefix(h.ID) + h.Created.UTC().Format("20060102T150405.000000000Z")
	if attempt > 0 {
		s += fmt.Sprintf("-%d", attempt)
	}
	return s + suffix
}

// prefix is the part of a journal name fixed by the volume identity.
func prefix(id VolumeID) string {
	p := fmt.Sprintf("wuoffline-%016X-", id.Serial)
	if id.Name != "" {
		p = safeName(id.Name) + "." + p
	}
	return p
}

// safeName keeps a file name portable: no separators, controls or
// characters Windows refuses, at most 100 bytes.
func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(`/\:*?"<>|`, r) {
			return '_'
		}
		return r
	}, s)
	return cut(s, 100)
}

// Find returns the journals in dir that belong to volume id, newest first:
// by [Header.Seq], then (version 1 journals) by [Header.Created].
// A missing dir holds none. A journal whose name says it belongs to id but
// whose header cannot be read is returned too, with State "" and Damage
// set, so that it is reported rather than silently ignored.
func Find(dir string, id VolumeID) ([]*Info, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("journal: %w", err)
	}
	want := prefix(id)
	serial := fmt.Sprintf("wuoffline-%016X-", id.Serial)
	var out []*Info
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, suffix) || !strings.Contains(name, serial) {
			continue
		}
		path := filepath.Join(dir, name)
		info, err := Open(path)
		if err != nil {
			if strings.HasPrefix(name, want) {
				out = append(out, &Info{Path: path, Damage: err, Header: Header{ID: id}})
			}
			continue
		}
		if info.Header.ID.Same(id) {
			out = append(out, info)
		}
	}
	sort.SliceStable(out, func(a, b int) bool {
		// Seq first: it does not depend on the clock. Version 1 journals
		// (Seq 0) fall back to their creation time, and sort after every
		// version 2 one, which was necessarily created later.
		if sa, sb := out[a].Header.Seq, out[b].Header.Seq; sa != sb {
			return sa > sb
		}
		ta, tb := out[a].Header.Created, out[b].Header.Created
		if !ta.Equal(tb) {
			return ta.After(tb)
		}
		return out[a].Path > out[b].Path
	})
	return out, nil
}

// nextSeq returns the Seq a new journal of volume id in dir gets: one more
// than the largest there. A journal whose header cannot be read counts as
// 0; its name still keeps it apart.
func nextSeq(dir string, id VolumeID) (uint64, error) {
	infos, err := Find(dir, id)
	if err != nil {
		return 0, err
	}
	var top uint64
	for _, in := range infos {
		top = max(top, in.Header.Seq)
	}
	return top + 1, nil
}

// Undoable returns the journals of infos (as Find returns them, newest
// first) that undo should take back, in the order it should: every one
// prepared and not yet undone (committed or interrupted), and every
// damaged one that may hold something to restore. Undoing newest first
// matters when two fixes touched the same bytes: the older journal's
// "new" bytes are only there again once the newer one is undone.
func Undoable(infos []*Info) []*Info {
	var out []*Info
	for _, in := range infos {
		switch {
		case in.State == StateInterrupted || in.State == StateCommitted:
			out = append(out, in)
		case in.State == StatePlanned && in.Damage != nil && !in.Torn && len(in.Records) > 0:
			// Damage hid the prepared mark, if there was one.
			out = append(out, in)
		}
	}
	return out
}

// ChooseDir returns where the journal for a target goes: flagDir when the
// user named one (--journal DIR); beside the target when it is an image
// file (targetIsFile); otherwise (a block device or a drive letter) the
// directory holding the executable, which is the USB stick the program was
// started from. The directory is checked with [CheckDir]. The caller must
// make sure the result is not on the volume being repaired; for a device
// that cannot be told from a path.
func ChooseDir(target string, targetIsFile bool, flagDir string) (string, error) {
	var dir string
	switch {
	case flagDir != "":
		dir = flagDir
	case targetIsFile:
		abs, err := filepath.Abs(target)
		if err != nil {
			return "", fmt.Errorf("journal directory for %s: %w", target, err)
		}
		dir = filepath.Dir(abs)
	default:
		exe, err := os.Executable()
		if err == nil {
			exe, err = filepath.EvalSymlinks(exe)
		}
		if err != nil {
			return "", fmt.Errorf("%w: locating the executable: %v; name one with --journal DIR", ErrNoJournalDir, err)
		}
		dir = filepath.Dir(exe)
	}
	if err := CheckDir(dir); err != nil {
		return "", err
	}
	return dir, nil
}

// CheckDir checks that dir is a directory where a file can be created,
// written and flushed, by doing so with a probe file it then removes.
func CheckDir(dir string) error {
	fail := func(err error) error {
		return fmt.Errorf("%w: %s: %v; name one with --journal DIR", ErrNoJournalDir, dir, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fail(err)
	}
	if !st.IsDir() {
		return fail(errors.New("not a directory"))
	}
	f, err := os.CreateTemp(dir, ".wuoffline-probe-*")
	if err != nil {
		return fail(err)
	}
	name := f.Name()
	_, err = f.Write([]byte("wuoffline journal probe\n"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	if err != nil {
		return fail(err)
	}
	return nil
}

// syncDir flushes a directory, so that a file just created in it survives
// a crash. Windows cannot open a directory for flushing; there NTFS
// journals the directory entry itself.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
