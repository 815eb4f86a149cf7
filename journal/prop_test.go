package journal

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

var long = flag.Bool("long", false, "property tests: every cut point and every byte flip of the journal (slow)")

const propSize = 1 << 16

// randomPlan plans 1 to 8 units on o, each of 1 to 4 writes: some in
// sectors of their own, some overlapping or sharing a sector with
// another unit's, so that groups of several units occur. Labels are
// unique ("u1"...), so a journal unit maps back to its overlay unit.
func randomPlan(t testing.TB, o *Overlay, r *rand.Rand) {
	t.Helper()
	n := 1 + r.IntN(8)
	var spots []int64
	for i := range n {
		u := o.Unit(fmt.Sprintf("u%d", i+1))
		for range 1 + r.IntN(4) {
			var off int64
			if len(spots) > 0 && r.IntN(3) == 0 {
				off = spots[r.IntN(len(spots))] + int64(r.IntN(700)) - 350 // near another write
			} else {
				off = r.Int64N(propSize)
			}
			ln := 1 + r.IntN(900)
			off = max(0, min(off, propSize-int64(ln)))
			spots = append(spots, off)
			if _, err := u.WriteAt(randomBytes(r.Uint64(), ln), off); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// positions returns the cut points or flip positions to try in a journal
// of n bytes: all of them with -long, else every one of a small journal
// and a sample of a larger one, always with the first and last.
func positions(r *rand.Rand, n int) []int {
	all := *long || n <= 600
	var out []int
	for i := range n {
		if all || i < 8 || i >= n-8 || r.IntN(n) < 250 {
			out = append(out, i)
		}
	}
	return out
}

// undoBytes runs undo's logic on a journal held in memory against dev:
// what UndoOn does, minus opening and marking the journal file. A journal
// Read refuses (the header is damaged) is never replayed.
func undoBytes(raw []byte, dev Device) (*Info, *Report, error) {
	info, err := Read(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return nil, nil, err
	}
	rep, err := replayInfo(bytes.NewReader(raw), info, dev, false)
	return info, rep, err
}

// TestUndoProperty commits random plans, then damages the journal in
// every way a stick does: cut at every length, a byte flipped at every
// position (a sample of both unless -long). Whatever the damage, undo
// either restores a unit or leaves it, never part of one: afterwards each
// unit is wholly original or wholly fixed (the model), a unit is restored
// exactly when its whole group survived in the journal, and a damaged
// journal always returns a *DamagedError, never "nothing to undo".
func TestUndoProperty(t *testing.T) {
	plans := 6
	if *long {
		plans = 40
	}
	for seed := range plans {
		r := rand.New(rand.NewPCG(uint64(seed), 77))
		orig := randomBytes(uint64(seed)+100, propSize)
		target := memDev{mem(append([]byte(nil), orig...))}
		o := NewOverlay(target, propSize)
		o.SetAlign([]int64{1, 512, 1}[seed%3])
		randomPlan(t, o, r)
		dir := t.TempDir()
		path, err := CommitOn(dir, Header{ID: testID}, o, target)
		if err != nil {
			t.Fatal(err)
		}
		fixed := append([]byte(nil), target.mem...)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		full, err := Read(bytes.NewReader(raw), int64(len(raw)))
		if err != nil || full.Damage != nil {
			t.Fatal(err, full.Damage)
		}
		check := func(what string, j []byte, mustDamage bool) {
			t.Helper()
			dev := memDev{mem(append([]byte(nil), fixed...))}
			info, rep, err := undoBytes(j, dev)
			states := unitStates(t, o, orig, fixed, dev.mem)
			var de *DamagedError
			if info == nil {
				// Header unreadable: nothing may be touched.
				if !errors.As(err, &de) || !bytes.Equal(dev.mem, fixed) {
					t.Fatalf("seed %d %s: unreadable header: %v, target changed %v", seed, what, err, !bytes.Equal(dev.mem, fixed))
				}
				return
			}
			damaged := info.Damaged() != nil
			if mustDamage && (!damaged || !errors.As(err, &de)) {
				t.Fatalf("seed %d %s: damage not reported: %v", seed, what, err)
			}
			if !damaged && err != nil {
				t.Fatalf("seed %d %s: %v", seed, what, err)
			}
			if rep == nil {
				t.Fatalf("seed %d %s: no report: %v", seed, what, err)
			}
			intact := map[string]bool{}
			for _, u := range info.Units {
				intact[u.Label] = info.Groups[groupIndex(info, u.Group)].Intact
			}
			for id, st := range states {
				want := "new"
				if intact[o.UnitLabel(id)] {
					want = "old"
				}
				if st != want {
					t.Fatalf("seed %d %s: unit %s is %s, want %s (damage %v)", seed, what, o.UnitLabel(id), st, want, info.Damage)
				}
			}
		}
		check("intact", raw, false)
		last := full.Records[len(full.Records)-1]
		planEnd := int(last.pos + frameHead + last.size + frameTail + frameHead + preparedSize + frameTail)
		for _, k := range positions(r, len(raw)) {
			check(fmt.Sprintf("cut at %d of %d", k, len(raw)), raw[:k], k < planEnd)
		}
		for _, k := range positions(r, len(raw)) {
			j := append([]byte(nil), raw...)
			j[k] ^= byte(1 + r.IntN(255))
			// A flip in the commit mark, the last frame, looks like a torn
			// append: nothing of the plan is lost, undo restores all.
			check(fmt.Sprintf("byte %d of %d flipped", k, len(raw)), j, k < planEnd)
		}
	}
}

// TestUndoPropertyInterrupted interrupts random plans after k writes and
// damages the journal: undo never writes part of a unit. Each unit after
// undo is either as the interrupted fix left it (untouched) or wholly
// original; with an intact journal every unit is original.
func TestUndoPropertyInterrupted(t *testing.T) {
	plans := 8
	if *long {
		plans = 40
	}
	for seed := range plans {
		r := rand.New(rand.NewPCG(uint64(seed), 78))
		orig := randomBytes(uint64(seed)+200, propSize)
		target := memDev{mem(append([]byte(nil), orig...))}
		o := NewOverlay(target, propSize)
		randomPlan(t, o, r)
		j := prepared(t, t.TempDir(), Header{ID: testID}, o)
		k := r.IntN(j.Len() + 1)
		fw := testutil.NewFaultWriter(target.mem, k, testutil.FaultTorn)
		j.Apply(fw, nil)
		j.Close()
		half := append([]byte(nil), target.mem...)
		raw, err := os.ReadFile(j.Path())
		if err != nil {
			t.Fatal(err)
		}
		cs := mustChanges(o)
		check := func(what string, jb []byte, intact bool) {
			t.Helper()
			dev := memDev{mem(append([]byte(nil), half...))}
			undoBytes(jb, dev)
			// Per unit: untouched, or wholly original.
			touched, original := map[int]bool{}, map[int]bool{}
			for _, c := range cs {
				end := c.Off + c.Len()
				for _, u := range c.Units {
					if _, ok := original[u]; !ok {
						original[u] = true
					}
					if !bytes.Equal(dev.mem[c.Off:end], half[c.Off:end]) {
						touched[u] = true
					}
					if !bytes.Equal(dev.mem[c.Off:end], orig[c.Off:end]) {
						original[u] = false
					}
				}
			}
			for u := range original {
				if touched[u] && !original[u] {
					t.Fatalf("seed %d k %d %s: unit %s partly written by undo", seed, k, what, o.UnitLabel(u))
				}
				if intact && !original[u] {
					t.Fatalf("seed %d k %d %s: unit %s not restored from an intact journal", seed, k, what, o.UnitLabel(u))
				}
			}
		}
		check("intact", raw, true)
		for _, p := range positions(r, len(raw)) {
			check(fmt.Sprintf("cut at %d", p), raw[:p], false)
			jb := append([]byte(nil), raw...)
			jb[p] ^= byte(1 + r.IntN(255))
			check(fmt.Sprintf("flip at %d", p), jb, false)
		}
	}
}

// TestResumeWholeOrNothing: an interrupted fix whose units are all still
// as the fix left them is finished whole; when one unit changed since the
// crash, resume writes nothing at all and says to undo, and undo then
// restores every group but the changed one's.
func TestResumeWholeOrNothing(t *testing.T) {
	for _, changed := range []bool{false, true} {
		dir := t.TempDir()
		orig := randomBytes(41, propSize)
		img := newImage(t, dir, orig)
		o := NewOverlay(img, propSize)
		o.Unit("rename A").WriteAt(randomBytes(1, 600), 0x1000)
		o.Unit("rename B").WriteAt(randomBytes(2, 600), 0x3000)
		o.Unit("rename C").WriteAt(randomBytes(3, 100), 0x3300) // B's last sector: one group
		o.Unit("hive edit").WriteAt(randomBytes(4, 4000), 0x8000)
		if got := o.Groups(); len(got) != 3 || len(got[1]) != 2 {
			t.Fatalf("groups %v", got)
		}
		j, err := Create(dir, header())
		if err != nil {
			t.Fatal(err)
		}
		j.AddOverlay(o)
		if err := j.Prepare(); err != nil {
			t.Fatal(err)
		}
		fw := testutil.NewFaultWriter(img, 2, testutil.FaultError)
		j.Apply(fw, nil)
		j.Close()
		if changed {
			img.WriteAt([]byte("WINDOWS"), 0x3010) // B changed after the crash
		}
		before := fileBytes(t, img)
		rep, err := Resume(j.Path(), img, img, img.Sync)
		if err != nil {
			t.Fatal(err)
		}
		if !changed {
			if !rep.Complete() || !rep.Marked || !bytes.Equal(fileBytes(t, img), expected(orig, o)) {
				t.Fatalf("resume: %s", rep.Summary())
			}
			continue
		}
		if rep.Complete() || rep.Marked || rep.Done != 0 || !bytes.Equal(fileBytes(t, img), before) || rep.UnitsLeft != 4 {
			t.Fatalf("resume with a changed unit wrote something or finished: %s", rep.Summary())
		}
		rep, err = Undo(j.Path(), img, img, img.Sync)
		if err != nil || rep.UnitsLeft != 2 || rep.UnitsDone+rep.UnitsAlready != 2 {
			t.Fatalf("undo: %s, %v", rep.Summary(), err)
		}
		var b, c UnitResult
		for _, u := range rep.Units {
			switch u.Label {
			case "rename B":
				b = u
			case "rename C":
				c = u
			}
		}
		if b.Outcome != ChangedSince || c.Outcome != Left || b.Why == "" || b.Advice == "" || c.Why == "" {
			t.Fatalf("units B %+v C %+v", b, c)
		}
		got := fileBytes(t, img)
		if !bytes.Equal(got[0x1000:0x1258], orig[0x1000:0x1258]) || !bytes.Equal(got[0x3000:0x3364], before[0x3000:0x3364]) {
			t.Fatal("undo did not restore A and leave B and C whole")
		}
	}
}

// TestUndoMissingJournal: a journal path that does not exist is a
// DamagedError of kind missing, not an empty undo.
func TestUndoMissingJournal(t *testing.T) {
	rep, err := UndoOn(filepath.Join(t.TempDir(), "gone.journal"), memDev{make(mem, 10)})
	var de *DamagedError
	if rep != nil || !errors.As(err, &de) || de.Kind != DamageMissing {
		t.Fatalf("UndoOn(missing) = %+v, %v", rep, err)
	}
}
