package offline

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wuoffline/wuoffline/internal/testutil"
	"github.com/wuoffline/wuoffline/journal"
)

var fixLong = flag.Bool("long", false, "crash-test fix after every number of writes (slow)")

// fixedNow makes fixes reproducible.
var fixedNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func fileSum(t testing.TB, p string) [32]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

func journalsIn(t testing.TB, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.journal"))
	return m
}

// defaultProblems lists the checks diagnose still reports as a problem that
// fix repairs by default (the done criterion: none after fix).
func defaultProblems(tr TargetReport) []string {
	var out []string
	for _, in := range tr.Installations {
		for i := range in.Checks {
			r := &in.Checks[i]
			if r.Status == StatusProblem && repairable(r) {
				out = append(out, r.ID+": "+r.Summary)
			}
		}
	}
	return out
}

// TestFixUndoRaw runs the whole story on every broken raw image (GPT, MBR,
// 4Kn, bare volume): the dry run writes nothing, fix repairs every default
// check and verifies, diagnose agrees, and undo restores the image byte for
// byte (sha256).
func TestFixUndoRaw(t *testing.T) {
	for _, name := range []string{"broken-gpt.img", "broken-mbr.img", "broken-4kn.img", "broken-volume.img"} {
		t.Run(name, func(t *testing.T) {
			img := testutil.TestImage(t, name)
			orig := fileSum(t, img)
			dry := FixTarget(img, FixOptions{DryRun: true, Now: fixedNow})
			if dry.State != FixPlanned || dry.Exit != ExitProblem {
				t.Fatalf("dry run: state %s exit %d error %q refusals %v", dry.State, dry.Exit, dry.Error, dry.Refusals)
			}
			if fileSum(t, img) != orig || len(journalsIn(t, filepath.Dir(img))) != 0 {
				t.Fatal("dry run changed the image or left a journal")
			}
			nActs, nRanges := 0, 0
			for _, v := range dry.Volumes {
				nActs += len(v.Actions)
				nRanges += len(v.Ranges)
			}
			if nActs < 20 || nRanges == 0 {
				t.Fatalf("dry run planned %d actions, %d ranges", nActs, nRanges)
			}

			fx := FixTarget(img, FixOptions{Now: fixedNow})
			if fx.State != FixDone || fx.Exit != ExitOK {
				t.Fatalf("fix: state %s exit %d error %q", fx.State, fx.Exit, fx.Error)
			}
			for _, v := range fx.Volumes {
				if v.Verify == nil || !v.Verify.OK {
					t.Fatalf("verify: %+v", v.Verify)
				}
				if len(v.Ranges) != len(dry.Volumes[0].Ranges) {
					t.Errorf("fix wrote %d ranges, dry run planned %d", len(v.Ranges), len(dry.Volumes[0].Ranges))
				}
				for _, c := range v.Checks {
					if c.After != StatusFixed && !c.NotRepairable {
						t.Errorf("check %s after fix: %s (%s)", c.ID, c.After, c.Reason)
					}
				}
			}
			if p := defaultProblems(DiagnoseTarget(img, Options{})); len(p) > 0 {
				t.Errorf("diagnose after fix still reports: %v", p)
			}
			if again := FixTarget(img, FixOptions{Now: fixedNow}); again.State != FixNothing {
				t.Errorf("second fix: state %s, want %s", again.State, FixNothing)
			}

			ur := UndoTarget(img, UndoOptions{})
			if ur.Exit != ExitOK || ur.State != UndoDone || len(ur.Journals) != 1 || !ur.Journals[0].Complete {
				t.Fatalf("undo: %+v", ur)
			}
			if fileSum(t, img) != orig {
				t.Fatal("undo did not restore the image byte for byte")
			}
			if ur2 := UndoTarget(img, UndoOptions{}); ur2.State != FixNothing || ur2.Exit != ExitOK {
				t.Fatalf("second undo: %+v", ur2)
			}
		})
	}
}

