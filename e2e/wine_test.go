package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/image"
	"github.com/wuoffline/wuoffline/internal/testutil"
)

// bcryptStandIn is a bcryptprimitives.dll for Wine 8 (Debian 12), which
// lacks it: Go 1.24+ calls its ProcessPrng for random numbers. The stand-in
// forwards to advapi32's RtlGenRandom (SystemFunction036), which Wine has.
const bcryptStandIn = `#include <windows.h>
typedef BOOLEAN (WINAPI *genrandom_t)(PVOID, ULONG);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    genrandom_t gen = (genrandom_t)GetProcAddress(LoadLibraryA("advapi32.dll"), "SystemFunction036");
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!gen || !gen(data, n)) return FALSE;
        data += n; len -= n;
    }
    return TRUE;
}
`

// wine is a private Wine prefix with the stand-in DLL installed.
type wine struct {
	bin, server, prefix string
	env                 []string
}

// newWine makes a Wine prefix in a temp dir (wineboot), or skips (fails in
// CI) without wine64, mingw or root (loop devices).
func newWine(t *testing.T) *wine {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "losetup")
	mingw := testutil.RequireTool(t, "x86_64-w64-mingw32-gcc")
	w := &wine{}
	for _, p := range []string{"wine64", "/usr/lib/wine/wine64"} {
		if q, err := exec.LookPath(p); err == nil {
			w.bin = q
			break
		}
	}
	if w.bin == "" {
		testutil.Unavailable(t, "wine64 not installed (apt-get install wine64)")
	}
	w.server = filepath.Join(filepath.Dir(w.bin), "wineserver")
	w.prefix = filepath.Join(t.TempDir(), "prefix")
	// No Mono or Gecko installer prompts; no debug chatter on stderr.
	w.env = []string{"WINEPREFIX=" + w.prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml="}
	t.Cleanup(func() {
		c := exec.Command(w.server, "-k")
		c.Env = append(os.Environ(), w.env...)
		c.Run()
		c = exec.Command(w.server, "-w") // wait until it has exited
		c.Env = append(os.Environ(), w.env...)
		c.Run()
	})
	src := filepath.Join(t.TempDir(), "bcp.c")
	if err := os.WriteFile(src, []byte(bcryptStandIn), 0o644); err != nil {
		t.Fatal(err)
	}
	dll := filepath.Join(filepath.Dir(src), "bcryptprimitives.dll")
	testutil.Run(t, mingw, "-shared", "-O2", "-o", dll, src)
	if r := run(t, w.env, w.bin, "wineboot", "-i"); r.exit != 0 {
		t.Fatalf("wineboot -i: exit %d\n%s", r.exit, r.stderr)
	}
	b, err := os.ReadFile(dll)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.prefix, "drive_c", "windows", "system32", "bcryptprimitives.dll"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// mapDrive points the drive letter's device link (dosdevices/x::) at dev.
func (w *wine) mapDrive(t *testing.T, letter, dev string) {
	t.Helper()
	link := filepath.Join(w.prefix, "dosdevices", strings.ToLower(letter)+"::")
	os.Remove(link)
	if err := os.Symlink(dev, link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(link) })
}

