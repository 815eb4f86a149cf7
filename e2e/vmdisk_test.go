package e2e

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// fixTime is the --time every fix in these tests stamps: the raw fix and
// each container fix write the same bytes into the Windows volume.
const fixTime = "2026-12-04T19:00:00Z"

// byteRange is a range of a fix --json report.
type byteRange struct {
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
	Label  string `json:"label"`
}

// fixReport is the part of fix --json this test reads: the Windows volume's
// place on the disk, the ranges the fix wrote in volume coordinates, and
// where they are in the target file (what the journal saves).
type fixReport struct {
	Format  string `json:"format"`
	Volumes []struct {
		Offset     int64       `json:"offset"`
		Size       int64       `json:"size"`
		Ranges     []byteRange `json:"ranges"`
		Bytes      int64       `json:"bytes"`
		FileRanges []byteRange `json:"file_ranges"`
		FileBytes  int64       `json:"file_bytes"`
	} `json:"volumes"`
}

// needVMTools skips (or fails in CI) without the independent tools and root.
func needVMTools(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t)
	for _, tool := range []string{"fls", "ifind", "icat", "hivexregedit", "losetup", "ntfs-3g"} {
		testutil.RequireTool(t, tool)
	}
	return testutil.RequireTool(t, "qemu-img")
}

// fixIn runs fix --yes --time fixTime with a fresh journal directory on
// target and returns that directory and stdout; the exit must be 0.
func fixIn(t *testing.T, bin, target string, extra ...string) (string, []byte) {
	t.Helper()
	jdir := t.TempDir()
	r := run(t, nil, bin, append(append([]string{"fix", "--yes", "--time", fixTime, "--journal", jdir}, extra...), target)...)
	if r.exit != 0 {
		t.Fatalf("fix %s: exit %d\n%s\n%s", target, r.exit, r.stdout, r.stderr)
	}
	return jdir, r.stdout
}

// fixJSON runs fixIn with --json, checks the document against
// docs/fix.schema.json with the python validator py, and returns the
// journal directory and the report cut to the one volume the fix wrote to.
func fixJSON(t *testing.T, bin, py, target string) (string, fixReport) {
	t.Helper()
	jdir, out := fixIn(t, bin, target, "--json")
	doc := filepath.Join(t.TempDir(), "fix.json")
	if err := os.WriteFile(doc, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if errs := validate(t, py, "fix", []string{doc}); errs != nil {
		t.Errorf("fix --json %s does not conform to docs/fix.schema.json:\n%s", target, strings.Join(errs, "\n"))
	}
	var rep fixReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("fix --json: %v\n%s", err, out)
	}
	var written []int
	for i, v := range rep.Volumes {
		if len(v.Ranges) > 0 {
			written = append(written, i)
		}
	}
	if len(written) != 1 {
		t.Fatalf("fix --json: %d volumes written, want 1:\n%s", len(written), out)
	}
	rep.Volumes = rep.Volumes[written[0] : written[0]+1]
	return jdir, rep
}

// covered marks the bytes of [0, size) that ranges cover, shifted by
// -base; a range outside fails the test.
func covered(t *testing.T, what string, ranges []byteRange, base, size int64) []bool {
	t.Helper()
	in := make([]bool, size)
	for _, r := range ranges {
		o := r.Offset - base
		if o < 0 || r.Size <= 0 || o+r.Size > size {
			t.Fatalf("%s: range %+v outside [%d, %d)", what, r, base, base+size)
		}
		for i := o; i < o+r.Size; i++ {
			in[i] = true
		}
	}
	return in
}

