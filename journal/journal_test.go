package journal

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

const imageSize = 1 << 20

var testID = VolumeID{Serial: 0x1234ABCD5678EF90, Size: imageSize, Name: "disk.img"}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// newImage writes data to a fresh file in dir and returns it opened
// read-write.
func newImage(t testing.TB, dir string, data []byte) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "disk.img"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	return f
}

func fileBytes(t testing.TB, f *os.File) []byte {
	t.Helper()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return b
}

// planWrites plans, into o, the kind of writes a fix makes: a boot sector,
// records scattered over the volume, sequential sector writes that merge,
// overlapping rewrites of the same record, one write of unchanged bytes,
// and the last sector.
func planWrites(t testing.TB, o *Overlay, seed uint64) {
	t.Helper()
	w := func(off int64, n int, label string) {
		t.Helper()
		if _, err := o.Labeled(label).WriteAt(randomBytes(seed+uint64(off), n), off); err != nil {
			t.Fatal(err)
		}
	}
	w(0, 512, "boot sector")
	w(0x4000, 1024, "MFT record 16")
	w(0x4400, 1024, "MFT record 17") // adjacent: merges
	w(0x4200, 64, "MFT record 16 again")
	for i := range 6 {
		w(0x20000+int64(i)*4096, 4096, "hive SOFTWARE bin") // sequential: merges
	}
	w(0x30000, 3, "bitmap byte")
	w(0x30010, 7, "bitmap bytes")
	w(0x30001, 12, "bitmap bridge") // bridges the two above
	w(0x50000, 777, "odd-sized value")
	// Unchanged bytes: a rewrite of what is already there.
	same := make([]byte, 100)
	if _, err := o.ReadAt(same, 0x60000); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Labeled("unchanged").WriteAt(same, 0x60000); err != nil {
		t.Fatal(err)
	}
	w(imageSize-512, 512, "backup boot sector")
}

func header() Header {
	return Header{ID: testID, Target: "disk.img", Offset: 0, Tool: "wuoffline test", Note: "test plan", Created: time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC)}
}

