package hive

import (
	"slices"
)

// Subkey lists (formats.md, "Subkey lists"): a 2-byte signature, a u16
// count, then the entries. "li": cell offsets of key nodes (4 bytes each).
// "lf": offset + name hint (the first 4 characters), 8 bytes each. "lh":
// offset + name hash (nameHash), 8 bytes each. "ri": offsets of li/lf/lh
// leaves (never of another ri). Entries are sorted by upcased name across
// all leaves of an ri.
const listHeaderSize = 4

// subkeyList is one decoded subkey list cell.
type subkeyList struct {
	off     uint32
	sig     string // "li", "lf", "lh" or "ri"
	entries []uint32
	hints   []uint32 // lf hint / lh hash; nil for li and ri
}

// readList reads the subkey-list cell at off and checks that its count
// fits in the cell.
func (h *Hive) readList(off uint32) (*subkeyList, error) {
	d, err := h.cellData(off, "subkey list")
	if err != nil {
		return nil, err
	}
	return parseList(off, d)
}

// parseList decodes a subkey-list cell's data.
func parseList(off uint32, d []byte) (*subkeyList, error) {
	if len(d) < listHeaderSize {
		return nil, cellErr(off, "subkey list", ErrRecord, "cell holds only %d bytes", len(d))
	}
	l := &subkeyList{off: off, sig: string(d[:2])}
	n := int(leUint16(d[2:]))
	var width int
	switch l.sig {
	case "li", "ri":
		width = 4
	case "lf", "lh":
		width = 8
	default:
		return nil, cellErr(off, "subkey list", ErrRecord, "signature %q, want li, lf, lh or ri", d[:2])
	}
	if listHeaderSize+n*width > len(d) {
		return nil, cellErr(off, "subkey list", ErrRecord, "%d entries of %d bytes do not fit in the %d-byte cell", n, width, len(d))
	}
	l.entries = make([]uint32, n)
	if width == 8 {
		l.hints = make([]uint32, n)
	}
	for i := range n {
		p := listHeaderSize + i*width
		l.entries[i] = leUint32(d[p:])
		if width == 8 {
			l.hints[i] = leUint32(d[p+4:])
		}
	}
	return l, nil
}

// leaves returns the leaves of the key's subkey list (the list itself, or
// the leaves of its ri), checking that no leaf is used twice and that the
// entries add up to the key's subkey count.
func (k *Key) leaves() ([]*subkeyList, error) {
	if k.nk.subkeyCount == 0 {
		return nil, nil
	}
	top, err := k.h.readList(k.nk.subkeyList)
	if err != nil {
		return nil, err
	}
	var leaves []*subkeyList
	if top.sig != "ri" {
		leaves = []*subkeyList{top}
	} else {
		seen := make(map[uint32]bool, len(top.entries))
		for _, lo := range top.entries {
			if seen[lo] {
				return nil, cellErr(top.off, "subkey list", ErrLoop, "leaf 0x%x listed twice", lo)
			}
			seen[lo] = true
			leaf, err := k.h.readList(lo)
			if err != nil {
				return nil, err
			}
			if leaf.sig == "ri" {
				return nil, cellErr(lo, "subkey list", ErrRecord, "ri inside ri 0x%x", top.off)
			}
			leaves = append(leaves, leaf)
		}
	}
	total := 0
	for _, l := range leaves {
		total += len(l.entries)
	}
	if uint32(total) != k.nk.subkeyCount {
		return nil, cellErr(top.off, "subkey list", ErrRecord, "lists hold %d entries, the key declares %d subkeys", total, k.nk.subkeyCount)
	}
	return leaves, nil
}

// child reads the subkey node at off and checks that it names k as parent.
func (k *Key) child(off uint32) (*Key, error) {
	c, err := k.h.readKey(off, "")
	if err != nil {
		return nil, err
	}
	c.up = k
	if slices.Contains(c.nk.name, '\\') {
		// Windows never stores one: a path could not name this key.
		return nil, cellErr(off, "key node", ErrRecord, "subkey name %q contains a backslash", c.Name())
	}
	if c.nk.parent != k.off {
		return nil, cellErr(off, "key node", ErrParent, "subkey %q names 0x%x as parent, but is listed under 0x%x", c.Name(), c.nk.parent, k.off)
	}
	return c, nil
}

