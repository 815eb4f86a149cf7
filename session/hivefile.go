package session

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/wuoffline/wuoffline/access"
	"github.com/wuoffline/wuoffline/hive"
	"github.com/wuoffline/wuoffline/journal"
)

// maxHiveFile is the largest hive file: a base block and the largest
// hive-bins size a base block can describe.
const maxHiveFile = 4096 + 0x7FFFF000

// HiveFile is a registry hive file (SYSTEM, NTUSER.DAT...) opened for
// reading, or with exclusive access for a journaled change. Its transaction
// logs beside it (NAME.LOG1, NAME.LOG2, any case) are opened too: a dirty
// hive is read in its recovered state.
type HiveFile struct {
	Path  string
	f     *access.File
	size  int64
	logs  []hive.Log
	files []*os.File
	write bool
}

// OpenHive opens the hive file at path; write takes exclusive access (a
// read-only file, or one another wuoffline holds, is a *RefusedError).
func OpenHive(path string, write bool) (*HiveFile, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	mode := access.Read
	if write {
		mode = access.Exclusive
	}
	f, err := access.Open(path, mode)
	if err != nil {
		return nil, openError(path, err)
	}
	hf := &HiveFile{Path: path, f: f, size: f.Size(), write: write}
	for _, lp := range hiveLogFiles(path) {
		lf, err := os.Open(lp)
		if err != nil {
			continue
		}
		ls, err := lf.Stat()
		if err != nil {
			lf.Close()
			continue
		}
		hf.files = append(hf.files, lf)
		hf.logs = append(hf.logs, hive.Log{Name: filepath.Base(lp), R: lf, Size: ls.Size()})
	}
	return hf, nil
}

