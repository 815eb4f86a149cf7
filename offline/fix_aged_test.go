package offline

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/image"
	"github.com/wuoffline/wuoffline/internal/testutil"
)

// TestFixAgedInstall is issue 12's acceptance on a volume shaped like an
// aged Windows: testimages/build-aged.sh builds (mkntfs, ntfs-3g, hivex,
// sgdisk) a GPT disk whose Windows partition carries the broken test
// images' whole installation, its SOFTWARE hive cut into one-cluster runs
// (an $ATTRIBUTE_LIST, $DATA in extension records) and WinSxS's index
// spread over extension records. fix must repair every check there; then
// tools that share no code with wuoffline check the result (fls, icat +
// hivexregedit, an ntfs-3g read-only mount that stats every name, ntfsfix
// -n), diagnose finds nothing left and undo gives back every byte. The
// same disk with its SOFTWARE hive compressed meets one of the writer's
// limits (README "Limits"): nothing may be written.
func TestFixAgedInstall(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tool := range []string{"mkntfs", "ntfs-3g", "fusermount3", "sgdisk", "tar", "losetup", "cp",
		"istat", "ifind", "icat", "fls", "hivexregedit", "ntfsfix", "setfattr", "getfattr"} {
		testutil.RequireTool(t, tool)
	}
	if exec.Command("/usr/bin/python3", "-c", "import hivex").Run() != nil {
		testutil.Unavailable(t, "python3-hivex not installed (/usr/bin/python3 -c 'import hivex')")
	}
	if _, err := os.Stat(filepath.Join(testutil.RepoRoot(t), "..", "shared", "fixtures", "hives", "hivex", "minimal")); err != nil {
		testutil.Unavailable(t, "hivex's minimal hive (../shared/fixtures/hives/hivex/minimal) is needed by build-aged.sh: %v", err)
	}
	built := t.TempDir()
	build := exec.Command(filepath.Join(testutil.RepoRoot(t), "testimages", "build-aged.sh"), built, "install")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build-aged.sh install: %v\n%s", err, out)
	}
	// copyDisk gives a subtest its own copy (sparse) in its own directory,
	// where fix puts its journal.
	copyDisk := func(t *testing.T) (string, string) {
		dir := t.TempDir()
		img := filepath.Join(dir, "install.img")
		testutil.Run(t, "cp", "--sparse=always", filepath.Join(built, "install.img"), img)
		return dir, img
	}
	t.Run("fix-undo", func(t *testing.T) {
		dir, img := copyDisk(t)
		agedFixUndo(t, dir, img)
	})
	t.Run("compressed-hive", func(t *testing.T) {
		dir, img := copyDisk(t)
		agedCompressedHive(t, dir, img)
	})
}

