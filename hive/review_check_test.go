package hive

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"strings"
	"testing"
)

// reviewDeepHive builds a hive whose keys form a chain depth keys deep,
// each named by 255 'A's, the last listing one leaf key dups times in an li
// list. Security cells are left out (the checker reports that, capped).
func reviewDeepHive(depth, dups int) []byte {
	le := binary.LittleEndian
	var cells []byte
	alloc := func(n int) (uint32, []byte) {
		size := (4 + n + 7) &^ 7
		off := uint32(binHeaderSize + len(cells))
		cells = append(cells, make([]byte, size)...)
		c := cells[len(cells)-size:]
		le.PutUint32(c, uint32(-int32(size)))
		return off, c[4:]
	}
	nk := func(parent uint32, name string, subkeys uint32, list uint32) uint32 {
		off, d := alloc(nkFixedSize + len(name))
		copy(d, "nk")
		le.PutUint16(d[nkOffFlags:], KeyCompName)
		le.PutUint32(d[nkOffParent:], parent)
		le.PutUint32(d[nkOffSubkeys:], subkeys)
		le.PutUint32(d[nkOffSubkeyList:], list)
		le.PutUint32(d[nkOffVolList:], nilCell)
		le.PutUint32(d[nkOffValueList:], nilCell)
		le.PutUint32(d[nkOffSecurity:], nilCell)
		le.PutUint32(d[nkOffClass:], nilCell)
		le.PutUint16(d[nkOffNameLen:], uint16(len(name)))
		copy(d[nkFixedSize:], name)
		return off
	}
	li := func(entries []uint32) uint32 {
		off, d := alloc(4 + 4*len(entries))
		copy(d, "li")
		le.PutUint16(d[2:], uint16(len(entries)))
		for i, e := range entries {
			le.PutUint32(d[4+4*i:], e)
		}
		return off
	}
	name := strings.Repeat("A", 255)
	// Keys are written before their lists; patch the list offsets after.
	keys := make([]uint32, depth)
	parent := uint32(nilCell)
	for i := range keys {
		keys[i] = nk(parent, name, 1, nilCell)
		parent = keys[i]
	}
	leaf := nk(keys[depth-1], "leaf", 0, nilCell)
	for i := range keys {
		var list uint32
		if i+1 < depth {
			list = li([]uint32{keys[i+1]})
		} else {
			es := make([]uint32, dups)
			for j := range es {
				es[j] = leaf
			}
			list = li(es)
		}
		d := cells[keys[i]-binHeaderSize+4:]
		le.PutUint32(d[nkOffSubkeyList:], list)
		if i+1 == depth {
			le.PutUint32(d[nkOffSubkeys:], uint32(dups))
		}
	}
	binSize := (binHeaderSize + len(cells) + 8 + binAlign - 1) &^ (binAlign - 1)
	free := binSize - binHeaderSize - len(cells)
	bin := make([]byte, binSize)
	copy(bin, "hbin")
	le.PutUint32(bin[8:], uint32(binSize))
	copy(bin[binHeaderSize:], cells)
	le.PutUint32(bin[binHeaderSize+len(cells):], uint32(free))
	base := make([]byte, BaseBlockSize)
	copy(base, "regf")
	le.PutUint32(base[bbOffSequence1:], 1)
	le.PutUint32(base[bbOffSequence2:], 1)
	le.PutUint32(base[bbOffMajor:], 1)
	le.PutUint32(base[bbOffMinor:], 5)
	le.PutUint32(base[bbOffFormat:], 1)
	le.PutUint32(base[bbOffRootCell:], keys[0])
	le.PutUint32(base[bbOffHiveBins:], uint32(binSize))
	le.PutUint32(base[bbOffClustering:], 1)
	putBaseBlockChecksum(base)
	return append(base, bin...)
}

// TestReviewCheckDeepDuplicates: a small hive (a chain of 400 keys with
// 255-character names, the last listing one key 10,000 times) must not
// make Check copy the 100 KB path once per list entry (1 GB).
func TestReviewCheckDeepDuplicates(t *testing.T) {
	b := reviewDeepHive(400, 10000)
	h, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := h.Check()
	runtime.ReadMemStats(&after)
	if !r.Has("subkey-duplicate") && !r.Has("ref-twice") && r.Dropped == 0 {
		t.Errorf("duplicate subkey entries not reported")
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 256<<20 {
		t.Errorf("Check of a %d-byte hive allocated %d MiB", len(b), got>>20)
	}
}
