package image

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
)

// qcow2 is a QCOW2 image (version 2 or 3) read and written in place
// (qemu docs/interop/qcow2.txt). Guest clusters are mapped through a
// two-level table: the L1 table (held in memory) points at L2 tables, whose
// 64-bit entries point at host clusters.
//
// A write lands in the host cluster already mapped when that cluster is
// owned by this image alone (refcount 1 and the COPIED flag on its L1 and
// L2 entries). A write into an unmapped cluster allocates one at the end of
// the file, copying up the rest of the cluster from the backing file; a new
// L2 table or refcount block is allocated when needed. Compressed clusters
// and clusters shared with internal snapshots are refused, as is growing
// the refcount table; the whole write is planned first, so a refused write
// writes nothing.
type qcow2 struct {
	f       *containerFile
	h       *qcow2Header
	cs      int64    // cluster size
	l2n     int64    // entries per L2 table
	l1      []uint64 // the L1 table
	rt      []uint64 // the refcount table
	backing layer    // nil when there is no backing file
	meta    [][2]int64
}

// L1 and L2 entry fields (qcow2.txt, "Cluster mapping").
const (
	qcow2OffsetMask = 0x00fffffffffffe00 // bits 9-55: host offset
	qcow2Copied     = 1 << 63            // refcount is exactly one
	qcow2Compressed = 1 << 62            // compressed cluster descriptor
	qcow2Zero       = 1 << 0             // reads as zeros (version 3)
)

// openQCOW2 parses the header and the L1 and refcount tables, and opens the
// backing file when there is one.
func openQCOW2(f *containerFile, path string, c *chain) (*qcow2, error) {
	head := make([]byte, min(f.size, 1<<21))
	if err := f.read(head, 0, "qcow2 header"); err != nil {
		return nil, err
	}
	h, err := parseQCOW2Header(head, f.size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.name, err)
	}
	if why := h.readRefusal(); why != "" {
		return nil, fmt.Errorf("%s: qcow2 image refused: %s", f.name, why)
	}
	q := &qcow2{f: f, h: h, cs: 1 << h.clusterBits, l2n: 1 << (h.clusterBits - 3)}
	q.l1 = make([]uint64, h.l1Size)
	if err := q.readTable(q.l1, int64(h.l1TableOffset), "L1 table"); err != nil {
		return nil, err
	}
	q.rt = make([]uint64, int64(h.refcountTableClust)*q.cs/8)
	if err := q.readTable(q.rt, int64(h.refcountTableOff), "refcount table"); err != nil {
		return nil, err
	}
	// The clusters no data or L2 table may share: the header, the L1
	// table, the refcount table.
	q.meta = [][2]int64{{0, q.cs}, {int64(h.l1TableOffset), int64(h.l1Size) * 8}, {int64(h.refcountTableOff), int64(len(q.rt)) * 8}}
	if h.backingFile != "" {
		parent, _, err := c.openParent(path, h.backingFormat, []string{h.backingFile})
		if err != nil {
			return nil, fmt.Errorf("%s: backing file %q: %w", f.name, h.backingFile, err)
		}
		q.backing = parent
	}
	return q, nil
}

func (q *qcow2) readTable(t []uint64, off int64, what string) error {
	b := make([]byte, len(t)*8)
	if err := q.f.read(b, off, what); err != nil {
		return err
	}
	for i := range t {
		t[i] = binary.BigEndian.Uint64(b[i*8:])
	}
	return nil
}

func (q *qcow2) virtualSize() int64 { return int64(q.h.size) }

// qcow2Kind is what a guest cluster is mapped to.
type qcow2Kind int

const (
	qcow2Unallocated qcow2Kind = iota // no L2 table, or an L2 entry of zero: the backing file, or zeros
	qcow2ZeroPlain                    // zero flag, no host cluster
	qcow2ZeroAlloc                    // zero flag with a preallocated host cluster
	qcow2Normal                       // data in a host cluster
	qcow2Compr                        // compressed
)

// qcow2Map is the mapping of one guest cluster.
type qcow2Map struct {
	kind    qcow2Kind
	host    int64  // host cluster offset (normal, zero-alloc)
	entry   uint64 // the L2 entry
	l1i     int64
	l2Off   int64 // the L2 table (0 when there is none)
	l1Entry uint64
}