// TestFixSuffixRule: SoftwareDistribution.old exists on the broken image,
// so the rename goes to .old.1; catroot2 goes to .old.
func TestFixSuffixRule(t *testing.T) {
	img := testutil.TestImage(t, "broken-gpt.img")
	rep := FixTarget(img, FixOptions{DryRun: true, Only: []string{"softwaredistribution", "catroot2"}})
	got := map[string]string{}
	for _, v := range rep.Volumes {
		for _, a := range v.Actions {
			got[a.Check] = a.To
		}
	}
	want := map[string]string{
		"softwaredistribution": `Windows\SoftwareDistribution.old.1`,
		"catroot2":             `Windows\System32\catroot2.old`,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: rename to %q, want %q", k, got[k], w)
		}
	}
	if len(got) != 2 {
		t.Errorf("--only planned %v", got)
	}
}

// TestFixSelection checks --only, --skip and the opt-ins.
func TestFixSelection(t *testing.T) {
	img := testutil.TestImage(t, "broken-gpt.img")
	checksOf := func(o FixOptions) map[string]int {
		o.DryRun = true
		rep := FixTarget(img, o)
		if rep.State != FixPlanned && rep.State != FixNothing {
			t.Fatalf("state %s: %s", rep.State, rep.Error)
		}
		m := map[string]int{}
		for _, v := range rep.Volumes {
			for _, a := range v.Actions {
				m[a.Check]++
			}
		}
		return m
	}
	def := checksOf(FixOptions{})
	if def["txr"] != 0 || def["services"] != 4 || def["service-config"] != 1 || def["hosts"] != 1 || def["wu-policies"] != 7 {
		t.Errorf("default plan: %v", def)
	}
	if m := checksOf(FixOptions{With: []string{"txr"}}); m["txr"] != 4 {
		t.Errorf("--with txr: %v", m)
	}
	if m := checksOf(FixOptions{Only: []string{"txr"}}); len(m) != 1 || m["txr"] != 4 {
		t.Errorf("--only txr: %v", m)
	}
	if m := checksOf(FixOptions{Skip: []string{"services", "hosts"}}); m["services"] != 0 || m["hosts"] != 0 || m["firewall"] == 0 {
		t.Errorf("--skip: %v", m)
	}
}

// TestFixRefusals: every refusal exits 3 and leaves the image byte-identical
// with no journal.
func TestFixRefusals(t *testing.T) {
	cases := []struct {
		image string
		id    string
		opts  FixOptions
	}{
		{"refuse-hibernated.img", "hibernated", FixOptions{}},
		{"refuse-dirty.img", "dirty", FixOptions{}},
		{"refuse-bitlocker.img", "bitlocker", FixOptions{}},
		{"refuse-faststartup.img", "", FixOptions{}},
		{"broken-volume.img", "journal", FixOptions{JournalDir: "/nonexistent/wuoffline-journals"}},
	}
	for _, c := range cases {
		t.Run(c.image+"/"+c.id, func(t *testing.T) {
			img := testutil.TestImage(t, c.image)
			orig := fileSum(t, img)
			for _, dry := range []bool{true, false} {
				o := c.opts
				o.DryRun = dry
				rep := FixTarget(img, o)
				if rep.Exit != ExitRefused || rep.State != FixRefused {
					t.Fatalf("dry=%v: exit %d state %s error %q", dry, rep.Exit, rep.State, rep.Error)
				}
				ids := []string{}
				for _, r := range rep.Refusals {
					ids = append(ids, r.ID)
					if r.Reason == "" || r.Advice == "" {
						t.Errorf("refusal without reason or advice: %+v", r)
					}
				}
				if c.id != "" && !containsFold(ids, c.id) {
					t.Errorf("refusals %v, want %s", ids, c.id)
				}
			}
			if fileSum(t, img) != orig || len(journalsIn(t, filepath.Dir(img))) != 0 {
				t.Fatal("a refused fix changed the image or left a journal")
			}
		})
	}
}

