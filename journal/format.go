package journal

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"
)

// magic starts every journal file; the format version is in the header.
const magic = "WUOJRNL\x00"

// Version is the journal format version this package writes. It also
// reads version 1, whose header has no Seq (read as 0).
const Version = 2

// Frame types (see the package documentation).
const (
	frameHeader    = 'H'
	frameWrite     = 'W'
	framePrepared  = 'P'
	frameCommitted = 'C'
	frameUndone    = 'U'
)

const (
	frameHead    = 8 // type, reserved[3], length
	frameTail    = 4 // crc32c
	writeFixed   = 8 + 4 + 2
	preparedSize = 4 + 8 + sha256.Size
	markSize     = 8       // 'C': time
	undoneSize   = 8 + 4*4 // 'U': time, restored, already, changed, lost
	maxHeader    = 16 + 8*4 + 4*(2+maxString)
	maxString    = 4096 // header strings (paths, names) are cut to this
	maxLabel     = 1<<16 - 1
	// maxRecord bounds one saved range; larger plans are split by Add's
	// caller. 1 GiB of old plus 1 GiB of new bytes still fits the u32
	// payload length.
	maxRecord = 1 << 30
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
}

// State is how far the change recorded in a journal went.
type State string

const (
	// StatePlanned: the plan was being saved but never prepared, so by
	// contract nothing was written to the volume.
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
	Off   int64  // volume offset
	Len   int64  // bytes
	Label string // what the range is, from the caller ("MFT record 1234")
	pos   int64  // frame start in the journal file
	size  int64  // payload length
}

// UndoCounts is what an undo run recorded in its 'U' mark.
type UndoCounts struct {
	Time     time.Time
	Restored int // ranges written back to their original bytes
	Already  int // ranges that were already original
	Changed  int // ranges changed since: not touched
	Lost     int // ranges whose saved bytes are unreadable in the journal
}

// Info is what a journal file says, read by [Open], [Read] or [Find].
type Info struct {
	Path    string
	Header  Header
	State   State
	Records []Record
	Bytes   int64 // total bytes of the saved ranges
	// Committed is when the last commit mark was written (zero if none).
	Committed time.Time
	// LastUndo is the last undo mark, nil if undo never completed.
	LastUndo *UndoCounts
	// Damage is nil for an intact journal. Otherwise it says where and how
	// the journal is damaged; everything before DamageAt was read.
	Damage   error
	DamageAt int64
	// Torn is true when the damage is a torn append (a frame running past
	// the end of the file, or a zero-filled tail): it is cut off before a
	// new mark is appended.
	Torn bool
	// End is the offset just past the last intact frame.
	End int64
}

// Interrupted reports whether the journal records a fix that was prepared
// but neither committed nor undone: the volume may be half-changed.
func (i *Info) Interrupted() bool { return i.State == StateInterrupted }

// Advice says in one sentence what to do about the journal's state, or ""
// when there is nothing to do.
func (i *Info) Advice(target string) string {
	switch {
	case i.State == "" && i.Damage != nil:
		return fmt.Sprintf("journal %s cannot be read (%v): nothing in it can be undone; keep it for inspection", i.Path, i.Damage)
	case i.State == StateInterrupted:
		return fmt.Sprintf("a fix of this volume was interrupted (journal %s): run `wuoffline undo %s` to roll it back to the original bytes, or `wuoffline fix %s` to finish it", i.Path, target, target)
	case i.Damage != nil && !i.Torn:
		return fmt.Sprintf("journal %s is damaged (%v): `wuoffline undo %s` restores only the ranges before the damage", i.Path, i.Damage, target)
	case i.State == StateUndone && i.LastUndo != nil && (i.LastUndo.Changed > 0 || i.LastUndo.Lost > 0):
		return fmt.Sprintf("the last undo (journal %s) could not take back %d change(s): the volume changed since", i.Path, i.LastUndo.Changed+i.LastUndo.Lost)
	}
	return ""
}

// Open reads the journal file at path. It fails only when the file cannot
// be read or is not a journal at all; damage after the header is reported
// in Info.Damage.
func Open(path string) (*Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	info, _, err := readOpen(f, path)
	return info, err
}

// readOpen reads the whole of the open journal file f, named path, and
// returns the file's size too (a torn tail lies between Info.End and it).
func readOpen(f *os.File, path string) (*Info, int64, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("journal %s: %w", path, err)
	}
	info, err := Read(f, st.Size())
	if err != nil {
		return nil, 0, fmt.Errorf("journal %s: %w", path, err)
	}
	info.Path = path
	return info, st.Size(), nil
}

