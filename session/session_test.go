package session

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// refusalIDs returns the ids of a *RefusedError ("" when err is not one).
func refusalIDs(err error) string {
	var re *RefusedError
	if !errors.As(err, &re) {
		return ""
	}
	var ids []string
	for _, r := range re.Refusals {
		ids = append(ids, r.ID)
	}
	return strings.Join(ids, ",")
}

// emptyDir fails the test when dir holds any file (a journal).
func emptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".journal") {
			t.Errorf("journal %s created", e.Name())
		}
	}
}

// TestOpenExclusive: a second writer of one image is refused while the
// first holds it (same process: flock is per open file), and admitted once
// it is closed.
func TestOpenExclusive(t *testing.T) {
	img := testutil.TestImage(t, "broken-gpt.img")
	s, err := Open(img, Options{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(img, Options{Write: true})
	if ids := refusalIDs(err); ids != "locked" || !strings.Contains(err.Error(), "in use by another wuoffline") {
		t.Fatalf("second writer: %v (refusals %q)", err, ids)
	}
	// Reading stays possible (diagnose while a fix runs).
	r, err := Open(img, Options{})
	if err != nil {
		t.Fatalf("reader beside the writer: %v", err)
	}
	r.Close()
	s.Close()
	s2, err := Open(img, Options{Write: true})
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	s2.Close()
}

// TestOpenReadOnlyFile: an image without write permission is refused
// before any journal exists; a dry run of it is allowed.
func TestOpenReadOnlyFile(t *testing.T) {
	img := testutil.TestImage(t, "broken-gpt.img")
	if err := os.Chmod(img, 0o444); err != nil {
		t.Fatal(err)
	}
	sum := testutil.SHA256File(t, img)
	_, err := Open(img, Options{Write: true})
	if ids := refusalIDs(err); ids != "read-only" {
		t.Fatalf("read-only image: %v (refusals %q)", err, ids)
	}
	s, err := Open(img, Options{DryRun: true})
	if err != nil {
		t.Fatalf("dry run of a read-only image: %v", err)
	}
	if len(s.Refusals()) != 0 {
		t.Errorf("dry run refusals %+v", s.Refusals())
	}
	s.Close()
	emptyDir(t, filepath.Dir(img))
	if testutil.SHA256File(t, img) != sum {
		t.Error("image changed")
	}
}

// losetup attaches a loop device and detaches it at cleanup.
func losetup(t *testing.T, args ...string) string {
	t.Helper()
	dev := strings.TrimSpace(string(testutil.Run(t, "losetup", append([]string{"-f", "--show"}, args...)...)))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}

// TestOpenDevices: a read-only loop device is refused as read-only (no
// journal); an image file attached to a loop device is in use, by any
// name (a hard link too); a whole-disk loop device whose partition is
// mounted through a second loop device over the same file is in use.
func TestOpenDevices(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "losetup")
	img := testutil.TestImage(t, "broken-gpt.img")
	jdir := t.TempDir()

	ro := losetup(t, "-r", img)
	_, err := Open(ro, Options{Write: true, JournalDir: jdir})
	if ids := refusalIDs(err); ids != "read-only" {
		t.Fatalf("losetup -r: %v (refusals %q)", err, ids)
	}
	emptyDir(t, jdir)

	link := img + ".link"
	if err := os.Link(img, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{img, link} {
		_, err := Open(p, Options{Write: true})
		if ids := refusalIDs(err); ids != "mounted" || !strings.Contains(err.Error(), ro) {
			t.Errorf("%s with %s over it: %v (refusals %q)", p, ro, err, ids)
		}
		s, err := Open(p, Options{DryRun: true})
		if err != nil || len(s.Refusals()) == 0 || s.Refusals()[0].ID != "mounted" {
			t.Errorf("dry run of %s with %s over it: %v %+v", p, ro, err, s)
		}
		if s != nil {
			s.Close()
		}
	}
	exec.Command("losetup", "-d", ro).Run()

	// A whole-disk loop device, and a second one over partition 3 of the
	// same file, mounted read-only.
	s, err := Open(img, Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, ok := s.Volume(3)
	s.Close()
	if !ok {
		t.Fatal("no volume 3")
	}
	testutil.RequireTool(t, "ntfs-3g")
	whole := losetup(t, img)
	part := losetup(t, "-o", fmt.Sprint(v.Offset), "--sizelimit", fmt.Sprint(v.Size), img)
	if _, err := Open(whole, Options{Write: true, JournalDir: jdir}); refusalIDs(err) != "mounted" {
		t.Errorf("whole disk with another loop device over its file: %v", err)
	}
	mp, unmount := testutil.MountNTFS(t, part, true)
	defer unmount()
	_, err = Open(whole, Options{Write: true, JournalDir: jdir})
	if ids := refusalIDs(err); ids != "mounted" || !strings.Contains(err.Error(), mp) {
		t.Errorf("whole disk with its partition mounted through %s: %v (refusals %q)", part, err, ids)
	}
	emptyDir(t, jdir)
}

// TestJournalOnTarget: for a device, a journal directory on the device
// itself is refused (here: a directory that does not exist is).
func TestJournalDirRefused(t *testing.T) {
	img := testutil.TestImage(t, "broken-gpt.img")
	_, err := Open(img, Options{Write: true, JournalDir: "/nonexistent/wuoffline-journals"})
	if ids := refusalIDs(err); ids != "journal" {
		t.Fatalf("missing journal dir: %v (refusals %q)", err, ids)
	}
	s, err := Open(img, Options{DryRun: true, JournalDir: "/nonexistent/wuoffline-journals"})
	if err != nil || len(s.Refusals()) != 1 || s.Refusals()[0].ID != "journal" {
		t.Fatalf("dry run: %v %+v", err, s)
	}
	s.Close()
}
