package image

// Builders of real disk images for the tests, made with independent tools:
// sgdisk (GPT), sfdisk (MBR), losetup (4Kn sectors), mkntfs, mkfs.vfat and
// qemu-img. Images are sparse files of tens of MiB.

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// diskMiB is the size of the test disks.
const diskMiB = 64

// sparseFile creates a file of size bytes that holds no data.
func sparseFile(t testing.TB, name string, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// copyInto writes the file src into dst at off, skipping all-zero blocks
// so that dst stays sparse.
func copyInto(t testing.TB, dst, src string, off int64) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	buf := make([]byte, 64<<10)
	for pos := int64(0); ; {
		n, err := in.Read(buf)
		if n > 0 && !allZero(buf[:n]) {
			if _, werr := out.WriteAt(buf[:n], off+pos); werr != nil {
				t.Fatal(werr)
			}
		}
		pos += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// makeNTFS returns a file holding a fresh NTFS volume of size bytes with
// ss-byte sectors, made by mkntfs.
func makeNTFS(t testing.TB, size int64, ss int) string {
	t.Helper()
	testutil.RequireTool(t, "mkntfs")
	p := sparseFile(t, "ntfs.part", size)
	testutil.Run(t, "mkntfs", "-F", "-Q", "-q", "-s", strconv.Itoa(ss), "-L", "Windows", p)
	return p
}

// makeFAT returns a file holding a fresh FAT volume of size bytes with
// ss-byte sectors, made by mkfs.vfat.
func makeFAT(t testing.TB, size int64, ss int) string {
	t.Helper()
	testutil.RequireTool(t, "mkfs.vfat")
	p := sparseFile(t, "fat.part", size)
	testutil.Run(t, "mkfs.vfat", "-S", strconv.Itoa(ss), "-n", "SYSTEM", p)
	return p
}

// sgPart is a partition as sgdisk reports it.
type sgPart struct {
	index      int
	start, end uint64 // LBAs
	typeGUID   string
	uniqueGUID string
	name       string
}

// sgdiskTable is what sgdisk -p / -i say about a disk.
type sgdiskTable struct {
	sectorSize int
	diskGUID   string
	parts      []sgPart
}

var (
	reSgRow    = regexp.MustCompile(`^\s+(\d+)\s+(\d+)\s+(\d+)\s+`)
	reSgSector = regexp.MustCompile(`Sector size \(logical(?:/physical)?\): (\d+)`)
	reSgDisk   = regexp.MustCompile(`Disk identifier \(GUID\): ([0-9A-F-]+)`)
	reSgType   = regexp.MustCompile(`Partition GUID code: ([0-9A-F-]+)`)
	reSgUnique = regexp.MustCompile(`Partition unique GUID: ([0-9A-F-]+)`)
	reSgName   = regexp.MustCompile(`Partition name: '(.*)'`)
)

// sgdiskList reads a GPT with sgdisk: -p for the list, -i N for each
// partition's type, GUID and name.
func sgdiskList(t testing.TB, dev string) sgdiskTable {
	t.Helper()
	testutil.RequireTool(t, "sgdisk")
	out := string(testutil.Run(t, "sgdisk", "-p", dev))
	var st sgdiskTable
	if m := reSgSector.FindStringSubmatch(out); m != nil {
		st.sectorSize, _ = strconv.Atoi(m[1])
	}
	if m := reSgDisk.FindStringSubmatch(out); m != nil {
		st.diskGUID = m[1]
	}
	for _, line := range strings.Split(out, "\n") {
		m := reSgRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var p sgPart
		p.index, _ = strconv.Atoi(m[1])
		p.start, _ = strconv.ParseUint(m[2], 10, 64)
		p.end, _ = strconv.ParseUint(m[3], 10, 64)
		info := string(testutil.Run(t, "sgdisk", "-i", m[1], dev))
		if m := reSgType.FindStringSubmatch(info); m != nil {
			p.typeGUID = m[1]
		}
		if m := reSgUnique.FindStringSubmatch(info); m != nil {
			p.uniqueGUID = m[1]
		}
		if m := reSgName.FindStringSubmatch(info); m != nil {
			p.name = m[1]
		}
		st.parts = append(st.parts, p)
	}
	if st.sectorSize == 0 || len(st.parts) == 0 {
		t.Fatalf("could not parse sgdisk -p output:\n%s", out)
	}
	return st
}

// windowsGPTArgs are the sgdisk arguments for a Windows-style GPT: EFI
// System (FAT), Microsoft reserved, Basic data (NTFS), Windows Recovery.
// Sizes are in MiB and fit in a diskMiB disk with either sector size.
var windowsGPTArgs = []string{
	"-n", "1:0:+8M", "-t", "1:ef00", "-c", "1:EFI system partition",
	"-n", "2:0:+4M", "-t", "2:0c01", "-c", "2:Microsoft reserved partition",
	"-n", "3:0:+40M", "-t", "3:0700", "-c", "3:Basic data partition",
	"-n", "4:0:0", "-t", "4:2700", "-c", "4:Recovery",
}

// gptDisk is a built GPT disk image and what sgdisk says about it.
type gptDisk struct {
	path   string
	sg     sgdiskTable
	ntfsAt int64 // byte offset of the NTFS partition (3)
}

// buildGPT512 makes a 512-byte-sector GPT disk image with sgdisk and puts a
// FAT volume in partition 1 and an NTFS volume in partition 3.
func buildGPT512(t testing.TB) gptDisk {
	t.Helper()
	p := sparseFile(t, "gpt512.img", diskMiB<<20)
	testutil.Run(t, testutil.RequireTool(t, "sgdisk"), append([]string{"--set-alignment=2048"}, append(windowsGPTArgs, p)...)...)
	return fillGPT(t, p, p, 512)
}

// buildGPT4Kn makes a GPT disk image with 4096-byte logical sectors: sgdisk
// writes it through a loop device that has 4096-byte sectors (losetup
// --sector-size), as it would on a real 4Kn disk.
func buildGPT4Kn(t testing.TB) gptDisk {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "losetup")
	p := sparseFile(t, "gpt4kn.img", diskMiB<<20)
	dev := loopAttach(t, p, "--sector-size", "4096")
	testutil.Run(t, testutil.RequireTool(t, "sgdisk"), append([]string{"--set-alignment=256"}, append(windowsGPTArgs, dev)...)...)
	d := fillGPT(t, p, dev, 4096)
	return d
}

// fillGPT lists the table of a disk just partitioned (through dev, which
// may be a loop device over path) and formats partitions 1 and 3.
func fillGPT(t testing.TB, path, dev string, ss int) gptDisk {
	t.Helper()
	sg := sgdiskList(t, dev)
	if sg.sectorSize != ss {
		t.Fatalf("sgdisk sees %d-byte sectors on %s, want %d", sg.sectorSize, dev, ss)
	}
	d := gptDisk{path: path, sg: sg}
	for _, p := range sg.parts {
		off := int64(p.start) * int64(ss)
		size := int64(p.end-p.start+1) * int64(ss)
		switch p.index {
		case 1:
			copyInto(t, path, makeFAT(t, size, ss), off)
		case 3:
			copyInto(t, path, makeNTFS(t, size, ss), off)
			d.ntfsAt = off
		}
	}
	return d
}

// loopAttach attaches path to a free loop device with extra losetup
// options and detaches it when the test ends.
func loopAttach(t testing.TB, path string, opts ...string) string {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "losetup")
	args := append([]string{"--find", "--show"}, opts...)
	args = append(args, path)
	cmd := exec.Command("losetup", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		testutil.Unavailable(t, "losetup %v: %v: %s (loop devices are needed for 4Kn images)", args, err, stderr.String())
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

// toFixedVHD converts a raw image to a fixed VHD with qemu-img, keeping the
// exact size (force_size: no CHS rounding), so the data area is
// byte-identical to the raw image.
func toFixedVHD(t testing.TB, raw string) string {
	t.Helper()
	qemu := testutil.RequireTool(t, "qemu-img")
	out := filepath.Join(t.TempDir(), "disk.vhd")
	testutil.Run(t, qemu, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size=on", raw, out)
	return out
}