// frameError is damage found at a frame.
type frameError struct {
	Pos int64
	Msg string
}

func (e *frameError) Error() string { return fmt.Sprintf("frame at %#x: %s", e.Pos, e.Msg) }

// Read parses a journal of size bytes from r. It fails only when r does
// not start with a journal magic and an intact header; any later damage
// stops the parse and is reported in Info.Damage with everything read
// before it. Every length is checked against size before use, so hostile
// input costs at most a read of the file.
func Read(r io.ReaderAt, size int64) (*Info, error) {
	if size < int64(len(magic))+frameHead+frameTail {
		return nil, fmt.Errorf("not a journal: %d bytes", size)
	}
	var m [len(magic)]byte
	if _, err := r.ReadAt(m[:], 0); err != nil {
		return nil, fmt.Errorf("reading magic: %w", err)
	}
	if string(m[:]) != magic {
		return nil, errors.New("not a journal: bad magic")
	}
	info := &Info{End: int64(len(magic))}
	p := parser{r: r, size: size, sum: sha256.New()}
	pos := int64(len(magic))
	for pos < size {
		typ, plen, err := p.frame(pos)
		if err != nil {
			if pos == int64(len(magic)) {
				return nil, fmt.Errorf("header: %w", err)
			}
			p.damage(info, pos, err)
			return info, nil
		}
		if err := p.apply(info, typ, pos, plen); err != nil {
			if pos == int64(len(magic)) {
				return nil, fmt.Errorf("header: %w", err)
			}
			p.damage(info, pos, err)
			return info, nil
		}
		pos += frameHead + plen + frameTail
		info.End = pos
	}
	if !p.header {
		return nil, errors.New("header: missing")
	}
	return info, nil
}

// parser holds the state of one Read.
type parser struct {
	r        io.ReaderAt
	size     int64
	sum      hash.Hash // SHA-256 over 'W' payloads, checked against 'P'
	header   bool
	marked   bool  // a 'P', 'C' or 'U' frame was seen: no more 'W'
	prepared bool  // the 'P' frame was seen
	torn     bool  // the last frame error was a frame running past EOF
	crcEnd   int64 // end of the last frame whose CRC failed, 0 if none
	buf      [32 << 10]byte
}

// frame checks the frame at pos: its header, bounds and CRC. For a 'W'
// frame the payload is also fed to the plan hash (cheap: one pass).
func (p *parser) frame(pos int64) (typ byte, plen int64, err error) {
	p.torn, p.crcEnd = false, 0
	if p.size-pos < frameHead+frameTail {
		p.torn = true
		return 0, 0, &frameError{pos, fmt.Sprintf("truncated: %d bytes left", p.size-pos)}
	}
	var h [frameHead]byte
	if _, err := p.r.ReadAt(h[:], pos); err != nil {
		return 0, 0, &frameError{pos, "reading: " + err.Error()}
	}
	typ = h[0]
	plen = int64(binary.LittleEndian.Uint32(h[4:]))
	switch typ {
	case frameHeader, frameWrite, framePrepared, frameCommitted, frameUndone:
	default:
		return 0, 0, &frameError{pos, fmt.Sprintf("unknown frame type %#02x", typ)}
	}
	if h[1]|h[2]|h[3] != 0 {
		return 0, 0, &frameError{pos, "reserved bytes not zero"}
	}
	if plen > p.size-pos-frameHead-frameTail {
		p.torn = true
		return 0, 0, &frameError{pos, fmt.Sprintf("payload of %d bytes runs past the end of the journal (%d bytes)", plen, p.size)}
	}
	crc := crc32.Update(0, castagnoli, h[:])
	for done := int64(0); done < plen; {
		n := min(int64(len(p.buf)), plen-done)
		if _, err := p.r.ReadAt(p.buf[:n], pos+frameHead+done); err != nil {
			return 0, 0, &frameError{pos, "reading payload: " + err.Error()}
		}
		crc = crc32.Update(crc, castagnoli, p.buf[:n])
		done += n
	}
	var t [frameTail]byte
	if _, err := p.r.ReadAt(t[:], pos+frameHead+plen); err != nil {
		return 0, 0, &frameError{pos, "reading crc: " + err.Error()}
	}
	if got := binary.LittleEndian.Uint32(t[:]); got != crc {
		p.crcEnd = pos + frameHead + plen + frameTail
		return 0, 0, &frameError{pos, fmt.Sprintf("crc %#08x, computed %#08x", got, crc)}
	}
	return typ, plen, nil
}

