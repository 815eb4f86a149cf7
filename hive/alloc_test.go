package hive

import (
	"bytes"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
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

// TestEditCellIndex edits a real hive and then compares the per-bin cell
// index the editor kept up to date (no bin is walked twice) with a fresh
// walk of every bin over the planned bytes, and the free list with the free
// cells of the enlisted bins.
func TestEditCellIndex(t *testing.T) {
	orig := realSystem(t)
	h, e, _ := editBytes(t, orig)
	data := bytes.Repeat([]byte{1}, 700)
	for i := range 60 {
		key := `ControlSet001\Control\WuofflineIdx\K` + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if _, err := e.CreateKey(key); err != nil {
			t.Fatal(err)
		}
		if err := e.SetValue(key, "v", RegBinary, data[:100+10*i]); err != nil {
			t.Fatal(err)
		}
		if i%4 == 3 {
			if err := e.DeleteKey(key); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.DeleteValue(`ControlSet001\Control\Session Manager`, "ObjectDirectories"); err != nil {
		t.Fatal(err)
	}
	free := map[edFree]bool{}
	h.mu.Lock()
	defer h.mu.Unlock()
	for off, bc := range h.bins.cells {
		b, err := h.bins.find(h.src, off)
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := walkCells(h.src, b)
		if err != nil || fresh.broken != 0 {
			t.Fatalf("bin 0x%x: %v %s", off, err, fresh.why)
		}
		if !slices.Equal(bc.starts, fresh.starts) || !slices.Equal(bc.alloc, fresh.alloc) {
			t.Fatalf("bin 0x%x: the editor's cell index differs from the bytes", off)
		}
		if e.alloc.enlisted[off] {
			forCells(fresh, b, func(rel, size uint32, allocated bool) {
				if !allocated {
					free[edFree{b.off + rel, size}] = true
				}
			})
		}
	}
	listed := 0
	for _, bucket := range e.alloc.free.buckets {
		for _, f := range bucket {
			listed++
			if !free[f] {
				t.Errorf("free list holds %v, not a free cell of the planned bytes", f)
			}
		}
	}
	if listed != len(free) {
		t.Errorf("free list holds %d cells, the enlisted bins %d", listed, len(free))
	}
}
