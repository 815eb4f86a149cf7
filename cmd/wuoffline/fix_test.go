package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"wuoffline/internal/testutil"
	"wuoffline/offline"
)

func TestFixUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string
		err  string
	}{
		{[]string{"fix", "--help"}, exitOK, "--dry-run", ""},
		{[]string{"fix"}, exitUsage, "", "no TARGET"},
		{[]string{"fix", "--with", "bogus", "x"}, exitUsage, "", "unknown opt-in"},
		{[]string{"fix", "--only", "nope", "x"}, exitUsage, "", "unknown check id"},
		{[]string{"undo", "--help"}, exitOK, "changed since", ""},
		{[]string{"undo"}, exitUsage, "", "no TARGET"},
	}
	for _, tt := range tests {
		code, out, errs := runCmd(tt.args...)
		if code != tt.code || !strings.Contains(out, tt.out) || !strings.Contains(errs, tt.err) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", tt.args, code, clipText(out, 200), errs)
		}
	}
}

// TestFixCommand: dry run text, the confirmation rule, a batch with a
// refused target (exit = the worst), JSON, and undo.
func TestFixCommand(t *testing.T) {
	img := testutil.TestImage(t, "broken-volume.img")
	bad := testutil.TestImage(t, "refuse-dirty.img")
	orig, _ := os.ReadFile(img)

	code, out, errs := runCmd("fix", "--dry-run", img)
	for _, want := range []string{`rename Windows\SoftwareDistribution -> Windows\SoftwareDistribution.old`, "old: 4", "new: 3", "# wuoffline: ", "volume byte ranges", "dry run: nothing was written"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run text lacks %q", want)
		}
	}
	if code != exitProblem {
		t.Errorf("dry run: exit %d (%s)", code, errs)
	}

	// Not a terminal and no --yes: usage error, nothing written.
	// (On a terminal the question is asked; go test's stdin is no answer.)
	if code, out, errs := runCmd("fix", img); !(code == exitUsage && strings.Contains(errs, "--yes")) && !(code == exitProblem && strings.Contains(out, "declined")) {
		t.Errorf("fix without --yes: exit %d %q", code, errs)
	}
	if now, _ := os.ReadFile(img); string(now) != string(orig) {
		t.Fatal("fix without confirmation wrote")
	}

	code, out, errs = runCmd("fix", "--yes", "--json", img, bad)
	if code != exitRefused {
		t.Errorf("batch: exit %d, want %d (the worst): %s", code, exitRefused, errs)
	}
	var rep offline.FixReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("JSON: %v", err)
	}
	if len(rep.Targets) != 2 || rep.Targets[0].State != offline.FixDone || rep.Targets[1].State != offline.FixRefused || rep.Targets[0].Exit != exitOK || rep.Targets[1].Exit != exitRefused {
		t.Fatalf("batch report: %+v", rep.Targets)
	}
	if rep.Targets[0].Volumes[0].Journal == "" || rep.Targets[0].Volumes[0].Verify == nil || !rep.Targets[0].Volumes[0].Verify.OK {
		t.Errorf("fixed target: %+v", rep.Targets[0].Volumes[0])
	}

	code, out, _ = runCmd("undo", "--yes", img, bad)
	if code != exitOK || !strings.Contains(out, "restored") || !strings.Contains(out, "nothing to undo") {
		t.Errorf("undo: exit %d\n%s", code, out)
	}
	now, _ := os.ReadFile(img)
	if string(now) != string(orig) {
		t.Error("undo did not restore the image")
	}
}
