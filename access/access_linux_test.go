//go:build linux

package access

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// needLoop skips (or fails in CI) unless loop devices can be attached.
func needLoop(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "losetup")
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		testutil.Unavailable(t, "no loop device support (/dev/loop-control: %v)", err)
	}
}

// attach attaches path to a free loop device with extra losetup options and
// detaches it at cleanup.
func attach(t *testing.T, path string, opts ...string) string {
	t.Helper()
	args := append(append([]string{"-f", "--show"}, opts...), path)
	loop := strings.TrimSpace(string(testutil.Run(t, "losetup", args...)))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	return loop
}

// scratch writes a file of n bytes with a recognisable pattern.
func scratch(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// wantInUse asserts that an Exclusive open of path is refused as in use,
// naming want among the users, and that nothing was written.
func wantInUse(t *testing.T, path, file, want string) {
	t.Helper()
	sum := testutil.SHA256File(t, file)
	f, err := Open(path, Exclusive)
	if err == nil {
		f.Close()
		t.Fatalf("Open(%s, Exclusive) succeeded; want it refused as in use (%s)", path, want)
	}
	var iu *InUseError
	if !errors.As(err, &iu) {
		t.Fatalf("Open(%s, Exclusive): %v; want *InUseError", path, err)
	}
	t.Logf("Open(%s, Exclusive): %v", path, err)
	if !strings.Contains(strings.Join(iu.Users, "\n"), want) {
		t.Errorf("Open(%s, Exclusive): users %q do not mention %q", path, iu.Users, want)
	}
	if u, err := InUse(path); err != nil || len(u) == 0 {
		t.Errorf("InUse(%s) = %q, %v; want the same users", path, u, err)
	}
	if testutil.SHA256File(t, file) != sum {
		t.Fatalf("a refused open changed %s", file)
	}
}

// TestFileExclusive: an image file opened Exclusive is readable, writable,
// growable and truncatable, locked against a second Exclusive open (a
// second wuoffline) but not against readers, and free again after Close.
func TestFileExclusive(t *testing.T) {
	p := scratch(t, 1<<20)
	f, err := Open(p, Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	if f.Device() || f.Size() != 1<<20 || f.SectorSize() != 0 || f.Path() != p {
		t.Errorf("file: device %v size %d sector %d path %q", f.Device(), f.Size(), f.SectorSize(), f.Path())
	}
	if _, err := Open(p, Exclusive); !errors.Is(err, ErrLocked) {
		t.Errorf("second Exclusive open: %v; want ErrLocked", err)
	}
	r, err := Open(p, Read)
	if err != nil {
		t.Fatalf("a reader beside the Exclusive open: %v", err)
	}
	if _, err := r.WriteAt([]byte{1}, 0); err == nil {
		t.Error("WriteAt on a Read open succeeded")
	}
	if err := r.Truncate(0); err == nil {
		t.Error("Truncate on a Read open succeeded")
	}
	r.Close()
	if _, err := f.WriteAt([]byte("grow"), 1<<20); err != nil || f.Size() != 1<<20+4 {
		t.Errorf("growing write: %v, size %d", err, f.Size())
	}
	if err := f.DropCache(); err != nil {
		t.Errorf("DropCache: %v", err)
	}
	if err := f.Truncate(1 << 20); err != nil || f.Size() != 1<<20 {
		t.Errorf("Truncate: %v, size %d", err, f.Size())
	}
	if st, _ := os.Stat(p); st.Size() != 1<<20 {
		t.Errorf("file size after Truncate: %d", st.Size())
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := f.ReadAt(make([]byte, 1), 0); err == nil {
		t.Error("ReadAt after Close succeeded")
	}
	g, err := Open(p, Exclusive)
	if err != nil {
		t.Fatalf("Exclusive open after Close: %v", err)
	}
	g.Close()
}

// TestLockDir: a target's journals in a directory are locked once at a
// time; another target's journals in the same directory are not held up
// (a fleet of disks sharing one --journal DIR).
func TestLockDir(t *testing.T) {
	dir := t.TempDir()
	release, err := LockDir(dir, "/dev/sdz")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDir(dir, "/dev/sdz"); !errors.Is(err, ErrLocked) {
		t.Errorf("second LockDir: %v; want ErrLocked", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("LockDir created %v in the journal directory", ents)
	}
	other, err := LockDir(dir, "/dev/sdy")
	if err != nil {
		t.Fatalf("another target's lock in the same directory: %v", err)
	}
	other()
	if err := release(); err != nil {
		t.Fatal(err)
	}
	again, err := LockDir(dir, "/dev/sdz")
	if err != nil {
		t.Fatalf("LockDir after release: %v", err)
	}
	again()
	if _, err := LockDir(filepath.Join(dir, "missing"), "/dev/sdz"); err == nil {
		t.Error("LockDir of a missing directory succeeded")
	}
}

// TestOpenRefusesNonTargets: directories, character devices and missing
// paths are named as such.
func TestOpenRefusesNonTargets(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{t.TempDir(), "is a directory"},
		{"/dev/null", "character device"},
		{filepath.Join(t.TempDir(), "nope"), "does not exist"},
		{"", "no target"},
	} {
		for _, m := range []Mode{Read, Exclusive} {
			if _, err := Open(tc.path, m); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open(%q, %d): %v; want %q", tc.path, m, err, tc.want)
			}
		}
	}
}

// TestReadOnlyFile: an immutable file and a file on a read-only mount are
// ErrReadOnly for Exclusive and readable for Read.
func TestReadOnlyFile(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "chattr")
	p := scratch(t, 4096)
	testutil.Run(t, "chattr", "+i", p)
	t.Cleanup(func() { exec.Command("chattr", "-i", p).Run() })
	if _, err := Open(p, Exclusive); !errors.Is(err, ErrReadOnly) {
		t.Errorf("immutable file: %v; want ErrReadOnly", err)
	}
	if f, err := Open(p, Read); err != nil {
		t.Errorf("immutable file, Read: %v", err)
	} else {
		f.Close()
	}
	testutil.Run(t, "chattr", "-i", p)

	// Mode 0444: root could open it for writing; it is refused all the same.
	if err := os.Chmod(p, 0o444); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(p, Exclusive); !errors.Is(err, ErrReadOnly) {
		t.Errorf("file mode 0444: %v; want ErrReadOnly", err)
	}
	if f, err := Open(p, Read); err != nil {
		t.Errorf("file mode 0444, Read: %v", err)
	} else {
		f.Close()
	}

	mp := t.TempDir()
	testutil.Run(t, "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mp)
	t.Cleanup(func() { exec.Command("umount", mp).Run() })
	q := filepath.Join(mp, "disk.img")
	if err := os.WriteFile(q, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "mount", "-o", "remount,ro", mp)
	if _, err := Open(q, Exclusive); !errors.Is(err, ErrReadOnly) {
		t.Errorf("file on a read-only mount: %v; want ErrReadOnly", err)
	}
}

// TestReadOnlyLoop: a loop device attached with `losetup -r` is
// ErrReadOnly (BLKROGET), found before anything else is tried.
func TestReadOnlyLoop(t *testing.T) {
	needLoop(t)
	p := scratch(t, 1<<20)
	sum := testutil.SHA256File(t, p)
	loop := attach(t, p, "-r")
	if _, err := Open(loop, Exclusive); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("losetup -r device: %v; want ErrReadOnly", err)
	}
	f, err := Open(loop, Read)
	if err != nil {
		t.Fatalf("losetup -r device, Read: %v", err)
	}
	defer f.Close()
	if !f.Device() || f.Size() != 1<<20 || f.SectorSize() != 512 {
		t.Errorf("loop device: device %v size %d sector %d", f.Device(), f.Size(), f.SectorSize())
	}
	if testutil.SHA256File(t, p) != sum {
		t.Fatal("the read-only device's file changed")
	}
}

// TestLoopExclusive: a loop device opened Exclusive is written through to
// its file; a second Exclusive open is ErrLocked; a mount of it is refused
// by the kernel while we hold it (O_EXCL), and the file under it is in use.
func TestLoopExclusive(t *testing.T) {
	needLoop(t)
	p := scratch(t, 1<<20)
	loop := attach(t, p)
	f, err := Open(loop, Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(loop, Exclusive); !errors.Is(err, ErrLocked) {
		t.Errorf("second Exclusive open of %s: %v; want ErrLocked", loop, err)
	}
	if _, err := f.WriteAt([]byte("wuoffline"), 4096); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("x"), 1<<20); err == nil {
		t.Error("a write past the device's end succeeded")
	}
	if err := f.Truncate(10); err == nil {
		t.Error("Truncate of a device succeeded")
	}
	if err := f.DropCache(); err != nil {
		t.Fatalf("DropCache: %v", err)
	}
	// The kernel refuses anyone else's claim (a mount claims the same way)
	// while O_EXCL holds the device.
	if fd, err := unix.Open(loop, unix.O_RDONLY|unix.O_EXCL, 0); err == nil {
		unix.Close(fd)
		t.Errorf("an O_EXCL open of %s succeeded while it was held exclusively", loop)
	} else if !errors.Is(err, unix.EBUSY) {
		t.Errorf("O_EXCL open of a held device: %v; want EBUSY", err)
	}
	f.Close()
	b, _ := os.ReadFile(p)
	if string(b[4096:4105]) != "wuoffline" {
		t.Errorf("the write did not reach the file: %q", b[4096:4105])
	}
	wantInUse(t, p, p, "/dev/"+filepath.Base(loop)+" is a loop device over the same file")

	// Held by someone the in-use search cannot see (here: this process, which
	// the search leaves out), the kernel's EBUSY still refuses.
	fd, err := unix.Open(loop, unix.O_RDONLY|unix.O_EXCL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var iu *InUseError
	if g, err := Open(loop, Exclusive); !errors.As(err, &iu) || !strings.Contains(iu.Error(), "EBUSY") {
		if err == nil {
			g.Close()
		}
		t.Errorf("Open of a device another opener holds with O_EXCL: %v; want *InUseError (EBUSY)", err)
	}
}

// TestPartitionMountedThroughSecondLoop: the disk image attached whole to one
// loop device while its Windows partition is mounted (ntfs-3g) through a
// second loop device over the same file: the whole-disk device, the file
// and a hard link to it are all in use.
func TestPartitionMountedThroughSecondLoop(t *testing.T) {
	needLoop(t)
	img := testutil.TestImage(t, "broken-gpt.img")
	whole := attach(t, img)
	// Partition 3 (Basic data, the Windows volume) starts at sector 108544
	// and ends at 305151 (testimages/build.sh).
	part := attach(t, img, "--offset", strconv.Itoa(108544*512), "--sizelimit", strconv.Itoa((305151-108544+1)*512))
	mp, unmount := testutil.MountNTFS(t, part, true)
	link := filepath.Join(filepath.Dir(img), "hardlink.img")
	if err := os.Link(img, link); err != nil {
		t.Fatal(err)
	}
	want := "/dev/" + filepath.Base(part) + " mounted on " + mp
	wantInUse(t, whole, img, want)
	wantInUse(t, img, img, want)
	wantInUse(t, link, img, want)
	wantInUse(t, part, img, want)
	unmount()
	// Unmounted, the second loop device still reaches the same bytes.
	wantInUse(t, whole, img, "/dev/"+filepath.Base(part)+" is a loop device over the same file")
}

// TestHardLinkToMountedImage: a bare volume image mounted directly by
// ntfs-3g (a FUSE mount whose source is a path) is found through a hard
// link, by inode, not by name.
func TestHardLinkToMountedImage(t *testing.T) {
	testutil.RequireRoot(t)
	img := testutil.TestImage(t, "broken-volume.img")
	link := filepath.Join(t.TempDir(), "other-name.img")
	if err := os.Link(img, link); err != nil {
		testutil.Unavailable(t, "cannot hard-link the test image: %v", err)
	}
	mp, _ := testutil.MountNTFS(t, img, true)
	wantInUse(t, link, img, "mounted on "+mp)
}

// TestWriterProcess: another process holding the image open for writing
// (a running VM, dd) makes it in use; a reader does not.
func TestWriterProcess(t *testing.T) {
	testutil.RequireTool(t, "bash")
	p := scratch(t, 4096)
	for _, tc := range []struct {
		redirect string
		inUse    bool
	}{{"3<", false}, {"3<>", true}} {
		cmd := exec.Command("bash", "-c", `exec `+tc.redirect+`"$1"; echo ready; exec cat`, "bash", p)
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if ln, _ := bufio.NewReader(stdout).ReadString('\n'); ln != "ready\n" {
			t.Fatalf("helper: %q", ln)
		}
		f, err := Open(p, Exclusive)
		var iu *InUseError
		switch {
		case tc.inUse && !errors.As(err, &iu):
			t.Errorf("open for writing by pid %d: %v; want *InUseError", cmd.Process.Pid, err)
		case tc.inUse && !strings.Contains(iu.Error(), "process "+strconv.Itoa(cmd.Process.Pid)):
			t.Errorf("users %q do not name pid %d", iu.Users, cmd.Process.Pid)
		case !tc.inUse && err != nil:
			t.Errorf("a reader made the image unusable: %v", err)
		}
		if err == nil {
			f.Close()
		}
		stdin.Close()
		cmd.Wait()
	}
}

// TestUnescape: mountinfo's octal escapes.
func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/mnt/a\040b`: "/mnt/a b",
		`/x\134y`:     `/x\y`,
		`/plain`:      "/plain",
		`/end\04`:     `/end\04`,
		`/t\011`:      "/t\t",
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestKernelMountThroughSecondLoop: as the ntfs-3g case, with a kernel
// mount (ext4), which /proc/self/mountinfo names by the device's own
// major:minor.
func TestKernelMountThroughSecondLoop(t *testing.T) {
	needLoop(t)
	testutil.RequireTool(t, "mkfs.ext4")
	p := scratch(t, 48<<20)
	whole := attach(t, p)
	part := attach(t, p, "--offset", strconv.Itoa(1<<20), "--sizelimit", strconv.Itoa(32<<20))
	testutil.Run(t, "mkfs.ext4", "-q", part)
	mp := t.TempDir()
	if out, err := exec.Command("mount", "-t", "ext4", part, mp).CombinedOutput(); err != nil {
		testutil.Unavailable(t, "kernel mount of ext4 on %s: %v %s", part, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mp).Run() })
	want := "/dev/" + filepath.Base(part) + " mounted on " + mp + " (ext4)"
	wantInUse(t, whole, p, want)
	wantInUse(t, part, p, want)
	link := filepath.Join(t.TempDir(), "link.img")
	if os.Link(p, link) == nil {
		wantInUse(t, link, p, want)
	}
}

// TestLockedByAnotherProcess: a lock another process holds (flock(1), as a
// second wuoffline would) makes an Exclusive open ErrLocked, for a file
// and for a loop device's node.
func TestLockedByAnotherProcess(t *testing.T) {
	flockTool := testutil.RequireTool(t, "flock")
	p := scratch(t, 1<<20)
	targets := []string{p}
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("losetup"); err == nil {
			targets = append(targets, attach(t, scratch(t, 1<<20)))
		}
	}
	for _, target := range targets {
		cmd := exec.Command(flockTool, "-n", target, "-c", "echo locked; exec cat")
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if ln, _ := bufio.NewReader(stdout).ReadString('\n'); ln != "locked\n" {
			t.Fatalf("flock %s: %q", target, ln)
		}
		if f, err := Open(target, Exclusive); !errors.Is(err, ErrLocked) {
			if err == nil {
				f.Close()
			}
			t.Errorf("Open(%s, Exclusive) while another process holds the lock: %v; want ErrLocked", target, err)
		}
		stdin.Close()
		cmd.Wait()
		f, err := Open(target, Exclusive)
		if err != nil {
			t.Errorf("Open(%s, Exclusive) after the other process ended: %v", target, err)
		} else {
			f.Close()
		}
	}
}

// TestLoopOverRenamedFile: the kernel's record of a loop device's backing
// file is its device and inode (LOOP_GET_STATUS64), so the file is found
// after a rename, when sysfs's backing_file names a path that no longer
// exists.
func TestLoopOverRenamedFile(t *testing.T) {
	needLoop(t)
	p := scratch(t, 1<<20)
	loop := attach(t, p)
	moved := p + ".moved"
	if err := os.Rename(p, moved); err != nil {
		t.Fatal(err)
	}
	wantInUse(t, moved, moved, "/dev/"+filepath.Base(loop)+" is a loop device over the same file")
}
