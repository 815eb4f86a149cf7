package offline

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/image"
	"github.com/wuoffline/wuoffline/internal/testutil"
)

// extractTree unpacks a testimages tree (tar.gz) into a new directory.
func fixExtractTree(t testing.TB, name string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(testutil.RepoRoot(t), "testimages", "data", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "win")
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, root) {
			t.Fatalf("tar member %q escapes", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			out, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, tr); err != nil {
				t.Fatal(err)
			}
			out.Close()
		}
	}
	return root
}

// treeState is every path of a tree with its content hash ("dir" for
// directories).
func treeState(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			out[rel] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		out[rel] = hex.EncodeToString(s[:])
		return nil
	})
	return out
}

func diffStates(a, b map[string]string) []string {
	var d []string
	for k, v := range a {
		if b[k] != v {
			d = append(d, fmt.Sprintf("%s: %.12s -> %.12s", k, v, b[k]))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, "new: "+k)
		}
	}
	sort.Strings(d)
	return d
}

// TestFixDirectoryTree fixes a plain directory laid out like a Windows
// volume with the operating system's calls, and undo returns every name
// and every file's content.
func TestFixDirectoryTree(t *testing.T) {
	root := fixExtractTree(t, "broken-tree.tar.gz")
	before := treeState(t, root)
	if dry := FixTarget(root, FixOptions{DryRun: true}); dry.State != FixPlanned || len(diffStates(before, treeState(t, root))) != 0 {
		t.Fatalf("dry run: %s %s, or it changed the tree", dry.State, dry.Error)
	}
	rep := FixTarget(root, FixOptions{Now: fixedNow})
	if rep.State != FixDone || rep.Exit != ExitOK || !rep.Volumes[0].Verify.OK {
		t.Fatalf("fix: %s exit %d %s %+v", rep.State, rep.Exit, rep.Error, rep.Volumes)
	}
	after := treeState(t, root)
	for _, want := range []string{"Windows/SoftwareDistribution.old.1", "Windows/System32/catroot2.old", "Windows/WinSxS/pending.xml.old"} {
		if _, ok := after[filepath.FromSlash(want)]; !ok {
			t.Errorf("%s missing after fix", want)
		}
	}
	if p := defaultProblems(DiagnoseTarget(root, Options{})); len(p) > 0 {
		t.Errorf("diagnose after fix: %v", p)
	}
	if again := FixTarget(root, FixOptions{}); again.State != FixNothing {
		t.Errorf("second fix: %s", again.State)
	}
	u := UndoTarget(root, UndoOptions{})
	if u.Exit != ExitOK || len(u.Journals) != 1 || !u.Journals[0].Complete {
		t.Fatalf("undo: %+v", u)
	}
	if d := diffStates(before, treeState(t, root)); len(d) > 0 {
		t.Fatalf("undo left differences: %v", d)
	}
}

