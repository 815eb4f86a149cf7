package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// container is one conversion of the broken test disk made by qemu-img.
type container struct {
	name   string
	format string   // what Open must report
	args   []string // qemu-img convert -O ... options
}

var containers = []container{
	{"qcow2-v2", FormatQCOW2, []string{"-O", "qcow2", "-o", "compat=0.10"}},
	{"qcow2-v3", FormatQCOW2, []string{"-O", "qcow2", "-o", "compat=1.1"}},
	{"qcow2-4k", FormatQCOW2, []string{"-O", "qcow2", "-o", "cluster_size=4096"}},
	{"vhdx-dynamic", FormatVHDX, []string{"-O", "vhdx"}},
	{"vhdx-fixed", FormatVHDX, []string{"-O", "vhdx", "-o", "subformat=fixed"}},
	{"vpc-dynamic", FormatVHDDynamic, []string{"-O", "vpc", "-o", "force_size=on"}},
	{"vpc-fixed", FormatVHDFixed, []string{"-O", "vpc", "-o", "subformat=fixed,force_size=on"}},
}

// brokenRaw returns a fresh copy of the broken test disk.
func brokenRaw(t *testing.T) string {
	t.Helper()
	src := filepath.Join(testutil.RepoRoot(t), "testimages", "data", "broken-gpt.img.gz")
	if _, err := os.Stat(src); err != nil {
		testutil.Unavailable(t, "test image broken-gpt.img not built yet (make testimages): %v", err)
	}
	return testutil.TestImage(t, "broken-gpt.img")
}

// convert makes the container c of raw with qemu-img.
func convert(t *testing.T, raw string, c container) string {
	t.Helper()
	q := testutil.RequireTool(t, "qemu-img")
	out := filepath.Join(t.TempDir(), c.name)
	args := append([]string{"convert", "-q", "-f", "raw"}, c.args...)
	testutil.Run(t, q, append(args, raw, out)...)
	return out
}

