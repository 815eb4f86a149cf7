package ntfs

import (
	"errors"
	"fmt"
)

// This file is the $I30 index B-tree of one directory: parsing nodes from
// $INDEX_ROOT and INDX blocks, lookup by descent under the volume's $UpCase
// collation, insert with split and median push-up, delete with successor
// replacement, and serialisation of the changed nodes (formats.md, "Index
// entries", "$INDEX_ROOT", "How ntfs-3g renames").

const (
	ieFlagChild = 1 // entry has a child node VCN in its last 8 bytes
	ieFlagEnd   = 2 // END entry: closes the node, has no key

	indexNodeLarge = 1 // node header flag: entries have child nodes

	fnMinLen = 0x42 // $FILE_NAME value header before the name

	i30 = "$I30"
)

var errIndex = errors.New("bad index")

// ixEntry is one index entry. For an END entry key is nil.
type ixEntry struct {
	ref      uint64
	key      []byte // the $FILE_NAME value
	name     []uint16
	end      bool
	childVCN int64 // -1 when none
	child    *ixNode
}

// size is the on-disk length of the entry in a node with or without
// children: a 16-byte header, the key, 8-byte alignment, then the VCN.
func (e *ixEntry) size(internal bool) int {
	n := align8(0x10 + len(e.key))
	if internal {
		n += 8
	}
	return n
}

// ixNode is the root (vcn -1) or one INDX block.
type ixNode struct {
	vcn        int64
	entries    []*ixEntry // the last is the END entry
	internal   bool
	entriesOff int    // INDX: offset of the entries from the node header
	raw        []byte // INDX: the block as read (fixups applied), nil if new
	dirty      bool
	freed      bool // cleared in the index $BITMAP; written empty
}

func (n *ixNode) used() int {
	s := 0
	for _, e := range n.entries {
		s += e.size(n.internal)
	}
	return s
}

// parseEntries decodes the entries of one node from b (the bytes from the
// first entry to the end of the used part).
func parseEntries(b []byte, internal bool) ([]*ixEntry, error) {
	var out []*ixEntry
	for off := 0; ; {
		if off+0x10 > len(b) {
			return nil, fmt.Errorf("%w: entry at 0x%x runs past the node (%d bytes) without an END entry", errIndex, off, len(b))
		}
		l, kl, fl := int(le16(b[off+8:])), int(le16(b[off+10:])), le16(b[off+12:])
		if l < 0x10 || l%8 != 0 || off+l > len(b) {
			return nil, fmt.Errorf("%w: entry at 0x%x has length %d", errIndex, off, l)
		}
		hasChild := fl&ieFlagChild != 0
		if hasChild != internal {
			return nil, fmt.Errorf("%w: entry at 0x%x child flag %v in a node with children=%v", errIndex, off, hasChild, internal)
		}
		e := &ixEntry{ref: le64(b[off:]), childVCN: -1}
		room := l - 0x10
		if hasChild {
			room -= 8
			if room < 0 {
				return nil, fmt.Errorf("%w: entry at 0x%x too short for a child VCN", errIndex, off)
			}
			e.childVCN = int64(le64(b[off+l-8:]))
			if e.childVCN < 0 {
				return nil, fmt.Errorf("%w: entry at 0x%x has child VCN %d", errIndex, off, e.childVCN)
			}
		}
		if fl&ieFlagEnd != 0 {
			e.end = true
			out = append(out, e)
			return out, nil
		}
		if kl < fnMinLen || kl > room {
			return nil, fmt.Errorf("%w: entry at 0x%x key length %d (room %d)", errIndex, off, kl, room)
		}
		key := b[off+0x10 : off+0x10+kl]
		nl := int(key[0x40])
		if fnMinLen+2*nl > kl || nl == 0 {
			return nil, fmt.Errorf("%w: entry at 0x%x name of %d characters in a %d-byte key", errIndex, off, nl, kl)
		}
		e.key = append([]byte(nil), key...)
		e.name = bytesToUTF16(key[fnMinLen : fnMinLen+2*nl])
		if len(out) >= len(b)/0x10 {
			return nil, fmt.Errorf("%w: too many entries", errIndex)
		}
		out = append(out, e)
		off += l
	}
}

