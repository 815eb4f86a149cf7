package access

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// TestAlignedFile checks the sector-aligning wrapper used for Windows and
// BSD devices against plain file I/O: random reads and writes of any
// offset and length give the same bytes.
func TestAlignedFile(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		const size = 3 << 20
		dir := t.TempDir()
		rng := rand.New(rand.NewSource(int64(ss)))
		init := make([]byte, size)
		rng.Read(init)
		pa, pb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		for _, p := range []string{pa, pb} {
			if err := os.WriteFile(p, init, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		fa, err := os.OpenFile(pa, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer fa.Close()
		fb, err := os.OpenFile(pb, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer fb.Close()
		a := newAlignedFile(fb, ss)
		for i := 0; i < 300; i++ {
			off := rng.Int63n(size)
			n := rng.Intn(1 << (rng.Intn(22) + 1))
			if rng.Intn(2) == 0 && off+int64(n) <= size {
				p := make([]byte, n)
				rng.Read(p)
				n1, err1 := fa.WriteAt(p, off)
				n2, err2 := a.WriteAt(p, off)
				if n1 != n2 || (err1 == nil) != (err2 == nil) {
					t.Fatalf("ss %d: WriteAt(%d, %d): file %d %v, aligned %d %v", ss, n, off, n1, err1, n2, err2)
				}
				continue
			}
			p1, p2 := make([]byte, n), make([]byte, n)
			n1, err1 := fa.ReadAt(p1, off)
			n2, err2 := a.ReadAt(p2, off)
			if n1 != n2 || (err1 == nil) != (err2 == nil) || !bytes.Equal(p1, p2) {
				t.Fatalf("ss %d: ReadAt(%d, %d): file %d %v, aligned %d %v", ss, n, off, n1, err1, n2, err2)
			}
		}
		if err := fb.Sync(); err != nil {
			t.Fatal(err)
		}
		if testutil.SHA256File(t, pa) != testutil.SHA256File(t, pb) {
			t.Errorf("ss %d: files differ after the same writes", ss)
		}
	}
}
