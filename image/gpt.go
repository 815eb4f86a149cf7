package image

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/google/uuid"
)

// GPT header facts (UEFI specification 2.10, 5.3.2 "GPT Header"): signature
// "EFI PART" at 0, revision at 8, header size at 12 (92 in revision 1.0),
// header CRC32 at 16 over the header size with the field zeroed, reserved
// zero at 20, MyLBA at 24, AlternateLBA at 32, FirstUsableLBA at 40,
// LastUsableLBA at 48, DiskGUID at 56, PartitionEntryLBA at 72,
// NumberOfPartitionEntries at 80, SizeOfPartitionEntry at 84 and the
// entry array CRC32 at 88.
const (
	gptHeaderSize = 92
	gptEntrySize  = 128 // the only entry size go-diskfs decodes; every known tool writes it
	// maxGPTEntries caps the entry array at 1 MiB. The specification asks
	// for at least 16 KiB (128 entries) and real tables use exactly that;
	// a larger count is damage, and go-diskfs would allocate whatever the
	// header claims.
	maxGPTEntries = 8192
)

var sigGPT = []byte("EFI PART")

// gptHeader is the part of a GPT header that is checked here.
type gptHeader struct {
	myLBA, altLBA           uint64
	firstUsable, lastUsable uint64
	entriesLBA              uint64
	count, entrySize        uint32
	entriesCRC              uint32
	diskGUID                string
}

// parseGPTHeader checks the signature, revision, size and CRC of the header
// in b (one logical sector) and decodes it.
func parseGPTHeader(b []byte) (gptHeader, error) {
	if !hasAt(b, 0, sigGPT) {
		return gptHeader{}, fmt.Errorf("no \"EFI PART\" signature")
	}
	if rev := binary.LittleEndian.Uint32(b[8:]); rev != 0x00010000 {
		return gptHeader{}, fmt.Errorf("revision %#x is not 1.0", rev)
	}
	hs := binary.LittleEndian.Uint32(b[12:])
	if hs != gptHeaderSize {
		return gptHeader{}, fmt.Errorf("header size %d is not %d", hs, gptHeaderSize)
	}
	hdr := make([]byte, gptHeaderSize)
	copy(hdr, b)
	want := binary.LittleEndian.Uint32(hdr[16:])
	clear(hdr[16:20])
	if got := crc32.ChecksumIEEE(hdr); got != want {
		return gptHeader{}, fmt.Errorf("header CRC32 is %#08x, the header sums to %#08x", want, got)
	}
	g, err := uuid.FromBytes(guidBytes(b[56:72]))
	if err != nil {
		return gptHeader{}, fmt.Errorf("disk GUID: %w", err)
	}
	return gptHeader{
		myLBA:       binary.LittleEndian.Uint64(b[24:]),
		altLBA:      binary.LittleEndian.Uint64(b[32:]),
		firstUsable: binary.LittleEndian.Uint64(b[40:]),
		lastUsable:  binary.LittleEndian.Uint64(b[48:]),
		diskGUID:    strings.ToUpper(g.String()),
		entriesLBA:  binary.LittleEndian.Uint64(b[72:]),
		count:       binary.LittleEndian.Uint32(b[80:]),
		entrySize:   binary.LittleEndian.Uint32(b[84:]),
		entriesCRC:  binary.LittleEndian.Uint32(b[88:]),
	}, nil
}

// guidBytes reorders a mixed-endian on-disk GUID into RFC 4122 byte order:
// the first three fields are stored little-endian.
func guidBytes(b []byte) []byte {
	o := make([]byte, 16)
	copy(o, b)
	o[0], o[1], o[2], o[3] = b[3], b[2], b[1], b[0]
	o[4], o[5] = b[5], b[4]
	o[6], o[7] = b[7], b[6]
	return o
}

