package ntfs

import (
	"errors"
	"fmt"
)

// fixupStride is the distance between update-sequence slots. NTFS protects
// multi-sector records in 512-byte strides regardless of the device's sector
// size (formats.md, "Multi-sector records").
const fixupStride = 512

// errFixup marks a torn or damaged multi-sector record.
var errFixup = errors.New("update sequence mismatch")

// usaHeader validates the update sequence array position stored at 4 and 6
// of a FILE or INDX header and returns its offset and the number of strides.
func usaHeader(b []byte) (off, strides int, err error) {
	if len(b) < 8 || len(b)%fixupStride != 0 {
		return 0, 0, fmt.Errorf("multi-sector record of %d bytes: not a multiple of %d", len(b), fixupStride)
	}
	off = int(le16(b[4:]))
	count := int(le16(b[6:]))
	strides = len(b) / fixupStride
	// The array holds the sequence number followed by one saved pair per stride.
	if count != strides+1 {
		return 0, 0, fmt.Errorf("update sequence count %d, want %d for %d bytes", count, strides+1, len(b))
	}
	if off < 8 || off%2 != 0 || off+2*count > fixupStride-2 {
		return 0, 0, fmt.Errorf("update sequence array at 0x%x (count %d) is out of range", off, count)
	}
	return off, strides, nil
}

// applyFixups undoes the update sequence protection of a FILE or INDX
// record in place: every stride must end with the sequence number, and the
// real last two bytes of each stride are restored from the array.
func applyFixups(b []byte) error {
	off, strides, err := usaHeader(b)
	if err != nil {
		return err
	}
	usn := le16(b[off:])
	for i := 0; i < strides; i++ {
		end := (i+1)*fixupStride - 2
		if le16(b[end:]) != usn {
			return fmt.Errorf("stride %d at 0x%x holds 0x%04x, want 0x%04x: %w", i, end, le16(b[end:]), usn, errFixup)
		}
		copy(b[end:end+2], b[off+2+2*i:off+4+2*i])
	}
	return nil
}

// protectFixups prepares a record for writing: the update sequence number
// is incremented (skipping 0 and 0xFFFF, which Windows never uses), the last
// two bytes of every stride are saved in the array and replaced by it. b is
// modified in place; callers pass a copy when they keep the plain form.
func protectFixups(b []byte) error {
	off, strides, err := usaHeader(b)
	if err != nil {
		return err
	}
	usn := le16(b[off:]) + 1
	if usn == 0 || usn == 0xFFFF {
		usn = 1
	}
	putLE16(b[off:], usn)
	for i := 0; i < strides; i++ {
		end := (i+1)*fixupStride - 2
		copy(b[off+2+2*i:off+4+2*i], b[end:end+2])
		putLE16(b[end:], usn)
	}
	return nil
}
