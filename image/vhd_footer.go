package image

import (
	"encoding/binary"
	"fmt"
)

// VHD disk types (footer offset 0x3C, big-endian).
const (
	vhdTypeFixed        = 2
	vhdTypeDynamic      = 3
	vhdTypeDifferencing = 4
)

// vhdFooter is the fields of the hard disk footer this package uses.
type vhdFooter struct {
	dataOffset  uint64   // 0x10: the dynamic disk header (dynamic and differencing)
	currentSize uint64   // 0x30: the virtual disk size
	diskType    uint32   // 0x3C
	uniqueID    [16]byte // 0x44: what a child's parent UUID names
}

// parseVHDFooter checks a 512-byte footer: cookie "conectix" at 0, checksum
// at 0x40 (one's complement of the byte sum of the footer with the checksum
// field taken as zero), current size at 0x30 and disk type at 0x3C, all
// big-endian.
func parseVHDFooter(b []byte) (vhdFooter, error) {
	if len(b) != vhdFooterSize || !hasAt(b, 0, sigVHD) {
		return vhdFooter{}, fmt.Errorf("no conectix cookie")
	}
	var sum uint32
	for i, c := range b {
		if i >= 0x40 && i < 0x44 {
			continue
		}
		sum += uint32(c)
	}
	want := binary.BigEndian.Uint32(b[0x40:])
	if ^sum != want {
		return vhdFooter{}, fmt.Errorf("checksum is %#08x, the footer sums to %#08x: the footer is damaged", want, ^sum)
	}
	f := vhdFooter{
		dataOffset:  binary.BigEndian.Uint64(b[0x10:]),
		diskType:    binary.BigEndian.Uint32(b[0x3C:]),
		currentSize: binary.BigEndian.Uint64(b[0x30:]),
	}
	copy(f.uniqueID[:], b[0x44:0x54])
	return f, nil
}

// vhdChecksum is the VHD checksum of b (footer or dynamic header): the
// one's complement of the sum of its bytes, with the 4 checksum bytes at
// at taken as zero.
func vhdChecksum(b []byte, at int) uint32 {
	var sum uint32
	for i, c := range b {
		if i >= at && i < at+4 {
			continue
		}
		sum += uint32(c)
	}
	return ^sum
}