// check verifies that the header describes something that fits on a disk
// of sectors logical sectors of ss bytes, at the LBA it was read from.
func (h gptHeader) check(at uint64, ss int, sectors uint64) error {
	if h.myLBA != at {
		return fmt.Errorf("header says it is at LBA %d but was read from LBA %d", h.myLBA, at)
	}
	if h.entrySize != gptEntrySize {
		return fmt.Errorf("partition entry size %d is not supported (only %d)", h.entrySize, gptEntrySize)
	}
	if h.count == 0 || h.count > maxGPTEntries {
		return fmt.Errorf("%d partition entries is not plausible (at most %d)", h.count, maxGPTEntries)
	}
	arraySectors := (uint64(h.count)*gptEntrySize + uint64(ss) - 1) / uint64(ss)
	if h.entriesLBA < 1 || h.entriesLBA >= sectors || arraySectors > sectors-h.entriesLBA {
		return fmt.Errorf("partition entry array at LBA %d (%d sectors) is not within the disk's %d sectors", h.entriesLBA, arraySectors, sectors)
	}
	if h.entriesLBA <= at && at < h.entriesLBA+arraySectors {
		return fmt.Errorf("partition entry array at LBA %d overlaps the header at LBA %d", h.entriesLBA, at)
	}
	if h.firstUsable > h.lastUsable {
		return fmt.Errorf("first usable LBA %d is after last usable LBA %d", h.firstUsable, h.lastUsable)
	}
	return nil
}

// entriesCRCOK reads the entry array of a checked header and compares its
// CRC32 with the header's.
func (h gptHeader) entriesCRCOK(r io.ReaderAt, ss int) (bool, error) {
	off, _ := lbaBytes(h.entriesLBA, ss) // within the disk: check passed
	b := make([]byte, int(h.count)*gptEntrySize)
	if err := readFull(r, b, off); err != nil {
		return false, fmt.Errorf("reading the partition entry array at %d: %w", off, err)
	}
	return crc32.ChecksumIEEE(b) == h.entriesCRC, nil
}

// findGPT looks for a GPT header with each plausible logical sector size
// (the device's first, then 512, then 4096): at LBA 1, then in the last
// LBA (the backup header, when the primary was overwritten). It returns the
// sector size (0 when there is no GPT) and whether the primary was found.
func findGPT(r io.ReaderAt, size int64, devSector int) (int, bool, error) {
	sizes := []int{512, 4096}
	if devSector == 4096 {
		sizes = []int{4096, 512}
	}
	b := make([]byte, 4096)
	for _, ss := range sizes {
		if size < int64(ss)*3 {
			continue
		}
		if err := readFull(r, b[:ss], int64(ss)); err != nil {
			return 0, false, fmt.Errorf("reading LBA 1 for %d-byte sectors: %w", ss, err)
		}
		if hasAt(b, 0, sigGPT) {
			return ss, true, nil
		}
	}
	for _, ss := range sizes {
		if size < int64(ss)*3 {
			continue
		}
		last := size/int64(ss) - 1
		if err := readFull(r, b[:ss], last*int64(ss)); err != nil {
			return 0, false, fmt.Errorf("reading the last LBA for %d-byte sectors: %w", ss, err)
		}
		if hasAt(b, 0, sigGPT) {
			return ss, false, nil
		}
	}
	return 0, false, nil
}

