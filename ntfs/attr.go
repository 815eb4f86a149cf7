package ntfs

import (
	"fmt"
	"slices"
	"unicode/utf16"
)

// This file edits attributes inside a Record: insert, remove and resize,
// keeping the attribute order (by type), the used size, 8-byte alignment
// and next_attr_id right (layout.h ATTR_RECORD, MFT_RECORD).

// setUsed stores the used size and rewrites the end marker after the last
// attribute at newEnd.
func (r *Record) setUsed(newEnd int) {
	putLE32(r.Data[newEnd:], attrEnd)
	putLE32(r.Data[newEnd+4:], 0)
	putLE32(r.Data[recUsed:], uint32(newEnd+8))
}

// endOffset is the offset of the end marker. When at is not -1 it must be
// the offset of one of the record's attributes (the one about to be
// resized or removed).
func (r *Record) endOffset(at int) (int, error) {
	as, err := r.Attrs()
	if err != nil {
		return 0, err
	}
	if at >= 0 && !slices.ContainsFunc(as, func(a Attr) bool { return a.Off == at }) {
		return 0, fmt.Errorf("ntfs: record %d: no attribute starts at 0x%x", r.Num, at)
	}
	if len(as) == 0 {
		return int(le16(r.Data[recAttrsOff:])), nil
	}
	last := as[len(as)-1]
	return last.Off + last.Len, nil
}

// ResizeAttr changes the length of the attribute at off to newLen (a
// multiple of 8), moving the attributes after it. Bytes gained at the end
// of the attribute are zeroed. It fails with ErrNeedsAttributeList when the
// record has no room.
func (r *Record) ResizeAttr(off, newLen int) error {
	if newLen < 0x18 || newLen%8 != 0 {
		return fmt.Errorf("ntfs: record %d: attribute length %d invalid", r.Num, newLen)
	}
	end, err := r.endOffset(off)
	if err != nil {
		return err
	}
	oldLen := int(le32(r.Data[off+4:]))
	delta := newLen - oldLen
	if end+delta+8 > len(r.Data) {
		return fmt.Errorf("ntfs: record %d: attribute 0x%x needs %d more bytes, %d free: %w", r.Num, le32(r.Data[off:]), delta, len(r.Data)-end-8, ErrNeedsAttributeList)
	}
	tail := r.Data[off+oldLen : end]
	if delta > 0 {
		copy(r.Data[off+newLen:], tail)
		clear(r.Data[off+oldLen : off+newLen])
	} else if delta < 0 {
		copy(r.Data[off+newLen:], tail)
		clear(r.Data[end+delta : end+8])
	}
	putLE32(r.Data[off+4:], uint32(newLen))
	r.setUsed(end + delta)
	return nil
}

// SetResidentValue replaces a resident attribute's value, resizing it.
func (r *Record) SetResidentValue(a Attr, v []byte) error {
	if a.NonResident {
		return fmt.Errorf("ntfs: record %d: attribute 0x%x is not resident", r.Num, a.Type)
	}
	if err := r.stillAt(a); err != nil {
		return err
	}
	vo := int(le16(r.Data[a.Off+0x14:]))
	if err := r.ResizeAttr(a.Off, align8(vo+len(v))); err != nil {
		return err
	}
	copy(r.Data[a.Off+vo:], v)
	clear(r.Data[a.Off+vo+len(v) : a.Off+align8(vo+len(v))])
	putLE32(r.Data[a.Off+0x10:], uint32(len(v)))
	return nil
}

// RemoveAttr deletes the attribute at off.
func (r *Record) RemoveAttr(off int) error {
	end, err := r.endOffset(off)
	if err != nil {
		return err
	}
	l := int(le32(r.Data[off+4:]))
	copy(r.Data[off:], r.Data[off+l:end])
	clear(r.Data[end-l : end+8])
	r.setUsed(end - l)
	return nil
}

// InsertResident adds a resident attribute (with an optional UTF-16 name)
// in type order, giving it the next instance number. indexed sets the
// resident "indexed" flag ($FILE_NAME attributes carry it). It returns the
// new attribute's offset.
func (r *Record) InsertResident(t uint32, name string, value []byte, indexed bool) (int, error) {
	nm := utf16.Encode([]rune(name))
	vo := align8(0x18 + 2*len(nm))
	total := align8(vo + len(value))
	off, err := r.insertSpace(t, name, total)
	if err != nil {
		return 0, err
	}
	h := r.Data[off : off+total]
	putLE32(h[0:], t)
	putLE32(h[4:], uint32(total))
	h[8] = 0
	h[9] = byte(len(nm))
	putLE16(h[0xA:], 0x18)
	putLE16(h[0xC:], 0)
	putLE16(h[0xE:], r.takeAttrID())
	putLE32(h[0x10:], uint32(len(value)))
	putLE16(h[0x14:], uint16(vo))
	if indexed {
		h[0x16] = 1
	}
	copy(h[0x18:], utf16ToBytes(nm))
	copy(h[vo:], value)
	return off, nil
}

