package ntfs

import (
	"fmt"
	"unicode/utf16"
)

// UpCaseEntries is the number of UTF-16 code units mapped by $UpCase.
const UpCaseEntries = 65536

// UpCase is a volume's $UpCase table (MFT record 10): the case mapping that
// the volume's file-name collation uses. It differs between Windows versions
// and from Go's unicode.ToUpper, so names are always compared with the
// volume's own table (formats.md, "Collation of file names").
type UpCase struct {
	table [UpCaseEntries]uint16
}

// ParseUpCase decodes the contents of $UpCase's $DATA: 65,536 little-endian
// UTF-16 code units.
func ParseUpCase(b []byte) (*UpCase, error) {
	if len(b) != 2*UpCaseEntries {
		return nil, fmt.Errorf("ntfs: $UpCase: %d bytes, want %d", len(b), 2*UpCaseEntries)
	}
	u := &UpCase{}
	for i := range u.table {
		u.table[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return u, nil
}

// Upper maps one code unit through the table.
func (u *UpCase) Upper(c uint16) uint16 { return u.table[c] }

// Compare orders two names as an $I30 index does (COLLATION_FILE_NAME):
// code units compared after mapping through $UpCase; when equal over the
// shorter length, the shorter name sorts first; when still equal, the raw
// code units decide. It returns -1, 0 or +1.
func (u *UpCase) Compare(a, b []uint16) int {
	if c := u.CompareFold(a, b); c != 0 {
		return c
	}
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// CompareFold is Compare without the final case-sensitive tie-break: 0 means
// the names are equal ignoring case, which is how Windows decides whether a
// name already exists in a directory.
func (u *UpCase) CompareFold(a, b []uint16) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		x, y := u.table[a[i]], u.table[b[i]]
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

// EqualFold reports whether two names are the same file name on this volume.
func (u *UpCase) EqualFold(a, b []uint16) bool { return u.CompareFold(a, b) == 0 }

// EqualFoldString is EqualFold for Go strings (encoded to UTF-16 first).
func (u *UpCase) EqualFoldString(a, b string) bool {
	return u.EqualFold(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}
