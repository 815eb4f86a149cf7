package hive

import (
	"errors"
	"strings"
	"time"
	"unicode/utf16"

	ftime "github.com/wuoffline/wuoffline/internal/filetime"
)

// Key node ("nk") layout, offsets from the start of the cell data
// (formats.md, "Key node"): flags u16 @2, last written FILETIME @4, access
// bits @12, parent @16, subkey count @20, volatile subkey count @24, subkey
// list @28, volatile list @32, value count @36, value list @40, security
// @44, class @48, max subkey name length @52 (low 16 bits), max class length
// @56, max value name length @60, max value data @64, name length u16 @72,
// class length u16 @74, name @76.
const (
	nkFixedSize     = 76
	nkOffFlags      = 2
	nkOffLastWrite  = 4
	nkOffAccess     = 12
	nkOffParent     = 16
	nkOffSubkeys    = 20
	nkOffVolSubkeys = 24
	nkOffSubkeyList = 28
	nkOffVolList    = 32
	nkOffValues     = 36
	nkOffValueList  = 40
	nkOffSecurity   = 44
	nkOffClass      = 48
	nkOffMaxName    = 52
	nkOffMaxClass   = 56
	nkOffMaxValName = 60
	nkOffMaxValData = 64
	nkOffNameLen    = 72
	nkOffClassLen   = 74
)

// Key-node flags.
const (
	KeyVolatile   = 0x0001 // volatile key (never on disk in a real hive)
	KeyHiveExit   = 0x0002 // mount point of another hive
	KeyHiveEntry  = 0x0004 // root key
	KeyNoDelete   = 0x0008
	KeySymLink    = 0x0010
	KeyCompName   = 0x0020 // name stored as Latin-1, one byte per character
	KeyPredefined = 0x0040
)

// maxKeyDepth bounds how deep a walk may go. Windows limits key paths to
// 512 levels; anything deeper in a file is a loop or an attack.
const maxKeyDepth = 512

// nkRecord is a decoded key node.
type nkRecord struct {
	flags       uint16
	lastWritten uint64
	access      uint32
	parent      uint32
	subkeyCount uint32
	volCount    uint32
	subkeyList  uint32
	valueCount  uint32
	valueList   uint32
	security    uint32
	class       uint32
	maxName     uint32
	maxClass    uint32
	maxValName  uint32
	maxValData  uint32
	nameLen     uint16
	classLen    uint16
	name        []uint16 // code units (Latin-1 bytes widened)
}

// parseNK decodes a key node from its cell data.
func parseNK(off uint32, d []byte) (*nkRecord, error) {
	if len(d) < nkFixedSize {
		return nil, cellErr(off, "key node", ErrRecord, "cell holds %d bytes, a key node needs %d", len(d), nkFixedSize)
	}
	if d[0] != 'n' || d[1] != 'k' {
		return nil, cellErr(off, "key node", ErrRecord, "signature %q, want \"nk\"", d[0:2])
	}
	nk := &nkRecord{
		flags:       leUint16(d[nkOffFlags:]),
		lastWritten: leUint64(d[nkOffLastWrite:]),
		access:      leUint32(d[nkOffAccess:]),
		parent:      leUint32(d[nkOffParent:]),
		subkeyCount: leUint32(d[nkOffSubkeys:]),
		volCount:    leUint32(d[nkOffVolSubkeys:]),
		subkeyList:  leUint32(d[nkOffSubkeyList:]),
		valueCount:  leUint32(d[nkOffValues:]),
		valueList:   leUint32(d[nkOffValueList:]),
		security:    leUint32(d[nkOffSecurity:]),
		class:       leUint32(d[nkOffClass:]),
		maxName:     leUint32(d[nkOffMaxName:]),
		maxClass:    leUint32(d[nkOffMaxClass:]),
		maxValName:  leUint32(d[nkOffMaxValName:]),
		maxValData:  leUint32(d[nkOffMaxValData:]),
		nameLen:     leUint16(d[nkOffNameLen:]),
		classLen:    leUint16(d[nkOffClassLen:]),
	}
	if nkFixedSize+int(nk.nameLen) > len(d) {
		return nil, cellErr(off, "key node", ErrRecord, "name of %d bytes does not fit in the %d-byte cell", nk.nameLen, len(d))
	}
	name, err := decodeName(d[nkFixedSize:nkFixedSize+int(nk.nameLen)], nk.flags&KeyCompName != 0)
	if err != nil {
		return nil, cellErr(off, "key node", ErrRecord, "%v", err)
	}
	nk.name = name
	return nk, nil
}

