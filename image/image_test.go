package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// wantType is the Volume.Type this package gives each sgdisk type code.
var wantType = map[string]string{
	"C12A7328-F81F-11D2-BA4B-00A0C93EC93B": "EFI System",
	"E3C9E316-0B5C-4DB8-817D-F92DF00215AE": "Microsoft reserved",
	"EBD0A0A2-B9E5-4433-87C0-68B6B72699C7": "Basic data",
	"DE94BBA4-06D1-4D40-A16A-BFD50179D6AC": "Windows Recovery",
}

// wantContent is what each partition of the built GPT disks holds.
var wantContent = map[int]string{1: ContentFAT, 2: ContentEmpty, 3: ContentNTFS, 4: ContentEmpty}

// checkAgainstSgdisk compares a target's GPT with sgdisk's listing.
func checkAgainstSgdisk(t *testing.T, tg *Target, sg sgdiskTable) {
	t.Helper()
	if tg.Kind != KindDisk || tg.Table != "gpt" {
		t.Fatalf("Kind/Table = %q/%q, want disk/gpt", tg.Kind, tg.Table)
	}
	if tg.SectorSize != sg.sectorSize {
		t.Errorf("SectorSize = %d, sgdisk says %d", tg.SectorSize, sg.sectorSize)
	}
	if tg.DiskID != sg.diskGUID {
		t.Errorf("DiskID = %s, sgdisk says %s", tg.DiskID, sg.diskGUID)
	}
	if len(tg.Volumes) != len(sg.parts) {
		t.Fatalf("%d volumes, sgdisk lists %d: %+v", len(tg.Volumes), len(sg.parts), tg.Volumes)
	}
	ss := int64(sg.sectorSize)
	for i, p := range sg.parts {
		v := tg.Volumes[i]
		want := Volume{
			Index:   p.index,
			Offset:  int64(p.start) * ss,
			Size:    int64(p.end-p.start+1) * ss,
			Type:    wantType[p.typeGUID],
			TypeID:  p.typeGUID,
			GUID:    p.uniqueGUID,
			Name:    p.name,
			Content: wantContent[p.index],
		}
		if v != want {
			t.Errorf("volume %d:\n got  %+v\n want %+v (sgdisk)", i, v, want)
		}
	}
}

func TestOpenGPT(t *testing.T) {
	tests := []struct {
		name  string
		build func(testing.TB) gptDisk
	}{
		{"512", buildGPT512},
		{"4Kn", buildGPT4Kn},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.build(t)
			tg, err := Open(d.path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			if tg.Format != FormatRaw || tg.Device || tg.Size != diskMiB<<20 {
				t.Errorf("Format %q Device %v Size %d, want raw, false, %d", tg.Format, tg.Device, tg.Size, diskMiB<<20)
			}
			if len(tg.Warnings) != 0 {
				t.Errorf("warnings on a sound disk: %q", tg.Warnings)
			}
			checkAgainstSgdisk(t, tg, d.sg)

			// The NTFS volume's reader starts at its boot sector and ends
			// at the partition's end.
			v := tg.Volumes[2]
			r := tg.ReaderAt(v)
			if r.Size() != v.Size {
				t.Errorf("reader size %d, want %d", r.Size(), v.Size)
			}
			boot := make([]byte, 512)
			if _, err := r.ReadAt(boot, 0); err != nil || !bytes.Equal(boot[3:11], []byte("NTFS    ")) {
				t.Errorf("NTFS boot sector not at the reader's start (%v): % x", err, boot[:16])
			}
			if n, err := r.ReadAt(boot, v.Size-100); n != 100 || err != io.EOF {
				t.Errorf("read across the volume end: n=%d err=%v, want 100, EOF", n, err)
			}
			if _, err := tg.WriterAt(v); err == nil {
				t.Error("WriterAt succeeded on a read-only target")
			}
		})
	}
}

