package ntfs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// wtVolume is a test volume built with mkntfs and filled through an ntfs-3g
// mount: tools that share no code with the writer.
type wtVolume struct {
	path string
	size int64
}

// wtMakeVolume creates a sparse image of size bytes and formats it with
// mkntfs using the given extra options (e.g. "-c", "4096").
func wtMakeVolume(t testing.TB, size int64, mkfsArgs ...string) *wtVolume {
	t.Helper()
	testutil.RequireTool(t, "mkntfs")
	p := filepath.Join(t.TempDir(), "vol.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	args := append([]string{"-F", "-Q", "-q"}, mkfsArgs...)
	testutil.Run(t, "mkntfs", append(args, p)...)
	return &wtVolume{path: p, size: size}
}

// wtMount mounts the image with ntfs-3g (see testutil.MountNTFS).
func wtMount(t testing.TB, img string, readOnly bool, extra ...string) (string, func()) {
	t.Helper()
	return testutil.MountNTFS(t, img, readOnly, extra...)
}

// wtFile opens the image read-write.
func wtFile(t testing.TB, img string) *os.File {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// wtWriter opens a Writer on the image (safety checked).
func wtWriter(t testing.TB, img string) *Writer {
	t.Helper()
	f := wtFile(t, img)
	st, _ := f.Stat()
	w, err := OpenWriter(f, f, st.Size(), WriterOptions{Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// wtCheckAll runs Check --all and fails on any problem.
func wtCheckAll(t testing.TB, img string) *CheckReport {
	t.Helper()
	f := wtFile(t, img)
	st, _ := f.Stat()
	rep, err := Check(f, st.Size(), CheckOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range rep.Problems {
		if i > 20 {
			break
		}
		t.Errorf("check: %s", p)
	}
	return rep
}

// wtResolve resolves path p in tx and returns its MFT record.
func wtResolve(t testing.TB, tx *tx, p string) *Record {
	t.Helper()
	nums, err := tx.resolve(p)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := tx.record(nums[len(nums)-1])
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// wtTree returns the index of directory p in tx.
func wtTree(t testing.TB, tx *tx, p string) *ixTree {
	t.Helper()
	tr, err := tx.tree(wtResolve(t, tx, p).Num)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}