// InsertNonResident adds a non-resident attribute with the given runs and
// sizes. It returns the new attribute's offset.
func (r *Record) InsertNonResident(t uint32, name string, runs []Run, alloc, data, init int64) (int, error) {
	nm := utf16.Encode([]rune(name))
	rl, err := EncodeRunList(runs)
	if err != nil {
		return 0, err
	}
	ro := align8(0x40 + 2*len(nm))
	total := align8(ro + len(rl))
	off, err := r.insertSpace(t, name, total)
	if err != nil {
		return 0, err
	}
	h := r.Data[off : off+total]
	putLE32(h[0:], t)
	putLE32(h[4:], uint32(total))
	h[8] = 1
	h[9] = byte(len(nm))
	putLE16(h[0xA:], 0x40)
	putLE16(h[0xE:], r.takeAttrID())
	putLE64(h[0x10:], 0)
	putLE64(h[0x18:], uint64(runsClusters(runs)-1))
	putLE16(h[0x20:], uint16(ro))
	putLE64(h[0x28:], uint64(alloc))
	putLE64(h[0x30:], uint64(data))
	putLE64(h[0x38:], uint64(init))
	copy(h[0x40:], utf16ToBytes(nm))
	copy(h[ro:], rl)
	return off, nil
}

// SetRuns replaces a non-resident attribute's run list (resizing it) and
// its last VCN; sizes are set separately with SetSizes.
func (r *Record) SetRuns(a Attr, runs []Run) error {
	rl, err := EncodeRunList(runs)
	if err != nil {
		return err
	}
	if err := r.stillAt(a); err != nil {
		return err
	}
	ro := int(le16(r.Data[a.Off+0x20:]))
	if err := r.ResizeAttr(a.Off, align8(ro+len(rl))); err != nil {
		return err
	}
	copy(r.Data[a.Off+ro:], rl)
	clear(r.Data[a.Off+ro+len(rl) : a.Off+align8(ro+len(rl))])
	putLE64(r.Data[a.Off+0x18:], uint64(int64(le64(r.Data[a.Off+0x10:]))+runsClusters(runs)-1))
	return nil
}

// SetSizes stores a non-resident attribute's allocated, data and
// initialized sizes.
func (r *Record) SetSizes(a Attr, alloc, data, init int64) {
	putLE64(r.Data[a.Off+0x28:], uint64(alloc))
	putLE64(r.Data[a.Off+0x30:], uint64(data))
	putLE64(r.Data[a.Off+0x38:], uint64(init))
}

// stillAt checks that the view a still names an attribute of the record
// where it was found (views go stale when the record is edited): the
// editors resize at a.Off and must never do so in the middle of another
// attribute.
func (r *Record) stillAt(a Attr) error {
	as, err := r.Attrs()
	if err != nil {
		return err
	}
	for _, x := range as {
		if x.Off == a.Off && x.Type == a.Type && x.NonResident == a.NonResident {
			return nil
		}
	}
	return fmt.Errorf("ntfs: record %d: attribute 0x%x at 0x%x is gone (stale view after an edit)", r.Num, a.Type, a.Off)
}

// takeAttrID returns next_attr_id and increments it.
func (r *Record) takeAttrID() uint16 {
	id := le16(r.Data[recNextAttrID:])
	putLE16(r.Data[recNextAttrID:], id+1)
	return id
}

// insertSpace opens total zeroed bytes where an attribute of type t and
// name belongs: after every attribute of a lower type, and after those of
// the same type with a name that sorts before or equal (unnamed first).
func (r *Record) insertSpace(t uint32, name string, total int) (int, error) {
	as, err := r.Attrs()
	if err != nil {
		return 0, err
	}
	end, err := r.endOffset(-1)
	if err != nil {
		return 0, err
	}
	if end+total+8 > len(r.Data) {
		return 0, fmt.Errorf("ntfs: record %d: new attribute 0x%x needs %d bytes, %d free: %w", r.Num, t, total, len(r.Data)-end-8, ErrNeedsAttributeList)
	}
	if le16(r.Data[recNextAttrID:]) == 0xFFFF {
		return 0, fmt.Errorf("ntfs: record %d: attribute instance numbers exhausted", r.Num)
	}
	pos := end
	for _, a := range as {
		if a.Type > t || a.Type == t && a.Name > name {
			pos = a.Off
			break
		}
	}
	copy(r.Data[pos+total:], r.Data[pos:end])
	clear(r.Data[pos : pos+total])
	r.setUsed(end + total)
	return pos, nil
}
