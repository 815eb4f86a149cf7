package offline

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// TestCasesFromCurrentState: log history alone (Startup Repair blaming a
// patch, CBS failures) does not make a case; problems on the disk do.
func TestCasesFromCurrentState(t *testing.T) {
	none := []Result{{ID: "pending-xml", Case: CaseStartup, Status: StatusOK}, {ID: "cbs-pending", Case: CaseStartup, Status: StatusInfo}}
	if got := casesOf(none); !slices.Equal(got, []Case{CaseHealthy}) {
		t.Errorf("no problem: cases %v, want [healthy]", got)
	}
	both := append(none, Result{ID: "hosts", Case: CaseInstall, Status: StatusProblem}, Result{ID: "setup-execute", Case: CaseStartup, Status: StatusProblem})
	if got := casesOf(both); !slices.Equal(got, []Case{CaseStartup, CaseInstall}) {
		t.Errorf("two problems: cases %v", got)
	}
}

// TestLastFailure picks the most recent failure of any log.
func TestLastFailure(t *testing.T) {
	t1 := time.Date(2024, 9, 10, 8, 0, 0, 0, time.UTC)
	t2 := time.Date(2024, 9, 12, 10, 0, 0, 0, time.UTC)
	l := &Logs{Findings: []LogFinding{
		{Path: "a", Failures: 1, Last: &t1, Excerpts: []Excerpt{{Time: &t1, Text: "old 0x80070002 KB111111"}}},
		{Path: "untimed", Failures: 3, Excerpts: []Excerpt{{Text: "no time"}}},
		{Path: "b", Failures: 1, Last: &t2, Excerpts: []Excerpt{{Time: &t2, Text: "error 0x80248007: Update (KB4025342)"}}},
		{Path: "clean"},
	}}
	lf := l.LastFailure()
	if lf == nil || lf.Path != "b" || !lf.Time.Equal(t2) || lf.HRESULT != "0x80248007" || lf.KB != "KB4025342" {
		t.Fatalf("last failure %+v", lf)
	}
	if (&Logs{}).LastFailure() != nil {
		t.Error("no logs: a last failure")
	}
}

// TestDiagnoseAfterFixIsHealthy: on the broken image, whose logs keep
// their failures after fix, diagnose after a successful fix exits 0,
// calls the installation healthy and shows the logs' last failure as past
// evidence only.
func TestDiagnoseAfterFixIsHealthy(t *testing.T) {
	img := testutil.TestImage(t, "broken-gpt.img")
	before := DiagnoseTarget(img, Options{Now: fixedNow})
	if before.Exit != ExitProblem || len(before.Installations) != 1 || !slices.Contains(before.Installations[0].Cases, CaseStartup) {
		t.Fatalf("before fix: exit %d, %+v", before.Exit, before.Installations)
	}
	if fx := FixTarget(img, FixOptions{Now: fixedNow}); fx.Exit != ExitOK {
		t.Fatalf("fix: exit %d, error %q", fx.Exit, fx.Error)
	}
	after := DiagnoseTarget(img, Options{Now: fixedNow})
	if after.Exit != ExitOK || len(after.Installations) != 1 {
		t.Fatalf("after fix: exit %d", after.Exit)
	}
	in := after.Installations[0]
	if !slices.Equal(in.Cases, []Case{CaseHealthy}) {
		t.Errorf("after fix: cases %v, want [healthy]", in.Cases)
	}
	if in.LastFailure == nil || in.LastFailure.Time == nil || in.LastFailure.Time.Year() != 2024 {
		t.Errorf("after fix: last failure %+v, want the logs' 2024 failure as past evidence", in.LastFailure)
	}
}

// TestDiagnoseRealSystemLog: on a volume whose System.evtx is a real
// Windows 10 1703 log, diagnose reports the WindowsUpdateClient failure
// 0x80248007 of KB4025342: as the last failure, and as the failed-
// installation evidence that makes the update cache worth renaming (the
// catalogue's softwaredistribution rule).
func TestDiagnoseRealSystemLog(t *testing.T) {
	evtx := testutil.SharedFixture(t, "evtx/System-win10-1703.evtx")
	dir := extractTree(t, "healthy-tree.tar.gz")
	dst := filepath.Join(dir, "Windows", "System32", "winevt", "Logs", "System.evtx")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, evtx, dst)
	tr := DiagnoseTarget(dir, Options{Now: fixedNow})
	if len(tr.Installations) != 1 {
		t.Fatalf("%d installations, error %q", len(tr.Installations), tr.Error)
	}
	in := tr.Installations[0]
	var f *LogFinding
	for i := range in.Logs {
		if in.Logs[i].Format == "evtx" {
			f = &in.Logs[i]
		}
	}
	if f == nil || f.Error != "" || f.HRESULTs["0x80248007"] == 0 || !slices.Contains(f.KBs, "KB4025342") {
		t.Fatalf("System.evtx finding %+v, want 0x80248007 for KB4025342", f)
	}
	found := false
	for _, e := range f.Excerpts {
		found = found || strings.Contains(e.Text, "0x80248007") && strings.Contains(e.Text, "KB4025342")
	}
	if !found {
		t.Errorf("no excerpt names 0x80248007 and KB4025342: %+v", f.Excerpts)
	}
	if in.LastFailure == nil || in.LastFailure.Path != `Windows\System32\winevt\Logs\System.evtx` || in.LastFailure.Time.Year() != 2017 {
		t.Errorf("last failure %+v, want the System.evtx's 2017 failure", in.LastFailure)
	}
	for _, r := range in.Checks {
		if r.ID == "softwaredistribution" && (r.Status != StatusProblem || !strings.Contains(evidenceText(r), "0x80248007")) {
			t.Errorf("softwaredistribution: %s, evidence:\n%s", r.Status, evidenceText(r))
		}
	}
}
