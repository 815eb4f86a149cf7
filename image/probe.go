package image

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// mbrSignature is the boot signature at offset 510 of an MBR, an EBR and a
// volume boot sector.
var mbrSignature = []byte{0x55, 0xAA}

// probe identifies what the size bytes of r are and reads their layout.
// devSector is the logical sector size a block device reports (0 for a
// file).
func probe(r io.ReaderAt, size int64, devSector int) (*Target, error) {
	return probeFile(r, size, devSector, "")
}

// probeNamed is probeFile with its errors naming path, and an unsupported
// format's hint filled in with it.
func probeNamed(path string, r io.ReaderAt, size int64, devSector int) (*Target, error) {
	t, err := probeFile(r, size, devSector, path)
	if err != nil {
		var ue *UnsupportedError
		if errors.As(err, &ue) {
			return nil, unsupported(ue.Format, path)
		}
		return nil, fmt.Errorf("image: %s: %w", path, err)
	}
	t.Path = path
	return t, nil
}

// probeFile is probe for the file at path ("" when the bytes have no
// name): a differencing disk finds its parent beside it. A container
// format (qcow2, VHDX, dynamic or differencing VHD) is opened read-only:
// its Target writes only through Over.
func probeFile(r io.ReaderAt, size int64, devSector int, path string) (*Target, error) {
	id, err := Identify(r, size)
	if err != nil {
		return nil, err
	}
	t := &Target{Format: id.Format, Size: id.DataSize, fileSize: size}
	if id.Warning != "" {
		t.Warnings = append(t.Warnings, id.Warning)
	}
	var data *io.SectionReader
	switch id.Format {
	case FormatRaw, FormatVHDFixed:
		data = io.NewSectionReader(r, 0, id.DataSize)
		t.r = data
	default:
		t.chain = newChain(path)
		name := path
		if name == "" {
			name = id.Format + " image"
		}
		l, err := openLayer(id, &containerFile{r: r, size: size, name: name}, path, t.chain)
		if err != nil {
			t.chain.close()
			return nil, err
		}
		t.lay, t.Size = l, l.virtualSize()
		data = io.NewSectionReader(l, 0, t.Size)
		t.r = l
	}
	if t.Size < 512 {
		err = fmt.Errorf("%d bytes of data is too small to hold a disk or a volume", t.Size)
	} else {
		err = t.readLayout(data, devSector)
	}
	if err != nil {
		if t.chain != nil {
			t.chain.close()
		}
		return nil, err
	}
	return t, nil
}

// readLayout decides between a partitioned disk and a bare volume, and
// fills Kind, Table, SectorSize and Volumes.
func (t *Target) readLayout(r *io.SectionReader, devSector int) error {
	sector0 := make([]byte, 512)
	if err := readFull(r, sector0, 0); err != nil {
		return fmt.Errorf("reading sector 0: %w", err)
	}

	// A GPT header at LBA 1 (or its backup in the last LBA) says which
	// logical sector size the table was written with: a 4Kn disk has it at
	// byte 4096, a 512e or 512n disk at byte 512.
	ss, primary, err := findGPT(r, t.Size, devSector)
	if err != nil {
		return err
	}
	if ss != 0 {
		return t.readGPT(r, ss, primary)
	}
	if hasProtectiveEntry(sector0) {
		return errors.New("the MBR holds a GPT protective partition (type 0xEE) but no GPT header was found at LBA 1 or in the last LBA for 512- or 4096-byte sectors: the partition table is damaged (gdisk's recovery menu or testdisk can rebuild it)")
	}
	// A volume boot sector also ends in 55 AA, so it is recognised before
	// the bytes at 446 are taken for partition entries.
	if c := contentOf(sector0); c != ContentUnknown && c != ContentEmpty {
		t.Kind = KindVolume
		t.Volumes = []Volume{{Index: 0, Offset: 0, Size: t.Size, Type: "volume", Content: contentAt(r, 0, t.Size)}}
		return nil
	}
	if looksLikeMBR(sector0) {
		return t.readMBR(r, sector0, devSector)
	}
	t.Kind = KindVolume
	content := contentAt(r, 0, t.Size)
	t.Volumes = []Volume{{Index: 0, Offset: 0, Size: t.Size, Type: "volume", Content: content}}
	t.Warnings = append(t.Warnings, fmt.Sprintf("no partition table and no known file system at the start (the first bytes look %s)", content))
	return nil
}