// encodeEntries serialises entries into b, which must be large enough.
func encodeEntries(b []byte, entries []*ixEntry, internal bool) int {
	off := 0
	for _, e := range entries {
		l := e.size(internal)
		clear(b[off : off+l])
		putLE64(b[off:], e.ref)
		putLE16(b[off+8:], uint16(l))
		var fl uint16
		if internal {
			fl |= ieFlagChild
			vcn := e.childVCN
			if e.child != nil {
				vcn = e.child.vcn
			}
			putLE64(b[off+l-8:], uint64(vcn))
		}
		if e.end {
			fl |= ieFlagEnd
			if !internal {
				putLE64(b[off:], 0)
			}
		} else {
			putLE16(b[off+10:], uint16(len(e.key)))
			copy(b[off+0x10:], e.key)
		}
		putLE16(b[off+12:], fl)
		off += l
	}
	return off
}

// ixTree is a directory's index, loaded lazily node by node.
type ixTree struct {
	t          *tx
	dir        uint64 // the directory's MFT record number
	blockSize  int64
	vcnUnit    int64 // bytes per VCN: the cluster if not larger than a block, else 512
	root       *ixNode
	rootHdr    []byte // the 16-byte $INDEX_ROOT header (type, collation, sizes)
	bitmap     []byte // the index $BITMAP: one bit per block
	bmResident bool
	bmDirty    bool
	allocRuns  []Run
	allocSize  int64
	// The records holding $INDEX_ROOT, $INDEX_ALLOCATION and $BITMAP: the
	// directory's own, or extension records named by its attribute list.
	rootRec, allocRec, bmRec uint64
	// ia and bm map every extent of a non-resident $INDEX_ALLOCATION and
	// index $BITMAP (nil when absent or resident).
	ia, bm *nrAttr
	nodes  map[int64]*ixNode
}

// loadTree reads a directory's $INDEX_ROOT, allocation runs and bitmap.
func (t *tx) loadTree(dir uint64) (*ixTree, error) {
	rec, err := t.record(dir)
	if err != nil {
		return nil, err
	}
	if !rec.IsDir() {
		return nil, fmt.Errorf("ntfs: MFT record %d is not a directory", dir)
	}
	tr := &ixTree{t: t, dir: dir, nodes: map[int64]*ixNode{}, rootRec: dir, allocRec: dir, bmRec: dir}
	var haveRoot bool
	for _, typ := range []uint32{AttrIndexRoot, AttrIndexAllocation, AttrBitmap} {
		r, a, extents, err := t.findAttrAny(rec, typ, i30)
		if err != nil {
			return nil, err
		}
		if extents == 0 {
			continue
		}
		if extents > 1 && (typ == AttrIndexRoot || !a.NonResident) {
			return nil, fmt.Errorf("ntfs: directory %d: resident attribute 0x%x is listed %d times", dir, typ, extents)
		}
		switch typ {
		case AttrIndexRoot:
			tr.rootRec = r.Num
			if a.NonResident {
				return nil, fmt.Errorf("ntfs: directory %d: non-resident $INDEX_ROOT", dir)
			}
			v := a.Value()
			if len(v) < 0x20 {
				return nil, fmt.Errorf("ntfs: directory %d: $INDEX_ROOT of %d bytes", dir, len(v))
			}
			if le32(v) != AttrFileName || le32(v[4:]) != 1 {
				return nil, fmt.Errorf("ntfs: directory %d: $I30 indexes type 0x%x with collation %d, want $FILE_NAME / 1", dir, le32(v), le32(v[4:]))
			}
			tr.rootHdr = append([]byte(nil), v[:0x10]...)
			tr.blockSize = int64(le32(v[8:]))
			if tr.blockSize != int64(t.g.boot.IndexBlockSize) {
				return nil, fmt.Errorf("ntfs: directory %d: index block size %d differs from the boot sector's %d", dir, tr.blockSize, t.g.boot.IndexBlockSize)
			}
			es, internal, err := parseIndexRoot(v)
			if err != nil {
				return nil, fmt.Errorf("ntfs: directory %d: %w", dir, err)
			}
			tr.root = &ixNode{vcn: -1, entries: es, internal: internal}
			haveRoot = true
		case AttrIndexAllocation:
			tr.allocRec = r.Num
			if !a.NonResident {
				return nil, fmt.Errorf("ntfs: directory %d: resident $INDEX_ALLOCATION", dir)
			}
			if tr.ia, _, err = t.loadNR(rec, AttrIndexAllocation, i30); err != nil {
				return nil, fmt.Errorf("ntfs: directory %d: $INDEX_ALLOCATION: %w", dir, err)
			}
			tr.allocRuns = tr.ia.runs
			tr.allocSize = a.DataSize()
			if tr.allocSize > runsClusters(tr.allocRuns)*t.g.cluster {
				return nil, fmt.Errorf("ntfs: directory %d: $INDEX_ALLOCATION size %d beyond its runs", dir, tr.allocSize)
			}
		case AttrBitmap:
			tr.bmRec = r.Num
			tr.bmResident = !a.NonResident
			if tr.bmResident {
				tr.bitmap = append([]byte(nil), a.Value()...)
				break
			}
			if tr.bm, _, err = t.loadNR(rec, AttrBitmap, i30); err != nil {
				return nil, fmt.Errorf("ntfs: directory %d: index $BITMAP: %w", dir, err)
			}
			if tr.bitmap, err = tr.bm.read(1 << 24); err != nil {
				return nil, fmt.Errorf("ntfs: directory %d: index $BITMAP: %w", dir, err)
			}
		}
	}
	if !haveRoot {
		return nil, fmt.Errorf("ntfs: directory %d has no $I30 $INDEX_ROOT", dir)
	}
	if tr.blockSize <= 0 || tr.blockSize%512 != 0 {
		return nil, fmt.Errorf("ntfs: directory %d: index block size %d", dir, tr.blockSize)
	}
	tr.vcnUnit = t.g.cluster
	if t.g.cluster > tr.blockSize {
		tr.vcnUnit = 512
	}
	if tr.root.internal && tr.allocRuns == nil {
		return nil, fmt.Errorf("ntfs: directory %d: large index without $INDEX_ALLOCATION", dir)
	}
	return tr, nil
}

