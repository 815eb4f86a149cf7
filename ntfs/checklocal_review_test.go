package ntfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// These tests are an adversarial second look at the check of a large index
// at the nodes a change edits (checklocal.go), on the aged WinSxS.

// rvLeaves returns every leaf of tr with its parent.
func rvLeaves(t *testing.T, tr *ixTree) (leaves []*ixNode, parent map[*ixNode]*ixNode) {
	t.Helper()
	parent = map[*ixNode]*ixNode{}
	var walk func(n *ixNode, depth int)
	walk = func(n *ixNode, depth int) {
		if depth > 64 {
			t.Fatal("index loop")
		}
		if !n.internal {
			leaves = append(leaves, n)
			return
		}
		for _, e := range n.entries {
			c, err := tr.childOf(e)
			if err != nil {
				t.Fatal(err)
			}
			parent[c] = n
			walk(c, depth+1)
		}
	}
	walk(tr.root, 0)
	return leaves, parent
}

// rvClearIndexBit clears bit i of the index $BITMAP of tr's directory.
func rvClearIndexBit(t *testing.T, im *sdImage, tr *ixTree, i int64) {
	t.Helper()
	if !tr.bmResident {
		b := []byte{tr.bitmap[i/8] &^ (1 << (i % 8))}
		im.patchAt(t, tr.bm.runs, i/8, b)
		return
	}
	im.editRecord(t, tr.bmRec, false, func(b []byte) {
		r := &Record{Num: tr.bmRec, Data: b}
		a, ok, err := r.FindAttr(AttrBitmap, i30)
		if err != nil || !ok {
			t.Fatalf("index $BITMAP not in record %d (%v)", tr.bmRec, err)
		}
		a.Value()[i/8] &^= 1 << (i % 8)
	})
}

// TestReviewLocalSplitIntoLiveBlock: the index $BITMAP says a live leaf
// (referenced by a parent the change does not edit) is free. A rename whose
// new name splits a full leaf takes a new block: the lowest clear bit, the
// live leaf. Writing there would overwrite the names it holds; the change
// must be refused with nothing written (the whole check refuses it too).
// With -wt.agedlong it runs on the 4Kn volume too (its index $BITMAP is
// non-resident).
func TestReviewLocalSplitIntoLiveBlock(t *testing.T) {
	kinds := []string{"aged"}
	if *wtAgedLong {
		kinds = append(kinds, "4kn")
	}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) { rvSplitIntoLiveBlock(t, kind, true) })
		t.Run(kind+"/undamaged", func(t *testing.T) { rvSplitIntoLiveBlock(t, kind, false) })
	}
}

