package secdesc

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// maxSubAuthorities is SID_MAX_SUB_AUTHORITIES ([MS-DTYP] 2.4.2): a SID
// has at most 15 sub-authorities, so at most 8+15*4 = 68 bytes.
const maxSubAuthorities = 15

// SID is a security identifier ([MS-DTYP] 2.4.2.2): revision (1), the
// count of sub-authorities, a 48-bit big-endian identifier authority, then
// the sub-authorities as little-endian 32-bit numbers.
type SID struct {
	Revision  byte
	Authority uint64 // 48 bits
	Sub       []uint32
}

// Well-known SIDs the SDDL aliases of this package stand for ([MS-DTYP]
// 2.4.2.4 and 2.5.1.1): alias, authority, sub-authorities.
var wellKnown = []struct {
	alias string
	auth  uint64
	sub   []uint32
}{
	{"WD", 1, []uint32{0}},
	{"CO", 3, []uint32{0}},
	{"CG", 3, []uint32{1}},
	{"OW", 3, []uint32{4}},
	{"NU", 5, []uint32{2}},
	{"IU", 5, []uint32{4}},
	{"SU", 5, []uint32{6}},
	{"AN", 5, []uint32{7}},
	{"ED", 5, []uint32{9}},
	{"PS", 5, []uint32{10}},
	{"AU", 5, []uint32{11}},
	{"RC", 5, []uint32{12}},
	{"SY", 5, []uint32{18}},
	{"LS", 5, []uint32{19}},
	{"NS", 5, []uint32{20}},
	{"BA", 5, []uint32{32, 544}},
	{"BU", 5, []uint32{32, 545}},
	{"BG", 5, []uint32{32, 546}},
	{"PU", 5, []uint32{32, 547}},
	{"AO", 5, []uint32{32, 548}},
	{"SO", 5, []uint32{32, 549}},
	{"PO", 5, []uint32{32, 550}},
	{"BO", 5, []uint32{32, 551}},
	{"RE", 5, []uint32{32, 552}},
	{"RU", 5, []uint32{32, 554}},
	{"RD", 5, []uint32{32, 555}},
	{"NO", 5, []uint32{32, 556}},
	{"LW", 16, []uint32{4096}},
	{"ME", 16, []uint32{8192}},
	{"HI", 16, []uint32{12288}},
	{"SI", 16, []uint32{16384}},
}

// WellKnown returns the SID an SDDL alias ("SY", "BA", "AU", ...) stands
// for; false for an alias this package does not know.
func WellKnown(alias string) (SID, bool) {
	for _, w := range wellKnown {
		if w.alias == alias {
			return SID{Revision: 1, Authority: w.auth, Sub: append([]uint32(nil), w.sub...)}, true
		}
	}
	return SID{}, false
}

// parseSID reads the SID at off in b (a whole descriptor).
func parseSID(b []byte, off int) (SID, int, error) {
	if off < 0 || off+8 > len(b) {
		return SID{}, 0, fmt.Errorf("SID at 0x%x: header past the end (%d bytes)", off, len(b))
	}
	rev, n := b[off], int(b[off+1])
	if rev != 1 {
		return SID{}, 0, fmt.Errorf("SID at 0x%x: revision %d, want 1", off, rev)
	}
	if n > maxSubAuthorities {
		return SID{}, 0, fmt.Errorf("SID at 0x%x: %d sub-authorities, at most %d", off, n, maxSubAuthorities)
	}
	size := 8 + 4*n
	if off+size > len(b) {
		return SID{}, 0, fmt.Errorf("SID at 0x%x: %d bytes past the end (%d bytes)", off, size, len(b))
	}
	var auth uint64
	for _, c := range b[off+2 : off+8] {
		auth = auth<<8 | uint64(c)
	}
	s := SID{Revision: rev, Authority: auth, Sub: make([]uint32, n)}
	for i := range s.Sub {
		s.Sub[i] = binary.LittleEndian.Uint32(b[off+8+4*i:])
	}
	return s, size, nil
}

// size is the SID's length in bytes.
func (s SID) size() int { return 8 + 4*len(s.Sub) }

// appendTo appends the SID's binary form to b.
func (s SID) appendTo(b []byte) []byte {
	b = append(b, s.Revision, byte(len(s.Sub)))
	for i := 5; i >= 0; i-- {
		b = append(b, byte(s.Authority>>(8*i)))
	}
	for _, x := range s.Sub {
		b = binary.LittleEndian.AppendUint32(b, x)
	}
	return b
}

// Equal reports whether s and o are the same SID.
func (s SID) Equal(o SID) bool {
	if s.Revision != o.Revision || s.Authority != o.Authority || len(s.Sub) != len(o.Sub) {
		return false
	}
	for i := range s.Sub {
		if s.Sub[i] != o.Sub[i] {
			return false
		}
	}
	return true
}

// String renders the SID as "S-1-5-32-544"; an authority of 2^32 or more
// in hex, as Windows' ConvertSidToStringSid does.
func (s SID) String() string {
	var sb strings.Builder
	sb.WriteString("S-")
	sb.WriteString(strconv.Itoa(int(s.Revision)))
	sb.WriteByte('-')
	if s.Authority >= 1<<32 {
		fmt.Fprintf(&sb, "0x%012X", s.Authority)
	} else {
		sb.WriteString(strconv.FormatUint(s.Authority, 10))
	}
	for _, x := range s.Sub {
		sb.WriteByte('-')
		sb.WriteString(strconv.FormatUint(uint64(x), 10))
	}
	return sb.String()
}

// SDDL renders the SID as SDDL does: its alias when it has one ("SY"),
// else its string form.
func (s SID) SDDL() string {
	for _, w := range wellKnown {
		if s.Revision == 1 && s.Authority == w.auth && len(s.Sub) == len(w.sub) {
			same := true
			for i := range w.sub {
				same = same && s.Sub[i] == w.sub[i]
			}
			if same {
				return w.alias
			}
		}
	}
	return s.String()
}
