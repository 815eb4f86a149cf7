package offline

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"wuoffline/internal/testutil"
)

// BenchmarkFixIO measures what one fix reads from its target on a 1 GiB
// NTFS volume holding the broken Windows tree with its SOFTWARE hive
// inflated to 54 MB and 10,000 extra entries in Windows\WinSxS: opens of
// the image, reads and bytes that reached it (the session's counting
// cache), and wall time. WUOFFLINE_BENCH_IMAGE=PATH keeps the built image
// there (and reuses it), so the command-line binary can be measured on it
// too (strace -c -e trace=pread64,openat).
func BenchmarkFixIO(b *testing.B) {
	testutil.RequireRoot(b)
	for _, tool := range []string{"mkntfs", "ntfs-3g", "cp"} {
		testutil.RequireTool(b, tool)
	}
	img := os.Getenv("WUOFFLINE_BENCH_IMAGE")
	if img == "" {
		img = filepath.Join(b.TempDir(), "io.img")
	}
	pristine := img + ".pristine"
	if _, err := os.Stat(pristine); err != nil {
		buildIOImage(b, img)
		testutil.Run(b, "cp", "--sparse=always", img, pristine)
	}
	restore := func() { testutil.Run(b, "cp", "--sparse=always", pristine, img) }
	var rep FixTargetReport
	var wall time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		restore()
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
	b.ReportMetric(float64(rep.Volumes[0].Bytes)/(1<<10), "KiB-written")
	b.Logf("fix: %d opens, %d reads, %.1f MiB read, %d bytes written, %v per fix", rep.IO.Opens, rep.IO.Reads,
		float64(rep.IO.BytesRead)/(1<<20), rep.Volumes[0].Bytes, wall/time.Duration(b.N))
}

// buildIOImage makes the benchmark's volume with mkntfs and ntfs-3g.
func buildIOImage(b *testing.B, img string) {
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(img, 1<<30); err != nil {
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