// agedFixUndo: fix, the independent checks, diagnose, undo.
func agedFixUndo(t *testing.T, dir, img string) {
	vol, sect, icatPath := sleuthkitVolume(t, img, 1)
	if vol.Size == 0 {
		t.Fatalf("no partition 1 on %s", img)
	}

	// The shape the test is about, by sleuthkit: without it the rest
	// proves nothing about attribute lists.
	agedExtents(t, img, sect, "Windows/System32/config/SOFTWARE", 0x80, "$DATA")
	agedExtents(t, img, sect, "Windows/WinSxS", 0xA0, "$INDEX_ALLOCATION")

	orig := testutil.SHA256File(t, img)
	hives := []string{"SYSTEM", "SOFTWARE"}
	export := func(name, tag string) regExport {
		return hivexExport(t, filepath.Join(dir, tag+"-"+name), icatPath("/Windows/System32/config/"+name))
	}
	before := map[string]regExport{}
	for _, h := range hives {
		before[h] = export(h, "before")
	}

	rep := FixTarget(img, FixOptions{Now: fixedNow})
	if rep.State != FixDone || rep.Exit != ExitOK {
		t.Fatalf("fix: state %s exit %d error %q refusals %v", rep.State, rep.Exit, rep.Error, rep.Refusals)
	}
	if len(rep.Volumes) != 1 || rep.Volumes[0].Verify == nil || !rep.Volumes[0].Verify.OK {
		t.Fatalf("fix: volumes %d, verify %+v", len(rep.Volumes), rep.Volumes)
	}
	acts := rep.Volumes[0].Actions
	edits := map[string]int{}
	for _, a := range acts {
		edits[strings.ToUpper(a.Hive)]++
		if a.Op == "rename" {
			edits["rename"]++
		}
	}
	if edits["SOFTWARE"] == 0 || edits["SYSTEM"] == 0 || edits["rename"] == 0 {
		t.Fatalf("fix planned no SOFTWARE edit, SYSTEM edit or rename (%v): the test would prove nothing", edits)
	}
	// Still fragmented: the fix wrote through the attribute list, it did
	// not make the hive contiguous.
	agedExtents(t, img, sect, "Windows/System32/config/SOFTWARE", 0x80, "$DATA")

	// Names, by fls: every rename done, SoftwareDistribution.old (there
	// before the fix) still listed.
	names := flsRenamed(t, img, sect, acts)
	if !names["windows/softwaredistribution.old"] {
		t.Error("fls: Windows/SoftwareDistribution.old not listed after the fix")
	}

	// The whole volume, by ntfs-3g (every name stat'ed, every file read,
	// the same names as fls lists but for the metadata files) and
	// ntfsprogs' consistency pass.
	seen := agedStatAll(t, img, vol)
	var diff []string
	for n := range seen {
		if !names[n] {
			diff = append(diff, "ntfs-3g only: "+n)
		}
	}
	for n := range names {
		if !seen[n] && !strings.HasPrefix(n, "$") {
			diff = append(diff, "fls only: "+n)
		}
	}
	if len(diff) > 0 || len(seen) < 7000 {
		sort.Strings(diff)
		t.Errorf("ntfs-3g sees %d names, fls %d; %d differ: %v", len(seen), len(names), len(diff), diff[:min(len(diff), 20)])
	}

	// The registry, by hivexregedit on the hives icat reads back: exactly
	// the planned changes.
	for _, h := range hives {
		compareRegistry(t, h, expectedRegistry(before[h], acts, h), export(h, "after"))
	}

	if d := DiagnoseTarget(img, Options{}); d.Exit != ExitOK {
		t.Errorf("diagnose after fix: exit %d, still reports %v (error %q)", d.Exit, defaultProblems(d), d.Error)
	}

	ur := UndoTarget(img, UndoOptions{})
	if ur.Exit != ExitOK || len(ur.Journals) != 1 || !ur.Journals[0].Complete {
		t.Fatalf("undo: %+v", ur)
	}
	if testutil.SHA256File(t, img) != orig {
		t.Fatal("undo did not restore the image byte for byte")
	}
}

// agedExtents fails t unless the file at path has an $ATTRIBUTE_LIST (by
// istat) whose entries (read with icat, attribute type 32) put part of
// the attribute of type typ in an extension record: a record other than
// the base record. Attribute list entry (formats.md): type u32 at 0,
// length u16 at 4, MFT reference of the record holding it at 16 (48-bit
// record number).
func agedExtents(t *testing.T, img, sect, path string, typ uint32, what string) {
	t.Helper()
	ino := strings.TrimSpace(string(testutil.Run(t, "ifind", "-o", sect, "-n", path, img)))
	if st := string(testutil.Run(t, "istat", "-o", sect, img, ino)); !strings.Contains(st, "$ATTRIBUTE_LIST") {
		t.Fatalf("istat %s (record %s): no $ATTRIBUTE_LIST: the aged build did not fragment it\n%s", path, ino, st)
	}
	var base uint64
	fmt.Sscan(ino, &base)
	al := testutil.Run(t, "icat", "-o", sect, img, ino+"-32")
	for off := 0; off+26 <= len(al); {
		n := int(binary.LittleEndian.Uint16(al[off+4:]))
		if n < 26 || off+n > len(al) {
			t.Fatalf("%s: attribute list entry at %d has length %d", path, off, n)
		}
		rec := binary.LittleEndian.Uint64(al[off+16:]) & (1<<48 - 1)
		if binary.LittleEndian.Uint32(al[off:]) == typ && rec != base {
			return
		}
		off += n
	}
	t.Fatalf("%s (record %d): no %s extent in an extension record (attribute list of %d bytes)", path, base, what, len(al))
}

