package session

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/wuoffline/wuoffline/hive"
	"github.com/wuoffline/wuoffline/journal"
	"github.com/wuoffline/wuoffline/ntfs"
)

// Plan is a change of one NTFS volume being planned: every write goes into
// a journal.Overlay of the whole FILE (the dry run: reads see the planned
// bytes, nothing reaches the target), labelled with the plan unit that made
// it (one rename, one file rewrite, one hive edit). Session.Commit writes it
// through the journal.
type Plan struct {
	s  *Session
	v  *Volume
	o  *journal.Overlay
	sw *switchWriter
	w  *ntfs.Writer
	vr io.ReaderAt // the volume as planned (volume coordinates)

	dirs map[string]bool // directories touched (volume paths, `\`)
	// written are the volume ranges the plan's NTFS operations wrote
	// (volume coordinates): what Check and Verify examine.
	written []ntfs.Range
	hives   map[string]bool // hive files edited (volume paths, `\`)
	// hiveKeys are the registry keys each edited hive's edits touched.
	hiveKeys map[string][]string
}

// switchWriter forwards writes to the overlay's writer of the current unit,
// so that every journaled range says which unit wrote it.
type switchWriter struct{ cur io.WriterAt }

func (s *switchWriter) WriteAt(p []byte, off int64) (int, error) { return s.cur.WriteAt(p, off) }

// Plan starts a change of volume v. The volume's safety state is checked
// here: a volume that is not safe to write (hibernated, Fast Startup,
// unclean $LogFile, dirty, ...) gives a *RefusedError, for a dry run too,
// except for the refusal IDs in allow, which the caller has dealt with (fix
// --discard-hibernation renames hiberfil.sys aside as the plan's first unit).
func (s *Session) Plan(v *Volume, allow ...string) (*Plan, error) {
	o := journal.NewOverlay(s.cache, s.cache.Size())
	// Whole sectors: the disk's logical sector, or the volume's own if
	// larger (a bare 4Kn volume), since raw devices refuse partial-sector
	// writes.
	align := int64(s.Target.SectorSize)
	if align == 0 {
		align = 512
	}
	group := int64(0)
	if bs, err := ntfs.ReadBootSector(v.Reader()); err == nil {
		align = max(align, int64(bs.BytesPerSector))
		group = int64(bs.ClusterSize)
	}
	o.SetAlign(align)
	// Units sharing a cluster (two renames in one index block, two records
	// of one MFT cluster) are one group: undo restores or leaves them
	// together, never one of them on top of bytes the other changed.
	if group > align {
		o.SetGroup(group)
	}
	if s.mayGrow() {
		o.AllowGrowth(s.cache.Size() + maxGrowth)
	}
	sw := &switchWriter{cur: o}
	view, err := s.Target.Over(o, sw, o.Size())
	if err != nil {
		return nil, err
	}
	vw, err := view.WriterAt(v.Volume)
	if err != nil {
		if v.Damaged != "" {
			return nil, &RefusedError{Refusals: []Refusal{{ID: "partition", Reason: fmt.Sprintf("partition %d: %s", v.Index, v.Damaged),
				Advice: "repair the partition table first (gdisk's recovery menu, testdisk)"}}}
		}
		return nil, err
	}
	vr := view.ReaderAt(v.Volume)
	// NoVerify: instead of the writer checking a directory after each of
	// its writes (a 100,000-entry WinSxS once per operation), the plan's
	// touched directories are checked once on the whole planned state
	// (Plan.Check) and again on the medium after the write (Verify).
	w, err := ntfs.OpenWriter(vr, vw, v.Size, ntfs.WriterOptions{Now: s.now(), NoVerify: true, Allow: allow})
	if err != nil {
		if re := refusalOf("", err); re != err {
			return nil, re
		}
		return nil, fmt.Errorf("%s: %w", v.Describe(), err)
	}
	return &Plan{s: s, v: v, o: o, sw: sw, w: w, vr: vr, dirs: map[string]bool{}, hives: map[string]bool{}, hiveKeys: map[string][]string{}}, nil
}

// Volume is the volume the plan changes.
func (p *Plan) Volume() *Volume { return p.v }

// unit runs fn as one plan unit labelled label: its writes are one unit of
// the journal, restored or left whole by undo (two calls are two units,
// even with one label).
func (p *Plan) unit(label string, fn func() error) error {
	p.sw.cur = p.o.Unit(label)
	defer func() { p.sw.cur = p.o }()
	return refusalOf(label, fn())
}

// Exists reports whether a file or directory exists in the planned state
// (case-insensitive, as Windows looks names up).
func (p *Plan) Exists(name string) (bool, error) {
	ok, err := p.w.Exists(name)
	if err != nil {
		return false, fmt.Errorf("look up %s: %w", name, err)
	}
	return ok, nil
}

// List lists a directory of the planned state.
func (p *Plan) List(dir string) ([]ntfs.DirEntry, error) { return p.w.List(dir) }

// Rename renames or moves a file or directory, as one unit, and returns the
// volume ranges it writes.
func (p *Plan) Rename(label, oldPath, newPath string) ([]ntfs.Range, error) {
	var rs []ntfs.Range
	err := p.unit(label, func() (err error) {
		rs, err = p.w.Rename(oldPath, newPath)
		return err
	})
	if err != nil {
		return nil, err
	}
	p.dirs[dirOf(oldPath)] = true
	p.dirs[dirOf(newPath)] = true
	p.written = append(p.written, rs...)
	return rs, nil
}

