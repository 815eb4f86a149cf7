package ntfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

var wtAgedLong = flag.Bool("wt.agedlong", false, "aged-volume tests: more operations and the 50,000-entry volume")

// wtAgedCache holds the volumes build-aged.sh made in this test run: each
// kind is built once (the 4Kn one takes most of a minute) and every test
// works on its own copy.
var wtAgedCache struct {
	sync.Mutex
	dir  string
	errs map[string]error
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if wtAgedCache.dir != "" {
		os.RemoveAll(wtAgedCache.dir)
	}
	os.Exit(code)
}

// wtAged returns a fresh copy of one volume of testimages/build-aged.sh
// (mkntfs, ntfs-3g and hivex only).
func wtAged(t testing.TB, kind string) string {
	t.Helper()
	testutil.RequireRoot(t)
	for _, tool := range []string{"mkntfs", "ntfs-3g", "fusermount3", "istat", "icat", "fls"} {
		testutil.RequireTool(t, tool)
	}
	if exec.Command("/usr/bin/python3", "-c", "import hivex").Run() != nil {
		testutil.Unavailable(t, "python3-hivex is not installed")
	}
	minimal := testutil.SharedFixture(t, "hives/hivex/minimal")
	c := &wtAgedCache
	c.Lock()
	defer c.Unlock()
	if c.dir == "" {
		d, err := os.MkdirTemp("", "aged")
		if err != nil {
			t.Fatal(err)
		}
		c.dir, c.errs = d, map[string]error{}
	}
	built := filepath.Join(c.dir, kind+".img")
	if err, done := c.errs[kind]; done && err != nil {
		t.Fatal(err)
	} else if !done {
		cmd := exec.Command(filepath.Join(testutil.RepoRoot(t), "testimages", "build-aged.sh"), c.dir, kind)
		cmd.Env = append(os.Environ(), "MINIMAL_HIVE="+minimal)
		if out, err := cmd.CombinedOutput(); err != nil {
			c.errs[kind] = fmt.Errorf("build-aged.sh %s: %v\n%s", kind, err, out)
			t.Fatal(c.errs[kind])
		}
		c.errs[kind] = nil
	}
	img := filepath.Join(t.TempDir(), kind+".img")
	testutil.Run(t, "cp", "--sparse=always", built, img)
	return img
}

// wtSnapshot copies the image (sparse) for the byte-for-byte undo check.
func wtSnapshot(t testing.TB, img string) string {
	t.Helper()
	p := img + ".orig"
	testutil.Run(t, "cp", "--sparse=always", img, p)
	return p
}

// wtUndo collects the original bytes of every range before it is written
// (what the journal saves) and puts them back, newest first.
type wtUndo struct {
	img   string
	saved [][]wtSaved
}

type wtSaved struct {
	off  int64
	data []byte
}