// rvSplitIntoLiveBlock renames pending.xml to a long name that splits a
// full leaf, after marking a live leaf free when damage is set (refused,
// nothing written), else on the volume as built: the rename then goes
// through and ntfs-3g, sleuthkit and the whole check find nothing wrong.
func rvSplitIntoLiveBlock(t *testing.T, kind string, damage bool) {
	img := wtAged(t, kind)
	im := sdOpenPath(t, img)
	tr := clTree(t, im)
	leaves, parent := rvLeaves(t, tr)
	src, _ := clNodeOf(t, tr, "pending.xml")
	full, newName := rvFullLeaf(t, tr, leaves, src)
	var live *ixNode
	for _, n := range leaves {
		if n != full && n != src && parent[n] != parent[full] && parent[n] != parent[src] {
			live = n
			break
		}
	}
	if live == nil {
		t.Fatal("no leaf under another parent")
	}
	if !damage {
		w := wtWriter(t, img)
		rs, err := w.Rename(clSxS+"/pending.xml", clSxS+"/"+newName)
		if err != nil {
			t.Fatalf("rename that splits VCN %d: %v", full.vcn, err)
		}
		if after := clTree(t, sdOpenPath(t, img)); after.allocSize == tr.allocSize {
			t.Error("the rename did not take a new block")
		}
		rep, err := w.Check(CheckOptions{Ranges: rs})
		if err != nil || len(rep.Problems) != 0 {
			t.Errorf("check of the written ranges: %v %v", rep, err)
		}
		wtVerifyTools(t, img)
		return
	}
	t.Logf("splitting VCN %d (%d of %d bytes), live leaf VCN %d marked free", full.vcn, full.used(), tr.nodeCap(full), live.vcn)
	rvClearIndexBit(t, im, tr, tr.blockBit(live.vcn))
	if err := im.f.Sync(); err != nil {
		t.Fatal(err)
	}
	rep, err := Check(im.f, im.size, CheckOptions{Paths: []string{clSxS}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) == 0 {
		t.Fatal("the whole-directory check does not see the live block marked free")
	}
	clRenameRefused(t, im, clSxS+"/pending.xml", clSxS+"/"+newName)
}

// TestReviewRangesFindParentOfExtensionFileName: the aged SOFTWARE hive
// has its $FILE_NAME in an extension record (ntfs-3g moved it there). A
// write that changes its size rewrites the size copy in its parent's index
// entry but not the parent's record: the ranges must still name the parent
// (found through the $FILE_NAME of the extension record written), or the
// check after the write never looks at the index block it wrote.
func TestReviewRangesFindParentOfExtensionFileName(t *testing.T) {
	img := wtAged(t, "aged")
	const hp = "Windows/System32/config/SOFTWARE"
	// A real config folder holds dozens of hives, logs and transaction
	// files: its index has INDX blocks, and SOFTWARE's entry is in one.
	mnt, umount := wtMount(t, img, false)
	for i := 0; i < 60; i++ {
		p := filepath.Join(mnt, "Windows/System32/config", fmt.Sprintf("SOFTWARE.%02d.TMContainer00000000000000000001.regtrans-ms", i))
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	umount()
	w := wtWriter(t, img)
	if p, _, err := wtTree(t, w.begin(), "Windows/System32/config").descend(encodeName("SOFTWARE"), w.up.Compare); err != nil || p[len(p)-1].n.vcn < 0 {
		t.Fatalf("SOFTWARE's entry is not in an INDX block (%v): the test no longer covers a parent record left unwritten", err)
	}
	base := wtResolve(t, w.begin(), hp)
	if fns, err := base.fileNames(); err != nil || len(fns) != 0 {
		t.Fatalf("the aged hive's base record holds %d $FILE_NAMEs (%v): the test no longer covers one in an extension record", len(fns), err)
	}
	config := wtNum(t, w, "Windows/System32/config")
	f, err := w.OpenData(hp)
	if err != nil {
		t.Fatal(err)
	}
	size, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 4096), size); err != nil {
		t.Fatal(err)
	}
	rs, err := f.Commit()
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := w.DirsTouchedBy(rs)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range dirs {
		found = found || d == config
	}
	if !found {
		t.Errorf("the ranges of a size change of %s touch directories %v, not its parent (record %d) whose index entry they rewrote", hp, dirs, config)
	}
}

// TestReviewLocalChildVCNWraps: an internal node the rename edits holds a
// child VCN so large that VCN times the bytes per VCN wraps around 2^64 to
// the offset of a real block. The node is checked completely, so the
// reference is found outside the allocation and the rename refused.
func TestReviewLocalChildVCNWraps(t *testing.T) {
	im := sdOpenPath(t, wtAged(t, "aged"))
	tr := clTree(t, im)
	// An internal block with at least four names: the second one is
	// renamed (taken out of this node: a successor replaces it), another
	// (the last) gets the wrapping child reference, off the rename's paths.
	in := rvInternal(t, tr, 5)
	src, bad := 1, len(in.entries)-2
	name := string16(in.entries[src].name)
	wrap := int64(1) << 62 / tr.vcnUnit * 4 // 2^64 / vcnUnit
	clPatchBlock(t, im, tr, in, func(raw []byte) {
		off := clEntryOff(in, bad)
		l := int(le16(raw[off+8:]))
		putLE64(raw[off+l-8:], uint64(in.entries[bad].childVCN+wrap))
	})
	if err := im.f.Sync(); err != nil {
		t.Fatal(err)
	}
	clRenameRefused(t, im, clSxS+"/"+name, clSxS+"/"+name+".old")
}

