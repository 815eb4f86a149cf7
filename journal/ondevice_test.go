package journal

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

func TestDriveLetter(t *testing.T) {
	for in, want := range map[string]string{
		"D:": "D:", `d:\`: "D:", `\\.\E:`: "E:", `\\?\z:`: "Z:", "//./C:": "C:",
		"/dev/sdb": "", `\\.\PhysicalDrive0`: "", "1:": "", "disk.img": "", "": "",
	} {
		if got := driveLetter(in); got != want {
			t.Errorf("driveLetter(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOnDeviceImageFile(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	os.WriteFile(img, make([]byte, 512), 0o600)
	if on, err := OnDevice(dir, img); err != nil || on {
		t.Fatalf("OnDevice(beside an image) = %v, %v; want false", on, err)
	}
	if _, err := OnDevice(dir, filepath.Join(dir, "missing")); err == nil && runtime.GOOS == "linux" {
		t.Error("OnDevice of a missing target succeeded")
	}
}

// TestOnDeviceLoop mounts a loop device holding ext4 (built by mkfs.ext4,
// mounted by the kernel) and asks whether a directory in it is on that
// device (yes) and whether the test's temp dir is (no).
func TestOnDeviceLoop(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("block devices are a Linux matter here")
	}
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "losetup")
	testutil.RequireTool(t, "mkfs.ext4")
	dir := t.TempDir()
	img := filepath.Join(dir, "fs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 8<<20); err != nil {
		t.Fatal(err)
	}
	loop := strings.TrimSpace(string(testutil.Run(t, "losetup", "-f", "--show", img)))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	testutil.Run(t, "mkfs.ext4", "-q", loop)
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o700)
	if out, err := exec.Command("mount", loop, mnt).CombinedOutput(); err != nil {
		testutil.Unavailable(t, "mount %s: %v: %s", loop, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	sub := filepath.Join(mnt, "journals")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if on, err := OnDevice(sub, loop); err != nil || !on {
		t.Errorf("OnDevice(dir on %s) = %v, %v; want true", loop, on, err)
	}
	if on, err := OnDevice(dir, loop); err != nil || on {
		t.Errorf("OnDevice(temp dir, %s) = %v, %v; want false", loop, on, err)
	}
}
