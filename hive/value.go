package hive

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// ValueType is a registry value's type (REG_xxx).
type ValueType uint32

// Value types.
const (
	RegNone                     ValueType = 0
	RegSZ                       ValueType = 1
	RegExpandSZ                 ValueType = 2
	RegBinary                   ValueType = 3
	RegDWORD                    ValueType = 4
	RegDWORDBigEndian           ValueType = 5
	RegLink                     ValueType = 6
	RegMultiSZ                  ValueType = 7
	RegResourceList             ValueType = 8
	RegFullResourceDescriptor   ValueType = 9
	RegResourceRequirementsList ValueType = 10
	RegQWORD                    ValueType = 11
)

var valueTypeNames = [...]string{
	"REG_NONE", "REG_SZ", "REG_EXPAND_SZ", "REG_BINARY", "REG_DWORD",
	"REG_DWORD_BIG_ENDIAN", "REG_LINK", "REG_MULTI_SZ", "REG_RESOURCE_LIST",
	"REG_FULL_RESOURCE_DESCRIPTOR", "REG_RESOURCE_REQUIREMENTS_LIST", "REG_QWORD",
}

// String returns the Windows name ("REG_SZ"), or "0x%x" for unknown types.
func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("0x%x", uint32(t))
}

// Value node ("vk") layout (formats.md, "Values"): name length u16 @2, data
// size u32 @4 (top bit: data inline in the offset field, at most 4 bytes),
// data offset @8, type @12, flags u16 @16 (1 = Latin-1 name), name @20.
const (
	vkFixedSize  = 20
	vkOffNameLen = 2
	vkOffDataLen = 4
	vkOffData    = 8
	vkOffType    = 12
	vkOffFlags   = 16
	vkCompName   = 0x0001
	vkInlineBit  = 0x80000000

	// bigDataSegment is the most a value data cell holds in hives of
	// version 1.4 and later (CM_KEY_VALUE_BIG); longer data is split into
	// "db" segments of exactly this many bytes (the last one shorter).
	bigDataSegment = 16344
	dbHeaderSize   = 8 // "db", segment count u16 @2, segment list @4
)

// vkRecord is a decoded value node.
type vkRecord struct {
	nameLen uint16
	dataLen uint32 // raw field, inline bit included
	dataOff uint32
	typ     uint32
	flags   uint16
	name    []uint16
	inline  [4]byte
}

func (v *vkRecord) isInline() bool { return v.dataLen&vkInlineBit != 0 }
func (v *vkRecord) length() uint32 { return v.dataLen &^ vkInlineBit }

func parseVK(off uint32, d []byte) (*vkRecord, error) {
	if len(d) < vkFixedSize {
		return nil, cellErr(off, "value", ErrRecord, "cell holds %d bytes, a value node needs %d", len(d), vkFixedSize)
	}
	if d[0] != 'v' || d[1] != 'k' {
		return nil, cellErr(off, "value", ErrRecord, "signature %q, want \"vk\"", d[0:2])
	}
	v := &vkRecord{
		nameLen: leUint16(d[vkOffNameLen:]),
		dataLen: leUint32(d[vkOffDataLen:]),
		dataOff: leUint32(d[vkOffData:]),
		typ:     leUint32(d[vkOffType:]),
		flags:   leUint16(d[vkOffFlags:]),
	}
	copy(v.inline[:], d[vkOffData:vkOffData+4])
	if vkFixedSize+int(v.nameLen) > len(d) {
		return nil, cellErr(off, "value", ErrRecord, "name of %d bytes does not fit in the %d-byte cell", v.nameLen, len(d))
	}
	name, err := decodeName(d[vkFixedSize:vkFixedSize+int(v.nameLen)], v.flags&vkCompName != 0)
	if err != nil {
		return nil, cellErr(off, "value", ErrRecord, "%v", err)
	}
	v.name = name
	return v, nil
}

// Value is one value of a key.
type Value struct {
	k   *Key
	off uint32
	vk  *vkRecord
}

// valueList reads the key's value list: ValueCount cell offsets.
func (k *Key) valueList() ([]uint32, error) {
	n := k.nk.valueCount
	if n == 0 {
		return nil, nil
	}
	d, err := k.h.cellData(k.nk.valueList, "value list")
	if err != nil {
		return nil, err
	}
	if uint64(n)*4 > uint64(len(d)) {
		return nil, cellErr(k.nk.valueList, "value list", ErrRecord, "%d values do not fit in the %d-byte cell", n, len(d))
	}
	offs := make([]uint32, n)
	for i := range offs {
		offs[i] = leUint32(d[4*i:])
	}
	return offs, nil
}

