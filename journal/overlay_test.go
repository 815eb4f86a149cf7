package journal

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

func TestOverlayRanges(t *testing.T) {
	type w struct {
		off   int64
		n     int
		label string
	}
	tests := []struct {
		name   string
		writes []w
		want   []Range
	}{
		{"none", nil, []Range{}},
		{"one", []w{{10, 5, "a"}}, []Range{{10, 5, "a"}}},
		{"disjoint sorted", []w{{50, 5, "b"}, {10, 5, "a"}}, []Range{{10, 5, "a"}, {50, 5, "b"}}},
		{"adjacent after", []w{{10, 5, "a"}, {15, 5, "b"}}, []Range{{10, 5, "a"}, {15, 5, "b"}}},
		{"adjacent before", []w{{10, 5, "a"}, {5, 5, "b"}}, []Range{{5, 5, "b"}, {10, 5, "a"}}},
		{"adjacent same label", []w{{10, 5, "a"}, {15, 5, "a"}, {5, 5, "a"}}, []Range{{5, 15, "a"}}},
		{"adjacent unlabelled", []w{{10, 5, ""}, {15, 5, ""}}, []Range{{10, 10, ""}}},
		{"between two labels", []w{{10, 5, "a"}, {20, 5, "b"}, {15, 5, "c"}}, []Range{{10, 5, "a"}, {15, 5, "c"}, {20, 5, "b"}}},
		{"continues then touches", []w{{10, 5, "a"}, {20, 5, "b"}, {15, 5, "a"}}, []Range{{10, 10, "a"}, {20, 5, "b"}}},
		{"inside", []w{{10, 50, "a"}, {20, 5, "a"}}, []Range{{10, 50, "a"}}},
		{"covers several", []w{{10, 2, "a"}, {20, 2, "b"}, {30, 2, "c"}, {0, 100, "d"}}, []Range{{0, 100, "a; b; c; d"}}},
		{"bridges two", []w{{10, 5, "a"}, {20, 5, "b"}, {12, 10, ""}}, []Range{{10, 15, "a; b"}}},
		{"overlaps start", []w{{10, 5, "a"}, {8, 4, "b"}, {40, 1, "c"}}, []Range{{8, 7, "a; b"}, {40, 1, "c"}}},
		{"empty write", []w{{10, 0, "a"}}, []Range{}},
		{"first and last byte", []w{{0, 1, "x"}, {999, 1, "y"}}, []Range{{0, 1, "x"}, {999, 1, "y"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := randomBytes(5, 1000)
			model := append([]byte(nil), base...)
			o := NewOverlay(bytes.NewReader(base), int64(len(base)))
			for i, wr := range tt.writes {
				p := randomBytes(uint64(100+i), wr.n)
				if n, err := o.Labeled(wr.label).WriteAt(p, wr.off); err != nil || n != wr.n {
					t.Fatalf("WriteAt: %d, %v", n, err)
				}
				copy(model[wr.off:], p)
			}
			got := o.Ranges()
			if len(got) != len(tt.want) {
				t.Fatalf("Ranges = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("Ranges = %+v, want %+v", got, tt.want)
				}
			}
			all := make([]byte, len(base))
			if n, err := o.ReadAt(all, 0); n != len(all) || err != nil {
				t.Fatal(n, err)
			}
			if !bytes.Equal(all, model) {
				t.Fatal("ReadAt does not show the planned writes")
			}
		})
	}
}

func TestOverlayAlign(t *testing.T) {
	o := NewOverlay(bytes.NewReader(make([]byte, 5000)), 5000)
	o.SetAlign(512)
	o.Labeled("a").WriteAt([]byte{1}, 10)
	o.Labeled("b").WriteAt([]byte{2}, 600) // next sector, another thing: its own range
	o.Labeled("f").WriteAt([]byte{8}, 20)  // a's sector: shares it, merges
	o.Labeled("c").WriteAt([]byte{3}, 2000)
	o.Labeled("d").WriteAt([]byte{4, 4}, 4999-1) // last, partial sector
	o.Labeled("a").WriteAt([]byte{5}, 3000)
	o.Labeled("a").WriteAt([]byte{6}, 3100) // touching sector, same label: one range
	o.Labeled("e").WriteAt([]byte{7}, 1100) // sector 2, touching b's and c's: apart
	want := []Range{{0, 512, "a; f"}, {512, 512, "b"}, {1024, 512, "e"}, {1536, 512, "c"}, {2560, 1024, "a"}, {4608, 392, "d"}}
	got := o.Ranges()
	if len(got) != len(want) {
		t.Fatalf("Ranges = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Ranges = %+v, want %+v", got, want)
		}
	}
	cs := mustChanges(o)
	if cs[0].Data[10] != 1 || cs[0].Data[20] != 8 || cs[1].Data[600-512] != 2 || cs[3].Data[2000-1536] != 3 || cs[5].Data[391] != 4 {
		t.Fatal("aligned changes lost planned bytes")
	}
}

