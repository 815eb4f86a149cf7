package image

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/diskfs/go-diskfs/partition/mbr"
)

// MBR facts: four 16-byte partition entries at 446 (boot indicator 0x00 or
// 0x80 at +0, type at +4, first LBA at +8 and sector count at +12, both
// little-endian u32), the disk signature at 440 and 55 AA at 510. An
// extended partition (type 0x05, 0x0F or 0x85) holds a chain of EBRs: each
// has the same layout, its first entry a logical partition relative to the
// EBR itself, its second the next EBR relative to the extended partition's
// start.
const (
	mbrEntriesOffset = 446
	mbrEntrySize     = 16
	mbrTypeGPT       = 0xEE
	// maxLogical caps the number of EBRs followed in a chain; real disks
	// have a handful.
	maxLogical = 128
)

// isExtended reports whether an MBR partition type is an extended
// partition container.
func isExtended(typ byte) bool { return typ == 0x05 || typ == 0x0F || typ == 0x85 }

// hasProtectiveEntry reports whether sector 0 is an MBR with a GPT
// protective (0xEE) entry, which says the disk is partitioned with GPT.
func hasProtectiveEntry(s []byte) bool {
	if !hasAt(s, 510, mbrSignature) {
		return false
	}
	for i := 0; i < 4; i++ {
		if s[mbrEntriesOffset+i*mbrEntrySize+4] == mbrTypeGPT {
			return true
		}
	}
	return false
}

// looksLikeMBR reports whether sector 0 can be an MBR: the boot signature
// and four entries whose boot indicators are 0x00 or 0x80.
func looksLikeMBR(s []byte) bool {
	if !hasAt(s, 510, mbrSignature) {
		return false
	}
	for i := 0; i < 4; i++ {
		e := s[mbrEntriesOffset+i*mbrEntrySize:]
		if e[0] != 0x00 && e[0] != 0x80 {
			return false
		}
	}
	return true
}

// readMBR reads the primary entries with go-diskfs and walks the EBR chain
// of an extended partition here (go-diskfs does not). go-diskfs computes
// offsets with 512-byte sectors whatever it is told, so offsets are
// computed here from the raw LBAs and the sector size.
func (t *Target) readMBR(r *io.SectionReader, sector0 []byte, devSector int) error {
	tbl, err := mbr.Read(diskfsFile{r}, 512, 512)
	if err != nil {
		return fmt.Errorf("MBR: %w", err)
	}
	t.Kind, t.Table = KindDisk, "mbr"
	t.DiskID = fmt.Sprintf("%08x", binary.LittleEndian.Uint32(sector0[440:]))

	ss := devSector
	if ss != 512 && ss != 4096 {
		ss = t.guessMBRSectorSize(r, tbl)
	}
	t.SectorSize = ss
	sectors := t.Size / int64(ss)

	var ext *Volume
	for _, p := range tbl.Partitions {
		if p.Type == 0 {
			continue // an unused entry
		}
		v := mbrVolume(p.Index, byte(p.Type), uint64(p.Start), uint64(p.Size), ss, sectors)
		if p.Start == 0 {
			addDamage(&v, "starts at LBA 0, over the MBR itself")
		}
		if byte(p.Type) == mbrTypeGPT {
			addDamage(&v, "a GPT protective entry in an MBR without a GPT")
		}
		t.Volumes = append(t.Volumes, v)
		if isExtended(byte(p.Type)) && ext == nil && v.Damaged == "" {
			e := v
			ext = &e
		}
	}
	if ext != nil {
		logical, warn := t.readEBRChain(r, *ext, ss, sectors)
		t.Volumes = append(t.Volumes, logical...)
		if warn != "" {
			t.Warnings = append(t.Warnings, warn)
		}
	}
	// An extended partition contains its logical partitions; any other
	// overlap is damage.
	markOverlaps(t.Volumes, func(a, b Volume) bool {
		return (a.Index > 4 && b.Index <= 4 && isExtendedID(b.TypeID)) || (b.Index > 4 && a.Index <= 4 && isExtendedID(a.TypeID))
	})
	for i := range t.Volumes {
		v := &t.Volumes[i]
		if v.Index > 4 && ext != nil && v.Damaged == "" && (v.Offset < ext.Offset || v.Offset+v.Size > ext.Offset+ext.Size) {
			addDamage(v, fmt.Sprintf("logical partition outside its extended partition %d", ext.Index))
		}
		v.Content = contentAt(r, v.Offset, v.Size)
	}
	return nil
}

func isExtendedID(id string) bool { return id == "0x05" || id == "0x0f" || id == "0x85" }

// mbrVolume builds the Volume for an entry of start and count sectors,
// clipping (and marking damaged) what extends beyond the disk.
func mbrVolume(index int, typ byte, start, count uint64, ss int, sectors int64) Volume {
	v := Volume{Index: index, Type: mbrTypeName(typ), TypeID: fmt.Sprintf("0x%02x", typ)}
	total := uint64(sectors)
	switch {
	case count == 0:
		v.Offset = min(int64(start)*int64(ss), int64(total)*int64(ss))
		addDamage(&v, "has no sectors")
	case start >= total:
		v.Offset = int64(total) * int64(ss)
		addDamage(&v, fmt.Sprintf("starts at LBA %d, beyond the end of the disk (%d sectors)", start, total))
	default:
		v.Offset = int64(start) * int64(ss)
		if count > total-start {
			addDamage(&v, fmt.Sprintf("ends at LBA %d, beyond the end of the disk (%d sectors)", start+count-1, total))
			count = total - start
		}
		v.Size = int64(count) * int64(ss)
	}
	return v
}

