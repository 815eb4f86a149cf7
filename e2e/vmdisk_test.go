package e2e

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// fixReport is the part of fix --json this test reads: the Windows volume's
// place in the file and the ranges the fix wrote, relative to the volume.
type fixReport struct {
	Volumes []struct {
		Offset int64 `json:"offset"`
		Size   int64 `json:"size"`
		Ranges []struct {
			Offset int64 `json:"offset"`
			Size   int64 `json:"size"`
		} `json:"ranges"`
	} `json:"volumes"`
}

// needVMTools skips (or fails in CI) without the independent tools and root.
func needVMTools(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t)
	for _, tool := range []string{"fls", "losetup", "ntfs-3g"} {
		testutil.RequireTool(t, tool)
	}
	return testutil.RequireTool(t, "qemu-img")
}

// fixIn runs fix --yes with a fresh journal directory on target and
// returns that directory and stdout; the exit must be 0.
func fixIn(t *testing.T, bin, target string, extra ...string) (string, []byte) {
	t.Helper()
	jdir := t.TempDir()
	r := run(t, nil, bin, append(append([]string{"fix", "--yes", "--journal", jdir}, extra...), target)...)
	if r.exit != 0 {
		t.Fatalf("fix %s: exit %d\n%s\n%s", target, r.exit, r.stdout, r.stderr)
	}
	return jdir, r.stdout
}

// TestVMDiskFixInPlace fixes the broken test disk inside qcow2, VHDX and
// dynamic VHD containers and checks each against the same disk fixed as raw,
// with tools that share no code with wuoffline.
func TestVMDiskFixInPlace(t *testing.T) {
	qemu := needVMTools(t)
	bin := binary(t, runtime.GOOS, runtime.GOARCH)
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig.img")
	testutil.Run(t, "cp", testutil.TestImage(t, "broken-gpt.img"), orig)
	raw := filepath.Join(dir, "raw.img")
	testutil.Run(t, "cp", orig, raw)
	_, out := fixIn(t, bin, raw, "--json")
	var rep fixReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("fix --json: %v\n%s", err, out)
	}
	// The Windows partition is the volume the fix wrote to.
	vi := -1
	for i, v := range rep.Volumes {
		if len(v.Ranges) > 0 {
			vi = i
		}
	}
	if vi < 0 {
		t.Fatalf("fix --json reports no written ranges:\n%s", out)
	}
	vol := rep.Volumes[vi]
	origB, rawB := readFile(t, orig), readFile(t, raw)
	touched := make([]bool, vol.Size)
	for _, r := range vol.Ranges {
		if r.Offset < 0 || r.Size <= 0 || r.Offset+r.Size > vol.Size {
			t.Fatalf("range %+v outside the volume (size %d)", r, vol.Size)
		}
		for i := r.Offset; i < r.Offset+r.Size; i++ {
			touched[i] = true
		}
	}

	for _, c := range []struct {
		name string
		args []string
		ext  string
		chk  bool
	}{
		{"qcow2", []string{"-O", "qcow2"}, "qcow2", true},
		{"vhdx-dynamic", []string{"-O", "vhdx", "-o", "subformat=dynamic"}, "vhdx", true},
		{"vpc-dynamic", []string{"-O", "vpc", "-o", "subformat=dynamic"}, "vhd", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := t.TempDir()
			ctr := filepath.Join(d, "disk."+c.ext)
			testutil.Run(t, qemu, append(append([]string{"convert"}, c.args...), orig, ctr)...)
			before := testutil.SHA256File(t, ctr)
			jdir, _ := fixIn(t, bin, ctr)
			if c.chk {
				testutil.Run(t, qemu, "check", ctr)
			}
			back := filepath.Join(d, "back.img")
			testutil.Run(t, qemu, "convert", "-O", "raw", ctr, back)
			backB := readFile(t, back)
			if int64(len(backB)) < vol.Offset+vol.Size {
				t.Fatalf("converted back: %d bytes, volume ends at %d", len(backB), vol.Offset+vol.Size)
			}
			// Every byte of the Windows partition: equal to the raw fix, or
			// (a time the fix stamped) inside a range the fix wrote; outside
			// those ranges, equal to the original.
			diff := 0
			for i := int64(0); i < vol.Size; i++ {
				o := vol.Offset + i
				if backB[o] == rawB[o] {
					if !touched[i] && backB[o] != origB[o] {
						t.Fatalf("byte %d changed outside the fix's ranges", o)
					}
					continue
				}
				if !touched[i] {
					t.Fatalf("byte %d differs from the raw fix outside the fix's ranges: %#x vs %#x", o, backB[o], rawB[o])
				}
				diff++
			}
			t.Logf("%d bytes differ from the raw fix, all inside the fix's ranges (times the fix stamped)", diff)
			if !bytes.Equal(backB[:vol.Offset], rawB[:vol.Offset]) {
				t.Errorf("bytes before the Windows partition differ from the raw fix")
			}

			fls := string(testutil.Run(t, "fls", "-r", "-o", strconv.FormatInt(vol.Offset/512, 10), back))
			if !strings.Contains(fls, "SoftwareDistribution.old") {
				t.Errorf("fls -r: no SoftwareDistribution.old")
			}
			statAll(t, back, vol.Offset, vol.Size)

			r := run(t, nil, bin, "undo", "--yes", "--journal", jdir, ctr)
			if r.exit != 0 {
				t.Fatalf("undo: exit %d\n%s\n%s", r.exit, r.stdout, r.stderr)
			}
			if got := testutil.SHA256File(t, ctr); got != before {
				t.Errorf("after undo sha256 %s, before fix %s", got, before)
			}
		})
	}
}

