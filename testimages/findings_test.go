// Package testimages holds the committed test images and the scripts that
// build them (see README.md). This test checks, with the standard library
// only, that the committed data still matches findings.json: sizes, the
// partition table and the first bytes of every volume, the hives and the
// tree tarballs. It shares no code with wuoffline's own parsers.
package testimages

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

type findings struct {
	Images map[string]image `json:"images"`
	Trees  map[string]struct {
		Profile string `json:"profile"`
	} `json:"trees"`
	Hives map[string]struct {
		Profile string `json:"profile"`
		Hive    string `json:"hive"`
	} `json:"hives"`
	Profiles map[string]json.RawMessage `json:"profiles"`
}

type image struct {
	Kind          string   `json:"kind"`
	Table         string   `json:"table"`
	SectorSize    int64    `json:"sector_size"`
	Size          int64    `json:"size"`
	Volumes       []volume `json:"volumes"`
	WindowsVolume int      `json:"windows_volume"`
	Profile       string   `json:"profile"`
	Refusal       *string  `json:"refusal"`
	ExitCode      int      `json:"exit_code"`
}

type volume struct {
	Index       int    `json:"index"`
	StartSector int64  `json:"start_sector"`
	Offset      int64  `json:"offset"`
	Size        int64  `json:"size"`
	Content     string `json:"content"`
	Filesystem  string `json:"filesystem"`
	Active      bool   `json:"active"`
	Windows     bool   `json:"windows"`
}

func load(t *testing.T) findings {
	t.Helper()
	b, err := os.ReadFile("findings.json")
	if err != nil {
		t.Fatal(err)
	}
	var f findings
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("findings.json: %v", err)
	}
	return f
}

// span is a byte range of a decompressed image that a check looks at.
type span struct {
	off, n int64
	data   []byte
}

// readSpans streams a gzip file once and keeps the requested ranges; it
// returns the decompressed size. The ranges must not overlap.
func readSpans(path string, spans []*span) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].off < spans[j].off })
	var pos int64
	for _, s := range spans {
		if s.off < pos {
			return 0, fmt.Errorf("%s: overlapping spans at %d", path, s.off)
		}
		if _, err := io.CopyN(io.Discard, zr, s.off-pos); err != nil {
			return 0, fmt.Errorf("%s: skipping to %d: %w", path, s.off, err)
		}
		s.data = make([]byte, s.n)
		if _, err := io.ReadFull(zr, s.data); err != nil {
			return 0, fmt.Errorf("%s: reading %d bytes at %d: %w", path, s.n, s.off, err)
		}
		pos = s.off + s.n
	}
	rest, err := io.Copy(io.Discard, zr)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return pos + rest, nil
}

func TestImagesMatchFindings(t *testing.T) {
	if testing.Short() {
		t.Skip("decompresses about 1 GB of images")
	}
	f := load(t)
	names := []string{"broken-gpt.img", "healthy-gpt.img", "broken-mbr.img", "broken-4kn.img", "broken-volume.img",
		"refuse-hibernated.img", "refuse-dirty.img", "refuse-bitlocker.img", "refuse-faststartup.img"}
	for _, name := range names {
		img, ok := f.Images[name]
		if !ok {
			t.Errorf("findings.json has no %s", name)
			continue
		}
		t.Run(name, func(t *testing.T) { checkImage(t, name, img, f) })
	}
}

