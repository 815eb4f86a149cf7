package offline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/wuoffline/wuoffline/hive"

	"github.com/wuoffline/wuoffline/session"
)

// A directory target (a mounted Windows volume, or a tree laid out like
// one) is fixed with the operating system's own calls: os.Rename for the
// renames, and for the hosts file and the hives a rewrite of the whole file
// (written beside it, flushed, then renamed over it). Undo there cannot be
// by volume bytes; it is by files: before anything changes, the original of
// every edited file is copied into a manifest directory beside the target,
// with the manifest (renames and files, with the SHA-256 of the original
// and of what fix writes), and flushed. Undo renames back and restores each
// file whose content is still what fix wrote; anything changed since is
// left alone and reported, as for a raw volume.

// dirManifest is the undo record of a fix on a directory target.
type dirManifest struct {
	Version int       `json:"version"`
	Target  string    `json:"target"` // absolute path of the directory
	Created time.Time `json:"created"`
	// State: "prepared" (changes may be half made), "committed", "undone".
	State   string        `json:"state"`
	Renames []dirRename   `json:"renames"`
	Files   []dirFileEdit `json:"files"`
	Note    string        `json:"note"`
}

type dirRename struct {
	From string `json:"from"` // paths relative to the target, OS separators
	To   string `json:"to"`
}

type dirFileEdit struct {
	Path    string `json:"path"`
	Backup  string `json:"backup"` // file name in the manifest directory
	OldSHA  string `json:"old_sha256"`
	NewSHA  string `json:"new_sha256"`
	OldSize int64  `json:"old_size"`
	NewSize int64  `json:"new_size"`
}

const manifestName = "manifest.json"

// dirEditor plans changes to a directory target in memory.
type dirEditor struct {
	root    string
	now     func() time.Time
	renames []dirRename
	// planned maps a relative path (lower case) renamed away or into, to
	// whether it exists after the planned renames.
	planned map[string]bool
	files   map[string][]byte // relative real path -> new content
	old     map[string][]byte
	order   []string
}

func newDirEditor(root string) *dirEditor {
	return &dirEditor{root: root, planned: map[string]bool{}, files: map[string][]byte{}, old: map[string][]byte{}}
}

