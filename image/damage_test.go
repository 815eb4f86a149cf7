package image

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"strings"
	"testing"
)

// patchFile applies f to the bytes of the file at p.
func patchFile(t *testing.T, p string, f func(b []byte)) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	f(b)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// resealGPT recomputes the entry array CRC and the header CRC of the GPT
// header at hdr (512-byte sectors), as a tool that wrote it would have.
func resealGPT(b []byte, hdr int) {
	h := b[hdr : hdr+512]
	lba := binary.LittleEndian.Uint64(h[72:])
	n := binary.LittleEndian.Uint32(h[80:]) * binary.LittleEndian.Uint32(h[84:])
	if int(lba)*512+int(n) <= len(b) {
		binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(b[lba*512:lba*512+uint64(n)]))
	}
	clear(h[16:20])
	binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
}

// mbrEntry writes MBR entry i (0-3) of the sector at b.
func mbrEntry(b []byte, i int, typ byte, start, count uint32) {
	e := b[446+16*i:]
	e[4] = typ
	binary.LittleEndian.PutUint32(e[8:], start)
	binary.LittleEndian.PutUint32(e[12:], count)
	b[510], b[511] = 0x55, 0xAA
}

func TestDamagedGPT(t *testing.T) {
	const mib = 1 << 20
	last := func(b []byte) int { return len(b) - 512 }
	tests := []struct {
		name     string
		truncate int64 // new size, 0 to keep
		patch    func(b []byte)
		err      string         // substring of Open's error; "" for success
		warn     string         // substring of a warning
		damaged  map[int]string // partition index => substring of Damaged
	}{
		{
			name:     "truncated image",
			truncate: 60 * mib,
			warn:     "backup GPT",
			damaged:  map[int]string{4: "beyond the end of the disk"},
		},
		{
			name:  "primary header wiped",
			patch: func(b []byte) { clear(b[512:1024]) },
			warn:  "read from the backup GPT",
		},
		{
			name:  "primary entries corrupted",
			patch: func(b []byte) { b[1024+56] ^= 0xFF },
			warn:  "entry array's CRC32",
		},
		{
			name:  "both copies damaged",
			patch: func(b []byte) { b[1024+56] ^= 0xFF; clear(b[last(b) : last(b)+8]) },
			err:   "damaged",
		},
		{
			name: "absurd entry count",
			patch: func(b []byte) {
				binary.LittleEndian.PutUint32(b[512+80:], 1<<30)
				clear(b[512+16 : 512+20])
				binary.LittleEndian.PutUint32(b[512+16:], crc32.ChecksumIEEE(b[512:512+92]))
			},
			err: "partition entries is not plausible",
		},
		{
			name: "entry array beyond the disk",
			patch: func(b []byte) {
				binary.LittleEndian.PutUint64(b[512+72:], 1<<40)
				clear(b[512+16 : 512+20])
				binary.LittleEndian.PutUint32(b[512+16:], crc32.ChecksumIEEE(b[512:512+92]))
			},
			err: "not within the disk",
		},
		{
			name: "overlapping partitions",
			patch: func(b []byte) {
				// Partition 2 starts inside partition 1 (sgdisk put 1 at
				// LBA 2048-18431); both copies are resealed.
				binary.LittleEndian.PutUint64(b[1024+128+32:], 10000)
				resealGPT(b, 512)
				clear(b[last(b) : last(b)+8])
			},
			warn:    "backup GPT",
			damaged: map[int]string{1: "overlaps partition 2", 2: "overlaps partition 1"},
		},
		{
			name: "partition ends before it starts",
			patch: func(b []byte) {
				binary.LittleEndian.PutUint64(b[1024+3*128+40:], 5)
				resealGPT(b, 512)
				clear(b[last(b) : last(b)+8])
			},
			warn:    "backup GPT",
			damaged: map[int]string{4: "before it starts"},
		},
		{
			name:  "protective MBR without any GPT",
			patch: func(b []byte) { clear(b[512:1024]); clear(b[last(b):]) },
			err:   "protective",
		},
	}
	base := buildGPT512(t)
	orig, err := os.ReadFile(base.path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := sparseFile(t, "damaged.img", 0)
			if err := os.WriteFile(p, orig, 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.truncate != 0 {
				if err := os.Truncate(p, tc.truncate); err != nil {
					t.Fatal(err)
				}
			}
			if tc.patch != nil {
				patchFile(t, p, tc.patch)
			}
			tg, err := Open(p, Options{Writable: true})
			if tc.err != "" {
				if err == nil {
					tg.Close()
					t.Fatalf("Open succeeded: %+v", tg)
				}
				if !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %q lacks %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			if !strings.Contains(strings.Join(tg.Warnings, "\n"), tc.warn) {
				t.Errorf("warnings %q lack %q", tg.Warnings, tc.warn)
			}
			if len(tg.Volumes) != 4 {
				t.Fatalf("%d volumes, want 4: %+v", len(tg.Volumes), tg.Volumes)
			}
			for _, v := range tg.Volumes {
				want := tc.damaged[v.Index]
				if (want == "") != (v.Damaged == "") || !strings.Contains(v.Damaged, want) {
					t.Errorf("partition %d: Damaged %q, want %q", v.Index, v.Damaged, want)
				}
				if v.Offset < 0 || v.Size < 0 || v.Offset+v.Size > tg.Size {
					t.Errorf("partition %d (%d+%d) is reported outside the %d-byte disk", v.Index, v.Offset, v.Size, tg.Size)
				}
				_, werr := tg.WriterAt(v)
				if (v.Damaged != "") != (werr != nil) {
					t.Errorf("partition %d: WriterAt error %v with Damaged %q", v.Index, werr, v.Damaged)
				}
			}
		})
	}
}