// TestVMDiskFixInPlace fixes the broken test disk inside qcow2, VHDX and
// dynamic VHD containers and checks each against the same disk fixed as raw
// with the same --time, with tools that share no code with wuoffline: the
// disk converted back by qemu-img equals the raw fix in every byte, and
// hivexregedit sees the registry changes in the hives icat takes out.
func TestVMDiskFixInPlace(t *testing.T) {
	qemu := needVMTools(t)
	py := needValidator(t)
	bin := binary(t, runtime.GOOS, runtime.GOARCH)
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig.img")
	testutil.Run(t, "cp", testutil.TestImage(t, "broken-gpt.img"), orig)
	raw := filepath.Join(dir, "raw.img")
	testutil.Run(t, "cp", orig, raw)
	_, rawRep := fixJSON(t, bin, py, raw)
	vol := rawRep.Volumes[0]
	origB, rawB := readFile(t, orig), readFile(t, raw)

	// Volume coordinates: every byte the raw fix changed is in a volume
	// range, and for a raw file the journal's file ranges are the volume
	// ranges at the volume's offset.
	touched := covered(t, "ranges", vol.Ranges, 0, vol.Size)
	inFile := covered(t, "file_ranges", vol.FileRanges, vol.Offset, vol.Size)
	nTouched := 0
	for i, tb := range touched {
		if tb {
			nTouched++
			if !inFile[i] {
				t.Fatalf("raw fix: volume byte %#x is in ranges but in no file range at offset %#x", i, vol.Offset)
			}
		}
	}
	for i := range rawB {
		if rawB[i] == origB[i] {
			continue
		}
		if o := int64(i) - vol.Offset; o < 0 || o >= vol.Size || !touched[o] {
			t.Fatalf("raw fix changed file byte %#x, outside the volume ranges it reports", i)
		}
	}
	regChanges(t, orig, vol.Offset, false) // the checks below can fail
	wantReg := regChanges(t, raw, vol.Offset, true)

	for _, c := range []struct {
		name string
		args []string
		ext  string
		chk  bool
	}{
		{"qcow2", []string{"-O", "qcow2"}, "qcow2", true},
		{"vhdx-dynamic", []string{"-O", "vhdx", "-o", "subformat=dynamic"}, "vhdx", true},
		{"vpc-dynamic", []string{"-O", "vpc", "-o", "subformat=dynamic"}, "vhd", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := t.TempDir()
			ctr := filepath.Join(d, "disk."+c.ext)
			testutil.Run(t, qemu, append(append([]string{"convert"}, c.args...), orig, ctr)...)
			before := testutil.SHA256File(t, ctr)
			jdir, rep := fixJSON(t, bin, py, ctr)
			cv := rep.Volumes[0]
			// The same plan in the same volume coordinates as the raw fix;
			// the file ranges are where the container keeps them.
			if cv.Offset != vol.Offset || !slices.Equal(cv.Ranges, vol.Ranges) || cv.Bytes != vol.Bytes {
				t.Errorf("%s: volume at %d with %d ranges (%d bytes), raw fix: at %d with %d ranges (%d bytes)",
					rep.Format, cv.Offset, len(cv.Ranges), cv.Bytes, vol.Offset, len(vol.Ranges), vol.Bytes)
			}
			fi, err := os.Stat(ctr)
			if err != nil {
				t.Fatal(err)
			}
			covered(t, "file_ranges", cv.FileRanges, 0, fi.Size())
			if cv.FileBytes < cv.Bytes {
				t.Errorf("file_bytes %d < bytes %d: the journal saves less than the volume changes", cv.FileBytes, cv.Bytes)
			}
			if c.chk {
				testutil.Run(t, qemu, "check", ctr)
			}
			back := filepath.Join(d, "back.img")
			testutil.Run(t, qemu, "convert", "-O", "raw", ctr, back)
			backB := readFile(t, back)
			if len(backB) < len(rawB) {
				t.Fatalf("converted back: %d bytes, the raw disk has %d", len(backB), len(rawB))
			}
			// Every byte of the disk equals the raw fix: the touched ranges
			// (times included: both fixes stamp fixTime), the rest of the
			// Windows partition, and the other partitions.
			for i := range rawB {
				if backB[i] != rawB[i] {
					where := "outside the Windows partition"
					if o := int64(i) - vol.Offset; o >= 0 && o < vol.Size {
						where = fmt.Sprintf("at volume byte %#x, touched %v", o, touched[o])
					}
					t.Fatalf("byte %#x differs from the raw fix (%s): %#x, raw %#x", i, where, backB[i], rawB[i])
				}
			}
			if slices.ContainsFunc(backB[len(rawB):], func(b byte) bool { return b != 0 }) {
				t.Errorf("converted back: bytes past the raw disk's %d are not zero", len(rawB))
			}
			t.Logf("%s: equal to the raw fix in all %d touched bytes (%d volume ranges) and all %d bytes of the disk; journal saved %d file ranges (%d bytes)",
				rep.Format, nTouched, len(cv.Ranges), len(rawB), len(cv.FileRanges), cv.FileBytes)

			if got := regChanges(t, back, vol.Offset, true); got != wantReg {
				t.Errorf("hivexregedit on the converted-back disk:\n%s\nraw fix:\n%s", got, wantReg)
			}
			fls := string(testutil.Run(t, "fls", "-r", "-o", strconv.FormatInt(vol.Offset/512, 10), back))
			if !strings.Contains(fls, "SoftwareDistribution.old") {
				t.Errorf("fls -r: no SoftwareDistribution.old")
			}
			statAll(t, back, vol.Offset, vol.Size)

			r := run(t, nil, bin, "undo", "--yes", "--journal", jdir, ctr)
			if r.exit != 0 {
				t.Fatalf("undo: exit %d\n%s\n%s", r.exit, r.stdout, r.stderr)
			}
			if got := testutil.SHA256File(t, ctr); got != before {
				t.Errorf("after undo sha256 %s, before fix %s", got, before)
			}
		})
	}
}