// TestFixDirectoryFUSE fixes the broken disk's Windows volume through an
// ntfs-3g read-write mount (the operating system's calls), and compares
// the end state with the raw-volume fix of another copy: the same check
// statuses, the same registry (hivexregedit exports of the hives taken
// out with icat) and the same hosts file.
func TestFixDirectoryFUSE(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tool := range []string{"ntfs-3g", "losetup", "ifind", "icat", "hivexregedit"} {
		testutil.RequireTool(t, tool)
	}
	rawImg := testutil.TestImage(t, "broken-gpt.img")
	dirImg := testutil.TestImage(t, "broken-gpt.img")
	tg, err := image.Open(dirImg, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var vol image.Volume
	for _, v := range tg.Volumes {
		if v.Index == 3 {
			vol = v
		}
	}
	tg.Close()

	if rep := FixTarget(rawImg, FixOptions{Now: fixedNow}); rep.State != FixDone {
		t.Fatalf("raw fix: %s %s", rep.State, rep.Error)
	}

	loop := strings.TrimSpace(string(testutil.Run(t, "losetup", "-f", "--show", "-o", fmt.Sprint(vol.Offset), "--sizelimit", fmt.Sprint(vol.Size), dirImg)))
	detached := false
	detach := func() {
		if !detached {
			exec.Command("losetup", "-d", loop).Run()
			detached = true
		}
	}
	t.Cleanup(detach)
	mnt := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(mnt, 0o755)
	testutil.Run(t, "ntfs-3g", loop, mnt)
	mounted := true
	unmount := func() {
		if mounted {
			if err := exec.Command("fusermount", "-u", mnt).Run(); err != nil {
				exec.Command("umount", mnt).Run()
			}
			mounted = false
		}
	}
	t.Cleanup(unmount)
	rep := FixTarget(mnt, FixOptions{Now: fixedNow, JournalDir: t.TempDir()})
	if rep.State != FixDone || rep.Exit != ExitOK {
		t.Fatalf("fix through ntfs-3g: %s exit %d %s", rep.State, rep.Exit, rep.Error)
	}
	unmount()
	detach()

	statuses := func(img string) map[string]Status {
		m := map[string]Status{}
		for _, in := range DiagnoseTarget(img, Options{}).Installations {
			for _, c := range in.Checks {
				m[c.ID] = c.Status
			}
		}
		return m
	}
	if a, b := statuses(rawImg), statuses(dirImg); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("check statuses differ:\nraw %v\ndir %v", a, b)
	}
	sect := fmt.Sprint(vol.Offset / 512)
	icatPath := func(img, p string) []byte {
		out := testutil.Run(t, "ifind", "-o", sect, "-n", p, img)
		return testutil.Run(t, "icat", "-o", sect, img, strings.TrimSpace(string(out)))
	}
	dir := t.TempDir()
	for _, h := range []string{"SYSTEM", "SOFTWARE", "COMPONENTS"} {
		var exports []string
		for i, img := range []string{rawImg, dirImg} {
			f := filepath.Join(dir, fmt.Sprintf("%s-%d", h, i))
			os.WriteFile(f, icatPath(img, "/Windows/System32/config/"+h), 0o644)
			exports = append(exports, string(testutil.Run(t, "hivexregedit", "--export", f, `\`)))
		}
		if exports[0] != exports[1] {
			t.Errorf("%s: the registry differs between the raw and the mounted fix", h)
		}
	}
	if a, b := icatPath(rawImg, "/Windows/System32/drivers/etc/hosts"), icatPath(dirImg, "/Windows/System32/drivers/etc/hosts"); string(a) != string(b) {
		t.Errorf("hosts differs:\n%s\n---\n%s", a, b)
	}
}

// TestFixDirectoryCrash stops a directory fix before each of its changes:
// the half-made fix is seen by FindInterrupted, fix run again rolls it back
// and fixes again, and undo then returns every name and content. CI runs
// a spread of k; -long runs every k.
func TestFixDirectoryCrash(t *testing.T) {
	root := fixExtractTree(t, "broken-tree.tar.gz")
	before := treeState(t, root)
	steps := 0
	rep := FixTarget(root, FixOptions{dirFault: func(int) error { steps++; return nil }})
	if rep.State != FixDone {
		t.Fatalf("fix: %s %s", rep.State, rep.Error)
	}
	if u := UndoTarget(root, UndoOptions{}); u.Exit != ExitOK {
		t.Fatalf("undo: %+v", u)
	}
	ks := []int{0, 1, steps / 2, steps - 1} // -long: every k
	if *fixLong {
		ks = ks[:0]
		for k := 0; k < steps; k++ {
			ks = append(ks, k)
		}
	}
	for _, k := range ks {
		rep := FixTarget(root, FixOptions{dirFault: func(s int) error {
			if s == k {
				return testutil.ErrInjected
			}
			return nil
		}})
		if rep.State != FixFailed || rep.Exit != ExitError {
			t.Fatalf("k=%d: %s exit %d", k, rep.State, rep.Exit)
		}
		if intr, _ := FindInterrupted(root, ""); len(intr) != 1 {
			t.Fatalf("k=%d: interrupted: %v", k, intr)
		}
		again := FixTarget(root, FixOptions{})
		if again.State != FixDone || again.Exit != ExitOK || len(again.Resumed) != 1 || !again.Resumed[0].Complete {
			t.Fatalf("k=%d: fix again: %s exit %d %+v %s", k, again.State, again.Exit, again.Resumed, again.Error)
		}
		if p := defaultProblems(DiagnoseTarget(root, Options{})); len(p) > 0 {
			t.Fatalf("k=%d: after fix: %v", k, p)
		}
		if u := UndoTarget(root, UndoOptions{}); u.Exit != ExitOK {
			t.Fatalf("k=%d: undo: %+v", k, u)
		}
		if d := diffStates(before, treeState(t, root)); len(d) > 0 {
			t.Fatalf("k=%d: undo left differences: %v", k, d)
		}
	}
	t.Logf("%d directory changes, a crash before each tested", steps)
}
