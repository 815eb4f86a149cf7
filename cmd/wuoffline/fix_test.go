package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
	"github.com/wuoffline/wuoffline/offline"
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
		{[]string{"fix", "--help"}, exitOK, "--time RFC3339", ""},
		{[]string{"fix", "--time", "yesterday", "x"}, exitUsage, "", `invalid value "yesterday" for --time: not an RFC 3339 time`},
		{[]string{"fix", "--time", "2026-12-04 19:00:00", "x"}, exitUsage, "", "not an RFC 3339 time"},
		{[]string{"fix", "--time", "1601-01-01T00:00:00Z", "x"}, exitUsage, "", "before 1601-01-01"},
		{[]string{"reg", "export", "--time", "2026-12-04T19:00:00Z", "h"}, exitUsage, "", "--time is for reg set and reg delete"},
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

// TestTimeOption: two copies fixed, renamed (mv) or edited (reg set) with
// the same --time are equal byte for byte, though the commands run at
// different moments: every time they stamp is that one.
func TestTimeOption(t *testing.T) {
	const stamp = "2026-12-04T19:00:00.1234567+01:00"
	for _, tt := range []struct {
		name string
		copy func(t *testing.T) string
		args func(target string) []string
	}{
		{"fix", func(t *testing.T) string { return testutil.TestImage(t, "broken-volume.img") },
			func(img string) []string { return []string{"fix", "--yes", "--time", stamp, img} }},
		{"mv", func(t *testing.T) string { return testutil.TestImage(t, "broken-volume.img") },
			func(img string) []string {
				return []string{"mv", "--yes", "--time", stamp, img, `Windows\SoftwareDistribution`, `Windows\SD.old`}
			}},
		{"reg set", func(t *testing.T) string { return regCopy(t, "hives/regipy/SYSTEM.xz", "SYSTEM") },
			func(h string) []string {
				return []string{"reg", "set", "--yes", "--time", stamp, h, `WuoTest\Key`, "Wert", "REG_DWORD", "7"}
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var sums []string
			for range 2 {
				target := tt.copy(t)
				if code, out, errs := runCmd(tt.args(target)...); code != exitOK {
					t.Fatalf("%s: exit %d\n%s\n%s", tt.args(target), code, out, errs)
				}
				sums = append(sums, testutil.SHA256File(t, target))
			}
			if sums[0] != sums[1] {
				t.Errorf("the same --time on two copies: sha256 %s and %s", sums[0], sums[1])
			}
		})
	}
}

// TestFixCommand: dry run text, the confirmation rule, a batch with a
// refused target (exit = the worst), JSON, and undo.
func TestFixCommand(t *testing.T) {
	img := testutil.TestImage(t, "broken-volume.img")
	bad := testutil.TestImage(t, "refuse-dirty.img")
	orig, _ := os.ReadFile(img)

	code, out, errs := runCmd("fix", "--dry-run", img)
	for _, want := range []string{`rename Windows\SoftwareDistribution -> SoftwareDistribution.old`, `SYSTEM: Services\wuauserv Start 4 -> 3`, "hosts: comment out", "dry run: nothing written"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run text lacks %q", want)
		}
	}
	if code != exitProblem {
		t.Errorf("dry run: exit %d (%s)", code, errs)
	}
	// -v: every action in full, with the byte ranges.
	code, out, _ = runCmd("fix", img, "--dry-run", "-v")
	for _, want := range []string{`[softwaredistribution] rename Windows\SoftwareDistribution`, "old: 4", "new: 3", "# wuoffline: ", "volume byte ranges", "writes 0x"} {
		if code != exitProblem || !strings.Contains(out, want) {
			t.Errorf("dry run -v: exit %d, text lacks %q", code, want)
		}
	}

	// Not a terminal and no --yes: usage error, nothing written.
	// (On a terminal the question is asked; go test's stdin is no answer.)
	if code, out, errs := runCmd("fix", img); !(code == exitUsage && strings.Contains(errs, "--yes")) && !(code == exitProblem && strings.Contains(out, "declined")) {
		t.Errorf("fix without --yes: exit %d %q", code, errs)
	}
	if now, _ := os.ReadFile(img); string(now) != string(orig) {
		t.Fatal("fix without confirmation wrote")
	}

	// After writing: one line per change with its outcome, not the plan.
	code, out, errs = runCmd("fix", "--yes", img)
	if code != exitOK || !strings.Contains(out, `done   rename Windows\SoftwareDistribution -> SoftwareDistribution.old`) || strings.Contains(out, "writes 0x") || !strings.Contains(out, "journal:") {
		t.Errorf("fix: exit %d (%s)\n%s", code, errs, out)
	}
	if code, _, errs := runCmd("undo", "--yes", img); code != exitOK {
		t.Fatalf("undo: %d %s", code, errs)
	}

	code, out, errs = runCmd("fix", "--yes", "--json", img, bad)
	if code != exitRefused {
		t.Errorf("batch: exit %d, want %d (the worst): %s", code, exitRefused, errs)
	}
	var rep offline.FixReport
	for _, d := range jsonLines[offline.FixDocument](t, out) {
		rep.Targets = append(rep.Targets, d.FixTargetReport)
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

// TestFixFitsTheConsole: on the broken test disk the dry run fits a WinPE
// console (80x25: at most 60 lines, at most one in ten wider than 80
// columns) and -v still shows every byte range.
func TestFixFitsTheConsole(t *testing.T) {
	img := testutil.TestImage(t, "broken-gpt.img")
	code, out, errs := runCmd("fix", "--dry-run", img)
	if code != exitProblem {
		t.Fatalf("dry run: exit %d %s", code, errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	wide := 0
	for _, l := range lines {
		if len([]rune(l)) > 80 {
			wide++
		}
	}
	if len(lines) > 60 || wide*10 > len(lines) || strings.Contains(out, "writes 0x") {
		t.Errorf("dry run: %d lines, %d wider than 80:\n%s", len(lines), wide, out)
	}
	_, verbose, _ := runCmd("fix", "--dry-run", "--verbose", img)
	_, js, _ := runCmd("fix", "--dry-run", "--json", img)
	docs := jsonLines[offline.FixDocument](t, js)
	if len(docs) != 1 || len(docs[0].Volumes) == 0 || !docs[0].DryRun {
		t.Fatalf("json: %d documents", len(docs))
	}
	for _, r := range docs[0].Volumes[0].Ranges {
		if want := fmt.Sprintf("%#010x +%-6d", r.Off, r.Len); !strings.Contains(verbose, want) {
			t.Errorf("-v lacks the range %q", want)
		}
	}
}

func TestWrapLine(t *testing.T) {
	for _, tt := range []struct {
		in    string
		width int
		want  []string
	}{
		{"short", 80, []string{"short"}},
		{"  aaa bbb ccc", 12, []string{"  aaa bbb", "      ccc"}},
		{"  aaa bbb ccc", 9, []string{"  aaa bbb", "    ccc"}},
		{`  x Windows\System32\config\SYSTEM y`, 20, []string{`  x`, `      Windows\System32\config\SYSTEM`, `      y`}},
		{"abcdefghij", 4, []string{"abcdefghij"}},
		{"", 10, []string{""}},
	} {
		got := wrapLine(tt.in, tt.width)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("wrapLine(%q, %d) = %q, want %q", tt.in, tt.width, got, tt.want)
		}
		for _, l := range got {
			if len([]rune(l)) > tt.width && strings.Contains(strings.TrimSpace(l), " ") {
				t.Errorf("wrapLine(%q, %d): %q is too wide", tt.in, tt.width, l)
			}
		}
	}
}