// TestFixCrash stops the fix after k volume writes (the writer fails from
// then on, as a pulled cable would) for k = 0..total. Every later command
// sees the interrupted fix; fix run again finishes it and passes the
// checks; undo then returns the image byte for byte to the original.
// In CI a deterministic spread of k (always 0, 1, total-1, total) runs;
// -long runs every k.
func TestFixCrash(t *testing.T) {
	img := testutil.TestImage(t, "broken-gpt.img")
	orig, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	var counter *testutil.FaultWriter
	full := FixTarget(img, FixOptions{Now: fixedNow, WrapWriter: func(w io.WriterAt) io.WriterAt {
		counter = testutil.NewFaultWriter(w, -1, testutil.FaultError)
		return counter
	}})
	if full.State != FixDone || counter == nil {
		t.Fatalf("full fix: %s %s", full.State, full.Error)
	}
	total := counter.Writes()
	if u := UndoTarget(img, UndoOptions{}); u.Exit != ExitOK {
		t.Fatalf("undo: %+v", u)
	}
	ks := []int{0, 1, total / 4, total / 2, 3 * total / 4, total - 1, total}
	if *fixLong {
		ks = ks[:0]
		for k := 0; k <= total; k++ {
			ks = append(ks, k)
		}
	}
	t.Logf("fix makes %d volume writes; testing k = %v, each with a clean stop and a torn write", total, ks)
	type run struct {
		k    int
		torn bool
	}
	var runs []run
	for _, k := range ks {
		runs = append(runs, run{k, false})
		if k < total {
			runs = append(runs, run{k, true})
		}
	}
	for _, r := range runs {
		k := r.k
		rep := FixTarget(img, FixOptions{Now: fixedNow, WrapWriter: func(w io.WriterAt) io.WriterAt {
			if r.torn {
				return &tornStop{w: w, limit: k}
			}
			return testutil.NewFaultWriter(w, k, testutil.FaultError)
		}})
		if k < total {
			if rep.State != FixFailed || rep.Exit != ExitError || !strings.Contains(rep.Error, "undo") {
				t.Fatalf("k=%d: state %s exit %d error %q", k, rep.State, rep.Exit, rep.Error)
			}
			intr, err := FindInterrupted(img, "")
			if err != nil || len(intr) != 1 || intr[0].Advice == "" {
				t.Fatalf("k=%d: interrupted fixes %v, %v", k, intr, err)
			}
			if rs := InterruptedRefusals(img, ""); len(rs) != 1 || !strings.Contains(rs[0].Advice, "undo") {
				t.Fatalf("k=%d: interrupted refusals %+v", k, rs)
			}
			if dry := FixTarget(img, FixOptions{DryRun: true}); dry.Exit != ExitRefused {
				t.Fatalf("k=%d: dry run over an interrupted fix: exit %d", k, dry.Exit)
			}
			again := FixTarget(img, FixOptions{Now: fixedNow})
			if len(again.Resumed) != 1 || !again.Resumed[0].Complete || again.Exit != ExitOK {
				t.Fatalf("k=%d: fix again: state %s exit %d resumed %+v error %q", k, again.State, again.Exit, again.Resumed, again.Error)
			}
		}
		if p := defaultProblems(DiagnoseTarget(img, Options{})); len(p) > 0 {
			t.Fatalf("k=%d: after fix: %v", k, p)
		}
		u := UndoTarget(img, UndoOptions{})
		if u.Exit != ExitOK {
			t.Fatalf("k=%d: undo: %+v", k, u)
		}
		now, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(now, orig) {
			t.Fatalf("k=%d: undo did not restore the image byte for byte", k)
		}
		if intr, _ := FindInterrupted(img, ""); len(intr) != 0 {
			t.Fatalf("k=%d: still interrupted after undo: %v", k, intr)
		}
	}
	_ = journal.Version
}

// tornStop passes limit writes, then writes the first half of the next one
// and fails it and every later one: a crash in the middle of a write.
type tornStop struct {
	w     io.WriterAt
	limit int
	n     int
}

func (t *tornStop) WriteAt(p []byte, off int64) (int, error) {
	t.n++
	switch {
	case t.n <= t.limit:
		return t.w.WriteAt(p, off)
	case t.n == t.limit+1:
		t.w.WriteAt(p[:len(p)/2], off)
	}
	return 0, testutil.ErrInjected
}