func (k *Key) readValue(off uint32) (*Value, error) {
	d, err := k.h.cellData(off, "value")
	if err != nil {
		return nil, err
	}
	vk, err := parseVK(off, d)
	if err != nil {
		return nil, err
	}
	return &Value{k: k, off: off, vk: vk}, nil
}

// Values returns the key's values in stored (value-list) order, which is not
// sorted. Two values with the same name (case-insensitively) are an
// ErrDuplicate error. On error the values read before the problem are
// returned with it.
func (k *Key) Values() ([]*Value, error) {
	offs, err := k.valueList()
	if err != nil {
		return nil, k.keyErr(err)
	}
	out := make([]*Value, 0, len(offs))
	seen := make(map[string]uint32, len(offs))
	for _, off := range offs {
		v, err := k.readValue(off)
		if err != nil {
			return out, k.keyErr(err)
		}
		name := upcaseKey(v.vk.name)
		if prev, dup := seen[name]; dup {
			return out, k.keyErr(cellErr(off, "value", ErrDuplicate, "value %q at 0x%x has the name of the one at 0x%x", v.Name(), off, prev))
		}
		seen[name] = off
		out = append(out, v)
	}
	return out, nil
}

// Value returns the value called name (case-insensitive, Windows upcase);
// "" is the default value. A missing value gives an error wrapping
// ErrNotFound.
func (k *Key) Value(name string) (*Value, error) {
	units := stringUnits(name)
	offs, err := k.valueList()
	if err != nil {
		return nil, k.keyErr(err)
	}
	for _, off := range offs {
		v, err := k.readValue(off)
		if err != nil {
			return nil, k.keyErr(err)
		}
		if compareNames(v.vk.name, units) == 0 {
			return v, nil
		}
	}
	return nil, &KeyError{Path: k.Path(), Value: name, Err: ErrNotFound}
}

// Name returns the value's name ("" for the default value).
func (v *Value) Name() string { return unitsString(v.vk.name) }

// Type returns the value's type. Unknown types are returned as they are.
func (v *Value) Type() ValueType { return ValueType(v.vk.typ) }

// Offset returns the cell offset of the value node.
func (v *Value) Offset() uint32 { return v.off }

// Size returns the data length the value node declares.
func (v *Value) Size() uint32 { return v.vk.length() }

func (v *Value) err(err error) error {
	return &KeyError{Path: v.k.Path(), Value: v.displayName(), Err: err}
}

func (v *Value) displayName() string {
	if len(v.vk.name) == 0 {
		return "(default)"
	}
	return v.Name()
}

// Data returns the value's raw data: inline (up to 4 bytes in the value
// node), in one cell, or in big-data ("db") segments in hives of version
// 1.4 and later when longer than 16344 bytes.
func (v *Value) Data() ([]byte, error) {
	d, err := v.k.h.valueData(v.off, v.vk)
	if err != nil {
		return nil, v.err(err)
	}
	return d, nil
}

// valueData reads the data of the value node vk at off.
func (h *Hive) valueData(off uint32, vk *vkRecord) ([]byte, error) {
	n := vk.length()
	if vk.isInline() {
		if n > 4 {
			return nil, cellErr(off, "value", ErrRecord, "inline data of %d bytes (at most 4 fit)", n)
		}
		return append([]byte(nil), vk.inline[:n]...), nil
	}
	if n == 0 {
		return []byte{}, nil
	}
	if h.base.Minor >= 4 && n > bigDataSegment {
		d, err := h.cellData(vk.dataOff, "value data")
		if err != nil {
			return nil, err
		}
		if len(d) >= 2 && d[0] == 'd' && d[1] == 'b' {
			return h.bigData(vk.dataOff, d, n)
		}
		// Not "db": some tools (hivex) store long data in one cell even in
		// 1.4+ hives. Windows would misread it; the checker reports it.
		if uint32(len(d)) < n {
			return nil, cellErr(vk.dataOff, "value data", ErrRecord, "%d bytes declared, no \"db\" record and the cell holds %d", n, len(d))
		}
		return d[:n], nil
	}
	d, err := h.cellData(vk.dataOff, "value data")
	if err != nil {
		return nil, err
	}
	if uint32(len(d)) < n {
		return nil, cellErr(vk.dataOff, "value data", ErrRecord, "%d bytes declared, the cell holds %d", n, len(d))
	}
	return d[:n], nil
}

