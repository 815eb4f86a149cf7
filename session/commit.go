package session

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/wuoffline/wuoffline/hive"
	"github.com/wuoffline/wuoffline/journal"
	"github.com/wuoffline/wuoffline/ntfs"
)

// Baseline is what the checkers accept in what the plan touches: damage
// that was there before the change is not blamed on it. Verify reports
// only problems beyond it.
type Baseline struct {
	NTFS  map[string]bool // ntfs problem strings
	Hives map[string]bool // "PATH|code|key path"
}

// Check runs the NTFS checker on the planned state of what the plan wrote
// (ntfs.CheckOptions.Ranges: each directory whose record or index the plan
// changed, whole when small, at the changed nodes when large) and returns
// the problems the volume did not already have (the volume as it is is
// checked only when the planned state has problems), with the baseline
// Verify compares against: the planned state's accepted problems, and the
// edited hives' findings before the change.
func (p *Plan) Check() (Baseline, []string) {
	b := Baseline{NTFS: map[string]bool{}, Hives: map[string]bool{}}
	if vol, err := p.v.NTFS(); err == nil {
		for _, name := range p.Hives() {
			fs, _ := checkHive(vol.FS(), slashPath(name), p.hiveKeys[name])
			for _, f := range fs {
				b.Hives[name+"|"+f.Code+"|"+f.Path] = true
			}
		}
	}
	if len(p.written) == 0 {
		return b, nil
	}
	opts := ntfs.CheckOptions{Ranges: p.written}
	rep, err := ntfs.Check(p.vr, p.v.Size, opts)
	if err != nil {
		return b, []string{err.Error()}
	}
	if len(rep.Problems) == 0 {
		return b, nil
	}
	before := map[string]bool{}
	if rep, err := ntfs.Check(p.v.Reader(), p.v.Size, opts); err == nil {
		for _, pr := range rep.Problems {
			before[pr.String()] = true
		}
	}
	var out []string
	for _, pr := range rep.Problems {
		if before[pr.String()] {
			b.NTFS[pr.String()] = true
		} else {
			out = append(out, pr.String())
		}
	}
	return b, out
}

// CommitOptions are the journal's description of a change.
type CommitOptions struct {
	Note string // what the change is ("fix services", "mv A -> B")
	Tool string // "" = Tool
	// WrapWriter, when set, wraps the target's writer (tests inject faults).
	WrapWriter func(io.WriterAt) io.WriterAt
}

// Commit journals and writes the plan: every range's original and new bytes
// are saved and flushed in the journal directory, then written to the
// target, synced, and the journal marked committed (journal.CommitOn). A
// plan that grew the file (a container that allocated) extends it first. On an
// error after the journal was prepared the path is returned with it: the
// change is interrupted, `undo` rolls it back and `fix` finishes it.
func (s *Session) Commit(p *Plan, opts CommitOptions) (string, error) {
	if !s.opts.Write {
		return "", fmt.Errorf("%s was opened read-only: nothing written", s.Path)
	}
	if s.jdirErr != nil {
		return "", s.jdirErr
	}
	tool := opts.Tool
	if tool == "" {
		tool = Tool
	}
	// The ranges are offsets in the target file (the overlay covers the
	// whole file); Offset says where the volume lies, for reports.
	h := journal.Header{ID: p.v.ID, Target: s.Path, Offset: p.v.Offset, Space: journal.SpaceFile, Tool: tool, Note: opts.Note, Created: time.Now().UTC()}
	var w io.WriterAt = s.cache
	if opts.WrapWriter != nil {
		w = opts.WrapWriter(w)
	}
	jpath, err := journal.CommitOn(s.jdir, h, p.o, s.dev(w))
	s.forgetVolume()
	return jpath, err
}

// Verification is the check of a written plan, re-read from the medium.
type Verification struct {
	OK bool
	// Ranges is how many planned ranges were read back and compared;
	// Mismatched those that differ (file coordinates).
	Ranges     int
	Mismatched []journal.Range
	// NTFS: directories and entries checked, and new problems.
	NTFSDirs, NTFSEntries int
	NTFSProblems          []string
	// Hives checked, and their new problems.
	Hives        []string
	HiveProblems []string
	Error        string
}

