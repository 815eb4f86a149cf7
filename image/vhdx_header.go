package image

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/google/uuid"
)

// VHDX layout ([MS-VHDX] 2.2): the file type identifier at 0, two headers
// at 64 KiB and 128 KiB, two region tables at 192 KiB and 256 KiB, all
// little-endian and protected by CRC-32C.
const (
	vhdxHeader1     = 64 << 10
	vhdxHeader2     = 128 << 10
	vhdxHeaderSize  = 4 << 10
	vhdxRegion1     = 192 << 10
	vhdxRegion2     = 256 << 10
	vhdxRegionSize  = 64 << 10
	vhdxHeaderArea  = 1 << 20 // the header section; objects start at or after 1 MiB
	vhdxMaxEntries  = 2047    // region and metadata table entries
	vhdxAlign       = 1 << 20 // payload blocks, BAT and metadata are 1 MiB aligned
	vhdxMaxFileSize = 1 << 50
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// vhdxChecksum is the CRC-32C of b with its 4-byte checksum field at 4
// taken as zero ([MS-VHDX] 2.2.2, 2.2.3).
func vhdxChecksum(b []byte) uint32 {
	c := crc32.Update(0, crc32c, b[:4])
	c = crc32.Update(c, crc32c, []byte{0, 0, 0, 0})
	return crc32.Update(c, crc32c, b[8:])
}

// guid is a GUID as VHDX stores it: the first three fields little-endian.
type guid [16]byte

// mustGUID turns the text form of a GUID into its stored form.
func mustGUID(s string) guid {
	u := uuid.MustParse(s)
	var g guid
	copy(g[:], u[:])
	g[0], g[1], g[2], g[3] = u[3], u[2], u[1], u[0]
	g[4], g[5] = u[5], u[4]
	g[6], g[7] = u[7], u[6]
	return g
}

// newGUID returns a random GUID in stored form.
func newGUID() (guid, error) {
	u, err := uuid.NewRandom()
	if err != nil {
		return guid{}, fmt.Errorf("making a GUID: %w", err)
	}
	return mustGUID(u.String()), nil
}

// vhdxHeader is one of the two headers ([MS-VHDX] 2.2.2).
type vhdxHeader struct {
	raw       []byte // the 4 KiB as read
	seq       uint64 // 8: sequence number
	fileWrite guid   // 16: FileWriteGuid
	dataWrite guid   // 32: DataWriteGuid
	log       guid   // 48: LogGuid, zero when the log is empty
	logVer    uint16 // 64
	version   uint16 // 66: 1
	logLength uint32 // 68
	logOffset uint64 // 72
}

// parseVHDXHeader checks one 4 KiB header: signature "head", CRC-32C,
// version 1, log version 0, a log region 1 MiB aligned within the file.
func parseVHDXHeader(b []byte, fileSize int64) (*vhdxHeader, error) {
	if len(b) != vhdxHeaderSize || !hasAt(b, 0, []byte("head")) {
		return nil, fmt.Errorf("no \"head\" signature")
	}
	if got, want := vhdxChecksum(b), binary.LittleEndian.Uint32(b[4:]); got != want {
		return nil, fmt.Errorf("checksum %#08x, the header sums to %#08x", want, got)
	}
	le := binary.LittleEndian
	h := &vhdxHeader{raw: b, seq: le.Uint64(b[8:]), logVer: le.Uint16(b[64:]), version: le.Uint16(b[66:]), logLength: le.Uint32(b[68:]), logOffset: le.Uint64(b[72:])}
	copy(h.fileWrite[:], b[16:32])
	copy(h.dataWrite[:], b[32:48])
	copy(h.log[:], b[48:64])
	if h.version != 1 {
		return nil, fmt.Errorf("version %d, not 1", h.version)
	}
	if h.logLength%vhdxAlign != 0 || h.logOffset%vhdxAlign != 0 || h.logOffset < vhdxHeaderArea || h.logOffset > uint64(fileSize) || uint64(h.logLength) > uint64(fileSize)-h.logOffset {
		return nil, fmt.Errorf("the log (%d bytes at %d) is not 1 MiB aligned within the file", h.logLength, h.logOffset)
	}
	return h, nil
}

// encode returns the header with a new sequence number and write GUIDs,
// checksummed.
func (h *vhdxHeader) encode(seq uint64, fileWrite, dataWrite guid) []byte {
	b := append([]byte(nil), h.raw...)
	binary.LittleEndian.PutUint64(b[8:], seq)
	copy(b[16:], fileWrite[:])
	copy(b[32:], dataWrite[:])
	binary.LittleEndian.PutUint32(b[4:], 0)
	binary.LittleEndian.PutUint32(b[4:], vhdxChecksum(b))
	return b
}

// readVHDXHeaders reads both headers and returns the current one (the
// valid one with the larger sequence number) and its offset.
func readVHDXHeaders(f *containerFile) (*vhdxHeader, int64, error) {
	var best *vhdxHeader
	var at int64
	var errs []string
	for _, off := range []int64{vhdxHeader1, vhdxHeader2} {
		b := make([]byte, vhdxHeaderSize)
		if err := f.read(b, off, "VHDX header"); err != nil {
			return nil, 0, err
		}
		h, err := parseVHDXHeader(b, f.size)
		if err != nil {
			errs = append(errs, fmt.Sprintf("header at %d: %v", off, err))
			continue
		}
		if best == nil || h.seq > best.seq {
			best, at = h, off
		}
	}
	if best == nil {
		return nil, 0, fmt.Errorf("%s: no valid VHDX header: %v", f.name, errs)
	}
	return best, at, nil
}

// vhdxRegion is one region table entry ([MS-VHDX] 2.2.3.2).
type vhdxRegion struct {
	id       guid
	offset   uint64
	length   uint32
	required bool
}

// The regions this package knows ([MS-VHDX] 2.2.3.2).
var (
	vhdxRegionBAT      = mustGUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
	vhdxRegionMetadata = mustGUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
)

// parseVHDXRegions checks a 64 KiB region table: signature "regi",
// CRC-32C, at most 2047 entries, each 1 MiB aligned within the file, none
// overlapping the header section or another, no unknown required region.
func parseVHDXRegions(b []byte, fileSize int64) ([]vhdxRegion, error) {
	if len(b) != vhdxRegionSize || !hasAt(b, 0, []byte("regi")) {
		return nil, fmt.Errorf("no \"regi\" signature")
	}
	if got, want := vhdxChecksum(b), binary.LittleEndian.Uint32(b[4:]); got != want {
		return nil, fmt.Errorf("checksum %#08x, the table sums to %#08x", want, got)
	}
	n := binary.LittleEndian.Uint32(b[8:])
	if n > vhdxMaxEntries {
		return nil, fmt.Errorf("%d entries, more than %d", n, vhdxMaxEntries)
	}
	var rs []vhdxRegion
	for i := range int(n) {
		e := b[16+i*32:]
		r := vhdxRegion{offset: binary.LittleEndian.Uint64(e[16:]), length: binary.LittleEndian.Uint32(e[24:]), required: binary.LittleEndian.Uint32(e[28:])&1 != 0}
		copy(r.id[:], e[:16])
		if r.id != vhdxRegionBAT && r.id != vhdxRegionMetadata && r.required {
			return nil, fmt.Errorf("region %d is required but of a kind this program does not know", i)
		}
		if r.offset%vhdxAlign != 0 || r.length%vhdxAlign != 0 || r.offset < vhdxHeaderArea || r.offset > uint64(fileSize) || uint64(r.length) > uint64(fileSize)-r.offset {
			return nil, fmt.Errorf("region %d (%d bytes at %d) is not 1 MiB aligned within the file", i, r.length, r.offset)
		}
		for j, o := range rs {
			if rangesOverlap(r.offset, uint64(r.length), o.offset, uint64(o.length)) {
				return nil, fmt.Errorf("regions %d and %d overlap", j, i)
			}
		}
		rs = append(rs, r)
	}
	return rs, nil
}