// blockBit is the index $BITMAP bit of a node VCN.
func (tr *ixTree) blockBit(vcn int64) int64 { return vcn * tr.vcnUnit / tr.blockSize }

func (tr *ixTree) bitSet(i int64) bool {
	return i >= 0 && i/8 < int64(len(tr.bitmap)) && tr.bitmap[i/8]&(1<<(i%8)) != 0
}

// load reads the INDX block at vcn.
func (tr *ixTree) load(vcn int64) (*ixNode, error) {
	if n := tr.nodes[vcn]; n != nil {
		return n, nil
	}
	where := fmt.Sprintf("ntfs: directory %d: INDX block VCN %d", tr.dir, vcn)
	off := vcn * tr.vcnUnit
	if vcn < 0 || vcn > tr.allocSize || off%tr.blockSize != 0 || off+tr.blockSize > tr.allocSize {
		return nil, fmt.Errorf("%s: %w: outside the allocation of %d bytes", where, errIndex, tr.allocSize)
	}
	if !tr.bitSet(tr.blockBit(vcn)) {
		return nil, fmt.Errorf("%s: %w: not marked in use in the index $BITMAP", where, errIndex)
	}
	buf := make([]byte, tr.blockSize)
	if err := readRuns(tr.t.o, tr.t.g, tr.allocRuns, off, buf); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	n, err := parseIndx(buf, vcn)
	if err != nil {
		if !errors.Is(err, errIndex) { // fixups
			err = fmt.Errorf("%w: %w", errIndex, err)
		}
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	tr.nodes[vcn] = n
	return n, nil
}

// parseIndexRoot decodes the entries of an $I30 $INDEX_ROOT value: the
// 16-byte root header (indexed type, collation, block size), then the node
// header at 0x10 (entries offset, used length, flags at 0x1C), both
// relative to the node header. The reader and the writer both use it.
func parseIndexRoot(v []byte) ([]*ixEntry, bool, error) {
	if len(v) < 0x20 {
		return nil, false, fmt.Errorf("%w: $INDEX_ROOT of %d bytes", errIndex, len(v))
	}
	eo, il := int(le32(v[0x10:])), int(le32(v[0x14:]))
	if eo < 0x10 || 0x10+il > len(v) || eo > il {
		return nil, false, fmt.Errorf("%w: $INDEX_ROOT node header (entries 0x%x, length %d) out of range", errIndex, eo, il)
	}
	internal := v[0x1C]&indexNodeLarge != 0
	es, err := parseEntries(v[0x10+eo:0x10+il], internal)
	if err != nil {
		return nil, false, fmt.Errorf("$INDEX_ROOT: %w", err)
	}
	return es, internal, nil
}

// parseIndx validates an INDX block and decodes its entries.
func parseIndx(buf []byte, vcn int64) (*ixNode, error) {
	if len(buf) < 0x28 || string(buf[:4]) != "INDX" {
		return nil, fmt.Errorf("%w: no INDX magic", errIndex)
	}
	if err := applyFixups(buf); err != nil {
		return nil, err
	}
	if got := int64(le64(buf[0x10:])); got != vcn {
		return nil, fmt.Errorf("%w: block says VCN %d", errIndex, got)
	}
	usaEnd := int(le16(buf[4:])) + 2*int(le16(buf[6:]))
	eo, il, al := int(le32(buf[0x18:])), int(le32(buf[0x1C:])), int(le32(buf[0x20:]))
	if 0x18+eo < usaEnd || eo%8 != 0 || eo > il || 0x18+il > len(buf) || il > al || 0x18+al > len(buf) {
		return nil, fmt.Errorf("%w: node header (entries 0x%x, length %d, allocated %d) out of range", errIndex, eo, il, al)
	}
	internal := buf[0x24]&indexNodeLarge != 0
	es, err := parseEntries(buf[0x18+eo:0x18+il], internal)
	if err != nil {
		return nil, err
	}
	return &ixNode{vcn: vcn, entries: es, internal: internal, entriesOff: eo, raw: buf}, nil
}

// childOf returns the loaded child of entry e.
func (tr *ixTree) childOf(e *ixEntry) (*ixNode, error) {
	if e.child == nil {
		if e.childVCN < 0 {
			return nil, fmt.Errorf("ntfs: directory %d: %w: entry without child in a node with children", tr.dir, errIndex)
		}
		c, err := tr.load(e.childVCN)
		if err != nil {
			return nil, err
		}
		e.child = c
	}
	return e.child, nil
}

// ixStep is one level of a descent: the node and the entry index taken.
type ixStep struct {
	n *ixNode
	i int
}

// descend walks from the root towards name with the given comparison. It
// returns the path; found reports whether the last step's entry compares
// equal. Depth is capped to catch loops in damaged indexes.
func (tr *ixTree) descend(name []uint16, cmp func(a, b []uint16) int) (path []ixStep, found bool, err error) {
	n := tr.root
	for depth := 0; ; depth++ {
		if depth > 64 {
			return nil, false, fmt.Errorf("ntfs: directory %d: %w: index deeper than 64 levels (loop?)", tr.dir, errIndex)
		}
		i := 0
		for ; i < len(n.entries)-1; i++ {
			c := cmp(name, n.entries[i].name)
			if c == 0 {
				return append(path, ixStep{n, i}), true, nil
			}
			if c < 0 {
				break
			}
		}
		path = append(path, ixStep{n, i})
		if !n.internal {
			return path, false, nil
		}
		if n, err = tr.childOf(n.entries[i]); err != nil {
			return nil, false, err
		}
	}
}

// lookup finds the entry for a name: the exact name first, else one equal
// ignoring case under $UpCase (the order refines the case-folded order, so
// a folded descent finds a folded match when one exists).
func (tr *ixTree) lookup(name []uint16) (*ixEntry, error) {
	p, ok, err := tr.descend(name, tr.t.up.Compare)
	if err != nil {
		return nil, err
	}
	if !ok {
		if p, ok, err = tr.descend(name, tr.t.up.CompareFold); err != nil {
			return nil, err
		}
	}
	if !ok {
		return nil, nil
	}
	s := p[len(p)-1]
	return s.n.entries[s.i], nil
}

// insert adds an entry (key = $FILE_NAME value) and rebalances the tree.
func (tr *ixTree) insert(ref uint64, key []byte) (err error) {
	defer func() { err = tr.t.indexDamage(tr.dir, err) }()
	if err := tr.t.soundIndex(tr.dir); err != nil {
		return err
	}
	e, err := newEntry(ref, key)
	if err != nil {
		return err
	}
	if err := tr.insertLeaf(e); err != nil {
		return err
	}
	return tr.rebalance()
}

func newEntry(ref uint64, key []byte) (*ixEntry, error) {
	if len(key) < fnMinLen || len(key) < fnMinLen+2*int(key[0x40]) || key[0x40] == 0 {
		return nil, fmt.Errorf("ntfs: bad $FILE_NAME key of %d bytes", len(key))
	}
	return &ixEntry{ref: ref, key: key, name: bytesToUTF16(key[fnMinLen : fnMinLen+2*int(key[0x40])]), childVCN: -1}, nil
}

// insertLeaf puts e into the leaf where it belongs, without rebalancing.
func (tr *ixTree) insertLeaf(e *ixEntry) error {
	p, found, err := tr.descend(e.name, tr.t.up.Compare)
	if err != nil {
		return err
	}
	if found {
		return fmt.Errorf("ntfs: directory %d: name %q is already indexed", tr.dir, string16(e.name))
	}
	s := p[len(p)-1]
	e.child, e.childVCN = nil, -1
	s.n.entries = insertAt(s.n.entries, s.i, e)
	s.n.dirty = true
	return nil
}

// remove deletes the entry with this exact name and reference.
func (tr *ixTree) remove(name []uint16, ref uint64) (err error) {
	defer func() { err = tr.t.indexDamage(tr.dir, err) }()
	if err := tr.t.soundIndex(tr.dir); err != nil {
		return err
	}
	p, found, err := tr.descend(name, tr.t.up.Compare)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("ntfs: directory %d: name %q is not indexed", tr.dir, string16(name))
	}
	s := p[len(p)-1]
	e := s.n.entries[s.i]
	if RefNum(e.ref) != RefNum(ref) {
		return fmt.Errorf("ntfs: directory %d: name %q points to record %d, not %d", tr.dir, string16(name), RefNum(e.ref), RefNum(ref))
	}
	if !s.n.internal {
		s.n.entries = append(s.n.entries[:s.i], s.n.entries[s.i+1:]...)
		s.n.dirty = true
		return tr.rebalance()
	}
	// Internal entry: replace it by its successor, the first entry of the
	// leftmost leaf of the subtree to its right (ntfs-3g does the same).
	leaf, err := tr.childOf(s.n.entries[s.i+1])
	if err != nil {
		return err
	}
	for depth := 0; leaf.internal; depth++ {
		if depth > 64 {
			return fmt.Errorf("ntfs: directory %d: %w: index loop", tr.dir, errIndex)
		}
		if leaf, err = tr.childOf(leaf.entries[0]); err != nil {
			return err
		}
	}
	if len(leaf.entries) < 2 {
		return fmt.Errorf("ntfs: directory %d: %w: empty leaf block VCN %d; refusing to edit this index", tr.dir, errIndex, leaf.vcn)
	}
	succ := leaf.entries[0]
	leaf.entries = leaf.entries[1:]
	leaf.dirty = true
	succ.child, succ.childVCN = e.child, e.childVCN
	s.n.entries[s.i] = succ
	s.n.dirty = true
	return tr.rebalance()
}

