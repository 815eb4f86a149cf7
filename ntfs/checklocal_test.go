package ntfs

import (
	"bytes"
	"strings"
	"testing"
)

// These tests cover the check of a large index where a change edits it
// (checklocal.go): on the aged volume of testimages/build-aged.sh, whose
// WinSxS index is larger than wholeIndexCheck, a rename of pending.xml is
// refused when a node it edits is damaged, and a check of the ranges a
// change wrote finds damage in what it wrote.

const clSxS = "Windows/WinSxS"

// clTree loads WinSxS's index on im and fails unless it is large enough
// for the local check.
func clTree(t *testing.T, im *sdImage) *ixTree {
	t.Helper()
	w, err := newWriter(im.f, nil, im.size, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tr := wtTree(t, w.begin(), clSxS)
	if tr.allocSize <= wholeIndexCheck {
		t.Fatalf("the aged WinSxS index has %d bytes, not more than wholeIndexCheck (%d): this test no longer covers the local check", tr.allocSize, wholeIndexCheck)
	}
	return tr
}

// clNodeOf returns the INDX block holding name and the entry's position.
func clNodeOf(t *testing.T, tr *ixTree, name string) (*ixNode, int) {
	t.Helper()
	p, ok, err := tr.descend(encodeName(name), tr.t.up.Compare)
	if err != nil || !ok {
		t.Fatalf("%s not found in WinSxS (%v)", name, err)
	}
	s := p[len(p)-1]
	if s.n.vcn < 0 {
		t.Fatalf("%s is in the $INDEX_ROOT, not a block", name)
	}
	return s.n, s.i
}

// clEntryOff is the offset in n.raw of entry i.
func clEntryOff(n *ixNode, i int) int {
	off := 0x18 + n.entriesOff
	for j := 0; j < i; j++ {
		off += int(le16(n.raw[off+8:]))
	}
	return off
}

// clPatchBlock lets edit change a copy of block n (fixups applied), then
// protects it and writes it back.
func clPatchBlock(t *testing.T, im *sdImage, tr *ixTree, n *ixNode, edit func(raw []byte)) {
	t.Helper()
	raw := append([]byte(nil), n.raw...)
	edit(raw)
	if err := protectFixups(raw); err != nil {
		t.Fatal(err)
	}
	im.patchAt(t, tr.allocRuns, n.vcn*tr.vcnUnit, raw)
	if err := im.f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// clNeighbour is the position of an entry next to i in n other than i.
func clNeighbour(t *testing.T, n *ixNode, i int) int {
	t.Helper()
	if i+1 < len(n.entries)-1 {
		return i + 1
	}
	if i > 0 {
		return i - 1
	}
	t.Fatal("the block holds no other entry")
	return 0
}

func TestLocalIndexCheckRefusesDamageItEdits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		to     string // rename pending.xml to this
		damage func(t *testing.T, im *sdImage, tr *ixTree)
	}{
		{"neighbour's record sequence", "pending.xml.old", func(t *testing.T, im *sdImage, tr *ixTree) {
			n, i := clNodeOf(t, tr, "pending.xml")
			j := clNeighbour(t, n, i)
			clPatchBlock(t, im, tr, n, func(raw []byte) {
				raw[clEntryOff(n, j)+6] ^= 0x5a // the entry's reference: sequence number
			})
		}},
		{"neighbour's key parent", "pending.xml.old", func(t *testing.T, im *sdImage, tr *ixTree) {
			n, i := clNodeOf(t, tr, "pending.xml")
			j := clNeighbour(t, n, i)
			clPatchBlock(t, im, tr, n, func(raw []byte) {
				raw[clEntryOff(n, j)+0x10+6] ^= 0x33 // $FILE_NAME key: parent's sequence
			})
		}},
		{"neighbour's name out of order", "pending.xml.old", func(t *testing.T, im *sdImage, tr *ixTree) {
			n, i := clNodeOf(t, tr, "pending.xml")
			j := clNeighbour(t, n, i)
			clPatchBlock(t, im, tr, n, func(raw []byte) {
				off := clEntryOff(n, j) + 0x10 + fnMinLen
				raw[off], raw[off+1] = '~', 0 // sorts after every other name
			})
		}},
		{"torn block on the new name's path", "zzzz-pending.xml", func(t *testing.T, im *sdImage, tr *ixTree) {
			n, _ := clNodeOf(t, tr, "pending.xml")
			p, _, err := tr.descend(encodeName("zzzz-pending.xml"), tr.t.up.Compare)
			if err != nil {
				t.Fatal(err)
			}
			leaf := p[len(p)-1].n
			if leaf == n || leaf.vcn < 0 {
				t.Fatal("the new name lands in pending.xml's block: the test needs another one")
			}
			clPatchBlock(t, im, tr, leaf, func(raw []byte) {})
			// A torn write: the second sector's update sequence number
			// no longer matches the header's.
			b := make([]byte, 2)
			off := leaf.vcn*tr.vcnUnit + 2*512 - 2
			if err := readRuns(im.f, im.g, tr.allocRuns, off, b); err != nil {
				t.Fatal(err)
			}
			b[0] ^= 0xff
			im.patchAt(t, tr.allocRuns, off, b)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im := sdOpenPath(t, wtAged(t, "aged"))
			tr := clTree(t, im)
			tc.damage(t, im, tr)
			if err := im.f.Sync(); err != nil {
				t.Fatal(err)
			}
			re := clRenameRefused(t, im, clSxS+"/pending.xml", clSxS+"/"+tc.to)
			if !strings.Contains(re.Refusals[0].Structure, "WinSxS") {
				t.Errorf("refusal names %q, want the WinSxS index", re.Refusals[0].Structure)
			}
		})
	}
}

