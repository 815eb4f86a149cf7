package offline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/wuoffline/wuoffline/hive"
	"github.com/wuoffline/wuoffline/internal/filetime"
)

// needHive returns the hive or an error saying why it is missing.
func (in *Installation) needHive(name string) (*hive.Hive, error) {
	var h *hive.Hive
	switch name {
	case "SYSTEM":
		h = in.System
	case "SOFTWARE":
		h = in.Software
	case "COMPONENTS":
		h = in.Components
	}
	if h != nil {
		return h, nil
	}
	for _, st := range in.Hives {
		if st.Name == name && st.Error != "" {
			return nil, errors.New(st.Error)
		}
	}
	return nil, fmt.Errorf("the %s hive is absent", name)
}

// ---------------------------------------------------------------- services

// serviceDefault is one row of the default Start table (repair-catalog.md).
// Start per family: 2 automatic, 3 manual; 0 = the service does not exist
// in that version. Delayed marks "2 (delayed)" (DelayedAutostart=1).
type serviceDefault struct {
	name    string
	start   map[string]uint32
	delayed map[string]bool
}

var serviceDefaults = []serviceDefault{
	{"wuauserv", map[string]uint32{"7": 2, "8.1": 3, "10": 3, "11": 3}, nil},
	{"BITS", map[string]uint32{"7": 2, "8.1": 2, "10": 2, "11": 3}, map[string]bool{"7": true, "10": true}},
	{"CryptSvc", map[string]uint32{"7": 2, "8.1": 2, "10": 2, "11": 2}, nil},
	{"msiserver", map[string]uint32{"7": 3, "8.1": 3, "10": 3, "11": 3}, nil},
	{"EventLog", map[string]uint32{"7": 2, "8.1": 2, "10": 2, "11": 2}, nil},
	{"TrustedInstaller", map[string]uint32{"7": 3, "8.1": 3, "10": 3, "11": 3}, nil},
	{"UsoSvc", map[string]uint32{"10": 3, "11": 2}, map[string]bool{"11": true}},
	{"WaaSMedicSvc", map[string]uint32{"10": 3, "11": 3}, nil},
	{"DoSvc", map[string]uint32{"10": 2, "11": 3}, map[string]bool{"10": true}},
}

// DefaultStart returns the default Start of a service on a version family
// ("7", "8.1", "10", "11"; unknown families use "10"), whether it is
// delayed, and whether the service exists there.
func DefaultStart(service, family string) (start uint32, delayed, exists bool) {
	if family == "" {
		family = "10"
	}
	for _, d := range serviceDefaults {
		if strings.EqualFold(d.name, service) {
			s := d.start[family]
			return s, d.delayed[family], s != 0
		}
	}
	return 0, false, false
}

func startName(s uint32, delayed bool) string {
	switch s {
	case 0:
		return "0 (boot)"
	case 1:
		return "1 (system)"
	case 2:
		if delayed {
			return "2 (automatic, delayed)"
		}
		return "2 (automatic)"
	case 3:
		return "3 (manual)"
	case 4:
		return "4 (disabled)"
	}
	return fmt.Sprintf("%d (invalid)", s)
}

// Services is `services`: the update services must not be disabled.
type Services struct{}

// ID implements Check.
func (Services) ID() string { return "services" }

// Case implements Check.
func (Services) Case() Case { return CaseInstall }

