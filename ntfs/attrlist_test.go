package ntfs

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"
)

// TestAttributeListDirectory: ntfs-3g gives a directory an
// $ATTRIBUTE_LIST (its $INDEX_ROOT moves to an extension record) when
// files are created in several directories in turn. The writer must read
// such directories, insert into and delete from their index, and rename
// the directory itself (rewriting its attribute list).
func TestAttributeListDirectory(t *testing.T) {
	v := wtMakeVolume(t, 256<<20, "-s", "512", "-c", "4096")
	m := &wtModel{paths: map[string]bool{}}
	// This build (the property test's layout, seed 1, 3000 files) is
	// known to give "two/deep" an attribute list.
	dirs := []string{"one", "two", "two/deep", "two/deep/er", "big"}
	wtBuild(t, v.path, rand.New(rand.NewSource(1)), m, dirs, 3000)
	w := wtWriter(t, v.path)
	m.up = w.up
	m.byDir = nil
	var withAL []string
	tx := w.begin()
	for _, d := range dirs {
		rec := wtResolve(t, tx, d)
		if _, ok, _ := rec.FindAttr(AttrAttributeList, ""); ok {
			withAL = append(withAL, d)
		}
	}
	if len(withAL) == 0 {
		t.Fatal("ntfs-3g gave no directory an attribute list; the test no longer covers it")
	}
	t.Logf("directories with an attribute list: %v", withAL)
	wtVerify(t, v.path, m)
	r := rand.New(rand.NewSource(11))
	al := withAL[0]
	var files []string
	for p, d := range m.paths {
		if !d {
			files = append(files, p)
		}
	}
	sort.Strings(files)
	for i := 0; i < 40; i++ {
		from := files[r.Intn(len(files))]
		if _, ok := m.paths[from]; !ok {
			continue
		}
		to := fmt.Sprintf("%s/moved %d %d.txt", al, i, r.Intn(1000))
		if _, err := w.Rename(from, to); err != nil {
			t.Fatalf("rename %q -> %q: %v", from, to, err)
		}
		m.move(from, to)
	}
	// The directory with the attribute list itself, renamed twice.
	for _, to := range []string{al + " renamed with a longer name", "zz"} {
		if _, err := w.Rename(al, to); err != nil {
			t.Fatalf("rename %q -> %q: %v", al, to, err)
		}
		m.move(al, to)
		al = to
	}
	wtVerify(t, v.path, m)
}
