package hive

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// fuzzSeedHives are small crafted and Windows-made hives used as seeds.
var fuzzSeedHives = []string{
	"EmptyHive", "UnicodeHive", "StringValuesHive", "WrongOrderHive", "TruncatedPairHive2",
	"CompHive", "OffHive", "MultiSzHive", "TwoOwnersHive", "HealedHive", "BadListHive",
	"NewDirtyHive1/NewDirtyHive", "TruncatedNameHive", "DeletedDataHiveTruncated",
}

// seedBytes returns a fixture cut to its base block and hive bins (the
// zero tail adds nothing to fuzzing).
func seedBytes(t testing.TB, rel string) []byte {
	b, err := os.ReadFile(yarp(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > BaseBlockSize {
		if bb, err := ParseBaseBlock(b[:BaseBlockSize]); err == nil {
			if n := BaseBlockSize + int(bb.HiveBinsSize); n < len(b) && n > BaseBlockSize {
				b = b[:n]
			}
		}
	}
	return b
}

// FuzzOpen opens arbitrary bytes as a hive, walks everything the API can
// reach and runs the checker: errors are fine, panics, hangs and huge
// allocations are not.
func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeedHives {
		f.Add(seedBytes(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		walkAll(h, 2000)
		r := h.Check()
		if r.OK() && len(r.Problems()) != 0 {
			t.Fatal("OK with problems")
		}
	})
}

// FuzzOpenKey looks up arbitrary paths in a hive with many keys (an ri of li
// leaves), a Unicode one and one with lone surrogates. A key found must have
// the path asked for, component by component, under Windows upcase.
func FuzzOpenKey(f *testing.F) {
	hives := map[byte]*Hive{}
	for i, name := range []string{"ManySubkeysHive", "UnicodeHive", "TruncatedPairHive2", "BigDataHive"} {
		b := seedBytes(f, name)
		h, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			f.Fatal(err)
		}
		hives[byte(i)] = h
	}
	for _, s := range []string{`key_with_many_subkeys\2119\find_me`, `\KEY_WITH_MANY_SUBKEYS\4999`, `key_with_many_subkeys\\1`, `Привет\Ключ`, "key\uFFFD", `ß`, `a\..\b`, ""} {
		for i := range hives {
			f.Add(i, s)
		}
	}
	f.Fuzz(func(t *testing.T, which byte, path string) {
		h := hives[which%byte(len(hives))]
		k, err := h.OpenKey(path)
		if err != nil {
			return
		}
		var want []string
		for _, c := range strings.Split(path, `\`) {
			if c != "" {
				want = append(want, c)
			}
		}
		var got []string
		if k.Path() != "" {
			got = strings.Split(k.Path(), `\`)
		}
		if len(got) != len(want) {
			t.Fatalf("OpenKey(%q) found %q", path, k.Path())
		}
		for i := range got {
			g, w := stringUnits(got[i]), stringUnits(want[i])
			if compareNames(g, w) != 0 && !strings.ContainsRune(want[i], 0xFFFD) {
				t.Fatalf("OpenKey(%q) found %q", path, k.Path())
			}
		}
	})
}

// FuzzCell decodes arbitrary bytes as each kind of cell.
func FuzzCell(f *testing.F) {
	// Seeds: real cells of every kind from a fixture.
	b := seedBytes(f, "BigDataHive")
	h, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		f.Fatal(err)
	}
	k, err := h.OpenKey("key_with_bigdata")
	if err != nil {
		f.Fatal(err)
	}
	root, _ := h.Root()
	cells := []uint32{k.off, root.nk.subkeyList, k.nk.valueList, k.nk.security}
	vs, _ := k.Values()
	for _, v := range vs {
		cells = append(cells, v.off, v.vk.dataOff)
	}
	for _, off := range cells {
		d, err := h.cellData(off, "seed")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(d)
	}
	f.Add([]byte("ri\x02\x00\x20\x00\x00\x00\x20\x00\x00\x00"))
	f.Add([]byte("li\xff\xff"))
	f.Fuzz(func(t *testing.T, d []byte) {
		if nk, err := parseNK(0x20, d); err == nil {
			if nkFixedSize+int(nk.nameLen) > len(d) {
				t.Fatal("name beyond cell accepted")
			}
			_ = unitsString(nk.name)
		}
		if vk, err := parseVK(0x20, d); err == nil {
			if vkFixedSize+int(vk.nameLen) > len(d) {
				t.Fatal("value name beyond cell accepted")
			}
		}
		if l, err := parseList(0x20, d); err == nil {
			if len(l.entries) > len(d)/4 {
				t.Fatal("more entries than the cell holds")
			}
		}
		if s, err := parseSK(0x20, d); err == nil {
			checkDescriptor(s.desc)
		}
		nameHash(utf16Text(d))
		hintMatches(uint32(len(d)), utf16Text(d))
	})
}