func insertAt(es []*ixEntry, i int, e *ixEntry) []*ixEntry {
	es = append(es, nil)
	copy(es[i+1:], es[i:])
	es[i] = e
	return es
}

// rebalance repairs every loaded node until none overflows and no block
// but the root is an empty leaf. Each repair restarts the walk: trees are
// shallow and a change repairs at most a few nodes.
func (tr *ixTree) rebalance() error {
	for iter := 0; iter < 10000; iter++ {
		changed, err := tr.fix(tr.root, nil, -1, 0)
		if err != nil || !changed {
			return err
		}
	}
	return fmt.Errorf("ntfs: directory %d: index does not settle", tr.dir)
}

func (tr *ixTree) fix(n, parent *ixNode, pi, depth int) (bool, error) {
	if depth > 64 {
		return false, fmt.Errorf("ntfs: directory %d: %w: index loop", tr.dir, errIndex)
	}
	for i, e := range n.entries {
		if e.child != nil {
			if ch, err := tr.fix(e.child, n, i, depth+1); ch || err != nil {
				return ch, err
			}
		}
	}
	if n == tr.root {
		cap, err := tr.rootCap()
		if err != nil {
			return false, err
		}
		if n.used() > cap {
			return true, tr.moveRoot()
		}
		return false, nil
	}
	if n.used() > tr.nodeCap(n) {
		return true, tr.split(n, parent, pi)
	}
	if !n.internal && len(n.entries) == 1 {
		return true, tr.removeEmpty(n, parent, pi)
	}
	return false, nil
}

