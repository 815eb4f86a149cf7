package hive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
)

// ErrNoUsableLog is wrapped by recoverHive's error when the primary is
// dirty and no supplied log can be applied to it.
var ErrNoUsableLog = errors.New("no usable transaction log")

// Log formats, as reported in recovered.format.
const (
	logFormatNone = 0              // nothing applied (primary clean)
	logFormatOld  = fileTypeLogOld // DIRT bitmap
	logFormatNew  = fileTypeLogNew // HvLE entries
)

// bbOffFlags is the base block's flags field; only bit 0 (KTM locked the
// hive) travels in new-format log entries.
const bbOffFlags = 144

// appliedLog records what recovery took from one log, in application order.
type appliedLog struct {
	name      string
	entries   int    // new format: entries applied; old format: 0
	pages     int    // 512-byte pages written over the primary
	firstSeq  uint32 // new format: sequence numbers of the first and last entry applied
	lastSeq   uint32
	oldFormat bool
}

// recovered is a hive's state after log recovery, held in memory: the
// primary file is never written.
type recovered struct {
	// base is the recovered 4096-byte base block: file type 0, both
	// sequence numbers equal, hive-bins size of the last applied entry (or
	// of the old-format log), checksum recomputed. For a clean primary it
	// is the primary's own base block.
	base []byte
	// pages maps file offsets (multiples of 512, >= 4096) to 512-byte
	// pages that replace the primary's bytes. The slices point into the
	// logs' data and must not be modified.
	pages map[int64][]byte
	// size is the recovered hive's length: 4096 + hive-bins size.
	size int64
	// primarySize is the primary file's length; bytes beyond size up to it
	// (remnants after the last bin) still read from the primary.
	primarySize int64

	dirty   bool         // the primary needed recovery
	format  int          // logFormatNone, logFormatOld or logFormatNew
	applied []appliedLog // in application order
	// lastSeq is the sequence number written into base (both fields).
	lastSeq uint32
	// maxLogSequence is the highest sequence number found anywhere: the
	// primary's two, every log's base block, every entry with valid
	// hashes (applied or stale). A writer that saves this hive must use
	// a sequence number above it (nextSequence) so that Windows never
	// chains an old log entry onto the saved state.
	maxLogSequence uint32
}

// nextSequence returns the sequence number a writer must put in both
// fields of the base block it writes after recovery and editing: one
// above every number in the primary and its logs.
func (rc *recovered) nextSequence() uint32 { return rc.maxLogSequence + 1 }

// entriesApplied returns the number of new-format entries applied.
func (rc *recovered) entriesApplied() int {
	n := 0
	for _, a := range rc.applied {
		n += a.entries
	}
	return n
}

// dataEnd returns where the bytes backed by real data end: the primary
// file, or the last log page laid beyond it. Past it the recovered image
// reads zeros that nothing on disk holds.
func (rc *recovered) dataEnd() int64 {
	end := rc.primarySize
	for off := range rc.pages {
		end = max(end, off+logSector)
	}
	return min(end, max(rc.size, rc.primarySize))
}

// ReaderAt returns the recovered hive as an io.ReaderAt over primary (the
// same primary recoverHive read): the recovered base block at 0-4095, log
// pages where recovery wrote them, the primary elsewhere, zeros where the
// hive grew beyond the primary. It is max(size, primarySize) bytes long.
func (rc *recovered) ReaderAt(primary io.ReaderAt) io.ReaderAt {
	return &overlayReader{rc: rc, primary: primary, end: max(rc.size, rc.primarySize)}
}

// overlayReader is rc's pages laid over the primary file.
type overlayReader struct {
	rc      *recovered
	primary io.ReaderAt
	end     int64
}

// overlayChunk bounds one read from the primary, so a large ReadAt is
// served in few calls while page lookups stay per 512 bytes.
const overlayChunk = 64 << 10