// bigSegments decodes a "db" record (cell data d at off) holding n bytes
// and returns the segment cell offsets.
func (h *Hive) bigSegments(off uint32, d []byte, n uint32) ([]uint32, error) {
	if len(d) < dbHeaderSize {
		return nil, cellErr(off, "big data", ErrRecord, "cell holds %d bytes, a db record needs %d", len(d), dbHeaderSize)
	}
	count := uint32(leUint16(d[2:]))
	want := (n + bigDataSegment - 1) / bigDataSegment
	if count != want {
		return nil, cellErr(off, "big data", ErrRecord, "%d segments for %d bytes, want %d", count, n, want)
	}
	listOff := leUint32(d[4:])
	list, err := h.cellData(listOff, "big data segment list")
	if err != nil {
		return nil, err
	}
	if uint64(count)*4 > uint64(len(list)) {
		return nil, cellErr(listOff, "big data segment list", ErrRecord, "%d segments do not fit in the %d-byte cell", count, len(list))
	}
	segs := make([]uint32, count)
	for i := range segs {
		segs[i] = leUint32(list[4*i:])
	}
	return segs, nil
}

// bigData reads n bytes of big data.
func (h *Hive) bigData(off uint32, d []byte, n uint32) ([]byte, error) {
	segs, err := h.bigSegments(off, d, n)
	if err != nil {
		return nil, err
	}
	// Allocate as the segments prove to hold data, not as n claims.
	var out []byte
	for i, so := range segs {
		s, err := h.cellData(so, "big data segment")
		if err != nil {
			return nil, err
		}
		want := min(n-uint32(len(out)), bigDataSegment)
		if uint32(len(s)) < want {
			return nil, cellErr(so, "big data segment", ErrRecord, "segment %d holds %d bytes, want %d", i, len(s), want)
		}
		out = append(out, s[:want]...)
	}
	return out, nil
}

// utf16Text decodes UTF-16LE bytes (an odd last byte is ignored).
func utf16Text(b []byte) []uint16 {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = leUint16(b[2*i:])
	}
	return u
}

// Text returns a REG_SZ, REG_EXPAND_SZ or REG_LINK value as a string:
// UTF-16LE decoded, cut at the first NUL (the terminator; what regedit shows).
func (v *Value) Text() (string, error) {
	switch v.Type() {
	case RegSZ, RegExpandSZ, RegLink:
	default:
		return "", v.err(fmt.Errorf("%w: %s is not a string type", ErrType, v.Type()))
	}
	d, err := v.Data()
	if err != nil {
		return "", err
	}
	s := unitsString(utf16Text(d))
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return s, nil
}

// MultiText returns a REG_MULTI_SZ value's strings. The list ends at the
// first empty string (the double NUL) or at the end of the data.
func (v *Value) MultiText() ([]string, error) {
	if v.Type() != RegMultiSZ {
		return nil, v.err(fmt.Errorf("%w: %s is not REG_MULTI_SZ", ErrType, v.Type()))
	}
	d, err := v.Data()
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, s := range strings.Split(unitsString(utf16Text(d)), "\x00") {
		if s == "" {
			break
		}
		out = append(out, s)
	}
	return out, nil
}

// Uint32 returns a REG_DWORD (little-endian) or REG_DWORD_BIG_ENDIAN value,
// or a REG_BINARY / REG_NONE value of exactly 4 bytes. Windows requires a
// DWORD's data to be 4 bytes; other lengths are an ErrType error.
func (v *Value) Uint32() (uint32, error) {
	switch v.Type() {
	case RegDWORD, RegDWORDBigEndian, RegBinary, RegNone:
	default:
		return 0, v.err(fmt.Errorf("%w: %s is not a DWORD", ErrType, v.Type()))
	}
	d, err := v.Data()
	if err != nil {
		return 0, err
	}
	if len(d) != 4 {
		return 0, v.err(fmt.Errorf("%w: %s of %d bytes, want 4", ErrType, v.Type(), len(d)))
	}
	if v.Type() == RegDWORDBigEndian {
		return binary.BigEndian.Uint32(d), nil
	}
	return binary.LittleEndian.Uint32(d), nil
}

// Uint64 returns a REG_QWORD value (or REG_BINARY / REG_NONE of exactly 8
// bytes), or a DWORD value widened.
func (v *Value) Uint64() (uint64, error) {
	switch v.Type() {
	case RegDWORD, RegDWORDBigEndian:
		x, err := v.Uint32()
		return uint64(x), err
	case RegQWORD, RegBinary, RegNone:
	default:
		return 0, v.err(fmt.Errorf("%w: %s is not a QWORD", ErrType, v.Type()))
	}
	d, err := v.Data()
	if err != nil {
		return 0, err
	}
	if len(d) != 8 {
		return 0, v.err(fmt.Errorf("%w: %s of %d bytes, want 8", ErrType, v.Type(), len(d)))
	}
	return binary.LittleEndian.Uint64(d), nil
}
