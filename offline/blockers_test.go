package offline

import (
	"bytes"
	"encoding/binary"
	"testing"
	"testing/fstest"

	"github.com/wuoffline/wuoffline/preg"
)

func TestOriginalName(t *testing.T) {
	for in, want := range map[string]string{
		"wuaueng_BAK.dll": "wuaueng.dll", "Wu10Man_WaaSMedicSvc.dll": "WaaSMedicSvc.dll", "upfc.exe.OLD": "upfc.exe",
		"Schedule Scan.bak": "Schedule Scan", "wuaueng_old.dll": "wuaueng.dll", "wuaueng.dll": "", "backup.dll": "",
	} {
		if got := originalName(in); got != want {
			t.Errorf("originalName(%q) = %q, want %q", in, got, want)
		}
	}
	for _, alt := range renamedForms("wuaueng.dll") {
		if originalName(alt) == "" {
			t.Errorf("renamed form %q not recognised", alt)
		}
	}
}

func TestVolumePath(t *testing.T) {
	for in, want := range map[string]string{
		`%SystemRoot%\System32\wuaueng.dll`: "Windows/System32/wuaueng.dll",
		`%windir%\system32\x.dll`:           "Windows/system32/x.dll",
		`C:\Windows\System32\qmgr.dll`:      "Windows/System32/qmgr.dll",
		`\SystemRoot\System32\x.sys`:        "Windows/System32/x.sys",
		`"%SystemRoot%\a.dll"`:              "Windows/a.dll",
		`x.dll`:                             "",
	} {
		if got := volumePath(in); got != want {
			t.Errorf("volumePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFailureActionsRemoved(t *testing.T) {
	fa := func(types ...uint32) []byte {
		b := make([]byte, 20)
		binary.LittleEndian.PutUint32(b[12:], uint32(len(types)))
		for _, ty := range types {
			b = binary.LittleEndian.AppendUint32(b, ty)
			b = binary.LittleEndian.AppendUint32(b, 60000)
		}
		return b
	}
	if !failureActionsRemoved(fa(0, 0, 0)) || !failureActionsRemoved(fa()) {
		t.Error("all-none actions not reported")
	}
	if failureActionsRemoved(fa(1, 1, 0)) || failureActionsRemoved([]byte{1, 2}) {
		t.Error("restart actions (or a short value) reported as removed")
	}
	// A count larger than the data: not trusted, not reported.
	b := fa(1)
	binary.LittleEndian.PutUint32(b[12:], 1000)
	if failureActionsRemoved(b) {
		t.Error("hostile count reported")
	}
}

func TestBumpGptIni(t *testing.T) {
	in := []byte("[General]\r\ngPCMachineExtensionNames=[{x}]\r\nVersion=65537\r\n")
	out, edits, err := bumpGptIni(in)
	if err != nil || string(out) != "[General]\r\ngPCMachineExtensionNames=[{x}]\r\nVersion=65538\r\n" || len(edits) != 1 || edits[0].Line != 3 {
		t.Fatalf("%q %+v %v", out, edits, err)
	}
	// The machine half wraps without touching the user half.
	if out, _, _ := bumpGptIni([]byte("Version=196607\n")); string(out) != "Version=131073\n" {
		t.Errorf("wrap: %q", out)
	}
	if out, _, err := bumpGptIni([]byte("[General]\n")); out != nil || err != nil {
		t.Errorf("no Version: %q %v", out, err)
	}
	if _, _, err := bumpGptIni([]byte{0xff, 0xfe, 'V', 0}); err == nil {
		t.Error("UTF-16 gpt.ini rewritten")
	}
}

func TestFilterRegistryPol(t *testing.T) {
	wu, au := policyWUKey, policyWUKey+`\AU`
	entries := []preg.Entry{
		preg.DWORDEntry(`Software\Policies\Microsoft\Windows\DataCollection`, "AllowTelemetry", 0),
		preg.StringEntry(wu, "WUServer", "http://localhost:8080"),
		preg.DWORDEntry(wu, "DisableWindowsUpdateAccess", 1),
		preg.DWORDEntry(wu, "SetDisableUXWUAccess", 0), // 0: not a block
		preg.StringEntry(wu, "**del.WUStatusServer", " "),
		preg.DWORDEntry(au, "NoAutoUpdate", 1),
		preg.DWORDEntry(au, "UseWUServer", 1),
		preg.DWORDEntry(au, "AUOptions", 2),
	}
	in := preg.Encode(entries)
	out, edits, err := filterRegistryPol(in)
	if err != nil || len(edits) != 4 {
		t.Fatalf("%d edits, %v", len(edits), err)
	}
	want := preg.Encode([]preg.Entry{entries[0], entries[3], entries[4], entries[7]})
	if !bytes.Equal(out, want) {
		t.Errorf("filtered file differs")
	}
	// A real WSUS server stays, and so does UseWUServer that points at it.
	wsus := preg.Encode([]preg.Entry{preg.StringEntry(wu, "WUServer", "http://wsus.contoso.local:8530"), preg.DWORDEntry(au, "UseWUServer", 1)})
	if out, _, err := filterRegistryPol(wsus); out != nil || err != nil {
		t.Errorf("WSUS file rewritten: %v", err)
	}
	if _, _, err := filterRegistryPol([]byte("PReg\x01\x00\x00\x00[")); err == nil {
		t.Error("damaged file rewritten")
	}
}

func TestParsePauseTime(t *testing.T) {
	for _, s := range []string{"2051-12-31T23:59:59Z", "2051-12-31T23:59:59", "2051-12-31"} {
		if tm, ok := parsePauseTime(s); !ok || tm.Year() != 2051 {
			t.Errorf("%q: %v %v", s, tm, ok)
		}
	}
	if _, ok := parsePauseTime("soon"); ok {
		t.Error("garbage parsed")
	}
}

func TestFirewallToolStyles(t *testing.T) {
	spy, _ := ParseFirewallRule("v2.30|Action=Block|Active=TRUE|Dir=Out|RA4=13.107.4.50|Name=windowsSpyBlocker-update-13.107.4.50|")
	if !spy.BlocksUpdates("windowsSpyBlocker-update-13.107.4.50") {
		t.Error("WindowsSpyBlocker update rule not recognised")
	}
	dws, _ := ParseFirewallRule("v2.30|Action=Block|Active=TRUE|Dir=Out|RA4=203.0.113.7|Name=203.0.113.7_Block|")
	if dws.BlocksUpdates("203.0.113.7_Block") || !dws.blocksAddressOnly() {
		t.Error("an address-only rule whose name says nothing must be reported, not removed")
	}
	spyTel, _ := ParseFirewallRule("v2.30|Action=Block|Active=TRUE|Dir=Out|RA4=1.2.3.4|Name=windowsSpyBlocker-spy-1.2.3.4|")
	if spyTel.BlocksUpdates("windowsSpyBlocker-spy-1.2.3.4") {
		t.Error("a telemetry rule of the same tool taken for an update blocker")
	}
}

// TestGroupPolicyFileCheck: the check on a volume's files alone (MapFS):
// blocking entries are a problem with both files to rewrite; a WSUS-only
// file is info; a damaged file is info and never rewritten; no file is ok.
func TestGroupPolicyFileCheck(t *testing.T) {
	wu := policyWUKey
	block := preg.Encode([]preg.Entry{preg.DWORDEntry(wu, "DisableWindowsUpdateAccess", 1), preg.DWORDEntry(`Software\Policies\X`, "Y", 1)})
	wsus := preg.Encode([]preg.Entry{preg.StringEntry(wu, "WUServer", "http://wsus.contoso.local")})
	ini := &fstest.MapFile{Data: []byte("[General]\r\nVersion=1\r\n")}
	for name, c := range map[string]struct {
		fs     fstest.MapFS
		status Status
		acts   int
	}{
		"blocking": {fstest.MapFS{registryPolPath: {Data: block}, gptIniPath: ini}, StatusProblem, 2},
		"no-ini":   {fstest.MapFS{registryPolPath: {Data: block}}, StatusProblem, 1},
		"wsus":     {fstest.MapFS{registryPolPath: {Data: wsus}, gptIniPath: ini}, StatusInfo, 0},
		"damaged":  {fstest.MapFS{registryPolPath: {Data: block[:len(block)-3]}, gptIniPath: ini}, StatusInfo, 0},
		"absent":   {fstest.MapFS{}, StatusOK, 0},
	} {
		r := GroupPolicyFile{}.Diagnose(&Installation{FS: c.fs})
		acts := 0
		for _, e := range r.Evidence {
			if e.Op != "" {
				acts++
			}
		}
		if r.Status != c.status || acts != c.acts {
			t.Errorf("%s: %s with %d actions (%s), want %s with %d", name, r.Status, acts, r.Summary, c.status, c.acts)
		}
	}
}

// TestUpdateTasksCheck: a renamed task is renamed back (unless its
// original exists), a disabled one reported.
func TestUpdateTasksCheck(t *testing.T) {
	dir := updateTaskDirs[0] + "/"
	xml := func(enabled string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("<Task><Settings><Enabled>" + enabled + "</Enabled></Settings></Task>")}
	}
	r := UpdateTasks{}.Diagnose(&Installation{FS: fstest.MapFS{
		dir + "Schedule Scan.bak": xml("true"),
		dir + "Reboot_AC.bak":     xml("true"), // its original exists: left alone
		dir + "Reboot_AC":         xml("true"),
		dir + "USO_UxBroker":      xml("false"),
	}})
	if r.Status != StatusProblem || len(r.Evidence) != 2 || r.Evidence[0].Op != "rename" && r.Evidence[1].Op != "rename" {
		t.Fatalf("%s: %+v", r.Status, r.Evidence)
	}
	for _, e := range r.Evidence {
		if e.Op == "rename" && (e.To != winDir(e.Path)+"Schedule Scan" || e.New != "") {
			t.Errorf("rename %q to %q (new %q)", e.Path, e.To, e.New)
		}
	}
	if r := (UpdateTasks{}).Diagnose(&Installation{FS: fstest.MapFS{dir + "USO_UxBroker": xml("false")}}); r.Status != StatusInfo {
		t.Errorf("disabled only: %s", r.Status)
	}
}
