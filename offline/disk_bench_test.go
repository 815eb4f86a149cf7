package offline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// The benchmark disk: a GPT disk like testimages/data/broken-gpt.img (the
// broken Windows tree on an NTFS partition at 1 MiB) whose partition is
// 1 GiB, whose SOFTWARE hive is inflated to 54 MB and whose Windows\WinSxS
// holds 10,000 extra entries. Built by mkntfs, ntfs-3g and sgdisk.
const (
	benchDiskVersion = "v1" // change when what buildBenchDisk makes changes
	benchPartStart   = 1 << 20
	benchPartSize    = 1 << 30
	benchDiskSize    = benchPartStart + benchPartSize + 1<<20 // room for the backup GPT
)

// benchCache is the directory holding the built disk, its containers and
// the binary across benchmarks of one run (and across runs: building the
// disk takes a minute or two on a loaded machine). WUOFFLINE_BENCH_DIR
// chooses it; the default is $TMPDIR/wuoffline-bench.
var benchCache struct {
	sync.Mutex
	disk, bin string
}

func benchDir(b *testing.B) string {
	d := os.Getenv("WUOFFLINE_BENCH_DIR")
	if d == "" {
		d = filepath.Join(os.TempDir(), "wuoffline-bench")
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		b.Fatal(err)
	}
	return d
}

