package ntfs

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// rdFixtureImage returns the decompressed path of a shared Windows-made
// fixture volume.
func rdFixtureImage(t testing.TB, name string) string {
	t.Helper()
	switch name {
	case "charlie":
		return testutil.Decompress(t, testutil.SharedFixture(t, "ntfs/charlie.dd.bz2"), "")
	case "xp":
		return testutil.Decompress(t, testutil.SharedFixture(t, "ntfs/7-undel-ntfs.zip"), "7-ntfs-undel.dd")
	}
	t.Fatalf("unknown fixture %q", name)
	return ""
}

// rdOpenImage opens an image file read-only and the volume in it.
func rdOpenImage(t testing.TB, path string) *Volume {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	v, err := Open(f, st.Size())
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return v
}

func rdSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// rdFlsPaths lists a volume with The Sleuth Kit's `fls -r -p` (an
// independent parser) under the rule FS documents: allocated names only
// (deleted entries, marked '*', are left out), without sleuthkit's virtual
// $OrphanFiles directory, and with alternate data streams ("name:stream")
// folded into their file, since FS shows the unnamed stream only.
func rdFlsPaths(t testing.TB, img string) []string {
	t.Helper()
	testutil.RequireTool(t, "fls")
	out := testutil.Run(t, "fls", "-r", "-p", img)
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		head, path, ok := strings.Cut(line, ":\t")
		if !ok {
			t.Fatalf("fls: unexpected line %q", line)
		}
		if strings.Contains(head, "*") || strings.HasPrefix(head, "V/V") {
			continue
		}
		dir, base := filepath.Split(path)
		if i := strings.IndexByte(base, ':'); i >= 0 {
			base = base[:i]
		}
		seen[dir+base] = true
	}
	return slices.Sorted(func(yield func(string) bool) {
		for p := range seen {
			if !yield(p) {
				return
			}
		}
	})
}

// rdWalk lists every path of fsys below the root, sorted.
func rdWalk(t testing.TB, fsys fs.FS) []string {
	t.Helper()
	var out []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != "." {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("WalkDir: %v", err)
	}
	slices.Sort(out)
	return out
}

func rdDiff(a, b []string) (onlyA, onlyB []string) {
	for _, s := range a {
		if !slices.Contains(b, s) {
			onlyA = append(onlyA, s)
		}
	}
	for _, s := range b {
		if !slices.Contains(a, s) {
			onlyB = append(onlyB, s)
		}
	}
	return
}

func TestOpenWindowsFixtures(t *testing.T) {
	tests := []struct {
		fixture string
		want    Safety
		files   map[string]int // path -> MFT record, read with icat
	}{
		{
			fixture: "charlie",
			want:    Safety{Version: "3.1", Label: "Charlie", Serial: 0xA4A408C8A4089F44, VolumeFlags: 0x0080, LogFileClean: true, LogFileVersion: "1.1"},
			files:   map[string]int{"Nine.txt": 38, "System Volume Information/WPSettings.dat": 37, "$UpCase": 10, "$Volume": 3},
		},
		{
			fixture: "xp",
			want:    Safety{Version: "3.1", Label: "NTFS_DEL", VolumeFlags: 0, LogFileClean: true, LogFileVersion: "1.1"},
			files:   map[string]int{"System Volume Information/tracking.log": 28, "$AttrDef": 4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			img := rdFixtureImage(t, tt.fixture)
			before := testutil.SHA256File(t, img)
			v := rdOpenImage(t, img)
			opened := v.BytesRead()
			s := *v.Safety()
			if tt.want.Serial == 0 {
				tt.want.Serial = s.Serial
			}
			if s.Version != tt.want.Version || s.Label != tt.want.Label || s.Serial != tt.want.Serial ||
				s.VolumeFlags != tt.want.VolumeFlags || s.Dirty || s.LogFileClean != tt.want.LogFileClean ||
				s.LogFileVersion != tt.want.LogFileVersion || s.Hibernation != "" || len(s.Refusals) != 0 {
				t.Errorf("Safety = %+v\nwant      %+v", s, tt.want)
			}
			// Opening reads the boot sector, a few MFT records, $UpCase
			// (128 KiB) and two $LogFile restart pages: bounded.
			if opened > 256<<10 {
				t.Errorf("Open read %d bytes, want at most 256 KiB", opened)
			}
			t.Logf("%s: Open read %d bytes", tt.fixture, opened)

			got := rdWalk(t, v.FS())
			want := rdFlsPaths(t, img)
			if a, b := rdDiff(got, want); len(a)+len(b) > 0 {
				t.Errorf("tree differs from fls -r -p:\nonly in FS:  %q\nonly in fls: %q", a, b)
			}
			if sk := v.SkippedNames(); len(sk) != 0 {
				t.Errorf("SkippedNames = %q", sk)
			}

			testutil.RequireTool(t, "icat")
			for p, rec := range tt.files {
				b, err := fs.ReadFile(v.FS(), p)
				if err != nil {
					t.Errorf("ReadFile(%s): %v", p, err)
					continue
				}
				ref := testutil.Run(t, "icat", img, strconv.Itoa(rec))
				if rdSHA256(b) != rdSHA256(ref) {
					t.Errorf("%s: sha256 %s, icat says %s (%d vs %d bytes)", p, rdSHA256(b), rdSHA256(ref), len(b), len(ref))
				}
				st, err := fs.Stat(v.FS(), p)
				if err != nil || st.Size() != int64(len(ref)) || st.Sys().(*FileStat).Record != uint64(rec) {
					t.Errorf("Stat(%s) = %v, %v; want size %d record %d", p, st, err, len(ref), rec)
				}
			}
			if after := testutil.SHA256File(t, img); after != before {
				t.Errorf("image changed by reading: sha256 %s -> %s", before, after)
			}
		})
	}
}