// lookup maps guest cluster vc, checking every offset it follows.
func (q *qcow2) lookup(vc int64) (qcow2Map, error) {
	m := qcow2Map{l1i: vc / q.l2n}
	if m.l1i >= int64(len(q.l1)) {
		return m, fmt.Errorf("%s: guest cluster %d is past the L1 table", q.f.name, vc)
	}
	m.l1Entry = q.l1[m.l1i]
	m.l2Off = int64(m.l1Entry & qcow2OffsetMask)
	if m.l2Off == 0 {
		return m, nil
	}
	if err := q.checkCluster(m.l2Off, fmt.Sprintf("L1 entry %d (L2 table)", m.l1i)); err != nil {
		return m, err
	}
	var b [8]byte
	if err := q.f.read(b[:], m.l2Off+(vc%q.l2n)*8, "L2 entry"); err != nil {
		return m, err
	}
	m.entry = binary.BigEndian.Uint64(b[:])
	switch {
	case m.entry&qcow2Compressed != 0:
		m.kind = qcow2Compr
		return m, nil
	case m.entry&qcow2Zero != 0 && q.h.version >= 3:
		m.host = int64(m.entry & qcow2OffsetMask)
		if m.host == 0 {
			m.kind = qcow2ZeroPlain
			return m, nil
		}
		m.kind = qcow2ZeroAlloc
	case m.entry&qcow2OffsetMask == 0:
		m.kind = qcow2Unallocated
		return m, nil
	default:
		m.kind = qcow2Normal
		m.host = int64(m.entry & qcow2OffsetMask)
	}
	if err := q.checkCluster(m.host, fmt.Sprintf("the L2 entry of guest cluster %d", vc)); err != nil {
		return m, err
	}
	return m, nil
}

// checkCluster checks a host cluster offset taken from a table: aligned,
// starting within the file, and not the header, L1 table or refcount
// table.
func (q *qcow2) checkCluster(off int64, what string) error {
	switch {
	case off%q.cs != 0:
		return fmt.Errorf("%s: %s points at %#x, which is not cluster-aligned: the image is damaged", q.f.name, what, off)
	case off >= q.f.size:
		return fmt.Errorf("%s: %s points at %#x, past the end of the file (%d bytes): the image is damaged or cut short", q.f.name, what, off, q.f.size)
	}
	for _, m := range q.meta {
		if rangesOverlap(uint64(off), uint64(q.cs), uint64(m[0]), uint64(m[1])) {
			return fmt.Errorf("%s: %s points at %#x, inside the image's header or its L1 or refcount table: the image is damaged", q.f.name, what, off)
		}
	}
	return nil
}

// ReadAt reads guest data.
func (q *qcow2) ReadAt(p []byte, off int64) (int, error) {
	return readUnits(p, off, q.virtualSize(), q.cs, func(p []byte, pos int64) error {
		return q.readCluster(p, pos/q.cs, pos%q.cs)
	})
}

// readCluster reads p from guest cluster vc at in bytes into it.
func (q *qcow2) readCluster(p []byte, vc, in int64) error {
	m, err := q.lookup(vc)
	if err != nil {
		return err
	}
	switch m.kind {
	case qcow2Normal:
		return q.f.readData(p, m.host+in, "data cluster")
	case qcow2ZeroPlain, qcow2ZeroAlloc:
		clear(p)
		return nil
	case qcow2Compr:
		c, err := q.decompress(m.entry, vc)
		if err != nil {
			return err
		}
		copy(p, c[in:])
		return nil
	}
	if q.backing != nil {
		return readVirtual(q.backing, p, vc*q.cs+in)
	}
	clear(p)
	return nil
}

