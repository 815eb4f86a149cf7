package ntfs

import (
	"errors"
	"fmt"
	"io"
)

// BootSectorSize is the number of bytes of the NTFS boot sector that are parsed.
const BootSectorSize = 512

// ErrBitLocker is returned when a volume carries the BitLocker signature
// "-FVE-FS-" where NTFS has "NTFS    " (byte 3): its contents are encrypted.
var ErrBitLocker = errors.New("ntfs: volume is BitLocker-encrypted (-FVE-FS- signature); unlock it first (manage-bde -unlock in WinPE, dislocker on Linux) and point wuoffline at the unlocked volume")

// ErrNotNTFS is returned when the boot sector has no NTFS signature.
var ErrNotNTFS = errors.New("ntfs: not an NTFS volume (no \"NTFS    \" signature at byte 3)")

// BootSector holds the geometry fields of an NTFS boot sector that a reader
// or writer needs, already decoded and validated (formats.md, "Boot sector").
type BootSector struct {
	BytesPerSector    uint32
	SectorsPerCluster uint32
	ClusterSize       uint32 // bytes
	TotalSectors      uint64
	MFTCluster        uint64 // LCN of $MFT
	MFTMirrCluster    uint64 // LCN of $MFTMirr
	RecordSize        uint32 // bytes per MFT record
	IndexBlockSize    uint32 // bytes per INDX block
	Serial            uint64
}

// VolumeSize is the size of the volume in bytes as the boot sector states it.
func (b *BootSector) VolumeSize() int64 { return int64(b.TotalSectors) * int64(b.BytesPerSector) }

// TotalClusters is the number of clusters in the volume.
func (b *BootSector) TotalClusters() uint64 {
	return b.TotalSectors / uint64(b.SectorsPerCluster)
}

// ReadBootSector reads and parses the boot sector at offset 0 of r.
func ReadBootSector(r io.ReaderAt) (*BootSector, error) {
	buf := make([]byte, BootSectorSize)
	if _, err := r.ReadAt(buf, 0); err != nil {
		return nil, fmt.Errorf("ntfs: reading boot sector at 0x0: %w", err)
	}
	return ParseBootSector(buf)
}

// ParseBootSector decodes an NTFS boot sector. Every field used later as a
// size or an offset is range-checked here, so callers can trust them.
func ParseBootSector(b []byte) (*BootSector, error) {
	if len(b) < BootSectorSize {
		return nil, fmt.Errorf("ntfs: boot sector: %d bytes, need %d", len(b), BootSectorSize)
	}
	switch string(b[3:11]) {
	case "NTFS    ":
	case "-FVE-FS-":
		return nil, ErrBitLocker
	default:
		return nil, ErrNotNTFS
	}
	if b[0x1FE] != 0x55 || b[0x1FF] != 0xAA {
		return nil, fmt.Errorf("ntfs: boot sector: missing 55 AA end marker at 0x1fe")
	}
	bs := &BootSector{}
	bs.BytesPerSector = uint32(le16(b[0x0B:]))
	if !isPow2(bs.BytesPerSector) || bs.BytesPerSector < 256 || bs.BytesPerSector > 4096 {
		return nil, fmt.Errorf("ntfs: boot sector: bytes per sector %d at 0x0b: want a power of two from 256 to 4096", bs.BytesPerSector)
	}
	// Sectors per cluster: a value over 128 is a negative power of two
	// exponent, 2^(256-v) (used by Windows for clusters of 128 KiB and more).
	spc := uint32(b[0x0D])
	switch {
	case spc == 0:
		return nil, fmt.Errorf("ntfs: boot sector: sectors per cluster is 0 at 0x0d")
	case spc > 128:
		shift := 256 - spc
		if shift > 16 {
			return nil, fmt.Errorf("ntfs: boot sector: sectors per cluster 2^%d at 0x0d is too large", shift)
		}
		spc = 1 << shift
	case !isPow2(spc):
		return nil, fmt.Errorf("ntfs: boot sector: sectors per cluster %d at 0x0d is not a power of two", spc)
	}
	bs.SectorsPerCluster = spc
	bs.ClusterSize = spc * bs.BytesPerSector
	if bs.ClusterSize > 2<<20 {
		return nil, fmt.Errorf("ntfs: boot sector: cluster size %d exceeds 2 MiB", bs.ClusterSize)
	}
	bs.TotalSectors = le64(b[0x28:])
	if bs.TotalSectors == 0 || bs.TotalSectors > 1<<48 {
		return nil, fmt.Errorf("ntfs: boot sector: total sectors %d at 0x28 is out of range", bs.TotalSectors)
	}
	bs.MFTCluster = le64(b[0x30:])
	bs.MFTMirrCluster = le64(b[0x38:])
	tc := bs.TotalClusters()
	if bs.MFTCluster == 0 || bs.MFTCluster >= tc {
		return nil, fmt.Errorf("ntfs: boot sector: $MFT cluster %d at 0x30 is outside the volume (%d clusters)", bs.MFTCluster, tc)
	}
	if bs.MFTMirrCluster == 0 || bs.MFTMirrCluster >= tc {
		return nil, fmt.Errorf("ntfs: boot sector: $MFTMirr cluster %d at 0x38 is outside the volume (%d clusters)", bs.MFTMirrCluster, tc)
	}
	var err error
	if bs.RecordSize, err = decodeClustersPer(int8(b[0x40]), bs.ClusterSize); err != nil {
		return nil, fmt.Errorf("ntfs: boot sector: MFT record size at 0x40: %w", err)
	}
	if bs.RecordSize < 256 || bs.RecordSize > 65536 || bs.RecordSize%bs.BytesPerSector != 0 && bs.RecordSize%512 != 0 {
		return nil, fmt.Errorf("ntfs: boot sector: MFT record size %d at 0x40 is out of range", bs.RecordSize)
	}
	if bs.IndexBlockSize, err = decodeClustersPer(int8(b[0x44]), bs.ClusterSize); err != nil {
		return nil, fmt.Errorf("ntfs: boot sector: index block size at 0x44: %w", err)
	}
	if bs.IndexBlockSize < 512 || bs.IndexBlockSize > 65536 {
		return nil, fmt.Errorf("ntfs: boot sector: index block size %d at 0x44 is out of range", bs.IndexBlockSize)
	}
	bs.Serial = le64(b[0x48:])
	return bs, nil
}

// decodeClustersPer decodes the "clusters per MFT record / index block" byte:
// positive v counts clusters, negative v means 2^-v bytes.
func decodeClustersPer(v int8, clusterSize uint32) (uint32, error) {
	switch {
	case v > 0:
		n := uint64(v) * uint64(clusterSize)
		if n > 1<<20 {
			return 0, fmt.Errorf("%d clusters of %d bytes is too large", v, clusterSize)
		}
		return uint32(n), nil
	case v < 0 && v >= -31:
		return 1 << uint(-v), nil
	default:
		return 0, fmt.Errorf("invalid value %d", v)
	}
}

func isPow2(v uint32) bool { return v != 0 && v&(v-1) == 0 }

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

func le64(b []byte) uint64 {
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}
