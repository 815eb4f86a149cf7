package session

import (
	"bytes"
	"io"
	"math/rand"
	"testing"
)

// memRW is a file in memory that counts its reads.
type memRW struct {
	b     []byte
	reads int
}

func (m *memRW) ReadAt(p []byte, off int64) (int, error) {
	m.reads++
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memRW) WriteAt(p []byte, off int64) (int, error) { return copy(m.b[off:], p), nil }

// TestCachedFile: reads through the cache return the file's bytes (at the
// end too), a block is read from the file once while it is cached, writes
// reach the file and are seen by the next read, and the cache never holds
// more than cacheMax.
func TestCachedFile(t *testing.T) {
	size := 3*cacheMax + 1234
	m := &memRW{b: make([]byte, size)}
	rand.New(rand.NewSource(1)).Read(m.b)
	c := newCachedFile(m, m, int64(size))
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 2000; i++ {
		off := rng.Int63n(int64(size))
		n := rng.Intn(3 * cacheBlock)
		p := make([]byte, n)
		got, err := c.ReadAt(p, off)
		want := min(n, size-int(off))
		if got != want || (want < n) != (err == io.EOF) || (want == n && err != nil) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v; want %d", n, off, got, err, want)
		}
		if !bytes.Equal(p[:got], m.b[off:off+int64(got)]) {
			t.Fatalf("ReadAt(%d, %d): wrong bytes", n, off)
		}
		if len(c.blocks)*cacheBlock > cacheMax || len(c.blocks) != len(c.order) {
			t.Fatalf("cache holds %d blocks (%d in order)", len(c.blocks), len(c.order))
		}
	}
	before := m.reads
	p := make([]byte, 100)
	c.ReadAt(p, 5)
	c.ReadAt(p, 500)
	if m.reads > before+1 {
		t.Errorf("two reads of one block reached the file %d times", m.reads-before)
	}
	if _, err := c.WriteAt([]byte("written"), 10); err != nil {
		t.Fatal(err)
	}
	c.ReadAt(p, 0)
	if string(p[10:17]) != "written" || string(m.b[10:17]) != "written" {
		t.Errorf("write not seen: cache %q file %q", p[10:17], m.b[10:17])
	}
	if st := c.Stats(); st.Reads != int64(m.reads) || st.Opens != 1 {
		t.Errorf("stats %+v, file reads %d", st, m.reads)
	}
	if _, err := c.ReadAt(p, -1); err == nil {
		t.Error("negative offset read")
	}
}
