package offline

import (
	"fmt"
	"strings"

	"github.com/wuoffline/wuoffline/hive"
)

// volumeEditor is what executing a plan needs from a volume: the NTFS
// engine over a journal overlay for a raw volume (ntfsEditor), or the
// operating system for a mounted directory (dirEditor). Paths are volume
// paths with `\` separators.
type volumeEditor interface {
	// exists reports whether a file or directory exists (case-insensitive).
	exists(p string) (bool, error)
	// rename renames within a directory and returns the ranges written.
	rename(label, oldPath, newPath string) ([]ByteRange, error)
	// editFile rewrites a file's data with fn (nil result: unchanged).
	editFile(label, p string, fn func([]byte) ([]byte, error)) ([]ByteRange, error)
	// editHive opens the hive at p (recovering a dirty one from its logs),
	// runs fn with an editor of it, and flushes it.
	// keys are the registry keys the edit touches (a lazy check after
	// writing re-reads them).
	editHive(label, p string, keys []string, fn func(*hive.Editor) error) ([]ByteRange, error)
}

// maxTextEdit bounds a text file fix rewrites (the hosts file is a few KiB).
const maxTextEdit = 16 << 20

// executePlan makes every action through ed, in order. It stops at the
// first error: the caller then writes nothing.
func executePlan(ed volumeEditor, acts []*plannedAction, hivePaths map[string]string) error {
	for i := 0; i < len(acts); i++ {
		a := acts[i]
		switch a.Op {
		case "rename":
			to, err := freeAsideName(ed, a.Path, a.To)
			if err != nil {
				a.Error = err.Error()
				return err
			}
			a.To = to
			rs, err := ed.rename(renameLabel(a.Path, a.To), a.Path, a.To)
			if err != nil {
				a.Error = err.Error()
				return fmt.Errorf("rename %s to %s: %w", a.Path, a.To, err)
			}
			a.Ranges = rs
		case "comment-out", "rewrite":
			rs, err := ed.editFile("edit "+a.Path, a.Path, func(old []byte) ([]byte, error) {
				out, edits, err := a.rewrite(old)
				if err != nil {
					return nil, err
				}
				a.Lines = edits
				if len(edits) == 0 {
					return nil, nil
				}
				return out, nil
			})
			if err != nil {
				a.Error = err.Error()
				return fmt.Errorf("edit %s: %w", a.Path, err)
			}
			a.Ranges = rs
		default:
			// Every registry action of one hive, edited in one session.
			j := i
			for j+1 < len(acts) && acts[j+1].Op != "rename" && !isFileEdit(acts[j+1].Op) && strings.EqualFold(acts[j+1].Hive, a.Hive) {
				j++
			}
			group := acts[i : j+1]
			p, ok := hivePaths[strings.ToUpper(a.Hive)]
			if !ok {
				err := fmt.Errorf("hive %s: not found on the volume", a.Hive)
				a.Error = err.Error()
				return err
			}
			var keys []string
			for _, g := range group {
				keys = append(keys, g.Key)
			}
			rs, err := ed.editHive(hiveLabel(a.Hive, group), p, keys, func(e *hive.Editor) error {
				for _, g := range group {
					if err := applyRegistry(e, g); err != nil {
						g.Error = err.Error()
						return err
					}
				}
				return nil
			})
			if err != nil {
				if a.Error == "" {
					a.Error = err.Error()
				}
				return fmt.Errorf("hive %s: %w", a.Hive, err)
			}
			group[len(group)-1].Ranges = rs
			i = j
		}
	}
	return nil
}