// ReadAt implements io.ReaderAt.
func (o *overlayReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("hive: recovered hive: negative offset %d", off)
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= o.end {
			return n, io.EOF
		}
		rest := min(int64(len(p)-n), o.end-pos)
		if pos < BaseBlockSize {
			n += copy(p[n:n+int(min(rest, BaseBlockSize-pos))], o.rc.base[pos:])
			continue
		}
		sector := pos &^ (logSector - 1)
		if pg, ok := o.rc.pages[sector]; ok {
			n += copy(p[n:n+int(min(rest, sector+logSector-pos))], pg[pos-sector:])
			continue
		}
		// Extend over following sectors that no page replaces.
		end := sector + logSector
		for end-pos < min(rest, overlayChunk) {
			if _, ok := o.rc.pages[end]; ok {
				break
			}
			end += logSector
		}
		chunk := p[n : n+int(min(rest, end-pos))]
		m := int64(0)
		if pos < o.rc.primarySize {
			m = min(int64(len(chunk)), o.rc.primarySize-pos)
			if k, err := o.primary.ReadAt(chunk[:m], pos); int64(k) < m {
				if err == nil {
					err = io.ErrUnexpectedEOF
				}
				return n + k, fmt.Errorf("hive: recovered hive: reading primary at 0x%x: %w", pos, err)
			}
		}
		clear(chunk[m:]) // the hive grew beyond the primary file
		n += len(chunk)
	}
	return n, nil
}

// recoverHive replays the transaction logs of the primary hive r (size
// bytes) in memory, as Windows does when it loads a dirty hive, and
// returns the result; nothing is written. For a clean primary it returns
// a recovered with dirty false and no pages (Windows ignores the logs of
// a clean hive, stale entries included); its logs are still read for
// maxLogSequence, so an editor should pass them.
//
// The rules (formats.md "Dirty hives and logs", regf specification):
//   - The primary is dirty when its base block is invalid (signature,
//     version, type, clustering or checksum) or its sequence numbers
//     differ.
//   - New-format logs (HvLE) are preferred. With a valid primary base
//     block, the logs are taken in order of their base-block sequence
//     numbers; the first whose sequence is >= the primary's secondary
//     sequence starts replay; its entries N, N+1, ... are applied in
//     order (every one, even when the primary already holds newer data:
//     entries are whole-page snapshots); replay stops at a bad entry
//     (signature, size, hash, hive-bins size) or a gap, and continues
//     with the next log only if its sequence is exactly last+1. With an
//     invalid primary base block, only the log with the newest sequence
//     is replayed and its base block replaces the primary's.
//   - Old-format logs (DIRT) are used when no new-format log applies: the
//     log whose base block is newest (by last-written time, ties to the
//     first given) among those not older than the primary; its dirty
//     pages are applied in bitmap order, except from the first dirty bin
//     whose header is wrong onwards (dropFromInvalidBin).
//   - Empty, damaged or foreign logs are skipped; if none applies the
//     error wraps ErrNoUsableLog.
func recoverHive(r io.ReaderAt, size int64, logs []Log) (*recovered, error) {
	if size < BaseBlockSize {
		return nil, fmt.Errorf("hive: %d bytes, smaller than a base block", size)
	}
	primary := make([]byte, BaseBlockSize)
	if n, err := r.ReadAt(primary, 0); n < BaseBlockSize {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("hive: reading base block: %w", err)
	}
	pbb, perr := ParseBaseBlock(primary)
	valid := perr == nil && pbb.ChecksumOK && pbb.FileType == fileTypePrimary && pbb.Clustering == 1 &&
		pbb.HiveBinsSize != 0 && pbb.HiveBinsSize%binBlock == 0 && pbb.HiveBinsSize <= maxHiveBinsSize
	if perr != nil && string(primary[:4]) != "regf" {
		return nil, fmt.Errorf("hive: primary: %w", perr)
	}
	rc := &recovered{primarySize: size}
	rc.maxLogSequence = max(binary.LittleEndian.Uint32(primary[bbOffSequence1:]), binary.LittleEndian.Uint32(primary[bbOffSequence2:]))
	clean := valid && pbb.Sequence1 == pbb.Sequence2

	// The logs are read even for a clean primary, only for their sequence
	// numbers: a writer must save above them, or a later recovery that
	// trusts the newest log (invalid primary base block) could pick a
	// stale one.
	var files []*logFile
	for _, l := range logs {
		lf, err := readLog(l)
		if err != nil {
			if clean {
				continue // never applied: an unreadable log does not matter
			}
			return nil, err
		}
		if s, ok := lf.maxSequence(); ok && s > rc.maxLogSequence {
			rc.maxLogSequence = s
		}
		files = append(files, lf)
	}
	if clean {
		rc.base = primary
		rc.size = BaseBlockSize + int64(pbb.HiveBinsSize)
		return rc, nil
	}
	rc.dirty = true

	if rc.replayNew(files, primary, pbb, valid) {
		return rc, nil
	}
	if ok, err := rc.replayOld(r, files, primary, pbb, valid); err != nil || ok {
		if err != nil {
			return nil, err
		}
		return rc, nil
	}
	return nil, fmt.Errorf("hive: primary is dirty: %w%s", ErrNoUsableLog, describeLogs(files))
}

