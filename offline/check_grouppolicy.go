package offline

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"strconv"
	"strings"

	"github.com/wuoffline/wuoffline/preg"
)

// ---------------------------------------------------------------- group-policy-file

// The local Group Policy object: its machine settings in Registry.pol
// (PReg), which the Group Policy client writes into SOFTWARE\Policies at
// every boot, and gpt.ini, whose Version tells the client the object
// changed (high 16 bits: user settings; low 16 bits: machine settings).
// Tools like Sophia Script write the WU policies through it (LGPO), so
// deleting the registry values alone does not last.
const (
	registryPolPath = "Windows/System32/GroupPolicy/Machine/Registry.pol"
	gptIniPath      = "Windows/System32/GroupPolicy/gpt.ini"
	// policyWUKey is the policy key of wu-policies as Registry.pol names
	// it (below HKLM).
	policyWUKey = `Software\` + wuPolicyKey
)

// wuPolicyDrops reports, for the entries of a Registry.pol, which of them
// the wu-policies rules remove (by index), and why; wsus lists the real
// WSUS entries (kept: removing them needs the wsus opt-in, which applies to
// the registry values only).
func wuPolicyDrops(entries []preg.Entry) (drop map[int]string, wsus []int) {
	drop = map[int]string{}
	realServer := false
	sub := func(e preg.Entry) (string, bool) {
		k := strings.TrimPrefix(strings.TrimSpace(e.Key), `HKEY_LOCAL_MACHINE\`)
		switch {
		case strings.EqualFold(k, policyWUKey):
			return "", true
		case strings.EqualFold(k, policyWUKey+`\AU`):
			return "AU", true
		}
		return "", false
	}
	for i, e := range entries {
		s, ok := sub(e)
		if !ok || e.IsInstruction() {
			continue
		}
		if s == "" && isWUServerValue(e.Value) {
			text, _ := e.Text()
			if IsLoopbackOrAny(text) {
				drop[i] = fmt.Sprintf("%s %q points nowhere", e.Value, text)
			} else {
				wsus = append(wsus, i)
				realServer = realServer || strings.EqualFold(e.Value, "WUServer")
			}
			continue
		}
		if sw, ok := wuBlockSwitchFor(s, e.Value); ok {
			if n, ok := e.DWORD(); ok && n == 1 {
				drop[i] = fmt.Sprintf("%s=1 %s", e.Value, sw.why)
			}
		}
	}
	for i, e := range entries {
		if s, ok := sub(e); ok && s == "AU" && !e.IsInstruction() && strings.EqualFold(e.Value, "UseWUServer") {
			if n, ok := e.DWORD(); ok && n == 1 && !realServer {
				drop[i] = "UseWUServer=1 sends Windows Update to a server that does not exist"
			}
		}
	}
	return drop, wsus
}

// filterRegistryPol removes exactly the entries wuPolicyDrops selects,
// keeping the header and every other entry byte for byte.
func filterRegistryPol(old []byte) ([]byte, []LineEdit, error) {
	f, err := preg.Parse(old)
	if err != nil {
		return nil, nil, err
	}
	drop, _ := wuPolicyDrops(f.Entries)
	if len(drop) == 0 {
		return nil, nil, nil
	}
	var edits []LineEdit
	out, _, err := preg.Filter(old, func(e preg.Entry) bool {
		for i, x := range f.Entries {
			if x.Offset == e.Offset {
				if _, ok := drop[i]; ok {
					edits = append(edits, LineEdit{Line: i + 1, Old: e.String(), New: "(entry removed)"})
					return true
				}
			}
		}
		return false
	})
	if err != nil {
		return nil, nil, err
	}
	return out, edits, nil
}

// reGptVersion finds the Version line of gpt.ini.
var reGptVersion = regexp.MustCompile(`(?im)^(\s*Version\s*=\s*)(\d+)`)

// bumpGptIni raises the machine part (low 16 bits) of gpt.ini's Version by
// one, as the Group Policy editor does when it changes machine settings,
// so the client sees that the object changed. Every other byte is kept.
func bumpGptIni(old []byte) ([]byte, []LineEdit, error) {
	if bytes.HasPrefix(old, []byte{0xFF, 0xFE}) || bytes.HasPrefix(old, []byte{0xFE, 0xFF}) {
		return nil, nil, fmt.Errorf("gpt.ini is UTF-16: not rewritten")
	}
	m := reGptVersion.FindSubmatchIndex(old)
	if m == nil {
		return nil, nil, nil // no Version line: nothing Windows compares
	}
	n, err := strconv.ParseUint(string(old[m[4]:m[5]]), 10, 32)
	if err != nil {
		return nil, nil, fmt.Errorf("gpt.ini Version %q: %v", old[m[4]:m[5]], err)
	}
	user, machine := n>>16, n&0xffff
	machine++
	if machine > 0xffff {
		machine = 1
	}
	nv := user<<16 | machine
	out := append(append(append([]byte{}, old[:m[4]]...), strconv.FormatUint(nv, 10)...), old[m[5]:]...)
	line := 1 + bytes.Count(old[:m[0]], []byte("\n"))
	return out, []LineEdit{{Line: line, Old: "Version=" + strconv.FormatUint(n, 10), New: "Version=" + strconv.FormatUint(nv, 10)}}, nil
}

// GroupPolicyFile is `group-policy-file`.
type GroupPolicyFile struct{}

// ID implements Check.
func (GroupPolicyFile) ID() string { return "group-policy-file" }

// Case implements Check.
func (GroupPolicyFile) Case() Case { return CaseInstall }

// Diagnose implements Check.
func (c GroupPolicyFile) Diagnose(in *Installation) Result {
	r := newResult(c)
	f, err := in.FS.Open(registryPolPath)
	if err != nil {
		if isNotExist(err) {
			r.Summary = "no local Group Policy registry file"
			return r
		}
		return failed(r, winPath(registryPolPath), err)
	}
	data, err := io.ReadAll(io.LimitReader(f, preg.MaxFileSize+1))
	f.Close()
	if err != nil {
		return failed(r, winPath(registryPolPath), err)
	}
	if len(data) > preg.MaxFileSize {
		return failed(r, winPath(registryPolPath), fmt.Errorf("more than %d bytes", preg.MaxFileSize))
	}
	pf, err := preg.Parse(data)
	if err != nil {
		// Group Policy cannot read it either (it logs event 1096 and
		// applies no local policy): nothing of it is re-applied, and a
		// file wuoffline cannot parse is never rewritten.
		r.Status = StatusInfo
		r.Summary = "local Group Policy file is damaged (not rewritten): " + err.Error()
		r.Evidence = append(r.Evidence, Evidence{Kind: "file", Path: winPath(registryPolPath), Size: int64(len(data)), Detail: err.Error()})
		return r
	}
	drop, wsus := wuPolicyDrops(pf.Entries)
	fi, _ := fs.Stat(in.FS, registryPolPath)
	for i, e := range pf.Entries {
		if why, ok := drop[i]; ok {
			r.Evidence = append(r.Evidence, Evidence{Kind: "note", Path: winPath(registryPolPath), Key: e.Key, Value: e.Value, Old: e.String(),
				Detail: "Group Policy writes this back at every boot: " + why})
		}
	}
	for _, i := range wsus {
		e := pf.Entries[i]
		r.Evidence = append(r.Evidence, Evidence{Kind: "note", Path: winPath(registryPolPath), Key: e.Key, Value: e.Value, Old: e.String(),
			Detail: "a WSUS server set by local Group Policy (kept: a managed network's choice)"})
	}
	if len(drop) == 0 {
		if len(wsus) > 0 {
			r.Status = StatusInfo
			r.Summary = "local Group Policy sets a WSUS server (kept)"
		} else {
			r.Summary = fmt.Sprintf("local Group Policy (%d entries) does not block Windows Update", len(pf.Entries))
		}
		return r
	}
	ev := fileEvidence("file", registryPolPath, fi, fmt.Sprintf("%d of its %d entries block Windows Update", len(drop), len(pf.Entries)))
	r.Evidence = append([]Evidence{ev.act("rewrite", "")}, r.Evidence...)
	if gfi, err := fs.Stat(in.FS, gptIniPath); err == nil {
		r.Evidence = append(r.Evidence, fileEvidence("file", gptIniPath, gfi, "its Version is raised so the Group Policy client sees the change").act("rewrite", ""))
	}
	r.Status = StatusProblem
	r.Summary = fmt.Sprintf("local Group Policy (Registry.pol) re-applies %d Windows Update blocking polic%s at every boot", len(drop), map[bool]string{true: "y", false: "ies"}[len(drop) == 1])
	r.Fix = "remove exactly those entries from Registry.pol (every other entry kept byte for byte) and raise gpt.ini's machine version"
	return r
}