// renameLabel names a rename unit as the journal and undo report it:
// "rename Windows\SoftwareDistribution -> SoftwareDistribution.old" (the new
// name alone when the directory stays; parseRenameLabel reads it back).
func renameLabel(from, to string) string {
	if strings.EqualFold(winDir(from), winDir(to)) {
		_, to = splitWinPath(to)
	}
	return fmt.Sprintf("rename %s -> %s", strings.TrimPrefix(from, `\`), to)
}

// parseRenameLabel reads renameLabel back: the path renamed and its new
// path; ok false for any other label.
func parseRenameLabel(label string) (from, to string, ok bool) {
	rest, ok := strings.CutPrefix(label, "rename ")
	if !ok {
		return "", "", false
	}
	from, to, ok = strings.Cut(rest, " -> ")
	if !ok || from == "" || to == "" {
		return "", "", false
	}
	if !strings.Contains(to, `\`) {
		to = winDir(from) + to
	}
	return from, to, true
}

// hiveLabel names one hive edit unit: "SYSTEM: delete
// PendingFileRenameOperations; set ...", what the user sees if undo has to
// leave it.
func hiveLabel(hiveName string, group []*plannedAction) string {
	var what []string
	for _, g := range group {
		name := g.Value
		if name == "" {
			name = "(default)"
		}
		switch g.Op {
		case "delete-key":
			what = append(what, "delete key "+g.Key)
		case "delete-value":
			what = append(what, "delete "+name)
		case "set":
			what = append(what, "set "+g.Key+`\`+name)
		default:
			what = append(what, g.Op+" "+g.Key+`\`+name)
		}
	}
	label := strings.ToUpper(hiveName) + ": " + strings.Join(what, "; ")
	if len(label) > 300 {
		label = strings.ToValidUTF8(label[:297], "") + "..."
	}
	return label
}

// applyRegistry makes one registry action with the hive editor.
func applyRegistry(e *hive.Editor, a *plannedAction) error {
	switch a.Op {
	case "delete-key":
		return e.DeleteKey(a.Key)
	case "delete-value":
		return e.DeleteValue(a.Key, a.Value)
	case "set", "remove-entry":
		if _, err := e.CreateKey(a.Key); err != nil {
			return err
		}
		return e.SetValue(a.Key, a.Value, a.newType, a.newRaw)
	}
	return fmt.Errorf("unknown registry action %q", a.Op)
}

// freeAsideName applies the catalogue's suffix rule to a rename target:
// NAME.old, else NAME.old.1, .2, ... whichever does not exist yet (checked
// on the planned state, so two renames of one plan cannot collide).
func freeAsideName(ed volumeEditor, from, want string) (string, error) {
	ok, err := ed.exists(want)
	if err != nil {
		return "", err
	}
	if !ok {
		return want, nil
	}
	base := from + ".old"
	for i := 0; i < 1000; i++ {
		cand := base
		if i > 0 {
			cand = fmt.Sprintf("%s.%d", base, i)
		}
		ok, err := ed.exists(cand)
		if err != nil {
			return "", err
		}
		if !ok {
			return cand, nil
		}
	}
	return "", fmt.Errorf("%s: no free .old name", from)
}

// hivePathsOf maps "SYSTEM", "SOFTWARE", "COMPONENTS" to their volume paths.
func hivePathsOf(ir InstallationReport) map[string]string {
	m := map[string]string{}
	for _, h := range ir.Safety.Hives {
		if h.Present && h.Path != "" {
			m[strings.ToUpper(h.Name)] = h.Path
		}
	}
	for _, n := range []string{"SYSTEM", "SOFTWARE", "COMPONENTS"} {
		if _, ok := m[n]; !ok {
			m[n] = `Windows\System32\config\` + n
		}
	}
	return m
}

// compareChecks maps the checks fix acted on to fixed / still problem,
// from the diagnose run after the fix.
func compareChecks(before InstallationReport, acts []*plannedAction, after *InstallationReport) []CheckOutcome {
	acted := map[string]bool{}
	var order []string
	for _, a := range acts {
		if !acted[a.Check] {
			acted[a.Check] = true
			order = append(order, a.Check)
		}
	}
	var out []CheckOutcome
	for _, id := range order {
		co := CheckOutcome{ID: id, Before: statusOf(before.Checks, id)}
		switch {
		case after == nil:
			co.After, co.Reason = StatusFailed, "the installation could not be read again after the fix"
		case id == hibernationCheck:
			co.After, co.Reason = hibernationOutcome(after)
		default:
			r := resultOf(after.Checks, id)
			switch {
			case r == nil:
				co.After, co.Reason = StatusFailed, "check missing after the fix"
			case r.Status == StatusProblem || r.Status == StatusFailed:
				co.After, co.Reason = r.Status, r.Summary
				if r.Error != "" {
					co.Reason += ": " + r.Error
				}
				if r.Status == StatusProblem && !repairable(r) {
					co.NotRepairable = true
					co.Reason = "what fix could change is done; still reported (not repairable offline): " + co.Reason
				}
			default:
				co.After = StatusFixed
				co.Reason = r.Summary
			}
		}
		out = append(out, co)
	}
	return out
}

func statusOf(rs []Result, id string) Status {
	if r := resultOf(rs, id); r != nil {
		return r.Status
	}
	return ""
}

func resultOf(rs []Result, id string) *Result {
	for i := range rs {
		if rs[i].ID == id {
			return &rs[i]
		}
	}
	return nil
}

// publicActions copies the report side of planned actions.
func publicActions(acts []*plannedAction) []FixAction {
	out := make([]FixAction, 0, len(acts))
	for _, a := range acts {
		out = append(out, a.FixAction)
	}
	return out
}

// checkNote is the journal header note: which checks the fix touches.
func checkNote(acts []*plannedAction) string {
	seen := map[string]bool{}
	var ids []string
	for _, a := range acts {
		if !seen[a.Check] {
			seen[a.Check] = true
			ids = append(ids, a.Check)
		}
	}
	return "fix " + strings.Join(ids, ", ")
}

// repairable reports whether a result still has something fix does by
// default.
func repairable(r *Result) bool {
	for _, ev := range r.Evidence {
		if ev.Op != "" && ev.OptIn == "" {
			return true
		}
	}
	return false
}