func TestOverlayBounds(t *testing.T) {
	o := NewOverlay(bytes.NewReader(make([]byte, 100)), 100)
	for _, tc := range []struct {
		off int64
		n   int
	}{{-1, 1}, {100, 1}, {99, 2}, {1 << 62, 1}, {101, 0}} {
		if _, err := o.WriteAt(make([]byte, tc.n), tc.off); err == nil {
			t.Errorf("WriteAt(%d bytes at %d) beyond the volume succeeded", tc.n, tc.off)
		}
	}
	if len(o.Ranges()) != 0 {
		t.Fatal("a refused write was recorded")
	}
	o.WriteAt([]byte{1, 2}, 98)
	p := make([]byte, 10)
	if n, err := o.ReadAt(p, 95); n != 5 || err != io.EOF || !bytes.Equal(p[:5], []byte{0, 0, 0, 1, 2}) {
		t.Errorf("ReadAt across the end = %d, %v, %v", n, err, p[:5])
	}
	if n, err := o.ReadAt(p, 100); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at the end = %d, %v", n, err)
	}
	if _, err := o.ReadAt(p, -1); err == nil {
		t.Error("ReadAt at -1 succeeded")
	}
}

// TestOverlayModel checks random labelled writes and reads against a plain
// copy: reads see exactly the planned bytes, and Ranges cover exactly the
// blocks written, sorted, not overlapping, touching only when written by
// different units.
func TestOverlayModel(t *testing.T) {
	const size = 1<<14 + 100 // not a multiple of the alignments
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 60 {
		align := []int64{1, 512, 4096}[round%3]
		base := randomBytes(uint64(round), size)
		model := append([]byte(nil), base...)
		written := make([]bool, size)
		o := NewOverlay(bytes.NewReader(base), size)
		o.SetAlign(align)
		for range 1 + r.IntN(60) {
			n := 1 + r.IntN(700)
			off := r.Int64N(size - int64(n) + 1)
			p := randomBytes(r.Uint64(), n)
			if _, err := o.Labeled([]string{"", "", "x", "y"}[r.IntN(4)]).WriteAt(p, off); err != nil {
				t.Fatal(err)
			}
			copy(model[off:], p)
			for i := range n {
				written[off+int64(i)] = true
			}
			// A random read must match the model.
			ro := r.Int64N(size)
			buf := make([]byte, r.IntN(900))
			m, _ := o.ReadAt(buf, ro)
			if !bytes.Equal(buf[:m], model[ro:ro+int64(m)]) {
				t.Fatalf("round %d: read %d at %d differs", round, len(buf), ro)
			}
		}
		covered := make([]bool, size)
		var prevEnd int64 = -1
		var prevUnits []int
		for _, c := range mustChanges(o) {
			if c.Off < prevEnd || c.Off == prevEnd && slices.Equal(c.Units, prevUnits) {
				t.Fatalf("round %d: range at %d (%v) overlaps or continues the previous one (end %d, %v)", round, c.Off, c.Units, prevEnd, prevUnits)
			}
			prevUnits = c.Units
			prevEnd = c.Off + c.Len()
			if c.Off%align != 0 || (prevEnd%align != 0 && prevEnd != size) {
				t.Fatalf("round %d: range %d+%d not aligned to %d", round, c.Off, c.Len(), align)
			}
			if !bytes.Equal(c.Data, model[c.Off:prevEnd]) {
				t.Fatalf("round %d: change at %d has wrong data", round, c.Off)
			}
			for i := c.Off; i < prevEnd; i++ {
				covered[i] = true
			}
		}
		// A block is covered exactly when one of its bytes was written.
		for b := int64(0); b < size; b += align {
			end := min(b+align, size)
			any := false
			for i := b; i < end; i++ {
				any = any || written[i]
			}
			for i := b; i < end; i++ {
				if covered[i] != any {
					t.Fatalf("round %d: byte %d covered %v, its block written %v", round, i, covered[i], any)
				}
			}
		}
		if rs := o.Ranges(); len(rs) != len(mustChanges(o)) {
			t.Fatalf("round %d: %d ranges, %d changes", round, len(rs), len(mustChanges(o)))
		}
	}
}

