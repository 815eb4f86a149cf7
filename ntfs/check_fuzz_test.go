package ntfs

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// wtTinyImage is a 2 MiB volume (mkntfs -s 512 -c 512, then through
// ntfs-3g: directory d with 30 files, and hosts): see testdata/write.
func wtTinyImage(t testing.TB) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "write", "tiny.img.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(io.LimitReader(z, 4<<20))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzVolumeWrite damages a small volume at one place and runs everything
// the write side does short of writing: Check --all, List, PlanRename and
// a planned data write. Damage must give errors or problems, never a
// panic, a hang or a huge allocation.
func FuzzVolumeWrite(f *testing.F) {
	img := wtTinyImage(f)
	// Seeds: damage in the boot sector, $MFT records, the directory's
	// index and an unused area.
	for _, off := range []uint32{0x30, 0x40, 0x4000, 0x4000 + 5*1024 + 0x100, 0x4000 + 64*1024 + 0x180, 0x100000} {
		f.Add(off, []byte{0xFF, 0x00, 0x13})
	}
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		b := append([]byte(nil), img...)
		copy(b[int(off)%len(b):], patch)
		r := bytes.NewReader(b)
		size := int64(len(b))
		_, _ = Check(r, size, CheckOptions{All: true})
		w, err := OpenReadOnly(r, size)
		if err != nil {
			return
		}
		_, _ = w.List("d")
		_, _ = w.PlanRename("d/name 1.txt", "d/name 1 renamed with a long name.txt")
		_, _ = w.PlanRename("d/name 2.txt", "moved.txt")
		if d, err := w.OpenData("hosts"); err == nil {
			_, _ = d.WriteAt(bytes.Repeat([]byte("x"), 3000), 10)
			_, _ = d.Plan()
		}
		// Again with every index checked at the nodes a change edits (as
		// a large WinSxS is), and the check of what the plan would write.
		w.wholeIndex = -1
		if rs, err := w.PlanRename("d/name 1.txt", "d/name 1 renamed with a long name.txt"); err == nil {
			_, _ = w.Check(CheckOptions{Ranges: rs})
		}
		_, _ = w.PlanRename("d/name 2.txt", "moved.txt")
	})
}

// TestTinyImageHealthy: the fuzz seed volume is itself healthy, and the
// planned operations succeed on it.
func TestTinyImageHealthy(t *testing.T) {
	img := wtTinyImage(t)
	r := bytes.NewReader(img)
	rep, err := Check(r, int64(len(img)), CheckOptions{All: true})
	if err != nil || len(rep.Problems) > 0 || rep.Entries < 30 {
		t.Fatalf("check: %+v %v", rep, err)
	}
	w, err := OpenReadOnly(r, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.PlanRename("d/name 1.txt", "moved.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Rename("d/name 1.txt", "moved.txt"); err == nil {
		t.Error("Rename on a read-only writer succeeded")
	}
	// The fuzz target's second pass: indexes checked at the edited nodes.
	w.wholeIndex = -1
	rs, err := w.PlanRename("d/name 1.txt", "d/name 1 renamed with a long name.txt")
	if err != nil {
		t.Fatal(err)
	}
	rep, err = w.Check(CheckOptions{Ranges: rs})
	if err != nil || len(rep.Problems) > 0 || rep.Entries == 0 {
		t.Fatalf("check of the planned ranges on the volume as it is: %+v %v", rep, err)
	}
}
