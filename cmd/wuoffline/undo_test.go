package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
	"github.com/wuoffline/wuoffline/session"
)

var long = flag.Bool("long", false, "undo tests: many more flipped bytes and cuts of a fix's journal (slow)")

// windowsVolume returns the offset and size of the NTFS volume of img
// (partition 3 of broken-gpt.img).
func windowsVolume(t *testing.T, img string) (off, size int64) {
	t.Helper()
	s, v, err := ntOpen(img, 0, session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return v.Offset, v.Size
}

// ourProblems runs our own checker on the whole volume of img.
func ourProblems(t *testing.T, img string) map[string]bool {
	t.Helper()
	s, v, err := ntOpen(img, 0, session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rep, err := v.Check(session.CheckOptions{All: true})
	if err != nil {
		t.Fatalf("ntfs.Check: %v", err)
	}
	out := map[string]bool{}
	for _, p := range rep.Problems {
		out[p.String()] = true
	}
	return out
}

// loopDevice attaches the volume of img at off/size to a loop device
// (read-only unless rw) and returns it with a function that detaches it
// (also run at cleanup): a loop device over the image makes wuoffline
// refuse it as in use.
func loopDevice(t *testing.T, img string, off, size int64, rw bool) (string, func()) {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "losetup")
	args := []string{"-f", "--show", "-o", fmt.Sprint(off), "--sizelimit", fmt.Sprint(size), img}
	if !rw {
		args = append([]string{"-r"}, args...)
	}
	loop := strings.TrimSpace(string(testutil.Run(t, "losetup", args...)))
	detached := false
	detach := func() {
		if !detached {
			detached = true
			exec.Command("losetup", "-d", loop).Run()
		}
	}
	t.Cleanup(detach)
	return loop, detach
}

// consistent checks the volume of img with tools that share no code with
// wuoffline, and with our own checker against the problems the volume had
// before the fix (before): ntfsfix -n, an ntfs-3g read-only mount that
// stats every name, fls over the whole tree, and ntfs.Check --all.
func consistent(t *testing.T, img string, before map[string]bool) {
	t.Helper()
	off, size := windowsVolume(t, img)
	for p := range ourProblems(t, img) {
		if !before[p] {
			t.Errorf("ntfs.Check: new problem: %s", p)
		}
	}
	if testutil.RequireTool(t, "fls") != "" {
		out, err := exec.Command("fls", "-o", fmt.Sprint(off/512), "-r", "-p", img).CombinedOutput()
		if err != nil || len(out) == 0 {
			t.Errorf("fls -r: %v\n%s", err, out)
		}
	}
	if os.Geteuid() != 0 {
		testutil.Unavailable(t, "ntfsfix and ntfs-3g need root")
		return
	}
	testutil.RequireTool(t, "ntfsfix")
	loop, detach := loopDevice(t, img, off, size, false)
	defer detach()
	if out, _ := exec.Command("ntfsfix", "-n", loop).CombinedOutput(); !strings.Contains(string(out), "processed successfully") {
		t.Errorf("ntfsfix -n:\n%s", out)
	}
	mnt, unmount := testutil.MountNTFS(t, loop, true)
	defer unmount()
	names := 0
	filepath.WalkDir(mnt, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Errorf("ntfs-3g: %s: %v", p, err)
			return nil
		}
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("ntfs-3g: stat %s: %v", p, err)
		}
		names++
		return nil
	})
	if names < 100 {
		t.Errorf("ntfs-3g: only %d names under the mount", names)
	}
}

// flsNames lists every path of the volume of img, lower case, by fls.
func flsNames(t *testing.T, img string) map[string]bool {
	t.Helper()
	testutil.RequireTool(t, "fls")
	off, _ := windowsVolume(t, img)
	names := map[string]bool{}
	for _, ln := range strings.Split(string(testutil.Run(t, "fls", "-o", fmt.Sprint(off/512), "-r", "-p", img)), "\n") {
		if i := strings.Index(ln, ":\t"); i >= 0 {
			names[strings.ToLower(ln[i+2:])] = true
		}
	}
	return names
}