// newEntriesOff is where entries start in a new INDX block: after the
// 0x28-byte header and the update sequence array, 8-aligned, counted from
// the node header at 0x18.
func (tr *ixTree) newEntriesOff() int {
	return align8(0x28+2*int(tr.blockSize/512+1)) - 0x18
}

func (tr *ixTree) nodeCap(n *ixNode) int {
	eo := n.entriesOff
	if eo == 0 {
		eo = tr.newEntriesOff()
	}
	return int(tr.blockSize) - 0x18 - eo
}

// rootCap is how many bytes of entries the root may hold: what it holds in
// the record now plus the record's free space.
func (tr *ixTree) rootCap() (int, error) {
	rec, err := tr.t.record(tr.rootRec)
	if err != nil {
		return 0, err
	}
	a, ok, err := rec.FindAttr(AttrIndexRoot, i30)
	if err != nil || !ok {
		return 0, fmt.Errorf("ntfs: directory %d: $INDEX_ROOT vanished (%v)", tr.dir, err)
	}
	return len(a.Value()) - 0x20 + rec.Free(), nil
}

// split halves an overflowing block: the entries before the median go to a
// new block, the median moves up into the parent pointing at it, and the
// block keeps the entries after the median (so the parent's pointer to it
// stays right).
func (tr *ixTree) split(n, parent *ixNode, pi int) error {
	k := len(n.entries) - 1
	if k < 3 {
		return fmt.Errorf("ntfs: directory %d: %w: block VCN %d overflows with %d entries", tr.dir, errIndex, n.vcn, k)
	}
	m := k / 2
	med := n.entries[m]
	left := &ixNode{internal: n.internal, dirty: true}
	left.entries = append(left.entries, n.entries[:m]...)
	end := &ixEntry{end: true, childVCN: -1}
	if n.internal {
		end.child, end.childVCN = med.child, med.childVCN
	}
	left.entries = append(left.entries, end)
	n.entries = append([]*ixEntry(nil), n.entries[m+1:]...)
	n.dirty = true
	vcn, err := tr.allocBlock()
	if err != nil {
		return err
	}
	left.vcn = vcn
	tr.nodes[vcn] = left
	med.child, med.childVCN = left, vcn
	parent.entries = insertAt(parent.entries, pi, med)
	parent.dirty = true
	return nil
}

