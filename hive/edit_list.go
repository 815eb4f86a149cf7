package hive

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Most entries a leaf holds before Windows splits it (formats.md "Subkey
// lists"): what fits a 4 KiB page with the header, 507 lf/lh entries of 8
// bytes or 1014 li entries of 4.
const (
	maxLeafWide   = 507
	maxLeafNarrow = 1014
)

func leafLimit(sig string) int {
	if sig == "li" {
		return maxLeafNarrow
	}
	return maxLeafWide
}

// lfHint is the name hint of an lf entry: the first four code units as
// bytes, zero-padded; Windows fills it from the fourth down and stops at
// the first unit above 0xFF, leaving the rest zero (cf. hintMatches).
func lfHint(name []uint16) uint32 {
	var b [4]byte
	for j := min(len(name), 4); j > 0; j-- {
		if name[j-1] > 0xFF {
			break
		}
		b[j-1] = byte(name[j-1])
	}
	return binary.LittleEndian.Uint32(b[:])
}

// entryHint is the hint or hash stored beside a key in a leaf of type sig.
func entryHint(sig string, name []uint16) uint32 {
	switch sig {
	case "lh":
		return nameHash(name)
	case "lf":
		return lfHint(name)
	}
	return 0
}

// writeList stores a list of type sig at off (reused if it is big enough,
// else moved; nilCell allocates) and returns where it is.
func (e *Editor) writeList(off uint32, sig string, entries, hints []uint32) (uint32, error) {
	width := 4
	if sig == "lf" || sig == "lh" {
		width = 8
	}
	if len(entries) > 0xFFFF {
		return 0, fmt.Errorf("subkey list of %d entries", len(entries))
	}
	buf := make([]byte, listHeaderSize+width*len(entries))
	copy(buf, sig)
	le := binary.LittleEndian
	le.PutUint16(buf[2:], uint16(len(entries)))
	for i, x := range entries {
		p := listHeaderSize + i*width
		le.PutUint32(buf[p:], x)
		if width == 8 {
			le.PutUint32(buf[p+4:], hints[i])
		}
	}
	no, err := e.fitCell(off, len(buf), "subkey list")
	if err != nil {
		return 0, err
	}
	return no, e.writeCell(no, buf)
}

// leafPos returns where name goes in leaf l (binary search on the names of
// the key nodes it lists).
func (e *Editor) leafPos(k *Key, l *subkeyList, name []uint16) (int, error) {
	lo, hi := 0, len(l.entries)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		n, err := k.nameAt(l.entries[m])
		if err != nil {
			return 0, err
		}
		switch compareNames(n, name) {
		case 0:
			return 0, cellErr(l.entries[m], "key node", ErrDuplicate, "a subkey %q exists", unitsString(n))
		case -1:
			lo = m + 1
		default:
			hi = m
		}
	}
	return lo, nil
}

// listInsert adds key node child (named name) to k's subkey lists in sorted
// position and returns the offset of k's (possibly new) top list.
func (e *Editor) listInsert(k *Key, child uint32, name []uint16) (uint32, error) {
	if k.nk.subkeyCount == 0 {
		// New lists are lh in 1.5+ hives (Windows XP on), lf before.
		sig := "lf"
		if e.h.base.Minor >= 5 {
			sig = "lh"
		}
		return e.writeList(nilCell, sig, []uint32{child}, []uint32{entryHint(sig, name)})
	}
	top, err := e.h.readList(k.nk.subkeyList)
	if err != nil {
		return 0, err
	}
	if top.sig != "ri" {
		leaves, err := e.insertInLeaf(k, top, child, name)
		if err != nil {
			return 0, err
		}
		if len(leaves) == 1 {
			return leaves[0], nil
		}
		return e.writeList(nilCell, "ri", leaves, nil)
	}
	// The leaf that takes it: the first whose last name sorts after name,
	// else the last leaf.
	idx := len(top.entries) - 1
	lo, err := k.riLeafFor(top, name)
	if err != nil {
		return 0, err
	}
	if lo < len(top.entries) {
		idx = lo
	}
	leaf, err := k.readLeaf(top, idx)
	if err != nil {
		return 0, err
	}
	leaves, err := e.insertInLeaf(k, leaf, child, name)
	if err != nil {
		return 0, err
	}
	entries := slices.Replace(slices.Clone(top.entries), idx, idx+1, leaves...)
	return e.writeList(top.off, "ri", entries, nil)
}

