package ntfs

import (
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var (
	wtGrow     = flag.Int("wt.grow", 260, "entries moved in and out in TestIndexGrowShrink")
	wtGrowFull = flag.Bool("wt.growfull", false, "TestIndexGrowShrink: verify with ntfs-3g and fls after every rename, not only when the tree changes shape")
)

// wtDepth is the number of levels of a directory's index (1: root only).
func wtDepth(t testing.TB, w *Writer, p string) (depth int, rootLarge bool) {
	t.Helper()
	tr := wtTree(t, w.begin(), p)
	n := tr.root
	depth = 1
	for n.internal {
		var err error
		if n, err = tr.childOf(n.entries[len(n.entries)-1]); err != nil {
			t.Fatal(err)
		}
		depth++
	}
	return depth, tr.root.internal
}

// TestIndexGrowShrink grows an empty directory by moving long-named files
// into it one at a time until its root has moved to an INDX block and the
// tree has three levels, then moves them all back out; the writer checks
// the touched directories after every rename, and ntfs-3g, fls and Check
// --all verify the volume whenever the tree changes shape.
func TestIndexGrowShrink(t *testing.T) {
	for _, geo := range [][]string{{"-s", "512", "-c", "4096"}, {"-s", "512", "-c", "512"}, {"-s", "512", "-c", "65536"}} {
		t.Run(strings.Join(geo, ""), func(t *testing.T) {
			v := wtMakeVolume(t, 128<<20, geo...)
			mp, unmount := wtMount(t, v.path, false)
			m := &wtModel{paths: map[string]bool{"src": true, "grow": true}}
			for _, d := range []string{"src", "grow"} {
				if err := os.Mkdir(filepath.Join(mp, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			r := rand.New(rand.NewSource(3))
			var names []string
			for i := 0; i < *wtGrow; i++ {
				// Long names fill blocks fast; neighbours differ in case
				// and in accents.
				n := fmt.Sprintf("%s %05d %s", wtNames[r.Intn(len(wtNames))], r.Intn(100000), strings.Repeat("ü", 60+r.Intn(100)))
				if i%7 == 0 {
					n = fmt.Sprintf("short%d", i)
				}
				names = append(names, n)
				if err := os.WriteFile(filepath.Join(mp, "src", n), nil, 0o644); err != nil {
					t.Fatal(err)
				}
				m.paths["src/"+n] = false
			}
			unmount()
			w := wtWriter(t, v.path)
			m.up = w.up
			wtVerify(t, v.path, m)
			maxDepth, moved := 1, false
			step := func(from, to string) {
				if _, err := w.Rename(from, to); err != nil {
					if testing.Verbose() {
						w.opts.NoVerify = true
						w.Rename(from, to)
						tx := w.begin()
						nums, _ := tx.resolve("grow")
						tr, _ := tx.tree(nums[len(nums)-1])
						t.Logf("after:\n%s %x", wtDump(tr, tr.root, ""), tr.bitmap)
					}
					t.Fatalf("rename %q -> %q: %v", from, to, err)
				}
				m.move(from, to)
				d, large := wtDepth(t, w, "grow")
				if d != maxDepth || large != moved || *wtGrowFull {
					t.Logf("grow: depth %d, root in INDX block %v, %d entries", d, large, len(m.children("grow")))
					maxDepth, moved = d, large
					wtVerify(t, v.path, m)
					if t.Failed() {
						t.FailNow()
					}
				}
			}
			deepest := 0
			for _, n := range names {
				step("src/"+n, "grow/"+n)
				deepest = max(deepest, maxDepth)
			}
			if deepest < 3 {
				t.Errorf("index of %d entries reached depth %d, want 3", len(names), deepest)
			}
			wtVerify(t, v.path, m)
			r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
			for _, n := range names {
				step("grow/"+n, "src/"+n)
			}
			if d, _ := wtDepth(t, w, "grow"); d > 2 {
				t.Errorf("empty directory still has depth %d", d)
			}
			wtVerify(t, v.path, m)
		})
	}
}
