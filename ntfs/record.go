package ntfs

import (
	"errors"
	"fmt"
	"unicode/utf16"
)

// MFT record header fields (NTFS 3.1, layout.h MFT_RECORD).
const (
	recSeq        = 0x10 // sequence number, bumped when the record is reused
	recLinks      = 0x12 // hard link count: one per $FILE_NAME
	recAttrsOff   = 0x14 // offset of the first attribute
	recFlags      = 0x16 // 1 in use, 2 directory
	recUsed       = 0x18 // bytes in use, end marker included
	recAlloc      = 0x1C // bytes allocated: the record size
	recBase       = 0x20 // base record reference (0 in a base record)
	recNextAttrID = 0x28 // next attribute instance number
	recNumber     = 0x2C // own record number (3.1)

	// RecordInUse and RecordIsDir are the MFT record flags.
	RecordInUse = 0x0001
	RecordIsDir = 0x0002
)

// Attribute types (layout.h ATTR_TYPES) used by the reader and the writer.
const (
	AttrStandardInformation = 0x10
	AttrAttributeList       = 0x20
	AttrFileName            = 0x30
	AttrVolumeName          = 0x60
	AttrVolumeInformation   = 0x70
	AttrData                = 0x80
	AttrIndexRoot           = 0x90
	AttrIndexAllocation     = 0xA0
	AttrBitmap              = 0xB0
	AttrReparsePoint        = 0xC0
	attrEnd                 = 0xFFFFFFFF
)

// Attribute flags (layout.h ATTR_FLAGS).
const (
	AttrFlagCompressed = 0x0001
	AttrFlagEncrypted  = 0x4000
	AttrFlagSparse     = 0x8000
)

// ErrNeedsAttributeList is returned when a change would not fit in the base
// MFT record and would need an $ATTRIBUTE_LIST, which the writer does not
// create.
var ErrNeedsAttributeList = errors.New("ntfs: change does not fit in the MFT record and would need an $ATTRIBUTE_LIST; refused")

// Record is one MFT record with its update sequence fixups already applied.
// Data is the whole record (RecordSize bytes); the methods edit it in place.
type Record struct {
	Num  uint64
	Data []byte
}

// ParseRecord validates a fixed-up MFT record: the FILE magic, the header
// offsets and every attribute header, so that later accessors can index the
// buffer without further checks.
func ParseRecord(num uint64, b []byte) (*Record, error) {
	r := &Record{Num: num, Data: b}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("ntfs: MFT record %d: %w", num, err)
	}
	return r, nil
}

func (r *Record) validate() error {
	b := r.Data
	if len(b) < 0x30 || string(b[:4]) != "FILE" {
		return errors.New("no FILE magic")
	}
	if _, _, err := usaHeader(b); err != nil {
		return err
	}
	used, alloc := int(le32(b[recUsed:])), int(le32(b[recAlloc:]))
	if alloc != len(b) {
		return fmt.Errorf("allocated size %d, record is %d bytes", alloc, len(b))
	}
	if used > alloc || used < 0x30 {
		return fmt.Errorf("used size %d out of range (allocated %d)", used, alloc)
	}
	first := int(le16(b[recAttrsOff:]))
	if first < 0x2A || first%8 != 0 || first+8 > used {
		return fmt.Errorf("first attribute offset 0x%x out of range", first)
	}
	_, err := r.Attrs()
	return err
}

// Seq is the record's sequence number: the upper 16 bits of every
// reference to it.
func (r *Record) Seq() uint16 { return le16(r.Data[recSeq:]) }

// Ref is the 64-bit file reference of this record (number and sequence).
func (r *Record) Ref() uint64 { return MakeRef(r.Num, r.Seq()) }

// Flags returns the record flags (RecordInUse, RecordIsDir).
func (r *Record) Flags() uint16 { return le16(r.Data[recFlags:]) }

// InUse reports whether the record holds a live file.
func (r *Record) InUse() bool { return r.Flags()&RecordInUse != 0 }

// IsDir reports whether the record is a directory (has an $I30 index).
func (r *Record) IsDir() bool { return r.Flags()&RecordIsDir != 0 }

// LinkCount is the hard link count in the header.
func (r *Record) LinkCount() uint16 { return le16(r.Data[recLinks:]) }

// SetLinkCount stores the hard link count.
func (r *Record) SetLinkCount(n uint16) { putLE16(r.Data[recLinks:], n) }

// BaseRef is the base record reference; 0 for a base record.
func (r *Record) BaseRef() uint64 { return le64(r.Data[recBase:]) }

// Used is the number of bytes in use, the end marker included.
func (r *Record) Used() int { return int(le32(r.Data[recUsed:])) }

// Free is the number of bytes still available in the record.
func (r *Record) Free() int { return len(r.Data) - r.Used() }

// MakeRef builds a file reference from a record number and sequence.
func MakeRef(num uint64, seq uint16) uint64 { return num&0xFFFFFFFFFFFF | uint64(seq)<<48 }

// RefNum is the record number part of a file reference.
func RefNum(ref uint64) uint64 { return ref & 0xFFFFFFFFFFFF }

// RefSeq is the sequence number part of a file reference.
func RefSeq(ref uint64) uint16 { return uint16(ref >> 48) }

// Attr is a view of one attribute header inside a Record, valid until the
// record is next changed.
type Attr struct {
	Off         int // offset of the header in the record
	Type        uint32
	Len         int
	NonResident bool
	Name        string
	Flags       uint16
	ID          uint16
	rec         *Record
}