// hiveLogFiles finds HIVE.LOG1 and HIVE.LOG2 beside the hive, in any case.
func hiveLogFiles(path string) []string {
	dir, base := filepath.Dir(path), filepath.Base(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, want := range []string{".log1", ".log2"} {
		for _, e := range ents {
			if e.Type().IsRegular() && strings.EqualFold(e.Name(), base+want) {
				out = append(out, filepath.Join(dir, e.Name()))
				break
			}
		}
	}
	return out
}

// Close closes the hive file and its logs.
func (hf *HiveFile) Close() error {
	for _, f := range hf.files {
		f.Close()
	}
	return hf.f.Close()
}

// Open parses the hive (recovered in memory from its logs when dirty).
func (hf *HiveFile) Open() (*hive.Hive, error) {
	h, err := hive.Open(hf.f, hf.size, hf.logs...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", hf.Path, err)
	}
	return h, nil
}

// journalID identifies a hive file's journals: by its name (a hive file
// has no volume serial) and its size before the change.
func hiveJournalID(path string, size int64) journal.VolumeID {
	return journal.VolumeID{Name: filepath.Base(path), Size: size}
}

// Journals returns the journals of the hive file, whatever size the file
// had when each was made (a change can grow the file), newest first. A
// journal whose name is the hive's but that is damaged, cut or unreadable
// is returned too, with Damage set (journal.Open's *journal.DamagedError
// when not even its header can be read): it is never passed over.
func (hf *HiveFile) Journals() ([]*journal.Info, error) {
	dir, base := filepath.Dir(hf.Path), filepath.Base(hf.Path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	prefix := strings.ToLower(journal.FileName(journal.Header{ID: hiveJournalID(hf.Path, 0)}))
	prefix = prefix[:strings.LastIndex(prefix, "-")+1] // NAME.wuoffline-SERIAL-
	var out []*journal.Info
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasPrefix(strings.ToLower(e.Name()), prefix) || !strings.HasSuffix(e.Name(), ".journal") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		info, err := journal.Open(p)
		if err != nil {
			var de *journal.DamagedError
			if !errors.As(err, &de) {
				de = &journal.DamagedError{Path: p, Kind: journal.DamageUnreadable, At: -1, Err: err, PlannedUnits: -1, Written: journal.WrittenUnknown}
			}
			out = append(out, &journal.Info{Path: p, Damage: de, DamageAt: de.At})
			continue
		}
		if !strings.EqualFold(info.Header.ID.Name, base) || info.Header.ID.Serial != 0 {
			continue
		}
		out = append(out, info)
	}
	// Newest first; a journal without a readable header has no time and
	// goes last (it is reported whatever its place).
	sort.SliceStable(out, func(a, b int) bool {
		ha, hb := out[a].Header, out[b].Header
		if ha.Seq != hb.Seq {
			return ha.Seq > hb.Seq
		}
		return ha.Created.After(hb.Created)
	})
	return out, nil
}

// HiveEdit is a change of a hive file being planned on an overlay of the
// file (which may grow: new bins past its end read as zeros).
type HiveEdit struct {
	hf      *HiveFile
	plan    *journal.Overlay
	Hive    *hive.Hive
	Editor  *hive.Editor
	newSize int64
}

// Edit starts a change of the hive. It refuses (*RefusedError) a hive with
// an interrupted change, a dirty hive its logs do not recover, and a hive
// the checker finds damaged (before, the findings in the error).
func (hf *HiveFile) Edit(now func() time.Time) (*HiveEdit, error) {
	if hf.write {
		infos, err := hf.Journals()
		if err != nil {
			return nil, err
		}
		for _, in := range infos {
			if in.Interrupted() {
				return nil, &RefusedError{Refusals: []Refusal{{ID: "interrupted", Reason: fmt.Sprintf("%s: an earlier change was interrupted", hf.Path),
					Advice: hiveAdvice(in, hf.Path)}}}
			}
		}
	}
	// The plan may grow the file (new bins past its end read as zeros):
	// the journal records both sizes and undo cuts the file back.
	plan := journal.NewOverlay(hf.f, hf.size)
	plan.AllowGrowth(maxHiveFile)
	w := plan.Unit("hive " + filepath.Base(hf.Path))
	h, err := hive.Open(plan, hf.size, hf.logs...)
	if err != nil {
		if errors.Is(err, hive.ErrDirty) {
			return nil, &RefusedError{Refusals: []Refusal{{ID: "dirty-hive", Reason: fmt.Sprintf("%s: %v", hf.Path, err), Advice: "put the hive's .LOG1/.LOG2 beside it, or boot Windows once"}}}
		}
		return nil, fmt.Errorf("%s: %w", hf.Path, err)
	}
	if h.Dirty() && !h.Recovered() {
		return nil, &RefusedError{Refusals: []Refusal{{ID: "dirty-hive", Reason: fmt.Sprintf("%s is dirty and no transaction log beside it (%s.LOG1, .LOG2) recovers it", hf.Path, filepath.Base(hf.Path)),
			Advice: "put the hive's .LOG1/.LOG2 beside it, or boot Windows once"}}}
	}
	if before := h.Check(); !before.OK() {
		return nil, &RefusedError{Refusals: []Refusal{{ID: "damaged-hive", Reason: fmt.Sprintf("%s: the checker finds %d errors:\n%s", hf.Path, len(before.Problems()), before.String()),
			Advice: "see 'wuoffline reg check " + hf.Path + "'"}}}
	}
	e := &HiveEdit{hf: hf, plan: plan, Hive: h, newSize: hf.size}
	grow := func(n int64) error {
		if n > maxHiveFile {
			return fmt.Errorf("%d bytes is beyond the largest hive", n)
		}
		e.newSize = max(e.newSize, n)
		return nil
	}
	ed, err := hive.NewEditor(h, w, grow, hf.logs...)
	if err != nil {
		return nil, &RefusedError{Refusals: []Refusal{{ID: "dirty-hive", Reason: err.Error(), Advice: "see 'wuoffline reg check " + hf.Path + "'"}}}
	}
	if now != nil {
		ed.SetClock(now)
	}
	e.Editor = ed
	return e, nil
}

// Finish flushes the editor and checks the edited hive: an edit must leave
// no checker error.
func (e *HiveEdit) Finish() error {
	if err := e.Editor.Flush(); err != nil {
		return err
	}
	if after := e.Hive.Check(); !after.OK() {
		return fmt.Errorf("internal error: the edited hive would not pass the checker:\n%s", after.String())
	}
	return nil
}

// Ranges are the file ranges the edit writes; Bytes their total.
func (e *HiveEdit) Ranges() []Range { return e.plan.Ranges() }

// Bytes is how many bytes the edit writes.
func (e *HiveEdit) Bytes() int64 { return e.plan.Bytes() }

// Sizes are the file's size before and after the edit.
func (e *HiveEdit) Sizes() (before, after int64) { return e.hf.size, e.newSize }

// Commit journals the edit beside the hive and writes it.
func (e *HiveEdit) Commit(note, tool string) (string, error) {
	hf := e.hf
	if !hf.write {
		return "", fmt.Errorf("%s was opened read-only: nothing written", hf.Path)
	}
	dir, err := journal.ChooseDir(hf.Path, true, "")
	if err != nil {
		return "", &RefusedError{Refusals: []Refusal{{ID: "journal", Reason: err.Error(), Advice: "make the hive's directory writable"}}}
	}
	hdr := journal.Header{ID: hiveJournalID(hf.Path, hf.size), Target: hf.Path, Space: journal.SpaceFile, Tool: tool, Note: note, Created: time.Now().UTC()}
	return journal.CommitOn(dir, hdr, e.plan, hf.f)
}

// hiveAdvice is what to do about a journal of the hive at path, in terms of
// `wuoffline reg undo`.
func hiveAdvice(in *journal.Info, path string) string {
	if de := in.Damaged(); de != nil {
		return fmt.Sprintf("%v: 'wuoffline reg undo %s' takes back only what the journal still describes whole; keep the journal for inspection and run 'wuoffline reg check %s'", de, path, path)
	}
	return fmt.Sprintf("run 'wuoffline reg undo %s' to roll it back", path)
}

// HiveUndo is what Undo did.
type HiveUndo struct {
	Journal *journal.Info
	// Report is nil when the journal could not be read at all.
	Report   *journal.Report
	CutTo    int64 // the file was cut back to this size (0: not cut)
	Complete bool
	// Damaged are the damaged, cut or unreadable journals of the hive,
	// the one undone included, each with what to do: reported, never
	// passed over.
	Damaged []string
}

// Undo takes back the newest change journaled for the hive; a change that
// grew the file is cut back to the size before it (journal.UndoOn). A
// damaged newest journal restores only the units it still describes whole
// and returns its *journal.DamagedError; any other damaged journal of the
// hive is listed in Damaged.
func (hf *HiveFile) Undo() (*HiveUndo, error) {
	infos, err := hf.Journals()
	if err != nil {
		return nil, err
	}
	todo := journal.Undoable(infos)
	if len(todo) == 0 {
		return nil, fmt.Errorf("no change to undo for %s (no journal beside it that is committed or interrupted)", hf.Path)
	}
	in := todo[0]
	u := &HiveUndo{Journal: in}
	for _, t := range todo {
		if t.Damaged() != nil {
			u.Damaged = append(u.Damaged, hiveAdvice(t, hf.Path))
		}
	}
	before := hf.f.Size()
	rep, err := journal.UndoOn(in.Path, hf.f)
	u.Report = rep
	if rep != nil {
		u.Complete = rep.Complete() && len(u.Damaged) == 0
		if rep.Truncated {
			u.CutTo = rep.OldSize
		}
	}
	if err != nil {
		return u, err
	}
	// A journal made before the header recorded sizes: the volume id
	// holds the size before the change.
	if u.Complete && rep.OldSize == 0 && in.Header.ID.Size > 0 && before > in.Header.ID.Size {
		if err := hf.f.Truncate(in.Header.ID.Size); err != nil {
			return u, fmt.Errorf("truncating back to %d bytes: %w", in.Header.ID.Size, err)
		}
		if err := hf.f.Sync(); err != nil {
			return u, err
		}
		u.CutTo = in.Header.ID.Size
	}
	return u, nil
}
