package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
	"github.com/wuoffline/wuoffline/offline"
	"github.com/wuoffline/wuoffline/session"
)

// buildBinary builds wuoffline into a temp dir: the tests below run it as a
// second process.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wuoffline")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runBinary runs the built binary and returns its exit code and output.
func runBinary(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	case err != nil:
		t.Fatalf("%s: %v", bin, err)
	}
	return 0, string(out)
}

// TestTwoWritersOneImage: while one wuoffline holds an image (this test
// process, with the session a running fix or mv holds), the built binary's
// fix and mv are refused with exit 3 and write nothing; once it is
// released, the same command completes.
func TestTwoWritersOneImage(t *testing.T) {
	bin := buildBinary(t)
	cases := [][]string{
		{"fix", "--yes"},
		{"mv", "--yes", "IMG", `Windows\System32\catroot2`, `Windows\catroot2.moved`},
	}
	for _, c := range cases {
		t.Run(c[0], func(t *testing.T) {
			img := testutil.TestImage(t, "broken-gpt.img")
			args := append([]string(nil), c...)
			if len(args) == 2 {
				args = append(args, img)
			} else {
				args[2] = img
			}
			held, err := session.Open(img, session.Options{Write: true})
			if err != nil {
				t.Fatal(err)
			}
			sum := testutil.SHA256File(t, img)
			code, out := runBinary(t, bin, args...)
			// Text is wrapped to 80 columns: compare with the breaks undone.
			if code != exitRefused || !strings.Contains(strings.Join(strings.Fields(out), " "), "in use by another wuoffline") {
				t.Errorf("second writer: exit %d, want %d with \"in use by another wuoffline\":\n%s", code, exitRefused, out)
			}
			if testutil.SHA256File(t, img) != sum || len(journals(t, filepath.Dir(img))) != 0 {
				t.Fatal("the refused writer changed the image or left a journal")
			}
			held.Close()
			code, out = runBinary(t, bin, args...)
			if code == exitRefused || code == exitError || len(journals(t, filepath.Dir(img))) != 1 {
				t.Fatalf("after the first released it: exit %d, journals %v:\n%s", code, journals(t, filepath.Dir(img)), out)
			}
			if testutil.SHA256File(t, img) == sum {
				t.Error("the image is unchanged after the write")
			}
		})
	}
}

// TestMvDryRunRefusals: mv --dry-run reports the refusals mv meets
// (hibernated volume: exit 3), and mv honours its own --journal DIR when it
// looks for interrupted changes.
func TestMvDryRunRefusals(t *testing.T) {
	img := testutil.TestImage(t, "refuse-hibernated.img")
	sum := testutil.SHA256File(t, img)
	for _, dry := range []bool{true, false} {
		args := []string{"mv", "--yes", img, `Windows\System32\catroot2`, `Windows\catroot2.moved`}
		if dry {
			args[1] = "--dry-run"
		}
		code, _, errs := ntRun(args...)
		if code != exitRefused || !strings.Contains(errs, "hiber") {
			t.Errorf("dry=%v: exit %d, want %d:\n%s", dry, code, exitRefused, errs)
		}
	}
	if testutil.SHA256File(t, img) != sum {
		t.Error("image changed")
	}
}

// TestReadOnlyDevice: fix and mv on a read-only loop device exit 3 and
// create no journal.
func TestReadOnlyDevice(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "losetup")
	img := testutil.TestImage(t, "broken-gpt.img")
	dev := strings.TrimSpace(string(testutil.Run(t, "losetup", "-r", "-f", "--show", img)))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	jdir := t.TempDir()
	for _, args := range [][]string{
		{"fix", "--yes", "--journal", jdir, dev},
		{"mv", "--yes", "--journal", jdir, dev, `Windows\System32\catroot2`, `Windows\catroot2.moved`},
		{"undo", "--yes", "--journal", jdir, dev},
	} {
		code, out, errs := ntRun(args...)
		if code != exitRefused || !strings.Contains(out+errs, "read-only") {
			t.Errorf("%s: exit %d, want %d:\n%s%s", args[0], code, exitRefused, out, errs)
		}
		if j := journals(t, jdir); len(j) != 0 {
			t.Fatalf("%s left journals %v", args[0], j)
		}
	}
}

// TestMvHonoursJournalDir: a fix interrupted with --journal DIR is found by
// mv (and mv --dry-run) given the same --journal DIR: exit 3, the advice
// names the directory, nothing written.
func TestMvHonoursJournalDir(t *testing.T) {
	img := testutil.TestImage(t, "broken-gpt.img")
	jdir := t.TempDir()
	rep := offline.FixTarget(img, offline.FixOptions{JournalDir: jdir, WrapWriter: func(w io.WriterAt) io.WriterAt {
		return testutil.NewFaultWriter(w, 3, testutil.FaultError)
	}})
	if rep.State != offline.FixFailed || !strings.Contains(rep.Error, "--journal "+jdir) {
		t.Fatalf("interrupted fix: %s %q", rep.State, rep.Error)
	}
	sum := testutil.SHA256File(t, img)
	for _, mode := range []string{"--yes", "--dry-run"} {
		code, out, errs := ntRun("mv", mode, "--journal", jdir, img, `Windows\System32\catroot2`, `Windows\catroot2.moved`)
		if code != exitRefused || !strings.Contains(errs, "interrupted") || !strings.Contains(errs, "--journal "+jdir) {
			t.Errorf("mv %s --journal: exit %d, want %d:\n%s%s", mode, code, exitRefused, out, errs)
		}
	}
	if testutil.SHA256File(t, img) != sum {
		t.Error("mv wrote over an interrupted fix")
	}
	if u := offline.UndoTarget(img, offline.UndoOptions{JournalDir: jdir}); u.Exit != exitOK {
		t.Fatalf("undo: %+v", u)
	}
}
