package hive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// Transaction-log layout (formats.md, "Dirty hives and logs"). A log starts
// with a 512-byte copy of the base block (file type 1 or 6). An old-format
// log then has the dirty vector ("DIRT" and one bit per 512-byte page of
// hive-bins data) and the dirty pages, each 512 bytes, in bit order from
// the next 512-byte boundary. A new-format log has entries ("HvLE") from
// offset 512, each a multiple of 512 bytes and following the previous one
// with no gap.
const (
	logSector = 512 // log alignment and old-format page size

	fileTypeLogVeryOld = 2 // Windows 2000 wrote old-format logs with type 2

	dirtSignature = "DIRT"

	hvleSignature  = "HvLE"
	hvleHeaderSize = 40 // signature .. hash-2
	hvleRefSize    = 8  // one dirty-page reference: offset, size

	// hvle field offsets
	hvleOffSize      = 4
	hvleOffFlags     = 8
	hvleOffSequence  = 12
	hvleOffHiveBins  = 16
	hvleOffPageCount = 20
	hvleOffHash1     = 24
	hvleOffHash2     = 32

	// maxLogSize bounds the logs looked at. Windows' own logs are a few
	// MiB (they are reset after every reconciliation); anything near this
	// is not a log. A log is never read whole: what is held in memory is
	// its valid entries (new format) or its dirty pages (old format), as
	// the file proves to hold them.
	maxLogSize = 1 << 30

	// logScanChunk is how much of a log one read brings in when scanning
	// it for entry headers.
	logScanChunk = 64 << 10

	// maxHiveBinsSize is the largest hive-bins size accepted from a log:
	// cell offsets are 31-bit (the top bit marks volatile storage), so no
	// stable hive can be larger.
	maxHiveBinsSize = 0x7FFFF000

	binBlock = 4096 // hive-bin size granularity
)

// errLogUnusable is wrapped by every reason a log is not used.
var errLogUnusable = errors.New("log not usable")

// logFile is one transaction log, checked; only its base block, dirty
// vector and valid entries are held in memory, the rest is read from r
// when needed.
type logFile struct {
	name string
	r    io.ReaderAt
	size int64      // bytes r holds (checked when the log is opened)
	head []byte     // the first 512 bytes (or fewer, for a shorter log)
	base *BaseBlock // its base block; nil when unusable
	err  error      // why the log is unusable (base block or format), nil if usable

	// Old format (file type 1 or 2).
	dirtyStart int64 // file offset of the first dirty page
	bitmap     []byte

	// New format (file type 6): the run of valid entries from offset 512,
	// the first carrying the base block's sequence number and each later
	// one the next number. Replay stops where the run stops.
	entries []*logEntry
}

// isNew reports a usable new-format log.
func (l *logFile) isNew() bool { return l.err == nil && l.base.FileType == fileTypeLogNew }

// isOld reports a usable old-format log.
func (l *logFile) isOld() bool {
	return l.err == nil && (l.base.FileType == fileTypeLogOld || l.base.FileType == fileTypeLogVeryOld)
}

// readLog reads and checks one log. A log that is empty, damaged or of an
// unknown format is returned with err set (it is simply not used, as
// Windows does); the error result is only for I/O failures.
func readLog(l Log) (*logFile, error) {
	lf := &logFile{name: l.Name}
	switch {
	case l.Size < 0:
		return nil, fmt.Errorf("hive: log %s: negative size %d", l.Name, l.Size)
	case l.Size > maxLogSize:
		lf.err = fmt.Errorf("%w: %d bytes, larger than any real log (%d)", errLogUnusable, l.Size, maxLogSize)
		return lf, nil
	case l.Size == 0 || l.R == nil:
		// Windows leaves 0-byte .LOG2 (and .LOG) files beside its hives.
		lf.err = fmt.Errorf("%w: empty", errLogUnusable)
		return lf, nil
	}
	// The size the caller gives must be what the reader holds: its last
	// byte must be readable (memory follows the bytes read, never Size).
	var last [1]byte
	if _, err := l.R.ReadAt(last[:], l.Size-1); err != nil {
		return nil, fmt.Errorf("hive: log %s: reading byte %d of %d: %w", l.Name, l.Size-1, l.Size, noEOF(err))
	}
	lf.r, lf.size = l.R, l.Size
	lf.head = make([]byte, min(l.Size, logSector))
	if _, err := l.R.ReadAt(lf.head, 0); err != nil {
		return nil, fmt.Errorf("hive: log %s: reading the base block: %w", l.Name, noEOF(err))
	}
	lf.err = lf.parse()
	if lf.err != nil && !errors.Is(lf.err, errLogUnusable) {
		return nil, fmt.Errorf("hive: log %s: %w", l.Name, lf.err)
	}
	return lf, nil
}

