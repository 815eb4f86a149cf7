package ntfs

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// rdFsstatInt reads one numeric field of sleuthkit's fsstat output.
func rdFsstatInt(t testing.TB, out []byte, field string) int64 {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(field) + `:\s*(\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("fsstat: no %q", field)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

// rdPatchVolumeFlags sets $VOLUME_INFORMATION flags in record 3 of img.
// The record is located with sleuthkit's fsstat (independent geometry);
// the attribute by walking the record's attribute headers (type @0, length
// @4, resident value offset @0x14).
func rdPatchVolumeFlags(t testing.TB, img string, set uint16) {
	t.Helper()
	testutil.RequireTool(t, "fsstat")
	out := testutil.Run(t, "fsstat", img)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Windows keeps record 3 identical in $MFTMirr: patch both.
	for _, field := range []string{"First Cluster of MFT", "First Cluster of MFT Mirror"} {
		recOff := rdFsstatInt(t, out, field)*rdFsstatInt(t, out, "Cluster Size") +
			3*rdFsstatInt(t, out, "Size of MFT Entries")
		rdPatchVolumeRecord(t, f, recOff, set)
	}
}

func rdPatchVolumeRecord(t testing.TB, f *os.File, recOff int64, set uint16) {
	t.Helper()
	rec := make([]byte, 1024)
	if _, err := f.ReadAt(rec, recOff); err != nil {
		t.Fatal(err)
	}
	if string(rec[:4]) != "FILE" {
		t.Fatalf("no FILE record at 0x%x", recOff)
	}
	for off := int(le16(rec[0x14:])); off+24 <= len(rec); {
		typ, l := le32(rec[off:]), int(le32(rec[off+4:]))
		if typ == 0xFFFFFFFF || l < 24 {
			break
		}
		if typ == 0x70 {
			flagsAt := off + int(le16(rec[off+0x14:])) + 0x0A
			putLE16(rec[flagsAt:], le16(rec[flagsAt:])|set)
			if _, err := f.WriteAt(rec[flagsAt:flagsAt+2], recOff+int64(flagsAt)); err != nil {
				t.Fatal(err)
			}
			return
		}
		off += l
	}
	t.Fatal("no $VOLUME_INFORMATION in record 3")
}

// rdPatchLogFile edits both restart pages of charlie's $LogFile, found
// with sleuthkit's istat (its first data cluster) and the restart page's
// own system page size @0x10 and restart area offset @0x18.
func rdPatchLogFile(t testing.TB, img string, edit func(page []byte, raOfs int)) {
	t.Helper()
	testutil.RequireTool(t, "istat")
	out := string(testutil.Run(t, "istat", img, "2"))
	_, after, ok := strings.Cut(out, "Type: $DATA (128-1)")
	if !ok {
		t.Fatal("istat 2: no $DATA")
	}
	lines := strings.SplitN(after, "\n", 3)
	first, err := strconv.ParseInt(strings.Fields(lines[1])[0], 10, 64)
	if err != nil {
		t.Fatalf("istat 2: %v", err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	base := first * 4096 // charlie: 4 KiB clusters
	page := make([]byte, 4096)
	for _, off := range []int64{base, base + 4096} {
		if _, err := f.ReadAt(page, off); err != nil {
			t.Fatal(err)
		}
		if string(page[:4]) != "RSTR" || le32(page[0x10:]) != 4096 {
			t.Fatalf("no 4 KiB restart page at 0x%x", off)
		}
		edit(page, int(le16(page[0x18:])))
		if _, err := f.WriteAt(page, off); err != nil {
			t.Fatal(err)
		}
	}
}

func rdCopyFile(t testing.TB, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func rdCheckRefusals(t *testing.T, s *Safety, want ...string) {
	t.Helper()
	var got []string
	for _, r := range s.Refusals {
		got = append(got, r.ID)
		if r.Reason == "" || r.Advice == "" {
			t.Errorf("refusal %s without reason or advice: %+v", r.ID, r)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("refusals %q, want %q (%+v)", got, want, s.Refusals)
	}
}

func TestSafetyBuiltVolumes(t *testing.T) {
	hiber := func(content []byte, name string) func(string) {
		return func(mnt string) {
			if err := os.WriteFile(filepath.Join(mnt, name), content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	page := func(sig string, n int) []byte { b := make([]byte, n); copy(b, sig); return b }
	tests := []struct {
		name      string
		populate  func(string)
		dirty     bool
		wantHiber string
		refusals  []string
	}{
		{name: "clean", populate: func(string) {}},
		{name: "hibr", populate: hiber(page("hibr", 8192), "hiberfil.sys"), wantHiber: "hibr", refusals: []string{RefusalHibernated}},
		{name: "HIBR-uppercase-name", populate: hiber(page("HIBR", 4096), "HIBERFIL.SYS"), wantHiber: "HIBR", refusals: []string{RefusalHibernated}},
		{name: "wake", populate: hiber(page("wake", 4096), "hiberfil.sys"), wantHiber: "wake", refusals: []string{RefusalHibernated}},
		{name: "WAKE", populate: hiber(page("WAKE", 4096), "hiberfil.sys"), wantHiber: "WAKE", refusals: []string{RefusalHibernated}},
		{name: "short", populate: hiber(page("", 100), "hiberfil.sys"), wantHiber: "short", refusals: []string{RefusalHibernated}},
		{name: "zeroed-header", populate: hiber(page("", 1<<20), "hiberfil.sys")},
		{name: "hibr-not-in-root", populate: func(mnt string) {
			os.Mkdir(filepath.Join(mnt, "sub"), 0o755)
			hiber(page("hibr", 4096), "sub/hiberfil.sys")(mnt)
		}},
		{name: "dirty", populate: func(string) {}, dirty: true, refusals: []string{RefusalDirty}},
		{name: "dirty-and-hibernated", populate: hiber(page("hibr", 4096), "hiberfil.sys"), dirty: true, wantHiber: "hibr", refusals: []string{RefusalDirty, RefusalHibernated}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := rdBuildVolume(t, "8M", tt.populate)
			if tt.dirty {
				rdPatchVolumeFlags(t, img, 0x0001)
				// ntfsinfo (ntfs-3g's libntfs) must agree the flag is set.
				testutil.RequireTool(t, "ntfsinfo")
				out, _ := exec.Command("ntfsinfo", "-m", "-f", img).CombinedOutput()
				if !bytes.Contains(out, []byte("Volume Flags: 0x0001")) {
					t.Fatalf("ntfsinfo does not see the dirty flag:\n%s", out)
				}
			}
			before := testutil.SHA256File(t, img)
			v := rdOpenImage(t, img)
			s := v.Safety()
			if s.Version != "3.1" || s.Label != "built" || !s.LogFileClean || !s.LogFileEmpty || s.Dirty != tt.dirty || s.Hibernation != tt.wantHiber {
				t.Errorf("Safety = %+v", s)
			}
			rdCheckRefusals(t, s, tt.refusals...)
			if after := testutil.SHA256File(t, img); after != before {
				t.Error("Open changed the image")
			}
		})
	}
}

// TestSafetyNtfs3gAgrees: ntfs-3g refuses a read-write mount of the
// hibernated volume for the same reason (its own hiberfil.sys check).
func TestSafetyNtfs3gAgrees(t *testing.T) {
	img := rdBuildVolume(t, "8M", func(mnt string) {
		b := make([]byte, 4096)
		copy(b, "hibr")
		if err := os.WriteFile(filepath.Join(mnt, "hiberfil.sys"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	})
	mnt := t.TempDir()
	out, err := exec.Command("ntfs-3g", img, mnt).CombinedOutput()
	if err == nil {
		// ntfs-3g falls back to a read-only mount after refusing.
		if uerr := exec.Command("fusermount", "-u", mnt).Run(); uerr != nil {
			t.Errorf("fusermount -u: %v", uerr)
		}
	}
	if !bytes.Contains(out, []byte("Windows is hibernated, refused to mount")) {
		t.Errorf("ntfs-3g did not refuse a read-write mount for hibernation:\n%s", out)
	}
	v := rdOpenImage(t, img)
	if !v.Safety().Refused(RefusalHibernated) {
		t.Errorf("Safety = %+v", v.Safety())
	}
}

func TestSafetyLogFile(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(page []byte, ra int)
		clean    bool
		version  string
		refusals []string
	}{
		{"as-windows-left-it", func([]byte, int) {}, true, "1.1", nil},
		{"not-clean", func(p []byte, ra int) { putLE16(p[ra+0x0E:], le16(p[ra+0x0E:])&^0x0002) }, false, "1.1", []string{RefusalLogFileUnclean}},
		{"no-client-in-use", func(p []byte, ra int) {
			putLE16(p[ra+0x0E:], 0)
			putLE16(p[ra+0x0A:], 0)
			putLE16(p[ra+0x0C:], 0xFFFF)
		}, true, "1.1", nil},
		{"fast-startup", func(p []byte, ra int) { putLE16(p[0x1A:], 0); putLE16(p[0x1C:], 2) }, true, "2.0", []string{RefusalFastStartup}},
		{"fast-startup-unclean", func(p []byte, ra int) {
			putLE16(p[0x1A:], 0)
			putLE16(p[0x1C:], 2)
			putLE16(p[ra+0x0E:], 0)
		}, false, "2.0", []string{RefusalFastStartup, RefusalLogFileUnclean}},
		{"unknown-version", func(p []byte, ra int) { putLE16(p[0x1C:], 7) }, false, "", []string{RefusalUnreadable}},
		{"torn-update-sequence", func(p []byte, ra int) { p[510] ^= 0xFF }, false, "", []string{RefusalUnreadable}},
	}
	src := rdFixtureImage(t, "charlie")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := rdCopyFile(t, src)
			rdPatchLogFile(t, img, tt.edit)
			v := rdOpenImage(t, img)
			s := v.Safety()
			if s.LogFileClean != tt.clean || s.LogFileVersion != tt.version || s.LogFileEmpty {
				t.Errorf("LogFileClean %v version %q empty %v; want %v %q", s.LogFileClean, s.LogFileVersion, s.LogFileEmpty, tt.clean, tt.version)
			}
			rdCheckRefusals(t, s, tt.refusals...)
		})
	}
}

func TestSafetyBitLocker(t *testing.T) {
	img := rdBuildVolume(t, "8M", nil)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("-FVE-FS-"), 3); err != nil {
		t.Fatal(err)
	}
	f.Close()
	f, err = os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if _, err := Open(f, st.Size()); !errors.Is(err, ErrBitLocker) {
		t.Fatalf("Open = %v, want ErrBitLocker", err)
	}
}

// TestSafetyTestImages: the refusal images of testimages/ (built by
// another helper with ntfs-3g tools and patched independently of this
// package) give the refusal they were built for.
func TestSafetyTestImages(t *testing.T) {
	tests := []struct {
		image string
		want  string
	}{
		{"refuse-dirty.img", RefusalDirty},
		{"refuse-hibernated.img", RefusalHibernated},
		{"refuse-faststartup.img", RefusalFastStartup},
		{"refuse-bitlocker.img", RefusalBitLocker},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			img := testutil.TestImage(t, tt.image)
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			v, err := Open(f, st.Size())
			if tt.want == RefusalBitLocker {
				if !errors.Is(err, ErrBitLocker) {
					t.Fatalf("Open = %v, want ErrBitLocker", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rdCheckRefusals(t, v.Safety(), tt.want)
		})
	}
}
