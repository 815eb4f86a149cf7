package hive

//go:generate go run gen_upcase.go -image ../../shared/fixtures/ntfs/charlie.dd.bz2 -o upcase_table.go

// upcaseRange is one run of the generated upcase table (upcase_table.go).
type upcaseRange struct {
	first, last uint16
	step        uint16 // 1 or 2
	delta       uint16 // added modulo 2^16
}

// upcase maps one UTF-16 code unit as Windows' RtlUpcaseUnicodeChar does,
// which is what the configuration manager uses to compare and hash key
// names. It works one code unit at a time (ß stays ß, surrogates are left
// alone) and differs from unicode.ToUpper: ı (U+0131), ſ (U+017F) and ς
// (U+03C2) map to themselves.
func upcase(c uint16) uint16 {
	if c < 0x80 {
		if 'a' <= c && c <= 'z' {
			return c - ('a' - 'A')
		}
		return c
	}
	// Binary search for the last run starting at or before c.
	lo, hi := 0, len(upcaseRanges)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if upcaseRanges[m].first <= c {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return c
	}
	r := &upcaseRanges[lo-1]
	if c > r.last || (c-r.first)%r.step != 0 {
		return c
	}
	return c + r.delta
}

// compareNames orders two key or value names as the registry does: code
// unit by code unit after upcase, the shorter name first when one is a
// prefix of the other. It returns -1, 0 or +1.
func compareNames(a, b []uint16) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		x, y := upcase(a[i]), upcase(b[i])
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

// nameHash is the hash stored in lh subkey lists: H = 37*H + upcase(unit)
// over the name's code units, starting from 0, modulo 2^32.
func nameHash(name []uint16) uint32 {
	var h uint32
	for _, c := range name {
		h = 37*h + uint32(upcase(c))
	}
	return h
}