// noEOF turns io.EOF (a read short of what the size promised) into
// io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readAt reads n bytes of the log at off; the caller has checked that they
// lie inside it.
func (l *logFile) readAt(off, n int64) ([]byte, error) {
	b := make([]byte, n)
	if _, err := l.r.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("reading %d bytes at 0x%x: %w", n, off, noEOF(err))
	}
	return b, nil
}

// parse checks the base block and the format-specific structures.
func (l *logFile) parse() error {
	bb, err := ParseBaseBlock(l.head)
	if err != nil {
		return fmt.Errorf("%w: %w", errLogUnusable, err)
	}
	// A log's base block is only trusted whole: right checksum, equal
	// sequence numbers (Windows writes both at once before logging),
	// clustering 1, a hive-bins size that is a multiple of 4096.
	switch {
	case !bb.ChecksumOK:
		return fmt.Errorf("%w: base block checksum 0x%08x, computed 0x%08x", errLogUnusable, bb.Checksum, Checksum(l.head))
	case bb.Sequence1 != bb.Sequence2:
		return fmt.Errorf("%w: base block sequence numbers differ (%d, %d)", errLogUnusable, bb.Sequence1, bb.Sequence2)
	case bb.Clustering != 1:
		return fmt.Errorf("%w: clustering factor %d, want 1", errLogUnusable, bb.Clustering)
	case bb.HiveBinsSize == 0 || bb.HiveBinsSize%binBlock != 0 || bb.HiveBinsSize > maxHiveBinsSize:
		return fmt.Errorf("%w: hive-bins size 0x%x is not a positive multiple of 4096", errLogUnusable, bb.HiveBinsSize)
	}
	l.base = bb
	switch bb.FileType {
	case fileTypeLogOld, fileTypeLogVeryOld:
		return l.parseOld()
	case fileTypeLogNew:
		if err := l.parseNew(); err != nil {
			return err
		}
		if len(l.entries) == 0 {
			return fmt.Errorf("%w: no valid entry with sequence number %d at offset 512", errLogUnusable, bb.Sequence1)
		}
		return nil
	}
	return fmt.Errorf("%w: file type %d is not a transaction log (1 or 6)", errLogUnusable, bb.FileType)
}

// parseOld checks the dirty vector and that every dirty page it announces
// is present. Sizes come from the base block's hive-bins size, so the
// bitmap (size/4096 bytes) and the pages (512 bytes per set bit) are
// checked against the file before anything is used: a log claiming
// gigabytes of dirty pages is refused by arithmetic.
func (l *logFile) parseOld() error {
	bitmapLen := int64(l.base.HiveBinsSize) / binBlock // one bit per 512 bytes
	vecEnd := int64(logSector) + int64(len(dirtSignature)) + bitmapLen
	if vecEnd > l.size {
		return fmt.Errorf("%w: dirty vector for 0x%x bytes of bins needs %d bytes, the log holds %d",
			errLogUnusable, l.base.HiveBinsSize, vecEnd, l.size)
	}
	vec, err := l.readAt(logSector, vecEnd-logSector)
	if err != nil {
		return err
	}
	if sig := string(vec[:4]); sig != dirtSignature {
		return fmt.Errorf("%w: dirty vector signature %q at 0x200, want %q", errLogUnusable, sig, dirtSignature)
	}
	l.bitmap = vec[4:]
	l.dirtyStart = alignUp(vecEnd, logSector)
	var n int64
	for _, b := range l.bitmap {
		n += int64(bits.OnesCount8(b))
	}
	if need := l.dirtyStart + n*logSector; need > l.size {
		return fmt.Errorf("%w: %d dirty pages need %d bytes, the log holds %d", errLogUnusable, n, need, l.size)
	}
	return nil
}