// prepared creates a journal of o in dir and prepares it: the state of a
// fix about to write.
func prepared(t testing.TB, dir string, h Header, o *Overlay) *Journal {
	t.Helper()
	j, err := Create(dir, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.AddOverlay(o); err != nil {
		t.Fatal(err)
	}
	if err := j.Prepare(); err != nil {
		t.Fatal(err)
	}
	return j
}

// mustChanges returns o.Changes(), panicking on an error: the tests'
// bases are in memory or local files and always readable.
func mustChanges(o *Overlay) []Change {
	cs, err := o.Changes()
	if err != nil {
		panic(err)
	}
	return cs
}

// expected applies o's changes to a copy of orig.
func expected(orig []byte, o *Overlay) []byte {
	b := append([]byte(nil), orig...)
	for _, c := range mustChanges(o) {
		copy(b[c.Off:], c.Data)
	}
	return b
}

func sum(b []byte) [32]byte { return sha256.Sum256(b) }

// TestCrashEveryK stops the fix after k writes, for every k from 0 to the
// total and for every kind of fault, on a real file; then undo must bring
// the image back byte for byte, and in a second run resume must finish the
// fix exactly (and undo must still take it all back).
func TestCrashEveryK(t *testing.T) {
	orig := randomBytes(1, imageSize)
	probe := NewOverlay(bytes.NewReader(orig), imageSize)
	planWrites(t, probe, 7)
	total := len(mustChanges(probe))
	if total < 6 {
		t.Fatalf("plan has %d ranges, want several", total)
	}
	want := expected(orig, probe)
	for _, mode := range []testutil.FaultMode{testutil.FaultError, testutil.FaultPowerCut, testutil.FaultTorn} {
		for k := 0; k <= total; k++ {
			for _, finish := range []string{"undo", "resume", "undo-aligned"} {
				t.Run(fmt.Sprintf("%v/k=%d/%s", mode, k, finish), func(t *testing.T) {
					dir := t.TempDir()
					img := newImage(t, dir, orig)
					o := NewOverlay(img, imageSize)
					if finish == "undo-aligned" {
						o.SetAlign(4096) // fewer, larger ranges: k may exceed their count
					}
					planWrites(t, o, 7)
					total := len(mustChanges(o))
					j := prepared(t, dir, header(), o)
					st, err := os.Stat(j.Path())
					if err != nil {
						t.Fatal(err)
					}
					preparedSize := st.Size()
					fw := testutil.NewFaultWriter(img, k, mode)
					err = j.Apply(fw, fw.Sync(img.Sync))
					j.Close()
					switch {
					case k >= total && err != nil:
						t.Fatalf("Apply with no fault: %v", err)
					case mode == testutil.FaultError && k < total && !errors.Is(err, testutil.ErrInjected):
						t.Fatalf("Apply = %v, want the injected error", err)
					}
					if fw.Cut() && mode != testutil.FaultError {
						// The power was cut: the commit mark never reached
						// the journal either.
						if err := os.Truncate(j.Path(), preparedSize); err != nil {
							t.Fatal(err)
						}
					}
					infos, err := Find(dir, testID)
					if err != nil || len(infos) != 1 {
						t.Fatalf("Find = %d journals, %v", len(infos), err)
					}
					wantState := StateInterrupted
					if k >= total {
						wantState = StateCommitted
					}
					if infos[0].State != wantState || infos[0].Damage != nil {
						t.Fatalf("state %s (damage %v), want %s", infos[0].State, infos[0].Damage, wantState)
					}
					if got := infos[0].Interrupted(); got != (wantState == StateInterrupted) {
						t.Fatalf("Interrupted() = %v", got)
					}
					if infos[0].Interrupted() && !strings.Contains(infos[0].Advice("disk.img"), "wuoffline undo disk.img") {
						t.Errorf("advice %q does not say how to roll back", infos[0].Advice("disk.img"))
					}
					if finish == "resume" && wantState == StateInterrupted {
						rep, err := Resume(j.Path(), img, img, img.Sync)
						if err != nil || !rep.Complete() || !rep.Marked {
							t.Fatalf("Resume: %v, %+v", err, rep)
						}
						if sum(fileBytes(t, img)) != sum(want) {
							t.Fatal("after resume the image is not the fully fixed image")
						}
						if info, _ := Open(j.Path()); info.State != StateCommitted {
							t.Fatalf("after resume state %s", info.State)
						}
					}
					rep, err := Undo(j.Path(), img, img, img.Sync)
					if err != nil {
						t.Fatalf("Undo: %v", err)
					}
					if !rep.Complete() || !rep.Marked || rep.Done+rep.Already != total {
						t.Fatalf("Undo report %+v", rep)
					}
					if sum(fileBytes(t, img)) != sum(orig) {
						t.Fatal("after undo the image differs from the original")
					}
					if info, _ := Open(j.Path()); info.State != StateUndone || info.Damage != nil {
						t.Fatalf("after undo state %s, damage %v", info.State, info.Damage)
					}
				})
			}
		}
	}
}

// commitPlan runs a full fix on a fresh image and returns it, its
// original bytes, the overlay and the journal path.
func commitPlan(t *testing.T) (dir string, img *os.File, orig []byte, o *Overlay, path string) {
	t.Helper()
	dir = t.TempDir()
	orig = randomBytes(2, imageSize)
	img = newImage(t, dir, orig)
	o = NewOverlay(img, imageSize)
	planWrites(t, o, 11)
	path, err := Commit(dir, header(), o, img, img.Sync)
	if err != nil {
		t.Fatal(err)
	}
	if got := fileBytes(t, img); !bytes.Equal(got, expected(orig, o)) {
		t.Fatal("Commit did not write the plan")
	}
	return dir, img, orig, o, path
}

// TestChangedSince: after the fix, "Windows" rewrites parts of two ranges;
// undo restores every other range, touches none of the changed bytes, and
// reports exactly those two ranges and where they changed.
func TestChangedSince(t *testing.T) {
	_, img, orig, o, path := commitPlan(t)
	cs := mustChanges(o)
	a, b := cs[1], cs[len(cs)-2]
	later := map[int64]bool{}
	scribble := func(off int64, n int) {
		cur := fileBytes(t, img)
		p := make([]byte, n)
		for i := range p {
			// A byte that is neither the original nor ours.
			for v := byte(0); ; v++ {
				if v != orig[off+int64(i)] && v != cur[off+int64(i)] {
					p[i] = v
					break
				}
			}
		}
		if _, err := img.WriteAt(p, off); err != nil {
			t.Fatal(err)
		}
		later[off] = true
	}
	scribble(a.Off+10, 5)
	scribble(b.Off+b.Len(), 0) // no-op write: not a change
	scribble(b.Off+int64(len(b.Data))-1, 1)
	before := fileBytes(t, img)

	rep, err := Undo(path, img, img, img.Sync)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Changed != 2 || rep.Done != len(cs)-2 || rep.Lost != 0 || rep.Complete() {
		t.Fatalf("report: done %d already %d changed %d lost %d", rep.Done, rep.Already, rep.Changed, rep.Lost)
	}
	for _, r := range rep.Results {
		if r.Outcome != ChangedSince {
			continue
		}
		switch r.Off {
		case a.Off:
			if r.FirstChanged != a.Off+10 || r.ChangedBytes != 5 {
				t.Errorf("range %#x: first changed %#x, %d bytes", r.Off, r.FirstChanged, r.ChangedBytes)
			}
		case b.Off:
			if r.FirstChanged != b.Off+int64(len(b.Data))-1 || r.ChangedBytes != 1 {
				t.Errorf("range %#x: first changed %#x, %d bytes", r.Off, r.FirstChanged, r.ChangedBytes)
			}
		default:
			t.Errorf("range %#x reported changed", r.Off)
		}
	}
	got := fileBytes(t, img)
	want := append([]byte(nil), orig...)
	for _, c := range []Change{a, b} {
		copy(want[c.Off:c.Off+int64(len(c.Data))], before[c.Off:])
	}
	if !bytes.Equal(got, want) {
		t.Fatal("undo touched a changed range or missed an unchanged one")
	}
	info, err := Open(path)
	if err != nil || info.State != StateUndone || info.LastUndo == nil || info.LastUndo.Changed != 2 {
		t.Fatalf("after partial undo: %+v, %v", info, err)
	}
	// Three units: the two of the MFT record 16 range, and "unchanged".
	if adv := info.Advice("disk.img"); !strings.Contains(adv, "could not take back 3") {
		t.Errorf("advice %q", adv)
	}
}

// mem is a bounds-checked in-memory volume.
type mem []byte

func (m mem) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(m)) {
		return 0, fmt.Errorf("mem: read at %#x", off)
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m mem) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(m)) || int64(len(p)) > int64(len(m))-off {
		return 0, fmt.Errorf("mem: write %#x+%d beyond %#x", off, len(p), len(m))
	}
	return copy(m[off:], p), nil
}

