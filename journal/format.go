package journal

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// magic starts every journal file; the format version is in the header.
const magic = "WUOJRNL\x00"

// Version is the journal format version this package writes. It also
// reads versions 1 (no Seq) and 2 (no units, sizes or coordinate space).
const Version = 3

// Frame types (see the package documentation).
const (
	frameHeader    = 'H'
	frameWrite     = 'W'
	framePrepared  = 'P'
	frameCommitted = 'C'
	frameUndone    = 'U'
)

const (
	frameHead = 8 // type, reserved[3], length
	frameTail = 4 // crc32c
	// writeFixedV2 is the fixed part of a version 1 and 2 'W' payload:
	// offset i64, length u32, label length u16.
	writeFixedV2 = 8 + 4 + 2
	// writeFixed is the fixed part of a version 3 'W' payload: offset i64,
	// length u32, flags u16, unit count u16, group u32, index in group u32,
	// ranges in group u32, journal id u64.
	writeFixed     = 8 + 4 + 2 + 2 + 4 + 4 + 4 + 8
	preparedSizeV2 = 4 + 8 + sha256.Size
	// preparedSize (version 3) adds the group and unit counts.
	preparedSize = 4 + 8 + 4 + 4 + sha256.Size
	markSize     = 8       // 'C': time
	undoneSizeV2 = 8 + 4*4 // 'U': time, restored, already, changed, lost
	// undoneSize (version 3) adds left, units restored, units left.
	undoneSize = 8 + 7*4
	maxHeader  = 16 + 12*8 + 5*(2+maxString)
	maxString  = 4096 // header strings (paths, names) and unit labels are cut to this
	maxLabel   = 1<<16 - 1
	// maxRecord bounds one saved range; larger ranges are saved in parts.
	// 1 GiB of old plus 1 GiB of new bytes still fits the u32 payload
	// length.
	maxRecord = 1 << 30
	// flagGrown marks a version 3 range past the target's old size: it
	// has no old bytes.
	flagGrown = 1
	// defaultBlock groups ranges of version 1 and 2 journals and of
	// overlays with no alignment: the smallest sector.
	defaultBlock = 512
)

// castagnoli is the CRC-32C table; crc32.MakeTable returns a shared,
// read-only table for this polynomial.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// VolumeID is what identifies a volume across boots and device names. Two
// journals belong to the same volume when all three fields are equal.
type VolumeID struct {
	// Serial is the file system's volume serial number (NTFS: the boot
	// sector's 64-bit serial at offset 0x48).
	Serial uint64
	// Size is the volume's size in bytes.
	Size int64
	// Name tells apart volumes that share a serial because they were cloned
	// (hundreds of VM disks made from one template): the image file's base
	// name for an image file, "" for a block device or a drive letter, whose
	// names are not stable across boots.
	Name string
}

// Same reports whether a and b identify the same volume. Names compare
// case-insensitively, as Windows compares file names.
func (a VolumeID) Same(b VolumeID) bool {
	return a.Serial == b.Serial && a.Size == b.Size && strings.EqualFold(a.Name, b.Name)
}

// Coordinate spaces of a journal's ranges (Header.Space).
const (
	// SpaceVolume: offsets from the start of the volume; Header.Offset
	// says where the volume lies in the target. Every version 1 and 2
	// journal is in this space.
	SpaceVolume = "volume"
	// SpaceFile: offsets in the target itself, the image file or device
	// byte for byte (container metadata included), as the session layer
	// journals through image.Target.Over.
	SpaceFile = "file"
)

// Header describes a journal: the volume it belongs to and who made it.
type Header struct {
	ID      VolumeID
	Target  string    // the TARGET as the user gave it, for reports ("/dev/sdb", "disk.img", `\\.\D:`)
	Offset  int64     // the volume's offset inside the target, for reports
	Tool    string    // the tool and version that wrote the journal
	Note    string    // what the change is ("fix services, wu-policies")
	Created time.Time // when the journal was created (UTC), by the rescue machine's clock
	// Seq orders the journals of one volume: [Create] sets it to one more
	// than the largest Seq among the volume's journals in the directory
	// (a value given is ignored). Undo order relies on it, not on Created:
	// the clock of a rescue system (WinPE, a live USB) is often wrong and
	// may be set back between two fixes. 0 for a version 1 journal.
	Seq uint64
	// Space is the coordinate space of the ranges: [SpaceVolume] or
	// [SpaceFile]. "" is written as SpaceVolume; version 1 and 2 journals
	// read as SpaceVolume.
	Space string
	// OldSize and NewSize are the target's size (in Space) before and
	// after the change; NewSize > OldSize when the change grew it (a
	// container appended clusters): ranges past OldSize have no original
	// bytes, and undo truncates the target back to OldSize. [Commit] sets
	// both from the overlay. 0 when unknown (version 1 and 2, or not set
	// by a caller of [Create]): then every range has original bytes.
	OldSize, NewSize int64
	// Block is the size of the blocks by which units are grouped: units
	// whose ranges overlap or share a block form one group, which undo
	// restores or leaves whole. [Commit] takes it from the overlay
	// ([Overlay.SetGroup]); 0 means 512. Version 1 and 2 journals read as
	// 512.
	Block int64
	// Version is the format version the journal was read with; it is
	// ignored by Create, which writes [Version].
	Version int
	// jid is a random number in the header and in every 'W' frame: a
	// frame copied from another journal (or a journal saved inside a
	// range) never passes for one of this journal's.
	jid uint64
}

