package session

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"wuoffline/hive"
	"wuoffline/journal"
	"wuoffline/ntfs"
)

// Baseline is what the checkers found, before the change, in what the plan
// touches: damage there already is not blamed on the change. The caller
// decides whether such damage is a refusal.
type Baseline struct {
	NTFS  map[string]bool // ntfs problem strings
	Hives map[string]bool // "PATH|code|key path"
}

// Baseline runs the NTFS checker on the touched directories and the hive
// checker on the edited hives, on the volume as it is.
func (p *Plan) Baseline() Baseline {
	b := Baseline{NTFS: map[string]bool{}, Hives: map[string]bool{}}
	if rep, err := ntfs.Check(p.v.Reader(), p.v.Size, ntfs.CheckOptions{Paths: p.Dirs()}); err == nil {
		for _, pr := range rep.Problems {
			b.NTFS[pr.String()] = true
		}
	}
	if vol, err := p.v.NTFS(); err == nil {
		for _, name := range p.Hives() {
			fs, _ := CheckHiveFile(vol.FS(), slashPath(name))
			for _, f := range fs {
				b.Hives[name+"|"+f.Code+"|"+f.Path] = true
			}
		}
	}
	return b
}

// Check runs the NTFS checker on the planned state of every directory the
// plan touches and returns the problems the volume did not already have.
func (p *Plan) Check(before Baseline) []string {
	rep, err := ntfs.Check(p.vr, p.v.Size, ntfs.CheckOptions{Paths: p.Dirs()})
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, pr := range rep.Problems {
		if !before.NTFS[pr.String()] {
			out = append(out, pr.String())
		}
	}
	return out
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
// target, synced, and the journal marked committed (journal.Commit). On an
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
	// Offset 0: the ranges are file coordinates (see the package comment).
	h := journal.Header{ID: p.v.ID, Target: s.Path, Offset: 0, Tool: tool, Note: opts.Note, Created: time.Now().UTC()}
	var w io.WriterAt = s.cache
	if opts.WrapWriter != nil {
		w = opts.WrapWriter(w)
	}
	jpath, err := journal.Commit(s.jdir, h, p.o, w, s.file.Sync)
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
// planned byte read back, the touched directories through the NTFS checker
// and the edited hives through the hive checker (only problems the
// baseline did not have count).
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
	rep, err := ntfs.Check(v.Reader(), v.Size, ntfs.CheckOptions{Paths: p.Dirs()})
	if err != nil {
		vr.OK, vr.Error = false, "ntfs check: "+err.Error()
	} else {
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
		fs, err := CheckHiveFile(vol.FS(), slashPath(name))
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

// CheckHiveFile runs the hive checker on a hive file of fsys (its logs
// beside it) and returns its error findings; the error is set when the
// hive cannot be checked.
func CheckHiveFile(fsys fs.FS, p string) ([]hive.Finding, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		return nil, fmt.Errorf("%s: no random access", p)
	}
	logs, cl := HiveLogs(fsys, p)
	defer closeAll(cl)
	rep, err := hive.Check(ra, fi.Size(), logs...)
	if err != nil {
		return nil, err
	}
	return rep.Problems(), nil
}

// hiveName is the upper-case base name of a hive path ("SOFTWARE").
func hiveName(p string) string {
	_, b := splitWin(p)
	return strings.ToUpper(b)
}
