package ntfs

import (
	"fmt"
	"sort"
)

// This file checks a directory index where a change edits it, instead of
// whole: the $INDEX_ROOT and the INDX blocks a change wrote (CheckOptions
// Ranges) or is about to write (tx.soundNodes), each completely. In a
// B+ tree whose nodes each hold their entries in order, a node is in its
// place when a lookup from the root of its first and of its last entry ends
// in it; with that, a node's order, its entries' back-links and its child
// references are all a change to it can depend on.

// nodes checks directory d at index nodes vcns (-1: the $INDEX_ROOT): node
// order and flags, every entry against the record it names, the child
// references of an internal node against the allocation and the index
// $BITMAP, that a lookup of the node's first and last entries ends in the
// node, and the index allocation's clusters against $Bitmap. A directory
// whose allocation is at most wholeIndexCheck is checked whole (dir).
func (c *checker) nodes(d uint64, vcns []int64) {
	tr, err := c.t.tree(d)
	if err != nil || tr.allocSize <= c.t.w.wholeIndex {
		c.dir(d, nil) // reports a tree that does not load
		return
	}
	drec := c.dirRecord(d)
	if drec == nil {
		return
	}
	vcns = append([]int64(nil), vcns...)
	sort.Slice(vcns, func(i, j int) bool { return vcns[i] < vcns[j] })
	indexed := map[nameKey]uint64{}
	for i, vcn := range vcns {
		if i > 0 && vcn == vcns[i-1] {
			continue
		}
		n := tr.root
		if vcn >= 0 && !tr.bitSet(tr.blockBit(vcn)) {
			c.freeBlock(d, tr, vcn)
			continue
		}
		if vcn >= 0 {
			if n, err = tr.load(vcn); err != nil {
				c.problem(d, "%v", err)
				continue
			}
		}
		c.node(d, drec, tr, n, indexed)
	}
	if tr.allocRuns != nil {
		c.owned(d, tr.allocRuns, nil)
	}
}

// node checks one index node of directory d completely (see nodes).
func (c *checker) node(d uint64, drec *Record, tr *ixTree, n *ixNode, indexed map[nameKey]uint64) {
	var first, prev *ixEntry
	children := map[int64]bool{}
	for _, e := range n.entries {
		if n.internal {
			c.childRef(d, tr, n, e, children)
		}
		if e.end {
			continue
		}
		c.rep.Entries++
		c.order(d, prev, e)
		if first == nil {
			first = e
		}
		prev = e
		c.entry(d, drec, e, indexed)
	}
	for _, e := range []*ixEntry{first, prev} {
		if e == nil {
			break
		}
		p, ok, err := tr.descend(e.name, c.t.up.Compare)
		switch {
		case err != nil:
			c.problem(d, "%s: looking up %q from the root: %v", nodeName(n), string16(e.name), err)
		case !ok || p[len(p)-1].n != n:
			c.problem(d, "%s: a lookup of its entry %q from the root does not end in it (the node is unreachable, or out of order with its parent)", nodeName(n), string16(e.name))
		}
		if first == prev {
			break
		}
	}
}

// childRef checks an internal entry's child reference: a whole block
// inside the index allocation, marked in use in the index $BITMAP, not
// the node itself and not a block another entry of the node (seen) points
// to: each entry's subtree is its own.
func (c *checker) childRef(d uint64, tr *ixTree, n *ixNode, e *ixEntry, seen map[int64]bool) {
	vcn := e.childVCN
	if e.child != nil {
		vcn = e.child.vcn
	}
	off := vcn * tr.vcnUnit
	dup := seen[vcn]
	seen[vcn] = true
	switch {
	case vcn == n.vcn:
		c.problem(d, "%s: an entry's child reference points back to the block itself", nodeName(n))
	case dup:
		c.problem(d, "%s: child block VCN %d is referenced by two of its entries", nodeName(n), vcn)
	// A VCN past allocSize/vcnUnit would wrap the multiplication around
	// 2^64 onto the offset of a real block.
	case vcn < 0 || vcn > tr.allocSize/tr.vcnUnit || off%tr.blockSize != 0 || off+tr.blockSize > tr.allocSize:
		c.problem(d, "%s: child block VCN %d outside the index allocation of %d bytes", nodeName(n), vcn, tr.allocSize)
	case !tr.bitSet(tr.blockBit(vcn)):
		c.problem(d, "%s: child block VCN %d not marked in use in the index $BITMAP", nodeName(n), vcn)
	}
}