// agedStatAll mounts the volume read-only with ntfs-3g (through a
// read-only loop device), stats every name and reads every regular file,
// and returns the names it saw: relative paths, lower case,
// '/'-separated. Before mounting, ntfsfix -n checks the volume. Any error
// fails t.
func agedStatAll(t *testing.T, img string, v image.Volume) map[string]bool {
	t.Helper()
	loop := strings.TrimSpace(string(testutil.Run(t, "losetup", "-r", "-f", "--show", "-o", fmt.Sprint(v.Offset), "--sizelimit", fmt.Sprint(v.Size), img)))
	defer exec.Command("losetup", "-d", loop).Run()
	if out := string(testutil.Run(t, "ntfsfix", "-n", loop)); !strings.Contains(out, "processed successfully") {
		t.Errorf("ntfsfix -n after fix:\n%s", out)
	}
	mnt, unmount := testutil.MountNTFS(t, loop, true)
	defer unmount()
	seen := map[string]bool{}
	filepath.WalkDir(mnt, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Errorf("ntfs-3g: %s: %v", p, err)
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("ntfs-3g: stat %s: %v", p, err)
			return nil
		}
		if p == mnt {
			return nil
		}
		rel, _ := filepath.Rel(mnt, p)
		seen[strings.ToLower(filepath.ToSlash(rel))] = true
		if fi.Mode().IsRegular() {
			if b, err := os.ReadFile(p); err != nil || int64(len(b)) != fi.Size() {
				t.Errorf("ntfs-3g: reading %s: %d of %d bytes, %v", p, len(b), fi.Size(), err)
			}
		}
		return nil
	})
	return seen
}

// agedCompressedHive compresses the SOFTWARE hive with ntfs-3g (rewritten
// into a directory with the compressed flag: $DATA flag 0x0001) and runs
// fix: the hive edit meets ErrUnsupportedData while the plan is made, so
// the image must be left byte for byte, no journal made, and the report
// must name the reason.
func agedCompressedHive(t *testing.T, dir, img string) {
	vol, _, _ := sleuthkitVolume(t, img, 1)
	loop := strings.TrimSpace(string(testutil.Run(t, "losetup", "-f", "--show", "-o", fmt.Sprint(vol.Offset), "--sizelimit", fmt.Sprint(vol.Size), img)))
	detach := func() { exec.Command("losetup", "-d", loop).Run() }
	t.Cleanup(detach) // after the unmount MountNTFS registers, if the test stops early
	mnt, unmount := testutil.MountNTFS(t, loop, false, "compression")
	cfg := filepath.Join(mnt, "Windows", "System32", "config")
	// FILE_ATTRIBUTE_DIRECTORY|FILE_ATTRIBUTE_COMPRESSED, big-endian: files
	// written in the directory from now on are compressed.
	testutil.Run(t, "setfattr", "-n", "system.ntfs_attrib_be", "-v", "0x00000810", cfg)
	hiveData, err := os.ReadFile(filepath.Join(cfg, "SOFTWARE"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "SOFTWARE.new"), hiveData, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(cfg, "SOFTWARE.new"), filepath.Join(cfg, "SOFTWARE")); err != nil {
		t.Fatal(err)
	}
	// The raw value: FILE_ATTRIBUTE_COMPRESSED is 0x800, big-endian.
	attr := testutil.Run(t, "getfattr", "--only-values", "-n", "system.ntfs_attrib_be", filepath.Join(cfg, "SOFTWARE"))
	unmount()
	detach() // fix refuses a file a loop device still covers
	if len(attr) != 4 || attr[2]&0x08 == 0 {
		t.Fatalf("ntfs-3g did not compress SOFTWARE: attributes %x", attr)
	}

	orig := testutil.SHA256File(t, img)
	rep := FixTarget(img, FixOptions{Now: fixedNow})
	if rep.State == FixDone || rep.Exit == ExitOK || rep.Exit == ExitProblem {
		t.Fatalf("fix on a compressed hive: state %s exit %d error %q", rep.State, rep.Exit, rep.Error)
	}
	reason := rep.Error
	for _, r := range rep.Refusals {
		reason += " " + r.Reason
	}
	if !strings.Contains(reason, "compressed or encrypted") || !strings.Contains(reason, "SOFTWARE") {
		t.Errorf("fix on a compressed hive does not name the reason: %q", reason)
	}
	// README "Limits": a layout the writer does not change is a refusal
	// (exit 3), found while planning, nothing written.
	if rep.State != FixRefused || rep.Exit != ExitRefused {
		t.Errorf("fix on a compressed hive: state %s exit %d, want refused and exit 3: %s", rep.State, rep.Exit, reason)
	}
	if testutil.SHA256File(t, img) != orig {
		t.Error("fix on a compressed hive changed the image")
	}
	if j := journalsIn(t, dir); len(j) != 0 {
		t.Errorf("fix on a compressed hive left journals %v", j)
	}
}
