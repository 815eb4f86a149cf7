package ntfs

import (
	"fmt"
	"unicode/utf16"
)

// This file reads and edits $ATTRIBUTE_LIST (0x20): the list of every
// attribute of a file whose attributes do not fit in its base record, with
// the record holding each. Entry layout (layout.h ATTR_LIST_ENTRY): type
// u32, length u16, name length u8, name offset u8, lowest VCN u64, MFT
// reference u64, instance u16, name.

// alKey names one attribute in a list: the record holding it and its
// instance number there.
type alKey struct {
	rec uint64
	id  uint16
}

type alEntry struct {
	typ      uint32
	name     string
	startVCN int64
	ref      uint64
	id       uint16
}

func parseAttrList(b []byte) ([]alEntry, error) {
	var out []alEntry
	for off := 0; off < len(b); {
		if off+0x1A > len(b) {
			return nil, fmt.Errorf("$ATTRIBUTE_LIST entry at %d truncated", off)
		}
		l := int(le16(b[off+4:]))
		nl, no := int(b[off+6]), int(b[off+7])
		if l < 0x1A || off+l > len(b) || no+2*nl > l {
			return nil, fmt.Errorf("$ATTRIBUTE_LIST entry at %d: length %d, name %d at %d", off, l, nl, no)
		}
		e := alEntry{typ: le32(b[off:]), startVCN: int64(le64(b[off+8:])), ref: le64(b[off+0x10:]), id: le16(b[off+0x18:])}
		if nl > 0 {
			e.name = decodeUTF16(b[off+no : off+no+2*nl])
		}
		out = append(out, e)
		off += l
	}
	return out, nil
}

func encodeAttrList(es []alEntry) []byte {
	var out []byte
	for _, e := range es {
		nm := utf16.Encode([]rune(e.name))
		l := align8(0x1A + 2*len(nm))
		b := make([]byte, l)
		putLE32(b, e.typ)
		putLE16(b[4:], uint16(l))
		b[6] = byte(len(nm))
		b[7] = 0x1A
		putLE64(b[8:], uint64(e.startVCN))
		putLE64(b[0x10:], e.ref)
		putLE16(b[0x18:], e.id)
		copy(b[0x1A:], utf16ToBytes(nm))
		out = append(out, b...)
	}
	return out
}

// attrList returns the parsed $ATTRIBUTE_LIST of a base record, or nil.
func (t *tx) attrList(base *Record) ([]alEntry, error) {
	a, ok, err := base.FindAttr(AttrAttributeList, "")
	if err != nil || !ok {
		return nil, err
	}
	b, err := readAttrData(t.o, t.g, a, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("ntfs: MFT record %d: $ATTRIBUTE_LIST: %w", base.Num, err)
	}
	es, err := parseAttrList(b)
	if err != nil {
		return nil, fmt.Errorf("ntfs: MFT record %d: %w", base.Num, err)
	}
	return es, nil
}

// findAttrAny finds the first extent of an attribute of a base record,
// following its $ATTRIBUTE_LIST into extension records. extents counts the
// extents the list names for it (1 without a list).
func (t *tx) findAttrAny(base *Record, typ uint32, name string) (rec *Record, a Attr, extents int, err error) {
	al, err := t.attrList(base)
	if err != nil {
		return nil, Attr{}, 0, err
	}
	if al == nil {
		a, ok, err := base.FindAttr(typ, name)
		if err != nil || !ok {
			return nil, Attr{}, 0, err
		}
		return base, a, 1, nil
	}
	for _, e := range al {
		if e.typ != typ || e.name != name {
			continue
		}
		extents++
		if e.startVCN != 0 || rec != nil {
			continue
		}
		r := base
		if RefNum(e.ref) != base.Num {
			if r, err = t.record(RefNum(e.ref)); err != nil {
				return nil, Attr{}, 0, err
			}
			if RefNum(r.BaseRef()) != base.Num {
				return nil, Attr{}, 0, fmt.Errorf("ntfs: MFT record %d lists attribute 0x%x in record %d, which belongs to record %d", base.Num, typ, r.Num, RefNum(r.BaseRef()))
			}
		}
		as, err := r.Attrs()
		if err != nil {
			return nil, Attr{}, 0, err
		}
		for _, x := range as {
			if x.Type == typ && x.Name == name && x.ID == e.id {
				rec, a = r, x
			}
		}
		if rec == nil {
			return nil, Attr{}, 0, fmt.Errorf("ntfs: MFT record %d: attribute 0x%x (instance %d) listed in record %d is not there", base.Num, typ, e.id, r.Num)
		}
	}
	return rec, a, extents, nil
}

// syncAttrList rewrites the base record's $ATTRIBUTE_LIST after attributes
// were removed (drop: by record and instance) or added (the new attributes
// of addTypes in the record, by instance): the list must name every
// attribute. A list that outgrows its allocation takes more clusters.
func (t *tx) syncAttrList(base *Record, drop map[alKey]bool, add []Attr) error {
	if _, ok, err := base.FindAttr(AttrAttributeList, ""); err != nil || !ok {
		return err
	}
	es, err := t.attrList(base)
	if err != nil {
		return err
	}
	var out []alEntry
	for _, e := range es {
		if drop[alKey{RefNum(e.ref), e.id}] {
			continue
		}
		out = append(out, e)
	}
	for _, x := range add {
		listed := false
		for _, e := range out {
			listed = listed || RefNum(e.ref) == base.Num && e.id == x.ID
		}
		if !listed {
			out = append(out, alEntry{typ: x.Type, name: x.Name, ref: base.Ref(), id: x.ID})
		}
	}
	return t.writeAttrList(base, out)
}
