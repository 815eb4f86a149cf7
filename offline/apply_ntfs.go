package offline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"wuoffline/access"
	"wuoffline/hive"
	"wuoffline/image"
	"wuoffline/journal"
	"wuoffline/ntfs"
)

// switchWriter forwards writes to the current labeled writer of the plan's
// overlay, so that every journaled range says which action wrote it.
type switchWriter struct{ cur io.WriterAt }

func (s *switchWriter) WriteAt(p []byte, off int64) (int, error) { return s.cur.WriteAt(p, off) }

// ntfsEditor executes a plan on a raw NTFS volume with the project's NTFS
// engine, writing into a journal.Overlay: nothing reaches the volume until
// journal.Commit applies the overlay.
type ntfsEditor struct {
	w    *ntfs.Writer
	o    *journal.Overlay
	sw   *switchWriter
	base fs.FS // the volume as it was (the hive logs are never changed)
	now  func() time.Time
	dirs map[string]bool // directories touched, for the checker
}

func newNTFSEditor(base io.ReaderAt, size int64, align int64, now func() time.Time) (*ntfsEditor, error) {
	vol, err := ntfs.Open(base, size)
	if err != nil {
		return nil, err
	}
	o := journal.NewOverlay(base, size)
	// Whole sectors: the disk's logical sector, or the volume's own if larger
	// (a bare 4Kn volume), since raw devices refuse partial-sector writes.
	if bps := int64(vol.Boot().BytesPerSector); bps > align {
		align = bps
	}
	if align > 0 {
		o.SetAlign(align)
	}
	sw := &switchWriter{cur: o}
	// NoVerify: instead of the writer checking a directory after each of
	// its writes (a 100,000-entry WinSxS once per operation), fixImage
	// checks every touched directory once on the whole planned state, and
	// again on the device after the write.
	w, err := ntfs.OpenWriter(o, sw, size, ntfs.WriterOptions{Now: now, NoVerify: true})
	if err != nil {
		return nil, err
	}
	return &ntfsEditor{w: w, o: o, sw: sw, base: vol.FS(), now: now, dirs: map[string]bool{}}, nil
}

func toRanges(rs []ntfs.Range, label string) []ByteRange {
	out := make([]ByteRange, 0, len(rs))
	for _, r := range rs {
		out = append(out, ByteRange{Off: r.Off, Len: r.Len, Label: label})
	}
	return out
}