// TestFixOptIn applies an opt-in (txr) alone and takes it back.
func TestFixOptIn(t *testing.T) {
	img := testutil.TestImage(t, "broken-volume.img")
	orig := fileSum(t, img)
	rep := FixTarget(img, FixOptions{With: []string{"txr"}, Only: []string{"txr"}, Now: fixedNow})
	if rep.State != FixDone || len(rep.Volumes[0].Checks) != 1 || rep.Volumes[0].Checks[0].After != StatusFixed {
		t.Fatalf("fix --with txr: %s %s %+v", rep.State, rep.Error, rep.Volumes)
	}
	for _, a := range rep.Volumes[0].Actions {
		if a.Check != "txr" || a.Op != "rename" || !strings.HasSuffix(a.To, ".old") {
			t.Errorf("unexpected action %+v", a)
		}
	}
	if u := UndoTarget(img, UndoOptions{}); u.Exit != ExitOK || fileSum(t, img) != orig {
		t.Fatalf("undo: %+v", u)
	}
}

// TestFixReadOnlyAndInUse: an image that cannot be opened for writing, or
// that is attached to a loop device, is refused (exit 3) and left as is.
func TestFixReadOnlyAndInUse(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tool := range []string{"chattr", "losetup"} {
		testutil.RequireTool(t, tool)
	}
	img := testutil.TestImage(t, "broken-volume.img")
	orig := fileSum(t, img)

	testutil.Run(t, "chattr", "+i", img) // even root cannot open it for writing
	t.Cleanup(func() { exec.Command("chattr", "-i", img).Run() })
	rep := FixTarget(img, FixOptions{})
	if rep.Exit != ExitRefused || len(rep.Refusals) != 1 || rep.Refusals[0].ID != "read-only" {
		t.Fatalf("immutable image: exit %d refusals %+v error %q", rep.Exit, rep.Refusals, rep.Error)
	}
	if dry := FixTarget(img, FixOptions{DryRun: true}); dry.State != FixPlanned {
		t.Errorf("a read-only image still gets its dry run: %s %s", dry.State, dry.Error)
	}
	testutil.Run(t, "chattr", "-i", img)

	loop := strings.TrimSpace(string(testutil.Run(t, "losetup", "-r", "-f", "--show", img)))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	rep = FixTarget(img, FixOptions{})
	if rep.Exit != ExitRefused || len(rep.Refusals) != 1 || rep.Refusals[0].ID != "mounted" {
		t.Fatalf("image on a loop device: exit %d refusals %+v error %q", rep.Exit, rep.Refusals, rep.Error)
	}
	if u := UndoTarget(img, UndoOptions{}); u.Exit != ExitRefused || u.Refusal == nil {
		t.Errorf("undo of an image on a loop device: %+v", u)
	}
	exec.Command("losetup", "-d", loop).Run()
	if fileSum(t, img) != orig || len(journalsIn(t, filepath.Dir(img))) != 0 {
		t.Fatal("a refused fix changed the image or left a journal")
	}
}

// TestFixHealthy: on a disk diagnose calls healthy, fix changes nothing.
func TestFixHealthy(t *testing.T) {
	img := testutil.TestImage(t, "healthy-gpt.img")
	orig := fileSum(t, img)
	rep := FixTarget(img, FixOptions{})
	if rep.State != FixNothing || rep.Exit != ExitOK {
		t.Fatalf("fix healthy: %s exit %d %s", rep.State, rep.Exit, rep.Error)
	}
	if fileSum(t, img) != orig || len(journalsIn(t, filepath.Dir(img))) != 0 {
		t.Fatal("fix of a healthy disk wrote something")
	}
}

