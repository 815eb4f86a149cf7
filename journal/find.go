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
// A missing dir holds none. Damaged journals are never skipped: a file
// whose name carries the volume's serial but that cannot be read, or
// whose header is damaged, is returned with State "" and Damage set to a
// *[DamagedError]; a journal damaged after its header is returned with
// what could be read. A gap in the Seq numbers below a journal not yet
// undone (a journal of this volume deleted or lost) is returned as an
// Info with Path naming the missing number and a DamageMissing error:
// that fix's changes cannot be undone, and undoing older fixes around
// them is only safe range by range.
func Find(dir string, id VolumeID) ([]*Info, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("journal: %w", err)
	}
	serial := fmt.Sprintf("wuoffline-%016X-", id.Serial)
	want := strings.ToLower(prefix(id))
	var out []*Info
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, suffix) || !strings.Contains(name, serial) {
			continue
		}
		path := filepath.Join(dir, name)
		if !e.Type().IsRegular() {
			continue // a directory or device: never one of ours
		}
		info, err := Open(path)
		if err != nil {
			// Named for this volume (or, cloned images, its serial): it is
			// reported, not skipped.
			de, ok := err.(*DamagedError)
			if !ok {
				de = &DamagedError{Path: path, Kind: DamageUnreadable, At: -1, Err: err, PlannedUnits: -1, Written: WrittenUnknown}
			}
			if strings.HasPrefix(strings.ToLower(name), want) {
				out = append(out, &Info{Path: path, Damage: de, Header: Header{ID: id}, PlannedRanges: -1, PlannedUnits: -1, PlannedGroups: -1})
			}
			continue
		}
		if info.Header.ID.Same(id) {
			out = append(out, info)
		}
	}
	sortNewest(out)
	return append(out, gaps(dir, id, out)...), nil
}

// sortNewest sorts journals newest first.
func sortNewest(out []*Info) {
	sort.SliceStable(out, func(a, b int) bool {
		// Seq first: it does not depend on the clock. Version 1 journals
		// (Seq 0) fall back to their creation time, and sort after every
		// later one, which was necessarily created later.
		if sa, sb := out[a].Header.Seq, out[b].Header.Seq; sa != sb {
			return sa > sb
		}
		ta, tb := out[a].Header.Created, out[b].Header.Created
		if !ta.Equal(tb) {
			return ta.After(tb)
		}
		return out[a].Path > out[b].Path
	})
}

// gaps returns a DamageMissing Info for every Seq missing below the
// newest journal, when some journal older than the gap is not yet undone
// (otherwise the missing one no longer matters to undo). Journals whose
// header is unreadable may be the missing ones: their count is taken off.
func gaps(dir string, id VolumeID, infos []*Info) []*Info {
	have := map[uint64]bool{}
	var top uint64
	unknown := 0
	for _, in := range infos {
		if in.Header.Seq == 0 {
			if in.State == "" {
				unknown++
			}
			continue
		}
		have[in.Header.Seq] = true
		top = max(top, in.Header.Seq)
	}
	var out []*Info
	for s := top; s >= 1; s-- {
		if have[s] {
			continue
		}
		pending := false
		for _, in := range infos {
			if in.Header.Seq != 0 && in.Header.Seq < s && in.State != StateUndone {
				pending = true
			}
		}
		if !pending {
			break
		}
		if unknown > 0 {
			unknown--
			continue
		}
		p := filepath.Join(dir, prefix(id)+"*"+suffix)
		out = append(out, &Info{
			Path:   fmt.Sprintf("%s (number %d)", p, s),
			Header: Header{ID: id, Seq: s},
			Damage: &DamagedError{Path: p, Kind: DamageMissing, At: -1, Seq: s, PlannedUnits: -1, Written: WrittenUnknown,
				Err: errors.New("a journal of this volume with that number is not in the directory")},
			PlannedRanges: -1, PlannedUnits: -1, PlannedGroups: -1,
		})
		if len(out) >= 100 {
			break // a hostile Seq cannot make this loop long
		}
	}
	return out
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
// first) that undo should take back or report, in the order it should:
// every one prepared and not yet undone (committed or interrupted), and
// every damaged, missing or unreadable one (a torn one that was never
// prepared excepted: nothing was written), so that undo reports them
// ([UndoOn] returns their *DamagedError) instead of saying there is
// nothing to undo. Undoing newest first matters when two fixes touched
// the same bytes: the older journal's "new" bytes are only there again
// once the newer one is undone.
func Undoable(infos []*Info) []*Info {
	var out []*Info
	for _, in := range infos {
		switch {
		case in.Damaged() != nil:
			out = append(out, in)
		case in.State == StateInterrupted || in.State == StateCommitted:
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