// readGPT reads a GPT with logical sectors of ss bytes. The headers are
// checked here first, because go-diskfs allocates the entry array the
// header claims and trusts every LBA; go-diskfs then decodes the entries,
// falling back to the backup table as UEFI firmware does; and every
// partition is checked against the disk and the others.
func (t *Target) readGPT(r *io.SectionReader, ss int, primaryFound bool) error {
	sectors := uint64(t.Size) / uint64(ss)
	t.Kind, t.Table, t.SectorSize = KindDisk, "gpt", ss

	sector := make([]byte, ss)
	// readCopy reads the GPT copy whose header is at lba. A copy can be
	// unsound (why != ""): no header, a bad CRC; go-diskfs then uses the
	// other copy. A header whose own CRC is valid but whose fields do not
	// fit the disk is an error for the whole table, because go-diskfs
	// would trust it.
	type gptCopy struct {
		h   gptHeader
		why string
	}
	readCopy := func(lba uint64, which string) (gptCopy, error) {
		off, _ := lbaBytes(lba, ss)
		if err := readFull(r, sector, off); err != nil {
			return gptCopy{}, fmt.Errorf("%s GPT: reading LBA %d: %w", which, lba, err)
		}
		h, err := parseGPTHeader(sector)
		if err != nil {
			return gptCopy{why: err.Error()}, nil
		}
		if err := h.check(lba, ss, sectors); err != nil {
			return gptCopy{}, fmt.Errorf("GPT (%d-byte sectors): %s header at LBA %d is damaged: %w", ss, which, lba, err)
		}
		ok, err := h.entriesCRCOK(r, ss)
		if err != nil {
			return gptCopy{}, fmt.Errorf("%s GPT: %w", which, err)
		}
		if !ok {
			return gptCopy{h: h, why: "the partition entry array's CRC32 does not match the header"}, nil
		}
		return gptCopy{h: h}, nil
	}

	pc, err := readCopy(1, "primary")
	if err != nil {
		return err
	}
	backupLBA := sectors - 1
	bc, err := readCopy(backupLBA, "backup")
	if err != nil {
		return err
	}
	primary, backup := pc.h, bc.h
	perr, berr := pc.why, bc.why
	primaryOK, backupOK := perr == "", berr == ""
	used := primary
	switch {
	case primaryOK && !backupOK:
		where := ""
		if primary.altLBA != backupLBA {
			// UEFI puts the backup in the last LBA; the primary still
			// names its old place when the disk was grown or truncated.
			where = fmt.Sprintf(" (the primary places it at LBA %d: the disk was resized or truncated)", primary.altLBA)
		}
		t.Warnings = append(t.Warnings, fmt.Sprintf("backup GPT at LBA %d is missing or damaged (%s)%s; the primary is sound", backupLBA, berr, where))
	case !primaryOK && backupOK:
		used = backup
		t.Warnings = append(t.Warnings, fmt.Sprintf("primary GPT at LBA 1 is damaged (%s); partitions read from the backup GPT at LBA %d", perr, backupLBA))
	case !primaryOK && !backupOK:
		if !primaryFound {
			return fmt.Errorf("GPT (%d-byte sectors): no primary header at LBA 1, and the backup at LBA %d is damaged: %s", ss, backupLBA, berr)
		}
		return fmt.Errorf("GPT (%d-byte sectors): primary header at LBA 1 is damaged (%s) and so is the backup at LBA %d (%s)", ss, perr, backupLBA, berr)
	}
	if primaryOK && backupOK && primary.count != backup.count {
		t.Warnings = append(t.Warnings, fmt.Sprintf("primary and backup GPT differ (%d and %d entries)", primary.count, backup.count))
	}
	if used.lastUsable >= sectors {
		t.Warnings = append(t.Warnings, fmt.Sprintf("the GPT was made for a disk of at least %d sectors but this one has %d: it may be truncated", used.lastUsable+1, sectors))
	}
	t.DiskID = used.diskGUID

	// Both candidate headers are sane now, so go-diskfs cannot be led into
	// a huge allocation or a read outside the section.
	tbl, err := gpt.Read(diskfsFile{r}, ss, ss)
	if err != nil {
		return fmt.Errorf("GPT (%d-byte sectors): %w", ss, err)
	}
	if tbl.RecoveredFromBackup == primaryOK {
		return fmt.Errorf("GPT (%d-byte sectors): go-diskfs and this package disagree on which GPT copy is sound", ss)
	}

	for _, p := range tbl.Partitions {
		v := Volume{
			Index:  p.Index,
			Type:   gptTypeName(string(p.Type)),
			TypeID: strings.ToUpper(string(p.Type)),
			GUID:   p.GUID,
			Name:   p.Name,
		}
		off, okOff := lbaBytes(p.Start, ss)
		switch {
		case !okOff || p.Start >= sectors:
			v.Offset, v.Size = t.Size, 0
			addDamage(&v, fmt.Sprintf("starts at LBA %d, beyond the end of the disk (%d sectors)", p.Start, sectors))
		case p.End < p.Start:
			v.Offset, v.Size = off, 0
			addDamage(&v, fmt.Sprintf("ends (LBA %d) before it starts (LBA %d)", p.End, p.Start))
		default:
			v.Offset = off
			end := p.End
			if end >= sectors {
				addDamage(&v, fmt.Sprintf("ends at LBA %d, beyond the end of the disk (%d sectors)", p.End, sectors))
				end = sectors - 1
			}
			v.Size = int64(end-p.Start+1) * int64(ss)
		}
		if v.Damaged == "" && (p.Start < used.firstUsable || p.End > used.lastUsable) {
			addDamage(&v, fmt.Sprintf("LBAs %d-%d are outside the table's usable area (LBAs %d-%d)", p.Start, p.End, used.firstUsable, used.lastUsable))
		}
		if v.Damaged == "" && v.Size > 0 {
			// The usable area comes from the header, which a CRC only
			// proves was written, not that it was right: check the
			// table's own sectors too, or a writer of this volume could
			// overwrite the partition table.
			last := p.Start + uint64(v.Size/int64(ss)) - 1
			for _, r := range gptTableSectors(pc.h, bc.h, ss, sectors) {
				if p.Start <= r[1] && r[0] <= last {
					addDamage(&v, fmt.Sprintf("LBAs %d-%d overlap the partition table itself (LBAs %d-%d)", p.Start, last, r[0], r[1]))
					break
				}
			}
		}
		t.Volumes = append(t.Volumes, v)
	}
	markOverlaps(t.Volumes, nil)
	for i := range t.Volumes {
		t.Volumes[i].Content = contentAt(r, t.Volumes[i].Offset, t.Volumes[i].Size)
	}
	return nil
}

