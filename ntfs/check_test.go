package ntfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckDetects damages a healthy volume in one way at a time, through
// the writer's own staging with verification off, and expects Check to
// name the damage.
func TestCheckDetects(t *testing.T) {
	v := wtMakeVolume(t, 32<<20, "-s", "512", "-c", "4096")
	mp, unmount := wtMount(t, v.path, false)
	if err := os.Mkdir(filepath.Join(mp, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 120; i++ {
		os.WriteFile(filepath.Join(mp, "d", fmt.Sprintf("file %03d with a longer name.txt", i)), nil, 0o644)
	}
	unmount()
	healthy, err := os.ReadFile(v.path)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(t *testing.T, tx *tx) (*ixTree, *ixNode) {
		nums, err := tx.resolve("d")
		if err != nil {
			t.Fatal(err)
		}
		tr, err := tx.tree(nums[len(nums)-1])
		if err != nil {
			t.Fatal(err)
		}
		n := tr.root
		for n.internal {
			if n, err = tr.childOf(n.entries[0]); err != nil {
				t.Fatal(err)
			}
		}
		return tr, n
	}
	t.Run("read ahead", func(t *testing.T) {
		f := wtFile(t, v.path)
		w, err := newWriter(f, nil, v.size, WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		g, err := loadGeometry(w.r, w.size)
		if err != nil {
			t.Fatal(err)
		}
		c := newChecker(w, g)
		nums, err := c.t.resolve("d")
		if err != nil {
			t.Fatal(err)
		}
		c.dir(nums[len(nums)-1], nil)
		if len(c.rep.Problems) > 0 || c.rep.Entries != 120 {
			t.Fatalf("%d entries, problems %v", c.rep.Entries, c.rep.Problems)
		}
		if c.win.n == 0 {
			t.Error("120 records created in name order were read one at a time: no read-ahead")
		}
	})
	// The last leaf: its entries' records are read through the check's
	// MFT read-ahead (the 120 files were created in name order, so their
	// records are consecutive), the first leaf's one at a time.
	lastLeaf := func(t *testing.T, tx *tx) *ixNode {
		tr, _ := leaf(t, tx)
		n := tr.root
		for n.internal {
			var err error
			if n, err = tr.childOf(n.entries[len(n.entries)-1]); err != nil {
				t.Fatal(err)
			}
		}
		if len(n.entries) < 2 || strings.Contains(string16(n.entries[0].name), "file 00") {
			t.Fatalf("last leaf starts at %q", string16(n.entries[0].name))
		}
		return n
	}
	for _, tc := range []struct {
		name, want string
		damage     func(t *testing.T, tx *tx)
	}{
		{"sequence read ahead", "sequence", func(t *testing.T, tx *tx) {
			n := lastLeaf(t, tx)
			n.entries[0].ref += 1 << 48
			n.dirty = true
		}},
		{"link count read ahead", "link count", func(t *testing.T, tx *tx) {
			n := lastLeaf(t, tx)
			rec, err := tx.record(RefNum(n.entries[0].ref))
			if err != nil {
				t.Fatal(err)
			}
			rec.SetLinkCount(rec.LinkCount() + 1)
			tx.dirty(rec)
		}},
		{"order", "out of order", func(t *testing.T, tx *tx) {
			_, n := leaf(t, tx)
			n.entries[0], n.entries[1] = n.entries[1], n.entries[0]
			n.dirty = true
		}},
		{"sequence", "sequence", func(t *testing.T, tx *tx) {
			_, n := leaf(t, tx)
			n.entries[0].ref += 1 << 48
			n.dirty = true
		}},
		{"missing entry", "no index entry", func(t *testing.T, tx *tx) {
			tr, n := leaf(t, tx)
			e := n.entries[1]
			if err := tr.remove(e.name, e.ref); err != nil {
				t.Fatal(err)
			}
		}},
		{"link count", "link count", func(t *testing.T, tx *tx) {
			_, n := leaf(t, tx)
			rec, err := tx.record(RefNum(n.entries[0].ref))
			if err != nil {
				t.Fatal(err)
			}
			rec.SetLinkCount(rec.LinkCount() + 1)
			tx.dirty(rec)
		}},
		{"index bitmap", "index $BITMAP", func(t *testing.T, tx *tx) {
			tr, _ := leaf(t, tx)
			tr.bitmap[0] &^= 1
			tr.bmDirty = true
		}},
		{"cluster bitmap", "free in $Bitmap", func(t *testing.T, tx *tx) {
			tr, _ := leaf(t, tx)
			c, err := tx.clusters()
			if err != nil {
				t.Fatal(err)
			}
			c.set(tr.allocRuns[0].LCN, false)
			// Plant the damage past the writer's own preflight, which
			// would refuse to flush a $Bitmap that frees a live cluster.
			for i := range tx.claims.list {
				tx.claims.list[i].verified = true
			}
		}},
		{"child flag", "child flag", func(t *testing.T, tx *tx) {
			_, n := leaf(t, tx)
			n.internal = true
			for _, e := range n.entries {
				e.childVCN = 0
			}
			n.dirty = true
			// Encoded with child VCNs but the node header says leaf.
			defer func() { n.internal = false }()
			if err := tx.flush(); err != nil {
				t.Fatal(err)
			}
			for i := range tx.o.writes {
				w := tx.o.writes[i].data
				if string(w[:4]) == "INDX" && w[0x24] == 1 {
					w[0x24] = 0
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(v.path, healthy, 0o644); err != nil {
				t.Fatal(err)
			}
			f := wtFile(t, v.path)
			w, err := newWriter(f, f, v.size, WriterOptions{NoVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			if rep, err := w.Check(CheckOptions{All: true}); err != nil || len(rep.Problems) > 0 {
				t.Fatalf("healthy volume: %v %v", rep.Problems, err)
			}
			tx := w.begin()
			tc.damage(t, tx)
			if err := tx.flush(); err != nil {
				t.Fatal(err)
			}
			if err := w.commit(tx); err != nil {
				t.Fatal(err)
			}
			rep, err := Check(f, v.size, CheckOptions{Paths: []string{"d"}})
			if err != nil {
				t.Fatal(err)
			}
			all, err := Check(f, v.size, CheckOptions{All: true})
			if err != nil {
				t.Fatal(err)
			}
			reps := []*CheckReport{rep, all}
			if tc.name == "missing entry" {
				// Only the MFT scan of --all reaches a record that no
				// entry points to.
				reps = reps[1:]
			}
			for _, r := range reps {
				found := false
				for _, p := range r.Problems {
					found = found || strings.Contains(p.What, tc.want)
				}
				if !found {
					t.Errorf("problems %v lack %q", r.Problems, tc.want)
				}
			}
		})
	}
}

// TestCheckFixups tears one stride of a record: the check reports it.
func TestCheckFixups(t *testing.T) {
	v := wtMakeVolume(t, 32<<20, "-s", "512", "-c", "4096")
	mp, unmount := wtMount(t, v.path, false)
	os.WriteFile(filepath.Join(mp, "x"), nil, 0o644)
	unmount()
	f := wtFile(t, v.path)
	w, err := newWriter(f, f, v.size, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nums, err := w.begin().resolve("x")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := w.g.spans(w.g.mftRuns, int64(nums[1])*w.g.recSize, w.g.recSize)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xEE, 0xEE}, sp[0].off+510); err != nil {
		t.Fatal(err)
	}
	rep, err := Check(f, v.size, CheckOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range rep.Problems {
		found = found || strings.Contains(p.What, "update sequence")
	}
	if !found {
		t.Errorf("torn record not reported: %v", rep.Problems)
	}
}
