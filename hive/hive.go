// Package hive reads, checks and edits Windows registry hive files (regf).
//
// The reader is strict and lazy: Open reads the 4096-byte base block (and,
// for a dirty hive, replays its transaction logs in memory); cells are read
// from the io.ReaderAt only when a key, list or value needs them, so memory
// follows what is actually read, not the size of the file. Every offset
// and length is checked against the cell and bin holding it before use;
// damaged structures give a *CellError naming the cell offset, wrapped in a
// *KeyError naming the key path.
//
// The Editor changes only what checks clean: every structure an edit reads
// or changes (the cells, their bins, the path from the root, the free cells
// it allocates from) must be sound, or the edit is refused with a
// *DamagedError and nothing is planned; damage elsewhere in the hive does
// not matter to it. Editor.Verify checks the touched structures again on
// the planned bytes, reading only them; Hive.Check is the full check.
// Memory follows the bytes really given (the reader's size, the logs'
// contents), never a size that a header declares.
//
// Names are compared as Windows' configuration manager compares them: code
// unit by code unit after RtlUpcaseUnicodeChar (see upcase.go), not with Go's
// unicode.ToUpper.
package hive

import (
	"fmt"
	"io"
	"sync"
)

// Log is a transaction log of a hive (SYSTEM.LOG1, SYSTEM.LOG2), used only
// when the primary file is dirty. Name is for messages.
type Log struct {
	Name string
	R    io.ReaderAt
	Size int64
}

// nilCell is the "no cell" offset in every cell reference.
const nilCell = 0xFFFFFFFF

// Hive is an open registry hive. Its methods are safe for concurrent use.
type Hive struct {
	src     io.ReaderAt // primary, or the recovered overlay
	srcSize int64
	base    *BaseBlock // the base block in effect (recovered one if recovered)

	dirty, recovered bool
	rec              *recovered // log recovery result, nil unless recovered

	// dataEnd is where the bytes really given end: the primary's size,
	// or after recovery the end of the last log page laid beyond it.
	// Bins are only read up to it, so nothing is allocated for a size a
	// base block (or log) declares but no data backs.
	dataEnd int64

	// strict is set while an Editor edits the hive: every bin a cell is
	// read from must be sound (soundBin), and touched records the cells
	// read and changed, for Editor.Verify.
	strict  bool
	touched *touchSet

	mu   sync.Mutex
	bins binIndex
}