// contentAt says what the volume at off holds from its first 4 KiB (or
// fewer, when the volume or the disk ends sooner).
func contentAt(r io.ReaderAt, off, size int64) string {
	n := min(size, 4096)
	if n <= 0 {
		return ContentEmpty
	}
	b := make([]byte, n)
	got, _ := r.ReadAt(b, off)
	if got < min(int(n), 512) {
		return ContentUnknown // not even one readable sector
	}
	return contentOf(b[:got])
}

// contentOf says what a volume starting with b holds.
func contentOf(b []byte) string {
	switch {
	case hasAt(b, 3, sigNTFS):
		return ContentNTFS
	case hasAt(b, 3, sigBitLocker):
		return ContentBitLocker
	case hasAt(b, 3, sigExFAT):
		return ContentExFAT
	case isFATBoot(b):
		return ContentFAT
	case allZero(b):
		return ContentEmpty
	}
	return ContentUnknown
}

// isFATBoot checks a FAT12/16/32 boot sector: a jump instruction (EB xx 90
// or E9 xx xx), a BIOS parameter block with a power-of-two sector size of
// 512-4096 at 0x0B, a power-of-two cluster size at 0x0D, reserved sectors
// at 0x0E, one or two FATs at 0x10, a media byte at 0x15 (F0 or F8-FF), and
// the file system type string of the FAT12/16 ("FAT" at 0x36) or FAT32
// ("FAT32" at 0x52) extended BPB. The string is not required by the
// specification, but every formatter writes it and it keeps MBR boot code
// that starts with a jump from passing for FAT.
func isFATBoot(b []byte) bool {
	if len(b) < 512 || !hasAt(b, 510, mbrSignature) {
		return false
	}
	if !(b[0] == 0xEB && b[2] == 0x90) && b[0] != 0xE9 {
		return false
	}
	bps := binary.LittleEndian.Uint16(b[0x0B:])
	spc := b[0x0D]
	reserved := binary.LittleEndian.Uint16(b[0x0E:])
	fats := b[0x10]
	media := b[0x15]
	switch bps {
	case 512, 1024, 2048, 4096:
	default:
		return false
	}
	if spc == 0 || spc&(spc-1) != 0 || reserved == 0 || fats == 0 || fats > 2 || (media != 0xF0 && media < 0xF8) {
		return false
	}
	return hasAt(b, 0x36, []byte("FAT")) || hasAt(b, 0x52, []byte("FAT32"))
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// diskfsFile lets go-diskfs read through a bounded section: its readers
// see exactly the disk data (a VHD footer excluded) and cannot reach
// outside it.
type diskfsFile struct{ *io.SectionReader }

// Stat is not needed by the table readers; it is there to satisfy
// backend.File.
func (diskfsFile) Stat() (fs.FileInfo, error) {
	return nil, errors.New("image: stat is not available on a disk section")
}

// Close does nothing: the Target owns the file.
func (diskfsFile) Close() error { return nil }

// lbaBytes converts a sector number to a byte offset, reporting false when
// it does not fit in an int64.
func lbaBytes(lba uint64, ss int) (int64, bool) {
	const maxInt64 = 1<<63 - 1
	if lba > uint64(maxInt64)/uint64(ss) {
		return 0, false
	}
	return int64(lba) * int64(ss), true
}

// markOverlaps marks every volume whose byte range overlaps another's as
// damaged, unless skip says the pair may overlap (an MBR extended partition
// and its logical partitions). At most a few partners are named, so that a
// table of thousands of identical entries stays cheap to report.
func markOverlaps(vs []Volume, skip func(a, b Volume) bool) {
	const named = 3
	partners := make([][]int, len(vs))
	counts := make([]int, len(vs))
	for i := range vs {
		for j := i + 1; j < len(vs); j++ {
			a, b := vs[i], vs[j]
			if a.Size <= 0 || b.Size <= 0 || (skip != nil && skip(a, b)) {
				continue
			}
			if a.Offset < b.Offset+b.Size && b.Offset < a.Offset+a.Size {
				for _, k := range [2][2]int{{i, j}, {j, i}} {
					counts[k[0]]++
					if len(partners[k[0]]) < named {
						partners[k[0]] = append(partners[k[0]], vs[k[1]].Index)
					}
				}
			}
		}
	}
	for i, ps := range partners {
		if len(ps) == 0 {
			continue
		}
		why := "overlaps partition"
		for n, idx := range ps {
			if n > 0 {
				why += ","
			}
			why += fmt.Sprintf(" %d", idx)
		}
		if more := counts[i] - len(ps); more > 0 {
			why += fmt.Sprintf(" and %d more", more)
		}
		addDamage(&vs[i], why)
	}
}

func addDamage(v *Volume, why string) {
	if v.Damaged == "" {
		v.Damaged = why
	} else {
		v.Damaged += "; " + why
	}
}