// sha256Reader hashes n bytes of r.
func sha256Reader(t *testing.T, r io.ReaderAt, n int64) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, n)); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestContainersReadAsRaw opens each conversion of the broken disk and
// checks that the whole virtual disk, and its NTFS volume, read exactly
// the raw bytes.
func TestContainersReadAsRaw(t *testing.T) {
	raw := brokenRaw(t)
	rawT, err := Open(raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rawT.Close()
	wantDisk := testutil.SHA256File(t, raw)
	ntfs := ntfsVolume(t, rawT)
	wantVol := sha256Reader(t, rawT.ReaderAt(ntfs), ntfs.Size)
	for _, c := range containers {
		t.Run(c.name, func(t *testing.T) {
			p := convert(t, raw, c)
			tg, err := Open(p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			if tg.Format != c.format || tg.Size != rawT.Size || tg.Table != "gpt" {
				t.Fatalf("format %q size %d table %q, want %q %d gpt", tg.Format, tg.Size, tg.Table, c.format, rawT.Size)
			}
			if got := sha256Reader(t, tg.r, tg.Size); got != wantDisk {
				t.Errorf("virtual disk sha256 %s, raw %s", got, wantDisk)
			}
			v := ntfsVolume(t, tg)
			if got := sha256Reader(t, tg.ReaderAt(v), v.Size); got != wantVol {
				t.Errorf("NTFS volume sha256 %s, raw %s", got, wantVol)
			}
		})
	}
}

func ntfsVolume(t *testing.T, tg *Target) Volume {
	t.Helper()
	for _, v := range tg.Volumes {
		if v.Content == ContentNTFS {
			return v
		}
	}
	t.Fatalf("no NTFS volume in %+v", tg.Volumes)
	return Volume{}
}

// fileBacking is an *os.File as a Backing.
type fileBacking struct {
	*os.File
	size int64
}

func (f fileBacking) Size() int64 { return f.size }

func openBacking(t *testing.T, p string) fileBacking {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return fileBacking{f, st.Size()}
}

// randomWrites is a seeded list of writes over a disk of size bytes: some
// small and unaligned, some across cluster and block boundaries, some
// into the free space past the last partition, some whole megabytes.
func randomWrites(seed uint64, size int64) []struct {
	off int64
	b   []byte
} {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var ws []struct {
		off int64
		b   []byte
	}
	add := func(off int64, n int) {
		if off < 0 {
			off = 0
		}
		if off+int64(n) > size {
			n = int(size - off)
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		ws = append(ws, struct {
			off int64
			b   []byte
		}{off, b})
	}
	for range 40 {
		add(r.Int64N(size), 1+r.IntN(9000))
	}
	for _, edge := range []int64{1 << 16, 2 << 20, 32 << 20, 64 << 20} {
		for range 3 {
			k := r.Int64N(size / edge)
			add(k*edge-int64(1+r.IntN(700)), 1+r.IntN(3000))
		}
	}
	add(size-4096, 4096)               // the backup GPT area at the end
	add(size-37, 37)                   // the last bytes
	add(r.Int64N(size-3<<20), 3<<20)   // several blocks at once
	add(0, 512)                        // the protective MBR
	add(size-(1<<20)-333, 5000)        // near the end, unaligned
	add(size/2+511, 1)                 // one byte
	add(r.Int64N(size-(1<<20)), 1<<20) // a megabyte
	return ws
}

// checkContainer runs qemu-img check on formats it checks.
func checkContainer(t *testing.T, q, p string, c container) {
	t.Helper()
	if c.format == FormatVHDFixed || c.format == FormatVHDDynamic {
		return // qemu-img check does not check vpc
	}
	cmd := exec.Command(q, "check", "-f", c.args[1], p)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No errors were found") {
		t.Errorf("qemu-img check %s: %v\n%s", c.name, err, out)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestContainersOverOverlay plans random writes (small and unaligned,
// across cluster and block boundaries, into allocated and unallocated
// space) on an overlay of the whole
// file (as the session does with its journal's overlay): the file is not
// touched while planning; the overlay's changed pages, written to the file
// (as a journal commit does), give a container that qemu-img checks clean
// and converts to the same bytes as the writes on raw; writing the
// original bytes back and truncating (as undo does) gives the file back
// byte for byte.
func TestContainersOverOverlay(t *testing.T) {
	q := testutil.RequireTool(t, "qemu-img")
	raw := brokenRaw(t)
	for i, c := range containers {
		t.Run(c.name, func(t *testing.T) {
			p := convert(t, raw, c)
			orig, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			before := testutil.SHA256File(t, p)
			b := openBacking(t, p)
			tg, err := New(p, b, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			m := newMemFile(orig)
			m.maxGrow = 1 << 30
			o, err := tg.Over(m, m, m.size)
			if err != nil {
				t.Fatal(err)
			}
			want := filepath.Join(t.TempDir(), "want.img")
			copyFile(t, raw, want)
			wf := openBacking(t, want)
			for _, w := range randomWrites(uint64(100+i), o.Size) {
				if _, err := o.w.WriteAt(w.b, w.off); err != nil {
					t.Fatalf("write of %d at %d: %v", len(w.b), w.off, err)
				}
				if _, err := wf.WriteAt(w.b, w.off); err != nil {
					t.Fatal(err)
				}
				// It reads back through the container at once.
				got := make([]byte, len(w.b))
				if _, err := o.r.ReadAt(got, w.off); err != nil && err != io.EOF {
					t.Fatal(err)
				}
				if !bytes.Equal(got, w.b) {
					t.Fatalf("write of %d at %d does not read back", len(w.b), w.off)
				}
			}
			if testutil.SHA256File(t, p) != before {
				t.Fatal("planning on the overlay changed the file")
			}
			// Commit: the changed pages into the file.
			for pg, data := range m.pages {
				n := min(int64(memPage), m.size-pg*memPage)
				if _, err := b.WriteAt(data[:n], pg*memPage); err != nil {
					t.Fatal(err)
				}
			}
			checkContainer(t, q, p, c)
			back := filepath.Join(t.TempDir(), "back.img")
			testutil.Run(t, q, "convert", "-q", "-f", c.args[1], "-O", "raw", p, back)
			if testutil.SHA256File(t, back) != testutil.SHA256File(t, want) {
				t.Error("committed, the container converts to other bytes than the writes on raw")
			}
			// A fresh open reads the same.
			tg2, err := Open(p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := sha256Reader(t, tg2.r, tg2.Size); got != testutil.SHA256File(t, want) {
				t.Errorf("reopened: sha256 %s, want the writes on raw", got)
			}
			tg2.Close()
			grew := m.size - int64(len(orig))
			t.Logf("%s: %d pages changed (%d KiB), file grew by %d bytes", c.name, len(m.pages), len(m.pages)*memPage>>10, grew)
			// Undo: the original bytes back, the growth cut off.
			for pg := range m.pages {
				if s := pg * memPage; s < int64(len(orig)) {
					if _, err := b.WriteAt(orig[s:min(s+memPage, int64(len(orig)))], s); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := b.Truncate(int64(len(orig))); err != nil {
				t.Fatal(err)
			}
			if testutil.SHA256File(t, p) != before {
				t.Error("undone, the file is not what it was")
			}
		})
	}
}
