package offline

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/wuoffline/wuoffline/hive"
	"github.com/wuoffline/wuoffline/secdesc"
)

// ---------------------------------------------------------------- update-pause

// Pause settings (Aetherinox/pause-windows-updates): the Settings app keeps
// ISO dates in SOFTWARE\Microsoft\WindowsUpdate\UX\Settings, the update
// orchestrator its state in ...\UpdatePolicy\Settings, and the "pause"
// policies live beside the other WU policies. Windows lets a user pause for
// at most 35 days (FlightSettingsMaxPauseDays raises that limit).
const (
	uxSettingsKey     = `Microsoft\WindowsUpdate\UX\Settings`
	updatePolicyKey   = `Microsoft\WindowsUpdate\UpdatePolicy\Settings`
	maxUserPauseDays  = 35
	pauseSlack        = 24 * time.Hour // clock skew between the rescue machine and the disk
	farPauseThreshold = maxUserPauseDays*24*time.Hour + pauseSlack
)

// pauseValue is one pause setting: where, and whether it holds a date.
type pauseValue struct {
	key, name string
	date      bool
}

var pauseValues = []pauseValue{
	{uxSettingsKey, "PauseUpdatesExpiryTime", true},
	{uxSettingsKey, "PauseFeatureUpdatesEndTime", true},
	{uxSettingsKey, "PauseQualityUpdatesEndTime", true},
	{uxSettingsKey, "PauseUpdatesStartTime", true},
	{uxSettingsKey, "PauseFeatureUpdatesStartTime", true},
	{uxSettingsKey, "PauseQualityUpdatesStartTime", true},
	{uxSettingsKey, "FlightSettingsMaxPauseDays", false},
	{updatePolicyKey, "PausedQualityStatus", false},
	{updatePolicyKey, "PausedFeatureStatus", false},
	{updatePolicyKey, "PausedQualityDate", true},
	{updatePolicyKey, "PausedFeatureDate", true},
	{wuPolicyKey, "PauseQualityUpdatesStartTime", true},
	{wuPolicyKey, "PauseFeatureUpdatesStartTime", true},
	{wuPolicyKey, "PauseQualityUpdates", false},
	{wuPolicyKey, "PauseFeatureUpdates", false},
}

// parsePauseTime reads the dates the Settings app and the tools write
// ("2051-12-31T23:59:59Z", with or without zone or seconds).
func parsePauseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04:05Z", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// UpdatePause is `update-pause`.
type UpdatePause struct{}

// ID implements Check.
func (UpdatePause) ID() string { return "update-pause" }

// Case implements Check.
func (UpdatePause) Case() Case { return CaseInstall }

