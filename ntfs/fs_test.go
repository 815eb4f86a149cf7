package ntfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"unicode/utf16"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// rdBuildVolume makes an NTFS volume with mkntfs on a sparse file and lets
// populate fill it through an ntfs-3g mount (independent of this package:
// these are the reference implementations). The mount is always undone.
func rdBuildVolume(t testing.TB, size string, populate func(mnt string)) string {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkntfs")
	testutil.RequireTool(t, "ntfs-3g")
	testutil.RequireTool(t, "fusermount")
	dir := t.TempDir()
	img := filepath.Join(dir, "vol.img")
	testutil.Run(t, "truncate", "-s", size, img)
	testutil.Run(t, "mkntfs", "-F", "-Q", "-q", "-L", "built", img)
	if populate == nil {
		return img
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "ntfs-3g", img, mnt)
	mounted := true
	unmount := func() {
		if mounted {
			if out, err := exec.Command("fusermount", "-u", mnt).CombinedOutput(); err != nil {
				t.Errorf("fusermount -u %s: %v: %s", mnt, err, out)
			}
			mounted = false
		}
	}
	t.Cleanup(unmount)
	populate(mnt)
	unmount()
	return img
}

func rdWriteFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// rdSetDOSName gives a file a separate DOS name (a Win32 + DOS pair, as
// Windows XP made them) through ntfs-3g's system.ntfs_dos_name xattr.
func rdSetDOSName(t testing.TB, path, dos string) {
	t.Helper()
	testutil.RequireTool(t, "setfattr")
	testutil.Run(t, "setfattr", "-n", "system.ntfs_dos_name", "-v", dos, path)
}

const rdManyEntries = 2000

// rdBuiltFiles is the content written to the built volume.
var rdBuiltFiles = map[string]string{
	"Windows/System32/config/SYSTEM":     "regf system hive stand-in\n",
	"Windows/System32/config/SOFTWARE":   strings.Repeat("software ", 5000), // non-resident
	"Windows/SoftwareDistribution/a.txt": "a\n",
	"A long file name.txt":               "has a DOS name\n",
	"Überprüfung.txt":                    "umlauts\n",
	"Привет/мир.txt":                     "cyrillic\n",
	"日本語.txt":                            "cjk\n",
	"ſ.txt":                              "long s\n",
	"empty.bin":                          "",
	"Program Files (x86)/Common Files/x": "x",
}

func rdManyName(i int) string { return fmt.Sprintf("Entry %04d with a longish name.dat", i) }

