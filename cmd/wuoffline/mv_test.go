package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
	"github.com/wuoffline/wuoffline/offline"
)

// ntTestVolume builds a bare NTFS volume with mkntfs and a few names made
// through an ntfs-3g mount.
func ntTestVolume(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkntfs")
	testutil.RequireTool(t, "ntfs-3g")
	img := filepath.Join(t.TempDir(), "vol.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 32<<20); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "mkntfs", "-F", "-Q", "-q", "-s", "512", "-c", "4096", img)
	mp, unmount := testutil.MountNTFS(t, img, false)
	defer unmount()
	if err := os.MkdirAll(filepath.Join(mp, "Windows", "Temp"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"hosts", "Program Files", "readme.txt"} {
		if err := os.WriteFile(filepath.Join(mp, "Windows", n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

func ntRun(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestLsMvCheck(t *testing.T) {
	img := ntTestVolume(t)
	orig, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := ntRun("ls", img, `Windows`)
	if code != exitOK || !strings.Contains(out, "Program Files") || !strings.Contains(out, "hosts") {
		t.Fatalf("ls: %d\n%s%s", code, out, errs)
	}
	if code, out, errs = ntRun("check", "--all", img); code != exitOK {
		t.Fatalf("check before: %d\n%s%s", code, out, errs)
	}
	// Refusals and usage errors write nothing.
	if code, _, _ = ntRun("mv", "--yes", img, "Windows/hosts", "Windows/readme.TXT"); code != exitUsage {
		t.Errorf("mv onto an existing name (other case): exit %d, want %d", code, exitUsage)
	}
	if code, _, _ = ntRun("mv", "--yes", img, "Windows", "Windows/Temp/W"); code == exitOK {
		t.Errorf("mv of a directory into itself succeeded")
	}
	if code, out, _ = ntRun("mv", "--dry-run", img, "Windows/hosts", "hosts.bak"); code != exitOK || !strings.Contains(out, "ranges") {
		t.Errorf("mv --dry-run: %d %s", code, out)
	}
	if now, _ := os.ReadFile(img); !bytes.Equal(now, orig) {
		t.Fatal("refused or dry-run mv changed the image")
	}
	code, out, errs = ntRun("mv", "--yes", img, `Windows\hosts`, "Windows/Temp/hosts.old")
	if code != exitOK {
		t.Fatalf("mv: %d\n%s%s", code, out, errs)
	}
	if code, out, errs = ntRun("check", img, "Windows", "Windows/Temp"); code != exitOK {
		t.Fatalf("check after: %d\n%s%s", code, out, errs)
	}
	if _, out, _ = ntRun("ls", img, "Windows/Temp"); !strings.Contains(out, "hosts.old") {
		t.Errorf("ls after mv:\n%s", out)
	}
	fls := string(testutil.Run(t, "fls", "-r", "-p", img))
	if !strings.Contains(fls, "Windows/Temp/hosts.old") || strings.Contains(fls, "Windows/hosts\n") {
		t.Errorf("fls after mv:\n%s", fls)
	}
	// The journal beside the image takes the rename back byte for byte,
	// through the same undo as fix.
	if js, _ := filepath.Glob(img + ".wuoffline-*.journal"); len(js) != 1 {
		t.Fatalf("journals beside the image: %v", js)
	}
	if code, out, errs = ntRun("undo", "--yes", img); code != exitOK {
		t.Fatalf("undo: %d\n%s%s", code, out, errs)
	}
	if cur, _ := os.ReadFile(img); !bytes.Equal(cur, orig) {
		t.Error("undo after mv does not give the original image back")
	}
}

// TestLsMvDisk: on a whole GPT disk the Windows volume is chosen without
// --partition; a partition that is not NTFS is refused; mv and check work
// through the partition table.
func TestLsMvDisk(t *testing.T) {
	img := testutil.TestImage(t, "healthy-gpt.img")
	code, out, errs := ntRun("ls", img, "Windows/System32")
	if code != exitOK || !strings.Contains(out, "config") {
		t.Fatalf("ls: %d\n%s%s", code, out, errs)
	}
	if code, _, errs = ntRun("ls", "--partition", "1", img); code == exitOK {
		t.Errorf("ls on the EFI partition succeeded: %s", errs)
	}
	if code, out, errs = ntRun("mv", "--yes", img, `Windows\System32\drivers\etc\hosts`, `Windows\System32\drivers\etc\hosts.wuoffline-test`); code != exitOK {
		t.Fatalf("mv: %d\n%s%s", code, out, errs)
	}
	if code, out, errs = ntRun("check", "--all", img); code != exitOK {
		t.Fatalf("check --all: %d\n%s%s", code, out, errs)
	}
	if _, out, _ = ntRun("ls", img, "Windows/System32/drivers/etc"); !strings.Contains(out, "hosts.wuoffline-test") {
		t.Errorf("ls after mv:\n%s", out)
	}
}

// TestMvRefusesInterruptedFix: after a fix stopped half-way, mv must refuse
// (exit 3, nothing written) and say how to roll back or finish.
func TestMvRefusesInterruptedFix(t *testing.T) {
	img := testutil.TestImage(t, "broken-gpt.img")
	rep := offline.FixTarget(img, offline.FixOptions{WrapWriter: func(w io.WriterAt) io.WriterAt {
		return testutil.NewFaultWriter(w, 2, testutil.FaultError)
	}})
	if rep.State == offline.FixDone {
		t.Fatal("fix with a writer failing after 2 writes reported done")
	}
	before := testutil.SHA256File(t, img)
	var out, errb bytes.Buffer
	code := run([]string{"mv", "--yes", img, `Windows\System32\catroot2`, `Windows\System32\catroot2.x`}, &out, &errb)
	if code != exitRefused || !strings.Contains(errb.String(), "undo") {
		t.Fatalf("mv after an interrupted fix: exit %d, stderr %q; want exit 3 naming undo", code, errb.String())
	}
	if after := testutil.SHA256File(t, img); after != before {
		t.Fatal("mv changed the image although it refused")
	}
}
