package offline

import (
	"io"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// TestDiagnoseReportsInterruptedFix: a fix stopped half-way (journal
// prepared, never committed) must make every later diagnose refuse (exit 3)
// with an "interrupted" refusal that says how to roll back or finish; once
// fix has finished the job, diagnose is clean of that refusal again.
func TestDiagnoseReportsInterruptedFix(t *testing.T) {
	img := testutil.TestImage(t, "broken-gpt.img")
	if tr := DiagnoseTarget(img, Options{Now: fixedNow}); hasRefusal(tr, "interrupted") {
		t.Fatalf("fresh image already reports an interrupted fix: %+v", tr.Refusals)
	}
	rep := FixTarget(img, FixOptions{Now: fixedNow, WrapWriter: func(w io.WriterAt) io.WriterAt {
		return testutil.NewFaultWriter(w, 3, testutil.FaultError)
	}})
	if rep.State == FixDone {
		t.Fatalf("fix with a writer failing after 3 writes reported done")
	}
	tr := DiagnoseTarget(img, Options{Now: fixedNow})
	if !hasRefusal(tr, "interrupted") || tr.Exit != ExitRefused {
		t.Fatalf("diagnose after an interrupted fix: exit %d, refusals %+v; want exit 3 and an interrupted refusal", tr.Exit, tr.Refusals)
	}
	for _, r := range tr.Refusals {
		if r.ID == "interrupted" && r.Advice == "" {
			t.Errorf("interrupted refusal has no advice: %+v", r)
		}
	}
	// Fix finishes the interrupted journal first (journal.Resume); what is
	// left to plan afterwards is nothing, since the resumed journal held the
	// whole plan.
	rep = FixTarget(img, FixOptions{Now: fixedNow})
	if (rep.State != FixDone && rep.State != FixNothing) || len(rep.Resumed) == 0 {
		t.Fatalf("fix after the interruption: state %s, resumed %d journal(s), error %q", rep.State, len(rep.Resumed), rep.Error)
	}
	tr = DiagnoseTarget(img, Options{Now: fixedNow})
	if hasRefusal(tr, "interrupted") {
		t.Fatalf("diagnose after the finishing fix still reports an interrupted fix: %+v", tr.Refusals)
	}
	if tr.Exit != ExitOK {
		t.Fatalf("diagnose after the finishing fix: exit %d, want 0", tr.Exit)
	}
}

func hasRefusal(tr TargetReport, id string) bool {
	for _, r := range tr.Refusals {
		if r.ID == id {
			return true
		}
	}
	return false
}