func TestDamagedMBR(t *testing.T) {
	const sectors = 16384 // an 8 MiB disk
	tests := []struct {
		name    string
		build   func(b []byte)
		warn    string
		damaged map[int]string
		count   int
	}{
		{
			name: "beyond the disk",
			build: func(b []byte) {
				mbrEntry(b, 0, 0x07, 2048, 4096)
				mbrEntry(b, 1, 0x07, 8192, 16384)
			},
			damaged: map[int]string{2: "beyond the end"},
			count:   2,
		},
		{
			name: "overlap",
			build: func(b []byte) {
				mbrEntry(b, 0, 0x07, 2048, 4096)
				mbrEntry(b, 1, 0x27, 4096, 4096)
			},
			damaged: map[int]string{1: "overlaps partition 2", 2: "overlaps partition 1"},
			count:   2,
		},
		{
			name: "over the MBR",
			build: func(b []byte) {
				mbrEntry(b, 0, 0x07, 0, 100)
			},
			damaged: map[int]string{1: "over the MBR"},
			count:   1,
		},
		{
			name: "EBR chain loops",
			build: func(b []byte) {
				mbrEntry(b, 0, 0x05, 2048, 8192)
				ebr := b[2048*512:]
				mbrEntry(ebr, 0, 0x07, 1, 1024)
				mbrEntry(ebr, 1, 0x05, 2048, 2048) // next EBR at 2048+2048...
				ebr2 := b[4096*512:]
				mbrEntry(ebr2, 0, 0x07, 1, 1024)
				mbrEntry(ebr2, 1, 0x05, 2048, 2048) // ...which points to itself
			},
			warn:  "loops",
			count: 3,
		},
		{
			name: "EBR chain leaves the extended partition",
			build: func(b []byte) {
				mbrEntry(b, 0, 0x0F, 2048, 4096)
				ebr := b[2048*512:]
				mbrEntry(ebr, 0, 0x07, 1, 1024)
				mbrEntry(ebr, 1, 0x05, 9000, 100)
			},
			warn:  "outside the extended partition",
			count: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := make([]byte, sectors*512)
			tc.build(b)
			p := sparseFile(t, "mbr.img", 0)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			tg, err := Open(p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			if tg.Table != "mbr" || len(tg.Volumes) != tc.count {
				t.Fatalf("table %q, %d volumes, want mbr, %d: %+v", tg.Table, len(tg.Volumes), tc.count, tg.Volumes)
			}
			if !strings.Contains(strings.Join(tg.Warnings, "\n"), tc.warn) {
				t.Errorf("warnings %q lack %q", tg.Warnings, tc.warn)
			}
			for _, v := range tg.Volumes {
				want := tc.damaged[v.Index]
				if (want == "") != (v.Damaged == "") || !strings.Contains(v.Damaged, want) {
					t.Errorf("partition %d: Damaged %q, want %q", v.Index, v.Damaged, want)
				}
				if v.Offset < 0 || v.Size < 0 || v.Offset+v.Size > tg.Size {
					t.Errorf("partition %d (%d+%d) is reported outside the %d-byte disk", v.Index, v.Offset, v.Size, tg.Size)
				}
			}
		})
	}
}