// Open opens the hive held by r (size bytes). When the primary is dirty
// (sequence numbers differ or its checksum is wrong) and logs are given, the
// logs are replayed in memory exactly as Windows does at load; nothing is
// written. A dirty hive opened without logs is read as it is, with the
// hive-bins size taken from the bins actually present (Dirty() reports it).
// A dirty hive whose logs cannot recover it is an error wrapping ErrDirty.
func Open(r io.ReaderAt, size int64, logs ...Log) (*Hive, error) {
	if size < BaseBlockSize {
		return nil, fmt.Errorf("hive: %w: %d bytes, smaller than a base block", ErrTruncated, size)
	}
	buf := make([]byte, BaseBlockSize)
	if _, err := r.ReadAt(buf, 0); err != nil {
		return nil, fmt.Errorf("hive: reading base block: %w", err)
	}
	bb, perr := ParseBaseBlock(buf)
	dirty := false
	switch {
	case perr == nil:
		if bb.FileType != fileTypePrimary {
			return nil, fmt.Errorf("%w: file type %d: a transaction log, not a primary hive", ErrBaseBlock, bb.FileType)
		}
		dirty = bb.Dirty()
	case string(buf[:4]) == "regf" && Checksum(buf) != leUint32(buf[bbOffChecksum:]):
		// A base block that does not parse but fails its checksum is a
		// torn write: Windows takes the base block from a log.
		dirty = true
	default:
		return nil, perr
	}
	h := &Hive{src: r, srcSize: size, base: bb, dirty: dirty, dataEnd: size}
	if len(logs) > 0 {
		// recoverHive applies Windows' own notion of dirty (which also
		// covers a base block with a bad clustering factor or bins size)
		// and ignores the logs of a clean hive.
		rec, err := recoverHive(r, size, logs)
		if err != nil {
			return nil, fmt.Errorf("%w (%w)", err, ErrDirty)
		}
		if rec.dirty {
			rbb, err := ParseBaseBlock(rec.base)
			if err != nil {
				return nil, fmt.Errorf("%w (the recovered base block)", err)
			}
			h.base = rbb
			h.src = rec.ReaderAt(r)
			h.srcSize = max(rec.size, rec.primarySize)
			h.recovered, h.dirty = true, true
			h.rec = rec
			h.dataEnd = rec.dataEnd()
		}
	}
	if h.base == nil {
		return nil, fmt.Errorf("%w (%w: no log given to recover it)", perr, ErrDirty)
	}
	hb := int64(h.base.HiveBinsSize)
	if !dirty || h.recovered {
		// A clean (or recovered) base block is trusted: its size must be
		// sane and the file must hold all of it.
		if hb == 0 || hb%binAlign != 0 || hb > 0x7FFFFFFF {
			return nil, fmt.Errorf("%w: hive-bins size 0x%x is not a positive multiple of 4096", ErrBaseBlock, hb)
		}
		if BaseBlockSize+hb > h.srcSize {
			return nil, fmt.Errorf("hive: %w: base block declares 0x%x bytes of hive bins, the file holds 0x%x", ErrTruncated, hb, h.srcSize-BaseBlockSize)
		}
		// Bins past the data given are not read (the checker reports the
		// base block's size as wrong, the editor refuses).
		h.bins.limit = uint32(min(hb, (h.dataEnd-BaseBlockSize)&^(binAlign-1)))
	} else {
		// Dirty, not recovered: the header's size is untrusted; the bins
		// end at the first thing that is not a bin (or at end of file).
		h.bins.limit = uint32(min(h.srcSize-BaseBlockSize, 0x7FFFF000) &^ (binAlign - 1))
		h.bins.lenient = true
	}
	return h, nil
}

// Dirty reports whether the primary file needed recovery: its sequence
// numbers differ or its base-block checksum is wrong.
func (h *Hive) Dirty() bool { return h.dirty }

// Recovered reports whether transaction logs were replayed (in memory).
func (h *Hive) Recovered() bool { return h.recovered }

// BaseBlock returns the base block in effect: the primary's, or after
// recovery the recovered one. The caller must not modify it.
func (h *Hive) BaseBlock() *BaseBlock { return h.base }

// Minor returns the format's minor version (3 to 6).
func (h *Hive) Minor() uint32 { return h.base.Minor }

// HiveBinsSize returns the size of the hive-bins data in effect: the base
// block's, or for a dirty hive read without recovery the size of the chain
// of bins actually present.
func (h *Hive) HiveBinsSize() (uint32, error) {
	if !h.bins.lenient {
		return h.bins.limit, nil
	}
	bins, err := h.allBins()
	if len(bins) == 0 {
		return 0, err
	}
	return bins[len(bins)-1].end(), err
}

// ReaderAt returns the hive's bytes as the reader sees them (after log
// recovery, if any), and their size.
func (h *Hive) ReaderAt() (io.ReaderAt, int64) { return h.src, h.srcSize }

// Root returns the root key (the base block's root cell).
func (h *Hive) Root() (*Key, error) {
	k, err := h.readKey(h.base.RootCell, "")
	if err != nil {
		return nil, &KeyError{Err: err}
	}
	return k, nil
}

// findBin returns the bin holding cell offset off.
func (h *Hive) findBin(off uint32) (hbin, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bins.find(h.src, off)
}

// allBins returns every hive bin.
func (h *Hive) allBins() ([]hbin, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	bins, err := h.bins.all(h.src)
	return append([]hbin(nil), bins...), err
}