// describeLogs lists why each log was not used, for the error message.
func describeLogs(files []*logFile) string {
	if len(files) == 0 {
		return " (no logs given)"
	}
	s := ""
	for _, lf := range files {
		why := "not applicable to this primary"
		if lf.err != nil {
			why = lf.err.Error()
		}
		s += fmt.Sprintf("; %s: %s", lf.name, why)
	}
	return s
}

// seqBefore reports whether sequence number a precedes b, in serial-number
// arithmetic (the 32-bit counters may wrap).
func seqBefore(a, b uint32) bool { return int32(a-b) < 0 }

// replayNew applies new-format logs; it reports whether any entry was
// applied.
func (rc *recovered) replayNew(files []*logFile, primary []byte, pbb *BaseBlock, valid bool) bool {
	var cands []*logFile
	for _, lf := range files {
		if lf.isNew() {
			cands = append(cands, lf)
		}
	}
	if len(cands) == 0 {
		return false
	}
	// Earliest sequence first; the stable sort keeps the given order for
	// equal numbers so the result does not depend on it otherwise.
	sort.SliceStable(cands, func(i, j int) bool { return seqBefore(cands[i].base.Sequence1, cands[j].base.Sequence1) })
	if !valid {
		// The primary's base block cannot be trusted: only the log with
		// the latest entries is used, and its base block is the start.
		cands = cands[len(cands)-1:]
	}
	var last *logEntry
	var lastLog *logFile
	for _, lf := range cands {
		if last == nil {
			if valid && seqBefore(lf.base.Sequence1, pbb.Sequence2) {
				continue // stale: the primary already holds this log's data
			}
		} else if lf.base.Sequence1 != last.seq+1 {
			break
		}
		a := appliedLog{name: lf.name, entries: len(lf.entries), firstSeq: lf.entries[0].seq}
		for _, e := range lf.entries {
			a.pages += rc.applyEntry(e)
			last = e
		}
		a.lastSeq = last.seq
		rc.applied = append(rc.applied, a)
		lastLog = lf
	}
	if last == nil {
		return false
	}
	base := make([]byte, BaseBlockSize)
	if valid {
		copy(base, primary)
	} else {
		copy(base, lastLog.head)
	}
	le := binary.LittleEndian
	le.PutUint32(base[bbOffFileType:], fileTypePrimary)
	le.PutUint32(base[bbOffSequence1:], last.seq)
	le.PutUint32(base[bbOffSequence2:], last.seq)
	le.PutUint32(base[bbOffHiveBins:], last.hiveBins)
	flags := le.Uint32(base[bbOffFlags:])&^1 | last.flags&1
	le.PutUint32(base[bbOffFlags:], flags)
	putBaseBlockChecksum(base)
	rc.base = base
	rc.size = BaseBlockSize + int64(last.hiveBins)
	rc.format = logFormatNew
	rc.lastSeq = last.seq
	return true
}