// benchDisk returns the pristine benchmark disk (never write to it: copy
// it with benchCopy), building it on first use.
func benchDisk(b *testing.B) string {
	b.Helper()
	if testing.Short() {
		b.Skip("benchmark disk: not in -short")
	}
	testutil.RequireRoot(b)
	for _, tool := range []string{"mkntfs", "ntfs-3g", "sgdisk", "cp", "dd", "/usr/bin/time"} {
		testutil.RequireTool(b, tool)
	}
	benchCache.Lock()
	defer benchCache.Unlock()
	if benchCache.disk != "" {
		return benchCache.disk
	}
	disk := filepath.Join(benchDir(b), "disk-"+benchDiskVersion+".img")
	if _, err := os.Stat(disk); err != nil {
		start := time.Now()
		vol := disk + ".volume"
		buildIOImage(b, vol, benchPartSize)
		tmp := disk + ".tmp"
		if err := os.WriteFile(tmp, nil, 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.Truncate(tmp, benchDiskSize); err != nil {
			b.Fatal(err)
		}
		testutil.Run(b, "sgdisk", "--clear", "-n", fmt.Sprintf("1:%d:+%d", benchPartStart/512, benchPartSize/512-1),
			"-t", "1:0700", "-c", "1:Basic data partition", tmp)
		testutil.Run(b, "dd", "if="+vol, "of="+tmp, "bs=1M", fmt.Sprintf("seek=%d", benchPartStart>>20), "conv=notrunc,sparse", "status=none")
		os.Remove(vol)
		if err := os.Rename(tmp, disk); err != nil {
			b.Fatal(err)
		}
		b.Logf("benchmark disk built in %v: %s", time.Since(start).Round(time.Second), disk)
	}
	benchCache.disk = disk
	return disk
}

// benchBinary builds the command-line program once (static, as released).
func benchBinary(b *testing.B) string {
	b.Helper()
	benchCache.Lock()
	defer benchCache.Unlock()
	if benchCache.bin != "" {
		return benchCache.bin
	}
	bin := filepath.Join(b.TempDir(), "wuoffline")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/wuoffline/wuoffline/cmd/wuoffline")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	// b.TempDir belongs to the first benchmark that asks; keep the binary
	// in the cache directory instead.
	dst := filepath.Join(benchDir(b), "wuoffline")
	testutil.Run(b, "cp", bin, dst)
	benchCache.bin = dst
	return dst
}

// benchCopy copies src to dst keeping holes.
func benchCopy(b *testing.B, src, dst string) {
	b.Helper()
	testutil.Run(b, "cp", "--sparse=always", src, dst)
}

// child is one run of a program: wall time, peak resident memory (the
// kernel's wait4 rusage of that process alone) and its standard output.
type child struct {
	wall   time.Duration
	maxRSS int64 // bytes
	out    []byte
}

func runChild(b *testing.B, name string, args ...string) child {
	b.Helper()
	return runChildExit(b, 0, name, args...)
}

// runChildExit is runChild accepting exit codes up to maxExit (diagnose
// exits 1 when it finds problems).
func runChildExit(b *testing.B, maxExit int, name string, args ...string) child {
	b.Helper()
	// The peak RSS comes from /usr/bin/time (GNU time's %M, its child's
	// wait4 Maxrss in KiB): a process this test starts directly is cloned
	// sharing the test's memory, and the kernel carries that high-water
	// mark across exec into the child's Maxrss.
	rss := filepath.Join(b.TempDir(), "maxrss")
	cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M", "-o", rss, name}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() > 0 && ee.ExitCode() <= maxExit {
		err = nil
	}
	if err != nil {
		out := stdout.Bytes()
		if len(out) > 4000 {
			out = out[:4000]
		}
		b.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	c := child{wall: wall, out: stdout.Bytes()}
	if data, err := os.ReadFile(rss); err == nil {
		lines := strings.Fields(string(data)) // "Command exited with non-zero status N" comes first
		if len(lines) > 0 {
			kib, _ := strconv.ParseInt(lines[len(lines)-1], 10, 64)
			c.maxRSS = kib << 10
		}
	}
	return c
}

// ioCount is what a program did to one file, as strace saw it: shares no
// code with the program's own counting.
type ioCount struct {
	opens, reads, writes      int
	bytesRead, bytesWritten   int64
	otherReads, otherReadByte int64 // reads of any other file (journal, binary, /proc)
}

var (
	straceCall    = regexp.MustCompile(`^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+)`)
	straceStart   = regexp.MustCompile(`^(\d+)\s+(\w+)\((.*)<unfinished \.\.\.>$`)
	straceResumed = regexp.MustCompile(`^(\d+)\s+<\.\.\. (\w+) resumed>(.*)\)\s+=\s+(-?\d+)`)
	straceFD      = regexp.MustCompile(`^(\d+)`)
	straceOpen    = regexp.MustCompile(`^(AT_FDCWD|-?\d+), "([^"]*)"`)
)

// straceIO runs the program under strace and counts its opens, reads and
// writes of the files whose path ends with one of targets.
func straceIO(b *testing.B, targets []string, name string, args ...string) ioCount {
	b.Helper()
	testutil.RequireTool(b, "strace")
	log := filepath.Join(b.TempDir(), "strace.log")
	sargs := append([]string{"-f", "-qq", "-s", "0", "-e", "signal=none",
		"-e", "trace=openat,open,close,read,pread64,readv,preadv,write,pwrite64,writev,pwritev",
		"-o", log, name}, args...)
	runChildExit(b, 1, "strace", sargs...)
	f, err := os.Open(log)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var c ioCount
	fds := map[int]bool{}
	pending := map[string]string{} // pid -> args so far of an unfinished call
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var call, cargs string
		var ret int64
		if m := straceStart.FindStringSubmatch(line); m != nil {
			pending[m[1]] = m[3]
			continue
		} else if m := straceResumed.FindStringSubmatch(line); m != nil {
			call, cargs = m[2], pending[m[1]]+m[3]
			delete(pending, m[1])
			ret, _ = strconv.ParseInt(m[4], 10, 64)
		} else if m := straceCall.FindStringSubmatch(line); m != nil {
			call, cargs = m[2], m[3]
			ret, _ = strconv.ParseInt(m[4], 10, 64)
		} else {
			continue
		}
		switch call {
		case "openat", "open":
			a := cargs
			if call == "open" {
				a = "AT_FDCWD, " + a
			}
			m := straceOpen.FindStringSubmatch(a)
			if m == nil || ret < 0 {
				continue
			}
			for _, t := range targets {
				if strings.HasSuffix(m[2], t) {
					c.opens++
					fds[int(ret)] = true
				}
			}
		case "close":
			if m := straceFD.FindStringSubmatch(cargs); m != nil {
				fd, _ := strconv.Atoi(m[1])
				delete(fds, fd)
			}
		default:
			m := straceFD.FindStringSubmatch(cargs)
			if m == nil || ret < 0 {
				continue
			}
			fd, _ := strconv.Atoi(m[1])
			write := strings.HasPrefix(call, "write") || strings.HasPrefix(call, "pwrite")
			switch {
			case fds[fd] && write:
				c.writes++
				c.bytesWritten += ret
			case fds[fd]:
				c.reads++
				c.bytesRead += ret
			case !write:
				c.otherReads++
				c.otherReadByte += ret
			}
		}
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	return c
}

// fileDelta is what writing changed in a file: bytes that differ from the
// original over the original's length, and growth.
func fileDelta(b *testing.B, orig, now string) (changed, growth int64) {
	b.Helper()
	fa, err := os.Open(orig)
	if err != nil {
		b.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(now)
	if err != nil {
		b.Fatal(err)
	}
	defer fb.Close()
	sa, _ := fa.Stat()
	sb, _ := fb.Stat()
	growth = sb.Size() - sa.Size()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); off < sa.Size(); off += int64(len(ba)) {
		na, _ := io.ReadFull(io.NewSectionReader(fa, off, int64(len(ba))), ba)
		nb, _ := io.ReadFull(io.NewSectionReader(fb, off, int64(len(bb))), bb)
		if bytes.Equal(ba[:na], bb[:nb]) {
			continue
		}
		for i := 0; i < na; i++ {
			if i >= nb || ba[i] != bb[i] {
				changed++
			}
		}
	}
	return changed, growth
}

// allocated is the bytes a file occupies on disk (its holes excluded).
func allocated(b *testing.B, p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Blocks * 512
}

// fixJSON runs `wuoffline fix --yes --json` and checks every target fixed.
// jdir "" leaves each journal beside its image.
func fixJSON(b *testing.B, bin, jdir string, targets ...string) (child, FixReport) {
	b.Helper()
	// Exit 3 (a refusal) and 4 are read from the JSON, which says why.
	args := []string{"fix", "--yes", "--json"}
	if jdir != "" {
		args = append(args, "--journal", jdir)
	}
	c := runChildExit(b, 4, bin, append(args, targets...)...)
	// JSON Lines: one document per target, in argument order.
	var rep FixReport
	for _, line := range bytes.Split(bytes.TrimSpace(c.out), []byte("\n")) {
		var t FixTargetReport
		if err := json.Unmarshal(line, &t); err != nil {
			b.Fatalf("fix --json: %v\n%s", err, c.out)
		}
		rep.Targets = append(rep.Targets, t)
	}
	if len(rep.Targets) != len(targets) {
		b.Fatalf("fix --json: %d reports for %d targets", len(rep.Targets), len(targets))
	}
	for _, t := range rep.Targets {
		if t.State != FixDone {
			b.Fatalf("fix %s: %s %s %+v", t.Target, t.State, t.Error, t.Refusals)
		}
	}
	return c, rep
}

// fixRounds runs fix b.N times on fresh copies of src at work (the copy
// untimed) and returns the last run, its report and the mean wall time.
func fixRounds(b *testing.B, bin, src, work string) (child, FixReport, time.Duration) {
	b.Helper()
	var c child
	var rep FixReport
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		benchCopy(b, src, work)
		jdir := b.TempDir()
		b.StartTimer()
		c, rep = fixJSON(b, bin, jdir, work)
		total += c.wall
	}
	b.StopTimer()
	return c, rep, total / time.Duration(b.N)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// BenchmarkDisk measures the command-line program (the static binary, as
// a user runs it) on the benchmark disk: `fix` beside the manual Linux
// route (losetup, ntfs-3g, mv, hivexregedit --merge, umount) in the same
// run, and `diagnose`. Per command: wall time (ns/op), peak RSS (wait4's
// Maxrss of the process), and, from one run under strace, the opens of
// the image, the reads and bytes read from it and the bytes written to
// it. The budget of issue 8 is logged beside fix's figures. Runs only
// with -bench (make bench); WUOFFLINE_BENCH_DIR keeps the built disk.
func BenchmarkDisk(b *testing.B) {
	disk := benchDisk(b)
	bin := benchBinary(b)
	work := filepath.Join(b.TempDir(), "disk.img")
	var fixWall, manualWall time.Duration
	var fixRSS int64

	b.Run("diagnose", func(b *testing.B) {
		benchCopy(b, disk, work)
		b.ResetTimer()
		var c child
		for i := 0; i < b.N; i++ {
			c = runChildExit(b, 1, bin, "diagnose", "--json", work)
		}
		b.StopTimer()
		io := straceIO(b, []string{work}, bin, "diagnose", "--json", work)
		b.ReportMetric(mib(c.maxRSS), "MiB-peak-rss")
		b.ReportMetric(float64(io.opens), "opens")
		b.ReportMetric(float64(io.reads), "reads")
		b.ReportMetric(mib(io.bytesRead), "MiB-read")
		b.ReportMetric(float64(io.bytesWritten), "B-written")
		b.Logf("diagnose: %v, peak RSS %.1f MiB, %d opens, %d reads, %.2f MiB read, %d bytes written",
			c.wall.Round(time.Millisecond), mib(c.maxRSS), io.opens, io.reads, mib(io.bytesRead), io.bytesWritten)
	})

	b.Run("fix", func(b *testing.B) {
		c, rep, wall := fixRounds(b, bin, disk, work)
		fixWall, fixRSS = wall, c.maxRSS
		changed, growth := fileDelta(b, disk, work)
		verifyBenchFix(b, work, rep.Targets[0].Volumes[0].Actions)
		benchCopy(b, disk, work)
		io := straceIO(b, []string{work}, bin, "fix", "--yes", "--json", "--journal", b.TempDir(), work)
		t := rep.Targets[0]
		b.ReportMetric(mib(c.maxRSS), "MiB-peak-rss")
		b.ReportMetric(float64(io.opens), "opens")
		b.ReportMetric(float64(io.reads), "reads")
		b.ReportMetric(mib(io.bytesRead), "MiB-read")
		b.ReportMetric(float64(io.bytesWritten)/(1<<10), "KiB-written")
		b.Logf("fix: %v, peak RSS %.1f MiB; strace: %d opens, %d reads, %.2f MiB read, %d writes, %d bytes written; "+
			"image: %d bytes changed, growth %d; plan %d bytes", c.wall.Round(time.Millisecond), mib(c.maxRSS),
			io.opens, io.reads, mib(io.bytesRead), io.writes, io.bytesWritten, changed, growth, t.Volumes[0].Bytes)
		if t.IO != nil {
			b.Logf("fix's own count (session cache, 32 KiB blocks): %d opens, %d reads, %.2f MiB read",
				t.IO.Opens, t.IO.Reads, mib(t.IO.BytesRead))
		}
		budget := []struct {
			what      string
			got, most float64
		}{
			{"opens", float64(io.opens), 2},
			{"reads", float64(io.reads), 1500},
			{"MiB read", mib(io.bytesRead), 8},
			{"KiB written", float64(io.bytesWritten) / 1024, 256},
			{"MiB peak RSS", mib(c.maxRSS), 24},
		}
		for _, x := range budget {
			verdict := "within"
			if x.got > x.most {
				verdict = "OVER"
			}
			b.Logf("issue 8 budget: %-12s %10.2f (at most %g): %s", x.what, x.got, x.most, verdict)
		}
	})

	b.Run("manual-linux", func(b *testing.B) {
		for _, tool := range []string{"losetup", "ntfs-3g", "hivexregedit", "umount"} {
			testutil.RequireTool(b, tool)
		}
		dry := FixTarget(disk, FixOptions{DryRun: true})
		if dry.State != FixPlanned {
			b.Fatalf("dry run: %s %s %v", dry.State, dry.Error, dry.Refusals)
		}
		acts := dry.Volumes[0].Actions
		regs := manualRegFiles(b, b.TempDir(), acts)
		mnt := filepath.Join(b.TempDir(), "mnt")
		if err := os.Mkdir(mnt, 0o755); err != nil {
			b.Fatal(err)
		}
		var total time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			benchCopy(b, disk, work)
			b.StartTimer()
			start := time.Now()
			loop := strings.TrimSpace(string(testutil.Run(b, "losetup", "--find", "--show",
				"--offset", strconv.Itoa(benchPartStart), "--sizelimit", strconv.Itoa(benchPartSize), work)))
			testutil.Run(b, "ntfs-3g", loop, mnt)
			manualRoute(b, mnt, acts, regs)
			testutil.Run(b, "umount", mnt)
			testutil.Run(b, "losetup", "-d", loop)
			total += time.Since(start)
		}
		b.StopTimer()
		manualWall = total / time.Duration(b.N)
		if p := defaultProblems(DiagnoseTarget(work, Options{})); len(p) > 0 {
			b.Errorf("the manual route left: %v", p)
		}
		if fixWall > 0 {
			share := float64(fixWall) / float64(manualWall)
			b.ReportMetric(share, "fix/manual")
			verdict := "within"
			if share > 0.25 {
				verdict = "OVER"
			}
			b.Logf("fix %v, manual route %v: fix takes %.2f of the manual route's time (at most 0.25): %s; fix peak RSS %.1f MiB",
				fixWall.Round(time.Millisecond), manualWall.Round(time.Millisecond), share, verdict, mib(fixRSS))
		}
	})
}