// decompress inflates a compressed cluster (qcow2.txt, "Compressed
// Clusters Descriptor": x = 62 - (cluster_bits - 8) bits of host offset,
// then the number of additional 512-byte sectors; deflate without a zlib
// header unless compression_type says zstd).
func (q *qcow2) decompress(entry uint64, vc int64) ([]byte, error) {
	if q.h.compressionType != 0 {
		return nil, fmt.Errorf("%s: guest cluster %d is compressed with zstd (compression type %d), which this program does not read: convert the image: qemu-img convert -O qcow2 DISK NEW.qcow2", q.f.name, vc, q.h.compressionType)
	}
	x := 62 - (q.h.clusterBits - 8)
	host := int64(entry & (1<<x - 1))
	sectors := int64((entry&^(qcow2Compressed|qcow2Copied))>>x) + 1
	n := sectors*512 - host%512
	if host >= q.f.size || host < q.cs {
		return nil, fmt.Errorf("%s: compressed guest cluster %d points at %#x, outside the file's data", q.f.name, vc, host)
	}
	n = min(n, q.f.size-host, 2*q.cs)
	src := make([]byte, n)
	if err := q.f.read(src, host, "compressed cluster"); err != nil {
		return nil, err
	}
	out := make([]byte, q.cs)
	got, err := io.ReadFull(flate.NewReader(bytes.NewReader(src)), out)
	if err != nil && int64(got) != q.cs {
		return nil, fmt.Errorf("%s: compressed guest cluster %d at %#x does not inflate to a whole cluster: %v", q.f.name, vc, host, err)
	}
	return out, nil
}

// WriteAt writes guest data, planning the whole write first.
func (q *qcow2) WriteAt(p []byte, off int64) (int, error) {
	return writePlanned(q.f, q.virtualSize(), p, off, q.plan)
}

