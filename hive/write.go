package hive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	ftime "github.com/wuoffline/wuoffline/internal/filetime"
)

// edPageSize is the granularity of the editor's copy-on-write view.
const edPageSize = 4096

// WriteRange is a byte range of the hive file that Editor.Flush writes.
type WriteRange struct {
	Off, Len int64
}

// edView is the hive as the editor sees it: the reader's bytes (the
// primary, or the recovered image of a dirty hive) with the editor's
// planned writes laid over them in 4 KiB copy-on-write pages. The Hive's
// reader is pointed at it, so every read after an edit sees the edit, and
// nothing reaches the caller's io.WriterAt before Flush. Memory is one
// page per page written.
type edView struct {
	base     io.ReaderAt
	baseSize int64 // bytes readable from base
	size     int64 // logical size: max(baseSize, end of the hive bins)
	pages    map[int64]*[edPageSize]byte
	dirty    []WriteRange // written since the last flush, sorted, merged
	writes   int          // number of WriteAt calls, to detect a half-done edit
}

func newEdView(base io.ReaderAt, size int64) *edView {
	return &edView{base: base, baseSize: size, size: size, pages: map[int64]*[edPageSize]byte{}}
}

// ReadAt implements io.ReaderAt over the base with the planned writes.
func (v *edView) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("hive: editor view: negative offset %d", off)
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= v.size {
			return n, io.EOF
		}
		pg := pos &^ (edPageSize - 1)
		if page, ok := v.pages[pg]; ok {
			n += copy(p[n:min(len(p), n+int(v.size-pos))], page[pos-pg:])
			continue
		}
		// A run of pages nobody wrote: one read from the base.
		end := pg + edPageSize
		for end < pos+int64(len(p)-n) && end < v.size {
			if _, ok := v.pages[end]; ok {
				break
			}
			end += edPageSize
		}
		end = min(end, pos+int64(len(p)-n), v.size)
		chunk := p[n : n+int(end-pos)]
		m := int64(0)
		if pos < v.baseSize {
			m = min(int64(len(chunk)), v.baseSize-pos)
			if k, err := v.base.ReadAt(chunk[:m], pos); int64(k) < m {
				if err == nil {
					err = io.ErrUnexpectedEOF
				}
				return n + k, err
			}
		}
		clear(chunk[m:])
		n += len(chunk)
	}
	return n, nil
}

// write records a planned write of p at file offset off.
func (v *edView) write(p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > v.size {
		return fmt.Errorf("hive: editor: write of %d bytes at 0x%x outside the hive (0x%x bytes)", len(p), off, v.size)
	}
	v.writes++
	for n := 0; n < len(p); {
		pos := off + int64(n)
		pg := pos &^ (edPageSize - 1)
		page, ok := v.pages[pg]
		if !ok {
			page = new([edPageSize]byte)
			if _, err := v.ReadAt(page[:min(edPageSize, v.size-pg)], pg); err != nil && err != io.EOF {
				return fmt.Errorf("hive: editor: reading page 0x%x: %w", pg, err)
			}
			v.pages[pg] = page
		}
		n += copy(page[pos-pg:], p[n:])
	}
	v.dirty = addRange(v.dirty, WriteRange{off, int64(len(p))})
	return nil
}

// addRange inserts r into the sorted list rs, merging overlapping and
// touching ranges.
func addRange(rs []WriteRange, r WriteRange) []WriteRange {
	if r.Len <= 0 {
		return rs
	}
	i, _ := slices.BinarySearchFunc(rs, r.Off, func(x WriteRange, off int64) int {
		switch {
		case x.Off+x.Len < off:
			return -1
		case x.Off > off:
			return 1
		}
		return 0
	})
	// rs[i] is the first range ending at or after r.Off (or starting after).
	j := i
	start, end := r.Off, r.Off+r.Len
	for j < len(rs) && rs[j].Off <= end {
		start = min(start, rs[j].Off)
		end = max(end, rs[j].Off+rs[j].Len)
		j++
	}
	return slices.Replace(rs, i, j, WriteRange{start, end - start})
}

// pendingRanges returns what Flush would write, sorted and merged: the
// recovered state of a dirty hive (once), the edits since the last flush,
// and the base block.
func (e *Editor) pendingRanges() []WriteRange {
	var rs []WriteRange
	for _, r := range e.view.dirty {
		rs = addRange(rs, r)
	}
	if e.recPending && e.h.rec != nil {
		for off := range e.h.rec.pages {
			rs = addRange(rs, WriteRange{off, logSector})
		}
		if e.h.rec.size > e.h.rec.primarySize {
			rs = addRange(rs, WriteRange{e.h.rec.primarySize, e.h.rec.size - e.h.rec.primarySize})
		}
	}
	if len(rs) == 0 && !e.recPending {
		return nil
	}
	// The base block: the whole block after recovery (the primary's may be
	// torn), else the 512 bytes its checksum covers and that change.
	bbLen := int64(logBaseBlockSize)
	if e.recPending {
		bbLen = BaseBlockSize
	}
	return addRange(rs, WriteRange{0, bbLen})
}

