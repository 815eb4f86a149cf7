package offline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// pregEntry is what testimages/pregread.py prints for one entry.
type pregEntry struct {
	Key, Value, Data string
	Type             uint32
}

// TestFixToolDamage fixes the broken GPT disk, which carries what update
// blockers and a staged servicing run leave (Registry.pol, IFEO debuggers,
// renamed binaries and tasks, pause values, servicing triggers, the tools'
// hosts lines and firewall rules, TrustedInstaller Start=2, a wuauserv
// descriptor denying SYSTEM and Administrators) next to harmless
// look-alikes, and checks with tools that share no code with wuoffline
// (sleuthkit's fls/ifind/icat, hivexregedit --export and hivexget on the
// hives taken out, Samba's descriptor decoding, testimages/pregread.py on
// Registry.pol) that every blocker is gone and every look-alike kept; then
// diagnose exits 0 calling the disk healthy, and undo restores the image
// byte for byte.
func TestFixToolDamage(t *testing.T) {
	for _, tool := range []string{"fls", "ifind", "icat", "hivexregedit", "hivexget", "python3"} {
		testutil.RequireTool(t, tool)
	}
	img := testutil.TestImage(t, "broken-gpt.img")
	orig := fileSum(t, img)
	_, sect, icatPath := sleuthkitVolume(t, img, 3)
	dir := t.TempDir()
	export := func(name string) regExport {
		return hivexExport(t, filepath.Join(dir, name), icatPath("/Windows/System32/config/"+name))
	}
	polEntries := func() []pregEntry {
		f := filepath.Join(dir, "Registry.pol")
		if err := os.WriteFile(f, icatPath("/Windows/System32/GroupPolicy/Machine/Registry.pol"), 0o644); err != nil {
			t.Fatal(err)
		}
		var es []pregEntry
		out := testutil.Run(t, "python3", filepath.Join(testutil.RepoRoot(t), "testimages", "pregread.py"), f)
		if err := json.Unmarshal(out, &es); err != nil {
			t.Fatalf("pregread.py: %v: %s", err, out)
		}
		return es
	}
	has := func(e regExport, key, value string) bool {
		_, ok := e[strings.ToLower(key)][strings.ToLower(value)]
		return ok
	}
	ifeo := `\Microsoft\Windows NT\CurrentVersion\Image File Execution Options\`
	cs := `\ControlSet001`

	// The patterns are there before.
	sw, sys := export("SOFTWARE"), export("SYSTEM")
	if !has(sw, ifeo+"UsoClient.exe", "Debugger") || !has(sw, `\Microsoft\Windows\CurrentVersion\SideBySide\Configuration`, "PoqexecCmdline") {
		t.Fatal("the broken image lacks the planted patterns: rebuild testimages")
	}
	polBefore := polEntries()
	// The services, by hivexget on the SYSTEM hive taken out with icat.
	svc := cs[1:] + `\Services\`
	sysHive := filepath.Join(dir, "SYSTEM.hivexget")
	hivexget := func(key, value string) []byte {
		if err := os.WriteFile(sysHive, icatPath("/Windows/System32/config/SYSTEM"), 0o644); err != nil {
			t.Fatal(err)
		}
		return testutil.Run(t, "hivexget", sysHive, key, value)
	}
	if ti := strings.TrimSpace(string(hivexget(svc+"TrustedInstaller", "Start"))); ti != "2" {
		t.Fatalf("TrustedInstaller Start %q before fix, want the planted 2: rebuild testimages", ti)
	}
	wuSD, usoSD := hivexget(svc+`wuauserv\Security`, "Security"), hivexget(svc+`UsoSvc\Security`, "Security")
	cryptSD := hivexget(svc+`CryptSvc\Security`, "Security")
	if len(cryptSD) != 5 {
		t.Fatalf("CryptSvc's damaged descriptor (5 bytes) not planted: %x", cryptSD)
	}

	fx := FixTarget(img, FixOptions{Now: fixedNow})
	if fx.State != FixDone || fx.Exit != ExitOK {
		t.Fatalf("fix: state %s exit %d error %q", fx.State, fx.Exit, fx.Error)
	}

	sw, sys = export("SOFTWARE"), export("SYSTEM")
	gone := []struct {
		e          regExport
		key, value string
	}{
		{sw, ifeo + "UsoClient.exe", "Debugger"},
		{sw, ifeo + "wuauclt.exe", "Debugger"},
		{sw, ifeo + "MusNotification.exe", "Debugger"},
		{sw, `\Microsoft\Windows\CurrentVersion\SideBySide\Configuration`, "PoqexecCmdline"},
		{sw, `\Microsoft\Windows\CurrentVersion\Component Based Servicing\Interface`, "ServicingInProgress"},
		{sw, `\Microsoft\WindowsUpdate\UX\Settings`, "PauseUpdatesExpiryTime"},
		{sw, `\Microsoft\WindowsUpdate\UX\Settings`, "PauseQualityUpdatesEndTime"},
		{sw, `\Microsoft\WindowsUpdate\UX\Settings`, "FlightSettingsMaxPauseDays"},
		{sw, `\Microsoft\WindowsUpdate\UpdatePolicy\Settings`, "PausedQualityStatus"},
		{sys, cs + `\Services\SharedAccess\Parameters\FirewallPolicy\FirewallRules`, "windowsSpyBlocker-update-13.107.4.50"},
	}
	for _, g := range gone {
		if has(g.e, g.key, g.value) {
			t.Errorf("blocker %s\\%s still there after fix", g.key, g.value)
		}
	}
	kept := []struct {
		e          regExport
		key, value string
	}{
		{sw, ifeo + "notepad.exe", "Debugger"},
		{sw, ifeo + "UsoClient.exe", "MitigationOptions"},
		{sw, `\Policies\Microsoft\Windows\DataCollection`, "AllowTelemetry"},
		{sw, `\Microsoft\WindowsUpdate\UX\Settings`, "ActiveHoursStart"},
		{sw, `\Microsoft\Windows\CurrentVersion\SideBySide\Configuration`, "DisableResetbase"},
		{sys, cs + `\Services\SharedAccess\Parameters\FirewallPolicy\FirewallRules`, "203.0.113.7_Block"},
	}
	for _, k := range kept {
		if !has(k.e, k.key, k.value) {
			t.Errorf("look-alike %s\\%s removed by fix", k.key, k.value)
		}
	}
	if ti := strings.TrimSpace(string(hivexget(svc+"TrustedInstaller", "Start"))); ti != "3" {
		t.Errorf("TrustedInstaller Start %q after fix, want 3 (manual)", ti)
	}
	// wuauserv's descriptor, read by Samba (no shared code): the planted
	// deny ACEs gone, exactly Microsoft's documented DACL, owner, group
	// and SACL as before. UsoSvc's look-alike (Guests denied) byte for byte.
	if got := hivexget(svc+`UsoSvc\Security`, "Security"); !bytes.Equal(got, usoSD) {
		t.Errorf("UsoSvc's descriptor (a look-alike) changed by fix")
	}
	if got := hivexget(svc+`CryptSvc\Security`, "Security"); !bytes.Equal(got, cryptSD) {
		t.Errorf("CryptSvc's unreadable descriptor rewritten by fix: %x", got)
	}
	ref := testutil.SambaDecode(t, []testutil.SambaInput{
		{Label: "before", Data: wuSD}, {Label: "after", Data: hivexget(svc+`wuauserv\Security`, "Security")},
		{Label: "documented", SDDL: documentedUpdateDACL},
	})
	sdBefore, sdAfter, doc := ref[0], ref[1], ref[2]
	if sdBefore.DACL == nil || len(sdBefore.DACL.ACEs) == 0 || sdBefore.DACL.ACEs[0][0] != float64(1) {
		t.Errorf("wuauserv's descriptor before fix does not start with a deny ACE: %s", sdBefore.SDDL)
	}
	if sdAfter.Error != "" || sdAfter.DACL == nil || !reflect.DeepEqual(sdAfter.DACL.ACEs, doc.DACL.ACEs) {
		t.Errorf("wuauserv's descriptor after fix %s (%s), want the DACL of %s", sdAfter.SDDL, sdAfter.Error, documentedUpdateDACL)
	}
	if !reflect.DeepEqual(sdAfter.Owner, sdBefore.Owner) || !reflect.DeepEqual(sdAfter.Group, sdBefore.Group) || !reflect.DeepEqual(sdAfter.SACL, sdBefore.SACL) {
		t.Errorf("wuauserv's owner, group or SACL changed: %s -> %s", sdBefore.SDDL, sdAfter.SDDL)
	}
	if line := sys[strings.ToLower(cs+`\Services\WaaSMedicSvc\Parameters`)]["servicedll"]; !strings.Contains(line, "hex(2):") {
		t.Errorf("ServiceDll after fix: %q (want the REG_EXPAND_SZ kept)", line)
	} else if strings.Contains(strings.ToLower(line), strings.ToLower(hexUTF16("Wu10Man_"))) {
		t.Errorf("ServiceDll still names the renamed file: %s", line)
	}

	// Registry.pol: exactly the blocking entries gone, the rest in order.
	var want []pregEntry
	for _, e := range polBefore {
		switch e.Value {
		case "WUServer", "DisableWindowsUpdateAccess", "NoAutoUpdate", "UseWUServer":
			continue
		}
		want = append(want, e)
	}
	if got := polEntries(); !slices.Equal(got, want) || len(got) != 3 {
		t.Errorf("Registry.pol after fix: %+v\nwant %+v", got, want)
	}
	if ini := string(icatPath("/Windows/System32/GroupPolicy/gpt.ini")); !strings.Contains(ini, "Version=65538\r\n") {
		t.Errorf("gpt.ini after fix: %q", ini)
	}

	// Files, by fls.
	names := map[string]bool{}
	for _, ln := range strings.Split(string(testutil.Run(t, "fls", "-o", sect, "-r", "-p", img)), "\n") {
		if i := strings.Index(ln, ":\t"); i >= 0 {
			names[strings.ToLower(ln[i+2:])] = true
		}
	}
	for p, want := range map[string]bool{
		"Windows/System32/wuaueng.dll": true, "Windows/System32/wuaueng_BAK.dll": false,
		"Windows/System32/WaaSMedicSvc.dll": true, "Windows/System32/Wu10Man_WaaSMedicSvc.dll": false,
		"Windows/System32/Tasks/Microsoft/Windows/UpdateOrchestrator/Schedule Scan":     true,
		"Windows/System32/Tasks/Microsoft/Windows/UpdateOrchestrator/Schedule Scan.bak": false,
		"Windows/System32/Tasks/Microsoft/Windows/UpdateOrchestrator/USO_UxBroker":      true,
	} {
		if names[strings.ToLower(p)] != want {
			t.Errorf("fls: %s present %v, want %v", p, names[strings.ToLower(p)], want)
		}
	}
	hosts := string(icatPath("/Windows/System32/drivers/etc/hosts"))
	for _, ln := range []string{"::1 tlu.dl.delivery.mp.microsoft.com", "0.0.0.0 a122-1.l.windowsupdate.com"} {
		if !strings.Contains(hosts, HostsMarker+ln) {
			t.Errorf("hosts: %q not commented out", ln)
		}
	}
	if !strings.Contains(hosts, "\r\n# Start of entries added by Wu10Man\r\n") {
		t.Error("hosts: the tool's marker line changed")
	}

	after := DiagnoseTarget(img, Options{Now: fixedNow})
	if after.Exit != ExitOK || len(after.Installations) != 1 || !slices.Equal(after.Installations[0].Cases, []Case{CaseHealthy}) {
		t.Errorf("diagnose after fix: exit %d, %v", after.Exit, defaultProblems(after))
	}

	if u := UndoTarget(img, UndoOptions{}); u.Exit != ExitOK {
		t.Fatalf("undo: %+v", u)
	}
	if fileSum(t, img) != orig {
		t.Fatal("undo did not restore the image byte for byte")
	}
}

// hexUTF16 is s as hivexregedit prints REG_EXPAND_SZ data: UTF-16LE bytes
// in hex, comma-separated.
func hexUTF16(s string) string {
	var parts []string
	for _, r := range s {
		parts = append(parts, fmt.Sprintf("%02x,00", r))
	}
	return strings.Join(parts, ",")
}