// TestLocalIndexCheckScope: in a large index, damage in a block the change
// does not edit does not refuse it (the documented scope: the nodes the
// change edits, each completely), the check of the written ranges passes,
// and the whole-directory check still reports the damage as it was.
func TestLocalIndexCheckScope(t *testing.T) {
	img := wtAged(t, "aged")
	im := sdOpenPath(t, img)
	tr := clTree(t, im)
	im.damageIndex(t, clSxS) // the leftmost leaf
	if err := im.f.Sync(); err != nil {
		t.Fatal(err)
	}
	leftmost := tr.root
	for leftmost.internal {
		var err error
		if leftmost, err = tr.childOf(leftmost.entries[0]); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := clNodeOf(t, tr, "pending.xml"); n.vcn == leftmost.vcn {
		t.Fatal("pending.xml is in the leftmost leaf: the test needs it elsewhere")
	}
	whole := func() []Problem {
		rep, err := Check(im.f, im.size, CheckOptions{Paths: []string{clSxS}})
		if err != nil {
			t.Fatal(err)
		}
		return rep.Problems
	}
	damage := whole()
	if len(damage) == 0 {
		t.Fatal("the whole-directory check does not see the damage")
	}
	w, err := OpenWriter(im.f, im.f, im.size, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := w.Rename(clSxS+"/pending.xml", clSxS+"/pending.xml.old")
	if err != nil {
		t.Fatalf("rename next to damage it does not touch: %v", err)
	}
	rep, err := Check(im.f, im.size, CheckOptions{Ranges: rs})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 || rep.Entries == 0 {
		t.Errorf("check of the written ranges: %d entries, problems %v", rep.Entries, rep.Problems)
	}
	if got := whole(); len(got) != len(damage) {
		t.Errorf("whole check after the rename: %v, before: %v", got, damage)
	}
}

// TestCheckRangesFindsDamageInWrittenBlock: a check of the ranges a rename
// wrote passes, then finds a name broken afterwards in the block written.
func TestCheckRangesFindsDamageInWrittenBlock(t *testing.T) {
	img := wtAged(t, "aged")
	im := sdOpenPath(t, img)
	clTree(t, im)
	w, err := OpenWriter(im.f, im.f, im.size, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := w.Rename(clSxS+"/pending.xml", clSxS+"/pending.xml.old")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Check(im.f, im.size, CheckOptions{Ranges: rs})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 || rep.Dirs == 0 || rep.Entries == 0 {
		t.Fatalf("check of the written ranges: %d dirs, %d entries, problems %v", rep.Dirs, rep.Entries, rep.Problems)
	}
	full, err := Check(im.f, im.size, CheckOptions{Paths: []string{clSxS}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries*4 > full.Entries {
		t.Errorf("the ranges check read %d of WinSxS's %d entries: not local", rep.Entries, full.Entries)
	}
	tr := clTree(t, im)
	n, i := clNodeOf(t, tr, "pending.xml.old")
	j := clNeighbour(t, n, i)
	clPatchBlock(t, im, tr, n, func(raw []byte) {
		raw[clEntryOff(n, j)+6] ^= 0x5a
	})
	rep, err = Check(im.f, im.size, CheckOptions{Ranges: rs})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) == 0 {
		t.Error("the check of the written ranges misses damage in the block written")
	}
	for _, p := range rep.Problems {
		t.Logf("found: %s", p)
	}
}

// TestBlocksInUnmappedAllocation: an index allocation whose runs do not map
// onto the volume (past its end, or sparse) is an error for the ranges
// check, never a silent check of the root alone.
func TestBlocksInUnmappedAllocation(t *testing.T) {
	img := wtTinyImage(t)
	g, err := loadGeometry(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	for _, runs := range [][]Run{
		{{LCN: g.size/g.cluster + 10, Length: 4}},
		{{Sparse: true, Length: 4}},
	} {
		tr := &ixTree{t: &tx{g: g}, allocRuns: runs, allocSize: 4 * g.cluster, blockSize: 4096, vcnUnit: g.cluster}
		if vcns, err := tr.blocksIn([]Range{{Off: 0, Len: g.size}}); err == nil {
			t.Errorf("runs %+v: blocks %v, want an error", runs, vcns)
		}
	}
}