func rdBuildPopulated(t testing.TB) string {
	return rdBuildVolume(t, "64M", func(mnt string) {
		for p, c := range rdBuiltFiles {
			rdWriteFile(t, filepath.Join(mnt, filepath.FromSlash(p)), c)
		}
		rdSetDOSName(t, filepath.Join(mnt, "A long file name.txt"), "ALONGF~1.TXT")
		rdSetDOSName(t, filepath.Join(mnt, "Program Files (x86)"), "PROGRA~2")
		many := filepath.Join(mnt, "Many")
		if err := os.Mkdir(many, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range rdManyEntries {
			rdWriteFile(t, filepath.Join(many, rdManyName(i)), fmt.Sprint(i))
		}
	})
}

func TestFSBuiltVolume(t *testing.T) {
	img := rdBuildPopulated(t)
	v := rdOpenImage(t, img)
	fsys := v.FS()

	t.Run("tree-equals-fls", func(t *testing.T) {
		got, want := rdWalk(t, fsys), rdFlsPaths(t, img)
		if a, b := rdDiff(got, want); len(a)+len(b) > 0 {
			t.Errorf("tree differs from fls -r -p:\nonly in FS:  %q\nonly in fls: %q", a, b)
		}
	})

	t.Run("contents", func(t *testing.T) {
		for p, c := range rdBuiltFiles {
			b, err := fs.ReadFile(fsys, p)
			if err != nil || string(b) != c {
				t.Errorf("ReadFile(%q) = %d bytes, %v; want %d bytes", p, len(b), err, len(c))
			}
		}
	})

	t.Run("lookup", func(t *testing.T) {
		tests := []struct {
			path string
			name string // Stat().Name(): the on-disk long name
			ok   bool
		}{
			{"windows/SYSTEM32/Config/system", "SYSTEM", true},
			{"WINDOWS/system32/CONFIG/software", "SOFTWARE", true},
			{"a LONG file NAME.TXT", "A long file name.txt", true},
			{"alongf~1.txt", "A long file name.txt", true}, // DOS name, as Windows matches it
			{"ALONGF~1.TXT", "A long file name.txt", true},
			{"progra~2/common files/X", "x", true},
			{"ÜBERPRÜFUNG.TXT", "Überprüfung.txt", true},
			{"überprüfung.txt", "Überprüfung.txt", true},
			{"ПРИВЕТ/МИР.TXT", "мир.txt", true},
			{"日本語.TXT", "日本語.txt", true},
			{"ſ.TXT", "ſ.txt", true},
			{"S.TXT", "", false}, // Go's EqualFold would match ſ; $UpCase does not
			{"Many/ENTRY 1999 WITH A LONGISH NAME.DAT", rdManyName(1999), true},
			{"Many/entry 0000 with a longish name.dat", rdManyName(0), true},
			{"Many/Entry 2000 with a longish name.dat", "", false},
			{"Many/Entry 0000 with a longish name.da", "", false},
			{"Uberprufung.txt", "", false}, // no accent folding
			{"missing", "", false},
			{"Windows/System32/config/SYSTEM/below-a-file", "", false},
		}
		for _, tt := range tests {
			st, err := fs.Stat(fsys, tt.path)
			if !tt.ok {
				if !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Stat(%q) = %v, %v; want ErrNotExist", tt.path, st, err)
				}
				continue
			}
			if err != nil || st.Name() != tt.name {
				t.Errorf("Stat(%q) = %v, %v; want name %q", tt.path, st, err, tt.name)
			}
		}
		for _, bad := range []string{"/abs", "a/../b", "", "a//b", "./a"} {
			if _, err := fs.Stat(fsys, bad); !errors.Is(err, fs.ErrInvalid) {
				t.Errorf("Stat(%q) = %v, want ErrInvalid", bad, err)
			}
		}
	})

	t.Run("readdir-hides-dos-duplicates", func(t *testing.T) {
		ents, err := fs.ReadDir(fsys, ".")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		short := ""
		for _, e := range ents {
			names = append(names, e.Name())
			if e.Name() == "A long file name.txt" {
				info, _ := e.Info()
				short = info.Sys().(*FileStat).ShortName
			}
		}
		if slices.Contains(names, "ALONGF~1.TXT") || slices.Contains(names, "PROGRA~2") {
			t.Errorf("DOS names listed: %q", names)
		}
		if short != "ALONGF~1.TXT" {
			t.Errorf("ShortName = %q, want ALONGF~1.TXT", short)
		}
	})

	t.Run("many-entries-by-descent", func(t *testing.T) {
		ents, err := fs.ReadDir(fsys, "Many")
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != rdManyEntries {
			t.Fatalf("ReadDir(Many): %d entries, want %d", len(ents), rdManyEntries)
		}
		// The index itself is in $UpCase collation order, strictly
		// increasing (what ntfs-3g wrote, checked with our Compare).
		rec, _, err := v.lookup("test", "Many")
		if err != nil {
			t.Fatal(err)
		}
		ix, err := v.openIndex(rec)
		if err != nil {
			t.Fatal(err)
		}
		all, err := ix.all()
		if err != nil {
			t.Fatal(err)
		}
		up := v.UpCase()
		for i := 1; i < len(all); i++ {
			if up.Compare(all[i-1].name, all[i].name) >= 0 {
				t.Fatalf("index order: %q before %q", string(utf16.Decode(all[i-1].name)), string(utf16.Decode(all[i].name)))
			}
		}
		// One lookup in a 2000-entry directory reads a few index blocks,
		// not the whole index (~70 blocks of 4 KiB).
		before := v.BytesRead()
		for i := 0; i < rdManyEntries; i += 97 {
			b, err := fs.ReadFile(fsys, "many/"+strings.ToUpper(rdManyName(i)))
			if err != nil || string(b) != fmt.Sprint(i) {
				t.Fatalf("ReadFile(%d) = %q, %v", i, b, err)
			}
		}
		per := (v.BytesRead() - before) / int64(rdManyEntries/97+1)
		t.Logf("a lookup + read in a %d-entry directory reads %d bytes on average", rdManyEntries, per)
		if per > 32<<10 {
			t.Errorf("lookup reads %d bytes, want at most 32 KiB (B-tree descent)", per)
		}
	})

	t.Run("reader-seeker", func(t *testing.T) {
		f, err := fsys.Open("Windows/System32/config/SOFTWARE")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		want := rdBuiltFiles["Windows/System32/config/SOFTWARE"]
		ra, ok := f.(io.ReaderAt)
		sk, ok2 := f.(io.Seeker)
		if !ok || !ok2 {
			t.Fatalf("%T is not an io.ReaderAt and io.Seeker", f)
		}
		buf := make([]byte, 100)
		if n, err := ra.ReadAt(buf, 4090); n != 100 || err != nil || string(buf) != want[4090:4190] {
			t.Errorf("ReadAt(100 @4090) = %d, %v, %q", n, err, buf[:n])
		}
		if n, err := ra.ReadAt(buf, int64(len(want))-10); n != 10 || err != io.EOF {
			t.Errorf("ReadAt at the end = %d, %v; want 10, EOF", n, err)
		}
		if pos, err := sk.Seek(-9, io.SeekEnd); err != nil || pos != int64(len(want))-9 {
			t.Errorf("Seek = %d, %v", pos, err)
		}
		rest, err := io.ReadAll(f)
		if err != nil || string(rest) != want[len(want)-9:] {
			t.Errorf("read after Seek = %q, %v", rest, err)
		}
	})

	t.Run("fstest", func(t *testing.T) {
		var expect []string
		for p := range rdBuiltFiles {
			expect = append(expect, p)
		}
		if err := fstest.TestFS(fsys, expect...); err != nil {
			t.Error(err)
		}
	})
}