// dataUnit runs fn on the data of file name, as one unit labelled label:
// the file's changes are committed when fn reports a change, and discarded
// when it reports none or fails.
func (p *Plan) dataUnit(label, name string, fn func(df *ntfs.DataFile, size int64) (bool, error)) ([]ntfs.Range, error) {
	var rs []ntfs.Range
	err := p.unit(label, func() error {
		df, err := p.w.OpenData(name)
		if err != nil {
			return err
		}
		size, err := df.Size()
		if err != nil {
			return err
		}
		changed, err := fn(df, size)
		if err != nil || !changed {
			df.Discard()
			return err
		}
		rs, err = df.Commit()
		return err
	})
	if err != nil {
		return nil, err
	}
	if rs != nil {
		p.dirs[dirOf(name)] = true
		p.written = append(p.written, rs...)
	}
	return rs, nil
}

// EditFile rewrites a file's data, as one unit, with fn (nil result or the
// same bytes: unchanged); files over maxSize are refused.
func (p *Plan) EditFile(label, name string, maxSize int64, fn func([]byte) ([]byte, error)) ([]ntfs.Range, error) {
	return p.dataUnit(label, name, func(df *ntfs.DataFile, size int64) (bool, error) {
		if size > maxSize {
			return false, fmt.Errorf("%d bytes: too big to rewrite", size)
		}
		old := make([]byte, size)
		if _, err := df.ReadAt(old, 0); err != nil && !errors.Is(err, io.EOF) {
			return false, err
		}
		data, err := fn(old)
		if err != nil || data == nil || bytes.Equal(data, old) {
			return false, err
		}
		if int64(len(data)) < size {
			if err := df.Truncate(int64(len(data))); err != nil {
				return false, err
			}
		}
		_, err = df.WriteAt(data, 0)
		return err == nil, err
	})
}

// EditHive opens the hive file at name (recovering a dirty one from its
// .LOG1/.LOG2 beside it), runs fn with an editor of it and flushes it, as
// one unit. keys are the registry keys fn changes: the verification after
// the write re-reads them (and, for a small hive, checks it whole).
func (p *Plan) EditHive(label, name string, keys []string, fn func(*hive.Editor) error) ([]ntfs.Range, error) {
	vol, err := p.v.NTFS()
	if err != nil {
		return nil, err
	}
	rs, err := p.dataUnit(label, name, func(df *ntfs.DataFile, size int64) (bool, error) {
		// The logs are read from the volume as it was: a plan never
		// changes them.
		logs, closers := HiveLogs(vol.FS(), slashPath(name))
		defer closeAll(closers)
		h, err := hive.Open(df, size, logs...)
		if err != nil {
			return false, err
		}
		ed, err := hive.NewEditor(h, df, df.Truncate, logs...)
		if err != nil {
			return false, err
		}
		ed.SetClock(p.s.now())
		if err := fn(ed); err != nil {
			return false, err
		}
		return true, ed.Flush()
	})
	if err == nil {
		p.hives[name] = true
		p.hiveKeys[name] = append(p.hiveKeys[name], keys...)
	}
	return rs, err
}

// Ranges are the plan's merged ranges in FILE coordinates, aligned to
// sectors and labelled with their units: exactly what the journal saves.
func (p *Plan) Ranges() []journal.Range { return p.o.Ranges() }

// Bytes is how many bytes the plan writes.
func (p *Plan) Bytes() int64 { return p.o.Bytes() }

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.o.Ranges()) == 0 }

// Dirs are the directories the plan touched, sorted.
func (p *Plan) Dirs() []string { return sortedKeys(p.dirs) }

// Hives are the hive files the plan edited, sorted.
func (p *Plan) Hives() []string { return sortedKeys(p.hives) }

// HiveLogs opens NAME.LOG1 and NAME.LOG2 beside the hive at p (slash path)
// in fsys, case-insensitively. The returned closers must be closed.
func HiveLogs(fsys fs.FS, p string) ([]hive.Log, []io.Closer) {
	dir, name := path.Dir(p), path.Base(p)
	ents, _ := fs.ReadDir(fsys, dir)
	var logs []hive.Log
	var cl []io.Closer
	for _, suffix := range []string{".LOG1", ".LOG2"} {
		for _, e := range ents {
			if !strings.EqualFold(e.Name(), name+suffix) || !e.Type().IsRegular() {
				continue
			}
			f, err := fsys.Open(dir + "/" + e.Name())
			if err != nil {
				break
			}
			ra, ok := f.(io.ReaderAt)
			fi, err := f.Stat()
			if !ok || err != nil {
				f.Close()
				break
			}
			cl = append(cl, f)
			logs = append(logs, hive.Log{Name: e.Name(), R: ra, Size: fi.Size()})
			break
		}
	}
	return logs, cl
}

func closeAll(cl []io.Closer) {
	for _, c := range cl {
		c.Close()
	}
}

// slashPath turns a volume path with `\` into an fs.FS path.
func slashPath(p string) string {
	return strings.Trim(strings.ReplaceAll(p, `\`, "/"), "/")
}

// splitWin splits a volume path into its directory and base name.
func splitWin(p string) (string, string) {
	p = strings.Trim(strings.ReplaceAll(p, "/", `\`), `\`)
	i := strings.LastIndex(p, `\`)
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

func dirOf(p string) string { d, _ := splitWin(p); return d }

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
