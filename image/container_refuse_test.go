package image

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// qemuImg runs qemu-img with args.
func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	testutil.Run(t, testutil.RequireTool(t, "qemu-img"), args...)
}

// qemuIO runs qemu-io commands on an image (writes with a pattern).
func qemuIO(t *testing.T, img string, cmds ...string) {
	t.Helper()
	q := testutil.RequireTool(t, "qemu-io")
	args := []string{}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	testutil.Run(t, q, append(args, img)...)
}

// overFile opens p with New and returns the Target over the file itself
// (reads and writes straight to it).
func overFile(t *testing.T, p string) (*Target, error) {
	t.Helper()
	b := openBacking(t, p)
	tg, err := New(p, b, Options{Writable: true})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { tg.Close() })
	return tg.Over(b, b, b.size)
}

// patch writes b at off of the file p.
func patch(t *testing.T, p string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func readU64(t *testing.T, p string, off int64) uint64 {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [8]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	return binary.BigEndian.Uint64(b[:])
}

// wantRefusal checks that err names why, and that the file is unchanged.
func wantRefusal(t *testing.T, err error, why, p, before string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one saying %q", why)
	}
	if !strings.Contains(err.Error(), why) {
		t.Errorf("error %q does not say %q", err, why)
	}
	if testutil.SHA256File(t, p) != before {
		t.Errorf("%s changed", p)
	}
}