// applyEntry lays the entry's pages over the hive, split into 512-byte
// sectors; it returns the number of sectors.
func (rc *recovered) applyEntry(e *logEntry) int {
	if rc.pages == nil {
		rc.pages = make(map[int64][]byte)
	}
	n, pos := 0, 0
	for _, p := range e.refs {
		for s := uint32(0); s < p.size; s += logSector {
			rc.pages[BaseBlockSize+int64(p.off)+int64(s)] = e.pages[pos : pos+logSector : pos+logSector]
			pos += logSector
			n++
		}
	}
	return n
}

// replayOld applies the best old-format log; it reports whether one was
// applied (the error is a failure to read its pages).
func (rc *recovered) replayOld(r io.ReaderAt, files []*logFile, primary []byte, pbb *BaseBlock, valid bool) (bool, error) {
	// The primary's last-written time; with an untrusted base block, the
	// first bin's timestamp (hbin header offset 20), as Windows uses.
	var ptime uint64
	if valid {
		ptime = binary.LittleEndian.Uint64(primary[bbOffLastWritten:])
	} else {
		var hb [32]byte
		if n, _ := r.ReadAt(hb[:], BaseBlockSize); n == len(hb) && string(hb[:4]) == "hbin" {
			ptime = binary.LittleEndian.Uint64(hb[20:])
		}
	}
	var best *logFile
	var bestTime uint64
	for _, lf := range files {
		if !lf.isOld() {
			continue
		}
		t := binary.LittleEndian.Uint64(lf.head[bbOffLastWritten:])
		if t < ptime {
			continue // older than the primary: already reconciled
		}
		if best == nil || t > bestTime {
			best, bestTime = lf, t
		}
	}
	if best == nil {
		return false, nil
	}
	a := appliedLog{name: best.name, oldFormat: true}
	if rc.pages == nil {
		rc.pages = make(map[int64][]byte)
	}
	if err := best.oldPages(func(off int64, page []byte) bool {
		rc.pages[off] = page
		a.pages++
		return true
	}); err != nil {
		return false, err
	}
	rc.size = BaseBlockSize + int64(best.base.HiveBinsSize)
	a.pages -= rc.dropFromInvalidBin(r)
	// The log's base block is a copy of the in-memory one at the time of
	// the flush: it replaces the primary's first sector (all of it when
	// the primary's is unusable).
	base := make([]byte, BaseBlockSize)
	if valid {
		copy(base, primary)
	}
	copy(base, best.head)
	le := binary.LittleEndian
	seq := best.base.Sequence1
	le.PutUint32(base[bbOffFileType:], fileTypePrimary)
	le.PutUint32(base[bbOffSequence1:], seq)
	le.PutUint32(base[bbOffSequence2:], seq)
	putBaseBlockChecksum(base)
	rc.base = base
	rc.format = logFormatOld
	rc.lastSeq = seq
	rc.applied = append(rc.applied, a)
	return true, nil
}

// pageWrite is one contiguous run of recovered bytes to store in the
// primary file at off.
type pageWrite struct {
	off  int64
	data []byte
}

