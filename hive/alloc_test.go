package hive

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"

	"wuoffline/internal/testutil"
)

// TestFreeListBestFit compares the bucketed free list with a linear
// best-fit search (smallest cell that holds the request, lowest offset on
// ties) over random adds, removes and requests.
func TestFreeListBestFit(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var l freeList
	all := map[uint32]uint32{} // off -> size
	linear := func(need uint32) (edFree, bool) {
		var best edFree
		found := false
		for off, size := range all {
			if size < need {
				continue
			}
			if !found || size < best.size || (size == best.size && off < best.off) {
				best, found = edFree{off, size}, true
			}
		}
		return best, found
	}
	randSize := func() uint32 {
		if rng.IntN(4) == 0 {
			return uint32(rng.IntN(1<<20)+1) * cellAlign
		}
		return uint32(rng.IntN(200)+1) * cellAlign
	}
	for i := range 20000 {
		switch rng.IntN(3) {
		case 0:
			off := uint32(rng.IntN(1<<24)) * cellAlign
			if _, dup := all[off]; !dup {
				f := edFree{off, randSize()}
				all[off] = f.size
				l.add(f)
			}
		case 1:
			for off, size := range all {
				if !l.remove(edFree{off, size}) {
					t.Fatalf("step %d: remove(0x%x, %d) found nothing", i, off, size)
				}
				delete(all, off)
				break
			}
		default:
			need := randSize()
			got, ok := l.best(need)
			want, wok := linear(need)
			if ok != wok || got != want {
				t.Fatalf("step %d: best(%d) = %v %v, linear search %v %v", i, need, got, ok, want, wok)
			}
		}
		if l.n != len(all) {
			t.Fatalf("step %d: %d cells listed, %d added", i, l.n, len(all))
		}
	}
}

// BenchmarkEditBuild builds about 16 MB of keys and values through the
// editor, from hivex's minimal hive: allocation cost per cell must not grow
// with the hive (the free list is bucketed, not searched linearly).
func BenchmarkEditBuild(b *testing.B) {
	min, err := os.ReadFile(testutil.SharedFixture(b, "hives/hivex/minimal"))
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte{0xA5}, 1500)
	for b.Loop() {
		h, err := Open(bytes.NewReader(min), int64(len(min)))
		if err != nil {
			b.Fatal(err)
		}
		mf := &memFile{b: bytes.Clone(min)}
		e, err := NewEditor(h, mf, mf.grow)
		if err != nil {
			b.Fatal(err)
		}
		for k := range 1000 {
			key := "K" + string(rune('a'+k%26)) + `\` + string(rune('A'+k/26))
			if _, err := e.CreateKey(key); err != nil {
				b.Fatal(err)
			}
			for v := range 10 {
				if err := e.SetValue(key, string(rune('a'+v)), RegBinary, data); err != nil {
					b.Fatal(err)
				}
			}
			if k%3 == 0 {
				if err := e.DeleteValue(key, "c"); err != nil {
					b.Fatal(err)
				}
			}
		}
		if r := e.Verify(); !r.OK() {
			b.Fatalf("Verify:\n%s", r)
		}
		if err := e.Flush(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(mf.b))/1e6, "MB")
	}
}