// resolve finds the real relative path of a volume path, matching each
// element exactly first and then case-insensitively, as Windows would.
func (d *dirEditor) resolve(p string) (string, bool) {
	cur := ""
	for _, el := range strings.Split(strings.Trim(strings.ReplaceAll(p, `\`, "/"), "/"), "/") {
		if el == "" || el == "." || el == ".." {
			return "", false
		}
		next := filepath.Join(cur, el)
		if _, err := os.Lstat(filepath.Join(d.root, next)); err == nil {
			cur = next
			continue
		}
		ents, err := os.ReadDir(filepath.Join(d.root, cur))
		if err != nil {
			return "", false
		}
		found := false
		for _, e := range ents {
			if strings.EqualFold(e.Name(), el) {
				cur, found = filepath.Join(cur, e.Name()), true
				break
			}
		}
		if !found {
			return filepath.Join(cur, el), false
		}
	}
	return cur, true
}

func (d *dirEditor) exists(p string) (bool, error) {
	rel, ok := d.resolve(p)
	if v, seen := d.planned[strings.ToLower(rel)]; seen {
		return v, nil
	}
	return ok, nil
}

func (d *dirEditor) rename(label, oldPath, newPath string) ([]ByteRange, error) {
	from, ok := d.resolve(oldPath)
	if !ok {
		return nil, fmt.Errorf("%s: %w", oldPath, os.ErrNotExist)
	}
	// The new name goes in the real directory of the old one.
	to := filepath.Join(filepath.Dir(from), newPath[len(winDir(newPath)):])
	d.renames = append(d.renames, dirRename{From: from, To: to})
	d.planned[strings.ToLower(from)] = false
	d.planned[strings.ToLower(to)] = true
	return nil, nil
}

func (d *dirEditor) read(p string) (string, []byte, error) {
	rel, ok := d.resolve(p)
	if !ok {
		return "", nil, fmt.Errorf("%s: %w", p, os.ErrNotExist)
	}
	if b, ok := d.files[rel]; ok {
		return rel, b, nil
	}
	f, err := os.Open(filepath.Join(d.root, rel))
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<31))
	return rel, b, err
}

func (d *dirEditor) set(rel string, old, data []byte) {
	if _, ok := d.old[rel]; !ok {
		d.old[rel] = old
		d.order = append(d.order, rel)
	}
	d.files[rel] = data
}

func (d *dirEditor) editFile(label, p string, fn func([]byte) ([]byte, error)) ([]ByteRange, error) {
	rel, old, err := d.read(p)
	if err != nil {
		return nil, err
	}
	if int64(len(old)) > maxTextEdit {
		return nil, fmt.Errorf("%d bytes: too big to rewrite", len(old))
	}
	data, err := fn(old)
	if err != nil || data == nil || bytes.Equal(data, old) {
		return nil, err
	}
	d.set(rel, old, data)
	return []ByteRange{{Off: 0, Len: int64(len(data)), Label: "file " + rel}}, nil
}

// memFile is a growable in-memory file for the hive editor.
type memFile struct{ b []byte }

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m.b)) {
		return 0, fmt.Errorf("write at %#x beyond the file (%d bytes)", off, len(m.b))
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) grow(n int64) error {
	if n < int64(len(m.b)) || n > 4<<30 {
		return fmt.Errorf("cannot grow the hive to %d bytes", n)
	}
	m.b = append(m.b, make([]byte, n-int64(len(m.b)))...)
	return nil
}

func (d *dirEditor) editHive(label, p string, _ []string, fn func(*hive.Editor) error) ([]ByteRange, error) {
	rel, old, err := d.read(p)
	if err != nil {
		return nil, err
	}
	m := &memFile{b: append([]byte(nil), old...)}
	dirFS, err := OpenDirFS(d.root)
	if err != nil {
		return nil, err
	}
	defer dirFS.Close()
	logs, closers := session.HiveLogs(dirFS, filepath.ToSlash(rel))
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	h, err := hive.Open(m, int64(len(m.b)), logs...)
	if err != nil {
		return nil, err
	}
	ed, err := hive.NewEditor(h, m, m.grow, logs...)
	if err != nil {
		return nil, err
	}
	ed.SetClock(d.now)
	if err := fn(ed); err != nil {
		return nil, err
	}
	var rs []ByteRange
	for _, r := range ed.Ranges() {
		rs = append(rs, ByteRange{Off: r.Off, Len: r.Len, Label: "file offsets of " + rel})
	}
	if err := ed.Flush(); err != nil {
		return nil, err
	}
	d.set(rel, old, m.b)
	return rs, nil
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// fixDirectory fixes a directory target.
func fixDirectory(tr *FixTargetReport, path string, opts FixOptions) {
	// journalDirFor's device flag false means "beside the target", which is
	// where a directory's manifests go too.
	root, err := filepath.Abs(path)
	if err != nil {
		tr.State, tr.Error = FixFailed, err.Error()
		return
	}
	jdir, err := journalDirFor(root, false, opts.JournalDir) // false: beside the directory
	if err != nil {
		tr.refuse("journal", fmt.Sprintf("no place for the undo manifest: %v", err), "name a writable directory outside the target with --journal DIR")
		return
	}
	if intr, _ := findInterruptedDir(path, opts.JournalDir); len(intr) > 0 {
		if opts.DryRun {
			tr.refuse("interrupted", "an earlier fix was interrupted ("+intr[0].Journal+")", intr[0].Advice)
			return
		}
		// A half-made fix of a directory is rolled back first (each file is
		// either whole old or whole new, each rename done or not), then
		// planned again from the state it leaves.
		ur := UndoTargetReport{Target: path}
		undoDirectory(&ur, path, UndoOptions{JournalDir: opts.JournalDir, onlyInterrupted: true})
		tr.Resumed = append(tr.Resumed, ur.Journals...)
		if ur.Error != "" {
			tr.State, tr.Error = FixFailed, "rolling back the interrupted fix: "+ur.Error
			return
		}
	}
	diag := DiagnoseTarget(path, Options{Letter: opts.Letter})
	if diag.Error != "" {
		tr.State, tr.Error = FixFailed, diag.Error
		return
	}
	tr.Refusals = append(tr.Refusals, diag.Refusals...)
	for _, ir := range diag.Installations {
		tr.Refusals = append(tr.Refusals, ir.Safety.Refusals...)
	}
	if len(tr.Refusals) > 0 {
		tr.State = FixRefused
		return
	}
	ir := diag.Installations[0]
	acts, left := planActions(ir, opts)
	fv := FixVolume{Windows: ir.Version, JournalDir: jdir, Remaining: left, Actions: []FixAction{}, Ranges: []ByteRange{}}
	ed := newDirEditor(root)
	ed.now = opts.clock()
	err = executePlan(ed, acts, hivePathsOf(ir))
	fv.Actions = publicActions(acts)
	for _, a := range fv.Actions {
		fv.Ranges = append(fv.Ranges, a.Ranges...)
	}
	for _, rel := range ed.order {
		fv.Bytes += int64(len(ed.files[rel]))
	}
	tr.Volumes = append(tr.Volumes, fv)
	if err != nil {
		tr.State, tr.Error = FixFailed, "planning failed, nothing written: "+err.Error()
		return
	}
	if len(acts) == 0 {
		tr.State = FixNothing
		return
	}
	if opts.DryRun {
		tr.State = FixPlanned
		return
	}
	if opts.Confirm != nil {
		tr.State = FixPlanned
		if !opts.Confirm(tr) {
			tr.State = FixDeclined
			return
		}
	}
	mdir, err := applyDirectory(root, jdir, ed, checkNote(acts), opts.dirFault)
	tr.Volumes[0].Journal = mdir
	if err != nil {
		tr.State = FixFailed
		tr.Error = fmt.Sprintf("writing failed: %v; `wuoffline undo %s` rolls back what was done", err, path)
		return
	}
	tr.State = FixDone
	// Verify: the hives re-read from the files, then diagnose again.
	vr := &Verification{OK: true}
	if d, err := OpenDirFS(root); err == nil {
		for _, rel := range ed.order {
			for _, name := range []string{"SYSTEM", "SOFTWARE", "COMPONENTS"} {
				if strings.EqualFold(filepath.Base(rel), name) {
					vr.Hives = append(vr.Hives, name)
					fs, err := session.CheckHiveFile(d, filepath.ToSlash(rel))
					if err != nil {
						vr.OK = false
						vr.HiveProblems = append(vr.HiveProblems, name+": "+err.Error())
					}
					// Problems the file already had are not the fix's.
					before, _ := hive.Check(bytes.NewReader(ed.old[rel]), int64(len(ed.old[rel])))
					for _, f := range fs {
						if before == nil || !hasFinding(before.Problems(), f) {
							vr.OK = false
							vr.HiveProblems = append(vr.HiveProblems, name+": "+f.String())
						}
					}
				}
			}
		}
		d.Close()
	}
	tr.Volumes[0].Verify = vr
	after := DiagnoseTarget(path, Options{Letter: opts.Letter})
	var ai *InstallationReport
	if len(after.Installations) > 0 {
		ai = &after.Installations[0]
	}
	tr.Volumes[0].Checks = compareChecks(ir, acts, ai)
}

func hasFinding(fs []hive.Finding, f hive.Finding) bool {
	for _, g := range fs {
		if g.Code == f.Code && g.Path == f.Path {
			return true
		}
	}
	return false
}

// applyDirectory saves the originals and the manifest, flushes them, then
// makes the changes, and marks the manifest committed.
func applyDirectory(root, jdir string, ed *dirEditor, note string, fault func(int) error) (string, error) {
	step := 0
	crash := func() error {
		if fault == nil {
			return nil
		}
		step++
		return fault(step - 1)
	}
	now := time.Now().UTC()
	mdir := filepath.Join(jdir, safeBase(root)+".wuoffline-dir-"+now.Format("20060102T150405.000000000Z"))
	if err := os.Mkdir(mdir, 0o700); err != nil {
		return "", err
	}
	m := dirManifest{Version: 1, Target: root, Created: now, State: "prepared", Renames: ed.renames, Note: note}
	for i, rel := range ed.order {
		b := fmt.Sprintf("file-%d.orig", i)
		if err := writeSynced(filepath.Join(mdir, b), ed.old[rel]); err != nil {
			return mdir, err
		}
		m.Files = append(m.Files, dirFileEdit{Path: rel, Backup: b, OldSHA: sha(ed.old[rel]), NewSHA: sha(ed.files[rel]), OldSize: int64(len(ed.old[rel])), NewSize: int64(len(ed.files[rel]))})
	}
	if err := writeManifest(mdir, &m); err != nil {
		return mdir, err
	}
	for _, f := range m.Files {
		if err := crash(); err != nil {
			return mdir, err
		}
		if err := replaceFile(filepath.Join(root, f.Path), ed.files[f.Path]); err != nil {
			return mdir, fmt.Errorf("%s: %w", f.Path, err)
		}
	}
	for _, r := range m.Renames {
		if err := crash(); err != nil {
			return mdir, err
		}
		if _, err := os.Lstat(filepath.Join(root, r.To)); err == nil {
			return mdir, fmt.Errorf("rename %s: %s exists", r.From, r.To)
		}
		if err := os.Rename(filepath.Join(root, r.From), filepath.Join(root, r.To)); err != nil {
			return mdir, err
		}
		syncDir(filepath.Dir(filepath.Join(root, r.To)))
	}
	m.State = "committed"
	return mdir, writeManifest(mdir, &m)
}

func safeBase(p string) string {
	b := filepath.Base(p)
	if b == "/" || b == "." || b == "" {
		return "root"
	}
	return b
}

func writeSynced(p string, b []byte) error { return writeSyncedMode(p, b, 0o600) }

func writeSyncedMode(p string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeManifest(mdir string, m *dirManifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(mdir, manifestName+".tmp")
	os.Remove(tmp)
	if err := writeSynced(tmp, b); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(mdir, manifestName)); err != nil {
		return err
	}
	syncDir(mdir)
	return nil
}

// replaceFile writes data beside p, flushes it and renames it over p, so
// that p is always either whole old or whole new.
func replaceFile(p string, data []byte) error {
	tmp := p + ".wuoffline-tmp"
	os.Remove(tmp)
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(p); err == nil {
		mode = fi.Mode().Perm()
	}
	if err := writeSyncedMode(tmp, data, mode); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(p))
	return nil
}

func syncDir(d string) {
	if f, err := os.Open(d); err == nil {
		f.Sync()
		f.Close()
	}
}

// dirManifests returns the manifests of a directory target, newest first.
func dirManifests(path, journalDir string) ([]string, []*dirManifest, error) {
	root, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, err
	}
	jdir := journalDir
	if jdir == "" {
		jdir = filepath.Dir(root)
	}
	dirs, _ := filepath.Glob(filepath.Join(jdir, "*.wuoffline-dir-*"))
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	var ps []string
	var ms []*dirManifest
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, manifestName))
		if err != nil {
			continue
		}
		var m dirManifest
		if json.Unmarshal(b, &m) != nil || m.Target != root {
			continue
		}
		ps, ms = append(ps, d), append(ms, &m)
	}
	return ps, ms, nil
}

// undoDirectory undoes the fixes of a directory target, newest first.
func undoDirectory(ur *UndoTargetReport, path string, opts UndoOptions) {
	root, _ := filepath.Abs(path)
	ps, ms, err := dirManifests(path, opts.JournalDir)
	if err != nil {
		ur.Error = err.Error()
		return
	}
	n := 0
	for i, m := range ms {
		if m.State == "undone" || opts.onlyInterrupted && m.State != "prepared" {
			continue
		}
		if opts.Last && n > 0 {
			break
		}
		n++
		jo := JournalOutcome{Journal: ps[i], Op: "undo"}
		// Renames back, last first.
		for j := len(m.Renames) - 1; j >= 0; j-- {
			r := m.Renames[j]
			from, to := filepath.Join(root, r.From), filepath.Join(root, r.To)
			_, errTo := os.Lstat(to)
			_, errFrom := os.Lstat(from)
			switch {
			case errTo == nil && errors.Is(errFrom, os.ErrNotExist):
				if err := os.Rename(to, from); err != nil {
					jo.Lost++
					jo.NotRestored = append(jo.NotRestored, ByteRange{Label: fmt.Sprintf("rename %s back to %s: %v", r.To, r.From, err)})
					continue
				}
				jo.Done++
			case errFrom == nil && errors.Is(errTo, os.ErrNotExist):
				jo.Already++
			default:
				jo.Changed++
				jo.NotRestored = append(jo.NotRestored, ByteRange{Label: fmt.Sprintf("rename %s back to %s: both or neither exist now (changed since)", r.To, r.From)})
			}
		}
		for _, f := range m.Files {
			p := filepath.Join(root, f.Path)
			cur, err := os.ReadFile(p)
			switch {
			case err != nil:
				jo.Changed++
				jo.NotRestored = append(jo.NotRestored, ByteRange{Label: fmt.Sprintf("%s: %v", f.Path, err)})
			case sha(cur) == f.OldSHA:
				jo.Already++
			case sha(cur) != f.NewSHA:
				jo.Changed++
				jo.NotRestored = append(jo.NotRestored, ByteRange{Len: int64(len(cur)), Label: fmt.Sprintf("%s: changed since the fix (neither the original nor what fix wrote): left alone", f.Path)})
			default:
				orig, err := os.ReadFile(filepath.Join(ps[i], f.Backup))
				if err == nil && sha(orig) != f.OldSHA {
					err = errors.New("the saved original is damaged")
				}
				if err == nil {
					err = replaceFile(p, orig)
				}
				if err != nil {
					jo.Lost++
					jo.NotRestored = append(jo.NotRestored, ByteRange{Label: fmt.Sprintf("%s: %v", f.Path, err)})
					continue
				}
				jo.Done++
			}
		}
		jo.Complete = jo.Changed == 0 && jo.Lost == 0
		jo.Summary = fmt.Sprintf("undo: %d change(s) taken back, %d already original, %d changed since, %d failed", jo.Done, jo.Already, jo.Changed, jo.Lost)
		m.State = "undone"
		if err := writeManifest(ps[i], m); err != nil {
			jo.Error = err.Error()
		}
		ur.Journals = append(ur.Journals, jo)
	}
}

// findInterruptedDir finds interrupted fixes of a directory target.
func findInterruptedDir(path, journalDir string) ([]InterruptedFix, error) {
	ps, ms, err := dirManifests(path, journalDir)
	if err != nil {
		return nil, err
	}
	var out []InterruptedFix
	for i, m := range ms {
		if m.State == "prepared" {
			out = append(out, InterruptedFix{Journal: ps[i], Advice: fmt.Sprintf("a fix of %s was interrupted: `wuoffline undo %s` takes back what it did, `wuoffline fix %s` rolls it back and fixes again", path, path, path)})
		}
	}
	return out, nil
}