// moveRoot moves every root entry into a new block and leaves the root
// with a single END entry pointing at it.
func (tr *ixTree) moveRoot() error {
	nn := &ixNode{entries: tr.root.entries, internal: tr.root.internal, dirty: true}
	end := &ixEntry{end: true, child: nn, childVCN: 0}
	tr.root.entries = []*ixEntry{end}
	tr.root.internal = true
	tr.root.dirty = true
	// Shrink the root in the record first: the new block may need room
	// for $INDEX_ALLOCATION and $BITMAP.
	nn.vcn = 0
	if err := tr.syncRoot(); err != nil {
		return err
	}
	vcn, err := tr.allocBlock()
	if err != nil {
		return err
	}
	nn.vcn = vcn
	end.childVCN = vcn
	tr.nodes[vcn] = nn
	tr.root.dirty = true // written again at flush with the real VCN
	return nil
}

// removeEmpty frees an emptied leaf and removes the parent's pointer to it.
// The key of the pointing entry has no left subtree any more: it is taken
// out and inserted again by descent, where it lands in a leaf.
func (tr *ixTree) removeEmpty(n, parent *ixNode, pi int) error {
	tr.freeBlock(n)
	parent.dirty = true
	p := parent.entries[pi]
	if !p.end {
		parent.entries = append(parent.entries[:pi], parent.entries[pi+1:]...)
		return tr.insertLeaf(p)
	}
	if len(parent.entries) > 1 {
		last := parent.entries[len(parent.entries)-2]
		parent.entries = append(parent.entries[:len(parent.entries)-2], p)
		p.child, p.childVCN = last.child, last.childVCN
		return tr.insertLeaf(last)
	}
	// The parent pointed only at this leaf: it becomes an empty leaf.
	p.child, p.childVCN = nil, -1
	parent.internal = false
	return nil
}