// Subkeys returns the key's subkeys in stored order (sorted by name).
// Besides damaged cells it reports, as Windows' checks would, a subkey whose
// parent field is not this key (ErrParent), two subkeys with the same name
// (ErrDuplicate), subkeys out of order (ErrOrder) and lists that do not
// hold the declared number of subkeys. On error the subkeys read before the
// problem are returned with it.
func (k *Key) Subkeys() ([]*Key, error) {
	leaves, err := k.leaves()
	if err != nil {
		return nil, k.keyErr(err)
	}
	var out []*Key
	for _, l := range leaves {
		for _, off := range l.entries {
			c, err := k.child(off)
			if err != nil {
				return out, k.keyErr(err)
			}
			if len(out) > 0 {
				prev := out[len(out)-1]
				switch compareNames(prev.nk.name, c.nk.name) {
				case 0:
					return out, k.keyErr(cellErr(off, "key node", ErrDuplicate, "subkey %q at 0x%x has the name of the one at 0x%x", c.Name(), off, prev.off))
				case 1:
					return out, k.keyErr(cellErr(off, "key node", ErrOrder, "subkey %q at 0x%x sorts before %q at 0x%x", c.Name(), off, prev.Name(), prev.off))
				}
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// Subkey returns the subkey called name (case-insensitive, Windows upcase),
// searching the lists as Windows does: lh leaves by hash, li/lf leaves and
// the leaves of an ri by binary search. A missing subkey gives an error
// wrapping ErrNotFound.
func (k *Key) Subkey(name string) (*Key, error) {
	units := stringUnits(name)
	off, err := k.lookup(units)
	if err == nil && off == nilCell && slices.Contains(units, 0xFFFD) {
		// A stored name with a lone surrogate reads as U+FFFD; let the
		// name that Name() shows find it.
		off, err = k.lookupDecoded(units)
	}
	if err != nil {
		return nil, k.keyErr(err)
	}
	if off == nilCell {
		return nil, &KeyError{Path: k.childPath(name), Err: ErrNotFound}
	}
	c, err := k.child(off)
	if err != nil {
		return nil, k.keyErr(err)
	}
	return c, nil
}

// lookup finds the key-node offset of the subkey named units, or nilCell.
func (k *Key) lookup(units []uint16) (uint32, error) {
	if k.nk.subkeyCount == 0 {
		return nilCell, nil
	}
	top, err := k.h.readList(k.nk.subkeyList)
	if err != nil {
		return 0, err
	}
	if top.sig != "ri" {
		return k.lookupLeaf(top, units)
	}
	lo, err := k.riLeafFor(top, units)
	if err != nil {
		return 0, err
	}
	if lo == len(top.entries) {
		return nilCell, nil
	}
	leaf, err := k.readLeaf(top, lo)
	if err != nil {
		return 0, err
	}
	return k.lookupLeaf(leaf, units)
}

// readLeaf reads entry i of an ri and checks it is a leaf.
func (k *Key) readLeaf(ri *subkeyList, i int) (*subkeyList, error) {
	leaf, err := k.h.readList(ri.entries[i])
	if err != nil {
		return nil, err
	}
	if leaf.sig == "ri" {
		return nil, cellErr(leaf.off, "subkey list", ErrRecord, "ri inside ri 0x%x", ri.off)
	}
	return leaf, nil
}

// nameAt reads the name of the key node at off.
func (k *Key) nameAt(off uint32) ([]uint16, error) {
	d, err := k.h.cellData(off, "key node")
	if err != nil {
		return nil, err
	}
	nk, err := parseNK(off, d)
	if err != nil {
		return nil, err
	}
	return nk.name, nil
}

// lookupLeaf searches one leaf.
func (k *Key) lookupLeaf(l *subkeyList, units []uint16) (uint32, error) {
	if l.sig == "lh" {
		hash := nameHash(units)
		for i, off := range l.entries {
			if l.hints[i] != hash {
				continue
			}
			n, err := k.nameAt(off)
			if err != nil {
				return 0, err
			}
			if compareNames(n, units) == 0 {
				return off, nil
			}
		}
		return nilCell, nil
	}
	lo, hi := 0, len(l.entries)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		n, err := k.nameAt(l.entries[m])
		if err != nil {
			return 0, err
		}
		switch compareNames(n, units) {
		case 0:
			return l.entries[m], nil
		case -1:
			lo = m + 1
		default:
			hi = m
		}
	}
	return nilCell, nil
}

// lookupDecoded scans every subkey comparing names as decoded strings (lone
// surrogates read as U+FFFD).
func (k *Key) lookupDecoded(units []uint16) (uint32, error) {
	leaves, err := k.leaves()
	if err != nil {
		return 0, err
	}
	for _, l := range leaves {
		for _, off := range l.entries {
			n, err := k.nameAt(off)
			if err != nil {
				return 0, err
			}
			if compareNames(stringUnits(unitsString(n)), units) == 0 {
				return off, nil
			}
		}
	}
	return nilCell, nil
}

// riLeafFor returns the index of the first leaf of the ri list top whose
// last name sorts at or after name (len(top.entries) when none does): the
// leaf where name is, or would be inserted. Leaves of an ri are sorted
// across the whole list (formats.md, "Subkey lists"), so a binary search
// over their last names finds it reading O(log n) leaves.
func (k *Key) riLeafFor(top *subkeyList, name []uint16) (int, error) {
	lo, hi := 0, len(top.entries)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		leaf, err := k.readLeaf(top, m)
		if err != nil {
			return 0, err
		}
		if len(leaf.entries) == 0 {
			return 0, cellErr(leaf.off, "subkey list", ErrRecord, "empty leaf in ri 0x%x", top.off)
		}
		last, err := k.nameAt(leaf.entries[len(leaf.entries)-1])
		if err != nil {
			return 0, err
		}
		if compareNames(last, name) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, nil
}