// TestCharlieLookupBytes measures what a Windows-like lookup costs: Open
// plus resolving paths reads only the index blocks and records on the path.
func TestCharlieLookupBytes(t *testing.T) {
	v := rdOpenImage(t, rdFixtureImage(t, "charlie"))
	opened := v.BytesRead()
	for _, p := range []string{"Windows/System32/config/SYSTEM", "hiberfil.sys", "SYSTEM VOLUME INFORMATION/wpsettings.dat", "nine.TXT"} {
		before := v.BytesRead()
		_, err := fs.Stat(v.FS(), p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%s): %v", p, err)
		}
		n := v.BytesRead() - before
		t.Logf("Stat(%q): %v; read %d bytes", p, err, n)
		if n > 64<<10 {
			t.Errorf("Stat(%q) read %d bytes, want at most 64 KiB", p, n)
		}
	}
	t.Logf("Open read %d bytes; total %d", opened, v.BytesRead())
}

// BenchmarkOpenCharlie reports the bytes Open and one lookup read.
func BenchmarkOpenCharlie(b *testing.B) {
	img := rdFixtureImage(b, "charlie")
	f, err := os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	var read int64
	for b.Loop() {
		v, err := Open(f, st.Size())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := fs.Stat(v.FS(), "System Volume Information/WPSettings.dat"); err != nil {
			b.Fatal(err)
		}
		read = v.BytesRead()
	}
	b.ReportMetric(float64(read), "bytes-read/op")
}

// TestOpenErrors: volumes that cannot be opened at all give a clear error
// (BitLocker and not-NTFS as their sentinel errors), never a panic.
func TestOpenErrors(t *testing.T) {
	img := rdFixtureImage(t, "charlie")
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	patch := func(off int, b string) []byte {
		c := slices.Clone(data)
		copy(c[off:], b)
		return c
	}
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"bitlocker", patch(3, "-FVE-FS-"), ErrBitLocker},
		{"zeros", make([]byte, 1<<20), ErrNotNTFS},
		{"tiny", []byte("NTFS"), nil},
		{"mft-outside", patch(0x30, "\xff\xff\xff\x00\x00\x00\x00\x00"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(bytes.NewReader(tt.data), int64(len(tt.data)))
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Open: %v, want %v", err, tt.want)
			}
			t.Logf("%v", err)
		})
	}
}

// TestOpenDamagedMetadata damages single metadata records of charlie and
// checks that Open still succeeds with an "unreadable" refusal saying why.
func TestOpenDamagedMetadata(t *testing.T) {
	img := rdFixtureImage(t, "charlie")
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := ParseBootSector(data)
	if err != nil {
		t.Fatal(err)
	}
	// Records 0-15 of charlie are contiguous at the $MFT's first cluster
	// (fsstat: "First Cluster of MFT: 3157", 1024-byte records).
	recOff := func(n int) int { return int(bs.MFTCluster)*int(bs.ClusterSize) + n*int(bs.RecordSize) }
	for _, tt := range []struct {
		name   string
		record int
		what   string
	}{
		{"volume", 3, "$Volume"},
		{"logfile", 2, "$LogFile"},
		{"upcase", 10, "$UpCase"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := slices.Clone(data)
			copy(c[recOff(tt.record):], "XXXX") // destroy the FILE signature
			v, err := Open(bytes.NewReader(c), int64(len(c)))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			s := v.Safety()
			if !s.Refused(RefusalUnreadable) {
				t.Fatalf("no unreadable refusal: %+v", s)
			}
			found := false
			for _, r := range s.Refusals {
				if r.ID == RefusalUnreadable && strings.Contains(r.Reason, tt.what) && r.Advice != "" {
					found = true
				}
				t.Logf("%s: %s / %s", r.ID, r.Reason, r.Advice)
			}
			if !found {
				t.Errorf("no refusal naming %s", tt.what)
			}
			if _, err := fs.ReadFile(v.FS(), "Nine.txt"); err != nil {
				t.Errorf("reading a file of the damaged volume: %v", err)
			}
		})
	}
}

// TestOpenTruncated: an image shorter than its boot sector says is still
// opened and diagnosed, with an "unreadable" refusal saying so.
func TestOpenTruncated(t *testing.T) {
	data, err := os.ReadFile(rdFixtureImage(t, "charlie"))
	if err != nil {
		t.Fatal(err)
	}
	bs, err := ParseBootSector(data)
	if err != nil {
		t.Fatal(err)
	}
	data = data[:bs.VolumeSize()-64<<10] // the image is larger than the volume: cut into the volume
	v, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	s := v.Safety()
	if len(s.Refusals) != 1 || s.Refusals[0].ID != RefusalUnreadable || !strings.Contains(s.Refusals[0].Reason, "truncated") {
		t.Errorf("Refusals = %+v", s.Refusals)
	}
	if s.Label != "Charlie" {
		t.Errorf("Label = %q", s.Label)
	}
}