func (e *ntfsEditor) exists(p string) (bool, error) {
	dir, name := strings.TrimSuffix(winDir(p), `\`), p[len(winDir(p)):]
	ents, err := e.w.List(dir)
	if err != nil {
		return false, fmt.Errorf("list %s: %w", dir, err)
	}
	for _, d := range ents {
		if strings.EqualFold(d.Name, name) {
			return true, nil
		}
	}
	return false, nil
}

func (e *ntfsEditor) rename(label, oldPath, newPath string) ([]ByteRange, error) {
	e.sw.cur = e.o.Labeled(label)
	defer func() { e.sw.cur = e.o }()
	rs, err := e.w.Rename(oldPath, newPath)
	if err != nil {
		return nil, err
	}
	e.dirs[strings.TrimSuffix(winDir(oldPath), `\`)] = true
	e.dirs[strings.TrimSuffix(winDir(newPath), `\`)] = true
	return toRanges(rs, label), nil
}

func (e *ntfsEditor) editFile(label, p string, fn func([]byte) ([]byte, error)) ([]ByteRange, error) {
	e.sw.cur = e.o.Labeled(label)
	defer func() { e.sw.cur = e.o }()
	df, err := e.w.OpenData(p)
	if err != nil {
		return nil, err
	}
	size, err := df.Size()
	if err != nil {
		return nil, err
	}
	if size > maxTextEdit {
		return nil, fmt.Errorf("%d bytes: too big to rewrite", size)
	}
	old := make([]byte, size)
	if _, err := df.ReadAt(old, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	data, err := fn(old)
	if err != nil || data == nil || bytes.Equal(data, old) {
		df.Discard()
		return nil, err
	}
	if int64(len(data)) < size {
		if err := df.Truncate(int64(len(data))); err != nil {
			df.Discard()
			return nil, err
		}
	}
	if _, err := df.WriteAt(data, 0); err != nil {
		df.Discard()
		return nil, err
	}
	rs, err := df.Commit()
	if err != nil {
		return nil, err
	}
	e.dirs[strings.TrimSuffix(winDir(p), `\`)] = true
	return toRanges(rs, label), nil
}

func (e *ntfsEditor) editHive(label, p string, fn func(*hive.Editor) error) ([]ByteRange, error) {
	e.sw.cur = e.o.Labeled(label)
	defer func() { e.sw.cur = e.o }()
	df, err := e.w.OpenData(p)
	if err != nil {
		return nil, err
	}
	size, err := df.Size()
	if err != nil {
		return nil, err
	}
	logs, closers := hiveLogs(e.base, slashPath(p))
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	h, err := hive.Open(df, size, logs...)
	if err != nil {
		df.Discard()
		return nil, err
	}
	ed, err := hive.NewEditor(h, df, df.Truncate, logs...)
	if err != nil {
		df.Discard()
		return nil, err
	}
	ed.SetClock(e.now)
	if err := fn(ed); err != nil {
		df.Discard()
		return nil, err
	}
	if err := ed.Flush(); err != nil {
		df.Discard()
		return nil, err
	}
	rs, err := df.Commit()
	if err != nil {
		return nil, err
	}
	e.dirs[strings.TrimSuffix(winDir(p), `\`)] = true
	return toRanges(rs, label), nil
}

// overlayRanges converts the overlay's merged ranges.
func overlayRanges(o *journal.Overlay) ([]ByteRange, int64) {
	var out []ByteRange
	var n int64
	for _, r := range o.Ranges() {
		out = append(out, ByteRange{Off: r.Off, Len: r.Len, Label: r.Label})
		n += r.Len
	}
	return out, n
}

// volumePlan is one volume's plan during a fix.
type volumePlan struct {
	fv    *FixVolume
	v     image.Volume
	ir    InstallationReport
	acts  []*plannedAction
	ed    *ntfsEditor
	id    journal.VolumeID
	paths map[string]string
	// Problems the checkers found before the fix (the test images carry
	// some on purpose, e.g. lh hashes hivex computes differently): only
	// new ones fail the verification.
	ntfsBefore map[string]bool
	hiveBefore map[string]bool
	// changes are the planned ranges with their bytes, for the read-back.
	changes    []journal.Change
	changesErr error
}

// fixImage fixes an image file or a block device.
func fixImage(tr *FixTargetReport, path string, opts FixOptions) {
	now := opts.clock()
	t, err := image.Open(path, image.Options{Writable: !opts.DryRun})
	if err != nil {
		var iu *access.InUseError
		switch {
		case errors.As(err, &iu):
			tr.refuse("mounted", fmt.Sprintf("%s is in use: %s", path, strings.Join(iu.Users, "; ")), iu.Advice())
			return
		case errors.Is(err, access.ErrLocked):
			tr.refuse("locked", err.Error(), "another wuoffline is changing it: wait for it to finish")
			return
		}
		if !opts.DryRun && (errors.Is(err, fs.ErrPermission) || errors.Is(err, access.ErrReadOnly) || isReadOnlyErr(err)) {
			tr.refuse("read-only", fmt.Sprintf("%s cannot be opened for writing: %v", path, err),
				"check the file's permissions or the device's write protection; `fix --dry-run` shows the plan without writing")
			return
		}
		tr.State, tr.Error = FixFailed, err.Error()
		return
	}
	defer t.Close()
	if m := openedElsewhere(path); m != "" {
		tr.refuse("mounted", fmt.Sprintf("%s is in use: %s", path, m),
			"unmount it (umount / fusermount -u) or detach the loop device (losetup -d) first")
		return
	}
	jdir, err := journalDirFor(path, t.Device, opts.JournalDir)
	if err != nil {
		tr.refuse("journal", fmt.Sprintf("no place for the undo journal: %v", err),
			"name a writable directory on another disk with --journal DIR")
		return
	}
	if t.Device {
		if on, err := journal.OnDevice(jdir, path); err == nil && on {
			tr.refuse("journal", fmt.Sprintf("the journal directory %s is on %s, the disk being repaired", jdir, path),
				"name a directory on another disk with --journal DIR")
			return
		}
	}

	// An interrupted fix comes first: finish it (or, for a dry run, say so).
	for _, v := range t.Volumes {
		if v.Content != image.ContentNTFS {
			continue
		}
		bs, err := ntfs.ReadBootSector(t.ReaderAt(v))
		if err != nil {
			continue
		}
		id := volumeID(path, t.Device, bs.Serial, v.Size)
		infos, _ := journal.Find(jdir, id)
		for _, info := range infos {
			if !info.Interrupted() {
				continue
			}
			if opts.DryRun {
				tr.refuse("interrupted", fmt.Sprintf("volume %d: an earlier fix was interrupted (journal %s)", v.Index, info.Path), info.Advice(path))
				continue
			}
			jo := replayJournal(t, v, info.Path, "resume", journal.Resume)
			if jo.Error != "" {
				tr.Resumed = append(tr.Resumed, jo)
				tr.State, tr.Error = FixFailed, fmt.Sprintf("finishing the interrupted fix failed: %s; roll it back with `wuoffline undo %s`", jo.Error, path)
				return
			}
			tr.Resumed = append(tr.Resumed, jo)
			if !jo.Complete {
				tr.State, tr.Error = FixFailed, fmt.Sprintf("the interrupted fix could not be finished (%s); roll it back with `wuoffline undo %s`", jo.Summary, path)
				return
			}
		}
	}
	if tr.State == FixRefused {
		return
	}

	diag := DiagnoseTarget(path, Options{Letter: opts.Letter})
	if diag.Error != "" && len(diag.Installations) == 0 {
		tr.State, tr.Error, tr.Hint = FixFailed, diag.Error, diag.Hint
		if len(diag.Refusals) > 0 {
			tr.Refusals = append(tr.Refusals, diag.Refusals...)
			tr.State, tr.Error = FixRefused, ""
		}
		return
	}
	tr.Refusals = append(tr.Refusals, diag.Refusals...)
	for _, ir := range diag.Installations {
		for _, r := range ir.Safety.Refusals {
			r.Reason = fmt.Sprintf("volume %d: %s", ir.Volume, r.Reason)
			tr.Refusals = append(tr.Refusals, r)
		}
	}
	if len(tr.Refusals) > 0 {
		tr.State = FixRefused
		return
	}

	// Plan every installation against an overlay: the dry run.
	var plans []*volumePlan
	for _, ir := range diag.Installations {
		v, ok := volumeByIndex(t, ir.Volume)
		if !ok {
			tr.State, tr.Error = FixFailed, fmt.Sprintf("volume %d vanished", ir.Volume)
			return
		}
		acts, left := planActions(ir, opts)
		fv := FixVolume{Volume: v.Index, Offset: v.Offset, Size: v.Size, Windows: ir.Version, JournalDir: jdir, Remaining: left, Actions: []FixAction{}, Ranges: []ByteRange{}}
		vp := &volumePlan{v: v, ir: ir, acts: acts, paths: hivePathsOf(ir)}
		if len(acts) > 0 {
			opts.progress(path, "volume %d: planning %d change(s)", v.Index, len(acts))
			ed, err := newNTFSEditor(t.ReaderAt(v), v.Size, alignOf(t), now)
			if err != nil {
				tr.State, tr.Error = FixFailed, fmt.Sprintf("volume %d: %v", v.Index, err)
				var re *ntfs.RefusedError
				if errors.As(err, &re) {
					tr.State, tr.Error = FixRefused, ""
					for _, r := range re.Refusals {
						tr.Refusals = append(tr.Refusals, Refusal{ID: r.ID, Reason: r.Reason, Advice: r.Advice})
					}
				}
				return
			}
			vp.ed = ed
			bs, err := ntfs.ReadBootSector(t.ReaderAt(v))
			if err != nil {
				tr.State, tr.Error = FixFailed, err.Error()
				return
			}
			vp.id = volumeID(path, t.Device, bs.Serial, v.Size)
			err = executePlan(ed, acts, vp.paths)
			fv.Actions = publicActions(acts)
			if err != nil {
				tr.Volumes = append(tr.Volumes, fv)
				tr.State, tr.Error = FixFailed, fmt.Sprintf("volume %d: planning failed, nothing written: %v", v.Index, err)
				return
			}
			fv.Ranges, fv.Bytes = overlayRanges(ed.o)
			vp.changes, vp.changesErr = ed.o.Changes()
			vp.ntfsBefore, vp.hiveBefore = baseline(t.ReaderAt(v), v.Size, ed, acts, vp.paths)
			// The plan must check clean before anything is written.
			if bad := planProblems(ed, vp.ntfsBefore); len(bad) > 0 {
				tr.Volumes = append(tr.Volumes, fv)
				tr.State, tr.Error = FixFailed, fmt.Sprintf("volume %d: the planned state fails the NTFS check, nothing written: %s", v.Index, strings.Join(bad, "; "))
				return
			}
		}
		tr.Volumes = append(tr.Volumes, fv)
		vp.fv = &tr.Volumes[len(tr.Volumes)-1]
		plans = append(plans, vp)
	}
	for i, vp := range plans { // tr.Volumes may have moved while appending
		vp.fv = &tr.Volumes[i]
	}
	total := 0
	for _, vp := range plans {
		total += len(vp.acts)
	}
	if total == 0 {
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

	// Journal and write, volume by volume.
	for _, vp := range plans {
		if len(vp.acts) == 0 {
			continue
		}
		w, err := t.WriterAt(vp.v)
		if err != nil {
			tr.State, tr.Error = FixFailed, fmt.Sprintf("volume %d: %v (nothing written)", vp.v.Index, err)
			return
		}
		if opts.WrapWriter != nil {
			w = opts.WrapWriter(w)
		}
		opts.progress(path, "volume %d: writing %d range(s)", vp.v.Index, len(vp.fv.Ranges))
		h := journal.Header{ID: vp.id, Target: path, Offset: vp.v.Offset, Tool: Tool, Note: checkNote(vp.acts), Created: time.Now().UTC()}
		jpath, err := journal.Commit(jdir, h, vp.ed.o, w, t.Sync)
		vp.fv.Journal = jpath
		if err != nil {
			tr.State = FixFailed
			if jpath != "" {
				tr.Error = fmt.Sprintf("volume %d: writing failed: %v; the volume may be half-changed: `wuoffline undo %s` rolls it back, `wuoffline fix %s` finishes it (journal %s)", vp.v.Index, err, path, path, jpath)
			} else {
				tr.Error = fmt.Sprintf("volume %d: journaling failed, nothing written: %v", vp.v.Index, err)
			}
			return
		}
	}
	t.Close()

	// Verify: everything touched re-read from the device, then diagnose.
	tr.State = FixDone
	verifyImage(tr, path, plans, opts)
}

// alignOf is the sector size journaled writes are widened to.
func alignOf(t *image.Target) int64 {
	if t.SectorSize > 0 {
		return int64(t.SectorSize)
	}
	return 512
}

func volumeByIndex(t *image.Target, idx int) (image.Volume, bool) {
	for _, v := range t.Volumes {
		if v.Index == idx {
			return v, true
		}
	}
	return image.Volume{}, false
}

// fill copies a journal report into an outcome.
// replayJournal runs journal.Undo or journal.Resume (replay) for the
// journal at path on volume v of t, and reports the outcome; a failure is
// in the outcome's Error.
func replayJournal(t *image.Target, v image.Volume, path, action string,
	replay func(path string, r io.ReaderAt, w io.WriterAt, sync func() error) (*journal.Report, error)) JournalOutcome {
	jo := JournalOutcome{Journal: path, Volume: v.Index, Action: action}
	w, err := t.WriterAt(v)
	if err == nil {
		var rep *journal.Report
		rep, err = replay(path, t.ReaderAt(v), w, t.Sync)
		if rep != nil {
			jo.fill(rep)
		}
	}
	if err != nil {
		jo.Error = err.Error()
	}
	return jo
}

func (jo *JournalOutcome) fill(rep *journal.Report) {
	jo.Summary = rep.Summary()
	jo.Complete = rep.Complete()
	jo.Done, jo.Already, jo.Changed, jo.Lost = rep.Done, rep.Already, rep.Changed, rep.Lost
	for _, r := range rep.Results {
		switch r.Outcome {
		case journal.ChangedSince:
			jo.NotRestored = append(jo.NotRestored, ByteRange{Off: r.Off, Len: r.Len, Label: fmt.Sprintf("%s: changed since (%d bytes differ from both the original and the fix, first at %#x)", r.Label, r.ChangedBytes, r.FirstChanged)})
		case journal.Lost:
			jo.NotRestored = append(jo.NotRestored, ByteRange{Off: r.Off, Len: r.Len, Label: fmt.Sprintf("%s: lost (%v)", r.Label, r.Err)})
		}
	}
	if rep.Damage != nil {
		jo.Error = "journal damaged: " + rep.Damage.Error()
	}
}

// verifyImage re-opens the target read-only (new objects: no cache of the
// fix survives), checks every touched directory and edited hive with the
// project's checkers, and diagnoses again.
func verifyImage(tr *FixTargetReport, path string, plans []*volumePlan, opts FixOptions) {
	t, err := image.Open(path, image.Options{})
	if err != nil {
		for _, vp := range plans {
			vp.fv.Verify = &Verification{Error: err.Error()}
		}
		return
	}
	defer t.Close()
	for _, vp := range plans {
		if len(vp.acts) == 0 {
			continue
		}
		vr := &Verification{OK: true}
		vp.fv.Verify = vr
		r := t.ReaderAt(vp.v)
		dropCache(path)
		// Every planned byte, read back from the device.
		if vp.changesErr != nil {
			vr.OK, vr.Error = false, "reading the plan: "+vp.changesErr.Error()
		}
		for _, c := range vp.changes {
			got := make([]byte, len(c.Data))
			vr.Ranges++
			if _, err := r.ReadAt(got, c.Off); err != nil || !bytes.Equal(got, c.Data) {
				vr.OK = false
				vr.Mismatched = append(vr.Mismatched, ByteRange{Off: c.Off, Len: c.Len(), Label: c.Label})
			}
		}
		var dirs []string
		for d := range vp.ed.dirs {
			dirs = append(dirs, d)
		}
		rep, err := ntfs.Check(r, vp.v.Size, ntfs.CheckOptions{Paths: dirs})
		if err != nil {
			vr.OK, vr.Error = false, "ntfs check: "+err.Error()
		} else {
			vr.NTFSDirs, vr.NTFSEntries = rep.Dirs, rep.Entries
			for _, p := range rep.Problems {
				if !vp.ntfsBefore[p.String()] {
					vr.OK = false
					vr.NTFSProblems = append(vr.NTFSProblems, p.String())
				}
			}
		}
		vol, err := ntfs.Open(r, vp.v.Size)
		if err != nil {
			vr.OK, vr.Error = false, "re-open: "+err.Error()
			continue
		}
		hives := map[string]bool{}
		for _, a := range vp.acts {
			if a.Hive != "" {
				hives[strings.ToUpper(a.Hive)] = true
			}
		}
		for name := range hives {
			p := slashPath(vp.paths[name])
			vr.Hives = append(vr.Hives, name)
			fs, err := checkHiveFile(vol.FS(), p)
			if err != nil {
				vr.OK = false
				vr.HiveProblems = append(vr.HiveProblems, name+": "+err.Error())
			}
			for _, f := range fs {
				if !vp.hiveBefore[name+"|"+f.Code+"|"+f.Path] {
					vr.OK = false
					vr.HiveProblems = append(vr.HiveProblems, name+": "+f.String())
				}
			}
		}
	}
	diag := DiagnoseTarget(path, Options{Letter: opts.Letter})
	for _, vp := range plans {
		var after *InstallationReport
		for i := range diag.Installations {
			if diag.Installations[i].Volume == vp.v.Index {
				after = &diag.Installations[i]
			}
		}
		vp.fv.Checks = compareChecks(vp.ir, vp.acts, after)
	}
}

// checkHiveFile runs the hive checker on a hive file of fsys and returns
// its error findings; the error is set when the hive cannot be checked.
func checkHiveFile(fsys fs.FS, p string) ([]hive.Finding, error) {
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
		return nil, fmt.Errorf("no random access")
	}
	logs, cl := hiveLogs(fsys, p)
	defer func() {
		for _, c := range cl {
			c.Close()
		}
	}()
	rep, err := hive.Check(ra, fi.Size(), logs...)
	if err != nil {
		return nil, err
	}
	return rep.Problems(), nil
}

// baseline runs the checkers on the volume before the fix, on what the fix
// will touch.
func baseline(r io.ReaderAt, size int64, ed *ntfsEditor, acts []*plannedAction, paths map[string]string) (map[string]bool, map[string]bool) {
	nb, hb := map[string]bool{}, map[string]bool{}
	var dirs []string
	for d := range ed.dirs {
		dirs = append(dirs, d)
	}
	if rep, err := ntfs.Check(r, size, ntfs.CheckOptions{Paths: dirs}); err == nil {
		for _, p := range rep.Problems {
			nb[p.String()] = true
		}
	}
	done := map[string]bool{}
	for _, a := range acts {
		name := strings.ToUpper(a.Hive)
		if name == "" || done[name] {
			continue
		}
		done[name] = true
		fs, _ := checkHiveFile(ed.base, slashPath(paths[name]))
		for _, f := range fs {
			hb[name+"|"+f.Code+"|"+f.Path] = true
		}
	}
	return nb, hb
}

// isReadOnlyErr recognises a read-only file system or device.
func isReadOnlyErr(err error) bool {
	s := err.Error()
	return strings.Contains(s, "read-only") || strings.Contains(s, "permission denied")
}

// openedElsewhere says whether an image file is attached to a loop device
// or mounted (ntfs-3g can mount a file directly), from /sys and
// /proc/self/mounts (Linux; elsewhere it finds nothing). Writing under a
// mounted file system corrupts it.
func openedElsewhere(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return ""
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	if m, err := os.ReadFile("/proc/self/mounts"); err == nil {
		for _, ln := range strings.Split(string(m), "\n") {
			f := strings.Fields(ln)
			if len(f) >= 2 && f[0] == abs {
				return "mounted on " + f[1]
			}
		}
	}
	loops, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, l := range loops {
		b, err := os.ReadFile(l)
		if err == nil && strings.TrimSpace(string(b)) == abs {
			return "attached to /dev/" + filepath.Base(filepath.Dir(filepath.Dir(l)))
		}
	}
	return ""
}

// planProblems runs the NTFS checker on the planned state (the overlay) of
// every directory the plan touches and returns the problems the volume did
// not already have.
func planProblems(ed *ntfsEditor, before map[string]bool) []string {
	var dirs []string
	for d := range ed.dirs {
		dirs = append(dirs, d)
	}
	rep, err := ntfs.Check(ed.o, ed.o.Size(), ntfs.CheckOptions{Paths: dirs})
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, p := range rep.Problems {
		if !before[p.String()] {
			out = append(out, p.String())
		}
	}
	return out
}
