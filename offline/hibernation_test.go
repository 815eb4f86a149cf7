package offline

import (
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// TestDiscardHibernation: the hibernated image ($LogFile clean) is refused
// without the opt-in; with --discard-hibernation fix renames hiberfil.sys
// aside first, repairs the rest, exits 0; diagnose then refuses no more;
// undo restores the image byte for byte (the hibernated session back).
func TestDiscardHibernation(t *testing.T) {
	img := testutil.TestImage(t, "refuse-hibernated.img")
	orig := fileSum(t, img)
	if rep := FixTarget(img, FixOptions{Now: fixedNow}); rep.Exit != ExitRefused || fileSum(t, img) != orig {
		t.Fatalf("without the opt-in: exit %d, state %s", rep.Exit, rep.State)
	}
	dry := FixTarget(img, FixOptions{Now: fixedNow, DryRun: true, DiscardHibernation: true})
	if dry.State != FixPlanned || len(dry.Volumes) != 1 || len(dry.Volumes[0].Actions) == 0 {
		t.Fatalf("dry run: state %s exit %d error %q refusals %+v", dry.State, dry.Exit, dry.Error, dry.Refusals)
	}
	if a := dry.Volumes[0].Actions[0]; a.Check != hibernationCheck || a.Op != "rename" || !strings.EqualFold(a.Path, hiberfilPath) || !strings.Contains(a.New, "lost") {
		t.Errorf("first action %+v, want hiberfil.sys renamed aside with the warning", a)
	}
	if fileSum(t, img) != orig {
		t.Fatal("dry run wrote")
	}
	fx := FixTarget(img, FixOptions{Now: fixedNow, DiscardHibernation: true})
	if fx.State != FixDone || fx.Exit != ExitOK {
		t.Fatalf("fix: state %s exit %d error %q refusals %+v", fx.State, fx.Exit, fx.Error, fx.Refusals)
	}
	after := DiagnoseTarget(img, Options{Now: fixedNow})
	if after.Exit != ExitOK || len(after.Installations) != 1 || len(after.Installations[0].Safety.Refusals) != 0 {
		t.Fatalf("diagnose after: exit %d refusals %+v", after.Exit, after.Installations)
	}
	if u := UndoTarget(img, UndoOptions{}); u.Exit != ExitOK {
		t.Fatalf("undo: %+v", u)
	}
	if fileSum(t, img) != orig {
		t.Fatal("undo did not restore the image byte for byte")
	}
	if d := DiagnoseTarget(img, Options{Now: fixedNow}); d.Exit != ExitRefused {
		t.Errorf("after undo: exit %d, want the hibernation refusal back", d.Exit)
	}
}

// TestDiscardHibernationNeedsCleanLog: a Fast Startup volume whose
// $LogFile needs replay is still refused with the opt-in, nothing written,
// and the refusal says what to do from WinPE and from Linux.
func TestDiscardHibernationNeedsCleanLog(t *testing.T) {
	img := testutil.TestImage(t, "refuse-faststartup.img")
	orig := fileSum(t, img)
	rep := FixTarget(img, FixOptions{Now: fixedNow, DiscardHibernation: true})
	if rep.Exit != ExitRefused || fileSum(t, img) != orig {
		t.Fatalf("exit %d state %s", rep.Exit, rep.State)
	}
	advice := ""
	for _, r := range rep.Refusals {
		advice += r.Advice
	}
	for _, w := range []string{"WinPE", "Linux", "chkdsk /f"} {
		if !strings.Contains(advice, w) {
			t.Errorf("refusal advice lacks %q: %s", w, advice)
		}
	}
}
