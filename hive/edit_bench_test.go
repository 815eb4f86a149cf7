package hive

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// countingWriter counts the bytes and calls written through it.
type countingWriter struct {
	f            *os.File
	bytes, calls atomic.Int64
}

func (c *countingWriter) WriteAt(p []byte, off int64) (int, error) {
	c.bytes.Add(int64(len(p)))
	c.calls.Add(1)
	return c.f.WriteAt(p, off)
}

// benchDWORD is the key and value the benchmarks set.
const (
	benchKey   = `Vendor13\Product027\Component024070`
	benchValue = "Version"
)

func bigHivePath(b *testing.B) string {
	p := bigHive(b)
	if p == "" {
		b.Skip("no 50 MB hive")
	}
	return p
}

// BenchmarkEditSetDWORD sets an existing DWORD in the 50 MB hive in place,
// as `wuoffline reg set` does without the journal: open (base block and the
// cells on the key's path), set, flush (the changed bytes and the base
// block). Reported: bytes read and written, and allocated bytes per edit
// (an upper bound of the memory the edit needs).
func BenchmarkEditSetDWORD(b *testing.B) {
	path := bigHivePath(b)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	cr := &countingReader{r: f}
	cw := &countingWriter{f: f}
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		h, err := Open(cr, st.Size())
		if err != nil {
			b.Fatal(err)
		}
		e, err := NewEditor(h, cw, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := e.SetValue(benchKey, benchValue, RegDWORD, []byte{byte(i), 0, 0, 1}); err != nil {
			b.Fatal(err)
		}
		if err := e.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	n := float64(b.N)
	b.ReportMetric(float64(cr.bytes.Load())/n, "bytes-read/op")
	b.ReportMetric(float64(cw.bytes.Load())/n, "bytes-written/op")
	b.ReportMetric(float64(st.Size()), "hive-bytes")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/n, "alloc-bytes/op")
}

// hivexSetScript sets one DWORD with python3-hivex and prints the bytes the
// process read and wrote and its peak memory (from /proc/self/io and
// getrusage): hivex loads the whole hive and writes the whole file back.
const hivexSetScript = `
import hivex, resource, struct, sys
path, key, name, val = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
h = hivex.Hivex(path, write=True)
n = h.root()
for part in key.split("\\"):
    n = h.node_get_child(n, part)
h.node_set_value(n, {"key": name, "t": 4, "value": struct.pack("<I", val)})
h.commit(path)
io = dict(l.split(": ") for l in open("/proc/self/io").read().splitlines())
print(io["rchar"], io["wchar"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
`

// BenchmarkHivexSetDWORD is the same edit with python3-hivex, for
// comparison (process start-up included: that is what a technician runs).
func BenchmarkHivexSetDWORD(b *testing.B) {
	path := bigHivePath(b)
	py := "/usr/bin/python3"
	if exec.Command(py, "-c", "import hivex").Run() != nil {
		testutil.Unavailable(b, "python3 with the hivex module")
		return
	}
	var rd, wr, rss float64
	b.ResetTimer()
	for i := range b.N {
		out, err := exec.Command(py, "-c", hivexSetScript, path, benchKey, benchValue, strconv.Itoa(i)).Output()
		if err != nil {
			b.Fatalf("hivex: %v", err)
		}
		f := strings.Fields(string(out))
		if len(f) != 3 {
			b.Fatalf("hivex script printed %q", out)
		}
		x, _ := strconv.ParseFloat(f[0], 64)
		y, _ := strconv.ParseFloat(f[1], 64)
		z, _ := strconv.ParseFloat(f[2], 64)
		rd, wr, rss = rd+x, wr+y, max(rss, z)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(rd/n, "bytes-read/op")
	b.ReportMetric(wr/n, "bytes-written/op")
	b.ReportMetric(rss, "peak-rss-bytes")
}