// TestQCOW2Backing reads a qcow2 through its backing file (qcow2 and raw),
// writes random ranges into the top only, and checks with qemu-img.
func TestQCOW2Backing(t *testing.T) {
	raw := brokenRaw(t)
	for _, backFmt := range []string{"qcow2", "raw"} {
		t.Run(backFmt, func(t *testing.T) {
			dir := t.TempDir()
			base := filepath.Join(dir, "base."+backFmt)
			qemuImg(t, "convert", "-q", "-f", "raw", "-O", backFmt, raw, base)
			top := filepath.Join(dir, "top.qcow2")
			// A relative backing name, as qemu stores it when given one.
			qemuImg(t, "create", "-q", "-f", "qcow2", "-b", "base."+backFmt, "-F", backFmt, top)
			// The top holds clusters of its own too: one whole, one partly
			// written (qemu copies the rest up from the base).
			qemuIO(t, top, "write -P 0x5a 1M 64k", "write -P 0xa5 3000000 1000")
			want := filepath.Join(dir, "want.img")
			testutil.Run(t, testutil.RequireTool(t, "qemu-img"), "convert", "-q", "-O", "raw", top, want)
			baseSum := testutil.SHA256File(t, base)

			tg, err := Open(top, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := sha256Reader(t, tg.r, tg.Size); got != testutil.SHA256File(t, want) {
				t.Errorf("read through the backing file: sha256 %s, qemu-img reads %s", got, testutil.SHA256File(t, want))
			}
			tg.Close()

			o, err := overFile(t, top)
			if err != nil {
				t.Fatal(err)
			}
			wf := openBacking(t, want)
			for _, w := range randomWrites(7, o.Size) {
				if _, err := o.w.WriteAt(w.b, w.off); err != nil {
					t.Fatalf("write of %d at %d: %v", len(w.b), w.off, err)
				}
				wf.WriteAt(w.b, w.off)
			}
			checkContainer(t, testutil.RequireTool(t, "qemu-img"), top, container{name: "top", args: []string{"-O", "qcow2"}})
			back := filepath.Join(dir, "back.img")
			qemuImg(t, "convert", "-q", "-O", "raw", top, back)
			if testutil.SHA256File(t, back) != testutil.SHA256File(t, want) {
				t.Error("converted back to raw, the top differs from the same writes on raw")
			}
			if testutil.SHA256File(t, base) != baseSum {
				t.Error("the backing file changed")
			}
		})
	}
}

// TestQCOW2Refusals: images with features that cannot be written in place
// are refused before any write, with the reason; the file is unchanged.
func TestQCOW2Refusals(t *testing.T) {
	dir := t.TempDir()
	small := func(name string, opts ...string) string {
		p := filepath.Join(dir, name)
		qemuImg(t, append(append([]string{"create", "-q", "-f", "qcow2"}, opts...), p, "64M")...)
		qemuIO(t, p, "write -P 0x11 0 1M")
		return p
	}
	t.Run("compressed", func(t *testing.T) {
		src := small("plain.qcow2")
		p := filepath.Join(dir, "compressed.qcow2")
		qemuImg(t, "convert", "-q", "-c", "-O", "qcow2", src, p)
		o, err := overFile(t, p)
		if err != nil {
			t.Fatal(err)
		}
		// Reads inflate the clusters.
		got := make([]byte, 1<<20)
		if _, err := o.r.ReadAt(got, 0); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, bytes.Repeat([]byte{0x11}, 1<<20)) {
			t.Error("the compressed clusters do not read back the written pattern")
		}
		before := testutil.SHA256File(t, p)
		_, err = o.w.WriteAt([]byte("x"), 4096)
		wantRefusal(t, err, "compressed", p, before)
	})
	t.Run("snapshot", func(t *testing.T) {
		p := small("snap.qcow2")
		qemuImg(t, "snapshot", "-c", "s1", p)
		before := testutil.SHA256File(t, p)
		o, err := overFile(t, p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = o.w.WriteAt([]byte("x"), 4096)
		wantRefusal(t, err, "snapshot", p, before)
		// A cluster the snapshot does not hold either: its L2 table is
		// shared all the same.
		_, err = o.w.WriteAt([]byte("x"), 32<<20)
		wantRefusal(t, err, "snapshot", p, before)
	})
	t.Run("encrypted", func(t *testing.T) {
		// crypt_method 1 (AES) in the header: qemu-img no longer makes
		// such images, and making a LUKS one takes it seconds of key
		// stretching; the header field is what is refused.
		p := small("enc.qcow2")
		patch(t, p, 32, binary.BigEndian.AppendUint32(nil, 1))
		before := testutil.SHA256File(t, p)
		_, err := Open(p, Options{})
		wantRefusal(t, err, "encrypted", p, before)
	})
	t.Run("external data file", func(t *testing.T) {
		p := small("df.qcow2", "-o", "data_file="+filepath.Join(dir, "data.raw"))
		before := testutil.SHA256File(t, p)
		_, err := Open(p, Options{})
		wantRefusal(t, err, "external data file", p, before)
	})
	t.Run("dirty", func(t *testing.T) {
		p := small("dirty.qcow2")
		patch(t, p, 72, be64(readU64(t, p, 72)|qcow2IncompatDirty))
		before := testutil.SHA256File(t, p)
		o, err := overFile(t, p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = o.w.WriteAt([]byte("x"), 4096)
		wantRefusal(t, err, "qemu-img check -r all", p, before)
	})
	t.Run("refcount table would grow", func(t *testing.T) {
		// 512-byte clusters: one refcount block counts 256 clusters, and
		// qemu's table of one cluster counts 64 blocks: 8 MiB of file.
		p := filepath.Join(dir, "tiny.qcow2")
		qemuImg(t, "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", p, "64M")
		o, err := overFile(t, p)
		if err != nil {
			t.Fatal(err)
		}
		chunk := bytes.Repeat([]byte{0x42}, 1<<20)
		var refused error
		for off := int64(0); off < 32<<20; off += 1 << 20 {
			before := testutil.SHA256File(t, p)
			if _, err := o.w.WriteAt(chunk, off); err != nil {
				wantRefusal(t, err, "refcount table", p, before)
				refused = err
				break
			}
		}
		if refused == nil {
			t.Fatal("32 MiB of new clusters were written without the refcount table growing")
		}
		checkContainer(t, testutil.RequireTool(t, "qemu-img"), p, container{name: "tiny", args: []string{"-O", "qcow2"}})
	})
}

// TestQCOW2Hostile: damaged or hostile tables get a clear error and no
// write; nothing large is allocated for a size a header declares.
func TestQCOW2Hostile(t *testing.T) {
	fresh := func(t *testing.T) string {
		p := filepath.Join(t.TempDir(), "h.qcow2")
		qemuImg(t, "create", "-q", "-f", "qcow2", p, "64M")
		qemuIO(t, p, "write -P 0x11 0 128k")
		return p
	}
	l1Off := func(t *testing.T, p string) int64 { return int64(readU64(t, p, 40)) }
	l2Off := func(t *testing.T, p string) int64 { return int64(readU64(t, p, l1Off(t, p)) & qcow2OffsetMask) }
	cases := []struct {
		name   string
		damage func(t *testing.T, p string)
		open   string // the error Open gives ("" when Open works and the read/write fails)
		rw     string // the error reading/writing guest offset 0 gives
	}{
		{"L2 entry past the end", func(t *testing.T, p string) {
			patch(t, p, l2Off(t, p), be64(1<<40|qcow2Copied))
		}, "", "past the end of the file"},
		{"L2 entry not aligned", func(t *testing.T, p string) {
			patch(t, p, l2Off(t, p), be64(0x200|qcow2Copied))
		}, "", "not cluster-aligned"},
		{"L1 entry at the refcount table", func(t *testing.T, p string) {
			patch(t, p, l1Off(t, p), be64(readU64(t, p, 48)|qcow2Copied))
		}, "", "L1 or refcount table"},
		{"L2 entry at the L1 table", func(t *testing.T, p string) {
			patch(t, p, l2Off(t, p), be64(uint64(l1Off(t, p))|qcow2Copied))
		}, "", "L1 or refcount table"},
		{"L1 entry past the end", func(t *testing.T, p string) {
			patch(t, p, l1Off(t, p), be64(1<<40|qcow2Copied))
		}, "", "past the end of the file"},
		{"huge virtual size", func(t *testing.T, p string) {
			patch(t, p, 24, be64(1<<60))
		}, "virtual size", ""},
		{"L1 larger than the file", func(t *testing.T, p string) {
			patch(t, p, 24, be64(1<<45))
			patch(t, p, 36, binary.BigEndian.AppendUint32(nil, 1<<16))
		}, "past the end of the file", ""},
		{"refcount table overlaps L1", func(t *testing.T, p string) {
			patch(t, p, 48, be64(uint64(l1Off(t, p))))
		}, "overlaps", ""},
		{"backing file is itself", func(t *testing.T, p string) {
			name := []byte("h.qcow2")
			patch(t, p, 8, be64(0x200))
			patch(t, p, 16, binary.BigEndian.AppendUint32(nil, uint32(len(name))))
			patch(t, p, 0x200, name)
		}, "loops", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := fresh(t)
			tc.damage(t, p)
			before := testutil.SHA256File(t, p)
			tg, err := Open(p, Options{})
			if tc.open != "" {
				wantRefusal(t, err, tc.open, p, before)
				return
			}
			if err == nil {
				t.Errorf("Open succeeded on a disk whose first cluster cannot be read")
				tg.Close()
			} else if !strings.Contains(err.Error(), tc.rw) {
				t.Errorf("Open: %v, want it to say %q", err, tc.rw)
			}
			// The same through Over, writing.
			b := openBacking(t, p)
			l, err := openQCOW2(&containerFile{r: b, w: b, size: b.size, name: p}, p, newChain(p))
			if err != nil {
				t.Fatal(err)
			}
			_, err = l.WriteAt([]byte("data"), 100)
			wantRefusal(t, err, tc.rw, p, before)
			_, err = l.ReadAt(make([]byte, 10), 100)
			wantRefusal(t, err, tc.rw, p, before)
		})
	}
}

// TestBackingLoop: two qcow2 images each naming the other as backing file.
func TestBackingLoop(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.qcow2"), filepath.Join(dir, "b.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", b, "64M")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", a)
	// Now b names a: patch its header (backing name in its first cluster).
	name := []byte("a.qcow2")
	patch(t, b, 8, be64(0x200))
	patch(t, b, 16, binary.BigEndian.AppendUint32(nil, uint32(len(name))))
	patch(t, b, 0x200, name)
	before := testutil.SHA256File(t, a)
	_, err := Open(a, Options{})
	wantRefusal(t, err, "loops", a, before)
}

