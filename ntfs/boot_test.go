package ntfs

import (
	"errors"
	"os"
	"testing"
)

func TestParseBootSectorFixtures(t *testing.T) {
	tests := []struct {
		fixture                string
		cluster, record, index uint32
		mft, mirr              uint64
	}{
		// fsstat: charlie 4096-byte clusters, MFT at 3157, mirror at 2,
		// 1024-byte records, 4096-byte index records.
		{"charlie", 4096, 1024, 4096, 3157, 2},
	}
	for _, tt := range tests {
		img := rdFixtureImage(t, tt.fixture)
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		bs, err := ParseBootSector(b[:512])
		if err != nil {
			t.Fatal(err)
		}
		if bs.ClusterSize != tt.cluster || bs.RecordSize != tt.record || bs.IndexBlockSize != tt.index || bs.MFTCluster != tt.mft || bs.MFTMirrCluster != tt.mirr {
			t.Errorf("%s: %+v", tt.fixture, bs)
		}
	}
}

func TestParseBootSectorErrors(t *testing.T) {
	good := make([]byte, 512)
	copy(good[3:], "NTFS    ")
	putLE16(good[0x0B:], 512)
	good[0x0D] = 8
	putLE64(good[0x28:], 1<<20)
	putLE64(good[0x30:], 4)
	putLE64(good[0x38:], 8)
	good[0x40] = 0xF6 // -10: 1024-byte records
	good[0x44] = 1
	good[0x1FE], good[0x1FF] = 0x55, 0xAA
	if _, err := ParseBootSector(good); err != nil {
		t.Fatalf("good: %v", err)
	}
	mod := func(f func(b []byte)) []byte { b := append([]byte(nil), good...); f(b); return b }
	tests := []struct {
		name string
		b    []byte
		is   error
	}{
		{"bitlocker", mod(func(b []byte) { copy(b[3:], "-FVE-FS-") }), ErrBitLocker},
		{"fat", mod(func(b []byte) { copy(b[3:], "MSDOS5.0") }), ErrNotNTFS},
		{"short", good[:100], nil},
		{"no-55aa", mod(func(b []byte) { b[0x1FF] = 0 }), nil},
		{"sector-size", mod(func(b []byte) { putLE16(b[0x0B:], 500) }), nil},
		{"cluster-zero", mod(func(b []byte) { b[0x0D] = 0 }), nil},
		{"mft-outside", mod(func(b []byte) { putLE64(b[0x30:], 1<<40) }), nil},
		{"record-size", mod(func(b []byte) { b[0x40] = 0 }), nil},
	}
	for _, tt := range tests {
		_, err := ParseBootSector(tt.b)
		if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.is)
		}
	}
}

// FuzzBootSector: ParseBootSector never panics, and what it accepts is
// self-consistent (the sizes later code trusts). Seeds: the boot sectors of
// the Windows 10 fixture and of a mkntfs volume (testdata/fuzz).
func FuzzBootSector(f *testing.F) {
	f.Add(make([]byte, 512))
	f.Fuzz(func(t *testing.T, b []byte) {
		bs, err := ParseBootSector(b)
		if err != nil {
			return
		}
		if bs.ClusterSize != bs.SectorsPerCluster*bs.BytesPerSector || bs.ClusterSize == 0 ||
			bs.RecordSize < 256 || bs.RecordSize > 65536 || bs.IndexBlockSize < 512 || bs.IndexBlockSize > 65536 ||
			bs.MFTCluster >= bs.TotalClusters() || bs.MFTMirrCluster >= bs.TotalClusters() || bs.VolumeSize() <= 0 {
			t.Fatalf("accepted inconsistent boot sector: %+v", bs)
		}
	})
}