// decodeName returns the code units of a stored name: Latin-1 bytes when
// compressed (bytes 0x80-0xFF are U+0080-U+00FF, not Windows-1252),
// otherwise UTF-16LE.
func decodeName(b []byte, compressed bool) ([]uint16, error) {
	if compressed {
		u := make([]uint16, len(b))
		for i, c := range b {
			u[i] = uint16(c)
		}
		return u, nil
	}
	if len(b)%2 != 0 {
		return nil, errOddName
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = leUint16(b[2*i:])
	}
	return u, nil
}

type nameError string

func (e nameError) Error() string { return string(e) }

const errOddName = nameError("UTF-16 name has an odd number of bytes")

// unitsString decodes code units to a Go string; lone surrogates become
// U+FFFD.
func unitsString(u []uint16) string { return string(utf16.Decode(u)) }

// stringUnits encodes a Go string as UTF-16 code units.
func stringUnits(s string) []uint16 { return utf16.Encode([]rune(s)) }

// Key is a registry key read from a hive.
type Key struct {
	h   *Hive
	off uint32
	nk  *nkRecord
	// up is the key this one was reached from (nil for the root or a key
	// read by offset); the path is built from the chain only when asked
	// for, so listing the children of a deep key does not copy its path
	// once per child. base is the path of a key without up.
	up   *Key
	base string
}

// readKey reads the key node at off; path is used in messages.
func (h *Hive) readKey(off uint32, path string) (*Key, error) {
	d, err := h.cellData(off, "key node")
	if err != nil {
		return nil, err
	}
	nk, err := parseNK(off, d)
	if err != nil {
		return nil, err
	}
	return &Key{h: h, off: off, nk: nk, base: path}, nil
}

// Name returns the key's name as stored (case preserved). A UTF-16 name
// with lone surrogates shows them as U+FFFD.
func (k *Key) Name() string { return unitsString(k.nk.name) }

// NameUnits returns the key's name as stored UTF-16 code units (Latin-1
// names widened). The caller must not modify it.
func (k *Key) NameUnits() []uint16 { return k.nk.name }

// Path returns the key's path below the root as it was reached (`\`-separated,
// "" for the root).
func (k *Key) Path() string {
	if k.up == nil {
		return k.base
	}
	var names []string
	n := 0
	c := k
	for ; c.up != nil; c = c.up {
		names = append(names, c.Name())
		n += len(names[len(names)-1]) + 1
	}
	var b strings.Builder
	b.Grow(len(c.base) + n)
	b.WriteString(c.base)
	for i := len(names) - 1; i >= 0; i-- {
		if b.Len() > 0 {
			b.WriteByte('\\')
		}
		b.WriteString(names[i])
	}
	return b.String()
}

// Offset returns the cell offset of the key node.
func (k *Key) Offset() uint32 { return k.off }

// Flags returns the key-node flags (KeyHiveEntry, KeyCompName...).
func (k *Key) Flags() uint16 { return k.nk.flags }

// LastWritten returns the key's last-write time.
func (k *Key) LastWritten() time.Time { return ftime.ToTime(k.nk.lastWritten) }

// SubkeyCount returns the number of subkeys the key node declares.
func (k *Key) SubkeyCount() int { return int(k.nk.subkeyCount) }

// ValueCount returns the number of values the key node declares.
func (k *Key) ValueCount() int { return int(k.nk.valueCount) }

// Hive returns the hive the key belongs to.
func (k *Key) Hive() *Hive { return k.h }

