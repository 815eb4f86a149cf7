package ntfs

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// rdSmallImage returns the committed mkntfs volume that FuzzReadVolume
// mutates (testdata/read/build-small.sh: 3 MiB, 1 KiB clusters, a few
// files, a DOS name, a 60-entry directory with INDX blocks).
func rdSmallImage(tb testing.TB) []byte {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", "read", "small.img.gz"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// rdExercise opens a volume and reads everything FS offers, with budgets,
// as a caller would; it must not panic or hang whatever the bytes.
func rdExercise(t *testing.T, img []byte) {
	v, err := Open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		return
	}
	_ = v.Safety()
	fsys := v.FS()
	n := 0
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if !fs.ValidPath(p) {
			t.Fatalf("walk produced invalid path %q", p)
		}
		if err != nil {
			return nil
		}
		if n++; n > 5000 {
			return fs.SkipAll
		}
		if d.Type().IsRegular() {
			f, err := fsys.Open(p)
			if err != nil {
				return nil
			}
			defer f.Close()
			if _, err := f.Stat(); err != nil {
				t.Fatalf("Stat of open file %q: %v", p, err)
			}
			io.Copy(io.Discard, io.LimitReader(f, 1<<20))
		}
		return nil
	})
	for _, p := range []string{"Windows/System32/config/SYSTEM", "many/ENTRY-7.DAT", "alongf~1.txt", "hiberfil.sys"} {
		fs.Stat(fsys, p)
	}
}

// FuzzReadVolume mutates a small mkntfs volume and opens and walks it.
// region selects where the patch lands: 0 the first 24 MFT records (the
// metadata files and the root directory), 1 anywhere in the volume (index
// blocks, $LogFile, data), 2 the MFT records of the user files (from 64,
// where ntfs-3g starts allocating).
func FuzzReadVolume(f *testing.F) {
	base := rdSmallImage(f)
	bs, err := ParseBootSector(base)
	if err != nil {
		f.Fatal(err)
	}
	mft := int(bs.MFTCluster) * int(bs.ClusterSize)
	rs := int(bs.RecordSize)
	f.Add(uint8(0), uint16(0), []byte{})
	f.Add(uint8(0), uint16(5*rs+0x14), []byte{0xF0, 0x03})            // root: attribute offset
	f.Add(uint8(0), uint16(5*rs+0x98), bytes.Repeat([]byte{0xFF}, 8)) // root: inside $INDEX_ROOT
	f.Add(uint8(0), uint16(0x30), []byte{0x11, 0x22, 0x33})           // $MFT record's attributes
	f.Add(uint8(0), uint16(10*rs+0x100), []byte{0x00, 0x00, 0x00, 0x80})
	f.Add(uint8(1), uint16(100), bytes.Repeat([]byte{0xAA}, 64))
	f.Add(uint8(2), uint16(6*rs+0x40), []byte("\x00\x00\x00\x00\xff\xff"))
	f.Fuzz(func(t *testing.T, region uint8, off uint16, patch []byte) {
		if len(patch) > 256 {
			patch = patch[:256]
		}
		// Patch in place and restore afterwards: cloning 3 MiB per run
		// would make every execution (and minimisation) slow.
		img := base
		var at int
		switch region % 3 {
		case 0:
			at = mft + int(off)%(24*rs)
		case 1:
			at = int(off) * (len(img) / 65536)
		case 2:
			at = mft + 64*rs + int(off)%(80*rs)
		}
		if at >= len(img) {
			return
		}
		saved := bytes.Clone(img[at:min(len(img), at+len(patch))])
		defer copy(img[at:], saved)
		copy(img[at:], patch)
		rdExercise(t, img)
	})
}

// TestSmallImageWalk is the unmutated base of the fuzz target, checked
// against fls like the other volumes.
func TestSmallImageWalk(t *testing.T) {
	img := rdSmallImage(t)
	p := filepath.Join(t.TempDir(), "small.img")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	v := rdOpenImage(t, p)
	got, want := rdWalk(t, v.FS()), rdFlsPaths(t, p)
	if a, b := rdDiff(got, want); len(a)+len(b) > 0 {
		t.Errorf("tree differs from fls -r -p:\nonly in FS:  %q\nonly in fls: %q", a, b)
	}
}