// windowsPath names a Unix path through Wine's Z: drive.
func windowsPath(p string) string { return "Z:" + strings.ReplaceAll(p, "/", `\`) }

// attachPart attaches the byte range of v in img to a loop device.
func attachPart(t *testing.T, img string, v image.Volume, opts ...string) string {
	t.Helper()
	args := append([]string{"-f", "--show", "--offset", strconv.FormatInt(v.Offset, 10), "--sizelimit", strconv.FormatInt(v.Size, 10)}, opts...)
	loop := strings.TrimSpace(string(testutil.Run(t, "losetup", append(args, img)...)))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	return loop
}

// windowsVolume returns the largest NTFS volume of the test disk: its
// Windows partition.
func windowsVolume(t *testing.T, img string) image.Volume {
	t.Helper()
	tg, err := image.Open(img, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	var best image.Volume
	for _, v := range tg.Volumes {
		if v.Content == image.ContentNTFS && v.Size > best.Size {
			best = v
		}
	}
	if best.Size == 0 {
		t.Fatalf("%s: no NTFS volume", img)
	}
	return best
}

// checksOf reduces a diagnose document (one target) to what must not
// depend on the platform: every field but the target's name, the time it
// was made and the drive letter (which Windows knows and Linux guesses).
func checksOf(t *testing.T, doc []byte) map[string]any {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, doc)
	}
	delete(d, "target")
	delete(d, "timestamp")
	for _, in := range d["installations"].([]any) {
		delete(in.(map[string]any), "letter")
		delete(in.(map[string]any), "letter_known")
	}
	return d
}

// TestWine runs the windows/amd64 build under Wine (a private prefix with
// the bcryptprimitives stand-in): on image files, where it must report what
// the Linux build reports; and with D: mapped to a loop device holding the
// test disk's Windows partition, as a WinPE user types it:
//   - `diagnose D:` (read-only device) exits 1 and reports exactly what the
//     Linux build reports on the same device;
//   - `fix D:` (read-write device) writes, an ntfs-3g mount sees the renames,
//     and `undo D:` gives back the partition byte for byte;
//   - `fix C:` with C: on a device is refused: it is the running Windows'
//     own drive.
func TestWine(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Wine")
	}
	w := newWine(t)
	exe := binary(t, "windows", "amd64")
	lin := binary(t, "linux", "amd64")
	t.Run("image-files", func(t *testing.T) { wineImageFiles(t, w, exe, lin) })
	t.Run("drive-letter", func(t *testing.T) { wineDriveLetter(t, w, exe, lin) })
}

// wineImageFiles: the Windows build reads image files (through Wine's Z:
// drive) exactly as the Linux build does.
func wineImageFiles(t *testing.T, w *wine, exe, lin string) {
	for name, want := range map[string]int{"broken-mbr": 1, "healthy-gpt": 0, "refuse-hibernated": 3} {
		img := testutil.TestImage(t, name+".img")
		win := run(t, w.env, w.bin, exe, "diagnose", "--json", windowsPath(img))
		lnx := run(t, nil, lin, "diagnose", "--json", img)
		if win.exit != want || lnx.exit != want {
			t.Errorf("%s: windows build exit %d, linux build exit %d, want %d\n%s%s", name, win.exit, lnx.exit, want, win.stdout, win.stderr)
			continue
		}
		if a, b := checksOf(t, win.stdout), checksOf(t, lnx.stdout); !reflect.DeepEqual(a, b) {
			t.Errorf("%s: the windows and linux builds report differently:\nwindows: %.2000s\nlinux:   %.2000s", name, win.stdout, lnx.stdout)
		}
	}
}

func wineDriveLetter(t *testing.T, w *wine, exe, lin string) {
	img := testutil.TestImage(t, "broken-gpt.img")
	vol := windowsVolume(t, img)
	imgSum := testutil.SHA256File(t, img)

	// diagnose, read-only.
	ro := attachPart(t, img, vol, "-r")
	w.mapDrive(t, "d", ro)
	win := run(t, w.env, w.bin, exe, "diagnose", "--json", "D:")
	lnx := run(t, nil, lin, "diagnose", "--json", ro)
	if win.exit != 1 || lnx.exit != 1 {
		t.Fatalf("diagnose: windows build exit %d, linux build exit %d, want 1 and 1\n%s%s", win.exit, lnx.exit, win.stdout, win.stderr)
	}
	if a, b := checksOf(t, win.stdout), checksOf(t, lnx.stdout); !reflect.DeepEqual(a, b) {
		os.WriteFile(filepath.Join(t.TempDir(), "win.json"), win.stdout, 0o644)
		t.Errorf("diagnose D: under Wine and diagnose %s on Linux differ:\nwindows: %.2000s\nlinux:   %.2000s", ro, win.stdout, lnx.stdout)
	}
	text := run(t, w.env, w.bin, exe, "diagnose", "D:")
	if text.exit != 1 || !strings.Contains(string(text.stdout), "PROBLEM [pending-xml]") {
		t.Errorf("diagnose D: (text): exit %d\n%s", text.exit, text.stdout)
	}
	// No TARGET at a WinPE prompt: every fixed volume is looked at, D:
	// among them; volumes without Windows do not count for the exit code.
	// Wine lists a drive letter when dosdevices has "d:" (its mount point,
	// here an empty directory, as WinPE has the mounted volume); "d::" is
	// the device \\.\D: opens.
	mnt := filepath.Join(w.prefix, "dosdevices", "d:")
	if err := os.Symlink(t.TempDir(), mnt); err != nil {
		t.Fatal(err)
	}
	all := run(t, w.env, w.bin, exe, "diagnose", "--json")
	os.Remove(mnt)
	var sawD bool
	for _, line := range strings.Split(strings.TrimSpace(string(all.stdout)), "\n") {
		var doc struct {
			Target string `json:"target"`
		}
		if json.Unmarshal([]byte(line), &doc) == nil && strings.EqualFold(strings.TrimRight(doc.Target, `\`), "D:") {
			sawD = true
		}
	}
	if all.exit != 1 || !sawD {
		t.Errorf("diagnose with no TARGET: exit %d, D: reported %v; want exit 1 with D: among the volumes\n%s%s", all.exit, sawD, all.stdout, all.stderr)
	}
	exec.Command("losetup", "-d", ro).Run()

	// fix, then undo, read-write.
	rw := attachPart(t, img, vol)
	w.mapDrive(t, "d", rw)
	before := testutil.SHA256File(t, rw)
	jdir := t.TempDir()
	fix := run(t, w.env, w.bin, exe, "fix", "--yes", "--json", "--journal", windowsPath(jdir), "D:")
	var rep struct {
		State string `json:"state"`
		Exit  int    `json:"exit"`
	}
	if err := json.Unmarshal(fix.stdout, &rep); err != nil || fix.exit != 0 || rep.State != "fixed" {
		t.Fatalf("fix D: under Wine: exit %d (%v)\n%s%s", fix.exit, err, fix.stdout, fix.stderr)
	}
	if testutil.SHA256File(t, rw) == before {
		t.Fatal("fix D: reported fixed but the partition is unchanged")
	}
	// Independent check: ntfs-3g sees the renamed folders and file.
	mp, unmount := testutil.MountNTFS(t, rw, true)
	for _, p := range []string{"Windows/SoftwareDistribution.old", "Windows/System32/catroot2.old", "Windows/WinSxS/pending.xml.old"} {
		if _, err := os.Stat(filepath.Join(mp, p)); err != nil {
			// The suffix rule may pick .old.1 when .old exists already.
			if m, _ := filepath.Glob(filepath.Join(mp, p) + ".*"); len(m) == 0 {
				t.Errorf("after fix D:, ntfs-3g does not see %s: %v", p, err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(mp, "Windows/WinSxS/pending.xml")); err == nil {
		t.Error("after fix D:, ntfs-3g still sees Windows/WinSxS/pending.xml")
	}
	unmount()
	undo := run(t, w.env, w.bin, exe, "undo", "--yes", "--journal", windowsPath(jdir), "D:")
	if undo.exit != 0 {
		t.Fatalf("undo D: under Wine: exit %d\n%s%s", undo.exit, undo.stdout, undo.stderr)
	}
	if testutil.SHA256File(t, rw) != before {
		t.Fatal("undo D: did not give the partition back byte for byte")
	}

	// The running Windows' own drive is refused before anything is written.
	w.mapDrive(t, "c", rw)
	sys := run(t, w.env, w.bin, exe, "fix", "--yes", "--journal", windowsPath(jdir), "C:")
	if sys.exit != 3 || !strings.Contains(strings.Join(strings.Fields(string(sys.stdout)+string(sys.stderr)), " "), "running Windows") {
		t.Errorf("fix C: (the running Windows' drive): exit %d, want 3 naming the running Windows\n%s%s", sys.exit, sys.stdout, sys.stderr)
	}
	os.Remove(filepath.Join(w.prefix, "dosdevices", "c::"))
	if testutil.SHA256File(t, rw) != before {
		t.Fatal("a refused fix C: changed the partition")
	}
	exec.Command("losetup", "-d", rw).Run()
	if testutil.SHA256File(t, img) != imgSum {
		t.Fatal("the disk image differs after fix and undo through Wine")
	}
}