// insertInLeaf inserts child into leaf l and returns the leaf offsets that
// replace l: one, or two when l was full and had to be split in halves.
func (e *Editor) insertInLeaf(k *Key, l *subkeyList, child uint32, name []uint16) ([]uint32, error) {
	pos, err := e.leafPos(k, l, name)
	if err != nil {
		return nil, err
	}
	entries := slices.Insert(slices.Clone(l.entries), pos, child)
	var hints []uint32
	if l.hints != nil {
		hints = slices.Insert(slices.Clone(l.hints), pos, entryHint(l.sig, name))
	}
	if len(entries) <= leafLimit(l.sig) {
		off, err := e.writeList(l.off, l.sig, entries, hints)
		return []uint32{off}, err
	}
	half := len(entries) / 2
	var h1, h2 []uint32
	if hints != nil {
		h1, h2 = hints[:half], hints[half:]
	}
	a, err := e.writeList(l.off, l.sig, entries[:half], h1)
	if err != nil {
		return nil, err
	}
	b, err := e.writeList(nilCell, l.sig, entries[half:], h2)
	if err != nil {
		return nil, err
	}
	return []uint32{a, b}, nil
}

// listRemove removes key node child from k's subkey lists and returns the
// offset of k's top list afterwards (nilCell when k has no subkey left).
// Emptied leaves are freed; an ri left with one leaf is replaced by it.
func (e *Editor) listRemove(k *Key, child uint32) (uint32, error) {
	if k.nk.subkeyCount == 0 {
		return 0, cellErr(child, "key node", ErrParent, "key 0x%x has no subkeys", k.off)
	}
	top, err := e.h.readList(k.nk.subkeyList)
	if err != nil {
		return 0, err
	}
	if top.sig != "ri" {
		return e.removeFromLeaf(top, child)
	}
	for i := range top.entries {
		leaf, err := k.readLeaf(top, i)
		if err != nil {
			return 0, err
		}
		if !slices.Contains(leaf.entries, child) {
			continue
		}
		off, err := e.removeFromLeaf(leaf, child)
		if err != nil {
			return 0, err
		}
		entries := slices.Clone(top.entries)
		if off == nilCell {
			entries = slices.Delete(entries, i, i+1)
		} else {
			entries[i] = off
		}
		switch len(entries) {
		case 0:
			return nilCell, e.freeCell(top.off, "subkey list")
		case 1:
			return entries[0], e.freeCell(top.off, "subkey list")
		}
		return e.writeList(top.off, "ri", entries, nil)
	}
	return 0, cellErr(top.off, "subkey list", ErrParent, "key node 0x%x is not in the lists of key 0x%x", child, k.off)
}

// removeFromLeaf removes child from leaf l; it returns l's offset, or
// nilCell when l became empty and was freed.
func (e *Editor) removeFromLeaf(l *subkeyList, child uint32) (uint32, error) {
	i := slices.Index(l.entries, child)
	if i < 0 {
		return 0, cellErr(l.off, "subkey list", ErrParent, "key node 0x%x is not in the list", child)
	}
	if len(l.entries) == 1 {
		return nilCell, e.freeCell(l.off, "subkey list")
	}
	entries := slices.Delete(slices.Clone(l.entries), i, i+1)
	var hints []uint32
	if l.hints != nil {
		hints = slices.Delete(slices.Clone(l.hints), i, i+1)
	}
	return e.writeList(l.off, l.sig, entries, hints)
}
