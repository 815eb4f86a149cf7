package preg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HeaderSize is the size of the file header: "PReg" and the u32 version.
const HeaderSize = 8

// Signature starts every registry policy file.
const Signature = "PReg"

// MaxFileSize bounds what Read accepts: real files are a few KiB; a
// larger one is refused rather than read into memory.
const MaxFileSize = 16 << 20

// ErrNotPReg is returned for data that does not start with the header.
var ErrNotPReg = errors.New("preg: not a registry policy file (no PReg version 1 header)")

// File is a parsed registry policy file.
type File struct {
	Version uint32
	Entries []Entry
}

// Read parses the file of size bytes behind r (at most MaxFileSize).
func Read(r io.ReaderAt, size int64) (*File, error) {
	if size < 0 || size > MaxFileSize {
		return nil, fmt.Errorf("preg: file of %d bytes: more than the %d a policy file may have", size, MaxFileSize)
	}
	b := make([]byte, size)
	if _, err := r.ReadAt(b, 0); err != nil && !(err == io.EOF && size == 0) {
		return nil, fmt.Errorf("preg: reading %d bytes: %w", size, err)
	}
	return Parse(b)
}

// Parse parses a whole file. An empty body (just the header) is valid: it
// is what the Group Policy editor leaves when every setting is removed.
func Parse(b []byte) (*File, error) {
	if len(b) < HeaderSize || string(b[:4]) != Signature {
		return nil, ErrNotPReg
	}
	f := &File{Version: binary.LittleEndian.Uint32(b[4:])}
	if f.Version != 1 {
		return nil, fmt.Errorf("preg: version %d at offset 4 (only version 1 exists)", f.Version)
	}
	for off := HeaderSize; off < len(b); {
		e, n, err := parseEntry(b[off:])
		if err != nil {
			return nil, fmt.Errorf("preg: entry at offset %#x: %w", off, err)
		}
		e.Offset = int64(off)
		f.Entries = append(f.Entries, e)
		off += n
	}
	return f, nil
}

// Filter returns the file with the entries drop selects removed, and the
// entries removed. The header and every kept entry stay byte for byte.
func Filter(b []byte, drop func(Entry) bool) ([]byte, []Entry, error) {
	f, err := Parse(b)
	if err != nil {
		return nil, nil, err
	}
	var out bytes.Buffer
	out.Write(b[:HeaderSize])
	var dropped []Entry
	for _, e := range f.Entries {
		if drop(e) {
			dropped = append(dropped, e)
			continue
		}
		out.Write(e.Raw)
	}
	return out.Bytes(), dropped, nil
}

// Encode writes a registry policy file holding the entries (Raw ignored).
func Encode(entries []Entry) []byte {
	b := []byte(Signature)
	b = binary.LittleEndian.AppendUint32(b, 1)
	for _, e := range entries {
		b = e.appendTo(b)
	}
	return b
}