// regWant is a registry change the fix makes on the broken test disk, as
// hivexregedit --export shows it: the value's data (a key: "key"), "" when
// absent.
type regWant struct {
	hive, key, value string // value "" and key set: the key itself
	before, after    string // "*": present with any data
}

// regWants are changes of the SYSTEM, SOFTWARE and COMPONENTS hives, each
// a set value, a deleted value or a deleted key.
var regWants = []regWant{
	{"SYSTEM", `\ControlSet001\Services\wuauserv`, "Start", "dword:00000004", "dword:00000003"},
	{"SYSTEM", `\ControlSet001\Services\BITS`, "Start", "dword:00000004", "dword:00000003"},
	{"SYSTEM", `\ControlSet001\Control\Session Manager`, "PendingFileRenameOperations", "*", ""},
	{"SOFTWARE", `\Policies\Microsoft\Windows\WindowsUpdate`, "WUServer", "*", ""},
	{"SOFTWARE", `\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired`, "", "*", ""},
	{"COMPONENTS", `\`, "PendingXmlIdentifier", "*", ""},
}

// regChanges takes the SYSTEM, SOFTWARE and COMPONENTS hives out of the
// NTFS volume at off in img with icat, checks with hivexregedit that they
// show regWants as after the fix (fixed) or before it, and returns the
// hives' exports, for comparing two fixed disks.
func regChanges(t *testing.T, img string, off int64, fixed bool) string {
	t.Helper()
	var all strings.Builder
	exports := map[string]map[string]map[string]string{}
	for _, h := range []string{"SYSTEM", "SOFTWARE", "COMPONENTS"} {
		exp := hiveExport(t, img, off, "Windows/System32/config/"+h)
		all.WriteString(exp)
		exports[h] = parseRegExport(exp)
	}
	for _, w := range regWants {
		want := w.before
		if fixed {
			want = w.after
		}
		values, ok := exports[w.hive][strings.ToLower(w.key)]
		got := "key"
		if w.value != "" {
			got, ok = values[strings.ToLower(w.value)]
		}
		switch {
		case want == "" && ok:
			t.Errorf("hivexregedit %s (fixed %v): %s %s is %s, want it gone", w.hive, fixed, w.key, w.value, got)
		case want != "" && !ok:
			t.Errorf("hivexregedit %s (fixed %v): %s %s is absent, want %s", w.hive, fixed, w.key, w.value, want)
		case want != "" && want != "*" && got != want:
			t.Errorf("hivexregedit %s (fixed %v): %s %s is %s, want %s", w.hive, fixed, w.key, w.value, got, want)
		}
	}
	return all.String()
}

// hiveExport takes the file at path (slash-separated) out of the NTFS
// volume at off in img with ifind and icat, and returns hivexregedit's
// export of the whole hive.
func hiveExport(t *testing.T, img string, off int64, path string) string {
	t.Helper()
	sect := strconv.FormatInt(off/512, 10)
	inode := strings.TrimSpace(string(testutil.Run(t, "ifind", "-o", sect, "-n", path, img)))
	h := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(h, testutil.Run(t, "icat", "-o", sect, img, inode), 0o600); err != nil {
		t.Fatal(err)
	}
	return string(testutil.Run(t, "hivexregedit", "--export", h, `\`))
}

// parseRegExport reads a .reg export into key -> value name -> data, with
// keys and names in lower case ("" is the default value).
func parseRegExport(exp string) map[string]map[string]string {
	keys := map[string]map[string]string{}
	var cur map[string]string
	for _, line := range strings.Split(exp, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			cur = map[string]string{}
			keys[strings.ToLower(line[1:len(line)-1])] = cur
		case cur == nil:
		case strings.HasPrefix(line, "@="):
			cur[""] = line[2:]
		case strings.HasPrefix(line, `"`):
			if i := strings.Index(line, `"=`); i > 0 {
				cur[strings.ToLower(line[1:i])] = line[i+2:]
			}
		}
	}
	return keys
}