// readEBRChain lists the logical partitions of the extended partition ext,
// numbered from 5 as Linux numbers them. A broken chain ends the list with
// a warning; a chain that loops or runs on is cut.
func (t *Target) readEBRChain(r io.ReaderAt, ext Volume, ss int, sectors int64) ([]Volume, string) {
	extLBA := uint64(ext.Offset / int64(ss))
	extEnd := uint64((ext.Offset + ext.Size) / int64(ss))
	var out []Volume
	seen := map[uint64]bool{}
	ebr := make([]byte, 512)
	for lba := extLBA; ; {
		if len(seen) >= maxLogical {
			return out, fmt.Sprintf("extended partition %d: more than %d logical partitions; the rest are not listed", ext.Index, maxLogical)
		}
		if seen[lba] {
			return out, fmt.Sprintf("extended partition %d: the EBR chain loops back to LBA %d", ext.Index, lba)
		}
		seen[lba] = true
		if lba < extLBA || lba >= extEnd {
			return out, fmt.Sprintf("extended partition %d: EBR at LBA %d is outside the extended partition", ext.Index, lba)
		}
		if err := readFull(r, ebr, int64(lba)*int64(ss)); err != nil {
			return out, fmt.Sprintf("extended partition %d: reading the EBR at LBA %d: %v", ext.Index, lba, err)
		}
		if !looksLikeMBR(ebr) {
			if lba == extLBA {
				return out, "" // an empty extended partition
			}
			return out, fmt.Sprintf("extended partition %d: no EBR signature at LBA %d", ext.Index, lba)
		}
		e0 := ebr[mbrEntriesOffset:]
		e1 := ebr[mbrEntriesOffset+mbrEntrySize:]
		if typ := e0[4]; typ != 0 {
			rel := uint64(binary.LittleEndian.Uint32(e0[8:]))
			count := uint64(binary.LittleEndian.Uint32(e0[12:]))
			v := mbrVolume(5+len(out), typ, lba+rel, count, ss, sectors)
			if rel == 0 {
				addDamage(&v, "starts over its own EBR")
			}
			out = append(out, v)
		}
		if !isExtended(e1[4]) {
			return out, ""
		}
		next := extLBA + uint64(binary.LittleEndian.Uint32(e1[8:]))
		if next == extLBA {
			return out, fmt.Sprintf("extended partition %d: the EBR chain loops back to LBA %d", ext.Index, next)
		}
		lba = next
	}
}

// guessMBRSectorSize decides between 512 and 4096-byte sectors for an MBR
// on a file (a device reports its own): 512, unless only with 4096 does the
// first partition start with a known file system, as on an image of a 4Kn
// disk.
func (t *Target) guessMBRSectorSize(r io.ReaderAt, tbl *mbr.Table) int {
	if t.Size%4096 != 0 {
		return 512
	}
	for _, p := range tbl.Partitions {
		if p.Type == 0 || isExtended(byte(p.Type)) || p.Start == 0 {
			continue
		}
		at := func(ss int64) string {
			off := int64(p.Start) * ss
			if off >= t.Size {
				return ContentUnknown
			}
			return contentAt(r, off, t.Size-off)
		}
		c512, c4k := at(512), at(4096)
		known := func(c string) bool { return c != ContentUnknown && c != ContentEmpty }
		if !known(c512) && known(c4k) {
			t.Warnings = append(t.Warnings, "MBR: 4096-byte sectors assumed, because the partitions' file systems are found there")
			return 4096
		}
		return 512
	}
	return 512
}

// mbrTypes names the MBR partition types (the IBM/Microsoft registry as
// listed by fdisk).
var mbrTypes = map[byte]string{
	0x01: "FAT12",
	0x04: "FAT16 <32M",
	0x05: "Extended",
	0x06: "FAT16",
	0x07: "NTFS/exFAT/HPFS",
	0x0B: "FAT32",
	0x0C: "FAT32 (LBA)",
	0x0E: "FAT16 (LBA)",
	0x0F: "Extended (LBA)",
	0x11: "Hidden FAT12",
	0x12: "Compaq diagnostics",
	0x14: "Hidden FAT16 <32M",
	0x16: "Hidden FAT16",
	0x17: "Hidden NTFS/exFAT/HPFS",
	0x1B: "Hidden FAT32",
	0x1C: "Hidden FAT32 (LBA)",
	0x1E: "Hidden FAT16 (LBA)",
	0x27: "Windows Recovery",
	0x42: "Windows dynamic disk",
	0x82: "Linux swap",
	0x83: "Linux",
	0x85: "Linux extended",
	0x8E: "Linux LVM",
	0xA5: "FreeBSD",
	0xAF: "Apple HFS/HFS+",
	0xEE: "GPT protective",
	0xEF: "EFI System",
	0xFD: "Linux RAID",
}

func mbrTypeName(typ byte) string {
	if n, ok := mbrTypes[typ]; ok {
		return fmt.Sprintf("%s (0x%02x)", n, typ)
	}
	return fmt.Sprintf("unknown (0x%02x)", typ)
}