// small reads a payload known to be small (already bounded by frame).
func (p *parser) small(pos, plen int64) ([]byte, error) {
	b := make([]byte, plen)
	if _, err := p.r.ReadAt(b, pos+frameHead); err != nil {
		return nil, &frameError{pos, "reading payload: " + err.Error()}
	}
	return b, nil
}

// apply interprets an intact frame, enforcing the frame order.
func (p *parser) apply(info *Info, typ byte, pos, plen int64) error {
	bad := func(format string, args ...any) error {
		return &frameError{pos, fmt.Sprintf("%c frame: ", typ) + fmt.Sprintf(format, args...)}
	}
	if !p.header && typ != frameHeader {
		return bad("before the header")
	}
	switch typ {
	case frameHeader:
		if p.header {
			return bad("second header")
		}
		if plen > maxHeader {
			return bad("%d bytes, more than %d", plen, maxHeader)
		}
		b, err := p.small(pos, plen)
		if err != nil {
			return err
		}
		h, err := decodeHeader(b)
		if err != nil {
			return bad("%v", err)
		}
		info.Header = h
		info.State = StatePlanned
		p.header = true
	case frameWrite:
		if p.marked {
			return bad("after a mark")
		}
		if plen < writeFixed {
			return bad("%d bytes, fewer than %d", plen, writeFixed)
		}
		var fixed [writeFixed]byte
		if _, err := p.r.ReadAt(fixed[:], pos+frameHead); err != nil {
			return &frameError{pos, "reading payload: " + err.Error()}
		}
		off := int64(binary.LittleEndian.Uint64(fixed[0:]))
		n := int64(binary.LittleEndian.Uint32(fixed[8:]))
		ll := int64(binary.LittleEndian.Uint16(fixed[12:]))
		if off < 0 || n == 0 || n > maxRecord || off > (1<<62)-n {
			return bad("range %#x+%d out of bounds", uint64(off), n)
		}
		if plen != writeFixed+ll+2*n {
			return bad("payload %d bytes, label %d and range %d need %d", plen, ll, n, writeFixed+ll+2*n)
		}
		label := make([]byte, ll)
		if _, err := p.r.ReadAt(label, pos+frameHead+writeFixed); err != nil {
			return &frameError{pos, "reading label: " + err.Error()}
		}
		if err := p.hashPayload(pos, plen); err != nil {
			return err
		}
		info.Records = append(info.Records, Record{
			Index: len(info.Records), Off: off, Len: n, Label: string(label), pos: pos, size: plen,
		})
		info.Bytes += n
	case framePrepared:
		if p.marked {
			return bad("after a mark")
		}
		if plen != preparedSize {
			return bad("%d bytes, want %d", plen, preparedSize)
		}
		b, err := p.small(pos, plen)
		if err != nil {
			return err
		}
		count := int(binary.LittleEndian.Uint32(b[0:]))
		total := int64(binary.LittleEndian.Uint64(b[4:]))
		if count != len(info.Records) || total != info.Bytes {
			return bad("plan of %d ranges (%d bytes), journal holds %d (%d bytes)", count, total, len(info.Records), info.Bytes)
		}
		if !bytes.Equal(b[12:], p.sum.Sum(nil)) {
			return bad("plan checksum does not match the saved ranges")
		}
		info.State = StateInterrupted
		p.marked, p.prepared = true, true
	case frameCommitted:
		if !p.prepared {
			return bad("commit without a prepared plan")
		}
		if plen != markSize {
			return bad("%d bytes, want %d", plen, markSize)
		}
		b, err := p.small(pos, plen)
		if err != nil {
			return err
		}
		info.Committed = time.Unix(0, int64(binary.LittleEndian.Uint64(b))).UTC()
		info.State = StateCommitted
		p.marked = true
	case frameUndone:
		if plen != undoneSize {
			return bad("%d bytes, want %d", plen, undoneSize)
		}
		b, err := p.small(pos, plen)
		if err != nil {
			return err
		}
		u := &UndoCounts{
			Time:     time.Unix(0, int64(binary.LittleEndian.Uint64(b))).UTC(),
			Restored: int(binary.LittleEndian.Uint32(b[8:])),
			Already:  int(binary.LittleEndian.Uint32(b[12:])),
			Changed:  int(binary.LittleEndian.Uint32(b[16:])),
			Lost:     int(binary.LittleEndian.Uint32(b[20:])),
		}
		info.LastUndo = u
		info.State = StateUndone
		p.marked = true
	}
	return nil
}