// TestOpenBlockDevice opens loop devices: the whole disk (its sector size
// from BLKSSZGET) and one partition on its own (a bare volume).
func TestOpenBlockDevice(t *testing.T) {
	d := buildGPT512(t)
	dev := loopAttach(t, d.path, "--read-only")
	tg, err := Open(dev, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if !tg.Device {
		t.Error("Device = false for a loop device")
	}
	checkAgainstSgdisk(t, tg, d.sg)

	ntfs := tg.Volumes[2]
	part := loopAttach(t, d.path, "--read-only", "--offset", strconv.FormatInt(ntfs.Offset, 10), "--sizelimit", strconv.FormatInt(ntfs.Size, 10))
	pv, err := Open(part, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pv.Close()
	want := []Volume{{Index: 0, Offset: 0, Size: ntfs.Size, Type: "volume", Content: ContentNTFS}}
	if pv.Kind != KindVolume || pv.Table != "" || pv.SectorSize != 0 || len(pv.Volumes) != 1 || pv.Volumes[0] != want[0] {
		t.Errorf("partition device: %+v, want a bare NTFS volume %+v", pv, want)
	}

	d4 := buildGPT4Kn(t)
	dev4 := loopAttach(t, d4.path, "--read-only", "--sector-size", "4096")
	tg4, err := Open(dev4, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg4.Close()
	checkAgainstSgdisk(t, tg4, d4.sg)
}

// sfdiskJSON is the part of `sfdisk -J` output compared here.
type sfdiskJSON struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		SectorSize int    `json:"sectorsize"`
		Partitions []struct {
			Node  string `json:"node"`
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
			Type  string `json:"type"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func TestOpenMBR(t *testing.T) {
	sfdisk := testutil.RequireTool(t, "sfdisk")
	p := sparseFile(t, "mbr.img", diskMiB<<20)
	// Windows' MBR layout (System Reserved, Windows, Recovery) plus an
	// extended partition with two logical ones.
	script := "label: dos\nlabel-id: 0x1234abcd\n" +
		"start=2048, size=16MiB, type=7, bootable\n" +
		"size=8MiB, type=27\n" +
		"size=24MiB, type=7\n" +
		"type=5\n" +
		"size=4MiB, type=c\n" +
		"type=7\n"
	cmd := []string{"--no-reread", "--no-tell-kernel", p}
	testRunStdin(t, script, sfdisk, cmd...)
	var sf sfdiskJSON
	if err := json.Unmarshal(testutil.Run(t, sfdisk, "-J", p), &sf); err != nil {
		t.Fatal(err)
	}
	pt := sf.PartitionTable
	for _, part := range pt.Partitions {
		if part.Node == p+"1" {
			copyInto(t, p, makeNTFS(t, part.Size*int64(pt.SectorSize), 512), part.Start*int64(pt.SectorSize))
		}
		if part.Node == p+"5" {
			copyInto(t, p, makeFAT(t, part.Size*int64(pt.SectorSize), 512), part.Start*int64(pt.SectorSize))
		}
	}

	tg, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if tg.Kind != KindDisk || tg.Table != "mbr" || tg.SectorSize != pt.SectorSize || "0x"+tg.DiskID != pt.ID {
		t.Errorf("Kind %q Table %q SectorSize %d DiskID %s; sfdisk: %s, %d, %s", tg.Kind, tg.Table, tg.SectorSize, tg.DiskID, pt.Label, pt.SectorSize, pt.ID)
	}
	if len(tg.Volumes) != len(pt.Partitions) {
		t.Fatalf("%d volumes, sfdisk lists %d: %+v", len(tg.Volumes), len(pt.Partitions), tg.Volumes)
	}
	contents := map[int]string{1: ContentNTFS, 5: ContentFAT, 2: ContentEmpty, 3: ContentEmpty, 6: ContentEmpty, 4: ContentUnknown}
	for i, sp := range pt.Partitions {
		v := tg.Volumes[i]
		idx, _ := strconv.Atoi(strings.TrimPrefix(sp.Node, p))
		typ, _ := strconv.ParseUint(sp.Type, 16, 8)
		if v.Index != idx || v.Offset != sp.Start*512 || v.Size != sp.Size*512 || v.TypeID != "0x"+strings.Repeat("0", 2-len(sp.Type))+sp.Type || v.Damaged != "" {
			t.Errorf("volume %d = %+v; sfdisk: %+v", i, v, sp)
		}
		if v.Type != mbrTypeName(byte(typ)) || v.Content != contents[idx] {
			t.Errorf("volume %d: Type %q Content %q, want %q %q", idx, v.Type, v.Content, mbrTypeName(byte(typ)), contents[idx])
		}
	}
	if tg.Volumes[0].Type != "NTFS/exFAT/HPFS (0x07)" || tg.Volumes[1].Type != "Windows Recovery (0x27)" {
		t.Errorf("types %q, %q", tg.Volumes[0].Type, tg.Volumes[1].Type)
	}
}

// testRunStdin runs a command with stdin, failing the test on error.
func testRunStdin(t *testing.T, stdin, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func TestOpenFixedVHD(t *testing.T) {
	d := buildGPT512(t)
	vhd := toFixedVHD(t, d.path)
	tg, err := Open(vhd, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if tg.Format != FormatVHDFixed || tg.Size != diskMiB<<20 {
		t.Errorf("Format %q Size %d, want vhd-fixed %d", tg.Format, tg.Size, diskMiB<<20)
	}
	checkAgainstSgdisk(t, tg, d.sg)

	// Every volume reads the same bytes as in the raw image.
	raw, err := Open(d.path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for i, v := range tg.Volumes {
		a, b := sha256.New(), sha256.New()
		if _, err := io.Copy(a, tg.ReaderAt(v)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(b, raw.ReaderAt(raw.Volumes[i])); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Sum(nil), b.Sum(nil)) {
			t.Errorf("volume %d differs between the VHD and the raw image", v.Index)
		}
	}
}

// TestWriterAt writes into the last partition of a fixed VHD, right up to
// its end: the footer right after it must not change, and a write crossing
// the end must be refused whole.
func TestWriterAt(t *testing.T) {
	d := buildGPT512(t)
	vhd := toFixedVHD(t, d.path)
	footer := func() []byte {
		b, err := os.ReadFile(vhd)
		if err != nil {
			t.Fatal(err)
		}
		return b[len(b)-512:]
	}
	before := footer()

	tg, err := Open(vhd, Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	// The backup GPT lies between partition 4 and the footer, so the
	// write goes to the end of partition 3; the footer check below is the
	// guard for the data area's end.
	v := tg.Volumes[2]
	w, err := tg.WriterAt(v)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		off  int64
		n    int
		ok   bool
	}{
		{"last sector", v.Size - 512, 512, true},
		{"first bytes", 0, 16, true},
		{"crossing the end", v.Size - 100, 512, false},
		{"past the end", v.Size, 1, false},
		{"negative", -1, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := bytes.Repeat([]byte{0xA5}, tc.n)
			r := tg.ReaderAt(v)
			old := make([]byte, 512)
			oldN, _ := r.ReadAt(old, max(0, min(tc.off, v.Size-512)))
			n, err := w.WriteAt(p, tc.off)
			if tc.ok != (err == nil) || (tc.ok && n != tc.n) || (!tc.ok && n != 0) {
				t.Fatalf("WriteAt(%d bytes at %d) = %d, %v", tc.n, tc.off, n, err)
			}
			got := make([]byte, 512)
			gotN, _ := r.ReadAt(got, max(0, min(tc.off, v.Size-512)))
			if !tc.ok && (oldN != gotN || !bytes.Equal(old, got)) {
				t.Error("a refused write changed the volume")
			}
		})
	}
	if err := tg.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, footer()) {
		t.Error("the VHD footer changed")
	}
	// qemu-img still reads it as a VHD of the same size.
	out := testutil.Run(t, "qemu-img", "info", "-f", "vpc", "--output=json", vhd)
	if !bytes.Contains(out, []byte(`"virtual-size": `+strconv.Itoa(diskMiB<<20)+`,`)) {
		t.Errorf("qemu-img info: %s", out)
	}
}

// TestReadOnlyNeverWrites opens images read-only, reads every volume
// through, and checks that not a byte of the files changed.
func TestReadOnlyNeverWrites(t *testing.T) {
	d := buildGPT512(t)
	vhd := toFixedVHD(t, d.path)
	for _, p := range []string{d.path, vhd} {
		before := testutil.SHA256File(t, p)
		st0, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		tg, err := Open(p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range tg.Volumes {
			if _, err := io.Copy(io.Discard, tg.ReaderAt(v)); err != nil {
				t.Fatal(err)
			}
			if _, err := tg.WriterAt(v); err == nil {
				t.Errorf("%s: WriterAt on a read-only target", p)
			}
		}
		if err := tg.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := tg.Close(); err != nil {
			t.Fatal(err)
		}
		st1, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if after := testutil.SHA256File(t, p); after != before || !st1.ModTime().Equal(st0.ModTime()) {
			t.Errorf("%s changed: sha256 %s -> %s, mtime %v -> %v", p, before, after, st0.ModTime(), st1.ModTime())
		}
	}
}

func TestOpenBareVolume(t *testing.T) {
	zero := sparseFile(t, "zero.img", 8<<20)
	tests := []struct {
		name    string
		path    func() string
		content string
	}{
		{"ntfs", func() string { return makeNTFS(t, 16<<20, 512) }, ContentNTFS},
		{"ntfs 4096", func() string { return makeNTFS(t, 16<<20, 4096) }, ContentNTFS},
		{"fat", func() string { return makeFAT(t, 16<<20, 512) }, ContentFAT},
		{"zero", func() string { return zero }, ContentEmpty},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.path()
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			tg, err := Open(p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			want := Volume{Index: 0, Offset: 0, Size: st.Size(), Type: "volume", Content: tc.content}
			if tg.Kind != KindVolume || tg.Table != "" || tg.SectorSize != 0 || len(tg.Volumes) != 1 || tg.Volumes[0] != want {
				t.Errorf("got %+v, want one volume %+v", tg, want)
			}
		})
	}
}

func TestOpenDirectory(t *testing.T) {
	dir := t.TempDir()
	tg, err := Open(dir, Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if tg.Kind != KindDirectory || tg.Format != FormatDirectory || len(tg.Volumes) != 0 || tg.Dir() != dir {
		t.Errorf("got %+v", tg)
	}
	if _, err := tg.WriterAt(Volume{}); err == nil {
		t.Error("WriterAt on a directory succeeded")
	}
	if n := tg.ReaderAt(Volume{Size: 10}).Size(); n != 0 {
		t.Errorf("ReaderAt on a directory has %d bytes", n)
	}
}

func TestOpenErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.img")
	_, err := Open(missing, Options{})
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Open("", Options{}); err == nil {
		t.Error("empty path accepted")
	}
	tiny := filepath.Join(t.TempDir(), "tiny.img")
	if err := os.WriteFile(tiny, make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(tiny, Options{}); err == nil || !strings.Contains(err.Error(), "too small") {
		t.Errorf("100-byte file: %v", err)
	}
}

// TestOpenMBR4Kn partitions a disk with 4096-byte sectors with sfdisk
// through a loop device: the image file alone gives no sector size, so it
// is deduced from where the NTFS volume is; the device reports it.
func TestOpenMBR4Kn(t *testing.T) {
	sfdisk := testutil.RequireTool(t, "sfdisk")
	p := sparseFile(t, "mbr4kn.img", diskMiB<<20)
	dev := loopAttach(t, p, "--sector-size", "4096")
	testRunStdin(t, "label: dos\nstart=256, size=16MiB, type=7\nsize=8MiB, type=27\n", sfdisk, "--no-reread", "--no-tell-kernel", dev)
	var sf sfdiskJSON
	if err := json.Unmarshal(testutil.Run(t, sfdisk, "-J", dev), &sf); err != nil {
		t.Fatal(err)
	}
	pt := sf.PartitionTable
	if pt.SectorSize != 4096 || len(pt.Partitions) != 2 {
		t.Fatalf("sfdisk: %+v", pt)
	}
	first := pt.Partitions[0]
	copyInto(t, p, makeNTFS(t, first.Size*4096, 4096), first.Start*4096)

	for _, path := range []string{p, dev} {
		tg, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer tg.Close()
		if tg.SectorSize != 4096 || len(tg.Volumes) != 2 {
			t.Fatalf("%s: SectorSize %d, %d volumes: %+v", path, tg.SectorSize, len(tg.Volumes), tg.Volumes)
		}
		for i, sp := range pt.Partitions {
			v := tg.Volumes[i]
			if v.Offset != sp.Start*4096 || v.Size != sp.Size*4096 {
				t.Errorf("%s: volume %d at %d+%d; sfdisk: %d+%d sectors", path, v.Index, v.Offset, v.Size, sp.Start, sp.Size)
			}
		}
		if tg.Volumes[0].Content != ContentNTFS {
			t.Errorf("%s: partition 1 holds %q", path, tg.Volumes[0].Content)
		}
	}
}