// gptTableSectors returns the inclusive LBA ranges a GPT occupies on a
// disk of sectors logical sectors: the protective MBR and the primary
// header (LBAs 0-1), the backup header (the last LBA), and the entry array
// of each header that was read (a zero header was not).
func gptTableSectors(primary, backup gptHeader, ss int, sectors uint64) [][2]uint64 {
	rs := [][2]uint64{{0, 1}, {sectors - 1, sectors - 1}}
	for _, h := range []gptHeader{primary, backup} {
		if h.count == 0 {
			continue
		}
		n := (uint64(h.count)*gptEntrySize + uint64(ss) - 1) / uint64(ss)
		rs = append(rs, [2]uint64{h.entriesLBA, h.entriesLBA + n - 1})
	}
	return rs
}

// gptTypes names the partition types a Windows disk carries, and the
// common others (UEFI specification 2.10 table 5.7; Microsoft "PARTITION_
// INFORMATION_GPT"; the Discoverable Partitions Specification).
var gptTypes = map[string]string{
	"C12A7328-F81F-11D2-BA4B-00A0C93EC93B": "EFI System",
	"E3C9E316-0B5C-4DB8-817D-F92DF00215AE": "Microsoft reserved",
	"EBD0A0A2-B9E5-4433-87C0-68B6B72699C7": "Basic data",
	"DE94BBA4-06D1-4D40-A16A-BFD50179D6AC": "Windows Recovery",
	"5808C8AA-7E8F-42E0-85D2-E1E90434CFB3": "LDM metadata",
	"AF9B60A0-1431-4F62-BC68-3311714A69AD": "LDM data",
	"E75CAF8F-F680-4CEE-AFA3-B001E56EFC2D": "Storage Spaces",
	"024DEE41-33E7-11D3-9D69-0008C781F39F": "MBR partition scheme",
	"21686148-6449-6E6F-744E-656564454649": "BIOS boot",
	"0FC63DAF-8483-4772-8E79-3D69D8477DE4": "Linux filesystem",
	"0657FD6D-A4AB-43C4-84E5-0933C84B4F4F": "Linux swap",
	"E6D6D379-F507-44C2-A23C-238F2A3DF928": "Linux LVM",
	"A19D880F-05FC-4D3B-A006-743F0F84911E": "Linux RAID",
	"CA7D7CCB-63ED-4C53-861C-1742536059CC": "Linux LUKS",
	"48465300-0000-11AA-AA11-00306543ECAC": "Apple HFS+",
	"7C3457EF-0000-11AA-AA11-00306543ECAC": "Apple APFS",
}

func gptTypeName(guid string) string {
	guid = strings.ToUpper(guid)
	if n, ok := gptTypes[guid]; ok {
		return n
	}
	return "unknown (" + guid + ")"
}