// hashPayload feeds a 'W' payload to the plan hash.
func (p *parser) hashPayload(pos, plen int64) error {
	for done := int64(0); done < plen; {
		n := min(int64(len(p.buf)), plen-done)
		if _, err := p.r.ReadAt(p.buf[:n], pos+frameHead+done); err != nil {
			return &frameError{pos, "reading payload: " + err.Error()}
		}
		p.sum.Write(p.buf[:n])
		done += n
	}
	return nil
}

// damage records where the parse stopped, and whether it looks like a torn
// append, the last frame of the file half-written by a crash: a frame
// running past the end of the file, nothing but zeros from there on, or a
// frame failing its CRC with nothing but zeros after it (file systems may
// extend a file before a crash without writing all of its data). Any other
// damage has intact-looking data after it and is not cut off.
func (p *parser) damage(info *Info, pos int64, err error) {
	info.Damage = err
	info.DamageAt = pos
	info.Torn = p.torn || p.zeroTail(pos) || (p.crcEnd > 0 && p.zeroTail(p.crcEnd))
}

func (p *parser) zeroTail(pos int64) bool {
	for pos < p.size {
		n := min(int64(len(p.buf)), p.size-pos)
		if _, err := p.r.ReadAt(p.buf[:n], pos); err != nil && !(errors.Is(err, io.EOF) && pos+n == p.size) {
			return false
		}
		for _, c := range p.buf[:n] {
			if c != 0 {
				return false
			}
		}
		pos += n
	}
	return true
}

// Fixed part of a header payload, per format version.
const (
	headerFixedV1 = 36
	headerFixedV2 = headerFixedV1 + 8 // + seq u64
)

// encodeHeader lays out a header payload: version u16, reserved u16,
// serial u64, size i64, offset i64, created i64 (Unix ns), seq u64 (from
// version 2), then four strings (u16 length + UTF-8): name, target, tool,
// note.
func encodeHeader(h Header) []byte {
	b := make([]byte, 0, 64)
	b = binary.LittleEndian.AppendUint16(b, Version)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint64(b, h.ID.Serial)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.ID.Size))
	b = binary.LittleEndian.AppendUint64(b, uint64(h.Offset))
	b = binary.LittleEndian.AppendUint64(b, uint64(h.Created.UnixNano()))
	b = binary.LittleEndian.AppendUint64(b, h.Seq)
	for _, s := range []string{h.ID.Name, h.Target, h.Tool, h.Note} {
		s = cut(s, maxString)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	return b
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

func decodeHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < 2 {
		return h, fmt.Errorf("%d bytes, no format version", len(b))
	}
	fixed := 0
	switch v := binary.LittleEndian.Uint16(b); v {
	case 1:
		fixed = headerFixedV1
	case 2:
		fixed = headerFixedV2
	default:
		return h, fmt.Errorf("format version %d, this program reads 1 to %d", v, Version)
	}
	if len(b) < fixed {
		return h, fmt.Errorf("%d bytes, fewer than %d", len(b), fixed)
	}
	h.ID.Serial = binary.LittleEndian.Uint64(b[4:])
	h.ID.Size = int64(binary.LittleEndian.Uint64(b[12:]))
	h.Offset = int64(binary.LittleEndian.Uint64(b[20:]))
	h.Created = time.Unix(0, int64(binary.LittleEndian.Uint64(b[28:]))).UTC()
	if fixed == headerFixedV2 {
		h.Seq = binary.LittleEndian.Uint64(b[headerFixedV1:])
	}
	b = b[fixed:]
	var strs [4]string
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

// payload reads record rec's payload from the journal, checks its CRC, and
// returns its old and new bytes.
func (rec *Record) payload(r io.ReaderAt) (old, new []byte, err error) {
	b := make([]byte, frameHead+rec.size+frameTail)
	if _, err := r.ReadAt(b, rec.pos); err != nil {
		return nil, nil, fmt.Errorf("reading frame at %#x: %w", rec.pos, err)
	}
	body := b[:frameHead+rec.size]
	if binary.LittleEndian.Uint32(b[len(body):]) != crc32.Checksum(body, castagnoli) {
		return nil, nil, fmt.Errorf("frame at %#x: crc mismatch (the journal changed after it was read)", rec.pos)
	}
	data := body[frameHead+writeFixed+len(rec.Label):]
	if int64(len(data)) != 2*rec.Len {
		return nil, nil, fmt.Errorf("frame at %#x: payload size changed", rec.pos)
	}
	return data[:rec.Len], data[rec.Len:], nil
}
