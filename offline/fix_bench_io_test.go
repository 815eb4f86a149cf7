package offline

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// BenchmarkFixIO measures what one fix reads from its target, in process,
// on the benchmark disk (benchDisk: 1 GiB NTFS partition, the broken
// Windows tree, a 54 MB SOFTWARE hive, 10,000 extra entries in
// Windows\WinSxS): opens of the image, reads and bytes that reached it
// (the session's counting cache), bytes written and wall time.
// BenchmarkDisk measures the built program on the same disk.
func BenchmarkFixIO(b *testing.B) {
	disk := benchDisk(b)
	img := filepath.Join(b.TempDir(), "io.img")
	var rep FixTargetReport
	var wall time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		benchCopy(b, disk, img)
		os.Remove(img + ".wuoffline") // no journals of an earlier round
		jdir := b.TempDir()
		b.StartTimer()
		start := time.Now()
		rep = FixTarget(img, FixOptions{JournalDir: jdir})
		wall += time.Since(start)
		if rep.State != FixDone || rep.IO == nil {
			b.Fatalf("fix: %s %s", rep.State, rep.Error)
		}
	}
	b.ReportMetric(float64(rep.IO.Opens), "opens")
	b.ReportMetric(float64(rep.IO.Reads), "reads")
	b.ReportMetric(float64(rep.IO.BytesRead)/(1<<20), "MiB-read")
	b.ReportMetric(float64(rep.Volumes[0].FileBytes)/(1<<10), "KiB-written")
	b.Logf("fix: %d opens, %d reads, %.1f MiB read, %d bytes written, %v per fix", rep.IO.Opens, rep.IO.Reads,
		float64(rep.IO.BytesRead)/(1<<20), rep.Volumes[0].FileBytes, wall/time.Duration(b.N))
}

// buildIOImage makes a bare NTFS volume of size bytes with mkntfs and
// ntfs-3g: the broken Windows tree, its SOFTWARE hive inflated to 54 MB,
// and 10,000 extra entries in Windows\WinSxS.
func buildIOImage(b *testing.B, img string, size int64) {
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		b.Fatal(err)
	}
	testutil.Run(b, "mkntfs", "-F", "-f", "-q", "-L", "Windows", img)
	tree := fixExtractTree(b, "broken-tree.tar.gz")
	inflateHive(b, filepath.Join(tree, "Windows", "System32", "config", "SOFTWARE"), 54<<20)
	mnt, unmount := testutil.MountNTFS(b, img, false)
	testutil.Run(b, "cp", "-a", tree+"/.", mnt+"/")
	for i := 0; i < 10000; i++ {
		mustCreate(b, filepath.Join(mnt, "Windows", "WinSxS", fmt.Sprintf("amd64_microsoft-windows-bench_%06d.manifest", i)))
	}
	unmount()
}