// Ranges returns the byte ranges of the hive file that Flush will write,
// sorted and merged (a dry run reports these). It is empty when there is
// nothing to write.
func (e *Editor) Ranges() []WriteRange { return e.pendingRanges() }

// ErrVerify is wrapped by Flush's error when the planned bytes fail
// Verify: an editor bug, never the hive's damage (damage is refused before
// anything is planned). Nothing is written then.
var ErrVerify = errors.New("the planned hive fails verification of the structures the edits touched")

// Flush writes everything planned through the editor's io.WriterAt: the
// recovered state of a dirty hive, the edits, then, last, a base block
// with both sequence numbers equal and above every sequence number in the
// primary and its logs, the current hive-bins size and a correct
// checksum. When the hive bins end beyond the file, the grow function is
// called first. Flush writes nothing if an earlier edit failed half-way, or
// if Verify finds a problem in the planned bytes (ErrVerify).
func (e *Editor) Flush() error {
	if e.err != nil {
		return fmt.Errorf("hive: editor: an earlier edit failed, nothing written: %w", e.err)
	}
	rs := e.pendingRanges()
	if len(rs) == 0 {
		return nil
	}
	// The planned bytes must pass the touched-structure check before any
	// of them is written.
	if r := e.Verify(); !r.OK() {
		e.err = fmt.Errorf("%w:\n%s", ErrVerify, r)
		return fmt.Errorf("hive: editor: nothing written: %w", e.err)
	}
	need := BaseBlockSize + int64(e.binsSize)
	if need > e.fileSize {
		if e.grow == nil {
			return fmt.Errorf("hive: editor: the hive needs %d bytes, the file holds %d, and no grow function was given: %w", need, e.fileSize, ErrNoGrow)
		}
		if err := e.grow(need); err != nil {
			return fmt.Errorf("hive: editor: growing the file to %d bytes: %w", need, err)
		}
		e.fileSize = need
	}
	bb, err := e.newBaseBlock()
	if err != nil {
		return err
	}
	// The base block goes last: until it is written the file keeps its
	// old base block.
	var buf []byte
	for _, r := range rs {
		if r.Off < BaseBlockSize {
			if r.Off+r.Len <= BaseBlockSize {
				continue
			}
			r = WriteRange{BaseBlockSize, r.Off + r.Len - BaseBlockSize}
		}
		if int64(cap(buf)) < r.Len {
			buf = make([]byte, r.Len)
		}
		b := buf[:r.Len]
		if _, err := e.view.ReadAt(b, r.Off); err != nil {
			e.err = err
			return fmt.Errorf("hive: editor: reading back 0x%x: %w", r.Off, err)
		}
		if _, err := e.w.WriteAt(b, r.Off); err != nil {
			e.err = err
			return fmt.Errorf("hive: editor: writing %d bytes at 0x%x: %w", len(b), r.Off, err)
		}
	}
	bbLen := logBaseBlockSize
	if e.recPending {
		bbLen = BaseBlockSize
	}
	if _, err := e.w.WriteAt(bb[:bbLen], 0); err != nil {
		e.err = err
		return fmt.Errorf("hive: editor: writing the base block: %w", err)
	}
	// The view now holds what the file holds; keep its pages (the caller's
	// reader need not see w's writes) but start a new set of changes.
	if err := e.view.write(bb, 0); err != nil {
		return err
	}
	e.view.dirty = nil
	e.recPending = false
	e.h.base, _ = ParseBaseBlock(bb)
	e.seq++
	return nil
}

// newBaseBlock builds the base block Flush writes from the one in effect.
func (e *Editor) newBaseBlock() ([]byte, error) {
	bb := make([]byte, BaseBlockSize)
	if _, err := e.view.ReadAt(bb, 0); err != nil {
		return nil, fmt.Errorf("hive: editor: reading the base block: %w", err)
	}
	le := binary.LittleEndian
	le.PutUint32(bb[bbOffSequence1:], e.seq)
	le.PutUint32(bb[bbOffSequence2:], e.seq)
	le.PutUint64(bb[bbOffLastWritten:], ftime.FromTime(e.now()))
	le.PutUint32(bb[bbOffFileType:], fileTypePrimary)
	le.PutUint32(bb[bbOffHiveBins:], e.binsSize)
	putBaseBlockChecksum(bb)
	return bb, nil
}
