package image

import (
	"encoding/binary"
	"fmt"
)

// qcow2Refcounts is the two-level refcount structure (qcow2.txt, "Host
// cluster management"): a refcount table of 64-bit offsets of refcount
// blocks, each block one cluster of refcount_bits-wide big-endian counts,
// one per host cluster. Blocks read while planning a write are kept here
// and changed in memory; dirty() lists the bytes to write back.
type qcow2Refcounts struct {
	q       *qcow2
	table   []uint64         // the refcount table, as read (and as planned)
	blocks  map[int64][]byte // refcount blocks read or created, by file offset
	changed map[int64][2]int // per block: the byte span changed [lo, hi)
	created map[int64]bool   // blocks allocated by this plan (written whole)
	tableCh map[int]bool     // refcount table entries changed by this plan
}

// bits is the width of one refcount.
func (q *qcow2) refBits() uint64 { return 1 << q.h.refcountOrder }

// refsPerBlock is the number of refcounts in one refcount block.
func (q *qcow2) refsPerBlock() int64 { return q.cs * 8 / int64(q.refBits()) }

func (q *qcow2) newRefcounts() *qcow2Refcounts {
	return &qcow2Refcounts{q: q, table: append([]uint64(nil), q.rt...), blocks: map[int64][]byte{}, changed: map[int64][2]int{}, created: map[int64]bool{}, tableCh: map[int]bool{}}
}

// blockFor returns the refcount block covering host cluster c, reading it
// once, or nil when the table has no block for it yet. A table entry that
// is not cluster-aligned, lies in the header cluster or past the end of
// the file is an error.
func (r *qcow2Refcounts) blockFor(c int64) ([]byte, int64, error) {
	q := r.q
	i := c / q.refsPerBlock()
	if i >= int64(len(r.table)) {
		return nil, 0, nil
	}
	off := int64(r.table[i] &^ 0x1ff)
	if off == 0 {
		return nil, 0, nil
	}
	if b, ok := r.blocks[off]; ok {
		return b, off, nil
	}
	if off%q.cs != 0 || off < q.cs || off > q.f.size-q.cs {
		return nil, 0, fmt.Errorf("%s: refcount table entry %d points at %#x, which is not a cluster within the file", q.f.name, i, off)
	}
	b := make([]byte, q.cs)
	if err := q.f.read(b, off, "refcount block"); err != nil {
		return nil, 0, err
	}
	r.blocks[off] = b
	return b, off, nil
}

// get returns the refcount of host cluster c (0 when no block covers it).
func (r *qcow2Refcounts) get(c int64) (uint64, error) {
	b, _, err := r.blockFor(c)
	if err != nil || b == nil {
		return 0, err
	}
	return refcountAt(b, c%r.q.refsPerBlock(), r.q.refBits()), nil
}

// set sets the refcount of host cluster c in the block that covers it,
// which must exist.
func (r *qcow2Refcounts) set(c int64, v uint64) error {
	b, off, err := r.blockFor(c)
	if err != nil {
		return err
	}
	if b == nil {
		return fmt.Errorf("%s: no refcount block covers cluster %d", r.q.f.name, c)
	}
	bits := r.q.refBits()
	if bits < 64 && v >= 1<<bits {
		return fmt.Errorf("%s: refcount %d does not fit in %d bits", r.q.f.name, v, bits)
	}
	idx := c % r.q.refsPerBlock()
	lo, hi := setRefcountAt(b, idx, bits, v)
	if span, ok := r.changed[off]; ok {
		lo, hi = min(lo, span[0]), max(hi, span[1])
	}
	r.changed[off] = [2]int{lo, hi}
	return nil
}

// addBlock installs a new, zeroed refcount block at file offset off as
// refcount table entry i.
func (r *qcow2Refcounts) addBlock(i int, off int64) {
	r.blocks[off] = make([]byte, r.q.cs)
	r.created[off] = true
	r.table[i] = uint64(off)
	r.tableCh[i] = true
}

// refcountAt reads refcount idx of a block of bits-wide entries: whole
// bytes are big-endian; narrower entries are packed from the least
// significant bit of each byte, as qemu packs them.
func refcountAt(b []byte, idx int64, bits uint64) uint64 {
	if bits < 8 {
		bit := uint64(idx) * bits
		return uint64(b[bit/8]>>(bit%8)) & (1<<bits - 1)
	}
	n := int64(bits / 8)
	var v uint64
	for _, c := range b[idx*n : idx*n+n] {
		v = v<<8 | uint64(c)
	}
	return v
}

// setRefcountAt stores v as refcount idx and returns the byte span it
// changed.
func setRefcountAt(b []byte, idx int64, bits, v uint64) (int, int) {
	if bits < 8 {
		bit := uint64(idx) * bits
		mask := byte(1<<bits-1) << (bit % 8)
		b[bit/8] = b[bit/8]&^mask | byte(v<<(bit%8))&mask
		return int(bit / 8), int(bit/8) + 1
	}
	n := int(bits / 8)
	s := int(idx) * n
	for i := n - 1; i >= 0; i-- {
		b[s+i] = byte(v)
		v >>= 8
	}
	return s, s + n
}

// writes returns the file writes that store what the plan changed: new
// blocks whole, changed spans of existing blocks, changed table entries.
func (r *qcow2Refcounts) writes() []fileWrite {
	var ws []fileWrite
	for off := range r.created {
		ws = append(ws, fileWrite{off: off, b: r.blocks[off], what: "new refcount block"})
	}
	for off, span := range r.changed {
		if r.created[off] {
			continue
		}
		ws = append(ws, fileWrite{off: off + int64(span[0]), b: r.blocks[off][span[0]:span[1]], what: "refcount block entry"})
	}
	for i := range r.tableCh {
		b := binary.BigEndian.AppendUint64(nil, r.table[i])
		ws = append(ws, fileWrite{off: int64(r.q.h.refcountTableOff) + int64(i)*8, b: b, what: "refcount table entry"})
	}
	return ws
}