func (tr *ixTree) freeBlock(n *ixNode) {
	b := tr.blockBit(n.vcn)
	if b/8 < int64(len(tr.bitmap)) {
		tr.bitmap[b/8] &^= 1 << (b % 8)
		tr.bmDirty = true
	}
	// The freed block is written back holding only an END entry: readers
	// that ignore the index $BITMAP (sleuthkit's fls) would otherwise list
	// the names it held as live.
	n.entries = []*ixEntry{{end: true, childVCN: -1}}
	n.internal = false
	n.dirty = true
	n.freed = true
}

func string16(u []uint16) string { return decodeUTF16(utf16ToBytes(u)) }

// growAllocation gives $INDEX_ALLOCATION the run list runs and the size
// newSize (allocated, data and initialized alike: every block is
// initialized). A directory without one gets one, in its base record or,
// when that is full, in a new extension record named by its
// $ATTRIBUTE_LIST; an existing one may spread over new extension records.
func (tr *ixTree) growAllocation(runs []Run, newSize int64) error {
	if tr.ia != nil {
		if err := tr.ia.setRuns(runs); err != nil {
			return fmt.Errorf("ntfs: directory %d: extending $INDEX_ALLOCATION: %w", tr.dir, err)
		}
		if err := tr.ia.setSizes(newSize, newSize, newSize); err != nil {
			return err
		}
		tr.allocRuns, tr.allocSize = runs, newSize
		return nil
	}
	if err := tr.addNonResident(AttrIndexAllocation, runs, newSize); err != nil {
		return err
	}
	base, err := tr.t.record(tr.dir)
	if err != nil {
		return err
	}
	if tr.ia, _, err = tr.t.loadNR(base, AttrIndexAllocation, i30); err != nil {
		return err
	}
	r, _, err := tr.ia.first()
	if err != nil {
		return err
	}
	tr.allocRec = r.Num
	tr.allocRuns, tr.allocSize = runs, newSize
	if _, _, ok, err := tr.t.findAttrAny(base, AttrBitmap, i30); err != nil {
		return err
	} else if ok == 0 {
		tr.bitmap = make([]byte, 8)
		tr.bmResident = true
		r, err := tr.addResident(AttrBitmap, tr.bitmap)
		if err != nil {
			return fmt.Errorf("ntfs: directory %d: adding the index $BITMAP: %w", tr.dir, err)
		}
		tr.bmRec = r
	}
	return nil
}

// addNonResident adds a new non-resident $I30 attribute to the directory:
// in the base record when it fits, else in a new extension record.
func (tr *ixTree) addNonResident(typ uint32, runs []Run, size int64) error {
	base, err := tr.t.record(tr.dir)
	if err != nil {
		return err
	}
	_, hasAL, err := base.FindAttr(AttrAttributeList, "")
	if err != nil {
		return err
	}
	off, err := base.InsertNonResident(typ, i30, runs, size, size, size)
	r := base
	if errors.Is(err, ErrNeedsAttributeList) {
		if r, err = tr.t.newExtensionRecord(base); err != nil {
			return err
		}
		off, err = r.InsertNonResident(typ, i30, runs, size, size, size)
	}
	if err != nil {
		return fmt.Errorf("ntfs: directory %d: adding attribute 0x%x: %w", tr.dir, typ, err)
	}
	tr.t.dirty(r)
	if !hasAL && r == base {
		return nil
	}
	return tr.t.replaceListEntries(tr.dir, typ, i30, []nrExtent{{rec: r.Num, id: le16(r.Data[off+0xE:]), start: 0}})
}

// addResident adds a resident $I30 attribute, like addNonResident, and
// returns the record holding it.
func (tr *ixTree) addResident(typ uint32, v []byte) (uint64, error) {
	base, err := tr.t.record(tr.dir)
	if err != nil {
		return 0, err
	}
	_, hasAL, err := base.FindAttr(AttrAttributeList, "")
	if err != nil {
		return 0, err
	}
	off, err := base.InsertResident(typ, i30, v, false)
	r := base
	if errors.Is(err, ErrNeedsAttributeList) {
		if r, err = tr.t.newExtensionRecord(base); err != nil {
			return 0, err
		}
		off, err = r.InsertResident(typ, i30, v, false)
	}
	if err != nil {
		return 0, err
	}
	tr.t.dirty(r)
	if !hasAL && r == base {
		return r.Num, nil
	}
	return r.Num, tr.t.replaceListEntries(tr.dir, typ, i30, []nrExtent{{rec: r.Num, id: le16(r.Data[off+0xE:]), start: 0}})
}