// block returns h.Block, or the default.
func (h *Header) block() int64 {
	if h.Block > 0 {
		return h.Block
	}
	return defaultBlock
}

// grows reports whether ranges from OldSize on have no original bytes.
func (h *Header) grows() bool { return h.OldSize > 0 && h.NewSize > h.OldSize }

// State is how far the change recorded in a journal went.
type State string

const (
	// StatePlanned: the plan was being saved but never prepared, so by
	// contract nothing was written to the volume. Only version 1 and 2
	// journals are seen in this state: a version 3 journal gets its name
	// only once prepared.
	StatePlanned State = "planned"
	// StateInterrupted: prepared, never committed nor undone. Writes may
	// have happened, all, some or none: run undo or finish the fix.
	StateInterrupted State = "interrupted"
	// StateCommitted: every write was made and the volume flushed.
	StateCommitted State = "committed"
	// StateUndone: undo ran to its end (see Info.LastUndo for whether it
	// could take back everything).
	StateUndone State = "undone"
)

// Record is one saved range, as read from a journal.
type Record struct {
	Index int    // 0-based position in the journal
	Off   int64  // offset in the journal's coordinate space (Header.Space)
	Len   int64  // bytes
	Label string // the labels of the units that wrote it, "; "-separated
	// Units are the ids of the plan units that wrote the range (see
	// [Info.Units]); for version 1 and 2 journals, units made from the
	// labels.
	Units []int
	// Group is the group of units the range belongs to: undo restores or
	// leaves a group whole (see [Info.Groups]).
	Group int
	// Grown is true for a range past Header.OldSize: the target was
	// shorter, there are no original bytes; undo takes it away by
	// truncating the target.
	Grown bool
	pos   int64 // frame start in the journal file
	size  int64 // payload length
	data  int64 // offset of the old (or, grown, the new) bytes in the payload
	gidx  int   // version 3: position in its group
	gcnt  int   // version 3: ranges in its group
}

// UnitInfo is one plan unit of a journal: one rename, one hive edit, one
// file rewrite.
type UnitInfo struct {
	ID     int
	Label  string
	Group  int
	Ranges []int // indexes into Info.Records
}

// GroupInfo is a group of units that share bytes (overlapping ranges, or
// ranges in one block of Header.Block bytes): undo restores or leaves a
// group whole.
type GroupInfo struct {
	ID     int
	Units  []int // unit ids
	Ranges []int // indexes into Info.Records
	// Intact is true when every range of the group was read from a frame
	// that verifies and no damaged part of the journal can belong to it:
	// only then may undo or resume touch it.
	Intact bool
}

// UndoCounts is what an undo run recorded in its 'U' mark.
type UndoCounts struct {
	Time     time.Time
	Restored int // ranges written back to their original bytes
	Already  int // ranges that were already original
	Changed  int // ranges changed since: not touched
	Lost     int // ranges whose saved bytes are unreadable in the journal
	// Version 3 only.
	Left          int // ranges not touched because their group could not be undone whole
	UnitsRestored int // units taken back
	UnitsLeft     int // units left as they were
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Fixed part of a header payload, per format version.
const (
	headerFixedV1 = 36
	headerFixedV2 = headerFixedV1 + 8   // + seq u64
	headerFixedV3 = headerFixedV2 + 4*8 // + jid u64, old size, new size, block i64
	headerStrings = 4                   // name, target, tool, note
	headerStrV3   = headerStrings + 1   // + space
	unitFixed     = 4 + 2               // a unit in a 'W' payload: id u32, label length u16
)

// encodeHeader lays out a header payload: version u16, reserved u16,
// serial u64, size i64, offset i64, created i64 (Unix ns), seq u64 (from
// version 2), journal id u64, old size i64, new size i64, block i64 (from
// version 3), then strings (u16 length + UTF-8): name, target, tool,
// note, and from version 3 space.
func encodeHeader(h Header) []byte {
	b := make([]byte, 0, 128)
	b = binary.LittleEndian.AppendUint16(b, Version)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint64(b, h.ID.Serial)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.ID.Size))
	b = binary.LittleEndian.AppendUint64(b, uint64(h.Offset))
	b = binary.LittleEndian.AppendUint64(b, uint64(h.Created.UnixNano()))
	b = binary.LittleEndian.AppendUint64(b, h.Seq)
	b = binary.LittleEndian.AppendUint64(b, h.jid)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.OldSize))
	b = binary.LittleEndian.AppendUint64(b, uint64(h.NewSize))
	b = binary.LittleEndian.AppendUint64(b, uint64(h.block()))
	space := h.Space
	if space == "" {
		space = SpaceVolume
	}
	for _, s := range []string{h.ID.Name, h.Target, h.Tool, h.Note, space} {
		s = cut(s, maxString)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	return b
}

func decodeHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < 2 {
		return h, fmt.Errorf("%d bytes, no format version", len(b))
	}
	fixed, nstr := 0, headerStrings
	v := binary.LittleEndian.Uint16(b)
	switch v {
	case 1:
		fixed = headerFixedV1
	case 2:
		fixed = headerFixedV2
	case 3:
		fixed, nstr = headerFixedV3, headerStrV3
	default:
		return h, fmt.Errorf("format version %d, this program reads 1 to %d", v, Version)
	}
	if len(b) < fixed {
		return h, fmt.Errorf("%d bytes, fewer than %d", len(b), fixed)
	}
	h.Version = int(v)
	h.ID.Serial = binary.LittleEndian.Uint64(b[4:])
	h.ID.Size = int64(binary.LittleEndian.Uint64(b[12:]))
	h.Offset = int64(binary.LittleEndian.Uint64(b[20:]))
	h.Created = time.Unix(0, int64(binary.LittleEndian.Uint64(b[28:]))).UTC()
	if v >= 2 {
		h.Seq = binary.LittleEndian.Uint64(b[headerFixedV1:])
	}
	h.Space, h.Block = SpaceVolume, defaultBlock
	if v >= 3 {
		x := b[headerFixedV2:]
		h.jid = binary.LittleEndian.Uint64(x)
		h.OldSize = int64(binary.LittleEndian.Uint64(x[8:]))
		h.NewSize = int64(binary.LittleEndian.Uint64(x[16:]))
		h.Block = int64(binary.LittleEndian.Uint64(x[24:]))
		if h.OldSize < 0 || h.NewSize < 0 || h.Block <= 0 || h.Block > 1<<30 {
			return h, fmt.Errorf("sizes %d and %d, block %d out of range", h.OldSize, h.NewSize, h.Block)
		}
	}
	b = b[fixed:]
	strs := make([]string, nstr)
	for i := range strs {
		if len(b) < 2 {
			return h, errors.New("truncated string length")
		}
		n := int(binary.LittleEndian.Uint16(b))
		if n > len(b)-2 {
			return h, fmt.Errorf("string of %d bytes, %d left", n, len(b)-2)
		}
		strs[i] = string(b[2 : 2+n])
		b = b[2+n:]
	}
	if len(b) != 0 {
		return h, fmt.Errorf("%d trailing bytes", len(b))
	}
	h.ID.Name, h.Target, h.Tool, h.Note = strs[0], strs[1], strs[2], strs[3]
	if v >= 3 {
		h.Space = strs[4]
		if h.Space != SpaceVolume && h.Space != SpaceFile {
			return h, fmt.Errorf("coordinate space %q, want %q or %q", h.Space, SpaceVolume, SpaceFile)
		}
	}
	return h, nil
}

// appendFrame appends a complete frame with payload parts to dst.
func appendFrame(dst []byte, typ byte, parts ...[]byte) []byte {
	start := len(dst)
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	dst = append(dst, typ, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	for _, p := range parts {
		dst = append(dst, p...)
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// payload reads record rec's frame from the journal again, checks its
// CRC, and returns its old and new bytes (old is nil for a grown range).
func (rec *Record) payload(r io.ReaderAt) (old, new []byte, err error) {
	b := make([]byte, frameHead+rec.size+frameTail)
	if _, err := r.ReadAt(b, rec.pos); err != nil {
		return nil, nil, fmt.Errorf("reading frame at %#x: %w", rec.pos, err)
	}
	body := b[:frameHead+rec.size]
	if binary.LittleEndian.Uint32(b[len(body):]) != crc32.Checksum(body, castagnoli) {
		return nil, nil, fmt.Errorf("frame at %#x: crc mismatch (the journal changed after it was read)", rec.pos)
	}
	data := body[frameHead+rec.data:]
	if rec.Grown {
		if int64(len(data)) != rec.Len {
			return nil, nil, fmt.Errorf("frame at %#x: payload size changed", rec.pos)
		}
		return nil, data, nil
	}
	if int64(len(data)) != 2*rec.Len {
		return nil, nil, fmt.Errorf("frame at %#x: payload size changed", rec.pos)
	}
	return data[:rec.Len], data[rec.Len:], nil
}