// oldPages calls fn for every dirty page of an old-format log, in bitmap
// order: off is the hive file offset (4096 + 512 × bit), page the 512
// bytes (fn may keep them). parseOld has checked that all pages are
// present; they are read in runs of up to logScanChunk bytes.
func (l *logFile) oldPages(fn func(off int64, page []byte) bool) error {
	pos := l.dirtyStart
	var buf []byte
	for i, b := range l.bitmap {
		for b != 0 {
			bit := bits.TrailingZeros8(b)
			b &^= 1 << bit
			off := BaseBlockSize + (int64(i)*8+int64(bit))*logSector
			if len(buf) == 0 {
				var err error
				if buf, err = l.readAt(pos, min(logScanChunk, l.size-pos)&^(logSector-1)); err != nil {
					return fmt.Errorf("hive: log %s: dirty pages: %w", l.name, err)
				}
			}
			if !fn(off, buf[:logSector:logSector]) {
				return nil
			}
			buf = buf[logSector:]
			pos += logSector
		}
	}
	return nil
}

// logEntry is one checked new-format log entry.
type logEntry struct {
	off      int64 // offset in the log file
	size     uint32
	flags    uint32
	seq      uint32
	hiveBins uint32
	refs     []pageRef
	pages    []byte // the page data, in reference order
}

// pageRef is a dirty-page reference: offset relative to the hive bins, and
// size, both multiples of 512 here.
type pageRef struct {
	off, size uint32
}

// parseNew collects the run of valid entries from offset 512 whose
// sequence numbers are the base block's, then one more each time. Each
// entry is read on its own (its header first, then the size it declares
// if that lies inside the log); only valid entries are kept.
func (l *logFile) parseNew() error {
	want := l.base.Sequence1
	for off := int64(logSector); off+hvleHeaderSize <= l.size; {
		hdr, err := l.readAt(off, hvleHeaderSize)
		if err != nil {
			return err
		}
		size := int64(binary.LittleEndian.Uint32(hdr[hvleOffSize:]))
		if string(hdr[:4]) != hvleSignature || size < hvleHeaderSize || size > l.size-off {
			return nil
		}
		body, err := l.readAt(off, size)
		if err != nil {
			return err
		}
		e, err := parseLogEntry(body, 0)
		if err != nil || e.seq != want {
			return nil // the end of the log's valid data: garbage or stale entries follow
		}
		e.off = off
		l.entries = append(l.entries, e)
		off += int64(e.size)
		want++
	}
	return nil
}

// parseLogEntry checks and decodes the entry at off. The checks are those
// that make Windows stop replay: signature, a size that is a non-zero
// multiple of 512 inside the file, a hive-bins size that is a multiple of
// 4096, both Marvin32 hashes, and page references that fit the entry and
// the hive.
func parseLogEntry(data []byte, off int64) (*logEntry, error) {
	if off < 0 || off+hvleHeaderSize > int64(len(data)) {
		return nil, fmt.Errorf("entry at 0x%x: beyond the end of the log", off)
	}
	h := data[off:]
	le := binary.LittleEndian
	if string(h[:4]) != hvleSignature {
		return nil, fmt.Errorf("entry at 0x%x: signature %q, want %q", off, h[:4], hvleSignature)
	}
	e := &logEntry{
		off:      off,
		size:     le.Uint32(h[hvleOffSize:]),
		flags:    le.Uint32(h[hvleOffFlags:]),
		seq:      le.Uint32(h[hvleOffSequence:]),
		hiveBins: le.Uint32(h[hvleOffHiveBins:]),
	}
	count := le.Uint32(h[hvleOffPageCount:])
	if e.size == 0 || e.size%logSector != 0 || int64(e.size) > int64(len(h)) {
		return nil, fmt.Errorf("entry at 0x%x: size 0x%x is not a multiple of 512 within the log", off, e.size)
	}
	if e.hiveBins == 0 || e.hiveBins%binBlock != 0 || e.hiveBins > maxHiveBinsSize {
		return nil, fmt.Errorf("entry at 0x%x: hive-bins size 0x%x is not a positive multiple of 4096", off, e.hiveBins)
	}
	refsEnd := uint64(hvleHeaderSize) + uint64(count)*hvleRefSize
	if count == 0 || refsEnd > uint64(e.size) {
		return nil, fmt.Errorf("entry at 0x%x: %d page references do not fit its 0x%x bytes", off, count, e.size)
	}
	body := h[:e.size]
	if got, want := marvin32(logEntryHashSeed, body[hvleHeaderSize:]), le.Uint64(body[hvleOffHash1:]); got != want {
		return nil, fmt.Errorf("entry at 0x%x: hash-1 0x%016x, computed 0x%016x", off, want, got)
	}
	if got, want := marvin32(logEntryHashSeed, body[:hvleOffHash2]), le.Uint64(body[hvleOffHash2:]); got != want {
		return nil, fmt.Errorf("entry at 0x%x: hash-2 0x%016x, computed 0x%016x", off, want, got)
	}
	e.refs = make([]pageRef, count) // count*8 <= e.size: bounded by the log
	avail := uint64(e.size) - refsEnd
	var total uint64
	for i := range e.refs {
		r := body[hvleHeaderSize+i*hvleRefSize:]
		p := pageRef{off: le.Uint32(r), size: le.Uint32(r[4:])}
		if p.size == 0 || p.off%logSector != 0 || p.size%logSector != 0 ||
			uint64(p.off)+uint64(p.size) > uint64(e.hiveBins) {
			return nil, fmt.Errorf("entry at 0x%x: page %d (0x%x, 0x%x bytes) is not whole sectors inside 0x%x bytes of bins",
				off, i, p.off, p.size, e.hiveBins)
		}
		total += uint64(p.size)
		if total > avail {
			return nil, fmt.Errorf("entry at 0x%x: pages need 0x%x bytes, the entry holds 0x%x", off, total, avail)
		}
		e.refs[i] = p
	}
	e.pages = body[refsEnd : refsEnd+total]
	return e, nil
}

