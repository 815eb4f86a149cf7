package hive

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// TestParseBaseBlockFixtures checks ParseBaseBlock against the header
// summary of the yarp fixtures (EXPECTED.md, "Header summary").
func TestParseBaseBlockFixtures(t *testing.T) {
	for _, tc := range []struct {
		file             string
		seq1, seq2       uint32
		minor, fileType  uint32
		hiveBins         uint32
		checksumOK, dirt bool
		badVersion       bool // minor outside 3..6: refused
	}{
		{file: "NewDirtyHive1/NewDirtyHive", seq1: 3, seq2: 2, minor: 3, hiveBins: 20480, checksumOK: true, dirt: true},
		{file: "NewDirtyHive1/NewDirtyHive.LOG1", seq1: 2, seq2: 2, minor: 3, fileType: 6, hiveBins: 20480, checksumOK: true},
		{file: "NewDirtyHive1/NewDirtyHive.LOG2", seq1: 3, seq2: 3, minor: 3, fileType: 6, hiveBins: 20480, checksumOK: true},
		{file: "NewDirtyHive1/RecoveredHive_Windows10", seq1: 6, seq2: 6, minor: 3, hiveBins: 20480, checksumOK: true},
		{file: "OldDirtyHive/OldDirtyHive", seq1: 5, seq2: 4, minor: 3, hiveBins: 487424, checksumOK: true, dirt: true},
		{file: "OldDirtyHive/OldDirtyHive.LOG1", seq1: 5, seq2: 5, minor: 3, fileType: 1, hiveBins: 487424, checksumOK: true},
		{file: "OldDirtyHive/RecoveredHive_Windows7", seq1: 7, seq2: 7, minor: 3, hiveBins: 487424, checksumOK: true},
		{file: "BadLogHive1/BadLogHive.LOG1", seq1: 5, seq2: 5, minor: 3, fileType: 1, hiveBins: 487424, dirt: true},
		{file: "BadLogHive3/BadLogHive.LOG2", seq1: 3, seq2: 3, minor: 3, fileType: 6, hiveBins: 20480, dirt: true},
		{file: "BadBaseBlockHive/BadBaseBlockHive", badVersion: true},
		{file: "EffectiveSizeHive", seq1: 4, seq2: 4, minor: 3, hiveBins: 4096, dirt: true},
		{file: "GarbageHive", seq1: 2, seq2: 2, minor: 3, hiveBins: 4096, dirt: true},
		{file: "TruncatedDirtyHive", seq1: 5, seq2: 4, minor: 3, hiveBins: 487424, checksumOK: true, dirt: true},
		{file: "BigDataHive", seq1: 4, seq2: 4, minor: 5, hiveBins: 143360, checksumOK: true},
		{file: "System_Delta", seq1: 6, seq2: 6, minor: 6, hiveBins: 131072, checksumOK: true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b := yarpFile(t, tc.file)
			bb, err := ParseBaseBlock(b)
			if tc.badVersion {
				if !errors.Is(err, ErrBaseBlock) {
					t.Fatalf("got %+v, %v; want ErrBaseBlock", bb, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if bb.Sequence1 != tc.seq1 || bb.Sequence2 != tc.seq2 || bb.Major != 1 || bb.Minor != tc.minor ||
				bb.FileType != tc.fileType || bb.Format != 1 || bb.RootCell != 0x20 || bb.HiveBinsSize != tc.hiveBins ||
				bb.Clustering != 1 || bb.ChecksumOK != tc.checksumOK || bb.Dirty() != tc.dirt {
				t.Errorf("got %+v (dirty %v)", bb, bb.Dirty())
			}
		})
	}
}

// TestParseBaseBlockFields checks the decoding of the time and name fields
// and the refusals.
func TestParseBaseBlockFields(t *testing.T) {
	b := yarpFile(t, "EmptyHive")
	bb, err := ParseBaseBlock(b)
	if err != nil {
		t.Fatal(err)
	}
	// EXPECTED.md: last written 131331190512216222 (2017-03-04 16:37:31 UTC).
	if want := time.Date(2017, 3, 4, 16, 37, 31, 221622200, time.UTC); !bb.LastWritten.Equal(want) {
		t.Errorf("LastWritten %v, want %v", bb.LastWritten, want)
	}
	if bb.Name == "" {
		t.Error("empty file-name hint")
	}
	sd := yarpFile(t, "System_Delta") // last-written field is 0
	if bb, err := ParseBaseBlock(sd); err != nil || !bb.LastWritten.IsZero() {
		t.Errorf("zero FILETIME: %v, %v", bb, err)
	}

	mod := func(f func([]byte)) []byte {
		c := append([]byte(nil), b[:BaseBlockSize]...)
		f(c)
		return c
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"short", b[:511]},
		{"signature", mod(func(c []byte) { copy(c, "hbin") })},
		{"major 2", mod(func(c []byte) { binary.LittleEndian.PutUint32(c[bbOffMajor:], 2) })},
		{"minor 2", mod(func(c []byte) { binary.LittleEndian.PutUint32(c[bbOffMinor:], 2) })},
		{"minor 7", mod(func(c []byte) { binary.LittleEndian.PutUint32(c[bbOffMinor:], 7) })},
		{"format 2", mod(func(c []byte) { binary.LittleEndian.PutUint32(c[bbOffFormat:], 2) })},
	} {
		if bb, err := ParseBaseBlock(tc.b); !errors.Is(err, ErrBaseBlock) {
			t.Errorf("%s: got %+v, %v; want ErrBaseBlock", tc.name, bb, err)
		}
	}
}

// TestChecksum covers the two remapped results.
func TestChecksum(t *testing.T) {
	b := make([]byte, 512)
	if got := Checksum(b); got != 1 {
		t.Errorf("all zero: %#x, want 1", got)
	}
	binary.LittleEndian.PutUint32(b[0:], 0xFFFFFFFF)
	if got := Checksum(b); got != 0xFFFFFFFE {
		t.Errorf("all ones: %#x, want 0xFFFFFFFE", got)
	}
	binary.LittleEndian.PutUint32(b[508:], 0x12345678) // not covered
	binary.LittleEndian.PutUint32(b[4:], 0x0F0F0F0F)
	if got := Checksum(b); got != 0xF0F0F0F0 {
		t.Errorf("%#x, want 0xF0F0F0F0", got)
	}
	if got := Checksum(b[:100]); got != 0 {
		t.Errorf("short: %#x, want 0", got)
	}
}

// FuzzBaseBlock parses arbitrary base blocks: no panic, and the checksum
// verdict agrees with Checksum.
func FuzzBaseBlock(f *testing.F) {
	for _, rel := range []string{
		"NewDirtyHive1/NewDirtyHive", "NewDirtyHive1/NewDirtyHive.LOG1", "OldDirtyHive/OldDirtyHive.LOG1",
		"BadBaseBlockHive/BadBaseBlockHive", "EffectiveSizeHive", "System_Delta", "OffHive",
	} {
		b := yarpFile(f, rel)
		f.Add(b[:min(len(b), BaseBlockSize)])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		bb, err := ParseBaseBlock(b)
		if err != nil {
			if bb != nil {
				t.Fatal("base block returned with an error")
			}
			return
		}
		if bb.ChecksumOK != (Checksum(b) == binary.LittleEndian.Uint32(b[bbOffChecksum:])) {
			t.Fatal("ChecksumOK disagrees with Checksum")
		}
		if bb.Dirty() != (bb.Sequence1 != bb.Sequence2 || !bb.ChecksumOK) {
			t.Fatal("Dirty disagrees with its definition")
		}
	})
}