func checkImage(t *testing.T, name string, img image, f findings) {
	if _, ok := f.Profiles[img.Profile]; !ok {
		t.Errorf("profile %q not described", img.Profile)
	}
	wantExit := 1
	switch {
	case img.Refusal != nil:
		wantExit = 3
	case strings.HasPrefix(img.Profile, "healthy"):
		wantExit = 0
	}
	if img.ExitCode != wantExit {
		t.Errorf("exit_code %d, want %d", img.ExitCode, wantExit)
	}
	head := &span{0, 1024, nil}
	spans := []*span{head}
	if img.Table == "gpt" {
		// The primary GPT header is at LBA 1, so it is at byte 4096 on a 4Kn disk.
		spans = []*span{{0, img.SectorSize, nil}, {img.SectorSize, 512, nil}}
		head = spans[0]
	}
	vols := map[int]*span{}
	windows := 0
	for _, v := range img.Volumes {
		if v.Windows {
			windows++
			if v.Index != img.WindowsVolume {
				t.Errorf("windows_volume %d, but volume %d is marked windows", img.WindowsVolume, v.Index)
			}
		}
		if v.Offset == 0 {
			vols[v.Index] = head
			continue
		}
		s := &span{v.Offset, 512, nil}
		vols[v.Index] = s
		spans = append(spans, s)
	}
	if windows != 1 {
		t.Errorf("%d volumes marked windows, want 1", windows)
	}
	size, err := readSpans(filepath.Join("data", name+".gz"), spans)
	if err != nil {
		t.Fatal(err)
	}
	if size != img.Size {
		t.Errorf("decompressed size %d, findings say %d", size, img.Size)
	}
	mbr := head.data
	if !bytes.Equal(mbr[0x1FE:0x200], []byte{0x55, 0xAA}) && img.Kind == "disk" {
		t.Errorf("no 55AA at 0x1FE")
	}
	switch img.Table {
	case "gpt":
		if mbr[0x1C2] != 0xEE {
			t.Errorf("protective MBR type %#x, want 0xEE", mbr[0x1C2])
		}
		if got := string(spans[1].data[:8]); got != "EFI PART" {
			t.Errorf("GPT header at byte %d: %q", img.SectorSize, got)
		}
	case "mbr":
		for i, v := range img.Volumes {
			e := mbr[0x1BE+16*i:]
			if (e[0] == 0x80) != v.Active || e[4] != 0x07 || int64(binary.LittleEndian.Uint32(e[8:]))*512 != v.Offset ||
				int64(binary.LittleEndian.Uint32(e[12:]))*512 != v.Size {
				t.Errorf("MBR entry %d = % x, findings: %+v", i+1, e[:16], v)
			}
		}
	}
	for _, v := range img.Volumes {
		b := vols[v.Index].data
		switch v.Content {
		case "ntfs":
			if string(b[3:11]) != "NTFS    " {
				t.Errorf("volume %d: OEM id %q, want NTFS", v.Index, b[3:11])
			}
			bps := int64(binary.LittleEndian.Uint16(b[0x0B:]))
			want := img.SectorSize
			if want == 0 {
				want = 512
			}
			if bps != want {
				t.Errorf("volume %d: %d bytes per sector, want %d", v.Index, bps, want)
			}
		case "bitlocker":
			if string(b[3:11]) != "-FVE-FS-" {
				t.Errorf("volume %d: OEM id %q, want -FVE-FS-", v.Index, b[3:11])
			}
		case "fat":
			fs := "FAT32   "
			at := 0x52
			if v.Filesystem == "fat16" {
				fs, at = "FAT16   ", 0x36
			}
			if string(b[at:at+8]) != fs {
				t.Errorf("volume %d: %q at %#x, want %q", v.Index, b[at:at+8], at, fs)
			}
		case "empty":
			if !bytes.Equal(b, make([]byte, len(b))) {
				t.Errorf("volume %d: not empty", v.Index)
			}
		default:
			t.Errorf("volume %d: unexpected content %q", v.Index, v.Content)
		}
	}
}

func TestHives(t *testing.T) {
	f := load(t)
	if len(f.Hives) == 0 {
		t.Fatal("findings.json lists no hives")
	}
	for name, h := range f.Hives {
		b, err := gunzip(filepath.Join("data", name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(b) < 8192 || string(b[:4]) != "regf" || string(b[4096:4100]) != "hbin" {
			t.Errorf("%s (%s %s): not a regf hive", name, h.Profile, h.Hive)
		}
		// Clean: primary and secondary sequence numbers agree.
		if binary.LittleEndian.Uint32(b[4:]) != binary.LittleEndian.Uint32(b[8:]) {
			t.Errorf("%s: sequence numbers differ (dirty)", name)
		}
	}
}

func TestTrees(t *testing.T) {
	f := load(t)
	for name := range f.Trees {
		b, err := gunzip(filepath.Join("data", name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		seen := map[string]int64{}
		tr := tar.NewReader(bytes.NewReader(b))
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			seen[strings.TrimPrefix(h.Name, "./")] = h.Size
		}
		if len(seen) < 3500 {
			t.Errorf("%s: %d entries, want a realistic tree (3500+)", name, len(seen))
		}
		for _, p := range []string{"Windows/System32/config/SYSTEM", "Windows/System32/config/SOFTWARE",
			"Windows/System32/config/COMPONENTS", "Windows/System32/drivers/etc/hosts", "Windows/SoftwareDistribution/",
			"Windows/System32/catroot2/", "ProgramData/Microsoft/Network/Downloader/qmgr.db"} {
			if _, ok := seen[p]; !ok {
				t.Errorf("%s: no %s", name, p)
			}
		}
		_, pending := seen["Windows/WinSxS/pending.xml"]
		if broken := strings.HasPrefix(name, "broken"); pending != broken {
			t.Errorf("%s: pending.xml present = %v", name, pending)
		}
	}
}

func gunzip(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	// The hives and trees are a few MB at most; cap what a damaged file could make us allocate.
	b, err := io.ReadAll(io.LimitReader(zr, 64<<20))
	if err != nil {
		return nil, err
	}
	return b, nil
}
