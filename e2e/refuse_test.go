//go:build linux

package e2e

import (
	"bytes"
	le "encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// These tests damage copies of testimages/data/broken-gpt.img the way
// damaged disks are damaged, locating every structure with tools that share
// no code with wuoffline (sgdisk for the partition, sleuthkit's fsstat and
// istat for clusters), and run the real binary: fix and mv, with and
// without --dry-run, must refuse with exit 3, name the damaged structure,
// say what to run, leave the image byte-identical and create no journal.
// Where the damage lies outside what mv's rename touches (the SYSTEM hive),
// mv is not refused (damage a plan does not touch is reported, not a
// refusal): the test then checks that the rename left the hive's bytes.

// rfVolume is where the Windows volume of a GPT image lies, per sgdisk and
// sleuthkit.
type rfVolume struct {
	img     string
	off     int64 // byte offset of the partition
	size    int64 // its length in bytes
	cluster int64 // bytes per cluster
}

// rfOpen finds the first Microsoft basic data partition (type 0700) with
// sgdisk and its cluster size with fsstat.
func rfOpen(t *testing.T, img string) *rfVolume {
	t.Helper()
	v := &rfVolume{img: img}
	for _, line := range strings.Split(string(testutil.Run(t, "sgdisk", "-p", img)), "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[5] == "0700" {
			start, err1 := strconv.ParseInt(f[1], 10, 64)
			end, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("sgdisk line %q", line)
			}
			v.off, v.size = start*512, (end-start+1)*512
			break
		}
	}
	if v.off == 0 {
		t.Fatal("sgdisk lists no basic data partition")
	}
	v.cluster = v.fsstatInt(t, "Cluster Size:")
	return v
}

// sk runs a sleuthkit tool on the volume (-o in sectors).
func (v *rfVolume) sk(t *testing.T, tool string, args ...string) string {
	t.Helper()
	return string(testutil.Run(t, tool, append([]string{"-o", strconv.FormatInt(v.off/512, 10), v.img}, args...)...))
}

// fsstatInt returns the number after label in fsstat's report.
func (v *rfVolume) fsstatInt(t *testing.T, label string) int64 {
	t.Helper()
	out := v.sk(t, "fsstat")
	i := strings.Index(out, label)
	if i < 0 {
		t.Fatalf("fsstat: no %q", label)
	}
	f := strings.Fields(out[i+len(label):])
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		t.Fatalf("fsstat %q: %v", label, err)
	}
	return n
}

// inode returns the MFT record number of path, per ifind.
func (v *rfVolume) inode(t *testing.T, path string) string {
	t.Helper()
	return strings.TrimSpace(v.sk(t, "ifind", "-n", path))
}

// clusters returns the clusters istat lists for the attribute of record
// inode whose istat line starts with "Type: "+attr (e.g. "$DATA").
func (v *rfVolume) clusters(t *testing.T, inode, attr string) []int64 {
	t.Helper()
	var out []int64
	in := false
	for _, line := range strings.Split(v.sk(t, "istat", inode), "\n") {
		if strings.HasPrefix(line, "Type: ") {
			if in {
				break
			}
			in = strings.HasPrefix(line, "Type: "+attr+" ")
			continue
		}
		if !in {
			continue
		}
		for _, f := range strings.Fields(line) {
			n, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				t.Fatalf("istat %s %s: %q", inode, attr, line)
			}
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		t.Fatalf("istat %s: no clusters for %s", inode, attr)
	}
	return out
}

// at returns the image offset of byte off of cluster lcn.
func (v *rfVolume) at(lcn, off int64) int64 { return v.off + lcn*v.cluster + off }

