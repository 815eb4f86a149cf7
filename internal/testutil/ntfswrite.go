package testutil

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// MountNTFS mounts an NTFS image with ntfs-3g (read-only when readOnly;
// extra are more -o options) and returns the mount point and a function
// that unmounts it. ntfs-3g runs in the foreground so that unmount can
// wait for the process to exit: only then has it finished writing the
// image (a plain fusermount -u returns while the daemon may still be
// flushing). ntfs-3g's no_detach option keeps it in the foreground. The
// unmount also runs at cleanup.
func MountNTFS(t testing.TB, img string, readOnly bool, extra ...string) (string, func()) {
	t.Helper()
	RequireRoot(t)
	RequireTool(t, "ntfs-3g")
	mp, err := os.MkdirTemp("", "ntfsmnt")
	if err != nil {
		t.Fatal(err)
	}
	opts := "rw"
	if readOnly {
		opts = "ro"
	}
	if len(extra) > 0 {
		opts += "," + strings.Join(extra, ",")
	}
	cmd := exec.Command("ntfs-3g", "-o", opts+",no_detach", img, mp)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("ntfs-3g: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Wait until the mount appears (or ntfs-3g gives up).
	for !mounted(mp) {
		select {
		case err := <-exited:
			os.Remove(mp)
			t.Fatalf("ntfs-3g -o %s %s: %v\n%s", opts, img, err, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	done := false
	unmount := func() {
		if done {
			return
		}
		done = true
		for i := 0; ; i++ {
			out, err := exec.Command("fusermount", "-u", mp).CombinedOutput()
			if err == nil || !mounted(mp) {
				break
			}
			if i == 100 {
				t.Errorf("fusermount -u %s: %v %s", mp, err, out)
				exec.Command("umount", "-l", mp).Run()
				break
			}
			time.Sleep(50 * time.Millisecond) // busy: retry
		}
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			t.Errorf("ntfs-3g did not exit after unmounting %s", mp)
		}
		os.Remove(mp)
	}
	t.Cleanup(unmount)
	return mp, unmount
}

// mounted reports whether dir is a mount point (per /proc/self/mountinfo).
func mounted(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) > 4 && fs[4] == dir {
			return true
		}
	}
	return false
}
