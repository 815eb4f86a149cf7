package image

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf16"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// makeDifferencingVHD writes, beside the VHD parent, an empty differencing
// child made by hand from the specification's layout (no installed tool
// makes one): a footer copy, the dynamic header naming the parent by
// unique ID, file name and a W2ru relative locator, a BAT of unallocated
// blocks, the footer.
func makeDifferencingVHD(t *testing.T, parent, child string, parentID []byte) {
	t.Helper()
	pb, err := os.ReadFile(parent)
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	foot := bytes.Clone(pb[len(pb)-512:])
	size := be.Uint64(foot[0x30:])
	if parentID == nil {
		parentID = foot[0x44:0x54]
	}
	parentID = bytes.Clone(parentID)
	be.PutUint64(foot[0x10:], 512) // the dynamic header
	be.PutUint32(foot[0x3C:], vhdTypeDifferencing)
	copy(foot[0x44:], "child-unique-id!")
	be.PutUint32(foot[0x40:], 0)
	be.PutUint32(foot[0x40:], vhdChecksum(foot, 0x40))

	const bs = 2 << 20
	entries := (size + bs - 1) / bs
	batBytes := (entries*4 + 511) &^ 511
	dyn := make([]byte, 1024)
	copy(dyn, "cxsparse")
	be.PutUint64(dyn[8:], ^uint64(0))
	be.PutUint64(dyn[0x10:], 2048) // the BAT
	be.PutUint32(dyn[0x18:], 0x00010000)
	be.PutUint32(dyn[0x1C:], uint32(entries))
	be.PutUint32(dyn[0x20:], bs)
	copy(dyn[0x28:], parentID)
	name := utf16.Encode([]rune(filepath.Base(parent)))
	for i, c := range name {
		be.PutUint16(dyn[0x40+2*i:], c)
	}
	rel := utf16.Encode([]rune(`.\` + filepath.Base(parent)))
	loc := make([]byte, 512)
	for i, c := range rel {
		binary.LittleEndian.PutUint16(loc[2*i:], c)
	}
	be.PutUint32(dyn[0x240:], vhdPlatW2ru)
	be.PutUint32(dyn[0x244:], 512)
	be.PutUint32(dyn[0x248:], uint32(2*len(rel)))
	be.PutUint64(dyn[0x250:], 1536)
	be.PutUint32(dyn[0x24:], vhdChecksum(dyn, 0x24))

	var f bytes.Buffer
	f.Write(foot)
	f.Write(dyn)
	f.Write(loc)
	f.Write(bytes.Repeat([]byte{0xFF}, int(batBytes)))
	f.Write(foot)
	if err := os.WriteFile(child, f.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestVHDDifferencing reads a differencing VHD through its dynamic parent,
// writes random ranges into the child only (whole blocks copied up from
// the parent), and checks the child's blocks with qemu-img, which reads a
// differencing VHD's own blocks (and zeros elsewhere).
func TestVHDDifferencing(t *testing.T) {
	raw := brokenRaw(t)
	dir := t.TempDir()
	parent := filepath.Join(dir, "parent.vhd")
	qemuImg(t, "convert", "-q", "-f", "raw", "-O", "vpc", "-o", "force_size=on", raw, parent)
	child := filepath.Join(dir, "child.vhd")
	makeDifferencingVHD(t, parent, child, nil)
	// qemu-img reads a differencing VHD's own blocks only (zeros
	// elsewhere).

	checkDifferencing(t, raw, parent, child, FormatVHDDifferencing, 11, func() string { return child }, "vpc")
}

// checkDifferencing reads the empty differencing child through its parent
// (all raw's bytes), writes random ranges into it, and checks that the
// parent is unchanged, that the child reads the writes on top of the
// parent, and that the child's own blocks (2 MiB) as qemu-img reads them
// in the file alone() returns hold the whole block as the guest sees it
// where a write touched it, zeros elsewhere.
func checkDifferencing(t *testing.T, raw, parent, child, format string, seed uint64, alone func() string, qemuFormat string) {
	t.Helper()
	dir := t.TempDir()
	parentSum := testutil.SHA256File(t, parent)
	tg, err := Open(child, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if tg.Format != format {
		t.Errorf("format %q, want %q", tg.Format, format)
	}
	if got, want := sha256Reader(t, tg.r, tg.Size), testutil.SHA256File(t, raw); got != want {
		t.Errorf("read through the parent: sha256 %s, raw %s", got, want)
	}
	tg.Close()

	o, err := overFile(t, child)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "want.img")
	copyFile(t, raw, want)
	wf := openBacking(t, want)
	touched := map[int64]bool{}
	for _, w := range randomWrites(seed, o.Size) {
		if _, err := o.w.WriteAt(w.b, w.off); err != nil {
			t.Fatalf("write of %d at %d: %v", len(w.b), w.off, err)
		}
		wf.WriteAt(w.b, w.off)
		for b := w.off / (2 << 20); b <= (w.off+int64(len(w.b))-1)/(2<<20); b++ {
			touched[b] = true
		}
	}
	if testutil.SHA256File(t, parent) != parentSum {
		t.Error("the parent changed")
	}
	tg2, err := Open(child, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg2.Close()
	if got := sha256Reader(t, tg2.r, tg2.Size); got != testutil.SHA256File(t, want) {
		t.Error("reopened, the child does not read the parent with the writes on top")
	}
	back := filepath.Join(dir, "back.img")
	qemuImg(t, "convert", "-q", "-f", qemuFormat, "-O", "raw", alone(), back)
	got, err := os.ReadFile(back)
	if err != nil {
		t.Fatal(err)
	}
	exp, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	for b := int64(0); b*(2<<20) < int64(len(exp)); b++ {
		s, e := b*(2<<20), min((b+1)*(2<<20), int64(len(exp)))
		w := exp[s:e]
		if !touched[b] {
			w = make([]byte, e-s)
		}
		if !bytes.Equal(got[s:e], w) {
			t.Errorf("block %d (touched %v): qemu-img reads other bytes in the child", b, touched[b])
		}
	}
}

// TestVHDDifferencingRefusals: a parent whose unique ID is not the one the
// child records, a child that is its own parent.
func TestVHDDifferencingRefusals(t *testing.T) {
	dir := t.TempDir()
	parent := filepath.Join(dir, "parent.vhd")
	qemuImg(t, "create", "-q", "-f", "vpc", parent, "16M")
	child := filepath.Join(dir, "child.vhd")
	makeDifferencingVHD(t, parent, child, []byte("not-the-parents!"))
	before := testutil.SHA256File(t, child)
	_, err := Open(child, Options{})
	wantRefusal(t, err, "unique ID", child, before)

	self := filepath.Join(dir, "self.vhd")
	makeDifferencingVHD(t, parent, self, nil)
	// The locator and the name now point at the child itself.
	b, _ := os.ReadFile(self)
	rel := utf16.Encode([]rune(`.\self.vhd`))
	for i, c := range rel {
		binary.LittleEndian.PutUint16(b[1536+2*i:], c)
	}
	binary.BigEndian.PutUint32(b[512+0x248:], uint32(2*len(rel)))
	binary.BigEndian.PutUint32(b[512+0x24:], 0)
	binary.BigEndian.PutUint32(b[512+0x24:], vhdChecksum(b[512:1536], 0x24))
	os.WriteFile(self, b, 0o644)
	before = testutil.SHA256File(t, self)
	_, err = Open(self, Options{})
	wantRefusal(t, err, "loops", self, before)
}

// TestVHDHostile: BAT entries pointing past the end or into the headers,
// a BAT larger than the file, a huge block size.
func TestVHDHostile(t *testing.T) {
	fresh := func(t *testing.T) (string, []byte) {
		p := filepath.Join(t.TempDir(), "h.vhd")
		qemuImg(t, "create", "-q", "-f", "vpc", p, "64M")
		qemuIO(t, p, "write -P 0x11 0 64k")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return p, b
	}
	be := binary.BigEndian
	dynFix := func(b []byte) {
		d := b[512:1536]
		be.PutUint32(d[0x24:], 0)
		be.PutUint32(d[0x24:], vhdChecksum(d, 0x24))
	}
	bat := func(b []byte) int { return int(be.Uint64(b[512+0x10:])) }
	cases := []struct {
		name   string
		damage func(b []byte)
		why    string
	}{
		{"BAT entry past the end", func(b []byte) { be.PutUint32(b[bat(b):], 0x7FFFFFF0) }, "not a whole block"},
		{"BAT entry at the header", func(b []byte) { be.PutUint32(b[bat(b):], 1) }, "not a whole block"},
		{"BAT larger than the file", func(b []byte) { be.PutUint32(b[512+0x1C:], 0x7FFFFFFF); dynFix(b) }, "not within the file"},
		{"huge block size", func(b []byte) { be.PutUint32(b[512+0x20:], 1<<30); dynFix(b) }, "block size"},
		{"huge disk size", func(b []byte) {
			for _, f := range [][]byte{b[:512], b[len(b)-512:]} {
				be.PutUint64(f[0x30:], 1<<60)
				be.PutUint32(f[0x40:], 0)
				be.PutUint32(f[0x40:], vhdChecksum(f, 0x40))
			}
		}, "virtual size"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, b := fresh(t)
			tc.damage(b)
			os.WriteFile(p, b, 0o644)
			before := testutil.SHA256File(t, p)
			_, err := Open(p, Options{})
			wantRefusal(t, err, tc.why, p, before)
			bk := openBacking(t, p)
			if l, err := openVHD(&containerFile{r: bk, w: bk, size: bk.size, name: p}, p, newChain(p)); err == nil {
				_, err = l.WriteAt([]byte("data"), 100)
				wantRefusal(t, err, tc.why, p, before)
			}
		})
	}
}