// BenchmarkContainers fixes the benchmark disk as raw, qcow2 and dynamic
// VHDX files: in place with `wuoffline fix`, and by the convert route
// (qemu-img convert to raw, fix, qemu-img convert back), in the same run.
// Bytes written in place are the container file's changed bytes plus its
// growth; for the convert route, the raw copy's allocated bytes plus the
// new container file (what the route writes to the host's disk).
func BenchmarkContainers(b *testing.B) {
	disk := benchDisk(b)
	testutil.RequireTool(b, "qemu-img")
	bin := benchBinary(b)
	formats := []struct{ name, fmt, ext string }{
		{"raw", "raw", "img"},
		{"qcow2", "qcow2", "qcow2"},
		{"vhdx", "vhdx", "vhdx"},
	}
	for _, f := range formats {
		src := disk
		if f.fmt != "raw" {
			src = filepath.Join(benchDir(b), "disk-"+benchDiskVersion+"."+f.ext)
			if _, err := os.Stat(src); err != nil {
				args := []string{"convert", "-O", f.fmt}
				if f.fmt == "vhdx" {
					args = append(args, "-o", "subformat=dynamic")
				}
				testutil.Run(b, "qemu-img", append(args, disk, src+".tmp")...)
				if err := os.Rename(src+".tmp", src); err != nil {
					b.Fatal(err)
				}
			}
		}
		work := filepath.Join(b.TempDir(), "disk."+f.ext)
		b.Run(f.name+"/in-place", func(b *testing.B) {
			c, _, wall := fixRounds(b, bin, src, work)
			changed, growth := fileDelta(b, src, work)
			b.ReportMetric(mib(c.maxRSS), "MiB-peak-rss")
			b.ReportMetric(float64(changed+growth)/(1<<10), "KiB-written")
			b.Logf("%s in place: %v, %d bytes changed + %d bytes growth, peak RSS %.1f MiB",
				f.name, wall.Round(time.Millisecond), changed, growth, mib(c.maxRSS))
		})
		if f.fmt == "raw" {
			continue
		}
		b.Run(f.name+"/convert-route", func(b *testing.B) {
			raw := filepath.Join(b.TempDir(), "converted.img")
			out := filepath.Join(b.TempDir(), "back."+f.ext)
			var written int64
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				benchCopy(b, src, work)
				os.Remove(raw)
				os.Remove(out)
				jdir := b.TempDir()
				b.StartTimer()
				start := time.Now()
				testutil.Run(b, "qemu-img", "convert", "-O", "raw", work, raw)
				_, rep := fixJSON(b, bin, jdir, raw)
				args := []string{"convert", "-O", f.fmt}
				if f.fmt == "vhdx" {
					args = append(args, "-o", "subformat=dynamic")
				}
				testutil.Run(b, "qemu-img", append(args, raw, out)...)
				total += time.Since(start)
				b.StopTimer()
				written = allocated(b, raw) + rep.Targets[0].Volumes[0].FileBytes + allocated(b, out)
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(mib(written), "MiB-written")
			b.Logf("%s convert route: %v, %.1f MiB written (raw copy + fix + new %s)",
				f.name, (total / time.Duration(b.N)).Round(time.Millisecond), mib(written), f.name)
		})
	}
}

