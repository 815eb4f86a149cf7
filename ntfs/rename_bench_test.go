package ntfs

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

var wtBenchFiles = flag.Int("wt.benchfiles", 300000, "files in BenchmarkRename's volume (in directories of 1000)")

// BenchmarkRename renames a directory on a volume of wt.benchfiles entries
// (built once with mkntfs and ntfs-3g, which takes minutes at 300,000):
// with the Writer (open the volume, plan, write, re-read and check) and
// with ntfs-3g (mount, rename, unmount).
//
//	go test ./ntfs/ -run XXX -bench BenchmarkRename -benchtime 20x -timeout 1h
func BenchmarkRename(b *testing.B) {
	dirs := max(1, *wtBenchFiles/1000)
	v := wtMakeVolume(b, 4<<30, "-s", "512", "-c", "4096")
	mp, unmount := wtMount(b, v.path, false, "big_writes")
	for d := 0; d < dirs; d++ {
		dp := filepath.Join(mp, fmt.Sprintf("dir%04d", d))
		if err := os.Mkdir(dp, 0o755); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < *wtBenchFiles/dirs; i++ {
			f, err := os.Create(filepath.Join(dp, fmt.Sprintf("file number %06d.dat", i)))
			if err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	}
	unmount()
	f := wtFile(b, v.path)
	st, _ := f.Stat()
	// Sub-benchmarks run several times: the state alternates across runs.
	var k1, k2 int
	b.Run("wuoffline", func(b *testing.B) {
		var written int64
		cr := &wtCountingReader{r: f}
		for i := 0; i < b.N; i++ {
			w, err := OpenWriter(cr, f, st.Size(), WriterOptions{})
			if err != nil {
				b.Fatal(err)
			}
			from, to := "dir0001", "dir0001-renamed"
			k1++
			if k1%2 == 0 {
				from, to = to, from
			}
			rs, err := w.Rename(from, to)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range rs {
				written += r.Len
			}
		}
		b.ReportMetric(float64(written)/float64(b.N), "bytes-written/op")
		b.ReportMetric(float64(cr.n)/float64(b.N), "bytes-read/op")
	})
	b.Run("ntfs-3g", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			mp, unmount := wtMount(b, v.path, false)
			from, to := "dir0002", "dir0002-renamed"
			k2++
			if k2%2 == 0 {
				from, to = to, from
			}
			if err := os.Rename(filepath.Join(mp, from), filepath.Join(mp, to)); err != nil {
				b.Fatal(err)
			}
			unmount()
		}
	})
}

// wtCountingReader counts the bytes read through it.
type wtCountingReader struct {
	r io.ReaderAt
	n int64
}

func (c *wtCountingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}