func TestDoubleUndo(t *testing.T) {
	_, img, orig, o, path := commitPlan(t)
	n, same := len(mustChanges(o)), 0
	for _, c := range mustChanges(o) {
		if bytes.Equal(c.Data, orig[c.Off:c.Off+c.Len()]) {
			same++ // a write of the bytes already there
		}
	}
	if same != 1 {
		t.Fatalf("%d unchanged ranges, the plan has one", same)
	}
	for i, want := range []struct{ done, already int }{{n - same, same}, {0, n}} {
		rep, err := Undo(path, img, img, img.Sync)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Done != want.done || rep.Already != want.already || !rep.Complete() {
			t.Fatalf("undo %d: done %d already %d, want %+v", i+1, rep.Done, rep.Already, want)
		}
		if !bytes.Equal(fileBytes(t, img), orig) {
			t.Fatalf("undo %d: image not original", i+1)
		}
	}
	if _, err := Resume(path, img, img, img.Sync); err == nil {
		t.Error("Resume of an undone journal succeeded")
	}
}

// TestCutJournal cuts a committed journal at every length. Before its
// plan mark ends the journal is damaged, never "planned": a journal gets
// its name only once its plan mark is flushed. Read reports a
// DamagedError of kind cut; undo restores exactly the groups whose frames
// all survived, returns the DamagedError and leaves the journal as it is;
// every unit ends wholly original or wholly fixed. A cut after the plan
// mark is a torn mark append: the journal is interrupted, undo restores
// everything and marks it.
func TestCutJournal(t *testing.T) {
	dir := t.TempDir()
	orig := randomBytes(3, imageSize)
	img := newImage(t, dir, orig)
	o := NewOverlay(img, imageSize)
	o.Labeled("a").WriteAt(randomBytes(10, 40), 0)
	o.Labeled("b").WriteAt(randomBytes(11, 30), 0x1000)
	o.Labeled("c").WriteAt(randomBytes(12, 20), 0x2000)
	o.Labeled("a").WriteAt(randomBytes(13, 20), 0x3000) // a second range of unit a
	path, err := Commit(dir, header(), o, img, img.Sync)
	if err != nil {
		t.Fatal(err)
	}
	fixed := fileBytes(t, img)
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := Read(bytes.NewReader(full), int64(len(full)))
	if err != nil || info.Damage != nil || info.State != StateCommitted {
		t.Fatal(err, info.Damage)
	}
	headerEnd := info.Records[0].pos
	last := info.Records[len(info.Records)-1]
	planEnd := last.pos + frameHead + last.size + frameTail + frameHead + preparedSize + frameTail
	for cut := 0; cut <= len(full); cut++ {
		info, err := Read(bytes.NewReader(full[:cut]), int64(cut))
		var de *DamagedError
		if int64(cut) < headerEnd {
			if !errors.As(err, &de) || de.Kind != DamageHeader {
				t.Fatalf("cut %d: a journal without a whole header: %v", cut, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		switch {
		case int64(cut) < planEnd:
			if de = info.Damaged(); de == nil || de.Kind != DamageCut || !de.Prepared || info.Torn {
				t.Logf("planEnd %d len %d recs %+v", planEnd, len(full), info.Records)
				t.Fatalf("cut %d: damage %v torn %v", cut, info.Damage, info.Torn)
			}
		case cut == len(full):
			if info.Damage != nil || info.State != StateCommitted {
				t.Fatalf("cut %d: %v %s", cut, info.Damage, info.State)
			}
		default:
			if info.Damaged() != nil || info.Torn != (int64(cut) > planEnd) || info.State != StateInterrupted {
				t.Fatalf("cut %d: damage %v torn %v state %s", cut, info.Damage, info.Torn, info.State)
			}
		}
		// Same with a zero-filled tail (the file system extended the file
		// but never wrote the data).
		padded := append(append([]byte(nil), full[:cut]...), make([]byte, 300)...)
		info2, err := Read(bytes.NewReader(padded), int64(len(padded)))
		if err != nil || (info2.Damaged() != nil) != (info.Damaged() != nil) || len(info2.Records) != len(info.Records) {
			t.Fatalf("cut %d + zeros: %+v, %v", cut, info2, err)
		}
		if cut%5 != 0 && int64(cut) != planEnd && cut != len(full) {
			continue // undo on a sample of cuts: it writes files
		}
		if _, err := img.WriteAt(fixed, 0); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "j.journal")
		if err := os.WriteFile(p, padded, 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := Undo(p, img, img, img.Sync)
		got := fileBytes(t, img)
		states := unitStates(t, o, orig, fixed, got)
		if info.Damaged() != nil {
			if !errors.As(err, &de) || rep == nil || rep.Marked || rep.Complete() {
				t.Fatalf("cut %d: undo of a cut journal: %v, %+v", cut, err, rep)
			}
			if now, _ := os.ReadFile(p); !bytes.Equal(now, padded) {
				t.Fatalf("cut %d: a damaged journal was modified", cut)
			}
			for _, u := range info.Units {
				want := "new"
				if info.Groups[groupIndex(info, u.Group)].Intact {
					want = "old"
				}
				if states[o.byLabel[u.Label]] != want {
					t.Fatalf("cut %d: unit %q is %s, want %s", cut, u.Label, states[o.byLabel[u.Label]], want)
				}
			}
			continue
		}
		if err != nil || !rep.Complete() || !rep.Marked || !bytes.Equal(got, orig) {
			t.Fatalf("cut %d: undo %+v, %v", cut, rep, err)
		}
	}
}

// unitStates says for each unit of o whether got holds it wholly "old"
// (orig) or wholly "new" (fixed); a unit that is neither fails the test:
// undo must never leave part of a unit.
func unitStates(t testing.TB, o *Overlay, orig, fixed, got []byte) map[int]string {
	t.Helper()
	states := map[int]string{}
	for _, c := range mustChanges(o) {
		end := c.Off + c.Len()
		var st string
		switch g := got[c.Off:end]; {
		case bytes.Equal(orig[c.Off:end], fixed[c.Off:end]):
			continue // a write of unchanged bytes: both
		case bytes.Equal(g, orig[c.Off:end]):
			st = "old"
		case bytes.Equal(g, fixed[c.Off:end]):
			st = "new"
		default:
			t.Fatalf("range %#x+%d (%s) is neither original nor fixed: a partial unit", c.Off, c.Len(), c.Label)
		}
		for _, u := range c.Units {
			if prev, ok := states[u]; ok && prev != st {
				t.Fatalf("unit %d (%s) is partly old and partly new", u, o.UnitLabel(u))
			}
			states[u] = st
		}
	}
	return states
}

// TestDamagedJournal flips a byte in the middle of a saved range: the
// parse skips the damaged frame and reads the rest; undo restores every
// group but the damaged one, which stays wholly fixed, returns the
// DamagedError and leaves the journal file exactly as it was.
func TestDamagedJournal(t *testing.T) {
	_, img, orig, o, path := commitPlan(t)
	fixed := fileBytes(t, img)
	info, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := info.Records[2]
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw[bad.pos+bad.data+1] ^= 0x40
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	dinfo, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	de := dinfo.Damaged()
	if de == nil || de.Kind != DamageFrames || dinfo.Torn || dinfo.DamageAt != bad.pos || len(dinfo.Records) != len(info.Records)-1 || dinfo.State != StateCommitted {
		t.Fatalf("damage %v torn %v at %#x records %d state %s", dinfo.Damage, dinfo.Torn, dinfo.DamageAt, len(dinfo.Records), dinfo.State)
	}
	if de.PlannedUnits != len(info.Units) || de.UnitsIntact >= de.PlannedUnits || de.Units > de.PlannedUnits {
		t.Fatalf("damage counts %+v", de)
	}
	if !strings.Contains(dinfo.Advice("disk.img"), "damaged") {
		t.Errorf("advice %q", dinfo.Advice("disk.img"))
	}
	if _, err := Resume(path, img, img, nil); err == nil {
		t.Error("Resume of a damaged journal succeeded")
	}
	rep, err := Undo(path, img, img, img.Sync)
	if !errors.As(err, &de) || de.Written != WrittenSome || !strings.Contains(err.Error(), path) {
		t.Fatalf("Undo = %v, want a DamagedError naming the file", err)
	}
	if rep.Done == 0 || rep.Damage == nil || rep.Marked || rep.Complete() || rep.UnitsLeft+de.PlannedUnits-de.Units == 0 {
		t.Fatalf("report %+v", rep)
	}
	states := unitStates(t, o, orig, fixed, fileBytes(t, img))
	for _, u := range dinfo.Units {
		want := "old"
		if u.Group == bad.Group {
			want = "new"
		}
		if st, ok := states[o.byLabel[u.Label]]; ok && st != want {
			t.Errorf("unit %q: %s, want %s", u.Label, st, want)
		}
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, raw) {
		t.Fatal("a damaged journal was modified")
	}
}

func TestAddRules(t *testing.T) {
	dir := t.TempDir()
	base := bytes.NewReader(randomBytes(4, 0x10000))
	j, err := Create(dir, header())
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	steps := []struct {
		off  int64
		n    int
		fail bool
	}{
		{0x100, 0x100, false},
		{0x200, 0x10, false}, // adjacent after
		{0xf0, 0x10, false},  // adjacent before
		{0x1ff, 2, true},     // overlaps
		{0x80, 0x1000, true}, // covers
		{0xfff0, 0x20, true}, // past the end of the base: old bytes unreadable
		{-1, 4, true},        // negative
	}
	for _, s := range steps {
		err := j.Add(s.off, make([]byte, s.n), "x", base)
		if (err != nil) != s.fail {
			t.Errorf("Add(%#x, %d) = %v, want failure %v", s.off, s.n, err, s.fail)
		}
	}
	// The unreadable range made the journal unusable: it cannot be
	// prepared, and Abort removes it.
	if err := j.Prepare(); err == nil {
		t.Error("Prepare after a failed Add succeeded")
	}
	if err := j.Abort(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{j.Path(), j.Path() + partSuffix} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("aborted journal still there: %v", err)
		}
	}

	j2, err := Create(dir, header())
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if err := j2.Apply(make(mem, 16), nil); err == nil {
		t.Error("Apply before Prepare succeeded")
	}
	if err := j2.Prepare(); err != nil {
		t.Fatal(err)
	}
	if err := j2.Add(0, []byte{1}, "late", base); err == nil {
		t.Error("Add after Prepare succeeded")
	}
	if err := j2.Abort(); err == nil {
		t.Error("Abort of a prepared journal succeeded")
	}

	// An empty plan: no journal, no write.
	empty := t.TempDir()
	if path, err := Commit(empty, header(), NewOverlay(base, 0x10000), make(mem, 0), nil); path != "" || err != nil {
		t.Errorf("Commit(empty plan) = %q, %v", path, err)
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Errorf("empty plan left %d files", len(ents))
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	other := testID
	other.Name = "disk2.img" // a clone: same serial and size, another image
	mk := func(id VolumeID, hours int) string {
		h := header()
		h.ID = id
		h.Created = h.Created.Add(time.Duration(hours) * time.Hour)
		j, err := Create(dir, h)
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Prepare(); err != nil {
			t.Fatal(err)
		}
		j.Close()
		return j.Path()
	}
	p0 := mk(testID, 0)
	mk(other, 1)
	p2 := mk(testID, 2)
	p3 := mk(testID, 3)
	p0b := mk(testID, 0) // same creation time: a second name, both kept
	if p0b == p0 {
		t.Fatal("same name twice")
	}
	// A journal named for this volume whose header is unreadable, and
	// unrelated entries.
	h := header()
	h.Created = h.Created.Add(-time.Hour)
	bad := filepath.Join(dir, FileName(h))
	os.WriteFile(bad, []byte("WUOJRNL\x00garbage garbage"), 0o600)
	os.WriteFile(filepath.Join(dir, "notes.journal"), []byte("hello"), 0o600)
	os.Mkdir(filepath.Join(dir, prefix(testID)+"dir.journal"), 0o700)

	infos, err := Find(dir, testID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range infos {
		got = append(got, in.Path)
	}
	// p0b was created last, with a clock set back: it is the newest.
	want := []string{p0b, p3, p2, p0, bad}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Find =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if last := infos[len(infos)-1]; last.State != "" || last.Damage == nil {
		t.Errorf("unreadable journal: state %q damage %v", last.State, last.Damage)
	}
	if infos, err := Find(filepath.Join(dir, "missing"), testID); err != nil || infos != nil {
		t.Fatalf("missing dir: %v, %v", infos, err)
	}
}

func TestChooseDir(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	os.WriteFile(img, nil, 0o600)
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)
	tests := []struct {
		target string
		isFile bool
		flag   string
		want   string
		err    bool
	}{
		{img, true, "", dir, false},
		{"/dev/sdz", false, dir, dir, false},
		{img, true, dir, dir, false},
		{"/dev/sdz", false, "", filepath.Dir(exe), false},
		{"/dev/sdz", false, filepath.Join(dir, "missing"), "", true},
		{"/dev/sdz", false, img, "", true}, // a file, not a directory
	}
	for _, tt := range tests {
		got, err := ChooseDir(tt.target, tt.isFile, tt.flag)
		if tt.err {
			if !errors.Is(err, ErrNoJournalDir) {
				t.Errorf("ChooseDir(%q, %v, %q) = %q, %v; want ErrNoJournalDir", tt.target, tt.isFile, tt.flag, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ChooseDir(%q, %v, %q) = %q, %v; want %q", tt.target, tt.isFile, tt.flag, got, err, tt.want)
		}
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o500)
		if err := CheckDir(ro); !errors.Is(err, ErrNoJournalDir) {
			t.Errorf("CheckDir(read-only) = %v", err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1+boolInt(os.Geteuid() != 0) {
		t.Errorf("probe files left behind: %v", ents)
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	h := header()
	h.Target = `\\.\D:`
	h.Note = strings.Repeat("é", 3000) // cut at a rune boundary
	h.ID.Name = "a/b:c*.img"
	h.Space, h.OldSize, h.NewSize, h.Block = SpaceFile, 1000, 5000, 4096
	h.Seq, h.jid = 7, 0x1122334455667788
	got, err := decodeHeader(encodeHeader(h))
	if err != nil {
		t.Fatal(err)
	}
	h.Note = cut(h.Note, maxString)
	h.Version = Version
	if got != h {
		t.Fatalf("round trip:\n%+v\nwant\n%+v", got, h)
	}
	// Versions 1 and 2 still read: Seq 0 in version 1, space "volume",
	// block 512, sizes unknown.
	for _, v := range []int{1, 2} {
		got, err := decodeHeader(legacyHeader(v, h))
		if err != nil || got.ID != h.ID || got.Note != h.Note || got.Space != SpaceVolume || got.Block != 512 || got.OldSize != 0 || got.Version != v {
			t.Fatalf("version %d header: %+v, %v", v, got, err)
		}
		if wantSeq := uint64(0); v == 2 && got.Seq != h.Seq || v == 1 && got.Seq != wantSeq {
			t.Fatalf("version %d: seq %d", v, got.Seq)
		}
	}
	b := encodeHeader(h)
	for _, v := range []uint16{0, 4} {
		if _, err := decodeHeader(append(binary.LittleEndian.AppendUint16(nil, v), b[2:]...)); err == nil {
			t.Errorf("format version %d accepted", v)
		}
	}
	bad := h
	bad.Space = "disk"
	if _, err := decodeHeader(encodeHeader(bad)); err == nil {
		t.Error("an unknown coordinate space accepted")
	}
	if name := FileName(h); strings.ContainsAny(name, `/\:*`) || !strings.HasPrefix(name, "a_b_c_.img.wuoffline-1234ABCD5678EF90-20261123T200000") {
		t.Errorf("FileName = %q", name)
	}
}

// TestUndoClockBackwards: the rescue machine's clock is set back between
// two fixes of the same bytes. Find must still list the second fix first,
// so that undoing in its order gives back the original bytes; ordering by
// the creation time would undo the first fix first, find its range changed
// since, skip it, and leave the first fix's bytes behind.
func TestUndoClockBackwards(t *testing.T) {
	dir := t.TempDir()
	orig := randomBytes(3, imageSize)
	img := newImage(t, dir, orig)
	h := header()
	for i, created := range []time.Time{h.Created, h.Created.Add(-time.Hour)} {
		o := NewOverlay(img, imageSize)
		if _, err := o.WriteAt(randomBytes(uint64(20+i), 4096), 0x8000); err != nil {
			t.Fatal(err)
		}
		h.Created = created
		if _, err := Commit(dir, h, o, img, img.Sync); err != nil {
			t.Fatal(err)
		}
	}
	infos, err := Find(dir, testID)
	if err != nil {
		t.Fatal(err)
	}
	todo := Undoable(infos)
	if len(todo) != 2 || todo[0].Header.Seq != 2 || todo[1].Header.Seq != 1 {
		t.Fatalf("Undoable: %d journals, want seq 2 then 1", len(todo))
	}
	for _, in := range todo {
		rep, err := Undo(in.Path, img, img, img.Sync)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Complete() || rep.Changed != 0 {
			t.Fatalf("undo %s: %s", in.Path, rep.Summary())
		}
	}
	if !bytes.Equal(fileBytes(t, img), orig) {
		t.Fatal("image not original after undoing both fixes, newest first")
	}
}

func TestUndoable(t *testing.T) {
	mk := func(s State, damage error, torn bool) *Info {
		return &Info{State: s, Torn: torn, Damage: damage}
	}
	dmg := func(k DamageKind) error { return &DamagedError{Kind: k} }
	infos := []*Info{
		mk(StateCommitted, nil, false),                      // 0: yes
		mk(StateUndone, nil, false),                         // 1: no
		mk(StateInterrupted, nil, false),                    // 2: yes
		mk(StatePlanned, nil, false),                        // 3: no: nothing written
		mk(StatePlanned, errors.New("torn"), true),          // 4: no: torn before the prepared mark (version 2)
		mk(StateInterrupted, errors.New("torn mark"), true), // 5: yes: interrupted, mark torn
		mk(StateCommitted, dmg(DamageFrames), false),        // 6: yes: reported
		mk("", dmg(DamageHeader), false),                    // 7: yes: reported, never "nothing to undo"
		mk("", dmg(DamageMissing), false),                   // 8: yes: reported
		mk(StateUndone, dmg(DamageCut), false),              // 9: yes: reported
	}
	got := Undoable(infos)
	want := []*Info{infos[0], infos[2], infos[5], infos[6], infos[7], infos[8], infos[9]}
	if len(got) != len(want) {
		t.Fatalf("Undoable = %d journals, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Undoable[%d] is not the expected journal", i)
		}
	}
	if !testID.Same(VolumeID{testID.Serial, testID.Size, "DISK.IMG"}) || testID.Same(VolumeID{testID.Serial, testID.Size + 1, testID.Name}) {
		t.Error("VolumeID.Same")
	}
}

func TestReportSummary(t *testing.T) {
	_, img, _, _, path := commitPlan(t)
	img.WriteAt([]byte{0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04}, 0x20) // inside the boot sector range
	rep, err := Undo(path, img, img, img.Sync)
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Summary()
	for _, want := range []string{"undo:", "restored", "1 changed since (not touched)"} {
		if !strings.Contains(s, want) {
			t.Errorf("Summary %q lacks %q", s, want)
		}
	}
	var labels []string
	for _, r := range rep.Results {
		if r.Outcome == ChangedSince {
			labels = append(labels, r.Label)
		}
	}
	if len(labels) != 1 || labels[0] != "boot sector" {
		t.Errorf("changed ranges %q, want the boot sector", labels)
	}
}

// TestUndoReadOnlyJournal: a journal on a write-protected stick still
// restores the volume; it just cannot be marked.
func TestUndoReadOnlyJournal(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mount")
	_, img, orig, _, path := commitPlan(t)
	ro := filepath.Join(t.TempDir(), "stick")
	os.Mkdir(ro, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", ro).CombinedOutput(); err != nil {
		testutil.Unavailable(t, "mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", ro).Run() })
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	jp := filepath.Join(ro, filepath.Base(path))
	if err := os.WriteFile(jp, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "mount", "-o", "remount,ro", ro)
	rep, err := Undo(jp, img, img, img.Sync)
	if err != nil || rep.Marked || !rep.Complete() || !strings.Contains(rep.Summary(), "not updated") {
		t.Fatalf("Undo with a read-only journal: %+v, %v", rep, err)
	}
	if !bytes.Equal(fileBytes(t, img), orig) {
		t.Fatal("image not restored")
	}
}

// memDev is a mem with a no-op Sync: a Device.
type memDev struct{ mem }

func (memDev) Sync() error { return nil }

// TestAdviceWith: every command the advice suggests carries the journal
// directory the user named.
func TestAdviceWith(t *testing.T) {
	in := &Info{Path: "j.journal", State: StateInterrupted}
	if a := in.AdviceWith("disk.img", "/media/stick"); strings.Count(a, "--journal /media/stick disk.img") != 2 {
		t.Errorf("interrupted: %q", a)
	}
	in = &Info{Path: "j.journal", Damage: &DamagedError{Path: "j.journal", Kind: DamageFrames}}
	if a := in.AdviceWith("disk.img", "/media/stick"); !strings.Contains(a, "wuoffline undo --journal /media/stick disk.img") || !strings.Contains(a, "j.journal") {
		t.Errorf("damaged: %q", a)
	}
	if a := in.Advice("disk.img"); !strings.Contains(a, "`wuoffline undo disk.img`") {
		t.Errorf("damaged without a journal directory: %q", a)
	}
}

// TestForeignFrame: a frame spliced in from another journal of the same
// plan (valid CRC, same group numbers) is refused by its journal id: the
// group it claims to complete stays incomplete and is not restored.
func TestForeignFrame(t *testing.T) {
	dir := t.TempDir()
	orig := randomBytes(60, imageSize)
	img := newImage(t, dir, orig)
	var raws [][]byte
	var infos []*Info
	for range 2 {
		o := NewOverlay(img, imageSize)
		o.Unit("a").WriteAt(randomBytes(61, 300), 0x1000)
		o.Unit("b").WriteAt(randomBytes(62, 300), 0x5000)
		j := prepared(t, dir, header(), o)
		j.Close()
		raw, _ := os.ReadFile(j.Path())
		info, err := Read(bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			t.Fatal(err)
		}
		raws, infos = append(raws, raw), append(infos, info)
	}
	// Both journals lay out the same frames at the same offsets: put the
	// second journal's frame of unit b into the first.
	r0, r1 := infos[0].Records[1], infos[1].Records[1]
	if r0.pos != r1.pos || r0.size != r1.size {
		t.Fatalf("layouts differ: %+v %+v", r0, r1)
	}
	bad := append([]byte(nil), raws[0]...)
	copy(bad[r0.pos:], raws[1][r1.pos:r1.pos+frameHead+r1.size+frameTail])
	info, err := Read(bytes.NewReader(bad), int64(len(bad)))
	if err != nil {
		t.Fatal(err)
	}
	if de := info.Damaged(); de == nil || !strings.Contains(de.Error(), "journal id") || de.UnitsIntact != 1 {
		t.Fatalf("spliced frame: %v", info.Damage)
	}
}
