package offline

import (
	"strings"
	"testing"
)

// TestPlanOptIns checks the default / opt-in rule of repair-catalog.md on
// synthetic evidence of the opt-in checks (the test disks have no WSUS, no
// real proxy and no Windows 7).
func TestPlanOptIns(t *testing.T) {
	ir := InstallationReport{Checks: []Result{
		{ID: "wu-policies", Status: StatusProblem, Evidence: []Evidence{
			{Kind: "value", Hive: "SOFTWARE", Key: `Policies\Microsoft\Windows\WindowsUpdate`, Value: "WUServer", Type: "REG_SZ", Op: "delete-value", OptIn: "wsus"},
			{Kind: "value", Hive: "SOFTWARE", Key: `Policies\Microsoft\Windows\WindowsUpdate\AU`, Value: "NoAutoUpdate", Type: "REG_DWORD", Op: "delete-value"},
		}},
		{ID: "proxy", Status: StatusProblem, OptIn: "proxy", Evidence: []Evidence{
			{Kind: "value", Hive: "SOFTWARE", Key: `Microsoft\Windows\CurrentVersion\Internet Settings\Connections`, Value: "WinHttpSettings", Type: "REG_BINARY", Op: "set", OptIn: "proxy"},
		}},
		{ID: "os-upgrade", Status: StatusInfo, OptIn: "os-upgrade", Evidence: []Evidence{
			{Kind: "value", Hive: "SOFTWARE", Key: `Microsoft\Windows\CurrentVersion\WindowsUpdate\OSUpgrade`, Value: "AllowOSUpgrade", Type: "REG_DWORD", New: "1", Op: "set", OptIn: "os-upgrade"},
		}},
		{ID: "clock", Status: StatusInfo},
	}}
	tests := []struct {
		name string
		opts FixOptions
		want string // check:value of every action, in order
		left string // checks left alone
	}{
		{"default", FixOptions{}, "wu-policies:NoAutoUpdate", "proxy"},
		{"wsus", FixOptions{With: []string{"wsus"}}, "wu-policies:WUServer wu-policies:NoAutoUpdate", "proxy"},
		{"proxy", FixOptions{With: []string{"proxy"}}, "wu-policies:NoAutoUpdate proxy:WinHttpSettings", ""},
		{"os-upgrade", FixOptions{With: []string{"os-upgrade"}}, "wu-policies:NoAutoUpdate os-upgrade:AllowOSUpgrade", "proxy"},
		{"only proxy names the opt-in", FixOptions{Only: []string{"proxy"}}, "proxy:WinHttpSettings", "wu-policies"},
		{"skip", FixOptions{Skip: []string{"wu-policies"}, With: []string{"proxy"}}, "proxy:WinHttpSettings", "wu-policies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acts, left := planActions(ir, tt.opts)
			var got, gotLeft []string
			for _, a := range acts {
				got = append(got, a.Check+":"+a.Value)
			}
			for _, l := range left {
				gotLeft = append(gotLeft, l.ID)
				if l.Reason == "" {
					t.Errorf("%s left alone without a reason", l.ID)
				}
			}
			if strings.Join(got, " ") != tt.want || strings.Join(gotLeft, " ") != tt.left {
				t.Errorf("actions %v left %v, want %q left %q", got, gotLeft, tt.want, tt.left)
			}
			for _, a := range acts {
				switch a.Value {
				case "WinHttpSettings":
					if string(a.newRaw) != string(WinHTTPDirect()) {
						t.Errorf("proxy reset to % x", a.newRaw)
					}
				case "AllowOSUpgrade":
					if string(a.newRaw) != "\x01\x00\x00\x00" || a.Op != "set" {
						t.Errorf("AllowOSUpgrade = % x", a.newRaw)
					}
				}
			}
		})
	}
}

// TestRenameActionStaysInItsDirectory: a rename evidence's "to" is a full
// path (as a fix action's); planning refuses one that leaves the directory
// or names no file, instead of renaming somewhere else.
func TestRenameActionStaysInItsDirectory(t *testing.T) {
	for _, tc := range []struct {
		to string
		ok bool
	}{
		{`Windows\SoftwareDistribution.old`, true},
		{`windows\SoftwareDistribution.old.1`, true}, // NTFS names are case-insensitive
		{``, false},
		{`SoftwareDistribution.old`, false},
		{`Windows\Temp\SoftwareDistribution`, false},
		{`Windows\`, false},
	} {
		ev := Evidence{Kind: "dir", Path: `Windows\SoftwareDistribution`, To: tc.to}.act("rename", "")
		a, err := actionFor("softwaredistribution", ev)
		if tc.ok != (err == nil) {
			t.Errorf("rename to %q: %v, want ok %v", tc.to, err, tc.ok)
			continue
		}
		if err == nil && (a.Op != "rename" || a.Path != ev.Path || a.To != tc.to) {
			t.Errorf("rename to %q: action %+v", tc.to, a.FixAction)
		}
	}
}

// TestPlanFailedAdvice: a plan that fails names the failing action's check
// for --skip, so the user can make the other repairs.
func TestPlanFailedAdvice(t *testing.T) {
	ok := &plannedAction{FixAction: FixAction{Check: "services", Op: "set"}}
	bad := &plannedAction{FixAction: FixAction{Check: "hosts-file", Op: "comment-out", Error: "edit: too big to rewrite"}}
	for _, tc := range []struct {
		acts []*plannedAction
		want string
	}{
		{[]*plannedAction{ok, bad}, "`wuoffline fix --skip hosts-file D:`"},
		{[]*plannedAction{ok}, "`wuoffline fix --dry-run -v D:`"},
	} {
		got := planFailedAdvice(tc.acts, "D:")
		if !strings.Contains(got, tc.want) || !strings.Contains(got, "check --all D:") {
			t.Errorf("advice %q lacks %q", got, tc.want)
		}
	}
}