// BenchmarkFleet fixes 16 copies of the benchmark disk with one command
// (several TARGETs run in parallel), beside one disk alone.
func BenchmarkFleet(b *testing.B) {
	disk := benchDisk(b)
	bin := benchBinary(b)
	const n = 16
	dir := b.TempDir()
	var targets []string
	for i := 0; i < n; i++ {
		// One directory per disk: the journal directory beside an image
		// is locked while its fix runs, and today a second target in the
		// same directory is refused ("in use by another wuoffline")
		// instead of waiting.
		d := filepath.Join(dir, fmt.Sprintf("vm%02d", i))
		if err := os.Mkdir(d, 0o755); err != nil {
			b.Fatal(err)
		}
		targets = append(targets, filepath.Join(d, "disk.img"))
	}
	var c child
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for _, t := range targets {
			benchCopy(b, disk, t)
		}
		for _, t := range targets {
			removeJournals(b, t)
		}
		b.StartTimer()
		// Each journal beside its disk: the targets run in parallel, and
		// a --journal DIR shared by all is locked by the first.
		c, _ = fixJSON(b, bin, "", targets...)
		total += c.wall
	}
	b.StopTimer()
	per := total / time.Duration(b.N)
	b.ReportMetric(mib(c.maxRSS), "MiB-peak-rss")
	b.ReportMetric(per.Seconds()/n, "s/disk")
	b.Logf("%d disks in one fix: %v (%v per disk), peak RSS %.1f MiB", n, per.Round(time.Millisecond),
		(per / n).Round(time.Millisecond), mib(c.maxRSS))
}