// plan works out the file writes for writing p at guest offset off, and
// returns them with the function that updates the in-memory tables once
// they are written.
func (q *qcow2) plan(p []byte, off int64) ([]fileWrite, func(), error) {
	if why := q.h.writeRefusal(); why != "" {
		return nil, nil, fmt.Errorf("%s", why)
	}
	refs := q.newRefcounts()
	next := (q.f.size + q.cs - 1) / q.cs // next free host cluster
	var newClusters []int64
	alloc := func() int64 {
		c := next
		next++
		newClusters = append(newClusters, c)
		return c * q.cs
	}
	var (
		data     []fileWrite
		l2Writes []fileWrite
		l1Writes []fileWrite
		newL2    = map[int64][]byte{} // by L1 index: a new L2 table
		l1Set    = map[int64]uint64{}
	)
	// owned checks that a host cluster is this image's alone.
	owned := func(host int64, flags uint64, what string) error {
		if flags&qcow2Copied == 0 {
			return fmt.Errorf("%s at %#x is shared with an internal snapshot (no COPIED flag): delete the snapshots first (qemu-img snapshot -d) or convert the image", what, host)
		}
		rc, err := refs.get(host / q.cs)
		if err != nil {
			return err
		}
		if rc != 1 {
			return fmt.Errorf("%s at %#x has refcount %d, not 1 (shared with an internal snapshot, or damaged): delete the snapshots or repair it (qemu-img check -r all)", what, host, rc)
		}
		return nil
	}
	checkedL2 := map[int64]bool{}
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		vc, in := pos/q.cs, pos%q.cs
		n := int(min(int64(len(p)-done), q.cs-in))
		chunk := p[done : done+n]
		done += n

		m, err := q.lookup(vc)
		if err != nil {
			return nil, nil, err
		}
		if m.l2Off != 0 && !checkedL2[m.l2Off] {
			if err := owned(m.l2Off, m.l1Entry, fmt.Sprintf("the L2 table of guest cluster %d", vc)); err != nil {
				return nil, nil, err
			}
			checkedL2[m.l2Off] = true
		}
		var entry uint64
		switch m.kind {
		case qcow2Compr:
			return nil, nil, fmt.Errorf("guest cluster %d is compressed: writing into compressed clusters is not supported; convert the image first: qemu-img convert -O qcow2 DISK NEW.qcow2", vc)
		case qcow2Normal:
			if err := owned(m.host, m.entry, fmt.Sprintf("guest cluster %d", vc)); err != nil {
				return nil, nil, err
			}
			data = append(data, fileWrite{off: m.host + in, b: chunk, what: "data cluster"})
			continue
		case qcow2ZeroAlloc:
			// A preallocated cluster that reads as zeros: fill it and
			// clear the zero flag.
			if err := owned(m.host, m.entry, fmt.Sprintf("guest cluster %d", vc)); err != nil {
				return nil, nil, err
			}
			c := make([]byte, q.cs)
			copy(c[in:], chunk)
			data = append(data, fileWrite{off: m.host, b: c, what: "data cluster"})
			entry = m.entry &^ qcow2Zero
		default:
			// Unallocated or plain zero: a new cluster, holding what the
			// guest reads there now (the backing file's data, or zeros)
			// with the write on top.
			c := make([]byte, q.cs)
			if m.kind == qcow2Unallocated && q.backing != nil {
				if err := readVirtual(q.backing, c, vc*q.cs); err != nil {
					return nil, nil, fmt.Errorf("reading guest cluster %d from the backing file: %w", vc, err)
				}
			}
			copy(c[in:], chunk)
			host := alloc()
			data = append(data, fileWrite{off: host, b: c, what: "new data cluster"})
			entry = uint64(host) | qcow2Copied
		}
		// Store the new L2 entry: into a new L2 table when there is none.
		l2i := vc % q.l2n
		if m.l2Off == 0 {
			t, ok := newL2[m.l1i]
			if !ok {
				t = make([]byte, q.cs)
				newL2[m.l1i] = t
				l2 := alloc()
				l1Set[m.l1i] = uint64(l2) | qcow2Copied
			}
			binary.BigEndian.PutUint64(t[l2i*8:], entry)
			continue
		}
		l2Writes = append(l2Writes, fileWrite{off: m.l2Off + l2i*8, b: binary.BigEndian.AppendUint64(nil, entry), what: "L2 entry"})
	}
	for l1i, t := range newL2 {
		data = append(data, fileWrite{off: int64(l1Set[l1i] & qcow2OffsetMask), b: t, what: "new L2 table"})
	}
	for l1i, e := range l1Set {
		l1Writes = append(l1Writes, fileWrite{off: int64(q.h.l1TableOffset) + l1i*8, b: binary.BigEndian.AppendUint64(nil, e), what: "L1 entry"})
	}
	// Refcounts of the new clusters, with new refcount blocks where the
	// table has none; each new block counts itself too.
	for i := 0; i < len(newClusters); i++ {
		c := newClusters[i]
		ti := c / q.refsPerBlock()
		if ti >= int64(len(refs.table)) {
			return nil, nil, fmt.Errorf("the refcount table (%d entries) would have to grow to count cluster %d: convert the image (qemu-img convert -O qcow2 DISK NEW.qcow2) or let qemu write to it once", len(refs.table), c)
		}
		if refs.table[ti]&^0x1ff == 0 {
			refs.addBlock(int(ti), alloc())
		}
		rc, err := refs.get(c)
		if err != nil {
			return nil, nil, err
		}
		if rc != 0 {
			return nil, nil, fmt.Errorf("cluster %d past the end of the file already has refcount %d: the refcounts are damaged (qemu-img check -r all)", c, rc)
		}
		if err := refs.set(c, 1); err != nil {
			return nil, nil, err
		}
	}
	if int64(next)*q.cs > maxVirtualSize*2 {
		return nil, nil, fmt.Errorf("the file would grow past %d bytes", int64(maxVirtualSize)*2)
	}
	// Autoclear features this program does not maintain (e.g. persistent
	// bitmaps) must be cleared before the first write (qcow2.txt, header
	// bytes 88-95).
	var head []fileWrite
	if q.h.autoclear != 0 {
		head = append(head, fileWrite{off: 88, b: make([]byte, 8), what: "autoclear features"})
	}
	rw := refs.writes()
	for _, s := range [][]fileWrite{data, rw, l2Writes, l1Writes} {
		slices.SortFunc(s, func(a, b fileWrite) int { return int(a.off - b.off) })
	}
	out := slices.Concat(head, data, rw, l2Writes, l1Writes)
	commit := func() {
		// The in-memory tables follow what was written.
		for l1i, e := range l1Set {
			q.l1[l1i] = e
		}
		copy(q.rt, refs.table)
		q.h.autoclear = 0
	}
	return out, commit, nil
}
