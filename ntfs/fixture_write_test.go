package ntfs

import (
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// wtFixture decompresses a Windows-made fixture volume into a temp file.
func wtFixture(t *testing.T, rel, member string) string {
	t.Helper()
	src := testutil.SharedFixture(t, rel)
	p := testutil.Decompress(t, src, member)
	// Decompress may return a read-only path shared by tests: copy.
	dst := filepath.Join(t.TempDir(), "fixture.img")
	in, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	out.Close()
	return dst
}

// wtModelFromMount reads the tree through an ntfs-3g read-only mount.
func wtModelFromMount(t *testing.T, img string, up *UpCase) *wtModel {
	t.Helper()
	m := &wtModel{paths: map[string]bool{}, up: up}
	mp, unmount := wtMount(t, img, true)
	defer unmount()
	var walk func(rel string)
	walk = func(rel string) {
		es, err := os.ReadDir(filepath.Join(mp, rel))
		if err != nil {
			t.Fatalf("readdir %q: %v", rel, err)
		}
		for _, e := range es {
			if rel == "" && strings.HasPrefix(e.Name(), "$") {
				continue
			}
			p := wtJoin(rel, e.Name())
			m.paths[p] = e.IsDir()
			if e.IsDir() {
				walk(p)
			}
		}
	}
	walk("")
	return m
}

// TestWindowsFixtures runs Check --all on the Windows-made volumes, then
// random renames and moves with the same external verification as the
// property test.
func TestWindowsFixtures(t *testing.T) {
	for _, fx := range []struct{ rel, member string }{
		{"ntfs/charlie.dd.bz2", ""},
		{"ntfs/7-undel-ntfs.zip", "7-undel-ntfs/7-ntfs-undel.dd"},
	} {
		t.Run(filepath.Base(fx.rel), func(t *testing.T) {
			img := wtFixture(t, fx.rel, fx.member)
			rep := wtCheckAll(t, img)
			t.Logf("check --all: %d directories, %d entries, %d records", rep.Dirs, rep.Entries, rep.Records)
			w := wtWriter(t, img)
			m := wtModelFromMount(t, img, w.up)
			var ps []string
			for p := range m.paths {
				ps = append(ps, p)
			}
			sort.Strings(ps)
			t.Logf("%d paths, e.g. %v", len(ps), ps[:min(8, len(ps))])
			wtVerify(t, img, m)
			if t.Failed() {
				t.FailNow()
			}
			r := rand.New(rand.NewSource(*wtSeed))
			wtRandomRenames(t, w, img, r, m, 60, 20)
		})
	}
}