// removeJournals removes the journals fix left beside an image.
func removeJournals(b *testing.B, img string) {
	b.Helper()
	old, _ := filepath.Glob(img + ".wuoffline*")
	for _, p := range old {
		if err := os.RemoveAll(p); err != nil {
			b.Fatal(err)
		}
	}
}

// verifyBenchFix checks a fixed benchmark disk with tools that share no
// code with wuoffline: ntfsfix -n on the partition, an ntfs-3g read-only
// mount that stats every name of the volume, fls listing the renamed
// names (and not the old ones), and hivexregedit finding the deleted
// registry keys gone.
func verifyBenchFix(b *testing.B, img string, acts []FixAction) {
	b.Helper()
	for _, tool := range []string{"losetup", "ntfsfix", "ntfs-3g", "fls", "hivexregedit"} {
		testutil.RequireTool(b, tool)
	}
	loop := strings.TrimSpace(string(testutil.Run(b, "losetup", "-r", "-f", "--show",
		"-o", strconv.Itoa(benchPartStart), "--sizelimit", strconv.Itoa(benchPartSize), img)))
	defer exec.Command("losetup", "-d", loop).Run()
	if out := testutil.Run(b, "ntfsfix", "-n", loop); !strings.Contains(string(out), "processed successfully") {
		b.Errorf("ntfsfix -n after fix:\n%s", out)
	}
	names := map[string]bool{}
	for _, ln := range strings.Split(string(testutil.Run(b, "fls", "-r", "-p", loop)), "\n") {
		if i := strings.Index(ln, ":\t"); i >= 0 {
			names[strings.ToLower(ln[i+2:])] = true
		}
	}
	mnt := b.TempDir()
	testutil.Run(b, "ntfs-3g", "-o", "ro", loop, mnt)
	defer exec.Command("umount", mnt).Run()
	n := 0
	filepath.WalkDir(mnt, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			_, err = os.Lstat(p)
		}
		if err != nil {
			b.Errorf("ntfs-3g: %s: %v", p, err)
			return nil
		}
		n++
		return nil
	})
	if n < 10000 {
		b.Errorf("ntfs-3g: %d names on the fixed volume", n)
	}
	hives := map[string]bool{}
	for _, a := range acts {
		switch {
		case a.Op == "rename":
			from, to := strings.ToLower(winToSlash(a.Path)), strings.ToLower(winToSlash(a.To))
			if names[from] || !names[to] {
				b.Errorf("fls: after renaming %s to %s: old listed %v, new listed %v", a.Path, a.To, names[from], names[to])
			}
		case a.Op == "delete-key" && !hives[a.Hive+a.Key]:
			hives[a.Hive+a.Key] = true
			h := filepath.Join(mnt, "Windows", "System32", "config", strings.ToUpper(a.Hive))
			if out, err := exec.Command("hivexregedit", "--export", h, a.Key).CombinedOutput(); err == nil {
				b.Errorf("hivexregedit: %s\\%s still there after fix:\n%.300s", a.Hive, a.Key, out)
			}
		}
	}
	b.Logf("independent checks: ntfsfix -n clean, %d names stat'ed through ntfs-3g, fls and hivexregedit agree with the plan", n)
}
