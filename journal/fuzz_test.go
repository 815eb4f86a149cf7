package journal

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// seedJournals builds small journals of every version and state: version
// 3 with this package (planned, prepared, committed, undone, and a grown
// plan in file coordinates), versions 1 and 2 laid out as they were.
func seedJournals(tb testing.TB) [][]byte {
	tb.Helper()
	dir := tb.TempDir()
	var out [][]byte
	read := func(path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	for state := range 5 {
		target := memDev{mem(randomBytes(uint64(state), 4096))}
		o := NewOverlay(target, int64(len(target.mem)))
		o.Labeled("boot sector").WriteAt(randomBytes(1, 64), 0)
		o.Labeled("record").WriteAt(randomBytes(2, 100), 1000)
		o.Unit("record").WriteAt(randomBytes(4, 10), 1050) // overlaps: one range of two units
		o.WriteAt(randomBytes(3, 3), 4093)
		h := Header{ID: VolumeID{Serial: uint64(state), Size: 4096}, Tool: "seed", Note: "n"}
		if state == 4 {
			o.AllowGrowth(8192)
			o.Labeled("appended").WriteAt(randomBytes(5, 20), 4090)
			h.Space, h.OldSize, h.NewSize = SpaceFile, o.BaseSize(), o.Size()
		}
		j, err := Create(dir, h)
		if err != nil {
			tb.Fatal(err)
		}
		if err := j.AddOverlay(o); err != nil {
			tb.Fatal(err)
		}
		if state == 0 {
			read(j.Path() + partSuffix)
			j.Close()
			continue
		}
		if err := j.Prepare(); err != nil {
			tb.Fatal(err)
		}
		if state > 1 && state != 4 {
			if err := j.Apply(target, nil); err != nil {
				tb.Fatal(err)
			}
		}
		j.Close()
		if state == 3 {
			if _, err := UndoOn(j.Path(), target); err != nil {
				tb.Fatal(err)
			}
		}
		read(j.Path())
	}
	orig := randomBytes(30, 1<<16)
	for _, v := range []int{1, 2} {
		for _, marks := range []string{"", "P", "PC", "PCU"} {
			out = append(out, legacyJournal(v, Header{ID: VolumeID{Serial: 9, Size: 1 << 16}}, legacyPlan(orig), marks))
		}
	}
	return out
}

// FuzzJournal feeds damaged and hostile journals to the parser and to
// undo and resume against an in-memory volume: no panic, no unbounded
// allocation, and the parse's invariants hold.
func FuzzJournal(f *testing.F) {
	for _, s := range seedJournals(f) {
		f.Add(s)
		f.Add(s[:len(s)-5])                   // torn tail
		f.Add(append(s, make([]byte, 40)...)) // zero-filled tail
	}
	f.Add([]byte(magic))
	f.Add([]byte("not a journal at all"))
	f.Fuzz(func(t *testing.T, data []byte) {
		size := int64(len(data))
		info, err := Read(bytes.NewReader(data), size)
		if err != nil {
			return
		}
		if info.End > size || (info.Damage == nil && info.End != size) {
			t.Fatalf("End %d, size %d, damage %v", info.End, size, info.Damage)
		}
		var total int64
		for i, r := range info.Records {
			if r.Index != i || r.Off < 0 || r.Len <= 0 || r.pos+frameHead+r.size+frameTail > info.End {
				t.Fatalf("record %d: %+v", i, r)
			}
			total += r.Len
		}
		if total != info.Bytes {
			t.Fatalf("Bytes %d, records sum to %d", info.Bytes, total)
		}
		for _, g := range info.Groups {
			if !g.Intact {
				continue
			}
			for _, ri := range g.Ranges {
				if rec := info.Records[ri]; rec.Group != g.ID || (info.Header.Version >= 3 && rec.gcnt != len(g.Ranges)) {
					t.Fatalf("intact group %d: range %+v", g.ID, rec)
				}
			}
		}
		for _, u := range info.Units {
			if i := groupIndex(info, u.Group); i >= len(info.Groups) || info.Groups[i].ID != u.Group {
				t.Fatalf("unit %d in unknown group %d", u.ID, u.Group)
			}
		}
		for _, forward := range []bool{false, true} {
			target := memDev{make(mem, 4096)}
			rep, err := replayInfo(bytes.NewReader(data), info, target, forward)
			if rep == nil {
				continue
			}
			if info.Damaged() != nil && !forward {
				var de *DamagedError
				if !errors.As(err, &de) {
					t.Fatalf("undo of a damaged journal returned %v", err)
				}
			}
			if rep.Done+rep.Already+rep.Changed+rep.Lost+rep.Left < len(rep.Results) {
				t.Fatalf("report counts %+v", rep)
			}
		}
	})
}