// TestVMDiskBackingFile fixes a qcow2 overlay: only the top file changes.
func TestVMDiskBackingFile(t *testing.T) {
	qemu := needVMTools(t)
	bin := binary(t, runtime.GOOS, runtime.GOARCH)
	dir := t.TempDir()
	base, top := filepath.Join(dir, "base.qcow2"), filepath.Join(dir, "top.qcow2")
	testutil.Run(t, qemu, "convert", "-O", "qcow2", testutil.TestImage(t, "broken-gpt.img"), base)
	testutil.Run(t, qemu, "create", "-f", "qcow2", "-b", base, "-F", "qcow2", top)
	baseSum, topSum := testutil.SHA256File(t, base), testutil.SHA256File(t, top)
	jdir, _ := fixIn(t, bin, top)
	if got := testutil.SHA256File(t, base); got != baseSum {
		t.Errorf("backing file changed: sha256 %s, was %s", got, baseSum)
	}
	if testutil.SHA256File(t, top) == topSum {
		t.Errorf("top file unchanged: the fix wrote nowhere visible")
	}
	testutil.Run(t, qemu, "check", top)
	r := run(t, nil, bin, "undo", "--yes", "--journal", jdir, top)
	if r.exit != 0 {
		t.Fatalf("undo: exit %d\n%s\n%s", r.exit, r.stdout, r.stderr)
	}
	if got := testutil.SHA256File(t, top); got != topSum {
		t.Errorf("after undo top sha256 %s, before fix %s", got, topSum)
	}
}

// statAll mounts the volume at off in img read-only with ntfs-3g (through a
// read-only loop device) and stats every name in it.
func statAll(t *testing.T, img string, off, size int64) {
	t.Helper()
	loop := strings.TrimSpace(string(testutil.Run(t, "losetup", "-f", "--show", "-r",
		"--offset", strconv.FormatInt(off, 10), "--sizelimit", strconv.FormatInt(size, 10), img)))
	defer exec.Command("losetup", "-d", loop).Run()
	mp, unmount := testutil.MountNTFS(t, loop, true)
	defer unmount()
	n := 0
	err := filepath.WalkDir(mp, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, err := os.Lstat(p); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatalf("ntfs-3g ro: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(mp, "Windows", "SoftwareDistribution.old")); err != nil {
		if _, err1 := os.Lstat(filepath.Join(mp, "Windows", "SoftwareDistribution.old.1")); err1 != nil {
			t.Errorf("ntfs-3g ro: %v", err)
		}
	}
	t.Logf("ntfs-3g ro: stat %d names", n)
}

// readFile reads a whole file or fails the test.
func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