// TestVMDiskBackingFile fixes a qcow2 overlay: only the top file changes.
func TestVMDiskBackingFile(t *testing.T) {
	qemu := needVMTools(t)
	bin := binary(t, runtime.GOOS, runtime.GOARCH)
	dir := t.TempDir()
	base, top := filepath.Join(dir, "base.qcow2"), filepath.Join(dir, "top.qcow2")
	testutil.Run(t, qemu, "convert", "-O", "qcow2", testutil.TestImage(t, "broken-gpt.img"), base)
	testutil.Run(t, qemu, "create", "-f", "qcow2", "-b", base, "-F", "qcow2", top)
	baseSum, topSum := testutil.SHA256File(t, base), testutil.SHA256File(t, top)
	jdir, _ := fixIn(t, bin, top)
	if got := testutil.SHA256File(t, base); got != baseSum {
		t.Errorf("backing file changed: sha256 %s, was %s", got, baseSum)
	}
	if testutil.SHA256File(t, top) == topSum {
		t.Errorf("top file unchanged: the fix wrote nowhere visible")
	}
	testutil.Run(t, qemu, "check", top)
	r := run(t, nil, bin, "undo", "--yes", "--journal", jdir, top)
	if r.exit != 0 {
		t.Fatalf("undo: exit %d\n%s\n%s", r.exit, r.stdout, r.stderr)
	}
	if got := testutil.SHA256File(t, top); got != topSum {
		t.Errorf("after undo top sha256 %s, before fix %s", got, topSum)
	}
}

// statAll mounts the volume at off in img read-only with ntfs-3g (through a
// read-only loop device) and stats every name in it.
func statAll(t *testing.T, img string, off, size int64) {
	t.Helper()
	loop := strings.TrimSpace(string(testutil.Run(t, "losetup", "-f", "--show", "-r",
		"--offset", strconv.FormatInt(off, 10), "--sizelimit", strconv.FormatInt(size, 10), img)))
	defer exec.Command("losetup", "-d", loop).Run()
	mp, unmount := testutil.MountNTFS(t, loop, true)
	defer unmount()
	n := 0
	err := filepath.WalkDir(mp, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, err := os.Lstat(p); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatalf("ntfs-3g ro: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(mp, "Windows", "SoftwareDistribution.old")); err != nil {
		if _, err1 := os.Lstat(filepath.Join(mp, "Windows", "SoftwareDistribution.old.1")); err1 != nil {
			t.Errorf("ntfs-3g ro: %v", err)
		}
	}
	t.Logf("ntfs-3g ro: stat %d names", n)
}

// readFile reads a whole file or fails the test.
func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