// childPath joins the key's path and a child name.
func (k *Key) childPath(name string) string {
	p := k.Path()
	if p == "" {
		return name
	}
	return p + `\` + name
}

// keyErr wraps err with the key's path.
func (k *Key) keyErr(err error) error { return &KeyError{Path: k.Path(), Err: err} }

// Parent returns the key's parent, or nil for the root key (the key at the
// base block's root cell or flagged as hive entry).
func (k *Key) Parent() (*Key, error) {
	if k.off == k.h.base.RootCell || k.nk.flags&KeyHiveEntry != 0 {
		return nil, nil
	}
	// Re-read: the editor needs the parent's current node, not the one
	// read on the way down.
	p := k.Path()
	if i := strings.LastIndexByte(p, '\\'); i >= 0 {
		p = p[:i]
	} else {
		p = ""
	}
	pk, err := k.h.readKey(k.nk.parent, p)
	if err != nil {
		return nil, k.keyErr(err)
	}
	return pk, nil
}

// ClassName returns the key's class name ("" when it has none).
func (k *Key) ClassName() (string, error) {
	if k.nk.classLen == 0 || k.nk.class == nilCell {
		return "", nil
	}
	d, err := k.h.cellData(k.nk.class, "class name")
	if err != nil {
		return "", k.keyErr(err)
	}
	if int(k.nk.classLen) > len(d) {
		return "", k.keyErr(cellErr(k.nk.class, "class name", ErrRecord, "class of %d bytes does not fit in the %d-byte cell", k.nk.classLen, len(d)))
	}
	u, err := decodeName(d[:k.nk.classLen], false)
	if err != nil {
		return "", k.keyErr(cellErr(k.nk.class, "class name", ErrRecord, "%v", err))
	}
	return unitsString(u), nil
}

// OpenKey returns the key at path below the root: names separated by `\`,
// matched case-insensitively with Windows' upcase rules; "" (or `\`) is the
// root. A missing key gives an error wrapping ErrNotFound.
func (h *Hive) OpenKey(path string) (*Key, error) {
	k, err := h.Root()
	if err != nil {
		return nil, err
	}
	for _, name := range strings.Split(path, `\`) {
		if name == "" {
			continue
		}
		if k, err = k.Subkey(name); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// SkipKey, returned by a Walk callback, skips the subkeys of that key.
var SkipKey = errors.New("skip this key's subkeys")

// Walk calls fn for the root and every key below it, depth first in stored
// order (see Key.Walk).
func (h *Hive) Walk(fn func(k *Key) error) error {
	root, err := h.Root()
	if err != nil {
		return err
	}
	return root.Walk(fn)
}

// Walk calls fn for k and every key below it, depth first in stored order.
// Each key node is visited at most once (a damaged hive can list a key
// under two parents) and never deeper than Windows' 512 levels below k, so
// a hostile hive cannot make it loop or blow up; memory is one bit per 8
// bytes of hive plus the pending siblings. fn may return SkipKey to skip a
// key's subkeys; any other error stops the walk and is returned. Errors
// reading subkeys stop the walk too.
func (k *Key) Walk(fn func(k *Key) error) error {
	h, root := k.h, k
	size, err := h.HiveBinsSize()
	if err != nil {
		return err
	}
	seen := newBitmap(size)
	type item struct {
		k     *Key
		depth int
	}
	stack := []item{{root, 0}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen.get(it.k.off) {
			return it.k.keyErr(cellErr(it.k.off, "key node", ErrLoop, "key reached twice"))
		}
		seen.set(it.k.off)
		switch err := fn(it.k); {
		case err == SkipKey:
			continue
		case err != nil:
			return err
		}
		if it.k.nk.subkeyCount == 0 {
			continue
		}
		if it.depth+1 >= maxKeyDepth {
			return it.k.keyErr(cellErr(it.k.off, "key node", ErrLoop, "subkeys deeper than %d levels", maxKeyDepth))
		}
		subs, err := it.k.Subkeys()
		if err != nil {
			return err
		}
		for i := len(subs) - 1; i >= 0; i-- {
			stack = append(stack, item{subs[i], it.depth + 1})
		}
	}
	return nil
}
