package offline

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/wuoffline/wuoffline/hive"
)

// OptIns are the opt-in names of repair-catalog.md.
var optInNames = []string{"wsus", "proxy", "os-upgrade", "txr"}

// OptIns returns the opt-in names fix accepts in FixOptions.With.
func OptIns() []string { return append([]string(nil), optInNames...) }

// plannedAction is a FixAction with what executing it needs.
type plannedAction struct {
	FixAction
	newType hive.ValueType
	newRaw  []byte // for set / remove-entry
	oldRaw  []byte
}

// planActions turns the checks of one installation report into the changes
// fix makes, applying the default / opt-in rule and --only / --skip. It
// also returns the checks still `problem` that are left alone, with why.
func planActions(ir InstallationReport, opts FixOptions) ([]*plannedAction, []CheckOutcome) {
	var acts []*plannedAction
	var left []CheckOutcome
	hosts := map[string]*plannedAction{}
	// "Always when present" (softwaredistribution, catroot2, bits-queue
	// report `info` without failure evidence) applies to an installation
	// that has a problem: on one diagnose calls healthy, fix repairs
	// nothing unless the check is named with --only.
	anyProblem := false
	for _, r := range ir.Checks {
		if r.Status == StatusProblem {
			anyProblem = true
		}
	}
	for _, r := range ir.Checks {
		selected := true
		why := ""
		switch {
		case r.Status != StatusProblem && !anyProblem && !containsFold(opts.Only, r.ID):
			selected = false
		case len(opts.Only) > 0 && !containsFold(opts.Only, r.ID):
			selected, why = false, "not named by --only"
		case containsFold(opts.Skip, r.ID):
			selected, why = false, "left out by --skip"
		}
		n := 0
		needOptIn := ""
		if selected {
			for _, ev := range r.Evidence {
				if ev.Op == "" {
					continue
				}
				if ev.OptIn != "" && !containsFold(opts.With, ev.OptIn) && !containsFold(opts.Only, ev.OptIn) {
					needOptIn = ev.OptIn
					continue
				}
				if isFileEdit(ev.Op) {
					a := hosts[ev.Path]
					if a == nil {
						a = &plannedAction{FixAction: FixAction{Check: r.ID, Op: ev.Op, Path: ev.Path}}
						hosts[ev.Path] = a
						acts = append(acts, a)
					}
					n++
					continue
				}
				a, err := actionFor(r.ID, ev)
				if err != nil {
					why = err.Error()
					continue
				}
				acts = append(acts, a)
				n++
			}
		}
		if r.Status == StatusProblem && n == 0 {
			switch {
			case why != "":
			case needOptIn != "":
				why = fmt.Sprintf("needs opt-in `--with %s`", needOptIn)
			case r.OptIn != "":
				why = fmt.Sprintf("needs opt-in `--with %s`", r.OptIn)
			default:
				why = "report only: fix does not change this"
			}
			left = append(left, CheckOutcome{ID: r.ID, Before: r.Status, After: r.Status, Reason: why})
		}
	}
	if discardsHibernation(ir, opts) {
		acts = append([]*plannedAction{hibernationAction()}, acts...)
	}
	// Renames first (the hibernation image before anything else), then
	// file edits, then registry by hive: each hive is opened, edited and
	// flushed once.
	rank := func(a *plannedAction) int {
		switch a.Op {
		case "rename":
			return 0
		case "comment-out", "rewrite":
			return 1
		}
		return 2 + hiveRank(a.Hive)
	}
	sort.SliceStable(acts, func(i, j int) bool { return rank(acts[i]) < rank(acts[j]) })
	return acts, left
}

func hiveRank(name string) int {
	switch strings.ToUpper(name) {
	case "SYSTEM":
		return 0
	case "SOFTWARE":
		return 1
	}
	return 2
}

// isFileEdit reports the actions that rewrite a file's data in place
// (hosts lines commented out; Registry.pol entries removed; gpt.ini's
// version raised): one action per file, executed by rewrite.
func isFileEdit(op string) bool { return op == "comment-out" || op == "rewrite" }

// rewrite computes a file edit's new data from the old (nil: unchanged)
// and the edits made, by the file's rule.
func (a *plannedAction) rewrite(old []byte) ([]byte, []LineEdit, error) {
	name := strings.ToLower(a.Path[strings.LastIndexByte(a.Path, '\\')+1:])
	switch {
	case a.Op == "comment-out":
		return CommentOutHosts(old)
	case name == "registry.pol":
		return filterRegistryPol(old)
	case name == "gpt.ini":
		return bumpGptIni(old)
	}
	return nil, nil, fmt.Errorf("%s: no rewrite rule for %s", a.Check, a.Path)
}

