package image

import (
	"encoding/binary"
	"fmt"
)

// qcow2Header is the QCOW2 image header (qemu docs/interop/qcow2.txt,
// "Header"): big-endian, version 2 (72 bytes) or 3 (header_length bytes,
// at least 104), followed by header extensions.
type qcow2Header struct {
	version            uint32
	backingFileOffset  uint64 // 8
	backingFileSize    uint32 // 16
	clusterBits        uint32 // 20
	size               uint64 // 24: virtual disk size
	cryptMethod        uint32 // 32: 0 none, 1 AES, 2 LUKS
	l1Size             uint32 // 36: entries
	l1TableOffset      uint64 // 40
	refcountTableOff   uint64 // 48
	refcountTableClust uint32 // 56
	nbSnapshots        uint32 // 60
	snapshotsOffset    uint64 // 64
	incompatible       uint64 // 72 (v3)
	compatible         uint64 // 80 (v3)
	autoclear          uint64 // 88 (v3)
	refcountOrder      uint32 // 96 (v3; 4 in v2)
	headerLength       uint32 // 100 (v3; 72 in v2)
	compressionType    byte   // 104 (v3 with header_length > 104)

	backingFile   string // from backingFileOffset
	backingFormat string // header extension 0xE2792ACA
	dataFile      string // header extension 0x44415441
}

// Incompatible feature bits (qcow2.txt, header bytes 72-79).
const (
	qcow2IncompatDirty       = 1 << 0 // refcounts may be wrong: qemu repairs them on open
	qcow2IncompatCorrupt     = 1 << 1 // metadata known to be corrupt
	qcow2IncompatDataFile    = 1 << 2 // guest data in an external file
	qcow2IncompatCompression = 1 << 3 // compression_type field is valid
	qcow2IncompatExtendedL2  = 1 << 4 // 128-bit L2 entries with subclusters
	qcow2IncompatKnown       = qcow2IncompatDirty | qcow2IncompatCorrupt | qcow2IncompatDataFile | qcow2IncompatCompression | qcow2IncompatExtendedL2
)

// Header extension types (qcow2.txt, "Header extensions").
const (
	qcow2ExtEnd           = 0x00000000
	qcow2ExtBackingFormat = 0xE2792ACA
	qcow2ExtDataFile      = 0x44415441
)

// qcow2MaxL1Bytes and qcow2MaxRefcountTableBytes are qemu's own limits
// (QCOW_MAX_L1_SIZE, QCOW_MAX_REFTABLE_SIZE): 32 MiB and 8 MiB. Both
// tables are held in memory, so a header declaring more is refused.
const (
	qcow2MaxL1Bytes            = 32 << 20
	qcow2MaxRefcountTableBytes = 8 << 20
)

