package ntfs

import (
	"errors"
	"fmt"
)

// Run is one extent of a non-resident attribute: Length clusters starting
// at cluster LCN. A sparse run (a hole) has Sparse set and no LCN.
type Run struct {
	LCN    int64
	Length int64
	Sparse bool
}

// maxRuns caps the number of runs decoded from one attribute: a mapping
// pair takes at least two bytes, and an attribute cannot exceed a record.
const maxRuns = 1 << 15

var errRunlist = errors.New("bad run list")

// DecodeRunList decodes NTFS mapping pairs: a header byte whose low nibble
// is the size of the length field and high nibble the size of the signed
// LCN delta; a zero header ends the list; a zero-sized delta is a hole.
func DecodeRunList(b []byte) ([]Run, error) {
	var runs []Run
	var lcn int64
	for i := 0; ; {
		if i >= len(b) {
			return nil, fmt.Errorf("%w: no terminator within %d bytes", errRunlist, len(b))
		}
		h := b[i]
		if h == 0 {
			return runs, nil
		}
		ll, ol := int(h&0x0F), int(h>>4)
		if ll == 0 || ll > 8 || ol > 8 {
			return nil, fmt.Errorf("%w: header 0x%02x at %d", errRunlist, h, i)
		}
		if i+1+ll+ol > len(b) {
			return nil, fmt.Errorf("%w: pair at %d runs past %d bytes", errRunlist, i, len(b))
		}
		length := readSigned(b[i+1 : i+1+ll])
		if length <= 0 {
			return nil, fmt.Errorf("%w: run length %d at %d", errRunlist, length, i)
		}
		r := Run{Length: length}
		if ol == 0 {
			r.Sparse = true
		} else {
			d := readSigned(b[i+1+ll : i+1+ll+ol])
			lcn += d
			if lcn < 0 {
				return nil, fmt.Errorf("%w: negative LCN %d at %d", errRunlist, lcn, i)
			}
			r.LCN = lcn
		}
		if len(runs) >= maxRuns {
			return nil, fmt.Errorf("%w: more than %d runs", errRunlist, maxRuns)
		}
		runs = append(runs, r)
		i += 1 + ll + ol
	}
}

// readSigned reads a little-endian two's complement integer of 1 to 8 bytes.
func readSigned(b []byte) int64 {
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	if n := uint(len(b)) * 8; n < 64 && b[len(b)-1]&0x80 != 0 {
		v |= ^uint64(0) << n
	}
	return int64(v)
}

// signedSize is the number of bytes needed for v in two's complement.
func signedSize(v int64) int {
	for n := 1; n < 8; n++ {
		lim := int64(1) << (8*n - 1)
		if v >= -lim && v < lim {
			return n
		}
	}
	return 8
}

// EncodeRunList encodes runs as mapping pairs, terminator included. Adjacent
// runs are not merged: callers pass the list they mean.
func EncodeRunList(runs []Run) ([]byte, error) {
	var out []byte
	var prev int64
	for i, r := range runs {
		if r.Length <= 0 {
			return nil, fmt.Errorf("%w: run %d has length %d", errRunlist, i, r.Length)
		}
		ll := signedSize(r.Length)
		var ol int
		var d int64
		if !r.Sparse {
			if r.LCN < 0 {
				return nil, fmt.Errorf("%w: run %d has LCN %d", errRunlist, i, r.LCN)
			}
			d = r.LCN - prev
			ol = signedSize(d)
			prev = r.LCN
		}
		out = append(out, byte(ol<<4|ll))
		for k := 0; k < ll; k++ {
			out = append(out, byte(r.Length>>(8*k)))
		}
		for k := 0; k < ol; k++ {
			out = append(out, byte(d>>(8*k)))
		}
	}
	return append(out, 0), nil
}

// runsClusters is the total number of clusters the runs cover.
func runsClusters(runs []Run) int64 {
	var n int64
	for _, r := range runs {
		n += r.Length
	}
	return n
}

// vcnToLCN maps a virtual cluster to its logical cluster and the number of
// contiguous clusters from there; ok is false for holes and past the end.
func vcnToLCN(runs []Run, vcn int64) (lcn, contiguous int64, ok bool) {
	for _, r := range runs {
		if vcn < r.Length {
			if r.Sparse {
				return 0, r.Length - vcn, false
			}
			return r.LCN + vcn, r.Length - vcn, true
		}
		vcn -= r.Length
	}
	return 0, 0, false
}

// appendRun adds clusters at the end, merging with the last run when
// physically contiguous.
func appendRun(runs []Run, lcn, n int64) []Run {
	if k := len(runs); k > 0 && !runs[k-1].Sparse && runs[k-1].LCN+runs[k-1].Length == lcn {
		out := append([]Run(nil), runs...)
		out[k-1].Length += n
		return out
	}
	return append(append([]Run(nil), runs...), Run{LCN: lcn, Length: n})
}