// actionFor converts one evidence item to an action.
func actionFor(check string, ev Evidence) (*plannedAction, error) {
	a := &plannedAction{FixAction: FixAction{Check: check, Op: ev.Op, Hive: ev.Hive, Key: ev.Key, Value: ev.Value, Type: ev.Type, Old: ev.Old}, oldRaw: ev.Raw}
	if a.Old == "" && len(ev.Raw) > 0 && strings.HasPrefix(strings.ToLower(ev.Value), "pendingfilerenameoperations") {
		var ops []string
		for _, pr := range ParsePendingRenames(ev.Raw) {
			ops = append(ops, pr.String())
		}
		a.Old = strings.Join(ops, " | ")
	}
	switch ev.Op {
	case "rename":
		// A rename stays in its directory: the NTFS rename rewrites one
		// index entry of the parent, never moves the file.
		if ev.Path == "" || ev.To == "" || !strings.EqualFold(winDir(ev.To), winDir(ev.Path)) || strings.HasSuffix(ev.To, `\`) {
			return nil, fmt.Errorf("%s: rename %q to %q: not a new name in the same directory", check, ev.Path, ev.To)
		}
		a.Path, a.To = ev.Path, ev.To
	case "delete-key":
		a.Old = "(key with its subtree)"
		a.New = "(deleted)"
	case "delete-value":
		a.New = "(deleted)"
	case "set":
		switch {
		case strings.EqualFold(ev.Value, "WinHttpSettings"):
			a.newType, a.newRaw = hive.RegBinary, WinHTTPDirect()
			a.New = "direct access (" + hexBytes(WinHTTPDirect()) + ")"
		case ev.Type == "REG_BINARY" && strings.EqualFold(ev.Value, "Security"):
			// A service's security descriptor: its DACL set back to the
			// documented one, the rest of the descriptor kept.
			raw, old, err := restoreServiceDACL(ev.Raw, ev.New)
			if err != nil {
				return nil, fmt.Errorf("%s: cannot set %s\\%s: %w", check, ev.Key, ev.Value, err)
			}
			a.newType, a.newRaw = hive.RegBinary, raw
			a.Old, a.New = old, ev.New // the DACL; owner, group and SACL are kept (r.Fix says so)
		case ev.Type == "REG_DWORD" || ev.Type == "":
			n, err := strconv.ParseUint(strings.TrimSpace(ev.New), 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%s: cannot set %s\\%s to %q", check, ev.Key, ev.Value, ev.New)
			}
			a.newType, a.newRaw = hive.RegDWORD, binary.LittleEndian.AppendUint32(nil, uint32(n))
			a.Type = "REG_DWORD"
			a.New = ev.New
		case ev.Type == "REG_SZ" || ev.Type == "REG_EXPAND_SZ":
			// A string set back to what Windows ships (a ServiceDll path):
			// UTF-16LE with its NUL, the value keeps its type.
			a.newType = hive.RegSZ
			if ev.Type == "REG_EXPAND_SZ" {
				a.newType = hive.RegExpandSZ
			}
			a.newRaw = encodeUTF16Z(ev.New)
			a.New = ev.New
		default:
			return nil, fmt.Errorf("%s: no rule to set a %s value", check, ev.Type)
		}
	case "remove-entry":
		entries := decodeMultiSZ(ev.Raw)
		var keep []string
		for _, e := range entries {
			if !strings.Contains(strings.ToLower(e), "poqexec") {
				keep = append(keep, e)
			}
		}
		a.newType, a.newRaw = hive.RegMultiSZ, encodeMultiSZ(keep)
		a.New = strings.Join(keep, " | ")
	default:
		return nil, fmt.Errorf("%s: unknown action %q", check, ev.Op)
	}
	return a, nil
}

// winDir returns the directory part of a `\` path with its trailing `\`.
func winDir(p string) string {
	if i := strings.LastIndexByte(p, '\\'); i >= 0 {
		return p[:i+1]
	}
	return ""
}

func hexBytes(b []byte) string {
	s := make([]string, len(b))
	for i, c := range b {
		s[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(s, " ")
}

// decodeMultiSZ splits REG_MULTI_SZ data (UTF-16LE strings, each
// NUL-terminated, an empty string ending the list) into its strings.
func decodeMultiSZ(b []byte) []string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	var out []string
	start := 0
	for i, c := range u {
		if c == 0 {
			if i == start {
				break
			}
			out = append(out, string(utf16.Decode(u[start:i])))
			start = i + 1
		}
	}
	if start < len(u) && u[len(u)-1] != 0 {
		out = append(out, string(utf16.Decode(u[start:])))
	}
	return out
}

// encodeUTF16Z encodes a REG_SZ: UTF-16LE with a terminating NUL.
func encodeUTF16Z(s string) []byte {
	var b []byte
	for _, c := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return append(b, 0, 0)
}

// encodeMultiSZ is the inverse of decodeMultiSZ.
func encodeMultiSZ(ss []string) []byte {
	var b []byte
	for _, s := range ss {
		for _, c := range utf16.Encode([]rune(s)) {
			b = binary.LittleEndian.AppendUint16(b, c)
		}
		b = append(b, 0, 0)
	}
	return append(b, 0, 0)
}