// TestBackingChainDepth: a chain of qcow2 images deeper than
// maxChainDepth is refused; one just within it is read.
func TestBackingChainDepth(t *testing.T) {
	dir := t.TempDir()
	name := func(i int) string { return filepath.Join(dir, fmt.Sprintf("l%02d.qcow2", i)) }
	qemuImg(t, "create", "-q", "-f", "qcow2", name(0), "16M")
	qemuIO(t, name(0), "write -P 0x33 0 4k")
	for i := 1; i <= maxChainDepth; i++ {
		qemuImg(t, "create", "-q", "-f", "qcow2", "-b", filepath.Base(name(i-1)), "-F", "qcow2", name(i))
	}
	// l15 has 15 ancestors: 16 files in all.
	tg, err := Open(name(maxChainDepth-1), Options{})
	if err != nil {
		t.Fatalf("a chain of %d files: %v", maxChainDepth, err)
	}
	got := make([]byte, 4096)
	if _, err := tg.r.ReadAt(got, 0); err != nil || !bytes.Equal(got, bytes.Repeat([]byte{0x33}, 4096)) {
		t.Errorf("the base's data does not read through the chain (%v)", err)
	}
	tg.Close()
	before := testutil.SHA256File(t, name(maxChainDepth))
	_, err = Open(name(maxChainDepth), Options{})
	wantRefusal(t, err, "deep", name(maxChainDepth), before)
}

// TestOverRaw: Over on a raw disk maps volumes straight onto the given
// writer, in file coordinates, bounded to the volume.
func TestOverRaw(t *testing.T) {
	raw := brokenRaw(t)
	orig, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	b := openBacking(t, raw)
	tg, err := New(raw, b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if _, err := tg.WriterAt(tg.Volumes[0]); err == nil {
		t.Error("a Target from New without Writable gave a writer")
	}
	m := newMemFile(orig)
	o, err := tg.Over(m, m, m.size)
	if err != nil {
		t.Fatal(err)
	}
	v := ntfsVolume(t, o)
	w, err := o.WriterAt(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("hello"), 4096); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	m.ReadAt(got, v.Offset+4096)
	if string(got) != "hello" {
		t.Errorf("file bytes at %d: %q", v.Offset+4096, got)
	}
	if _, err := w.WriteAt([]byte("x"), v.Size); err == nil {
		t.Error("a write past the volume's end was taken")
	}
	if len(m.pages) != 1 {
		t.Errorf("%d pages changed, want 1", len(m.pages))
	}
	if _, err := tg.Over(m, m, m.size-512); err == nil {
		t.Error("Over took bytes of another size")
	}
}
