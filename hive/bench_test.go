package hive

import (
	"io"
	"os"
	"sync/atomic"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// countingReader counts the bytes and calls read through it.
type countingReader struct {
	r            io.ReaderAt
	bytes, calls atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.bytes.Add(int64(len(p)))
	c.calls.Add(1)
	return c.r.ReadAt(p, off)
}

// benchSYSTEM opens the real 11.7 MB SYSTEM hive through a counting reader.
func benchSYSTEM(b *testing.B) (*countingReader, int64) {
	path := testutil.Decompress(b, testutil.SharedFixture(b, "hives/regipy/SYSTEM.xz"), "")
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	return &countingReader{r: f}, st.Size()
}

// BenchmarkOpenKey opens the hive and reads one value five levels down, as
// the offline checks do: the bytes read show that the 11.7 MB file is not
// loaded, only the cells on the path.
func BenchmarkOpenKey(b *testing.B) {
	cr, size := benchSYSTEM(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h, err := Open(cr, size)
		if err != nil {
			b.Fatal(err)
		}
		k, err := h.OpenKey(`ControlSet001\Services\Tcpip\Parameters`)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := k.Value("Hostname"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cr.bytes.Load())/float64(b.N), "bytes-read/op")
	b.ReportMetric(float64(cr.calls.Load())/float64(b.N), "reads/op")
}

// BenchmarkCheck runs the whole checker on the SYSTEM hive.
func BenchmarkCheck(b *testing.B) {
	cr, size := benchSYSTEM(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h, err := Open(cr, size)
		if err != nil {
			b.Fatal(err)
		}
		if r := h.Check(); !r.OK() {
			b.Fatal(r)
		}
	}
	b.ReportMetric(float64(cr.bytes.Load())/float64(b.N), "bytes-read/op")
}