// growBitmap adds 8 bytes (64 blocks) to the index $BITMAP, as Windows and
// ntfs-3g grow it. A resident bitmap that no longer fits its record
// becomes non-resident (in its record, or in a new extension record); a
// non-resident one takes a cluster when its allocation is used up.
func (tr *ixTree) growBitmap() error {
	nb := append(append([]byte(nil), tr.bitmap...), make([]byte, 8)...)
	if tr.bmResident {
		rec, a, err := tr.bitmapAttr()
		if err != nil {
			return err
		}
		err = rec.SetResidentValue(a, nb)
		if err == nil {
			tr.t.dirty(rec)
			tr.bitmap = nb
			return nil
		}
		if !errors.Is(err, ErrNeedsAttributeList) {
			return fmt.Errorf("ntfs: directory %d: growing the index $BITMAP: %w", tr.dir, err)
		}
		// Non-resident from now on: one cluster holds it.
		got, err := tr.t.allocClusters(1, 0)
		if err != nil {
			return fmt.Errorf("ntfs: directory %d: index $BITMAP: %w", tr.dir, err)
		}
		if err := rec.RemoveAttr(a.Off); err != nil {
			return err
		}
		tr.t.dirty(rec)
		base, err := tr.t.record(tr.dir)
		if err != nil {
			return err
		}
		if _, hasAL, _ := base.FindAttr(AttrAttributeList, ""); hasAL {
			// The list entry of the resident bitmap goes with it.
			if err := tr.t.replaceListEntries(tr.dir, AttrBitmap, i30, nil); err != nil {
				return err
			}
		}
		size := int64(len(nb))
		if err := tr.addNonResident(AttrBitmap, got, tr.t.g.cluster); err != nil {
			return err
		}
		if tr.bm, _, err = tr.t.loadNR(base, AttrBitmap, i30); err != nil {
			return err
		}
		if err := tr.bm.setSizes(tr.t.g.cluster, size, size); err != nil {
			return err
		}
		r, _, err := tr.bm.first()
		if err != nil {
			return err
		}
		tr.bmRec, tr.bmResident, tr.bitmap, tr.bmDirty = r.Num, false, nb, true
		return nil
	}
	r, a, err := tr.bm.first()
	if err != nil {
		return err
	}
	alloc := a.AllocSize()
	if int64(len(nb)) > alloc {
		runs := append([]Run(nil), tr.bm.runs...)
		near := int64(0)
		if k := len(runs); k > 0 && !runs[k-1].Sparse {
			near = runs[k-1].LCN + runs[k-1].Length
		}
		got, err := tr.t.allocClusters(1, near)
		if err != nil {
			return fmt.Errorf("ntfs: directory %d: growing the index $BITMAP: %w", tr.dir, err)
		}
		for _, g := range got {
			runs = appendRun(runs, g.LCN, g.Length)
		}
		if err := tr.bm.setRuns(runs); err != nil {
			return fmt.Errorf("ntfs: directory %d: growing the index $BITMAP: %w", tr.dir, err)
		}
		alloc += tr.t.g.cluster
	}
	_ = r
	if err := tr.bm.setSizes(alloc, int64(len(nb)), int64(len(nb))); err != nil {
		return err
	}
	tr.bitmap, tr.bmDirty = nb, true
	return nil
}

// writeBitmap stages a non-resident index $BITMAP through all its extents.
func (tr *ixTree) writeBitmap() error {
	if err := stageRuns(tr.t.o, tr.t.g, tr.bm.runs, 0, tr.bitmap); err != nil {
		return fmt.Errorf("ntfs: directory %d: writing the index $BITMAP: %w", tr.dir, err)
	}
	return nil
}

// bitmapAttr returns the record and attribute of the index $BITMAP (its
// first extent when non-resident).
func (tr *ixTree) bitmapAttr() (*Record, Attr, error) {
	rec, err := tr.t.record(tr.bmRec)
	if err != nil {
		return nil, Attr{}, err
	}
	a, ok, err := rec.FindAttr(AttrBitmap, i30)
	if err != nil || !ok {
		return nil, Attr{}, fmt.Errorf("ntfs: directory %d: index $BITMAP vanished (%v)", tr.dir, err)
	}
	return rec, a, nil
}
