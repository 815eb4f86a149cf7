package hive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf16"

	ftime "github.com/wuoffline/wuoffline/internal/filetime"
)

// BaseBlockSize is the size of a primary hive file's base block ("regf"
// header). Hive-bins data starts right after it, at file offset 4096, and
// every cell offset in the hive is relative to that point.
const BaseBlockSize = 4096

// logBaseBlockSize is the part of a base block that a transaction log
// (.LOG1/.LOG2) carries: only the first 512 bytes (one sector). The checksum
// covers the first 508 of them, so nothing after 512 is meaningful in a log.
const logBaseBlockSize = 512

// Base-block field offsets (formats.md, "Base block").
const (
	bbOffSignature   = 0
	bbOffSequence1   = 4
	bbOffSequence2   = 8
	bbOffLastWritten = 12
	bbOffMajor       = 20
	bbOffMinor       = 24
	bbOffFileType    = 28
	bbOffFormat      = 32
	bbOffRootCell    = 36
	bbOffHiveBins    = 40
	bbOffClustering  = 44
	bbOffName        = 48
	bbNameLen        = 64
	bbOffChecksum    = 508
)

// File types found at base-block offset 28.
const (
	fileTypePrimary = 0 // a hive proper
	fileTypeLogOld  = 1 // transaction log, old format (DIRT bitmap), up to Windows 8
	fileTypeLogNew  = 6 // transaction log, new format (HvLE entries), Windows 8.1+
)

// ErrBaseBlock is wrapped by every error that ParseBaseBlock returns:
// the bytes are not a usable regf base block.
var ErrBaseBlock = errors.New("hive: bad base block")

// BaseBlock is the decoded header of a hive file or of a transaction log.
type BaseBlock struct {
	// Sequence1 (primary) is incremented before Windows starts writing
	// dirty data to the primary file; Sequence2 (secondary) is set equal to
	// it once the write is complete. Different values mean an interrupted
	// write: the file must be recovered from its logs.
	Sequence1, Sequence2 uint32
	// LastWritten is the FILETIME at offset 12; the zero time when the
	// field is 0.
	LastWritten time.Time
	// Major and Minor are the format version (1.3 to 1.6 are supported).
	Major, Minor uint32
	// FileType is 0 for a primary file, 1 for an old-format log and 6 for
	// a new-format log.
	FileType uint32
	// Format is 1 (direct memory load) in every real hive.
	Format uint32
	// RootCell is the root key's cell offset, relative to file offset 4096.
	RootCell uint32
	// HiveBinsSize is the declared size of the hive-bins data, in bytes.
	HiveBinsSize uint32
	// Clustering is the clustering factor, always 1.
	Clustering uint32
	// Name is the file-name hint at offset 48 (UTF-16LE, up to 32 code
	// units, often a tail of the hive's path), without trailing NULs.
	Name string
	// Checksum is the stored value at offset 508.
	Checksum uint32
	// ChecksumOK is true when Checksum equals Checksum(b) of the parsed
	// bytes.
	ChecksumOK bool
}

// ParseBaseBlock decodes a base block. b must hold at least the first 512
// bytes (what a log file carries, and all that the checksum covers); a
// primary's base block is BaseBlockSize bytes. It checks the "regf"
// signature and the version (major 1, minor 3 to 6, format 1) and records
// whether the checksum matches rather than failing on it, because a bad
// checksum only means "dirty": the logs may repair it.
func ParseBaseBlock(b []byte) (*BaseBlock, error) {
	if len(b) < logBaseBlockSize {
		return nil, fmt.Errorf("%w: %d bytes, need at least %d", ErrBaseBlock, len(b), logBaseBlockSize)
	}
	if string(b[bbOffSignature:bbOffSignature+4]) != "regf" {
		return nil, fmt.Errorf("%w: signature %q, want \"regf\"", ErrBaseBlock, b[:4])
	}
	le := binary.LittleEndian
	bb := &BaseBlock{
		Sequence1:    le.Uint32(b[bbOffSequence1:]),
		Sequence2:    le.Uint32(b[bbOffSequence2:]),
		LastWritten:  ftime.ToTime(le.Uint64(b[bbOffLastWritten:])),
		Major:        le.Uint32(b[bbOffMajor:]),
		Minor:        le.Uint32(b[bbOffMinor:]),
		FileType:     le.Uint32(b[bbOffFileType:]),
		Format:       le.Uint32(b[bbOffFormat:]),
		RootCell:     le.Uint32(b[bbOffRootCell:]),
		HiveBinsSize: le.Uint32(b[bbOffHiveBins:]),
		Clustering:   le.Uint32(b[bbOffClustering:]),
		Name:         decodeBaseBlockName(b[bbOffName : bbOffName+bbNameLen]),
		Checksum:     le.Uint32(b[bbOffChecksum:]),
	}
	bb.ChecksumOK = bb.Checksum == Checksum(b)
	if bb.Major != 1 || bb.Minor < 3 || bb.Minor > 6 {
		return nil, fmt.Errorf("%w: unsupported version %d.%d (want 1.3 to 1.6)", ErrBaseBlock, bb.Major, bb.Minor)
	}
	if bb.Format != 1 {
		return nil, fmt.Errorf("%w: file format %d, want 1", ErrBaseBlock, bb.Format)
	}
	return bb, nil
}

// Dirty reports whether the file needs recovery from its logs: the two
// sequence numbers differ (an interrupted write) or the checksum is wrong.
func (b *BaseBlock) Dirty() bool {
	return b.Sequence1 != b.Sequence2 || !b.ChecksumOK
}

// Checksum computes the base-block checksum of b (at least 508 bytes): the
// XOR of the first 127 little-endian dwords, except that 0xFFFFFFFF is
// stored as 0xFFFFFFFE and 0 as 1 (so that neither an all-ones nor an
// all-zero block can look valid). It returns 0 if b is too short.
func Checksum(b []byte) uint32 {
	if len(b) < bbOffChecksum {
		return 0
	}
	var x uint32
	for i := 0; i < bbOffChecksum; i += 4 {
		x ^= binary.LittleEndian.Uint32(b[i:])
	}
	switch x {
	case 0xFFFFFFFF:
		return 0xFFFFFFFE
	case 0:
		return 1
	}
	return x
}

// putBaseBlockChecksum recomputes and stores the checksum of base block b.
func putBaseBlockChecksum(b []byte) {
	binary.LittleEndian.PutUint32(b[bbOffChecksum:], Checksum(b))
}

// decodeBaseBlockName decodes the UTF-16LE file-name hint, stopping at the
// first NUL.
func decodeBaseBlockName(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}