func (u *wtUndo) save(t testing.TB, rs []Range) {
	t.Helper()
	f, err := os.Open(u.img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var s []wtSaved
	for _, r := range rs {
		b := make([]byte, r.Len)
		if _, err := f.ReadAt(b, r.Off); err != nil {
			t.Fatal(err)
		}
		s = append(s, wtSaved{r.Off, b})
	}
	u.saved = append(u.saved, s)
}

func (u *wtUndo) restore(t testing.TB) {
	t.Helper()
	f := wtFile(t, u.img)
	for i := len(u.saved) - 1; i >= 0; i-- {
		for _, s := range u.saved[i] {
			if _, err := f.WriteAt(s.data, s.off); err != nil {
				t.Fatal(err)
			}
		}
	}
	u.saved = nil
}

// wtHasAttrList reports whether the file at p has an $ATTRIBUTE_LIST and
// how many extents its (typ, name) attribute has.
func wtHasAttrList(t testing.TB, w *Writer, p string, typ uint32, name string) (bool, int, bool) {
	t.Helper()
	tx := w.begin()
	rec := wtResolve(t, tx, p)
	_, al, _ := rec.FindAttr(AttrAttributeList, "")
	_, a, n, err := tx.findAttrAny(rec, typ, name)
	if err != nil {
		t.Fatal(err)
	}
	return al, n, n > 0 && a.NonResident
}

// wtVerifyTools runs the independent checks on a volume: ntfsfix -n, our
// Check --all, and (by the callers) ntfs-3g and sleuthkit reads.
func wtVerifyTools(t testing.TB, img string) {
	t.Helper()
	wtCheckAll(t, img)
	wtNtfsfix(t, img)
}

// wtNtfsfix runs ntfsfix -n (ntfs-3g's consistency check, no writes).
func wtNtfsfix(t testing.TB, img string) {
	t.Helper()
	testutil.RequireTool(t, "ntfsfix")
	if out, err := exec.Command("ntfsfix", "-n", img).CombinedOutput(); err != nil {
		t.Errorf("ntfsfix -n: %v\n%s", err, out)
	}
}

// wtReadBoth reads a file through an ntfs-3g read-only mount and through
// icat (by the record number our writer resolves) and checks both against
// want.
func wtReadBoth(t testing.TB, img, p string, want []byte) {
	t.Helper()
	mp, unmount := wtMount(t, img, true)
	got, err := os.ReadFile(filepath.Join(mp, p))
	unmount()
	if err != nil {
		t.Errorf("ntfs-3g: %s: %v", p, err)
	} else if !bytes.Equal(got, want) {
		t.Errorf("ntfs-3g: %s: %d bytes, want %d (or contents differ)", p, len(got), len(want))
	}
	f := wtFile(t, img)
	st, _ := f.Stat()
	w, err := OpenReadOnly(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	nums, err := w.begin().resolve(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := testutil.Run(t, "icat", img, fmt.Sprint(nums[len(nums)-1])); !bytes.Equal(got, want) {
		t.Errorf("icat: %s: %d bytes, want %d (or contents differ)", p, len(got), len(want))
	}
}

// wtHiveAddBin appends an empty 4 KiB hive bin to a regf image: the bin
// header (offset from the first bin, size) and one free cell, and the base
// block's hive-bins size and checksum (XOR of its first 127 dwords).
func wtHiveAddBin(h []byte) []byte {
	binsSize := binary.LittleEndian.Uint32(h[0x28:])
	bin := make([]byte, 4096)
	copy(bin, "hbin")
	binary.LittleEndian.PutUint32(bin[4:], binsSize)
	binary.LittleEndian.PutUint32(bin[8:], 4096)
	binary.LittleEndian.PutUint32(bin[0x20:], 4096-0x20) // free cell: positive size
	out := append(append([]byte(nil), h[:4096+binsSize]...), bin...)
	binary.LittleEndian.PutUint32(out[0x28:], binsSize+4096)
	seq := binary.LittleEndian.Uint32(out[4:]) + 1
	binary.LittleEndian.PutUint32(out[4:], seq)
	binary.LittleEndian.PutUint32(out[8:], seq)
	var x uint32
	for i := 0; i < 0x1FC; i += 4 {
		x ^= binary.LittleEndian.Uint32(out[i:])
	}
	binary.LittleEndian.PutUint32(out[0x1FC:], x)
	return out
}

// TestAgedHiveGrows: the SOFTWARE hive of an aged volume has its $DATA in
// extension records. The hive grows by one bin at a time through the
// writer (the base block rewritten in place, the bin appended); after each
// commit ntfs-3g and icat read the expected bytes, hivexregedit exports
// the hive taken out with icat, ntfsfix -n and Check --all find nothing;
// applying the saved original bytes restores the image byte for byte.
func TestAgedHiveGrows(t *testing.T) {
	kinds := []string{"aged"}
	if *wtAgedLong {
		kinds = append(kinds, "4kn") // its hive fits one 4 KiB record
	}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			img := wtAged(t, kind)
			orig := wtSnapshot(t, img)
			const hp = "Windows/System32/config/SOFTWARE"
			w := wtWriter(t, img)
			if al, n, _ := wtHasAttrList(t, w, hp, AttrData, ""); kind == "4kn" {
				t.Logf("4Kn hive: $ATTRIBUTE_LIST %v, %d extents", al, n)
			} else if !al || n < 2 {
				t.Fatalf("the aged hive has no $ATTRIBUTE_LIST (%v) or one extent (%d): the test no longer covers it", al, n)
			}
			testutil.RequireTool(t, "hivexregedit")
			want := testutil.Run(t, "icat", img, fmt.Sprint(wtNum(t, w, hp)))
			exp0 := wtExportHive(t, want)
			u := &wtUndo{img: img}
			bins := 3
			if *wtAgedLong {
				bins = 40
			}
			for i := 0; i < bins; i++ {
				want = wtHiveAddBin(want)
				f, err := w.OpenData(hp)
				if err != nil {
					t.Fatal(err)
				}
				size, _ := f.Size()
				if _, err := f.WriteAt(want[:4096], 0); err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteAt(want[size:], size); err != nil {
					t.Fatalf("bin %d: %v", i, err)
				}
				rs, err := f.Plan()
				if err != nil {
					t.Fatal(err)
				}
				u.save(t, rs)
				if _, err := f.Commit(); err != nil {
					t.Fatalf("bin %d: commit: %v", i, err)
				}
			}
			wtVerifyTools(t, img)
			wtReadBoth(t, img, hp, want)
			got := testutil.Run(t, "icat", img, fmt.Sprint(wtNum(t, w, hp)))
			if exp := wtExportHive(t, got); exp != exp0 {
				t.Errorf("hivexregedit export changed after adding empty bins")
			}
			u.restore(t)
			if a, b := testutil.SHA256File(t, img), testutil.SHA256File(t, orig); a != b {
				t.Errorf("undo: image %s, original %s", a, b)
			}
		})
	}
}

