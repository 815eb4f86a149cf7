package ntfs

import (
	"bytes"
	"testing"
)

// FuzzLogFileRestart feeds hostile $LogFile heads to ReadLogFileRestart: it
// must return a result or an error, never panic, and read only the restart
// pages (bounded by rdLogMaxPageSize, never by a size the page declares).
func FuzzLogFileRestart(f *testing.F) {
	clean := rdRestartPage(1, 1, 100, 0, 2, 7)
	dirty := rdRestartPage(1, 1, 200, 0, 0, 8)
	f.Add(append(bytes.Clone(clean), clean...))
	f.Add(append(bytes.Clone(clean), dirty...))
	f.Add(append(rdRestartPage(2, 0, 300, 0, 2, 9), bytes.Repeat([]byte{0xFF}, 4096)...))
	f.Add(bytes.Repeat([]byte{0xFF}, 8192))
	f.Add(make([]byte, 1024))
	f.Fuzz(func(t *testing.T, data []byte) {
		cr := &rdCountingReader{r: bytes.NewReader(data)}
		r, err := ReadLogFileRestart(cr, int64(len(data)))
		if err == nil && r == nil {
			t.Fatal("nil restart and nil error")
		}
		if n := cr.n.Load(); n > 2*rdLogMaxPageSize+rdLogBlockSize*(2+rdLogMaxPageSize/rdLogBlockSize) {
			t.Fatalf("read %d bytes of a %d-byte log", n, len(data))
		}
	})
}