// freeBlock checks that block vcn, clear in the index $BITMAP, which a
// change is about to take for a new node, is not a live node all the same:
// when its bytes are an INDX block of that VCN, a lookup of its first and
// last names from the root must not lead to it. A block Windows freed
// keeps its old names, which live elsewhere now; a lookup leading into it
// means the bit was cleared by damage and a parent the change does not
// edit still points to it.
func (c *checker) freeBlock(d uint64, tr *ixTree, vcn int64) {
	off := vcn * tr.vcnUnit
	if vcn < 0 || vcn > tr.allocSize/tr.vcnUnit || off%tr.blockSize != 0 || off+tr.blockSize > tr.allocSize {
		return // new space: no index bytes before
	}
	buf := make([]byte, tr.blockSize)
	if err := readRuns(c.t.o, c.t.g, tr.allocRuns, off, buf); err != nil {
		c.problem(d, "index block VCN %d: %v", vcn, err)
		return
	}
	n, err := parseIndx(buf, vcn)
	if err != nil || len(n.entries) < 2 {
		return // never a node, or no name to look up
	}
	for _, e := range []*ixEntry{n.entries[0], n.entries[len(n.entries)-2]} {
		if tr.leadsTo(e.name, vcn) {
			c.problem(d, "index block VCN %d is free in the index $BITMAP, but a lookup of its entry %q from the root leads to it (a live node marked free)", vcn, string16(e.name))
			return
		}
	}
}

// leadsTo reports whether a lookup of name from the root reaches a child
// reference to block vcn. A lookup that meets damage first stops: what it
// would have reached is not known.
func (tr *ixTree) leadsTo(name []uint16, vcn int64) bool {
	n := tr.root
	for depth := 0; n.internal && depth <= 64; depth++ {
		i := 0
		for ; i < len(n.entries)-1; i++ {
			c := tr.t.up.Compare(name, n.entries[i].name)
			if c == 0 {
				return false // found above the block
			}
			if c < 0 {
				break
			}
		}
		e := n.entries[i]
		child := e.childVCN
		if e.child != nil {
			child = e.child.vcn
		}
		if child == vcn {
			return true
		}
		var err error
		if n, err = tr.childOf(e); err != nil {
			return false
		}
	}
	return false
}

// nodeName names an index node for a problem.
func nodeName(n *ixNode) string {
	if n.vcn < 0 {
		return "$INDEX_ROOT"
	}
	return fmt.Sprintf("index block VCN %d", n.vcn)
}

// ranges checks what the volume byte ranges rs touch (CheckOptions.Ranges):
// each directory whose record they touch, at its $INDEX_ROOT and at every
// INDX block they overlap.
func (c *checker) ranges(rs []Range) error {
	dirs, err := c.t.g.dirsTouched(c.t.o, rs)
	if err != nil {
		return err
	}
	for _, d := range dirs {
		vcns := []int64{-1}
		if tr, err := c.t.tree(d); err == nil && tr.allocRuns != nil {
			in, err := tr.blocksIn(rs)
			if err != nil {
				// Which blocks were written cannot be told: say so rather
				// than check the root alone.
				c.problem(d, "index allocation: %v", err)
			}
			// A block the change freed (clear in the index $BITMAP) is no
			// longer part of the index.
			for _, vcn := range in {
				if tr.bitSet(tr.blockBit(vcn)) {
					vcns = append(vcns, vcn)
				}
			}
		}
		c.nodes(d, vcns)
	}
	return nil
}

// blocksIn returns the VCNs of the index blocks that volume ranges rs
// overlap, from the allocation's runs (no block is read); an error when
// the runs do not map the allocation onto the volume.
func (tr *ixTree) blocksIn(rs []Range) ([]int64, error) {
	g := tr.t.g
	spans, err := g.spans(tr.allocRuns, 0, tr.allocSize)
	if err != nil {
		return nil, err
	}
	var out []int64
	var logical int64
	for _, s := range spans {
		for _, r := range rs {
			lo, hi := max(r.Off, s.off), min(r.Off+r.Len, s.off+s.n)
			if lo >= hi {
				continue
			}
			for b := (logical + lo - s.off) / tr.blockSize; b <= (logical+hi-1-s.off)/tr.blockSize; b++ {
				out = append(out, b*tr.blockSize/tr.vcnUnit)
			}
		}
		logical += s.n
	}
	return out, nil
}