func wtNum(t testing.TB, w *Writer, p string) uint64 {
	t.Helper()
	nums, err := w.begin().resolve(p)
	if err != nil {
		t.Fatal(err)
	}
	return nums[len(nums)-1]
}

// wtExportHive runs hivexregedit --export on hive bytes.
func wtExportHive(t testing.TB, h []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hive")
	if err := os.WriteFile(p, h, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("hivexregedit", "--export", p, `\`).Output()
	if err != nil {
		t.Fatalf("hivexregedit --export: %v", err)
	}
	if !strings.Contains(string(out), "[") {
		t.Fatalf("hivexregedit exported no key")
	}
	return string(out)
}

// TestAgedProperty drives random renames (names lengthened and shortened
// in WinSxS, moves between WinSxS, its component directories and System32,
// hard-linked files included) and random writes, growth and shrinking of
// the fragmented hive file against a model. Every few steps ntfs-3g
// (readdir and stat of every name), fls, ntfsfix -n and Check --all must
// agree with the model, and ntfs-3g and icat must read the hive's expected
// bytes; at the end the saved original bytes undo everything, byte for
// byte. -wt.agedlong runs ten times as many steps.
func TestAgedProperty(t *testing.T) {
	img := wtAged(t, "aged")
	orig := wtSnapshot(t, img)
	const hp = "Windows/System32/config/SOFTWARE"
	w := wtWriter(t, img)
	m := wtModelFromMount(t, img, w.up)
	want := testutil.Run(t, "icat", img, fmt.Sprint(wtNum(t, w, hp)))
	r := rand.New(rand.NewSource(*wtSeed))
	u := &wtUndo{img: img}
	ops, every := 60, 20
	if *wtAgedLong {
		ops, every = 600, 50
	}
	var dirs, files []string
	for p, d := range m.paths {
		if strings.HasPrefix(p, "Windows/WinSxS/") || strings.HasPrefix(p, "Windows/System32/lib") {
			if d {
				dirs = append(dirs, p)
			} else if !strings.HasSuffix(p, "pending.xml") {
				files = append(files, p)
			}
		}
	}
	sort.Strings(dirs)
	sort.Strings(files)
	dirs = append(dirs, "Windows/WinSxS", "Windows/System32")
	for i := 0; i < ops; i++ {
		if r.Intn(3) > 0 {
			k := r.Intn(len(files))
			from := files[k]
			dir := "Windows/WinSxS"
			if r.Intn(3) == 0 {
				dir = dirs[r.Intn(len(dirs))]
			}
			n := 1 + r.Intn(220)
			name := fmt.Sprintf("p%d %s.dll", i, strings.Repeat(string(rune('a'+r.Intn(26))), n))
			to := dir + "/" + name
			if m.existsFold(dir, name) {
				continue
			}
			rs, err := w.PlanRename(from, to)
			if err != nil {
				t.Fatalf("op %d: plan rename %q -> %q: %v", i, from, to, err)
			}
			u.save(t, rs)
			if _, err := w.Rename(from, to); err != nil {
				t.Fatalf("op %d: rename %q -> %q: %v", i, from, to, err)
			}
			m.move(from, to)
			files[k] = to
		} else {
			f, err := w.OpenData(hp)
			if err != nil {
				t.Fatal(err)
			}
			switch k := r.Intn(4); {
			case k < 2: // overwrite anywhere, across extents
				off := r.Int63n(int64(len(want)))
				b := wtRand(r, 1+r.Intn(20000))
				if _, err := f.WriteAt(b, off); err != nil {
					t.Fatalf("op %d: write %d at %d: %v", i, len(b), off, err)
				}
				if end := off + int64(len(b)); end > int64(len(want)) {
					want = append(want, make([]byte, end-int64(len(want)))...)
				}
				copy(want[off:], b)
			case k < 3: // grow: appended clusters
				n := int64(1 + r.Intn(5*4096))
				if err := f.Truncate(int64(len(want)) + n); err != nil {
					t.Fatalf("op %d: grow by %d: %v", i, n, err)
				}
				want = append(want, make([]byte, n)...)
			default: // shrink: runs and extents dropped
				n := r.Int63n(int64(len(want)) / 8)
				if err := f.Truncate(int64(len(want)) - n); err != nil {
					t.Fatalf("op %d: shrink by %d: %v", i, n, err)
				}
				want = want[:int64(len(want))-n]
			}
			rs, err := f.Plan()
			if err != nil {
				t.Fatalf("op %d: %v", i, err)
			}
			u.save(t, rs)
			if _, err := f.Commit(); err != nil {
				t.Fatalf("op %d: commit: %v", i, err)
			}
		}
		if (i+1)%every == 0 || i == ops-1 {
			wtNtfsfix(t, img)
			wtVerify(t, img, m)
			wtReadBoth(t, img, hp, want)
			if t.Failed() {
				t.FailNow()
			}
		}
	}
	u.restore(t)
	if a, b := testutil.SHA256File(t, img), testutil.SHA256File(t, orig); a != b {
		t.Errorf("undo: image %s, original %s", a, b)
	}
}

// TestAgedWinSxSRenames is the "done when": on an aged volume whose
// WinSxS index has an $ATTRIBUTE_LIST (its $INDEX_ALLOCATION spread over
// extension records), 40 renames that each lengthen a name next to
// pending.xml by 200 characters all succeed (the index grows by new INDX
// blocks, its $BITMAP grows); ntfs-3g (readdir and stat of every name),
// fls, ntfsfix -n and Check --all agree with the model; applying the saved
// original bytes restores the image byte for byte.
func TestAgedWinSxSRenames(t *testing.T) {
	for _, kind := range []string{"aged", "4kn"} {
		t.Run(kind, func(t *testing.T) {
			img := wtAged(t, kind)
			orig := wtSnapshot(t, img)
			w := wtWriter(t, img)
			const sxs = "Windows/WinSxS"
			// The 512-byte-sector volume spreads the index allocation over
			// extension records; on the 4Kn one (4 KiB records) it fits one
			// record but the index $BITMAP is non-resident.
			al, n, _ := wtHasAttrList(t, w, sxs, AttrIndexAllocation, i30)
			_, _, bmNR := wtHasAttrList(t, w, sxs, AttrBitmap, i30)
			t.Logf("WinSxS: $ATTRIBUTE_LIST %v, %d $INDEX_ALLOCATION extents, non-resident $BITMAP %v", al, n, bmNR)
			if !al || kind == "aged" && n < 2 || kind == "4kn" && !bmNR {
				t.Fatal("the aged WinSxS no longer has the layout this test covers")
			}
			m := wtModelFromMount(t, img, w.up)
			u := &wtUndo{img: img}
			long := strings.Repeat("L", 200)
			for i := 0; i < 40; i++ {
				from := fmt.Sprintf("%s/cbs%02d.log", sxs, i)
				to := fmt.Sprintf("%s/cbs%02d%s.log", sxs, i, long)
				rs, err := w.PlanRename(from, to)
				if err != nil {
					t.Fatalf("rename %d: plan: %v", i, err)
				}
				u.save(t, rs)
				if _, err := w.Rename(from, to); err != nil {
					t.Fatalf("rename %d: %v", i, err)
				}
				m.move(from, to)
			}
			wtNtfsfix(t, img)
			wtVerify(t, img, m)
			wtReadBoth(t, img, sxs+"/pending.xml", wtPending)
			u.restore(t)
			if a, b := testutil.SHA256File(t, img), testutil.SHA256File(t, orig); a != b {
				t.Errorf("undo: image %s, original %s", a, b)
			}
		})
	}
}

var wtPending = []byte("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<PendingTransaction Version=\"3.1\" Identifier=\"aged\">\n</PendingTransaction>\n")

// wtHoles builds a volume whose free space near the test files is
// one-cluster holes (ntfs-3g: pads, a filler taking the rest, every other
// pad deleted, the filler deleted), so that every cluster the writer takes
// next to a file starts a new run.
func wtHoles(t *testing.T, pads, files int) string {
	t.Helper()
	v := wtMakeVolume(t, 64<<20, "-s", "512", "-c", "4096")
	mp, unmount := wtMount(t, v.path, false)
	J := filepath.Join
	for _, d := range []string{"pad", "src", "idx"} {
		if err := os.Mkdir(J(mp, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < files; i++ {
		if err := os.WriteFile(J(mp, "src", fmt.Sprintf("s%05d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(J(mp, "grow.bin"), bytes.Repeat([]byte{'g'}, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < pads; i++ {
		if err := os.WriteFile(J(mp, "pad", fmt.Sprint(i)), bytes.Repeat([]byte{'p'}, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fl, err := os.Create(J(mp, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []int{1 << 20, 4096} {
		for {
			if _, err := fl.Write(make([]byte, chunk)); err != nil {
				break
			}
		}
	}
	fl.Close()
	for i := 0; i < pads; i += 2 {
		os.Remove(J(mp, "pad", fmt.Sprint(i)))
	}
	os.Remove(J(mp, "filler"))
	unmount()
	return v.path
}

// TestExtensionRecordsCreated: a file and a directory without an
// $ATTRIBUTE_LIST grow through the writer until their run lists outgrow
// the base record: the writer creates the list and new extension records
// (from $MFT:$Bitmap), the index $BITMAP grows (resident, then
// non-resident when the crowded record has no room), and shrinking drops
// extents and frees extension records. ntfs-3g, icat, fls, ntfsfix -n and
// Check --all verify; the saved original bytes undo everything.
func TestExtensionRecordsCreated(t *testing.T) {
	testutil.RequireTool(t, "ntfsfix")
	files := 2500
	img := wtHoles(t, 4000, files)
	orig := wtSnapshot(t, img)
	u := &wtUndo{img: img}
	w := wtWriter(t, img)
	if al, _, _ := wtHasAttrList(t, w, "grow.bin", AttrData, ""); al {
		t.Fatal("grow.bin starts with an $ATTRIBUTE_LIST")
	}
	// The file: one cluster at a time, each a new run.
	r := rand.New(rand.NewSource(3))
	want := bytes.Repeat([]byte{'g'}, 4096)
	f, err := w.OpenData("grow.bin")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 400; i++ {
		b := wtRand(r, 4096)
		if _, err := f.WriteAt(b, int64(len(want))); err != nil {
			t.Fatalf("growth %d: %v", i, err)
		}
		want = append(want, b...)
	}
	rs, err := f.Plan()
	if err != nil {
		t.Fatal(err)
	}
	u.save(t, rs)
	if _, err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	al, n, _ := wtHasAttrList(t, w, "grow.bin", AttrData, "")
	if !al || n < 2 {
		t.Fatalf("grow.bin: $ATTRIBUTE_LIST %v, %d extents after 400 fragmented growths", al, n)
	}
	t.Logf("grow.bin: %d extents", n)
	exts := wtExtensionRecords(t, w, "grow.bin")
	wtMFTBits(t, img, exts, true)
	wtVerifyTools(t, img)
	wtReadBoth(t, img, "grow.bin", want)

	// The directory: long names moved in, in one operation, so the index
	// allocation takes a hole per block.
	m := wtModelFromMount(t, img, w.up)
	tx := w.begin()
	for i := 0; i < files; i++ {
		from := fmt.Sprintf("src/s%05d", i)
		to := fmt.Sprintf("idx/%05d %s", i, strings.Repeat("n", 240))
		if err := tx.rename(from, to); err != nil {
			t.Fatalf("rename %d: %v", i, err)
		}
		m.move(from, to)
	}
	if err := tx.flush(); err != nil {
		t.Fatal(err)
	}
	u.save(t, tx.o.ranges())
	if err := w.commit(tx); err != nil {
		t.Fatal(err)
	}
	al, n, _ = wtHasAttrList(t, w, "idx", AttrIndexAllocation, i30)
	_, _, bmNR := wtHasAttrList(t, w, "idx", AttrBitmap, i30)
	t.Logf("idx: $ATTRIBUTE_LIST %v, %d $INDEX_ALLOCATION extents, non-resident $BITMAP %v", al, n, bmNR)
	if !al || n < 2 {
		t.Errorf("idx did not get an $ATTRIBUTE_LIST and extents")
	}
	wtNtfsfix(t, img)
	wtVerify(t, img, m)

	// Shrink the file back: extents go, extension records are freed.
	f, err = w.OpenData("grow.bin")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(5000); err != nil {
		t.Fatal(err)
	}
	want = want[:5000]
	rs, err = f.Plan()
	if err != nil {
		t.Fatal(err)
	}
	u.save(t, rs)
	if _, err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, n, _ := wtHasAttrList(t, w, "grow.bin", AttrData, ""); n != 1 {
		t.Errorf("grow.bin: %d extents after shrinking to 5000 bytes", n)
	}
	// The emptied extension records are free again in $MFT:$Bitmap.
	wtMFTBits(t, img, exts, false)
	wtVerifyTools(t, img)
	wtReadBoth(t, img, "grow.bin", want)
	u.restore(t)
	if a, b := testutil.SHA256File(t, img), testutil.SHA256File(t, orig); a != b {
		t.Errorf("undo: image %s, original %s", a, b)
	}
}

// TestExtensionRecordRefusals: when $MFT has no free record, a change that
// needs an extension record fails while planning with ErrMFTFull, and
// nothing is written; a record that is free in $MFT:$Bitmap but carries
// the in-use flag is never taken.
func TestExtensionRecordRefusals(t *testing.T) {
	img := wtHoles(t, 2000, 10)
	before := testutil.SHA256File(t, img)
	w := wtWriter(t, img)
	f, err := w.OpenData("grow.bin")
	if err != nil {
		t.Fatal(err)
	}
	// Every record in use: the bitmap as the operation sees it.
	m, err := f.t.mftBits()
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.bits {
		m.bits[i] = 0xFF
	}
	var gerr error
	for i := 0; i < 400 && gerr == nil; i++ {
		_, gerr = f.WriteAt(make([]byte, 4096), int64(4096*(i+1)))
	}
	if !errors.Is(gerr, ErrMFTFull) {
		t.Fatalf("growth past the base record with $MFT full: %v, want ErrMFTFull", gerr)
	}
	if err := f.Discard(); err != nil {
		t.Fatal(err)
	}
	if after := testutil.SHA256File(t, img); after != before {
		t.Error("the image changed after a refused change")
	}
	// A free record whose header says in use is skipped.
	tx := w.begin()
	base, err := tx.record(wtNum(t, w, "grow.bin"))
	if err != nil {
		t.Fatal(err)
	}
	m, err = tx.mftBits()
	if err != nil {
		t.Fatal(err)
	}
	first := uint64(0)
	for n := uint64(firstUserRecord); n < tx.g.records(); n++ {
		if !m.used(n) {
			first = n
			break
		}
	}
	if first == 0 {
		t.Fatal("no free record")
	}
	fake := tx.formatRecord(first, 7, 0)
	if err := tx.g.writeRecordTo(tx.o, fake); err != nil {
		t.Fatal(err)
	}
	r, err := tx.newExtensionRecord(base)
	if err != nil {
		t.Fatal(err)
	}
	if r.Num == first {
		t.Errorf("record %d, free in the bitmap but in use in its header, was taken", first)
	}
}

// TestAgedRenameNameInExtension: ntfs-3g moved the aged hive's $FILE_NAME
// into an extension record. Renaming it (to a long name, then back) removes
// the name there and writes the new one, and the attribute list follows;
// ntfs-3g, fls, ntfsfix -n and Check --all agree, the data is unchanged,
// and undo restores every byte.
func TestAgedRenameNameInExtension(t *testing.T) {
	img := wtAged(t, "aged")
	orig := wtSnapshot(t, img)
	const hp = "Windows/System32/config/SOFTWARE"
	w := wtWriter(t, img)
	tx := w.begin()
	base, err := tx.record(wtNum(t, w, hp))
	if err != nil {
		t.Fatal(err)
	}
	if fns, _ := base.fileNames(); len(fns) != 0 {
		t.Fatalf("the aged hive keeps its $FILE_NAME in the base record: the test no longer covers names in extension records")
	}
	want := testutil.Run(t, "icat", img, fmt.Sprint(base.Num))
	m := wtModelFromMount(t, img, w.up)
	u := &wtUndo{img: img}
	to := hp + ".old " + strings.Repeat("o", 200)
	for _, step := range [][2]string{{hp, to}, {to, hp + ".bak"}} {
		rs, err := w.PlanRename(step[0], step[1])
		if err != nil {
			t.Fatalf("plan rename %q: %v", step[0], err)
		}
		u.save(t, rs)
		if _, err := w.Rename(step[0], step[1]); err != nil {
			t.Fatalf("rename %q: %v", step[0], err)
		}
		m.move(step[0], step[1])
	}
	wtNtfsfix(t, img)
	wtVerify(t, img, m)
	wtReadBoth(t, img, hp+".bak", want)
	u.restore(t)
	if a, b := testutil.SHA256File(t, img), testutil.SHA256File(t, orig); a != b {
		t.Errorf("undo: image %s, original %s", a, b)
	}
}

// TestAgedBigDirectory: WinSxS/Manifests holds 50,000 entries (a three-level
// index). Names are lengthened, moved out to WinSxS and back; ntfs-3g
// (readdir and stat of every name), fls, ntfsfix -n and Check --all agree
// with the model; undo restores every byte.
//
// Building the volume and checking 50,000 names after every rename take
// minutes: it runs with -wt.agedlong only.
func TestAgedBigDirectory(t *testing.T) {
	if !*wtAgedLong {
		t.Skip("the 50,000-entry volume runs with -wt.agedlong (minutes)")
	}
	img := wtAged(t, "big")
	orig := wtSnapshot(t, img)
	w := wtWriter(t, img)
	const big = "Windows/WinSxS/Manifests"
	if es, err := w.List(big); err != nil || len(es) < 50000 {
		t.Fatalf("%s: %d entries (%v), want 50,000", big, len(es), err)
	}
	if d, _ := wtDepth(t, w, big); d < 3 {
		t.Logf("%s: index depth %d", big, d)
	}
	m := wtModelFromMount(t, img, w.up)
	u := &wtUndo{img: img}
	r := rand.New(rand.NewSource(5))
	for i := 0; i < 40; i++ {
		n := r.Intn(50000)
		from := fmt.Sprintf("%s/x86_microsoft-windows-m%06d_31bf3856ad364e35_10.0.19041.1_none.manifest", big, n)
		if _, ok := m.paths[from]; !ok {
			continue
		}
		to := fmt.Sprintf("%s/x86_microsoft-windows-m%06d_%s.manifest", big, n, strings.Repeat("q", 150))
		if i%4 == 3 {
			to = fmt.Sprintf("Windows/WinSxS/moved out %d.manifest", i)
		}
		rs, err := w.PlanRename(from, to)
		if err != nil {
			t.Fatalf("rename %d: plan: %v", i, err)
		}
		u.save(t, rs)
		if _, err := w.Rename(from, to); err != nil {
			t.Fatalf("rename %d %q -> %q: %v", i, from, to, err)
		}
		m.move(from, to)
	}
	wtNtfsfix(t, img)
	wtVerify(t, img, m)
	u.restore(t)
	if a, b := testutil.SHA256File(t, img), testutil.SHA256File(t, orig); a != b {
		t.Errorf("undo: image %s, original %s", a, b)
	}
}

// wtExtensionRecords lists the extension records holding the unnamed
// $DATA of the file at p.
func wtExtensionRecords(t testing.TB, w *Writer, p string) []uint64 {
	t.Helper()
	tx := w.begin()
	base, err := tx.record(wtNum(t, w, p))
	if err != nil {
		t.Fatal(err)
	}
	nr, ok, err := tx.loadNR(base, AttrData, "")
	if err != nil || !ok {
		t.Fatalf("%s: %v", p, err)
	}
	var out []uint64
	for _, e := range nr.exts {
		if e.rec != base.Num {
			out = append(out, e.rec)
		}
	}
	return out
}

// wtMFTBits checks the $MFT:$Bitmap bits of records as sleuthkit reads
// them (icat of $MFT's $BITMAP attribute, type 176).
func wtMFTBits(t testing.TB, img string, recs []uint64, inUse bool) {
	t.Helper()
	bits := testutil.Run(t, "icat", img, "0-176")
	for _, n := range recs {
		set := n/8 < uint64(len(bits)) && bits[n/8]&(1<<(n%8)) != 0
		if set != inUse {
			t.Errorf("record %d: $MFT:$Bitmap bit %v, want %v", n, set, inUse)
		}
	}
}
