package access

import (
	"fmt"
	"io"
)

// alignedChunk bounds the bounce buffer of an alignedFile.
const alignedChunk = 1 << 20

// alignedFile turns arbitrary reads and writes into whole-sector I/O on a
// device that refuses anything else (Windows disk and volume handles, raw
// devices on the BSDs). Partial sectors are read, patched and written back.
type alignedFile struct {
	f  handle
	ss int64
}

func newAlignedFile(f handle, sector int) *alignedFile {
	return &alignedFile{f: f, ss: int64(sector)}
}

// span returns the sector-aligned range covering [off, off+n), at most
// alignedChunk bytes long.
func (a *alignedFile) span(off int64, n int) (start, end int64) {
	start = off - off%a.ss
	end = off + int64(n)
	if r := end % a.ss; r != 0 {
		end += a.ss - r
	}
	if end-start > alignedChunk {
		end = start + alignedChunk
	}
	return start, end
}

// window returns the bounce buffer *buf (allocated on first use, at most
// alignedChunk bytes) sliced to the aligned span covering [pos, pos+n),
// and the span's start.
func (a *alignedFile) window(buf *[]byte, pos int64, n int) (b []byte, start int64) {
	start, end := a.span(pos, n)
	if *buf == nil {
		*buf = make([]byte, min(int64(alignedChunk), end-start))
	}
	return (*buf)[:end-start], start
}

// ReadAt reads len(p) bytes at off through sector-aligned reads.
func (a *alignedFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("access: read at negative offset %d", off)
	}
	var buf []byte
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		b, start := a.window(&buf, pos, len(p)-done)
		n, err := a.f.ReadAt(b, start)
		if skip := int(pos - start); n > skip {
			done += copy(p[done:], b[skip:n])
		}
		if err != nil || n < len(b) {
			if done == len(p) {
				return done, nil
			}
			if err == nil {
				err = io.EOF
			}
			return done, err
		}
	}
	return done, nil
}

// WriteAt writes p at off, reading back the sectors it covers only in part.
func (a *alignedFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("access: write at negative offset %d", off)
	}
	var buf []byte
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		b, start := a.window(&buf, pos, len(p)-done)
		skip := int(pos - start)
		k := min(len(p)-done, len(b)-skip)
		if skip != 0 || k != len(b) {
			if n, err := a.f.ReadAt(b, start); n < len(b) {
				if err == nil {
					err = io.ErrUnexpectedEOF
				}
				return done, fmt.Errorf("access: reading sectors at %d before a partial write: %w", start, err)
			}
		}
		copy(b[skip:], p[done:done+k])
		if _, err := a.f.WriteAt(b, start); err != nil {
			return done, err
		}
		done += k
	}
	return done, nil
}