// TestUndoAfterWindowsRecreated: fix, then Windows "boots" and recreates
// SoftwareDistribution (an ntfs-3g mount makes the directory), then undo:
// the rename's unit is left, reported in words with what to do, undo exits
// 4, the other units come back, and the volume is consistent by every
// independent check.
func TestUndoAfterWindowsRecreated(t *testing.T) {
	testutil.RequireRoot(t)
	bin := buildBinary(t)
	img := testutil.TestImage(t, "broken-gpt.img")
	before := ourProblems(t, img)
	if code, out := runBinary(t, bin, "fix", "--yes", img); code != exitOK {
		t.Fatalf("fix: exit %d\n%s", code, out)
	}
	fixed := flsNames(t, img)
	if fixed["windows/softwaredistribution"] || !fixed["windows/softwaredistribution.old.1"] {
		t.Fatalf("fix did not rename SoftwareDistribution aside")
	}
	// Windows boots and recreates the folder.
	off, size := windowsVolume(t, img)
	loop, detach := loopDevice(t, img, off, size, true)
	mnt, unmount := testutil.MountNTFS(t, loop, false)
	if err := os.Mkdir(filepath.Join(mnt, "Windows", "SoftwareDistribution"), 0o755); err != nil {
		t.Fatal(err)
	}
	unmount()
	detach()

	code, out := runBinary(t, bin, "undo", "--yes", img)
	t.Logf("undo:\n%s", out)
	if code != exitError {
		t.Errorf("undo: exit %d, want %d", code, exitError)
	}
	for _, want := range []string{
		`LEFT (`, `rename Windows\SoftwareDistribution -> SoftwareDistribution.old.1`,
		`why: Windows changed Windows\ since the fix (it recreated SoftwareDistribution); the renamed folder is kept as SoftwareDistribution.old.1`,
		`what to do: delete or merge Windows\SoftwareDistribution.old.1 by hand`,
	} {
		if !strings.Contains(flat(out), want) {
			t.Errorf("undo output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(flat(out), "restored") {
		t.Errorf("undo restored no unit:\n%s", out)
	}
	names := flsNames(t, img)
	if !names["windows/softwaredistribution"] || !names["windows/softwaredistribution.old.1"] {
		t.Errorf("after undo: SoftwareDistribution %v, SoftwareDistribution.old.1 %v: both must be there",
			names["windows/softwaredistribution"], names["windows/softwaredistribution.old.1"])
	}
	consistent(t, img, before)
	// Undo again: nothing more is taken back, the same unit is still
	// reported, and nothing changes.
	sum := testutil.SHA256File(t, img)
	if code, out := runBinary(t, bin, "undo", "--yes", img); code != exitError || !strings.Contains(flat(out), "it recreated SoftwareDistribution") || strings.Contains(out, "\n      restored") {
		t.Errorf("second undo: exit %d\n%s", code, out)
	}
	if testutil.SHA256File(t, img) != sum {
		t.Error("a second undo changed the image")
	}
}

// fixedCopy fixes broken-gpt.img once and returns a function that copies
// the fixed image and its journal into a new directory, for one damage
// case each: (image path, journal path).
func fixedCopy(t *testing.T, bin string) (copyFixed func(t *testing.T) (string, string), before map[string]bool) {
	t.Helper()
	img := testutil.TestImage(t, "broken-gpt.img")
	before = ourProblems(t, img)
	if code, out := runBinary(t, bin, "fix", "--yes", img); code != exitOK {
		t.Fatalf("fix: exit %d\n%s", code, out)
	}
	js := journals(t, filepath.Dir(img))
	if len(js) != 1 {
		t.Fatalf("journals after fix: %v", js)
	}
	imgData, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	jData, err := os.ReadFile(js[0])
	if err != nil {
		t.Fatal(err)
	}
	return func(t *testing.T) (string, string) {
		dir := t.TempDir()
		ip, jp := filepath.Join(dir, filepath.Base(img)), filepath.Join(dir, filepath.Base(js[0]))
		if err := os.WriteFile(ip, imgData, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(jp, jData, 0o644); err != nil {
			t.Fatal(err)
		}
		return ip, jp
	}, before
}

// TestUndoDamagedJournal: a byte flipped at several places of a fix's
// journal, or the journal cut at several lengths: undo exits 4, names the
// journal file and the damage, takes back only what the journal still
// describes whole, never modifies the journal, and leaves a volume every
// independent check calls consistent.
func TestUndoDamagedJournal(t *testing.T) {
	bin := buildBinary(t)
	copyFixed, before := fixedCopy(t, bin)
	_, jp := copyFixed(t)
	st, err := os.Stat(jp)
	if err != nil {
		t.Fatal(err)
	}
	size := st.Size()
	// Positions in the header, the first frames, the middle and the last
	// saved ranges; the last 100 bytes (plan and commit marks) are left to
	// the journal package's own tests (a cut there is a torn mark, which
	// loses nothing).
	n := 3
	if *long {
		n = 24
	}
	type damage struct {
		name string
		at   int64
		cut  bool
	}
	var cases []damage
	cases = append(cases, damage{"flip header", 20, false})
	for i := 1; i <= n; i++ {
		at := (size - 100) * int64(i) / int64(n+1)
		cases = append(cases, damage{fmt.Sprintf("flip at %d", at), at, false}, damage{fmt.Sprintf("cut at %d", at), at, true})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img, jp := copyFixed(t)
			if c.cut {
				if err := os.Truncate(jp, c.at); err != nil {
					t.Fatal(err)
				}
			} else {
				b, _ := os.ReadFile(jp)
				b[c.at] ^= 0x10
				os.WriteFile(jp, b, 0o644)
			}
			damaged, _ := os.ReadFile(jp)
			code, out := runBinary(t, bin, "undo", "--yes", "--journal", filepath.Dir(jp), img)
			if code != exitError {
				t.Errorf("undo: exit %d, want %d:\n%s", code, exitError, out)
			}
			if strings.Contains(flat(out), "nothing to undo") || !strings.Contains(flat(out), "JOURNAL DAMAGED: journal "+jp) {
				t.Errorf("undo does not report the damaged journal %s:\n%s", jp, out)
			}
			kinds := []string{"has a damaged header", "has damaged frames", "is cut short"}
			found := false
			for _, k := range kinds {
				found = found || strings.Contains(flat(out), k)
			}
			if !found || !strings.Contains(flat(out), "units seen are whole in it") || !strings.Contains(flat(out), "started writing") {
				t.Errorf("undo does not say what the damage is and what is known:\n%s", out)
			}
			if !strings.Contains(flat(out), "what to do: ") || !strings.Contains(flat(out), "--journal "+filepath.Dir(jp)+" "+img) {
				t.Errorf("the recovery hint does not carry --journal %s:\n%s", filepath.Dir(jp), out)
			}
			if now, _ := os.ReadFile(jp); string(now) != string(damaged) {
				t.Error("undo modified the damaged journal")
			}
			consistent(t, img, before)
		})
	}
}

// TestUndoTornCommitMark: a byte flipped in the journal's last frame (the
// commit mark, appended after the writes) cannot be told from a crash
// while appending it, and loses nothing: undo takes everything back (the
// image equals the original byte for byte), exits 0, and says in a note
// that the journal's last frame is damaged (JSON: the outcome's "note").
func TestUndoTornCommitMark(t *testing.T) {
	bin := buildBinary(t)
	img := testutil.TestImage(t, "broken-gpt.img")
	orig := testutil.SHA256File(t, img)
	jdir := t.TempDir()
	if code, out := runBinary(t, bin, "fix", "--yes", "--journal", jdir, img); code != exitOK {
		t.Fatalf("fix: exit %d\n%s", code, out)
	}
	js := journals(t, jdir)
	if len(js) != 1 {
		t.Fatalf("journals after fix: %v", js)
	}
	b, err := os.ReadFile(js[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-6] ^= 0x01 // inside the last frame's payload or CRC
	if err := os.WriteFile(js[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := runBinary(t, bin, "undo", "--yes", "--journal", jdir, img)
	if code != exitOK {
		t.Fatalf("undo: exit %d\n%s", code, out)
	}
	if !strings.Contains(flat(out), "note: the journal's last frame") || !strings.Contains(flat(out), "nothing of it is lost") {
		t.Errorf("undo does not report the damaged last frame:\n%s", out)
	}
	if got := testutil.SHA256File(t, img); got != orig {
		t.Error("undo did not give the original image back")
	}
}

// TestUndoJournalDeleted: the journal of a fix is deleted. Alone, it
// cannot be told from a volume never fixed: undo says there is nothing to
// undo in the directory it searched and that a fix whose journal was
// deleted cannot be undone (exit 0, nothing written). When a later change
// (mv) has a journal, the gap in the journals' numbers shows: undo takes
// the later change back and reports the fix's journal missing, exit 4.
func TestUndoJournalDeleted(t *testing.T) {
	bin := buildBinary(t)
	copyFixed, _ := fixedCopy(t, bin)

	t.Run("alone", func(t *testing.T) {
		img, jp := copyFixed(t)
		os.Remove(jp)
		sum := testutil.SHA256File(t, img)
		code, out := runBinary(t, bin, "undo", "--yes", img)
		if code != exitOK || !strings.Contains(flat(out), "nothing to undo: no journal of a fix not yet undone in "+filepath.Dir(img)) ||
			!strings.Contains(flat(out), "a fix whose journal was deleted cannot be undone") {
			t.Errorf("undo: exit %d\n%s", code, out)
		}
		if testutil.SHA256File(t, img) != sum {
			t.Error("undo without a journal changed the image")
		}
	})
	t.Run("gap", func(t *testing.T) {
		img, _ := copyFixed(t)
		dir := filepath.Dir(img)
		mv := func(from, to string) string {
			before := map[string]bool{}
			for _, j := range journals(t, dir) {
				before[j] = true
			}
			if code, out := runBinary(t, bin, "mv", "--yes", img, from, to); code != exitOK {
				t.Fatalf("mv: exit %d\n%s", code, out)
			}
			for _, j := range journals(t, dir) {
				if !before[j] {
					return j
				}
			}
			t.Fatal("mv left no journal")
			return ""
		}
		lost := mv(`Windows\System32\drivers\etc\hosts`, `Windows\System32\drivers\etc\hosts.moved`)
		mv(`Windows\System32\drivers\etc\hosts.moved`, `Windows\System32\drivers\etc\hosts.again`)
		os.Remove(lost)
		code, out := runBinary(t, bin, "undo", "--yes", img)
		if code != exitError || !strings.Contains(flat(out), "is missing") || !strings.Contains(flat(out), "JOURNAL DAMAGED") {
			t.Errorf("undo: exit %d, want %d with the missing journal:\n%s", code, exitError, out)
		}
		// The newest mv is taken back; the one whose journal is lost stays.
		names := flsNames(t, img)
		if !names["windows/system32/drivers/etc/hosts.moved"] || names["windows/system32/drivers/etc/hosts.again"] {
			t.Errorf("after undo: hosts.moved %v, hosts.again %v", names["windows/system32/drivers/etc/hosts.moved"], names["windows/system32/drivers/etc/hosts.again"])
		}
	})
}

// TestRegUndoDamagedJournal: reg set, a byte of its journal flipped, reg
// undo: reported with the file and the damage, exit 4; the same for a
// journal cut short. A damaged journal beside the hive is never skipped.
func TestRegUndoDamagedJournal(t *testing.T) {
	for _, cut := range []bool{false, true} {
		t.Run(fmt.Sprint("cut=", cut), func(t *testing.T) {
			path := regCopy(t, "hives/hivex/minimal", "NTUSER.DAT")
			if code, out, errs := runCmd("reg", "set", "--yes", path, `Software\Wuo`, "v", "REG_SZ", "hello"); code != exitOK {
				t.Fatalf("set: %d\n%s\n%s", code, out, errs)
			}
			js := journals(t, filepath.Dir(path))
			if len(js) != 1 {
				t.Fatalf("journals: %v", js)
			}
			b, _ := os.ReadFile(js[0])
			if cut {
				b = b[:len(b)/2]
			} else {
				b[len(b)/2] ^= 0x01
			}
			os.WriteFile(js[0], b, 0o644)
			code, out, errs := runCmd("reg", "undo", "--yes", path)
			if code != exitError || !strings.Contains(out+errs, js[0]) || !strings.Contains(out, "journal DAMAGED") {
				t.Errorf("reg undo: exit %d, want %d naming %s:\n%s\n%s", code, exitError, js[0], out, errs)
			}
			if code, out, _ := runCmd("reg", "check", path); code != exitOK {
				t.Errorf("reg check after undo: %d\n%s", code, out)
			}
		})
	}
}

// TestCheckReportsDamagedJournal: check, which picks the directories the
// newest journal touched, does not pass over a damaged journal: it names
// it with what to do (carrying --journal DIR) and exits 4.
func TestCheckReportsDamagedJournal(t *testing.T) {
	bin := buildBinary(t)
	copyFixed, _ := fixedCopy(t, bin)
	img, jp := copyFixed(t)
	b, _ := os.ReadFile(jp)
	b[len(b)/2] ^= 0x04
	os.WriteFile(jp, b, 0o644)
	code, out, errs := runCmd("check", "--journal", filepath.Dir(jp), img)
	if code != exitError || !strings.Contains(out, "journal DAMAGED: journal "+jp) || !strings.Contains(out, "--journal "+filepath.Dir(jp)) {
		t.Errorf("check: exit %d, want %d naming %s:\n%s\n%s", code, exitError, jp, out, errs)
	}
}

// flat undoes the wrapping of text output (80 columns): every run of
// spaces and line breaks becomes one space, for checks of whole phrases.
func flat(s string) string { return strings.Join(strings.Fields(s), " ") }