// maxSequence returns the highest sequence number the log holds: its base
// block's (even when the block fails its checksum, as long as it says
// "regf") and that of every entry at any 512-byte boundary whose header is
// sound (signature, size inside the log, hash-2), stale ones included. ok
// is false when there is none. Only hash-2 (the 32 header bytes, sequence
// number included) is checked: hash-1 covers the entry's body, and
// hashing the body of a candidate at every boundary costs the rest of the
// log each time, quadratic on a hostile log. Counting an entry whose body
// is torn can only raise the result, the safe direction for a writer.
func (l *logFile) maxSequence() (max uint32, ok bool) {
	see := func(s uint32) {
		if !ok || s > max {
			max, ok = s, true
		}
	}
	if len(l.head) >= logSector && string(l.head[:4]) == "regf" {
		see(binary.LittleEndian.Uint32(l.head[bbOffSequence1:]))
		see(binary.LittleEndian.Uint32(l.head[bbOffSequence2:]))
	}
	// The log is scanned in windows of logScanChunk bytes (plus the 40
	// header bytes of an entry starting at a window's last sector).
	var buf []byte
	for start := int64(logSector); start+hvleHeaderSize <= l.size; start += logScanChunk {
		n := min(logScanChunk+hvleHeaderSize, l.size-start)
		if int64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := l.r.ReadAt(buf, start); err != nil {
			break // unreadable from here: what was seen stands
		}
		for rel := int64(0); rel < logScanChunk && rel+hvleHeaderSize <= n; rel += logSector {
			if string(buf[rel:rel+4]) != hvleSignature {
				continue
			}
			if seq, sok := logEntryHeaderSeq(buf[rel:rel+hvleHeaderSize], l.size-start-rel); sok {
				see(seq)
			}
		}
	}
	return max, ok
}

// logEntryHeaderSeq returns the sequence number of the entry whose 40
// header bytes are h, with rest bytes of the log from its start, when the
// header is sound: "HvLE", a size that is a non-zero multiple of 512
// inside the log, and a valid hash-2.
func logEntryHeaderSeq(h []byte, rest int64) (uint32, bool) {
	if len(h) < hvleHeaderSize {
		return 0, false
	}
	le := binary.LittleEndian
	size := le.Uint32(h[hvleOffSize:])
	if string(h[:4]) != hvleSignature || size == 0 || size%logSector != 0 || int64(size) > rest {
		return 0, false
	}
	if marvin32(logEntryHashSeed, h[:hvleOffHash2]) != le.Uint64(h[hvleOffHash2:]) {
		return 0, false
	}
	return le.Uint32(h[hvleOffSequence:]), true
}

// alignUp rounds v up to a multiple of a (a power of two).
func alignUp(v, a int64) int64 { return (v + a - 1) &^ (a - 1) }
