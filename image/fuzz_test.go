package image

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// sparseDisk is a disk image held as its first and last bytes with zeros
// between, so that fuzz inputs stay small while tables can point far into
// a large disk and a backup GPT can sit at its end.
type sparseDisk struct {
	head, tail []byte
	size       int64
}

func newSparseDisk(head, tail []byte, gapSectors uint32) sparseDisk {
	gap := int64(gapSectors%(1<<21)) * 512 // at most 1 GiB of zeros
	return sparseDisk{head: head, tail: tail, size: int64(len(head)) + gap + int64(len(tail))}
}

func (d sparseDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if off >= d.size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > d.size-off {
		n = int(d.size - off)
	}
	clear(p[:n])
	copy(p[:n], d.head[min(off, int64(len(d.head))):])
	tailStart := d.size - int64(len(d.tail))
	if off+int64(n) > tailStart {
		from := max(off, tailStart)
		copy(p[from-off:n], d.tail[from-tailStart:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// seedDisks are the committed seeds in testdata/seeds: the first and last
// 64 KiB of disks built by sgdisk (512-byte and 4Kn GPT, the 512 one also
// as a fixed VHD made by qemu-img), a whole 256 KiB disk with an MBR and an
// extended partition made by sfdisk, and the start of an mkntfs volume.
var seedDisks = []struct {
	file string
	head int   // bytes of the file that are the head; the rest is the tail
	size int64 // the disk's size
}{
	{"gpt512.gz", 64 << 10, 64 << 20},
	{"gpt4kn.gz", 64 << 10, 64 << 20},
	{"gpt512-vhd.gz", 64 << 10, 64<<20 + 512},
	{"mbr-ebr-tiny.gz", 256 << 10, 256 << 10},
	{"ntfs-volume.gz", 64 << 10, 16 << 20},
}

// readSeed reads a gzipped seed image of testdata/seeds (at most 1 MiB).
func readSeed(t testing.TB, name string) []byte { return readSeedLimit(t, name, 1<<20) }

// readSeedLimit reads a gzipped seed image of testdata/seeds, at most limit
// bytes of it.
func readSeedLimit(t testing.TB, name string, limit int64) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "seeds", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(io.LimitReader(zr, limit))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkTarget asserts what must hold for any input: every volume lies
// within the disk data, and reading through its reader stays there.
func checkTarget(t *testing.T, tg *Target) {
	if tg.Size < 0 {
		t.Fatalf("negative size %d", tg.Size)
	}
	if tg.Kind == KindDisk && tg.SectorSize != 512 && tg.SectorSize != 4096 {
		t.Fatalf("disk with sector size %d", tg.SectorSize)
	}
	buf := make([]byte, 512)
	for _, v := range tg.Volumes {
		if v.Offset < 0 || v.Size < 0 || v.Offset > tg.Size || v.Size > tg.Size-v.Offset {
			t.Fatalf("volume %d (%d+%d) outside the %d-byte disk", v.Index, v.Offset, v.Size, tg.Size)
		}
		r := tg.ReaderAt(v)
		if r.Size() != v.Size {
			t.Fatalf("volume %d: reader of %d bytes, volume of %d", v.Index, r.Size(), v.Size)
		}
		r.ReadAt(buf, 0)
		r.ReadAt(buf, max(0, v.Size-512))
	}
}

// FuzzPartitionTable opens arbitrary bytes as a disk image (its head and
// tail, zeros between) and checks that every reported volume lies within
// the disk. It must never panic, hang or allocate by what a header claims.
func FuzzPartitionTable(f *testing.F) {
	for _, s := range seedDisks {
		b := readSeed(f, s.file)
		head, tail := b[:min(s.head, len(b))], b[min(s.head, len(b)):]
		gap := (s.size - int64(len(b))) / 512
		f.Add(head, tail, uint32(gap), false)
	}
	f.Fuzz(func(t *testing.T, head, tail []byte, gap uint32, dev4k bool) {
		d := newSparseDisk(head, tail, gap)
		devSector := 0
		if dev4k {
			devSector = 4096
		}
		tg, err := probe(d, d.size, devSector)
		if err != nil {
			return
		}
		checkTarget(t, tg)
	})
}

// FuzzIdentify runs Identify on arbitrary bytes: any answer but a panic.
func FuzzIdentify(f *testing.F) {
	for _, s := range seedDisks {
		b := readSeed(f, s.file)
		f.Add(b[:min(len(b), 8192)])
	}
	for _, sig := range [][]byte{sigRegf, sigVHD, sigVHDX, sigQCOW, sigVMDK, sigVMDKDesc, sigWIM} {
		f.Add(append(append([]byte{}, sig...), make([]byte, 1024)...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := Identify(bytes.NewReader(b), int64(len(b)))
		if err == nil && (id.DataSize < 0 || id.DataSize > int64(len(b))) {
			t.Fatalf("data size %d of a %d-byte input", id.DataSize, len(b))
		}
	})
}

// TestSeedDisks opens each seed as a disk and checks what it holds, so the
// seeds are known to reach the table readers.
func TestSeedDisks(t *testing.T) {
	want := map[string]struct {
		table   string
		volumes int
		format  string
	}{
		"gpt512.gz":       {"gpt", 4, FormatRaw},
		"gpt4kn.gz":       {"gpt", 4, FormatRaw},
		"gpt512-vhd.gz":   {"gpt", 4, FormatVHDFixed},
		"mbr-ebr-tiny.gz": {"mbr", 5, FormatRaw},
		"ntfs-volume.gz":  {"", 1, FormatRaw},
	}
	for _, s := range seedDisks {
		t.Run(s.file, func(t *testing.T) {
			b := readSeed(t, s.file)
			head, tail := b[:min(s.head, len(b))], b[min(s.head, len(b)):]
			d := newSparseDisk(head, tail, uint32((s.size-int64(len(b)))/512))
			if d.size != s.size {
				t.Fatalf("sparse disk of %d bytes, want %d", d.size, s.size)
			}
			tg, err := probe(d, d.size, 0)
			if err != nil {
				t.Fatal(err)
			}
			checkTarget(t, tg)
			w := want[s.file]
			if tg.Table != w.table || len(tg.Volumes) != w.volumes || tg.Format != w.format || len(tg.Warnings) != 0 {
				t.Errorf("table %q, %d volumes, format %q, warnings %q; want %q, %d, %q", tg.Table, len(tg.Volumes), tg.Format, tg.Warnings, w.table, w.volumes, w.format)
			}
			for _, v := range tg.Volumes {
				if v.Damaged != "" {
					t.Errorf("volume %d damaged: %s", v.Index, v.Damaged)
				}
			}
		})
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.ReaderAt
	n int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

// BenchmarkProbe measures identifying a disk and reading its table (the
// 512-byte GPT seed: 4 partitions), with the bytes it reads per open.
func BenchmarkProbe(b *testing.B) {
	s := seedDisks[0]
	raw := readSeed(b, s.file)
	d := newSparseDisk(raw[:s.head], raw[s.head:], uint32((s.size-int64(len(raw)))/512))
	c := &countingReader{r: d}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := probe(c, d.size, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(c.n)/float64(b.N), "bytes-read/op")
}