// Diagnose implements Check: a pause that ends more than 35 days after the
// rescue machine's clock, or a raised pause limit, is a blocker; then every
// pause value is deleted (they belong together). A shorter pause is the
// user's choice: reported only.
func (c UpdatePause) Diagnose(in *Installation) Result {
	r := newResult(c)
	sw, err := in.needHive("SOFTWARE")
	if err != nil {
		return failed(r, "the SOFTWARE hive", err)
	}
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	blocker := ""
	for _, p := range pauseValues {
		k, err := openKey(sw, p.key)
		if err != nil {
			return failed(r, p.key, err)
		}
		if k == nil {
			continue
		}
		v, err := value(k, p.name)
		if err != nil {
			return failed(r, p.key+`\`+p.name, err)
		}
		if v == nil {
			continue
		}
		detail := p.name
		switch {
		case p.date:
			t, ok := parsePauseTime(valueText(v))
			if ok && strings.Contains(p.name, "End") || ok && strings.Contains(p.name, "Expiry") {
				detail = fmt.Sprintf("%s: updates paused until %s", p.name, t.Format("2006-01-02"))
				if t.Sub(now) > farPauseThreshold {
					blocker = detail
					detail += fmt.Sprintf(" (more than the %d days Windows allows)", maxUserPauseDays)
				}
			} else {
				detail = fmt.Sprintf("%s = %s", p.name, valueText(v))
			}
		case p.name == "FlightSettingsMaxPauseDays":
			if n, err := v.Uint32(); err == nil && n > maxUserPauseDays {
				detail = fmt.Sprintf("FlightSettingsMaxPauseDays = %d: pauses of up to %d days allowed", n, n)
				blocker = detail
			}
		default:
			detail = fmt.Sprintf("%s = %s", p.name, valueText(v))
		}
		r.Evidence = append(r.Evidence, valueEvidence("SOFTWARE", p.key, v, detail))
	}
	if len(r.Evidence) == 0 {
		r.Summary = "updates are not paused"
		return r
	}
	if blocker == "" {
		r.Status = StatusInfo
		r.Summary = fmt.Sprintf("updates are paused within the %d days Windows allows (the user's choice)", maxUserPauseDays)
		return r
	}
	for i := range r.Evidence {
		r.Evidence[i] = r.Evidence[i].act("delete-value", "")
	}
	r.Status = StatusProblem
	r.Summary = "updates are paused far beyond what Windows allows: " + blocker
	r.Fix = "delete the pause values (Windows then resumes updates; the user can pause again for up to 35 days)"
	return r
}

// ---------------------------------------------------------------- renamed-binaries

// updateBinaries are the files of Windows Update (System32-relative) that
// update blockers rename aside (tsgrgo/windows-update-disabler,
// privacy.sexy SoftDeleteFiles, Wu10Man).
var updateBinaries = []string{
	"wuaueng.dll", "wuauclt.exe", "wuapi.dll", "usosvc.dll", "UsoClient.exe",
	"MusNotification.exe", "MusNotifyIcon.exe", "WaaSMedicSvc.dll", "WaaSMedicAgent.exe",
	"WaaSMedicPS.dll", "WaaSAssessment.dll", "upfc.exe", `UUS\amd64\WaaSMedicSvcImpl.dll`,
}

// serviceDllServices are the update services whose Parameters\ServiceDll
// is checked.
var serviceDllServices = []string{"wuauserv", "UsoSvc", "WaaSMedicSvc", "BITS", "DoSvc", "CryptSvc"}

// renamedForms returns the names the tools give a renamed file NAME.EXT:
// NAME_BAK.EXT, NAME.EXT.OLD/.old/.bak/.BAK, NAME_old.EXT, Wu10Man_NAME.EXT.
func renamedForms(name string) []string {
	ext := path.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	return []string{
		stem + "_BAK" + ext, name + ".OLD", name + ".bak", stem + "_old" + ext,
		"Wu10Man_" + name,
	}
}

// originalName returns the name a renamed form stands for ("" when name is
// no renamed form).
func originalName(name string) string {
	l := strings.ToLower(name)
	switch {
	case strings.HasPrefix(l, "wu10man_"):
		return name[len("wu10man_"):]
	case strings.HasSuffix(l, ".old"), strings.HasSuffix(l, ".bak"):
		return name[:len(name)-4]
	}
	ext := path.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	for _, suf := range []string{"_bak", "_old"} {
		if strings.HasSuffix(strings.ToLower(stem), suf) {
			return stem[:len(stem)-len(suf)] + ext
		}
	}
	return ""
}

// volumePath turns a Windows path of this installation
// ("%SystemRoot%\System32\wuaueng.dll", "C:\Windows\...", "\SystemRoot\...")
// into a slash path of the volume; "" when it cannot.
func volumePath(p string) string {
	p = strings.Trim(strings.TrimSpace(p), `"`)
	l := strings.ToLower(p)
	for _, pre := range []string{"%systemroot%", "%windir%", `\systemroot`} {
		if strings.HasPrefix(l, pre) {
			p = "Windows" + p[len(pre):]
			return strings.Trim(strings.ReplaceAll(p, `\`, "/"), "/")
		}
	}
	if len(p) > 3 && p[1] == ':' && p[2] == '\\' {
		return strings.Trim(strings.ReplaceAll(p[3:], `\`, "/"), "/")
	}
	if strings.HasPrefix(l, `system32\`) {
		return "Windows/" + strings.ReplaceAll(p, `\`, "/")
	}
	return ""
}

// RenamedBinaries is `renamed-binaries`.
type RenamedBinaries struct{}

// ID implements Check.
func (RenamedBinaries) ID() string { return "renamed-binaries" }

// Case implements Check.
func (RenamedBinaries) Case() Case { return CaseInstall }

// Diagnose implements Check: an update binary that is missing while a
// renamed form of it exists is renamed back; a ServiceDll value that names
// a renamed form is set back to the original name.
func (c RenamedBinaries) Diagnose(in *Installation) Result {
	r := newResult(c)
	exists := func(p string) (bool, error) {
		_, err := fs.Stat(in.FS, p)
		if err == nil {
			return true, nil
		}
		if isNotExist(err) {
			return false, nil
		}
		return false, err
	}
	var names []string
	planned := map[string]bool{}
	for _, rel := range updateBinaries {
		p := "Windows/System32/" + strings.ReplaceAll(rel, `\`, "/")
		ok, err := exists(p)
		if err != nil {
			return failed(r, winPath(p), err)
		}
		if ok {
			continue
		}
		dir, name := path.Split(p)
		for _, alt := range renamedForms(name) {
			ok, err := exists(dir + alt)
			if err != nil {
				return failed(r, winPath(dir+alt), err)
			}
			if !ok {
				continue
			}
			fi, _ := fs.Stat(in.FS, dir+alt)
			ev := fileEvidence("file", dir+alt, fi, fmt.Sprintf("%s is missing and renamed aside as %s: Windows Update cannot load it", name, alt))
			r.Evidence = append(r.Evidence, ev.renameTo(name, ""))
			names = append(names, name)
			planned[strings.ToLower(p)] = true
			break
		}
	}
	sys, err := in.needHive("SYSTEM")
	if err != nil {
		return failed(r, "the SYSTEM hive", err)
	}
	for _, svc := range serviceDllServices {
		key := in.ccsKey(`Services\` + svc + `\Parameters`)
		k, err := openKey(sys, key)
		if err != nil {
			return failed(r, key, err)
		}
		if k == nil {
			continue
		}
		v, err := value(k, "ServiceDll")
		if err != nil {
			return failed(r, key+`\ServiceDll`, err)
		}
		if v == nil || (v.Type() != hive.RegSZ && v.Type() != hive.RegExpandSZ) {
			continue
		}
		s, err := v.Text()
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(s, '\\')
		orig := originalName(s[i+1:])
		if orig == "" {
			p := volumePath(s)
			if p == "" {
				continue
			}
			ok, err := exists(p)
			if err != nil {
				return failed(r, winPath(p), err)
			}
			if !ok && !planned[strings.ToLower(p)] {
				r.Evidence = append(r.Evidence, valueEvidence("SYSTEM", key, v,
					fmt.Sprintf("service %s: its ServiceDll %s is missing and no renamed copy was found (repair with DISM /RestoreHealth from WinPE)", svc, s)))
			}
			continue
		}
		ev := valueEvidence("SYSTEM", key, v, fmt.Sprintf("service %s loads %s, a renamed-aside name; the original is %s", svc, s[i+1:], orig))
		ev.New = s[:i+1] + orig
		r.Evidence = append(r.Evidence, ev.act("set", ""))
		names = append(names, svc+" ServiceDll")
	}
	switch {
	case len(names) > 0:
		r.Status = StatusProblem
		r.Summary = "update binaries renamed aside: " + strings.Join(names, ", ")
		r.Fix = "rename each file back to its original name; set ServiceDll back to the original file name"
	case len(r.Evidence) > 0:
		r.Status = StatusInfo
		r.Summary = "an update service's DLL is missing (wuoffline cannot restore system files)"
	default:
		r.Summary = "update binaries are in place"
	}
	return r
}

// ---------------------------------------------------------------- update-tasks

// updateTaskDirs hold the scheduled tasks of Windows Update (task XML
// files, UTF-16); blockers disable them (<Enabled>false</Enabled>) or
// rename them *.bak (Aetherinox/pause-windows-updates).
var updateTaskDirs = []string{
	"Windows/System32/Tasks/Microsoft/Windows/UpdateOrchestrator",
	"Windows/System32/Tasks/Microsoft/Windows/WindowsUpdate",
	"Windows/System32/Tasks/Microsoft/Windows/WaaSMedic",
	"Windows/System32/Tasks/Microsoft/Windows/InstallService",
}

// maxTaskFiles bounds the task files read per directory.
const maxTaskFiles = 256

// UpdateTasks is `update-tasks`.
type UpdateTasks struct{}

// ID implements Check.
func (UpdateTasks) ID() string { return "update-tasks" }

// Case implements Check.
func (UpdateTasks) Case() Case { return CaseInstall }

// Diagnose implements Check: a renamed task file (NAME.bak, with no NAME)
// is renamed back; a disabled task is reported (its state also lives in
// the TaskCache, which only Task Scheduler keeps consistent).
func (c UpdateTasks) Diagnose(in *Installation) Result {
	r := newResult(c)
	renamed, disabled := 0, 0
	for _, dir := range updateTaskDirs {
		ents, err := fs.ReadDir(in.FS, dir)
		if err != nil {
			if isNotExist(err) {
				continue
			}
			return failed(r, winPath(dir), err)
		}
		if len(ents) > maxTaskFiles {
			ents = ents[:maxTaskFiles]
		}
		have := map[string]bool{}
		for _, e := range ents {
			have[strings.ToLower(e.Name())] = true
		}
		for _, e := range ents {
			if e.IsDir() {
				continue
			}
			p := dir + "/" + e.Name()
			fi, _ := e.Info()
			if orig := originalName(e.Name()); orig != "" && strings.HasSuffix(strings.ToLower(e.Name()), ".bak") {
				if have[strings.ToLower(orig)] {
					continue
				}
				ev := fileEvidence("file", p, fi, fmt.Sprintf("update task %s renamed aside: Task Scheduler no longer finds it", orig))
				r.Evidence = append(r.Evidence, ev.renameTo(orig, ""))
				renamed++
				continue
			}
			head, err := readHead(in.FS, p, 64<<10)
			if err != nil {
				continue
			}
			if strings.Contains(strings.ToLower(decodeText(head)), "<enabled>false</enabled>") {
				r.Evidence = append(r.Evidence, fileEvidence("file", p, fi,
					fmt.Sprintf("update task %s is disabled (enable it in Task Scheduler once Windows runs: schtasks /Change /TN \"%s\" /ENABLE)", e.Name(), strings.ReplaceAll(strings.TrimPrefix(p, "Windows/System32/Tasks"), "/", `\`))))
				disabled++
			}
		}
	}
	switch {
	case renamed > 0:
		r.Status = StatusProblem
		r.Summary = fmt.Sprintf("%d update task file(s) renamed aside", renamed)
		if disabled > 0 {
			r.Summary += fmt.Sprintf("; %d disabled", disabled)
		}
		r.Fix = "rename the task files back (disabled tasks are reported only)"
	case disabled > 0:
		r.Status = StatusInfo
		r.Summary = fmt.Sprintf("%d update task(s) disabled (reported: re-enable them with schtasks once Windows runs)", disabled)
	default:
		r.Summary = "update tasks are in place"
	}
	return r
}

// ---------------------------------------------------------------- service-config

// serviceAccounts are the accounts the update services run as on a
// Windows that no tool touched (their ObjectName).
var serviceAccounts = map[string]string{
	"wuauserv": "LocalSystem", "BITS": "LocalSystem", "CryptSvc": `NT Authority\NetworkService`,
	"msiserver": "LocalSystem", "EventLog": `NT AUTHORITY\LocalService`, "TrustedInstaller": "LocalSystem",
	"UsoSvc": "LocalSystem", "WaaSMedicSvc": "LocalSystem", "DoSvc": `NT Authority\NetworkService`,
}

// extraUpdateServices are update services beyond the catalogue's table
// whose disabling blockers also do (Wu10Man; winutil): no default Start is
// documented, so they are reported only.
var extraUpdateServices = []string{"uhssvc", "sedsvc"}

// failureActionsRemoved reports a SERVICE_FAILURE_ACTIONS value (u32 reset
// period, u32 reboot message, u32 command, u32 action count, u32 actions
// pointer, then count × {u32 type, u32 delay}) whose actions are all
// SC_ACTION_NONE (0): the service is never restarted after a failure.
func failureActionsRemoved(b []byte) bool {
	if len(b) < 20 {
		return false
	}
	n := int(binary.LittleEndian.Uint32(b[12:]))
	if n == 0 || n > (len(b)-20)/8 {
		return n == 0
	}
	for i := 0; i < n; i++ {
		if binary.LittleEndian.Uint32(b[20+8*i:]) != 0 {
			return false
		}
	}
	return true
}

// Service access rights (winsvc.h; [MS-SCMR] 3.1.4) the service control
// manager checks against a service's security descriptor.
const (
	serviceQueryConfig = 0x0001 // SERVICE_QUERY_CONFIG (SDDL CC)
	serviceQueryStatus = 0x0004 // SERVICE_QUERY_STATUS (LC)
	serviceStart       = 0x0010 // SERVICE_START (RP)
	serviceStop        = 0x0020 // SERVICE_STOP (WP)
	serviceNeeded      = serviceQueryConfig | serviceQueryStatus | serviceStart | serviceStop
)

// serviceMapping is the generic mapping of service objects (winsvc.h):
// GENERIC_READ = READ_CONTROL | QUERY_CONFIG | QUERY_STATUS | INTERROGATE |
// ENUMERATE_DEPENDENTS; GENERIC_WRITE = READ_CONTROL | CHANGE_CONFIG;
// GENERIC_EXECUTE = READ_CONTROL | START | STOP | PAUSE_CONTINUE |
// USER_DEFINED_CONTROL; GENERIC_ALL = SERVICE_ALL_ACCESS.
var serviceMapping = secdesc.GenericMapping{Read: 0x2008d, Write: 0x20002, Execute: 0x20170, All: 0xf01ff}

// documentedUpdateDACL is the DACL Microsoft's "Reset Windows Update
// components manually" sets with `sc.exe sdset bits ...` and `sc.exe sdset
// wuauserv ...` (the same string for both): the only service descriptors
// with a documented default, so the only ones fix restores.
const documentedUpdateDACL = "D:(A;;CCLCSWRPWPDTLOCRRC;;;SY)(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;BA)(A;;CCLCSWLOCRRC;;;AU)(A;;CCLCSWRPWPDTLOCRRC;;;PU)"

// documentedDACLServices are the services documentedUpdateDACL is for.
var documentedDACLServices = []string{"wuauserv", "BITS"}

// documentedDACL returns documentedUpdateDACL as an ACL (revision 2,
// ACL_REVISION, as Windows writes a DACL of plain ACEs).
func documentedDACL() *secdesc.ACL {
	ace := func(mask uint32, alias string) secdesc.ACE {
		sid, _ := secdesc.WellKnown(alias)
		return secdesc.ACE{Type: secdesc.TypeAccessAllowed, Mask: mask, SID: sid}
	}
	return &secdesc.ACL{Revision: 2, ACEs: []secdesc.ACE{
		ace(0x201fd, "SY"), // CCLCSWRPWPDTLOCRRC
		ace(0xf01ff, "BA"), // CCDCLCSWRPWPDTLOCRSDRCWDWO
		ace(0x2018d, "AU"), // CCLCSWLOCRRC
		ace(0x201fd, "PU"), // CCLCSWRPWPDTLOCRRC
	}}
}

// serviceTokens are the callers whose rights matter: the service control
// manager's clients running as SYSTEM (other update services, the
// orchestrator) and an elevated administrator. Each token also holds the
// groups every such logon carries (Everyone, Authenticated Users; SYSTEM
// is in Administrators), so a deny ACE for any of them counts.
func serviceTokens() []struct {
	name  string
	token []secdesc.SID
} {
	sid := func(a string) secdesc.SID { s, _ := secdesc.WellKnown(a); return s }
	return []struct {
		name  string
		token []secdesc.SID
	}{
		{"SYSTEM", []secdesc.SID{sid("SY"), sid("BA"), sid("WD"), sid("AU")}},
		{"Administrators", []secdesc.SID{sid("BA"), sid("WD"), sid("AU")}},
	}
}

// serviceRightNames names the rights of serviceNeeded for people.
func serviceRightNames(mask uint32) string {
	var n []string
	for _, r := range []struct {
		bit  uint32
		name string
	}{{serviceStart, "start"}, {serviceStop, "stop"}, {serviceQueryConfig, "query config"}, {serviceQueryStatus, "query status"}} {
		if mask&r.bit != 0 {
			n = append(n, r.name)
		}
	}
	return strings.Join(n, ", ")
}

// serviceSecurityFinding judges a service's descriptor: "" when SYSTEM and
// Administrators may use the service as Windows needs; else what is wrong,
// with the offending ACEs in SDDL.
func serviceSecurityFinding(d *secdesc.Descriptor) string {
	var why []string
	starts := false
	for _, tk := range serviceTokens() {
		granted, denied := d.Access(tk.token, serviceMapping)
		starts = starts || granted&serviceStart != 0
		if denied&serviceNeeded == 0 {
			continue
		}
		var aces []string
		for _, e := range d.DACL.Denying(tk.token, serviceMapping, denied&serviceNeeded) {
			aces = append(aces, e.SDDL())
		}
		why = append(why, fmt.Sprintf("denies %s %s %s", tk.name, serviceRightNames(denied&serviceNeeded), strings.Join(aces, "")))
	}
	if !starts {
		dacl := "(an empty DACL)"
		if d.DACL != nil && len(d.DACL.ACEs) > 0 {
			dacl = "D:" + d.DACL.SDDL()
		}
		why = append(why, "grants neither SYSTEM nor Administrators the right to start it "+dacl)
	}
	return strings.Join(why, "; ")
}

// restoreServiceDACL returns the descriptor old with its DACL replaced by
// the documented one named by want (which must be documentedUpdateDACL),
// as `sc.exe sdset` does: owner, group and SACL kept, the DACL's control
// flags (protected, auto-inherit) those of the new "D:" string (none). It
// also returns old in SDDL.
func restoreServiceDACL(old []byte, want string) ([]byte, string, error) {
	if want != documentedUpdateDACL {
		return nil, "", fmt.Errorf("no documented service descriptor %q", want)
	}
	d, err := secdesc.Read(bytes.NewReader(old), int64(len(old)))
	if err != nil {
		return nil, "", err
	}
	before := d.SDDL()
	d.DACL = documentedDACL()
	d.Control &^= secdesc.ControlDACLProtected | secdesc.ControlDACLAutoInherited | secdesc.ControlDACLAutoInheritReq | secdesc.ControlDACLDefaulted
	d.Control |= secdesc.ControlDACLPresent
	return d.Marshal(), before, nil
}

// serviceSecurity adds the evidence of one service's Security\Security
// value and reports whether it is a problem.
func serviceSecurity(r *Result, key, svc string, h *hive.Hive) (bool, error) {
	k, err := openKey(h, key+`\Security`)
	if err != nil || k == nil {
		return false, err
	}
	v, err := value(k, "Security")
	if err != nil || v == nil {
		return false, err
	}
	raw, err := v.Data()
	var d *secdesc.Descriptor
	if err == nil {
		if v.Type() != hive.RegBinary {
			err = fmt.Errorf("type %s, want REG_BINARY", v.Type())
		} else {
			d, err = secdesc.Read(bytes.NewReader(raw), int64(len(raw)))
		}
	}
	if err != nil {
		// Report when unsure: a descriptor that cannot be read is neither
		// judged nor replaced.
		r.Evidence = append(r.Evidence, valueEvidence("SYSTEM", key+`\Security`, v,
			fmt.Sprintf("service %s: its security descriptor cannot be read (%v); reported, not changed", svc, err)))
		return false, nil
	}
	why := serviceSecurityFinding(d)
	if why == "" {
		return false, nil
	}
	ev := valueEvidence("SYSTEM", key+`\Security`, v, fmt.Sprintf("service %s: its security descriptor %s", svc, why))
	// The readable form of a descriptor is its SDDL (Raw keeps the bytes).
	ev.Old = d.SDDL()
	for _, s := range documentedDACLServices {
		if strings.EqualFold(s, svc) {
			ev.New = documentedUpdateDACL
			ev = ev.act("set", "")
		}
	}
	if ev.Op == "" {
		ev.Detail += "; no documented default to restore offline: reset it with `sc.exe sdset` once Windows runs"
	}
	r.Evidence = append(r.Evidence, ev)
	return true, nil
}

// ServiceConfig is `service-config`: what blockers change beyond Start.
// A security descriptor that locks SYSTEM or Administrators out of an
// update service is a problem (fix restores Microsoft's documented DACL
// for wuauserv and BITS); accounts, failure actions and extra services
// are reported only (no documented offline default to restore with
// certainty).
type ServiceConfig struct{}

// ID implements Check.
func (ServiceConfig) ID() string { return "service-config" }

// Case implements Check.
func (ServiceConfig) Case() Case { return CaseInstall }

// Diagnose implements Check.
func (c ServiceConfig) Diagnose(in *Installation) Result {
	r := newResult(c)
	h, err := in.needHive("SYSTEM")
	if err != nil {
		return failed(r, "the SYSTEM hive", err)
	}
	for _, svc := range extraUpdateServices {
		key := in.ccsKey(`Services\` + svc)
		n, v, err := dwordValue(h, key, "Start")
		if err != nil {
			return failed(r, key, err)
		}
		if v != nil && n == 4 {
			r.Evidence = append(r.Evidence, valueEvidence("SYSTEM", key, v, fmt.Sprintf("update service %s is disabled (no documented default to restore: re-enable it once Windows runs)", svc)))
		}
	}
	var locked []string
	for _, d := range serviceDefaults {
		key := in.ccsKey(`Services\` + d.name)
		k, err := openKey(h, key)
		if err != nil {
			return failed(r, key, err)
		}
		if k == nil {
			continue
		}
		if v, err := value(k, "ObjectName"); err == nil && v != nil {
			if s, err := v.Text(); err == nil && !strings.EqualFold(strings.TrimPrefix(s, `.\`), serviceAccounts[d.name]) {
				r.Evidence = append(r.Evidence, valueEvidence("SYSTEM", key, v, fmt.Sprintf("service %s runs as %q, not %s", d.name, s, serviceAccounts[d.name])))
			}
		}
		if v, err := value(k, "FailureActions"); err == nil && v != nil {
			if b, err := v.Data(); err == nil && failureActionsRemoved(b) {
				r.Evidence = append(r.Evidence, valueEvidence("SYSTEM", key, v, fmt.Sprintf("service %s has no failure actions (never restarted after a crash)", d.name)))
			}
		}
		bad, err := serviceSecurity(&r, key, d.name, h)
		if err != nil {
			return failed(r, key+`\Security`, err)
		}
		if bad {
			locked = append(locked, d.name)
		}
	}
	switch {
	case len(locked) > 0:
		r.Status = StatusProblem
		r.Summary = "update services locked by their security descriptor: " + strings.Join(locked, ", ")
		r.Fix = "set the DACL of wuauserv and BITS back to Microsoft's documented one (" + documentedUpdateDACL + "), owner, group and SACL kept; other services and settings are reported only"
	case len(r.Evidence) == 0:
		r.Summary = "update service accounts, failure actions and security as Windows sets them"
	default:
		r.Status = StatusInfo
		r.Summary = fmt.Sprintf("%d update service setting(s) changed from Windows' defaults (reported only)", len(r.Evidence))
		r.Fix = "none offline: reset them with Microsoft's \"reset Windows Update components\" procedure once Windows runs"
	}
	return r
}