// TestUndoInterrupted stops undo itself after k writes (power cut); undo
// run again must still restore the original exactly.
func TestUndoInterrupted(t *testing.T) {
	_, img, orig, o, path := commitPlan(t)
	fixed := fileBytes(t, img)
	total := len(mustChanges(o))
	for k := 0; k <= total; k++ {
		if _, err := img.WriteAt(fixed, 0); err != nil {
			t.Fatal(err)
		}
		for _, mode := range []testutil.FaultMode{testutil.FaultTorn, testutil.FaultError} {
			fw := testutil.NewFaultWriter(img, k, mode)
			Undo(path, img, fw, fw.Sync(img.Sync)) // may fail: that is the point
			rep, err := Undo(path, img, img, img.Sync)
			if err != nil || !rep.Complete() {
				t.Fatalf("k=%d %v: second undo %+v, %v", k, mode, rep, err)
			}
			if !bytes.Equal(fileBytes(t, img), orig) {
				t.Fatalf("k=%d %v: not original after an interrupted undo and a second one", k, mode)
			}
			// Back to the fixed state for the next mode.
			if _, err := img.WriteAt(fixed, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkOverlaySequential(b *testing.B) {
	const size = 64 << 20
	base := bytes.NewReader(make([]byte, size))
	p := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		o := NewOverlay(base, size)
		for off := int64(0); off < size; off += 4096 {
			o.WriteAt(p, off)
		}
	}
	b.ReportMetric(float64(size), "bytes-planned/op")
}

func BenchmarkCommit(b *testing.B) {
	dir := b.TempDir()
	orig := randomBytes(9, imageSize)
	img := newImage(b, dir, orig)
	o := NewOverlay(img, imageSize)
	planWrites(b, o, 3)
	for b.Loop() {
		path, err := Commit(dir, Header{ID: testID}, o, img, img.Sync)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Undo(path, img, img, img.Sync); err != nil {
			b.Fatal(err)
		}
		os.Remove(path)
	}
	b.ReportMetric(float64(o.Bytes()), "bytes-written/op")
}

// TestOverlayGroups: units are grouped when their writes overlap or share
// a block: a sector by default, a cluster with SetGroup; the journal
// records the block and groups the same way.
func TestOverlayGroups(t *testing.T) {
	for _, tc := range []struct {
		group int64
		want  [][]int
	}{
		{0, [][]int{{1, 2}, {3}, {4}}},
		{4096, [][]int{{1, 2, 3}, {4}}},
	} {
		base := mem(randomBytes(70, 1<<16))
		o := NewOverlay(base, int64(len(base)))
		o.SetGroup(tc.group)
		o.Unit("a").WriteAt([]byte{1, 2}, 100)
		o.Unit("b").WriteAt([]byte{3}, 400)     // a's sector
		o.Unit("c").WriteAt([]byte{4}, 1024)    // a's cluster, not its sector
		o.Unit("d").WriteAt([]byte{5, 6}, 8192) // another cluster
		got := o.Groups()
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Fatalf("SetGroup(%d): groups %v, want %v", tc.group, got, tc.want)
		}
		dir := t.TempDir()
		path, err := CommitOn(dir, Header{ID: testID}, o, memDev{base})
		if err != nil {
			t.Fatal(err)
		}
		info, err := Open(path)
		if err != nil || info.Header.Block != max(tc.group, 512) || len(info.Groups) != len(tc.want) || len(info.Units) != 4 {
			t.Fatalf("SetGroup(%d): journal block %d, %d groups, %d units, %v", tc.group, info.Header.Block, len(info.Groups), len(info.Units), err)
		}
	}
}