// parseQCOW2Header checks the header in b (the first cluster of the file,
// or as much of it as the file holds) against the file size.
func parseQCOW2Header(b []byte, fileSize int64) (*qcow2Header, error) {
	if len(b) < 72 || !hasAt(b, 0, sigQCOW) {
		return nil, fmt.Errorf("qcow2 header: no QFI\\xfb magic")
	}
	be := binary.BigEndian
	h := &qcow2Header{
		version:            be.Uint32(b[4:]),
		backingFileOffset:  be.Uint64(b[8:]),
		backingFileSize:    be.Uint32(b[16:]),
		clusterBits:        be.Uint32(b[20:]),
		size:               be.Uint64(b[24:]),
		cryptMethod:        be.Uint32(b[32:]),
		l1Size:             be.Uint32(b[36:]),
		l1TableOffset:      be.Uint64(b[40:]),
		refcountTableOff:   be.Uint64(b[48:]),
		refcountTableClust: be.Uint32(b[56:]),
		nbSnapshots:        be.Uint32(b[60:]),
		snapshotsOffset:    be.Uint64(b[64:]),
		refcountOrder:      4,
		headerLength:       72,
	}
	switch h.version {
	case 2:
	case 3:
		if len(b) < 104 {
			return nil, fmt.Errorf("qcow2 header: version 3 header cut short")
		}
		h.incompatible = be.Uint64(b[72:])
		h.compatible = be.Uint64(b[80:])
		h.autoclear = be.Uint64(b[88:])
		h.refcountOrder = be.Uint32(b[96:])
		h.headerLength = be.Uint32(b[100:])
		if h.headerLength < 104 || h.headerLength%8 != 0 || int(h.headerLength) > len(b) {
			return nil, fmt.Errorf("qcow2 header: header length %d is not a multiple of 8 between 104 and the cluster size", h.headerLength)
		}
		if h.headerLength > 104 {
			h.compressionType = b[104]
		}
	default:
		return nil, fmt.Errorf("qcow2 header: version %d (QCOW version 1 or an unknown version): convert it: qemu-img convert -O qcow2 IN OUT", h.version)
	}
	// cluster_bits: 9 (512 bytes) to 21 (2 MiB), qcow2.txt.
	if h.clusterBits < 9 || h.clusterBits > 21 {
		return nil, fmt.Errorf("qcow2 header: cluster_bits %d is outside 9..21", h.clusterBits)
	}
	cs := int64(1) << h.clusterBits
	if len(b) < int(min(cs, int64(len(b)))) {
		return nil, fmt.Errorf("qcow2 header: cut short")
	}
	if h.size > maxVirtualSize {
		return nil, fmt.Errorf("qcow2 header: virtual size %d bytes is larger than %d", h.size, int64(maxVirtualSize))
	}
	if h.refcountOrder > 6 {
		return nil, fmt.Errorf("qcow2 header: refcount_order %d is above 6", h.refcountOrder)
	}
	// The L1 table must map the whole virtual disk: each entry maps one L2
	// table of cluster_size/8 entries of one cluster each.
	l2Bits := h.clusterBits - 3
	need := (h.size + (uint64(1) << (h.clusterBits + l2Bits)) - 1) >> (h.clusterBits + l2Bits)
	if uint64(h.l1Size) < need {
		return nil, fmt.Errorf("qcow2 header: the L1 table has %d entries, a %d-byte disk needs %d", h.l1Size, h.size, need)
	}
	if uint64(h.l1Size)*8 > qcow2MaxL1Bytes {
		return nil, fmt.Errorf("qcow2 header: the L1 table of %d entries is larger than %d bytes", h.l1Size, qcow2MaxL1Bytes)
	}
	if err := qcow2TableInFile("L1 table", h.l1TableOffset, uint64(h.l1Size)*8, cs, fileSize); err != nil {
		return nil, err
	}
	if uint64(h.refcountTableClust)*uint64(cs) > qcow2MaxRefcountTableBytes || h.refcountTableClust == 0 {
		return nil, fmt.Errorf("qcow2 header: a refcount table of %d clusters is empty or larger than %d bytes", h.refcountTableClust, qcow2MaxRefcountTableBytes)
	}
	if err := qcow2TableInFile("refcount table", h.refcountTableOff, uint64(h.refcountTableClust)*uint64(cs), cs, fileSize); err != nil {
		return nil, err
	}
	if h.l1Size > 0 && rangesOverlap(h.l1TableOffset, uint64(h.l1Size)*8, h.refcountTableOff, uint64(h.refcountTableClust)*uint64(cs)) {
		return nil, fmt.Errorf("qcow2 header: the L1 table at %#x overlaps the refcount table at %#x", h.l1TableOffset, h.refcountTableOff)
	}
	if h.backingFileOffset != 0 {
		if h.backingFileSize == 0 || h.backingFileSize > 1023 || h.backingFileOffset > uint64(len(b)) || uint64(h.backingFileSize) > uint64(len(b))-h.backingFileOffset {
			return nil, fmt.Errorf("qcow2 header: the backing file name (%d bytes at %d) is not within the first cluster or longer than 1023 bytes", h.backingFileSize, h.backingFileOffset)
		}
		h.backingFile = string(b[h.backingFileOffset : h.backingFileOffset+uint64(h.backingFileSize)])
	}
	if err := h.parseExtensions(b); err != nil {
		return nil, err
	}
	return h, nil
}