// Diagnose implements Check.
func (c Services) Diagnose(in *Installation) Result {
	r := newResult(c)
	h, err := in.needHive("SYSTEM")
	if err != nil {
		return failed(r, "the SYSTEM hive", err)
	}
	var disabled, changed, missing []string
	for _, d := range serviceDefaults {
		def, delayed, exists := DefaultStart(d.name, in.Version.Family)
		if !exists {
			continue
		}
		keyPath := in.ccsKey(`Services\` + d.name)
		k, err := openKey(h, keyPath)
		if err != nil {
			return failed(r, keyPath, err)
		}
		if k == nil {
			missing = append(missing, d.name)
			r.Evidence = append(r.Evidence, Evidence{Kind: "key", Hive: "SYSTEM", Key: keyPath,
				Detail: fmt.Sprintf("service %s is missing (reported, not invented: repair the image with DISM /RestoreHealth or sfc)", d.name)})
			continue
		}
		if ip, err := value(k, "ImagePath"); err == nil && ip == nil {
			missing = append(missing, d.name)
			r.Evidence = append(r.Evidence, Evidence{Kind: "value", Hive: "SYSTEM", Key: keyPath, Value: "ImagePath",
				Detail: fmt.Sprintf("service %s has no ImagePath (it cannot start; reported, not invented)", d.name)})
		}
		v, err := value(k, "Start")
		if err != nil {
			return failed(r, keyPath+`\Start`, err)
		}
		if v == nil {
			continue
		}
		n, err := v.Uint32()
		if err != nil {
			ev := valueEvidence("SYSTEM", keyPath, v, fmt.Sprintf("service %s: Start is not a DWORD: %v", d.name, err))
			r.Evidence = append(r.Evidence, ev)
			continue
		}
		why := ""
		switch {
		case n == 4:
			disabled = append(disabled, d.name)
			why = fmt.Sprintf("service %s is disabled", d.name)
		case n == def:
		case n < 2 || n > 4:
			// 0 (boot) and 1 (system) are for drivers the loaders start;
			// a service process with them, or with a number no start
			// type has, is not started as Windows ships it.
			changed = append(changed, fmt.Sprintf("%s (Start=%d)", d.name, n))
			why = fmt.Sprintf("service %s has Start=%s, not a start type of a service process", d.name, startName(n, false))
		case strings.EqualFold(d.name, "TrustedInstaller") && n == 2:
			// Manual (3) in every version; automatic makes servicing run
			// at every boot (WindowsDowndate sets it so that a staged
			// servicing run replays).
			changed = append(changed, "TrustedInstaller (Start=2)")
			why = "service TrustedInstaller starts automatically (Start=2), so servicing runs at every boot (what WindowsDowndate sets)"
		}
		if why != "" {
			ev := valueEvidence("SYSTEM", keyPath, v, fmt.Sprintf("%s; default on Windows %s is %s", why, familyOr10(in.Version.Family), startName(def, delayed)))
			ev.New = fmt.Sprint(def)
			r.Evidence = append(r.Evidence, ev.act("set", ""))
		}
	}
	switch {
	case len(disabled) > 0 || len(changed) > 0:
		r.Status = StatusProblem
		var parts []string
		if len(disabled) > 0 {
			parts = append(parts, "disabled update services: "+strings.Join(disabled, ", "))
		}
		if len(changed) > 0 {
			parts = append(parts, "start type changed: "+strings.Join(changed, ", "))
		}
		if len(missing) > 0 {
			parts = append(parts, "missing: "+strings.Join(missing, ", "))
		}
		r.Summary = strings.Join(parts, "; ")
		r.Fix = fmt.Sprintf("set Start back to the Windows %s default (changed: Start=4, TrustedInstaller's Start=2, values that are no start type of a service; sources disagree between versions on the other values, which are left)", familyOr10(in.Version.Family))
	case len(missing) > 0:
		// Only missing services: a fault, but not one fix repairs (the
		// catalogue: "a missing service is reported, not invented"). It is
		// info, not problem, so that exit 1 keeps meaning "fix would repair
		// something" and a fixed disk diagnoses healthy; the summary and the
		// evidence still say what is missing and how to restore it.
		r.Status = StatusInfo
		r.Summary = "missing update services: " + strings.Join(missing, ", ") + " (wuoffline cannot recreate them; see the fix line)"
		r.Fix = "none offline: a missing service is reported, not invented; run `dism /Image:" + in.Letter + `\ /Cleanup-Image /RestoreHealth` + "` from WinPE"
	default:
		r.Summary = "update services are present and not disabled"
	}
	return r
}

func familyOr10(f string) string {
	if f == "" {
		return "10"
	}
	return f
}

// ---------------------------------------------------------------- wu-policies

const wuPolicyKey = `Policies\Microsoft\Windows\WindowsUpdate`

// wuServerValues are the server settings of the WU policy key.
var wuServerValues = []string{"WUServer", "WUStatusServer", "UpdateServiceUrlAlternate"}

func isWUServerValue(name string) bool {
	for _, n := range wuServerValues {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// wuSwitch is a policy switch that blocks updates when it is 1; sub is ""
// for the WU policy key itself, "AU" for its AU subkey.
type wuSwitch struct{ sub, name, why string }

// wuBlockSwitches are the switches of wu-policies (the registry values and
// the Registry.pol entries follow the same rule).
var wuBlockSwitches = []wuSwitch{
	{"", "DisableWindowsUpdateAccess", "turns off access to all Windows Update features"},
	{"", "DoNotConnectToWindowsUpdateInternetLocations", "blocks the Windows Update internet locations"},
	{"", "SetDisableUXWUAccess", "removes access to Windows Update in Settings"},
	{"AU", "NoAutoUpdate", "turns automatic updates off"},
}

// wuBlockSwitchFor returns the switch named name under sub.
func wuBlockSwitchFor(sub, name string) (wuSwitch, bool) {
	for _, s := range wuBlockSwitches {
		if strings.EqualFold(s.sub, sub) && strings.EqualFold(s.name, name) {
			return s, true
		}
	}
	return wuSwitch{}, false
}

// WUPolicies is `wu-policies`: Windows Update group policy values that
// point at no server or switch updates off.
type WUPolicies struct{}

// ID implements Check.
func (WUPolicies) ID() string { return "wu-policies" }

// Case implements Check.
func (WUPolicies) Case() Case { return CaseInstall }

// Diagnose implements Check.
func (c WUPolicies) Diagnose(in *Installation) Result {
	r := newResult(c)
	h, err := in.needHive("SOFTWARE")
	if err != nil {
		return failed(r, "the SOFTWARE hive", err)
	}
	k, err := openKey(h, wuPolicyKey)
	if err != nil {
		return failed(r, wuPolicyKey, err)
	}
	if k == nil {
		r.Summary = "no Windows Update policies"
		return r
	}
	bogus, wsus := 0, 0
	// UseWUServer=1 sends the machine to WUServer: it is bogus exactly
	// when WUServer is absent or points nowhere.
	wuServerReal := false
	for _, name := range wuServerValues {
		v, err := value(k, name)
		if err != nil {
			return failed(r, wuPolicyKey+`\`+name, err)
		}
		if v == nil {
			continue
		}
		s := valueText(v)
		if IsLoopbackOrAny(s) {
			bogus++
			r.Evidence = append(r.Evidence, valueEvidence("SOFTWARE", wuPolicyKey, v, fmt.Sprintf("%s %q points nowhere (blank, loopback or 0.0.0.0)", name, s)).act("delete-value", ""))
		} else {
			wsus++
			wuServerReal = wuServerReal || name == "WUServer"
			r.Evidence = append(r.Evidence, valueEvidence("SOFTWARE", wuPolicyKey, v, fmt.Sprintf("%s is a WSUS server %q (legitimate in a managed network; removed only with opt-in `wsus`)", name, s)).act("delete-value", "wsus"))
		}
	}
	for _, b := range wuBlockSwitches {
		key := wuPolicyKey
		if b.sub != "" {
			key += `\` + b.sub
		}
		n, v, err := dwordValue(h, key, b.name)
		if err != nil {
			return failed(r, key+`\`+b.name, err)
		}
		if v != nil && n == 1 {
			bogus++
			r.Evidence = append(r.Evidence, valueEvidence("SOFTWARE", key, v, fmt.Sprintf("%s=1 %s", b.name, b.why)).act("delete-value", ""))
		}
	}
	n, v, err := dwordValue(h, wuPolicyKey+`\AU`, "UseWUServer")
	if err != nil {
		return failed(r, wuPolicyKey+`\AU\UseWUServer`, err)
	}
	if v != nil && n == 1 {
		switch {
		case !wuServerReal:
			bogus++
			r.Evidence = append(r.Evidence, valueEvidence("SOFTWARE", wuPolicyKey+`\AU`, v, "UseWUServer=1 sends Windows Update to a server that does not exist").act("delete-value", ""))
		default:
			wsus++
			r.Evidence = append(r.Evidence, valueEvidence("SOFTWARE", wuPolicyKey+`\AU`, v, "UseWUServer=1 uses the WSUS server above (opt-in `wsus` removes it)").act("delete-value", "wsus"))
		}
	}
	switch {
	case bogus > 0:
		r.Status = StatusProblem
		r.Summary = fmt.Sprintf("%d Windows Update policy value(s) block updates", bogus)
		r.Fix = "delete those policy values"
		if wsus > 0 {
			r.Fix += "; the WSUS settings stay unless you opt in to `wsus`"
		}
	case wsus > 0:
		r.Status = StatusInfo
		r.OptIn = "wsus"
		r.Summary = "updates come from a WSUS server (managed network?)"
		r.Fix = "opt-in `wsus`: delete the WSUS values so the machine uses Windows Update"
	default:
		r.Summary = "Windows Update policies do not block updates"
	}
	return r
}

// dwordValue reads a DWORD value; (0, nil, nil) when the key or value is absent.
func dwordValue(h *hive.Hive, key, name string) (uint32, *hive.Value, error) {
	k, err := openKey(h, key)
	if err != nil || k == nil {
		return 0, nil, err
	}
	v, err := value(k, name)
	if err != nil || v == nil {
		return 0, nil, err
	}
	n, err := v.Uint32()
	if err != nil {
		return 0, v, nil // not a DWORD: not the switch Windows reads
	}
	return n, v, nil
}

// ---------------------------------------------------------------- firewall

// FirewallRule is a decoded rule string of FirewallPolicy\FirewallRules:
// "v2.30|Action=Block|Active=TRUE|Dir=Out|Svc=wuauserv|Name=...|".
type FirewallRule struct {
	Version string
	Fields  map[string][]string // keys as written (Action, Active, Dir, App, Svc, Name, RA4, ...)
}

// ParseFirewallRule decodes a rule string. ok is false when it does not
// have the "vN.NN|key=value|..." form.
func ParseFirewallRule(s string) (FirewallRule, bool) {
	parts := strings.Split(s, "|")
	if len(parts) < 2 || !strings.HasPrefix(strings.ToLower(parts[0]), "v") {
		return FirewallRule{}, false
	}
	fr := FirewallRule{Version: parts[0], Fields: map[string][]string{}}
	for _, p := range parts[1:] {
		if p == "" {
			continue
		}
		i := strings.IndexByte(p, '=')
		if i <= 0 {
			continue
		}
		k := p[:i]
		fr.Fields[k] = append(fr.Fields[k], p[i+1:])
	}
	return fr, true
}

// Get returns the first value of a field (case-insensitive key).
func (fr FirewallRule) Get(key string) string {
	for k, v := range fr.Fields {
		if strings.EqualFold(k, key) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// updateServices are the services whose blocking stops updates.
var updateServices = []string{"wuauserv", "bits", "dosvc", "usosvc", "waasmedicsvc"}

// BlocksUpdates reports whether the rule blocks Windows Update: Action=Block
// and either Svc names an update service or its name says Windows Update.
func (fr FirewallRule) BlocksUpdates(valueName string) bool {
	if !strings.EqualFold(fr.Get("Action"), "Block") {
		return false
	}
	svc := strings.ToLower(fr.Get("Svc"))
	for _, s := range updateServices {
		if svc == s {
			return true
		}
	}
	for _, n := range []string{valueName, fr.Get("Name"), fr.Get("Desc")} {
		l := strings.ToLower(n)
		// WindowsSpyBlocker names its rules "windowsSpyBlocker-update-<ip>"
		// after the list they come from (data/firewall/update.txt): a
		// remote-address rule is an update blocker when its list says so.
		if strings.HasPrefix(l, "windowsspyblocker-update") {
			return true
		}
		l = strings.NewReplacer(" ", "", "_", "", "-", "").Replace(l)
		if strings.Contains(l, "windowsupdate") || strings.Contains(l, "wuauserv") {
			return true
		}
	}
	return false
}

// blocksAddressOnly reports a block rule that names no service or program
// and blocks remote addresses only (DWS writes "<ip>_Block"): without a
// name or list that says Windows Update it is reported, not removed.
func (fr FirewallRule) blocksAddressOnly() bool {
	return strings.EqualFold(fr.Get("Action"), "Block") && fr.Get("Svc") == "" && fr.Get("App") == "" &&
		(fr.Get("RA4") != "" || fr.Get("RA6") != "")
}

// Firewall is `firewall`: Windows Firewall rules that block Windows Update.
type Firewall struct{}

// ID implements Check.
func (Firewall) ID() string { return "firewall" }

// Case implements Check.
func (Firewall) Case() Case { return CaseInstall }

// Diagnose implements Check.
func (c Firewall) Diagnose(in *Installation) Result {
	r := newResult(c)
	h, err := in.needHive("SYSTEM")
	if err != nil {
		return failed(r, "the SYSTEM hive", err)
	}
	keyPath := in.ccsKey(`Services\SharedAccess\Parameters\FirewallPolicy\FirewallRules`)
	k, err := openKey(h, keyPath)
	if err != nil {
		return failed(r, keyPath, err)
	}
	if k == nil {
		r.Summary = "no firewall rules key"
		return r
	}
	vals, err := k.Values()
	if err != nil {
		return failed(r, keyPath, err)
	}
	active, inactive := 0, 0
	for _, v := range vals {
		if v.Type() != hive.RegSZ && v.Type() != hive.RegExpandSZ {
			continue
		}
		s, err := v.Text()
		if err != nil {
			continue
		}
		fr, ok := ParseFirewallRule(s)
		if !ok {
			continue
		}
		if !fr.BlocksUpdates(v.Name()) {
			if fr.blocksAddressOnly() && strings.HasSuffix(strings.ToLower(fr.Get("Name")), "_block") {
				inactive++ // reported like an inactive rule: info, not removed
				r.Evidence = append(r.Evidence, valueEvidence("SYSTEM", keyPath, v,
					fmt.Sprintf("rule %q blocks remote addresses %s; its name does not say Windows Update (reported, kept)", fr.Get("Name"), clip(fr.Get("RA4")+fr.Get("RA6"), 80))))
			}
			continue
		}
		if strings.EqualFold(fr.Get("Active"), "FALSE") {
			inactive++
			r.Evidence = append(r.Evidence, valueEvidence("SYSTEM", keyPath, v, "inactive rule that would block Windows Update"))
			continue
		}
		active++
		r.Evidence = append(r.Evidence, valueEvidence("SYSTEM", keyPath, v, fmt.Sprintf("firewall rule %q blocks Windows Update (Dir=%s, Svc=%s)", v.Name(), fr.Get("Dir"), fr.Get("Svc"))).act("delete-value", ""))
	}
	switch {
	case active > 0:
		r.Status = StatusProblem
		r.Summary = fmt.Sprintf("%d firewall rule(s) block Windows Update", active)
		r.Fix = "delete those rule values"
	case inactive > 0:
		r.Status = StatusInfo
		r.Summary = fmt.Sprintf("%d inactive or address-only firewall rule(s) may concern Windows Update (reported, kept)", inactive)
	default:
		r.Summary = fmt.Sprintf("none of %d firewall rules blocks Windows Update", len(vals))
	}
	return r
}

// ---------------------------------------------------------------- proxy

// Proxy is `proxy`: the machine-wide WinHTTP proxy that Windows Update uses.
type Proxy struct{}

// ID implements Check.
func (Proxy) ID() string { return "proxy" }

// Case implements Check.
func (Proxy) Case() Case { return CaseInstall }

// Diagnose implements Check.
func (c Proxy) Diagnose(in *Installation) Result {
	r := newResult(c)
	h, err := in.needHive("SOFTWARE")
	if err != nil {
		return failed(r, "the SOFTWARE hive", err)
	}
	dead, manual := 0, 0
	for _, keyPath := range []string{
		`Microsoft\Windows\CurrentVersion\Internet Settings\Connections`,
		`WOW6432Node\Microsoft\Windows\CurrentVersion\Internet Settings\Connections`,
	} {
		k, err := openKey(h, keyPath)
		if err != nil {
			return failed(r, keyPath, err)
		}
		if k == nil {
			continue
		}
		v, err := value(k, "WinHttpSettings")
		if err != nil {
			return failed(r, keyPath+`\WinHttpSettings`, err)
		}
		if v == nil {
			continue
		}
		raw, err := v.Data()
		if err != nil {
			return failed(r, keyPath+`\WinHttpSettings`, err)
		}
		s, err := ParseWinHTTPSettings(raw)
		if err != nil {
			r.Evidence = append(r.Evidence, valueEvidence("SOFTWARE", keyPath, v, "WinHttpSettings cannot be decoded: "+err.Error()))
			manual++
			continue
		}
		if !s.Manual() {
			continue
		}
		ev := valueEvidence("SOFTWARE", keyPath, v, "")
		ev.Old = s.Proxy
		if s.Bypass != "" {
			ev.Old += " (bypass " + s.Bypass + ")"
		}
		ev.New = "direct access (" + hexBytes(WinHTTPDirect()) + ")"
		ev = ev.act("set", "")
		if s.DeadProxy() {
			dead++
			ev.Detail = fmt.Sprintf("WinHTTP proxy %s points at this machine or nowhere: every update download fails", s.Proxy)
		} else {
			manual++
			ev.OptIn = "proxy"
			ev.Detail = fmt.Sprintf("WinHTTP proxy %s (may be legitimate; reset only with opt-in `proxy`)", s.Proxy)
		}
		r.Evidence = append(r.Evidence, ev)
	}
	switch {
	case dead > 0:
		r.Status = StatusProblem
		r.Summary = "WinHTTP proxy points at loopback/0.0.0.0: " + r.Evidence[0].Old
		r.Fix = "reset WinHttpSettings to direct access (what `netsh winhttp reset proxy` writes)"
	case manual > 0:
		// A real proxy may be legitimate: reported, reset only with the
		// opt-in; info, so that diagnose after a default fix is clean.
		r.Status = StatusInfo
		r.OptIn = "proxy"
		r.Summary = "a WinHTTP proxy is set: " + r.Evidence[0].Old + " (may be legitimate)"
		r.Fix = "opt-in `proxy`: reset WinHttpSettings to direct access"
	default:
		r.Summary = "WinHTTP uses direct access (no proxy)"
	}
	return r
}

// ---------------------------------------------------------------- os-upgrade

// OSUpgrade is `os-upgrade`: the upgrade case of the article (7/8.1 to 10):
// AllowOSUpgrade=1 under SOFTWARE\...\WindowsUpdate\OSUpgrade.
type OSUpgrade struct{}

// ID implements Check.
func (OSUpgrade) ID() string { return "os-upgrade" }

// Case implements Check.
func (OSUpgrade) Case() Case { return CaseInstall }

// Diagnose implements Check.
func (c OSUpgrade) Diagnose(in *Installation) Result {
	r := newResult(c)
	setup := logEvidence(in.Logs().UpgradeFailures(), "setup errors")
	old := in.Version.Family == "7" || in.Version.Family == "8.1"
	if !old {
		r.Summary = "not an upgrade case (Windows " + familyOr10(in.Version.Family) + ")"
		if len(setup) > 0 {
			// setuperr.log carries the upgrade-case failures: worth
			// knowing; AllowOSUpgrade (the 7/8.1 switch) is opt-in only.
			r.Status = StatusInfo
			r.OptIn = "os-upgrade"
			r.Evidence = setup
			r.Summary += "; setuperr.log shows Windows Setup (upgrade) errors"
		}
		return r
	}
	h, err := in.needHive("SOFTWARE")
	if err != nil {
		return failed(r, "the SOFTWARE hive", err)
	}
	const key = `Microsoft\Windows\CurrentVersion\WindowsUpdate\OSUpgrade`
	n, v, err := dwordValue(h, key, "AllowOSUpgrade")
	if err != nil {
		return failed(r, key, err)
	}
	if v != nil && n == 1 {
		r.Summary = "AllowOSUpgrade=1 is already set"
		r.Evidence = append(r.Evidence, valueEvidence("SOFTWARE", key, v, "upgrade to Windows 10 allowed"))
		return r
	}
	r.Status = StatusInfo
	r.OptIn = "os-upgrade"
	ev := Evidence{Kind: "value", Hive: "SOFTWARE", Key: key, Value: "AllowOSUpgrade", Type: "REG_DWORD", New: "1", Detail: "not set: Windows Update does not offer the upgrade to Windows 10"}
	if v != nil {
		ev = valueEvidence("SOFTWARE", key, v, "AllowOSUpgrade is not 1")
		ev.New = "1"
	}
	ev = ev.act("set", "os-upgrade")
	r.Evidence = append([]Evidence{ev}, setup...)
	r.Summary = fmt.Sprintf("Windows %s: upgrading to Windows 10 needs AllowOSUpgrade=1", in.Version.Family)
	r.Fix = "opt-in `os-upgrade`: set DWORD AllowOSUpgrade=1 (creating the OSUpgrade key)"
	return r
}

// ---------------------------------------------------------------- clock

// Clock is `clock`: the article's date/time advice, offline: compare the
// installation's last shutdown time with this machine's clock.
type Clock struct{}

// ID implements Check.
func (Clock) ID() string { return "clock" }

// Case implements Check.
func (Clock) Case() Case { return CaseInstall }

// Diagnose implements Check.
func (c Clock) Diagnose(in *Installation) Result {
	r := newResult(c)
	h, err := in.needHive("SYSTEM")
	if err != nil {
		return failed(r, "the SYSTEM hive", err)
	}
	key := in.ccsKey(`Control\Windows`)
	k, err := openKey(h, key)
	if err != nil {
		return failed(r, key, err)
	}
	var shutdown time.Time
	if k != nil {
		if v, err := value(k, "ShutdownTime"); err == nil && v != nil {
			if b, err := v.Data(); err == nil && len(b) == 8 {
				shutdown = filetime.ToTime(binary.LittleEndian.Uint64(b))
				ev := valueEvidence("SYSTEM", key, v, "last clean shutdown")
				ev.Old = shutdown.Format(time.RFC3339)
				ev.Time = timePtr(shutdown)
				r.Evidence = append(r.Evidence, ev)
			}
		}
	}
	tzKey := in.ccsKey(`Control\TimeZoneInformation`)
	if tk, err := openKey(h, tzKey); err == nil && tk != nil {
		if v, err := value(tk, "TimeZoneKeyName"); err == nil && v != nil {
			r.Evidence = append(r.Evidence, valueEvidence("SYSTEM", tzKey, v, "time zone"))
		}
		if v, err := value(tk, "RealTimeIsUniversal"); err == nil && v != nil {
			r.Evidence = append(r.Evidence, valueEvidence("SYSTEM", tzKey, v, "1 = the hardware clock keeps UTC"))
		}
	}
	now := in.Now
	switch {
	case shutdown.IsZero():
		r.Summary = "no recorded shutdown time"
	case shutdown.After(now.Add(24 * time.Hour)):
		r.Status = StatusInfo
		r.Summary = fmt.Sprintf("last shutdown %s is later than this machine's clock (%s): check the date and time in the firmware setup", shutdown.Format("2006-01-02 15:04"), now.UTC().Format("2006-01-02 15:04"))
	case shutdown.Before(now.AddDate(-2, 0, 0)):
		r.Status = StatusInfo
		r.Summary = fmt.Sprintf("last shutdown %s is years before this machine's clock: check the date and time (and the CMOS battery)", shutdown.Format("2006-01-02"))
	default:
		r.Summary = "last shutdown " + shutdown.Format("2006-01-02 15:04") + " UTC is consistent with this machine's clock"
	}
	return r
}

// ---------------------------------------------------------------- minifilters

// Minifilters is `minifilters`: file system minifilter drivers (services
// with an Instances subkey, what `fltmc` lists). A broken third-party
// filter (antivirus, backup) can make servicing fail to find files; the KB
// names File Server Resource Manager's (srmsvc, Datascrn, Quota).
type Minifilters struct{}

// ID implements Check.
func (Minifilters) ID() string { return "minifilters" }

// Case implements Check.
func (Minifilters) Case() Case { return CaseInstall }

// maxServices bounds the services examined.
const maxServices = 10000

// Diagnose implements Check.
func (c Minifilters) Diagnose(in *Installation) Result {
	r := newResult(c)
	h, err := in.needHive("SYSTEM")
	if err != nil {
		return failed(r, "the SYSTEM hive", err)
	}
	key := in.ccsKey("Services")
	k, err := openKey(h, key)
	if err != nil || k == nil {
		if err == nil {
			err = errors.New("key absent")
		}
		return failed(r, key, err)
	}
	subs, err := k.Subkeys()
	if err != nil {
		return failed(r, key, err)
	}
	var names, fsrm []string
	for i, s := range subs {
		if i >= maxServices {
			break
		}
		inst, err := s.Subkey("Instances")
		if err != nil || inst == nil {
			continue
		}
		name := s.Name()
		alt := ""
		if di, err := value(inst, "DefaultInstance"); err == nil && di != nil {
			if dn, err := di.Text(); err == nil {
				if ik, err := inst.Subkey(dn); err == nil {
					if av, err := value(ik, "Altitude"); err == nil && av != nil {
						alt = valueText(av)
					}
				}
			}
		}
		start := ""
		if sv, err := value(s, "Start"); err == nil && sv != nil {
			start = valueText(sv)
		}
		detail := fmt.Sprintf("minifilter %s", name)
		if alt != "" {
			detail += ", altitude " + alt
		}
		if start != "" {
			detail += ", Start " + start
		}
		switch strings.ToLower(name) {
		case "srmsvc", "datascrn", "quota":
			fsrm = append(fsrm, name)
			detail += " (File Server Resource Manager, named by the KB)"
		}
		names = append(names, name)
		r.Evidence = append(r.Evidence, Evidence{Kind: "key", Hive: "SYSTEM", Key: key + `\` + name + `\Instances`, Old: alt, Detail: detail})
	}
	// srmsvc, FSRM's service, has no Instances key of its own: the KB
	// names it with its two minifilters.
	if k, err := openKey(h, key+`\srmsvc`); err == nil && k != nil {
		fsrm = append(fsrm, k.Name())
		r.Evidence = append(r.Evidence, Evidence{Kind: "key", Hive: "SYSTEM", Key: key + `\` + k.Name(), Detail: "File Server Resource Manager service (named by the KB)"})
	}
	sort.Strings(names)
	if len(names) == 0 && len(fsrm) == 0 {
		r.Summary = "no file system minifilters registered"
		return r
	}
	r.Status = StatusInfo
	r.Summary = fmt.Sprintf("%d minifilters: %s", len(names), clip(strings.Join(names, ", "), 200))
	if len(fsrm) > 0 {
		r.Summary = fmt.Sprintf("FSRM minifilters present (%s); %s", strings.Join(fsrm, ", "), r.Summary)
	}
	return r
}

// ---------------------------------------------------------------- cbs-pending

const cbsKey = `Microsoft\Windows\CurrentVersion\Component Based Servicing`

// CBSPending is `cbs-pending`: servicing stack keys that make Windows
// resume an unfinished update at boot.
type CBSPending struct{}

// ID implements Check.
func (CBSPending) ID() string { return "cbs-pending" }

// Case implements Check.
func (CBSPending) Case() Case { return CaseStartup }

// Diagnose implements Check.
func (c CBSPending) Diagnose(in *Installation) Result {
	r := newResult(c)
	h, err := in.needHive("SOFTWARE")
	if err != nil {
		return failed(r, "the SOFTWARE hive", err)
	}
	k, err := openKey(h, cbsKey)
	if err != nil {
		return failed(r, cbsKey, err)
	}
	if k == nil {
		r.Summary = "no Component Based Servicing key"
		return r
	}
	var found []string
	for _, name := range []string{"RebootPending", "PackagesPending", "RebootInProgress"} {
		sk, err := k.Subkey(name)
		if err != nil {
			if notFound(err) {
				continue
			}
			return failed(r, cbsKey+`\`+name, err)
		}
		found = append(found, name)
		detail := name + " present: servicing waits for a reboot to finish"
		if n := sk.SubkeyCount() + sk.ValueCount(); n > 0 {
			detail += fmt.Sprintf(" (%d entries)", n)
		}
		r.Evidence = append(r.Evidence, keyEvidence("SOFTWARE", cbsKey+`\`+name, sk, detail).act("delete-key", ""))
	}
	incomplete := 0
	if sp, err := k.Subkey("SessionsPending"); err == nil {
		subs, _ := sp.Subkeys()
		for _, s := range subs {
			n, v, _ := dwordValue(h, cbsKey+`\SessionsPending\`+s.Name(), "Complete")
			if v != nil && n == 1 {
				continue
			}
			incomplete++
			phase := ""
			if pv, err := value(s, "LastCommittedPhase"); err == nil && pv != nil {
				phase = valueText(pv)
			}
			detail := "servicing session " + s.Name() + " not complete"
			if phase != "" {
				detail += ", LastCommittedPhase " + phase
			}
			ev := keyEvidence("SOFTWARE", cbsKey+`\SessionsPending\`+s.Name(), s, detail+" (history: reported, never deleted)")
			ev.Old = phase
			r.Evidence = append(r.Evidence, ev)
		}
	}
	switch {
	case len(found) > 0:
		r.Status = StatusProblem
		r.Summary = "servicing pending keys: " + strings.Join(found, ", ")
		if incomplete > 0 {
			r.Summary += fmt.Sprintf("; %d incomplete session(s)", incomplete)
		}
		r.Fix = "delete " + strings.Join(found, ", ") + " (with their subtrees); SessionsPending is history and is kept"
	case incomplete > 0:
		r.Status = StatusInfo
		r.Summary = fmt.Sprintf("%d incomplete servicing session(s) in SessionsPending (history, reported only)", incomplete)
	default:
		r.Summary = "no servicing pending keys"
	}
	return r
}

// ---------------------------------------------------------------- components-markers

// ComponentsMarkers is `components-markers`: values at the root of the
// COMPONENTS hive that tell the servicing stack an operation is unfinished.
type ComponentsMarkers struct{}

// ID implements Check.
func (ComponentsMarkers) ID() string { return "components-markers" }

// Case implements Check.
func (ComponentsMarkers) Case() Case { return CaseStartup }

// Diagnose implements Check.
func (c ComponentsMarkers) Diagnose(in *Installation) Result {
	r := newResult(c)
	if in.Components == nil {
		if _, err := in.needHive("COMPONENTS"); err != nil && !strings.Contains(err.Error(), "absent") {
			return failed(r, "the COMPONENTS hive", err)
		}
		return skipped(r, "no COMPONENTS hive (Windows\\System32\\config\\COMPONENTS)")
	}
	root, err := in.Components.Root()
	if err != nil {
		return failed(r, "the COMPONENTS hive root", err)
	}
	markers := []struct {
		name    string
		nonZero bool // only a non-zero value is a marker
		why     string
	}{
		{"PendingXmlIdentifier", false, "names the pending.xml transaction to resume"},
		{"ExecutionState", true, "an operation of the servicing stack is in progress"},
		{"NextQueueEntryIndex", false, "an advanced-installer queue is pending"},
		{"NextQueueEntryIndexBCDB", false, "a boot-critical advanced-installer queue is pending"},
		{"AdvancedInstallersNeedResolving", true, "advanced installers still have to run"},
		{"StoreDirty", false, "the component store is marked dirty"},
	}
	var found []string
	for _, m := range markers {
		v, err := value(root, m.name)
		if err != nil {
			return failed(r, `COMPONENTS\`+m.name, err)
		}
		if v == nil {
			continue
		}
		if m.nonZero {
			if b, err := v.Data(); err == nil && allZero(b) {
				continue
			}
		}
		found = append(found, m.name)
		r.Evidence = append(r.Evidence, valueEvidence("COMPONENTS", "", v, m.name+": "+m.why).act("delete-value", ""))
	}
	if len(found) == 0 {
		r.Summary = "no pending-operation markers in COMPONENTS"
		return r
	}
	r.Status = StatusProblem
	r.Summary = "COMPONENTS markers of an unfinished servicing operation: " + strings.Join(found, ", ")
	r.Fix = "delete those values from the root of COMPONENTS"
	return r
}

// ---------------------------------------------------------------- setup-execute

const sessionManager = `Control\Session Manager`

// SetupExecute is `setup-execute`: SetupExecute running poqexec.exe (the
// primitive-operations queue of a pending update) at boot.
type SetupExecute struct{}

// ID implements Check.
func (SetupExecute) ID() string { return "setup-execute" }

// Case implements Check.
func (SetupExecute) Case() Case { return CaseStartup }

// Diagnose implements Check.
func (c SetupExecute) Diagnose(in *Installation) Result {
	r := newResult(c)
	h, err := in.needHive("SYSTEM")
	if err != nil {
		return failed(r, "the SYSTEM hive", err)
	}
	key := in.ccsKey(sessionManager)
	k, err := openKey(h, key)
	if err != nil {
		return failed(r, key, err)
	}
	if k == nil {
		r.Summary = "no Session Manager key"
		return r
	}
	v, err := value(k, "SetupExecute")
	if err != nil {
		return failed(r, key+`\SetupExecute`, err)
	}
	if v == nil {
		r.Summary = "SetupExecute is not set"
		return r
	}
	entries, err := v.MultiText()
	if err != nil {
		s, err2 := v.Text()
		if err2 != nil {
			return failed(r, key+`\SetupExecute`, err)
		}
		entries = []string{s}
	}
	var poq, nonEmpty []string
	for _, e := range entries {
		if strings.TrimSpace(e) != "" {
			nonEmpty = append(nonEmpty, e)
		}
		if strings.Contains(strings.ToLower(e), "poqexec") {
			poq = append(poq, e)
		}
	}
	if len(nonEmpty) == 0 {
		r.Summary = "SetupExecute is empty"
		return r
	}
	if len(poq) == 0 {
		r.Status = StatusInfo
		r.Summary = "SetupExecute runs: " + clip(strings.Join(nonEmpty, " | "), 200)
		r.Evidence = append(r.Evidence, valueEvidence("SYSTEM", key, v, "boot-time programs (not poqexec)"))
		return r
	}
	ev := valueEvidence("SYSTEM", key, v, "runs "+poq[0]+" at boot to replay an unfinished update")
	ev = ev.act("remove-entry", "")
	if len(poq) == len(nonEmpty) {
		ev.New = "(deleted)"
		ev.Op = "delete-value"
	}
	r.Evidence = append(r.Evidence, ev)
	r.Status = StatusProblem
	r.Summary = "SetupExecute runs poqexec.exe at boot: " + clip(poq[0], 160)
	r.Fix = "remove the poqexec entry (the whole value when it is the only one)"
	return r
}

// ---------------------------------------------------------------- pending-renames

// PendingRenames is `pending-renames`: PendingFileRenameOperations(2),
// file operations the session manager performs at boot.
type PendingRenames struct{}

// ID implements Check.
func (PendingRenames) ID() string { return "pending-renames" }

// Case implements Check.
func (PendingRenames) Case() Case { return CaseStartup }

// Diagnose implements Check.
func (c PendingRenames) Diagnose(in *Installation) Result {
	r := newResult(c)
	h, err := in.needHive("SYSTEM")
	if err != nil {
		return failed(r, "the SYSTEM hive", err)
	}
	key := in.ccsKey(sessionManager)
	k, err := openKey(h, key)
	if err != nil {
		return failed(r, key, err)
	}
	if k == nil {
		r.Summary = "no Session Manager key"
		return r
	}
	pairs := 0
	for _, name := range []string{"PendingFileRenameOperations", "PendingFileRenameOperations2"} {
		v, err := value(k, name)
		if err != nil {
			return failed(r, key+`\`+name, err)
		}
		if v == nil {
			continue
		}
		raw, err := v.Data()
		if err != nil {
			return failed(r, key+`\`+name, err)
		}
		ops := ParsePendingRenames(raw)
		ev := valueEvidence("SYSTEM", key, v, fmt.Sprintf("%s: %d pending file operation(s)", name, len(ops)))
		ev.Old = ""
		ev.Count = len(ops)
		r.Evidence = append(r.Evidence, ev.act("delete-value", ""))
		for _, op := range ops {
			pairs++
			detail := op.String()
			if op.Prefixed {
				detail += " (*1 prefix)"
			}
			r.Evidence = append(r.Evidence, Evidence{Kind: "rename", Hive: "SYSTEM", Key: key, Value: name, Path: op.Source, To: op.Dest, Detail: detail})
		}
	}
	if len(r.Evidence) == 0 {
		r.Summary = "no pending file rename operations"
		return r
	}
	if pairs == 0 {
		r.Status = StatusInfo
		r.Summary = "PendingFileRenameOperations is present but empty"
		return r
	}
	r.Status = StatusProblem
	r.Summary = fmt.Sprintf("%d file operation(s) pending for the next boot", pairs)
	r.Fix = "remove the PendingFileRenameOperations value(s); every pair is listed here and kept in the undo journal"
	return r
}

// ---------------------------------------------------------------- reboot-flags

// RebootFlags is `reboot-flags`: Windows Update's own reboot keys.
type RebootFlags struct{}

// ID implements Check.
func (RebootFlags) ID() string { return "reboot-flags" }

// Case implements Check.
func (RebootFlags) Case() Case { return CaseStartup }

// Diagnose implements Check.
func (c RebootFlags) Diagnose(in *Installation) Result {
	r := newResult(c)
	h, err := in.needHive("SOFTWARE")
	if err != nil {
		return failed(r, "the SOFTWARE hive", err)
	}
	const base = `Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update`
	var found []string
	for _, name := range []string{"RebootRequired", "PostRebootReporting"} {
		k, err := openKey(h, base+`\`+name)
		if err != nil {
			return failed(r, base+`\`+name, err)
		}
		if k == nil {
			continue
		}
		found = append(found, name)
		r.Evidence = append(r.Evidence, keyEvidence("SOFTWARE", base+`\`+name, k, name+": Windows Update expects to finish an installation after a reboot").act("delete-key", ""))
	}
	if len(found) == 0 {
		r.Summary = "no Windows Update reboot flags"
		return r
	}
	r.Status = StatusProblem
	r.Summary = "Windows Update reboot flags: " + strings.Join(found, ", ")
	r.Fix = "delete those keys"
	return r
}