// read returns n bytes of the image at off.
func (v *rfVolume) read(t *testing.T, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(v.img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

// write writes b into the image at off.
func (v *rfVolume) write(t *testing.T, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(v.img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// bitmapByte is the image offset of the $Bitmap byte holding cluster lcn
// ($Bitmap is record 6; istat lists each of its clusters).
func (v *rfVolume) bitmapByte(t *testing.T, lcn int64) int64 {
	t.Helper()
	runs := v.clusters(t, "6", "$DATA")
	i := lcn / 8 / v.cluster
	if i >= int64(len(runs)) {
		t.Fatalf("cluster %d past $Bitmap", lcn)
	}
	return v.at(runs[i], lcn/8%v.cluster)
}

// rfDamage is one way to damage the volume, and what the refusal must say.
type rfDamage struct {
	name   string
	damage func(t *testing.T, v *rfVolume)
	names  []string // every one in the refusal (the structure)
	advice string   // in the refusal: what to run
	ntfs3g bool     // ntfs-3g -o ro refuses the damaged volume too
	// mvOK: mv's rename does not touch the damaged structure, so it is
	// not refused (damage the plan does not touch is reported, not a
	// refusal); the test then checks that it did not write into it.
	mvOK bool
}

func rfDamages() []rfDamage {
	return []rfDamage{
		{name: "Windows index", damage: func(t *testing.T, v *rfVolume) {
			// The first entry of \Windows's first INDX block: its name's
			// first character becomes '!', so that the key no longer matches
			// the record's $FILE_NAME (fixups untouched: the name lies in
			// the block's first sector).
			blk := v.at(v.clusters(t, v.inode(t, "/Windows"), "$INDEX_ALLOCATION")[0], 0)
			h := v.read(t, blk, 0x40)
			if string(h[:4]) != "INDX" {
				t.Fatalf("no INDX block at 0x%x", blk)
			}
			e := blk + 0x18 + int64(le.LittleEndian.Uint32(h[0x18:]))
			name := e + 0x10 + 0x42
			if (name-blk)%512 >= 510 {
				t.Fatal("the name crosses a fixup")
			}
			v.write(t, name, []byte{'!', 0})
		}, names: []string{`"Windows"`}, advice: "chkdsk /f"},
		{name: "SYSTEM cluster free in $Bitmap", damage: func(t *testing.T, v *rfVolume) {
			lcn := v.clusters(t, v.inode(t, "/Windows/System32/config/SYSTEM"), "$DATA")[0]
			off := v.bitmapByte(t, lcn)
			b := v.read(t, off, 1)
			if b[0]&(1<<(lcn%8)) == 0 {
				t.Fatalf("cluster %d already free", lcn)
			}
			b[0] &^= 1 << (lcn % 8)
			v.write(t, off, b)
		}, names: []string{"$Bitmap"}, advice: "chkdsk /f", mvOK: true},
		{name: "SYSTEM value list overlapped", damage: rfDamageHiveCell,
			names: []string{"SYSTEM", "hive bin"}, advice: "reg check", mvOK: true},
		{name: "$MFTMirr differs", damage: func(t *testing.T, v *rfVolume) {
			// One reserved byte of $Volume's $VOLUME_INFORMATION (type
			// 0x70) in $MFTMirr's copy of record 3 only.
			rec := v.at(v.fsstatInt(t, "First Cluster of MFT Mirror:"), 3*1024)
			b := v.read(t, rec, 510)
			for a := int(le.LittleEndian.Uint16(b[0x14:])); a+0x18 < len(b); {
				typ, n := le.LittleEndian.Uint32(b[a:]), int(le.LittleEndian.Uint32(b[a+4:]))
				if typ == 0xffffffff || n == 0 {
					break
				}
				if typ == 0x70 {
					val := a + int(le.LittleEndian.Uint16(b[a+0x14:]))
					v.write(t, rec+int64(val), []byte{b[val] ^ 0x40})
					return
				}
				a += n
			}
			t.Fatal("no $VOLUME_INFORMATION in the first sector of $MFTMirr's record 3")
		}, names: []string{"$MFTMirr"}, advice: "chkdsk /f", ntfs3g: true},
		{name: "$Bitmap zeroed", damage: func(t *testing.T, v *rfVolume) {
			for _, lcn := range v.clusters(t, "6", "$DATA") {
				v.write(t, v.at(lcn, 0), make([]byte, v.cluster))
			}
		}, names: []string{"$Bitmap"}, advice: "chkdsk /f"},
	}
}

// rfEntries lists a directory's names.
func rfEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// TestRefuseDamagedVolume: fix and mv (and their dry runs) on each damaged
// copy exit 3 with a refusal naming the structure and what to run; the
// image stays byte-identical, no journal appears beside it, and sleuthkit's
// fls lists the same names as before.
func TestRefuseDamagedVolume(t *testing.T) {
	for _, tool := range []string{"sgdisk", "fsstat", "istat", "ifind", "fls", "icat"} {
		testutil.RequireTool(t, tool)
	}
	bin := binary(t, runtime.GOOS, runtime.GOARCH)
	for _, tc := range rfDamages() {
		t.Run(tc.name, func(t *testing.T) {
			img := testutil.TestImage(t, "broken-gpt.img") // alone in its directory
			dir := filepath.Dir(img)
			v := rfOpen(t, img)
			tc.damage(t, v)
			sum := testutil.SHA256File(t, img)
			fls := v.sk(t, "fls", "-r", "-p")
			cmds := [][]string{{"fix", "--yes", img}, {"fix", "--dry-run", img}}
			mv := [][]string{
				{"mv", "--dry-run", img, `\Windows\SoftwareDistribution`, `\Windows\SD.x`},
				{"mv", "--yes", img, `\Windows\SoftwareDistribution`, `\Windows\SD.x`},
			}
			if !tc.mvOK {
				cmds = append(cmds, mv...)
			}
			for _, args := range cmds {
				r := run(t, nil, bin, args...)
				out := string(r.stdout) + string(r.stderr)
				if r.exit != 3 {
					t.Errorf("%s: exit %d, want 3\n%s", args[:2], r.exit, out)
					continue
				}
				for _, want := range append([]string{tc.advice}, tc.names...) {
					if !strings.Contains(out, want) {
						t.Errorf("%s: the refusal lacks %q:\n%s", args[:2], want, out)
					}
				}
				if got := testutil.SHA256File(t, img); got != sum {
					t.Fatalf("%s: the image changed", args[:2])
				}
				if es := rfEntries(t, dir); !slices.Equal(es, []string{filepath.Base(img)}) {
					t.Fatalf("%s: files beside the image: %v", args[:2], es)
				}
			}
			if got := v.sk(t, "fls", "-r", "-p"); got != fls {
				t.Error("fls lists other names than before")
			}
			if tc.ntfs3g {
				testutil.RequireRoot(t)
				testutil.RequireTool(t, "ntfs-3g")
				// ntfs-3g takes a volume: the partition's bytes on their own.
				part := filepath.Join(t.TempDir(), "part.img")
				if err := os.WriteFile(part, v.read(t, v.off, int(v.size)), 0o644); err != nil {
					t.Fatal(err)
				}
				mp := t.TempDir()
				out, err := exec.Command("ntfs-3g", "-o", "ro", part, mp).CombinedOutput()
				if err == nil {
					exec.Command("fusermount", "-u", mp).Run()
					t.Error("ntfs-3g -o ro mounts the damaged volume: the damage is not what the case means")
				} else {
					t.Logf("ntfs-3g -o ro refuses too: %s", bytes.TrimSpace(out))
				}
			}
			if tc.mvOK {
				rfMvAvoids(t, bin, v, mv)
			}
		})
	}
}

// rfMvAvoids runs a rename that does not touch the SYSTEM hive on a volume
// whose damage is in or about the hive (its first cluster wrongly free in
// $Bitmap, a damaged cell), to a long name (a bigger index entry): it
// succeeds, and the hive's bytes (read by icat) are what they were: the
// allocator did not hand out the hive's cluster, nothing wrote into it.
func rfMvAvoids(t *testing.T, bin string, v *rfVolume, mv [][]string) {
	t.Helper()
	hive := v.inode(t, "/Windows/System32/config/SYSTEM")
	before := v.sk(t, "icat", hive)
	long := strings.Repeat("SoftwareDistribution.moved.", 4) + "x"
	for _, args := range mv {
		args = append(slices.Clone(args[:len(args)-1]), `\Windows\`+long)
		if r := run(t, nil, bin, args...); r.exit != 0 {
			t.Fatalf("%s: exit %d, want 0\n%s%s", args[:2], r.exit, r.stdout, r.stderr)
		}
	}
	after := v.sk(t, "icat", hive)
	if after != before || !strings.HasPrefix(after, "regf") {
		t.Errorf("the SYSTEM hive changed (starts %q)", after[:min(len(after), 4)])
	}
	if !strings.Contains(v.sk(t, "fls", "-p", v.inode(t, "/Windows")), long) {
		t.Error("fls does not list the renamed directory")
	}
}

// rfDamageHiveCell grows the cell before the value list of the SYSTEM
// hive's ControlSet001\Control\Session Manager (whose values fix deletes)
// 8 bytes into the value list, in the hive's clusters inside the image. The
// key is found with hivex (python3-hivex: its node handles are file
// offsets of the key's cell), the hive's bytes and clusters with icat and
// istat; the cells of the value list's bin are walked by their sizes (a
// cell starts with its int32 size, negative when allocated; regf format).
func rfDamageHiveCell(t *testing.T, v *rfVolume) {
	t.Helper()
	py := rfHivexPython(t)
	inode := v.inode(t, "/Windows/System32/config/SYSTEM")
	hive := filepath.Join(t.TempDir(), "SYSTEM")
	if err := os.WriteFile(hive, []byte(v.sk(t, "icat", inode)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := testutil.Run(t, py, "-c", `import hivex, sys
h = hivex.Hivex(sys.argv[1])
n = h.root()
for p in sys.argv[2].split("\\"):
    n = h.node_get_child(n, p)
print(n)`, hive, `ControlSet001\Control\Session Manager`)
	nk, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatalf("hivex: %q: %v", out, err)
	}
	b, err := os.ReadFile(hive)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[nk+4:nk+6]) != "nk" {
		t.Fatalf("no key cell at 0x%x", nk)
	}
	// The nk record: value list offset at 0x28 of its data, relative to
	// the first bin at 0x1000.
	vl := 0x1000 + int64(le.LittleEndian.Uint32(b[nk+4+0x28:]))
	bin := int64(0x1000)
	for {
		if string(b[bin:bin+4]) != "hbin" {
			t.Fatalf("no bin at 0x%x", bin)
		}
		size := int64(le.LittleEndian.Uint32(b[bin+8:]))
		if vl < bin+size {
			break
		}
		bin += size
	}
	prev := int64(-1)
	for c := bin + 0x20; c < vl; {
		prev = c
		sz := int64(int32(le.LittleEndian.Uint32(b[c:])))
		c += max(sz, -sz)
	}
	if prev < 0 {
		t.Fatal("the value list is its bin's first cell")
	}
	sz := int32(le.LittleEndian.Uint32(b[prev:]))
	grown := int32(vl-prev) + 8
	if sz < 0 {
		grown = -grown
	}
	t.Logf("value list at 0x%x; cell at 0x%x (size %d) grown to %d", vl, prev, sz, grown)
	var p [4]byte
	le.LittleEndian.PutUint32(p[:], uint32(grown))
	clusters := v.clusters(t, inode, "$DATA")
	v.write(t, v.at(clusters[prev/v.cluster], prev%v.cluster), p[:])
}

// rfHivexPython returns the python that has the hivex module
// (python3-hivex is for Debian's /usr/bin/python3).
func rfHivexPython(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import hivex").Run() == nil {
			return py
		}
	}
	testutil.Unavailable(t, "python3-hivex not installed")
	return ""
}

// TestRefuseHibernatedMvDryRun: mv --dry-run on a hibernated volume exits 3
// as mv does, names the hibernation, and writes nothing (no journal either).
func TestRefuseHibernatedMvDryRun(t *testing.T) {
	bin := binary(t, runtime.GOOS, runtime.GOARCH)
	img := testutil.TestImage(t, "refuse-hibernated.img")
	sum := testutil.SHA256File(t, img)
	for _, mode := range []string{"--dry-run", "--yes"} {
		r := run(t, nil, bin, "mv", mode, img, `\Windows\SoftwareDistribution`, `\Windows\SD.x`)
		out := string(r.stdout) + string(r.stderr)
		if r.exit != 3 || !strings.Contains(strings.ToLower(out), "hibernat") {
			t.Errorf("mv %s: exit %d, want 3 naming the hibernation:\n%s", mode, r.exit, out)
		}
		if testutil.SHA256File(t, img) != sum {
			t.Fatalf("mv %s: the image changed", mode)
		}
		if es := rfEntries(t, filepath.Dir(img)); !slices.Equal(es, []string{filepath.Base(img)}) {
			t.Fatalf("mv %s: files beside the image: %v", mode, es)
		}
	}
}

// TestRefuseHugeDeclaredHive: a SYSTEM hive whose base block declares 1 GiB
// of hive bins (field at 0x28) while holding its real size, checksum
// (0x1FC: XOR of the first 127 little-endian uint32) made right again, in
// the image's SYSTEM clusters: fix, run as a child process, ends cleanly
// (a refusal or a fix, no crash) with a peak resident size (wait4's
// ru_maxrss) under 64 MiB: memory follows what is on disk, not the header.
func TestRefuseHugeDeclaredHive(t *testing.T) {
	for _, tool := range []string{"sgdisk", "fsstat", "istat", "ifind", "icat"} {
		testutil.RequireTool(t, tool)
	}
	bin := binary(t, runtime.GOOS, runtime.GOARCH)
	img := testutil.TestImage(t, "broken-gpt.img")
	v := rfOpen(t, img)
	inode := v.inode(t, "/Windows/System32/config/SYSTEM")
	base := v.at(v.clusters(t, inode, "$DATA")[0], 0)
	b := v.read(t, base, 512)
	if string(b[:4]) != "regf" {
		t.Fatalf("no regf base block at 0x%x", base)
	}
	held := le.LittleEndian.Uint32(b[0x28:])
	le.LittleEndian.PutUint32(b[0x28:], 1<<30)
	var sum uint32
	for i := 0; i < 0x1FC; i += 4 {
		sum ^= le.LittleEndian.Uint32(b[i:])
	}
	le.LittleEndian.PutUint32(b[0x1FC:], sum)
	v.write(t, base, b)
	t.Logf("SYSTEM: %d bytes of bins declared as %d", held, 1<<30)

	sha := testutil.SHA256File(t, img)
	code, peak, out := rfMeasured(t, bin, "fix", "--yes", img)
	t.Logf("fix: exit %d, peak RSS %.1f MiB", code, float64(peak)/(1<<20))
	if code != 0 && code != 3 || strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
		t.Errorf("fix: exit %d, want a clean refusal (3) or fix (0):\n%s", code, out)
	}
	if code == 3 && testutil.SHA256File(t, img) != sha {
		t.Error("fix refused but the image changed")
	}
	if peak >= 64<<20 {
		t.Errorf("fix peaked at %.1f MiB, want under 64 MiB", float64(peak)/(1<<20))
	}
}

// rfRSSEnv makes the test binary the measuring parent (see rfMeasured).
const rfRSSEnv = "WUOFFLINE_E2E_MAXRSS_ARGS"

// rfMeasured runs bin with args and returns its exit code, its peak
// resident size in bytes (wait4's ru_maxrss) and its output. Linux carries
// ru_maxrss across execve from the mm the process had before it (for a
// child that os/exec starts with CLONE_VM, the PARENT's: this test
// process, which has read images into memory), so the child is started
// by a fresh copy of this test binary (TestRefuseMaxRSSChild), whose own
// peak is a few MiB, and that copy reports what wait4 said.
func rfMeasured(t *testing.T, bin string, args ...string) (code int, peak int64, out string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRefuseMaxRSSChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), rfRSSEnv+"="+strings.Join(append([]string{bin}, args...), "\x1f"))
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("measuring child: %v\n%s", err, b)
	}
	s := string(b)
	i := strings.Index(s, "MAXRSS ")
	if i < 0 {
		t.Fatalf("measuring child said:\n%s", s)
	}
	var kib int64
	if _, err := fmt.Sscanf(s[i:], "MAXRSS %d EXIT %d", &kib, &code); err != nil {
		t.Fatalf("measuring child: %v\n%s", err, s)
	}
	return code, kib * 1024, s
}

// TestRefuseMaxRSSChild is rfMeasured's measuring parent; it does nothing
// unless rfMeasured started it.
func TestRefuseMaxRSSChild(t *testing.T) {
	spec := os.Getenv(rfRSSEnv)
	if spec == "" {
		t.Skip("only run by rfMeasured")
	}
	argv := strings.Split(spec, "\x1f")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatal("no rusage")
	}
	fmt.Printf("\nMAXRSS %d EXIT %d\n", ru.Maxrss, cmd.ProcessState.ExitCode()) // Maxrss in KiB on Linux
}