// pageWrites returns the recovered hive-bins bytes that differ in origin
// from the primary, as contiguous runs in file order (adjacent 512-byte
// pages merged, data copied). A writer that persists the recovery writes
// these, extends the file to at least size, and then writes a base block
// (baseWithSequence) last, so that an interruption leaves a hive that is
// still dirty and still recoverable from the untouched logs.
func (rc *recovered) pageWrites() []pageWrite {
	offs := make([]int64, 0, len(rc.pages))
	for off := range rc.pages {
		offs = append(offs, off)
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	var ws []pageWrite
	for _, off := range offs {
		pg := rc.pages[off]
		if n := len(ws); n > 0 && ws[n-1].off+int64(len(ws[n-1].data)) == off {
			ws[n-1].data = append(ws[n-1].data, pg...)
			continue
		}
		ws = append(ws, pageWrite{off: off, data: append([]byte(nil), pg...)})
	}
	return ws
}

// baseWithSequence returns a copy of the recovered base block with both
// sequence numbers set to seq and the checksum recomputed: what a writer
// stores at offset 0 once the recovered (and edited) bins are on disk.
// seq should be nextSequence() (or higher), so that no entry left in the
// logs can ever be chained onto the saved state.
func (rc *recovered) baseWithSequence(seq uint32) []byte {
	b := append([]byte(nil), rc.base...)
	binary.LittleEndian.PutUint32(b[bbOffSequence1:], seq)
	binary.LittleEndian.PutUint32(b[bbOffSequence2:], seq)
	putBaseBlockChecksum(b)
	return b
}

// dropFromInvalidBin checks the bins that old-format dirty pages touch and
// cuts replay at the first bad one. Windows replays an old-format log bin
// by bin and stops at a dirty bin whose header is wrong ("hbin", offset
// equal to its position, size a non-zero multiple of 4096): that bin and
// everything after it keep the primary's bytes (regf specification, old
// format, "Dirty pages"). The bins are walked on the recovered image from
// the first; a damaged header on a clean page ends the walk without
// cutting (that is the reader's problem, not replay's). It returns the
// number of pages dropped.
func (rc *recovered) dropFromInvalidBin(primary io.ReaderAt) int {
	ra := &overlayReader{rc: rc, primary: primary, end: max(rc.size, rc.primarySize)}
	var h [12]byte
	cut := int64(-1)
	for rel := int64(0); rel < rc.size-BaseBlockSize; {
		off := BaseBlockSize + rel
		_, dirty := rc.pages[off]
		n, _ := ra.ReadAt(h[:], off)
		bo := binary.LittleEndian.Uint32(h[4:])
		bs := binary.LittleEndian.Uint32(h[8:])
		if n < len(h) || string(h[:4]) != "hbin" || int64(bo) != rel || bs < binBlock || bs%binBlock != 0 {
			if dirty {
				cut = off
			}
			break
		}
		rel += int64(bs)
	}
	if cut < 0 {
		return 0
	}
	dropped := 0
	for off := range rc.pages {
		if off >= cut {
			delete(rc.pages, off)
			dropped++
		}
	}
	return dropped
}

// RecoveryInfo describes a replay of transaction logs, for reports.
type RecoveryInfo struct {
	// Format is "new" (HvLE entries, Windows 8.1 and later) or "old"
	// (DIRT bitmap of dirty pages).
	Format string
	// Logs lists the logs applied, in application order.
	Logs []AppliedLog
	// Sequence is the sequence number of the recovered base block: the
	// last entry applied (new format) or the log's (old format).
	Sequence uint32
	// NextSequence is above every sequence number in the primary and in
	// any log: the number a writer stores in both fields when it saves.
	NextSequence uint32
}

// AppliedLog is what recovery took from one log.
type AppliedLog struct {
	Name string
	// Entries is the number of new-format entries applied (0 for an old
	// format log), FirstSequence and LastSequence their numbers.
	Entries                     int
	FirstSequence, LastSequence uint32
	// Pages is the number of 512-byte pages laid over the primary.
	Pages int
}

// info summarises rc for reports; nil when nothing was applied.
func (rc *recovered) info() *RecoveryInfo {
	if len(rc.applied) == 0 {
		return nil
	}
	ri := &RecoveryInfo{Format: "new", Sequence: rc.lastSeq, NextSequence: rc.nextSequence()}
	if rc.format == logFormatOld {
		ri.Format = "old"
	}
	for _, a := range rc.applied {
		ri.Logs = append(ri.Logs, AppliedLog{Name: a.name, Entries: a.entries, FirstSequence: a.firstSeq, LastSequence: a.lastSeq, Pages: a.pages})
	}
	return ri
}