// TestUndoChangedSince: a range written again after the fix (Windows ran)
// is left alone and reported, with the rest of its unit (undo never writes
// part of a unit); every other range is restored.
func TestUndoChangedSince(t *testing.T) {
	img := testutil.TestImage(t, "broken-volume.img") // bare volume: volume offsets are file offsets
	orig, _ := os.ReadFile(img)
	rep := FixTarget(img, FixOptions{Now: fixedNow})
	if rep.State != FixDone {
		t.Fatalf("fix: %s %s", rep.State, rep.Error)
	}
	fixed, _ := os.ReadFile(img)
	var victim ByteRange
	for _, r := range rep.Volumes[0].Ranges {
		if strings.HasPrefix(r.Label, "SYSTEM: ") {
			victim = r
			break
		}
	}
	if victim.Len == 0 {
		t.Fatalf("no range of the SYSTEM hive edit in %+v", rep.Volumes[0].Ranges)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	newer := bytes.Repeat([]byte{0xA5}, 16) // neither the original nor the fix's bytes
	f.WriteAt(newer, victim.Off)
	f.Close()

	u := UndoTarget(img, UndoOptions{})
	if u.Exit != ExitError || len(u.Journals) != 1 || u.Journals[0].Changed != 1 || len(u.Journals[0].NotRestored) == 0 {
		t.Fatalf("undo: %+v", u)
	}
	now, _ := os.ReadFile(img)
	if !bytes.Equal(now[victim.Off:victim.Off+16], newer) {
		t.Fatal("undo clobbered newer data")
	}
	// What was left is as the fix (and the later write) left it; everything
	// else is back to the original.
	copy(fixed[victim.Off:], newer)
	for _, r := range u.Journals[0].NotRestored {
		if !bytes.Equal(now[r.Off:r.Off+r.Len], fixed[r.Off:r.Off+r.Len]) {
			t.Fatalf("range %#x+%d (%s) left, but not as the fix left it", r.Off, r.Len, r.Label)
		}
		copy(now[r.Off:r.Off+r.Len], orig[r.Off:r.Off+r.Len])
	}
	if !bytes.Equal(now, orig) {
		t.Fatal("undo did not restore the other ranges")
	}
}

// TestFixBlockDevice fixes the broken disk through a loop block device
// (what a rescue USB sees), with the journal in --journal DIR, and undoes
// it: the image behind the device is back byte for byte.
func TestFixBlockDevice(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "losetup")
	img := testutil.TestImage(t, "broken-gpt.img")
	orig := fileSum(t, img)
	loop := strings.TrimSpace(string(testutil.Run(t, "losetup", "-f", "--show", img)))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	jdir := t.TempDir()
	rep := FixTarget(loop, FixOptions{JournalDir: jdir, Now: fixedNow})
	if rep.State != FixDone || rep.Exit != ExitOK {
		t.Fatalf("fix %s: %s exit %d %s %v", loop, rep.State, rep.Exit, rep.Error, rep.Refusals)
	}
	if len(journalsIn(t, jdir)) != 1 {
		t.Fatalf("journals in %s: %v", jdir, journalsIn(t, jdir))
	}
	if p := defaultProblems(DiagnoseTarget(loop, Options{})); len(p) > 0 {
		t.Errorf("diagnose after fix: %v", p)
	}
	if u := UndoTarget(loop, UndoOptions{}); u.State != FixNothing {
		t.Errorf("undo without --journal found journals: %+v", u)
	}
	if u := UndoTarget(loop, UndoOptions{JournalDir: jdir}); u.Exit != ExitOK || len(u.Journals) != 1 {
		t.Fatalf("undo: %+v", u)
	}
	exec.Command("losetup", "-d", loop).Run()
	if fileSum(t, img) != orig {
		t.Fatal("undo through the device did not restore the image")
	}
}

// TestFixSilentWriteLoss: a device that acknowledges writes it never makes
// (testutil.FaultPowerCut) is caught by the read-back: fix fails the
// verification (exit 4) and names the ranges; undo restores the original.
func TestFixSilentWriteLoss(t *testing.T) {
	img := testutil.TestImage(t, "broken-volume.img")
	orig := fileSum(t, img)
	var fw *testutil.FaultWriter
	rep := FixTarget(img, FixOptions{Now: fixedNow, WrapWriter: func(w io.WriterAt) io.WriterAt {
		fw = testutil.NewFaultWriter(w, 10, testutil.FaultPowerCut)
		return fw
	}})
	if rep.Exit != ExitError || rep.Volumes[0].Verify == nil || rep.Volumes[0].Verify.OK || len(rep.Volumes[0].Verify.Mismatched) == 0 {
		t.Fatalf("fix over a lossy device: state %s exit %d verify %+v", rep.State, rep.Exit, rep.Volumes[0].Verify)
	}
	if v := rep.Volumes[0].Verify; v.Ranges != len(v.Mismatched)+10 {
		t.Errorf("%d ranges read back, %d mismatched, want %d", v.Ranges, len(v.Mismatched), v.Ranges-10)
	}
	if u := UndoTarget(img, UndoOptions{}); u.Exit != ExitOK || fileSum(t, img) != orig {
		t.Fatalf("undo: %+v", u)
	}
}
