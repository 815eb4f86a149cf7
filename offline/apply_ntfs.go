package offline

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/wuoffline/wuoffline/hive"
	"github.com/wuoffline/wuoffline/image"
	"github.com/wuoffline/wuoffline/journal"
	"github.com/wuoffline/wuoffline/ntfs"
	"github.com/wuoffline/wuoffline/session"
)

// ntfsEditor executes a plan on a raw NTFS volume through a session.Plan:
// every write goes into an overlay of the target, labelled with its unit,
// and nothing reaches the target until Session.Commit.
type ntfsEditor struct{ p *session.Plan }

func toRanges(rs []ntfs.Range, label string) []ByteRange {
	out := make([]ByteRange, 0, len(rs))
	for _, r := range rs {
		out = append(out, ByteRange{Off: r.Off, Len: r.Len, Label: label})
	}
	return out
}

func (e ntfsEditor) exists(p string) (bool, error) { return e.p.Exists(p) }

func (e ntfsEditor) rename(label, oldPath, newPath string) ([]ByteRange, error) {
	rs, err := e.p.Rename(label, oldPath, newPath)
	return toRanges(rs, label), err
}

func (e ntfsEditor) editFile(label, p string, fn func([]byte) ([]byte, error)) ([]ByteRange, error) {
	rs, err := e.p.EditFile(label, p, maxTextEdit, fn)
	return toRanges(rs, label), err
}

func (e ntfsEditor) editHive(label, p string, keys []string, fn func(*hive.Editor) error) ([]ByteRange, error) {
	rs, err := e.p.EditHive(label, p, keys, fn)
	return toRanges(rs, label), err
}

// volumeRanges merges the ranges the actions write, which the NTFS writer
// gives in volume coordinates whatever the container, into the ranges of
// the volume the plan changes: overlapping or touching ranges become one,
// labelled with every unit that wrote in it.
func volumeRanges(acts []*plannedAction) ([]ByteRange, int64) {
	var all []ByteRange
	for _, a := range acts {
		all = append(all, a.Ranges...)
	}
	slices.SortFunc(all, func(a, b ByteRange) int { return cmp.Compare(a.Off, b.Off) })
	out := []ByteRange{}
	var labels [][]string
	for _, r := range all {
		if r.Len <= 0 {
			continue
		}
		if n := len(out); n > 0 && r.Off <= out[n-1].Off+out[n-1].Len {
			last := &out[n-1]
			last.Len = max(last.Len, r.Off+r.Len-last.Off)
			if !slices.Contains(labels[n-1], r.Label) {
				labels[n-1] = append(labels[n-1], r.Label)
			}
			continue
		}
		out = append(out, ByteRange{Off: r.Off, Len: r.Len})
		labels = append(labels, []string{r.Label})
	}
	var n int64
	for i := range out {
		out[i].Label = strings.Join(labels[i], "; ")
		n += out[i].Len
	}
	return out, n
}

// fileRanges are the plan's ranges of the target file, merged, aligned to
// sectors and labelled with their units: exactly what the journal saves,
// a container's own metadata included.
func fileRanges(p *session.Plan) ([]ByteRange, int64) {
	out := []ByteRange{}
	var n int64
	for _, r := range p.Ranges() {
		out = append(out, ByteRange{Off: r.Off, Len: r.Len, Label: r.Label})
		n += r.Len
	}
	return out, n
}

// volumePlan is one volume's plan during a fix.
type volumePlan struct {
	fv     *FixVolume
	v      image.Volume
	ir     InstallationReport
	acts   []*plannedAction
	plan   *session.Plan
	before session.Baseline
}

// refusalsOf copies a session refusal error into the report; it reports
// whether err was one.
func (tr *FixTargetReport) refusalsOf(err error) bool {
	var re *session.RefusedError
	if !errors.As(err, &re) {
		return false
	}
	for _, r := range re.Refusals {
		tr.refuse(r.ID, r.Reason, r.Advice)
	}
	return true
}

