package eventlog

import (
	"errors"
	"fmt"
	"io"
)

// Sizes of the format.
const (
	fileHeaderSize  = 4096
	chunkSize       = 65536
	chunkHeaderSize = 512
)

// ErrNotEVTX is returned for a file that is not an event log.
var ErrNotEVTX = errors.New("evtx: not an event log file (no ElfFile signature)")

// Limits bound the work of one Read. Zero fields take the defaults.
type Limits struct {
	// MaxBytes bounds the bytes of the file read (default 256 MiB: far
	// above Windows' 20 MiB default log size). Chunks past it are not read
	// and Stats.Truncated says so.
	MaxBytes int64
	// MaxRecords bounds the records decoded (default 1,000,000).
	MaxRecords int
}

const (
	defaultMaxBytes   = 256 << 20
	defaultMaxRecords = 1_000_000
)

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = defaultMaxBytes
	}
	if l.MaxRecords <= 0 {
		l.MaxRecords = defaultMaxRecords
	}
	return l
}

// Stats is what one Read saw.
type Stats struct {
	Chunks  int // chunks with the chunk signature
	Records int // records decoded and passed to fn
	// Skipped counts records that could not be decoded (damaged Binary
	// XML, a size overrunning its chunk).
	Skipped int
	// Truncated is true when a limit stopped the walk before the end.
	Truncated bool
}

// Read calls fn for every record of an event log that can be decoded,
// chunk by chunk, in file order. Damaged chunks and records are skipped
// (counted in Stats.Skipped); only an unreadable or foreign file is an
// error. fn returning false stops the walk.
func Read(r io.ReaderAt, size int64, lim Limits, fn func(*Event) bool) (Stats, error) {
	lim = lim.withDefaults()
	var st Stats
	if size < fileHeaderSize {
		return st, ErrNotEVTX
	}
	hdr := make([]byte, 8)
	if _, err := r.ReadAt(hdr, 0); err != nil {
		return st, fmt.Errorf("evtx: reading file header: %w", err)
	}
	if string(hdr) != "ElfFile\x00" {
		return st, ErrNotEVTX
	}
	n := (size - fileHeaderSize) / chunkSize
	if maxChunks := (lim.MaxBytes - fileHeaderSize) / chunkSize; n > maxChunks {
		n = max(maxChunks, 0)
		st.Truncated = true
	}
	buf := make([]byte, chunkSize)
	for i := int64(0); i < n; i++ {
		off := fileHeaderSize + i*chunkSize
		if _, err := r.ReadAt(buf, off); err != nil && err != io.EOF {
			return st, fmt.Errorf("evtx: reading chunk %d at %d: %w", i, off, err)
		}
		c := chunk(buf)
		if !c.valid() {
			continue // unused (zeroed) chunk of a log that is not full
		}
		st.Chunks++
		if stop := c.records(&st, lim, fn); stop {
			break
		}
	}
	return st, nil
}