// TestFSHostileNames: names that cannot be io/fs path elements never reach
// a caller. ntfs-3g's POSIX namespace allows '\' and ':'-free names only,
// so the hostile names are planted by patching a built volume: an index
// entry's name and its $FILE_NAME are changed together to "a/b", ".." and
// "n\x00".
func TestFSHostileNames(t *testing.T) {
	img := rdBuildVolume(t, "8M", func(mnt string) {
		rdWriteFile(t, filepath.Join(mnt, "aXb"), "slash\n")
		rdWriteFile(t, filepath.Join(mnt, "QQ"), "dotdot\n")
		rdWriteFile(t, filepath.Join(mnt, "nZ"), "nul\n")
		rdWriteFile(t, filepath.Join(mnt, "okay"), "fine\n")
	})
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	// Replace the UTF-16 names everywhere they occur (the root index entry
	// and the record's $FILE_NAME): lengths are unchanged.
	u16 := func(s string) []byte {
		var b []byte
		for _, c := range utf16.Encode([]rune(s)) {
			b = append(b, byte(c), byte(c>>8))
		}
		return b
	}
	for _, r := range []struct{ from, to string }{{"aXb", "a/b"}, {"QQ", ".."}, {"nZ", "n\x00"}} {
		// A name is preceded by its length and namespace bytes.
		from := append([]byte{byte(len(r.from)), 0}, u16(r.from)...)
		from2 := append([]byte{byte(len(r.from)), 1}, u16(r.from)...)
		from3 := append([]byte{byte(len(r.from)), 3}, u16(r.from)...)
		n := bytes.Count(data, from) + bytes.Count(data, from2) + bytes.Count(data, from3)
		if n < 2 {
			t.Fatalf("name %q found %d times", r.from, n)
		}
		for _, f := range [][]byte{from, from2, from3} {
			to := append([]byte{f[0], f[1]}, u16(r.to)...)
			data = bytes.ReplaceAll(data, f, to)
		}
	}
	v, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	got := rdWalk(t, v.FS())
	for _, p := range got {
		if strings.HasPrefix(p, "a") || strings.HasPrefix(p, "n") || strings.Contains(p, "..") {
			t.Errorf("hostile name listed: %q", p)
		}
	}
	if !slices.Contains(got, "okay") {
		t.Errorf("okay not listed: %q", got)
	}
	if sk := strings.Join(v.SkippedNames(), " "); len(v.SkippedNames()) != 3 || !strings.Contains(sk, `"a/b"`) ||
		!strings.Contains(sk, `".."`) || !strings.Contains(sk, `"n\x00"`) {
		t.Errorf("SkippedNames = %q", v.SkippedNames())
	}
	if _, err := fs.Stat(v.FS(), "a/b"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(a/b) = %v, want ErrNotExist", err)
	}
}