// fixImage fixes an image file or a block device through one session:
// opened once (exclusive unless a dry run), refusals, interrupted fixes
// finished, diagnose, plan on an overlay, journal and write, then one
// reopen with caches dropped to verify and diagnose again.
func fixImage(tr *FixTargetReport, path string, opts FixOptions) {
	s, err := session.Open(path, session.Options{Write: !opts.DryRun, DryRun: opts.DryRun, JournalDir: opts.JournalDir, Now: opts.clock()})
	if err != nil {
		if !tr.refusalsOf(err) {
			tr.State, tr.Error = FixFailed, err.Error()
			var ue *image.UnsupportedError
			if errors.As(err, &ue) {
				tr.Advice = ue.Hint
			}
		}
		return
	}
	defer s.Close()
	defer func() { tr.count(s.Stats()) }()
	tr.Kind, tr.Format, tr.Table = string(s.Target.Kind), s.Target.Format, s.Target.Table
	for _, r := range s.Refusals() {
		tr.refuse(r.ID, r.Reason, r.Advice)
	}
	jdir, _ := s.JournalDir()

	// An interrupted fix comes first: finish it (or, for a dry run, say so).
	for _, v := range s.Volumes() {
		infos, _ := s.Journals(v)
		for _, info := range infos {
			if !info.Interrupted() {
				continue
			}
			if opts.DryRun {
				tr.refuse("interrupted", fmt.Sprintf("volume %d: an earlier fix was interrupted (journal %s)", v.Index, info.Path), info.Advice(s.CommandTarget()))
				continue
			}
			jo := replayJournal(s, v, info, "resume")
			tr.Resumed = append(tr.Resumed, jo)
			if jo.Error != "" {
				tr.State, tr.Error = FixFailed, fmt.Sprintf("finishing the interrupted fix failed: %s; roll it back with `wuoffline undo %s`", jo.Error, s.CommandTarget())
				return
			}
			if !jo.Complete {
				tr.State, tr.Error = FixFailed, fmt.Sprintf("the interrupted fix could not be finished (%s); roll it back with `wuoffline undo %s`", jo.Summary, s.CommandTarget())
				return
			}
		}
	}
	if tr.State == FixRefused {
		return
	}

	diag := diagnoseOpened(s.Target, path, Options{Letter: opts.Letter, Progress: opts.Progress})
	if diag.Error != "" && len(diag.Installations) == 0 {
		tr.State, tr.Error, tr.Advice = FixFailed, diag.Error, diag.Advice
		if len(diag.Refusals) > 0 {
			tr.Refusals = append(tr.Refusals, diag.Refusals...)
			tr.State, tr.Error = FixRefused, ""
		}
		return
	}
	tr.Refusals = append(tr.Refusals, diag.Refusals...)
	for _, ir := range diag.Installations {
		for _, r := range writeRefusals(ir, opts) {
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
		v, ok := s.Volume(ir.Volume)
		if !ok {
			tr.State, tr.Error = FixFailed, fmt.Sprintf("volume %d vanished", ir.Volume)
			return
		}
		acts, left := planActions(ir, opts)
		fv := FixVolume{Volume: v.Index, Offset: v.Offset, Size: v.Size, Windows: ir.Version, JournalDir: jdir, Remaining: left, Actions: []FixAction{}, Ranges: []ByteRange{}}
		vp := &volumePlan{v: v.Volume, ir: ir, acts: acts}
		if len(acts) > 0 {
			opts.progress(path, "volume %d: planning %d change(s)", v.Index, len(acts))
			p, err := s.Plan(v, allowedRefusals(ir, opts)...)
			if err != nil {
				if !tr.refusalsOf(err) {
					tr.State, tr.Error = FixFailed, fmt.Sprintf("volume %d: %v", v.Index, err)
				}
				return
			}
			vp.plan = p
			err = executePlan(ntfsEditor{p}, acts, hivePathsOf(ir))
			fv.Actions = publicActions(acts)
			if err != nil {
				tr.Volumes = append(tr.Volumes, fv)
				// A damaged structure the plan would touch, or a layout the
				// NTFS writer cannot change: a refusal (exit 3), nothing written.
				if !tr.refusalsOf(err) {
					tr.State, tr.Error = FixFailed, fmt.Sprintf("volume %d: planning failed, nothing written: %v", v.Index, err)
					tr.Advice = planFailedAdvice(acts, s.CommandTarget())
				}
				return
			}
			fv.Ranges, fv.Bytes = volumeRanges(acts)
			fv.FileRanges, fv.FileBytes = fileRanges(p)
			// The plan must check clean before anything is written.
			var bad []string
			if vp.before, bad = p.Check(); len(bad) > 0 {
				tr.Volumes = append(tr.Volumes, fv)
				tr.State, tr.Error = FixFailed, fmt.Sprintf("volume %d: the planned state fails the NTFS check, nothing written: %s", v.Index, strings.Join(bad, "; "))
				tr.Advice = fmt.Sprintf("this is a fault in wuoffline or damage its checks did not see: run `wuoffline check --all %s`, and `chkdsk /f` from Windows or WinPE if it reports problems; please report the message", s.CommandTarget())
				return
			}
		}
		tr.Volumes = append(tr.Volumes, fv)
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
		if vp.plan == nil {
			continue
		}
		opts.progress(path, "volume %d: writing %d range(s)", vp.v.Index, len(vp.fv.Ranges))
		jpath, err := s.Commit(vp.plan, session.CommitOptions{Note: checkNote(vp.acts), WrapWriter: opts.WrapWriter})
		vp.fv.Journal = jpath
		if err != nil {
			tr.State = FixFailed
			if jpath != "" {
				tr.Error = fmt.Sprintf("volume %d: writing failed: %v; the volume may be half-changed: `wuoffline undo %s` rolls it back, `wuoffline fix %s` finishes it (journal %s)", vp.v.Index, err, s.CommandTarget(), s.CommandTarget(), jpath)
			} else {
				tr.Error = fmt.Sprintf("volume %d: journaling failed, nothing written: %v", vp.v.Index, err)
			}
			return
		}
	}

	// Verify: everything touched re-read from the medium, then diagnose.
	tr.State = FixDone
	verifyImage(tr, s, plans, opts)
}

// planFailedAdvice says what to do when an action of acts failed while
// planning: leave its check out and make the others, and look at the
// volume.
func planFailedAdvice(acts []*plannedAction, target string) string {
	for _, a := range acts {
		if a.Error != "" {
			return fmt.Sprintf("`wuoffline fix --skip %s %s` makes the other repairs without this one; `wuoffline check --all %s` checks the volume (and `chkdsk /f` from Windows or WinPE repairs what it finds)", a.Check, target, target)
		}
	}
	return fmt.Sprintf("`wuoffline fix --dry-run -v %s` shows the plan; `wuoffline check --all %s` checks the volume", target, target)
}

// replayJournal runs journal.UndoOn (action "undo") or journal.ResumeOn
// ("resume") for a journal of volume v through the session, and reports
// the outcome unit by unit; a failure is in the outcome's Error, a damaged
// journal in its Damage too.
func replayJournal(s *session.Session, v *session.Volume, info *journal.Info, action string) JournalOutcome {
	jo := JournalOutcome{Journal: info.Path, Volume: v.Index, Op: action}
	rep, err := s.Replay(v, info, action == "resume")
	if rep != nil {
		jo.fill(rep)
		if action == "undo" {
			explainRenames(&jo, v)
		}
	}
	var de *journal.DamagedError
	if !errors.As(err, &de) && rep != nil && rep.Damage != nil {
		errors.As(rep.Damage, &de)
	}
	switch {
	case de != nil:
		advice := s.Advice(info)
		if action == "undo" {
			// Undo has just taken back what the journal still describes
			// whole: what is left is to keep the evidence and look.
			advice = fmt.Sprintf("keep the journal file as it is for inspection; what it no longer describes whole was left as it is now (listed as LEFT; a missing journal's changes cannot be taken back): check the volume with `wuoffline check --all %s`, and take those changes back by hand if they are still needed", s.CommandTarget())
		}
		jo.Damage = damageOf(de, advice)
		jo.Error = jo.Damage.String()
	case err != nil:
		jo.Error = err.Error()
	case info.Damage != nil && info.Torn:
		// A mark appended after the plan (commit, undo) that does not
		// verify: a crash while appending it, or a flipped byte in it.
		// Every saved range verified, so nothing is lost, but the journal
		// is not as the program left it, and the user should know.
		jo.Note = fmt.Sprintf("the journal's last frame (at %#x) is cut short or damaged (%v); it was read as a change interrupted after its plan was saved, and every saved range verified: nothing of it is lost", info.DamageAt, info.Damage)
	}
	return jo
}

func (jo *JournalOutcome) fill(rep *journal.Report) {
	jo.Summary = rep.Summary()
	jo.Complete = rep.Complete()
	jo.Done, jo.Already, jo.Changed, jo.Lost = rep.Done, rep.Already, rep.Changed, rep.Lost
	jo.UnitsDone, jo.UnitsAlready, jo.UnitsLeft = rep.UnitsDone, rep.UnitsAlready, rep.UnitsLeft
	for _, r := range rep.Results {
		switch r.Outcome {
		case journal.ChangedSince:
			jo.NotRestored = append(jo.NotRestored, ByteRange{Off: r.Off, Len: r.Len, Label: fmt.Sprintf("%s: changed since (%d bytes differ from both the original and the fix, first at %#x)", r.Label, r.ChangedBytes, r.FirstChanged)})
		case journal.Lost:
			jo.NotRestored = append(jo.NotRestored, ByteRange{Off: r.Off, Len: r.Len, Label: fmt.Sprintf("%s: lost (%v)", r.Label, r.Err)})
		case journal.Left, journal.Incomplete:
			// Left whole with a changed or lost range of its unit (or of a
			// unit sharing its bytes): undo never writes part of a unit.
			jo.NotRestored = append(jo.NotRestored, ByteRange{Off: r.Off, Len: r.Len, Label: fmt.Sprintf("%s: %s, left whole with its change", r.Label, r.Outcome)})
		}
	}
	for _, u := range rep.Units {
		uo := UnitOutcome{Label: u.Label, Outcome: string(u.Outcome), Reason: u.Why, Advice: u.Advice}
		switch u.Outcome {
		case journal.Restored, journal.AlreadyOriginal, journal.Written, journal.AlreadyApplied:
		default:
			uo.Left = true
		}
		if uo.Label == "" {
			uo.Label = fmt.Sprintf("unit %d (its name was in a damaged part of the journal)", u.ID)
		}
		jo.Units = append(jo.Units, uo)
	}
}

// explainRenames says in words why a rename unit was left when the folder
// it renamed is there again: Windows booted since the fix and recreated
// it, which changed the directory's index that the rename wrote.
func explainRenames(jo *JournalOutcome, v *session.Volume) {
	var w *ntfs.Writer
	for i := range jo.Units {
		u := &jo.Units[i]
		from, to, ok := parseRenameLabel(u.Label)
		if !u.Left || !ok || u.Outcome == string(journal.Incomplete) || u.Outcome == string(journal.Lost) {
			continue
		}
		if w == nil {
			var err error
			if w, err = ntfs.OpenReadOnly(v.Reader(), v.Size); err != nil {
				return
			}
		}
		dir, base := splitWinPath(from)
		_, newBase := splitWinPath(to)
		shown := dir + `\`
		recreated := false
		if ents, err := w.List(dir); err == nil {
			for _, e := range ents {
				if strings.EqualFold(e.Name, base) {
					recreated = true
				}
			}
		}
		if recreated {
			u.Reason = fmt.Sprintf("Windows changed %s since the fix (it recreated %s); the renamed folder is kept as %s", shown, base, newBase)
			u.Advice = fmt.Sprintf("delete or merge %s by hand if you want the old one back", to)
		} else {
			u.Reason = fmt.Sprintf("%s changed since the fix (%s); the renamed folder is kept as %s", shown, u.Reason, newBase)
			u.Advice = fmt.Sprintf("rename %s back to %s by hand if you want the old one back", to, base)
		}
	}
}

// damageOf is the report of a damaged journal.
func damageOf(de *journal.DamagedError, advice string) *JournalDamage {
	d := &JournalDamage{Journal: de.Path, Kind: string(de.Kind), Units: de.Units, UnitsIntact: de.UnitsIntact,
		PlannedUnits: de.PlannedUnits, Written: string(de.Written), Advice: advice}
	if de.At >= 0 {
		at := de.At
		d.Offset = &at
	}
	if d.Written == "" {
		d.Written = string(journal.WrittenUnknown)
	}
	if de.Err != nil {
		d.Err = de.Err.Error()
	}
	return d
}

// String says in one sentence what is known of a damaged journal.
func (d *JournalDamage) String() string {
	what := map[string]string{
		string(journal.DamageMissing):    "is missing",
		string(journal.DamageUnreadable): "cannot be read",
		string(journal.DamageHeader):     "has a damaged header",
		string(journal.DamageCut):        "is cut short",
		string(journal.DamageFrames):     "has damaged frames",
	}[d.Kind]
	if what == "" {
		what = "is damaged (" + d.Kind + ")"
	}
	msg := fmt.Sprintf("journal %s %s", d.Journal, what)
	if d.Offset != nil {
		msg += fmt.Sprintf(" (first damage at byte %d of the file)", *d.Offset)
	}
	if d.Err != "" {
		msg += ": " + d.Err
	}
	planned := "unknown"
	if d.PlannedUnits >= 0 {
		planned = fmt.Sprint(d.PlannedUnits)
	}
	msg += fmt.Sprintf("; %d of %d units seen are whole in it (the plan had %s), and only those were taken back", d.UnitsIntact, d.Units, planned)
	switch d.Written {
	case string(journal.WrittenSome):
		msg += "; the fix had started writing the volume"
	case string(journal.WrittenNone):
		msg += "; the fix had not started writing the volume (what the journal still holds is original)"
	default:
		msg += "; whether the fix had started writing the volume cannot be told"
	}
	return msg
}

// verifyImage reopens the target once with caches dropped (new objects: no
// cache of the fix survives), checks every touched range, directory and
// edited hive, and diagnoses again on the reopened target.
func verifyImage(tr *FixTargetReport, s *session.Session, plans []*volumePlan, opts FixOptions) {
	rs, err := s.Reopen()
	if err != nil {
		for _, vp := range plans {
			vp.fv.Verify = &Verification{Error: err.Error()}
		}
		return
	}
	defer rs.Close()
	defer func() { tr.count(rs.Stats()) }()
	for _, vp := range plans {
		if vp.plan == nil {
			continue
		}
		sv := rs.Verify(vp.plan, vp.before)
		vr := &Verification{OK: sv.OK, Ranges: sv.Ranges, NTFSDirs: sv.NTFSDirs, NTFSEntries: sv.NTFSEntries,
			NTFSProblems: sv.NTFSProblems, HiveProblems: sv.HiveProblems, Error: sv.Error}
		for _, m := range sv.Mismatched {
			// File coordinates, as file_ranges: in a container the volume
			// offset says nothing about where the bytes are.
			vr.Mismatched = append(vr.Mismatched, ByteRange{Off: m.Off, Len: m.Len, Label: m.Label})
		}
		for _, h := range sv.Hives {
			_, base := splitWinPath(h)
			vr.Hives = append(vr.Hives, strings.ToUpper(base))
		}
		vp.fv.Verify = vr
	}
	diag := diagnoseOpened(rs.Target, s.Path, Options{Letter: opts.Letter})
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

// splitWinPath splits a `\` path into directory and base name.
func splitWinPath(p string) (string, string) {
	d := winDir(p)
	return strings.TrimSuffix(d, `\`), p[len(d):]
}