// Verify checks plan p (written through another session of the same
// target) on this session, which Reopen made with the caches dropped: every
// planned byte read back and compared, the NTFS structures the plan wrote
// checked again as Plan.Check did, and the edited hives re-read (a small hive checked whole,
// a large one along the touched keys; only problems the baseline did not
// have count).
func (s *Session) Verify(p *Plan, before Baseline) *Verification {
	vr := &Verification{OK: true}
	changes, err := p.o.Changes()
	if err != nil {
		vr.OK, vr.Error = false, "reading the plan: "+err.Error()
	}
	for _, c := range changes {
		got := make([]byte, len(c.Data))
		vr.Ranges++
		if _, err := s.cache.ReadAt(got, c.Off); err != nil || !bytes.Equal(got, c.Data) {
			vr.OK = false
			vr.Mismatched = append(vr.Mismatched, journal.Range{Off: c.Off, Len: c.Len(), Label: c.Label})
		}
	}
	v, ok := s.Volume(p.v.Index)
	if !ok {
		vr.OK, vr.Error = false, fmt.Sprintf("volume %d is gone after the write", p.v.Index)
		return vr
	}
	// The planned state was checked (Plan.Check) and every planned byte is
	// now compared on the medium; what is left is to parse the structures
	// the ranges belong to from the medium: the same check, on the volume
	// as written.
	if len(p.written) > 0 {
		rep, err := ntfs.Check(v.Reader(), v.Size, ntfs.CheckOptions{Ranges: p.written})
		if err != nil {
			vr.OK, vr.Error = false, "re-open: "+err.Error()
			return vr
		}
		vr.NTFSDirs, vr.NTFSEntries = rep.Dirs, rep.Entries
		for _, pr := range rep.Problems {
			if !before.NTFS[pr.String()] {
				vr.OK = false
				vr.NTFSProblems = append(vr.NTFSProblems, pr.String())
			}
		}
	}
	vol, err := v.NTFS()
	if err != nil {
		vr.OK, vr.Error = false, "re-open: "+err.Error()
		return vr
	}
	for _, name := range p.Hives() {
		vr.Hives = append(vr.Hives, name)
		fs, err := checkHive(vol.FS(), slashPath(name), p.hiveKeys[name])
		if err != nil {
			vr.OK = false
			vr.HiveProblems = append(vr.HiveProblems, name+": "+err.Error())
		}
		for _, f := range fs {
			if !before.Hives[name+"|"+f.Code+"|"+f.Path] {
				vr.OK = false
				vr.HiveProblems = append(vr.HiveProblems, name+": "+f.String())
			}
		}
	}
	return vr
}

// fullHiveCheck is the largest hive checked whole before and after a
// change; a larger one (a SOFTWARE hive of an old installation is 50-150
// MB) gets the lazy check of what the change touched, so that a fix reads
// a few MiB rather than the whole hive three times. `reg check` still
// checks any hive whole.
const fullHiveCheck = 16 << 20

// openHive opens the hive file at p of fsys with its logs beside it; close
// releases the files.
func openHive(fsys fs.FS, p string) (h *hive.Hive, size int64, close func(), err error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, 0, nil, err
	}
	fi, err := f.Stat()
	ra, ok := f.(io.ReaderAt)
	if err == nil && !ok {
		err = fmt.Errorf("%s: no random access", p)
	}
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	logs, cl := HiveLogs(fsys, p)
	close = func() { closeAll(cl); f.Close() }
	if h, err = hive.Open(ra, fi.Size(), logs...); err != nil {
		close()
		return nil, 0, nil, err
	}
	return h, fi.Size(), close, nil
}

// checkHive checks the hive at p: whole when it is small, else the keys a
// change touched, re-read from the root (each key node on the path, the
// key's subkey list, values and their data).
func checkHive(fsys fs.FS, p string, keys []string) ([]hive.Finding, error) {
	h, size, done, err := openHive(fsys, p)
	if err != nil {
		return nil, err
	}
	defer done()
	if size <= fullHiveCheck {
		return h.Check().Problems(), nil
	}
	var out []hive.Finding
	bad := func(key string, err error) {
		out = append(out, hive.Finding{Severity: hive.Error, Code: "touched-key", Offset: hive.NoOffset, Path: key, Message: err.Error()})
	}
	for _, key := range keys {
		k, err := h.OpenKey(key)
		if errors.Is(err, hive.ErrNotFound) {
			continue // deleted by the change
		}
		if err != nil {
			bad(key, err)
			continue
		}
		if _, err := k.Subkeys(); err != nil {
			bad(key, err)
		}
		vs, err := k.Values()
		if err != nil {
			bad(key, err)
			continue
		}
		for _, v := range vs {
			if _, err := v.Data(); err != nil {
				bad(key, fmt.Errorf("value %q: %w", v.Name(), err))
			}
		}
	}
	return out, nil
}

// CheckHiveFile runs the hive checker on the whole hive file at p of fsys
// (its logs beside it) and returns its error findings; the error is set
// when the hive cannot be opened.
func CheckHiveFile(fsys fs.FS, p string) ([]hive.Finding, error) {
	h, _, done, err := openHive(fsys, p)
	if err != nil {
		return nil, err
	}
	defer done()
	return h.Check().Problems(), nil
}