// Attrs lists the record's attributes in order, validating each header.
func (r *Record) Attrs() ([]Attr, error) {
	b := r.Data
	used := r.Used()
	var out []Attr
	for off := int(le16(b[recAttrsOff:])); ; {
		if off+4 > used {
			return nil, fmt.Errorf("attribute at 0x%x runs past used size %d", off, used)
		}
		t := le32(b[off:])
		if t == attrEnd {
			if off+8 != used && off+4 != used {
				// Windows and ntfs-3g put the used size 8 bytes past the
				// marker; tolerate 4 but nothing else.
				return nil, fmt.Errorf("end marker at 0x%x does not match used size %d", off, used)
			}
			return out, nil
		}
		if off+0x18 > used {
			return nil, fmt.Errorf("attribute 0x%x at 0x%x: header runs past used size", t, off)
		}
		l := int(le32(b[off+4:]))
		if l < 0x18 || l%8 != 0 || off+l > used {
			return nil, fmt.Errorf("attribute 0x%x at 0x%x: length %d out of range", t, off, l)
		}
		a := Attr{Off: off, Type: t, Len: l, NonResident: b[off+8] != 0, Flags: le16(b[off+0xC:]), ID: le16(b[off+0xE:]), rec: r}
		// The name sits between the header and the value (resident) or
		// the run list (non-resident): Windows and ntfs-3g always lay it
		// out so, and the editor resizes the value or run list in place,
		// which keeps a name there valid and would cut one placed after.
		hdr, body := 0x18, 0
		if a.NonResident {
			if l < 0x40 {
				return nil, fmt.Errorf("attribute 0x%x at 0x%x: non-resident header of %d bytes", t, off, l)
			}
			hdr, body = 0x40, int(le16(b[off+0x20:]))
			if body < hdr || body > l {
				return nil, fmt.Errorf("attribute 0x%x at 0x%x: run list offset 0x%x out of range", t, off, body)
			}
		} else {
			vl, vo := int(le32(b[off+0x10:])), int(le16(b[off+0x14:]))
			if vo < 0x18 || vo > l || vl > l-vo {
				return nil, fmt.Errorf("attribute 0x%x at 0x%x: value (offset 0x%x, %d bytes) outside the attribute", t, off, vo, vl)
			}
			body = vo
		}
		if nl, no := int(b[off+9]), int(le16(b[off+0xA:])); nl > 0 {
			if no < hdr || no+2*nl > body {
				return nil, fmt.Errorf("attribute 0x%x at 0x%x: name (offset 0x%x, %d characters) is not between the header and the value", t, off, no, nl)
			}
			a.Name = decodeUTF16(b[off+no : off+no+2*nl])
		}
		if len(out) >= len(b)/0x18 {
			return nil, errors.New("too many attributes")
		}
		out = append(out, a)
		off += l
	}
}

// FindAttr returns the first attribute of the type and name ("" unnamed).
func (r *Record) FindAttr(t uint32, name string) (Attr, bool, error) {
	as, err := r.Attrs()
	if err != nil {
		return Attr{}, false, err
	}
	for _, a := range as {
		if a.Type == t && a.Name == name {
			return a, true, nil
		}
	}
	return Attr{}, false, nil
}

// Value returns a resident attribute's value (a slice of the record).
func (a Attr) Value() []byte {
	if a.NonResident {
		return nil
	}
	b := a.rec.Data[a.Off:]
	vo := int(le16(b[0x14:]))
	return b[vo : vo+int(le32(b[0x10:]))]
}

// Runs decodes a non-resident attribute's run list.
func (a Attr) Runs() ([]Run, error) {
	if !a.NonResident {
		return nil, errors.New("attribute is resident")
	}
	b := a.rec.Data[a.Off : a.Off+a.Len]
	return DecodeRunList(b[le16(b[0x20:]):])
}

// StartVCN is the first VCN a non-resident extent maps.
func (a Attr) StartVCN() int64 { return int64(le64(a.rec.Data[a.Off+0x10:])) }

// LastVCN is the last VCN a non-resident extent maps.
func (a Attr) LastVCN() int64 { return int64(le64(a.rec.Data[a.Off+0x18:])) }

// AllocSize is a non-resident attribute's allocated size in bytes.
func (a Attr) AllocSize() int64 { return int64(le64(a.rec.Data[a.Off+0x28:])) }

// DataSize is a non-resident attribute's data size in bytes.
func (a Attr) DataSize() int64 { return int64(le64(a.rec.Data[a.Off+0x30:])) }

// InitSize is a non-resident attribute's initialized size: bytes past it
// read as zero.
func (a Attr) InitSize() int64 { return int64(le64(a.rec.Data[a.Off+0x38:])) }

// Size is the attribute's data size, resident or not.
func (a Attr) Size() int64 {
	if a.NonResident {
		return a.DataSize()
	}
	return int64(le32(a.rec.Data[a.Off+0x10:]))
}

func decodeUTF16(b []byte) string { return string(utf16.Decode(bytesToUTF16(b))) }

func bytesToUTF16(b []byte) []uint16 {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = le16(b[2*i:])
	}
	return u
}

func utf16ToBytes(u []uint16) []byte {
	b := make([]byte, 2*len(u))
	for i, c := range u {
		putLE16(b[2*i:], c)
	}
	return b
}

func align8(n int) int { return (n + 7) &^ 7 }
