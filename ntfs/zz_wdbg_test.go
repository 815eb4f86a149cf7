package ntfs

import (
	"io"
	"os"
	"testing"
)

func TestWDbgCount(t *testing.T) {
	f, _ := os.Open("/tmp/bgpt.img")
	defer f.Close()
	r := io.NewSectionReader(f, 108544*512, 196608*512)
	w, err := OpenReadOnly(r, 196608*512)
	if err != nil {
		t.Fatal(err)
	}
	g := w.g
	n, dirs, inuse := 0, 0, 0
	for i := uint64(0); i < g.records(); i++ {
		rec, err := g.readRecord(w.r, i)
		if err != nil {
			continue
		}
		n++
		if rec.InUse() {
			inuse++
		}
		if rec.InUse() && rec.IsDir() {
			dirs++
		}
	}
	t.Logf("records %d parsed %d inuse %d dirs %d", g.records(), n, inuse, dirs)
}