// clRenameRefused renames from to to on im and fails unless the rename is
// refused for a damaged index with nothing written.
func clRenameRefused(t *testing.T, im *sdImage, from, to string) *RefusedError {
	t.Helper()
	before := testutil.SHA256File(t, im.path)
	cw := &sdCountingWriter{f: im.f}
	w, err := OpenWriter(im.f, cw, im.size, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Rename(from, to)
	re := sdWantRefused(t, err, RefusalIndex)
	if cw.n != 0 {
		t.Errorf("%d writes reached the image", cw.n)
	}
	if after := testutil.SHA256File(t, im.path); after != before {
		t.Error("the image changed")
	}
	return re
}

// TestReviewLocalDuplicateChild: an internal node the rename edits has two
// entries pointing to the same child block (the subtree of one of them is
// lost). The node is checked completely, so the rename is refused.
func TestReviewLocalDuplicateChild(t *testing.T) {
	im := sdOpenPath(t, wtAged(t, "aged"))
	tr := clTree(t, im)
	in := rvInternal(t, tr, 5)
	src, bad := 1, len(in.entries)-2
	name := string16(in.entries[src].name)
	clPatchBlock(t, im, tr, in, func(raw []byte) {
		off := clEntryOff(in, bad)
		l := int(le16(raw[off+8:]))
		putLE64(raw[off+l-8:], uint64(in.entries[0].childVCN))
	})
	if err := im.f.Sync(); err != nil {
		t.Fatal(err)
	}
	clRenameRefused(t, im, clSxS+"/"+name, clSxS+"/"+name+".old")
}

// rvInternal returns an internal INDX block (not the root) of tr with at
// least n entries, END included.
func rvInternal(t *testing.T, tr *ixTree, n int) *ixNode {
	t.Helper()
	level := []*ixNode{tr.root}
	for depth := 0; len(level) > 0 && depth < 8; depth++ {
		var next []*ixNode
		for _, p := range level {
			for _, e := range p.entries {
				c, err := tr.childOf(e)
				if err != nil {
					t.Fatal(err)
				}
				if !c.internal {
					continue
				}
				if len(c.entries) >= n {
					return c
				}
				next = append(next, c)
			}
		}
		level = next
	}
	t.Fatalf("no internal INDX block with %d entries", n)
	return nil
}

// rvFullLeaf returns a leaf of tr other than src that a rename to the
// returned long name (255 characters, sorting right after the leaf's first
// name) puts over its capacity: the leaf splits.
func rvFullLeaf(t *testing.T, tr *ixTree, leaves []*ixNode, src *ixNode) (*ixNode, string) {
	t.Helper()
	for _, n := range leaves {
		if n == src || n.used()+600 <= tr.nodeCap(n) || len(n.entries) < 3 {
			continue
		}
		x := string16(n.entries[0].name)
		if len(x) >= 250 {
			continue
		}
		name := x + strings.Repeat("0", 255-len(x))
		p, _, err := tr.descend(encodeName(name), tr.t.up.Compare)
		if err != nil || p[len(p)-1].n != n {
			continue
		}
		return n, name
	}
	t.Fatal("no leaf of the aged WinSxS is full enough to split")
	return nil, ""
}

// TestReviewLocalSplitParentDamaged: the rename's new name splits a full
// leaf, so the median goes up into the leaf's parent. The parent holds
// neither name, but the change rewrites it: damage there (an entry whose
// record reference has the wrong sequence) refuses the rename.
func TestReviewLocalSplitParentDamaged(t *testing.T) {
	im := sdOpenPath(t, wtAged(t, "aged"))
	tr := clTree(t, im)
	leaves, parent := rvLeaves(t, tr)
	src, _ := clNodeOf(t, tr, "pending.xml")
	full, newName := rvFullLeaf(t, tr, leaves, src)
	p := parent[full]
	if p == parent[src] || p.vcn < 0 || len(p.entries) < 3 {
		t.Fatalf("the full leaf's parent (VCN %d) is pending.xml's or the root", p.vcn)
	}
	// An entry of the parent away from the full leaf's pointer.
	bad := 0
	if p.entries[0].child == full {
		bad = len(p.entries) - 2
	}
	clPatchBlock(t, im, tr, p, func(raw []byte) {
		raw[clEntryOff(p, bad)+6] ^= 0x5a
	})
	if err := im.f.Sync(); err != nil {
		t.Fatal(err)
	}
	clRenameRefused(t, im, clSxS+"/pending.xml", clSxS+"/"+newName)
}