// parseExtensions reads the header extensions after the header: type,
// length, data padded to 8 bytes, until the end marker.
func (h *qcow2Header) parseExtensions(b []byte) error {
	off := int(h.headerLength)
	for n := 0; ; n++ {
		if off+8 > len(b) || n > 1000 {
			// qemu stops at the end of the first cluster too.
			return nil
		}
		typ := binary.BigEndian.Uint32(b[off:])
		l := int(binary.BigEndian.Uint32(b[off+4:]))
		if typ == qcow2ExtEnd {
			return nil
		}
		if l < 0 || l > len(b)-off-8 {
			return fmt.Errorf("qcow2 header: extension %#x at %d declares %d bytes, past the first cluster", typ, off, l)
		}
		data := b[off+8 : off+8+l]
		switch typ {
		case qcow2ExtBackingFormat:
			h.backingFormat = string(data)
		case qcow2ExtDataFile:
			h.dataFile = string(data)
		}
		off += 8 + (l+7)&^7
	}
}

// qcow2TableInFile checks that a table of n bytes at off is cluster-aligned,
// does not start in the header cluster and lies within the file.
func qcow2TableInFile(what string, off, n uint64, cs, fileSize int64) error {
	if off%uint64(cs) != 0 || off < uint64(cs) {
		return fmt.Errorf("qcow2 header: the %s at %#x is not cluster-aligned or lies in the header cluster", what, off)
	}
	if off > uint64(fileSize) || n > uint64(fileSize)-off {
		return fmt.Errorf("qcow2 header: the %s (%d bytes at %#x) extends past the end of the file (%d bytes)", what, n, off, fileSize)
	}
	return nil
}

// rangesOverlap says whether [a, a+an) and [b, b+bn) share a byte.
func rangesOverlap(a, an, b, bn uint64) bool {
	return an > 0 && bn > 0 && a < b+bn && b < a+an
}

// writeRefusal says why an image with these header fields cannot be
// written at all ("" when it can): checked before the first write.
func (h *qcow2Header) writeRefusal() string {
	switch {
	case h.incompatible&qcow2IncompatDirty != 0:
		return "its dirty flag is set (qemu was stopped while it had the image open, so refcounts may be wrong): repair it first with qemu-img check -r all"
	case h.incompatible&qcow2IncompatCorrupt != 0:
		return "qemu marked it corrupt: repair it first with qemu-img check -r all, or convert it"
	}
	return ""
}

// readRefusal says why an image cannot even be read ("" when it can).
func (h *qcow2Header) readRefusal() string {
	switch {
	case h.cryptMethod != 0:
		return fmt.Sprintf("it is encrypted (method %d): decrypt it first: qemu-img convert -O qcow2 with the key (--object secret,...) to an unencrypted image", h.cryptMethod)
	case h.incompatible&qcow2IncompatDataFile != 0 || h.dataFile != "":
		return fmt.Sprintf("its data is in an external data file (%q): convert it: qemu-img convert -O qcow2 IN OUT", h.dataFile)
	case h.incompatible&qcow2IncompatExtendedL2 != 0:
		return "it uses extended L2 entries (subclusters): convert it: qemu-img convert -O qcow2 IN OUT"
	case h.incompatible&^qcow2IncompatKnown != 0:
		return fmt.Sprintf("it uses incompatible features this program does not know (%#x): convert it: qemu-img convert -O qcow2 IN OUT", h.incompatible&^qcow2IncompatKnown)
	}
	return ""
}
