package journal_test

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
	"github.com/wuoffline/wuoffline/journal"
	"github.com/wuoffline/wuoffline/ntfs"
)

// unitSwitch forwards the NTFS writer's writes to the current unit.
type unitSwitch struct{ cur io.WriterAt }

func (s *unitSwitch) WriteAt(p []byte, off int64) (int, error) { return s.cur.WriteAt(p, off) }

// ntfsNames lists every name under the root of an ntfs-3g read-only
// mount, stat-ing each one (a B-tree lookup in ntfs-3g): an index entry
// that does not lead to its record fails here.
func ntfsNames(t *testing.T, img string) []string {
	t.Helper()
	mp, unmount := testutil.MountNTFS(t, img, true)
	defer unmount()
	var names []string
	var walk func(rel string)
	walk = func(rel string) {
		es, err := os.ReadDir(filepath.Join(mp, rel))
		if err != nil {
			t.Fatalf("ntfs-3g readdir %q: %v", rel, err)
		}
		for _, e := range es {
			p := filepath.Join(rel, e.Name())
			if rel == "" && strings.HasPrefix(e.Name(), "$") {
				continue
			}
			st, err := os.Lstat(filepath.Join(mp, p))
			if err != nil {
				t.Fatalf("ntfs-3g: readdir lists %q but stat fails: %v", p, err)
			}
			names = append(names, p)
			if st.IsDir() {
				walk(p)
			}
		}
	}
	walk("")
	sort.Strings(names)
	return names
}

// checkVolume runs the independent checks (ntfsfix -n, an ntfs-3g
// read-only mount that stats every name) and our own full check, and
// returns the names.
func checkVolume(t *testing.T, img string) []string {
	t.Helper()
	if out, err := exec.Command("ntfsfix", "-n", img).CombinedOutput(); err != nil {
		t.Fatalf("ntfsfix -n: %v\n%s", err, out)
	}
	names := ntfsNames(t, img)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	rep, err := ntfs.Check(f, st.Size(), ntfs.CheckOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("ntfs.Check: %v", rep.Problems)
	}
	return names
}

// ntfsFix is a fix on a volume made by mkntfs and ntfs-3g (a \Windows
// with SoftwareDistribution, Temp, and a System32 large enough for a
// non-resident index holding catroot2): three renames through ntfs.Writer
// on an overlay, each its own unit, committed with CommitOn. It returns
// the image, its journal, the open image and the units.
func ntfsFix(t *testing.T) (img, path string, f *os.File, units []*journal.UnitWriter, groups [][]int) {
	t.Helper()
	testutil.RequireRoot(t)
	for _, tool := range []string{"mkntfs", "ntfsfix", "ntfs-3g"} {
		testutil.RequireTool(t, tool)
	}
	dir := t.TempDir()
	img = filepath.Join(dir, "vol.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 32<<20); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "mkntfs", "-F", "-Q", "-q", "-s", "512", "-c", "4096", "-L", "win", img)
	mp, unmount := testutil.MountNTFS(t, img, false)
	for _, d := range []string{"Windows/SoftwareDistribution/Download", "Windows/System32/catroot2", "Windows/Temp"} {
		if err := os.MkdirAll(filepath.Join(mp, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := []string{"Windows/SoftwareDistribution/Download/a.cab", "Windows/System32/catroot2/edb.log"}
	for i := range 60 {
		files = append(files, fmt.Sprintf("Windows/System32/driver%03d.sys", i))
	}
	for i, p := range files {
		if err := os.WriteFile(filepath.Join(mp, p), []byte(strings.Repeat("x", 100*(i%5+1))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	unmount()
	checkVolume(t, img)

	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	size := st.Size()
	o := journal.NewOverlay(f, size)
	o.SetAlign(512)
	sw := &unitSwitch{cur: o}
	w, err := ntfs.OpenWriter(o, sw, size, ntfs.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ntfsRenames {
		u := o.Unit("rename " + r[0])
		sw.cur = u
		if _, err := w.Rename(r[0], r[1]); err != nil {
			t.Fatal(err)
		}
		units = append(units, u)
	}
	groups = o.Groups()
	h := journal.Header{ID: journal.VolumeID{Serial: 0xABCD, Size: size, Name: "vol.img"}, Target: img, Tool: "test", Space: journal.SpaceVolume}
	path, err = journal.CommitOn(dir, h, o, f)
	if err != nil {
		t.Fatal(err)
	}
	return img, path, f, units, groups
}

// ntfsRenames are the fix's renames.
var ntfsRenames = [][2]string{
	{`\Windows\SoftwareDistribution`, `\Windows\SoftwareDistribution.old.1`},
	{`\Windows\System32\catroot2`, `\Windows\System32\catroot2.old.1`},
	{`\Windows\Temp`, `\Windows\Temp.old.1`}, // the index of \Windows as the first: its group
}

// TestNTFSUndoRecreated is the fix, Windows boots, undo case: after the
// fix "Windows" recreates SoftwareDistribution (an ntfs-3g mkdir of the
// old name, which rewrites the \Windows index the first rename wrote).
// Undo leaves the rename of SoftwareDistribution whole, and the unit
// sharing bytes with it, restores the other, and the volume passes
// ntfsfix -n, an ntfs-3g read-only mount that stats every name, and
// ntfs.Check: no record named one thing while its index says another.
func TestNTFSUndoRecreated(t *testing.T) {
	img, path, f, units, groups := ntfsFix(t)
	sdGroup := map[int]bool{}
	for _, g := range groups {
		if slices.Contains(g, units[0].ID()) {
			for _, u := range g {
				sdGroup[u] = true
			}
		}
	}
	// The renames in \Windows share its MFT record (the index root of a
	// small directory): one group; catroot2's is another.
	if !sdGroup[units[2].ID()] || sdGroup[units[1].ID()] {
		t.Fatalf("groups of units %v: want the \\Windows renames together, catroot2 apart", groups)
	}
	names := checkVolume(t, img)
	for _, want := range []string{"Windows/SoftwareDistribution.old.1", "Windows/System32/catroot2.old.1"} {
		if !slices.Contains(names, want) {
			t.Fatalf("after the fix, %s missing: %v", want, names)
		}
	}

	// Windows boots and recreates SoftwareDistribution.
	mp, unmount := testutil.MountNTFS(t, img, false, "noatime")
	if err := os.MkdirAll(filepath.Join(mp, "Windows/SoftwareDistribution/DataStore"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mp, "Windows/SoftwareDistribution/DataStore/DataStore.edb"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	unmount()

	rep, err := journal.UndoOn(path, f)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Complete() || rep.UnitsLeft != 2 || rep.UnitsDone != 1 {
		t.Fatalf("undo: %s", rep.Summary())
	}
	for _, u := range rep.Units {
		left := u.Outcome == journal.ChangedSince || u.Outcome == journal.Left
		if sdGroup[idOf(units, u.Label)] != left {
			t.Errorf("unit %q: %s (%s)", u.Label, u.Outcome, u.Why)
		}
		if left && (u.Why == "" || u.Advice == "") {
			t.Errorf("unit %q left without saying why and what to do", u.Label)
		}
	}
	names = checkVolume(t, img)
	for _, n := range []string{"Windows/SoftwareDistribution", "Windows/SoftwareDistribution.old.1", "Windows/SoftwareDistribution/DataStore/DataStore.edb",
		"Windows/Temp.old.1", "Windows/System32/catroot2/edb.log"} {
		if !slices.Contains(names, n) {
			t.Errorf("after undo %s is missing: %v", n, names)
		}
	}
	if slices.Contains(names, "Windows/System32/catroot2.old.1") || slices.Contains(names, "Windows/Temp") {
		t.Errorf("after undo: %v", names)
	}
}

// TestNTFSUndoDamagedJournal: the journal of an NTFS fix gets a flipped
// byte or is cut, at random places (more with -long); undo restores only
// what the journal still describes whole, reports the damage as a
// DamagedError (a flip in the commit mark excepted: it loses nothing),
// and the volume always passes ntfsfix -n, an ntfs-3g read-only mount
// that stats every name, and ntfs.Check. Before units, 27 of 40 such runs
// left the volume inconsistent.
func TestNTFSUndoDamagedJournal(t *testing.T) {
	img, path, f, _, _ := ntfsFix(t)
	fixed, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	runs := 12
	if l := flag.Lookup("long"); l != nil && l.Value.String() == "true" {
		runs = 40
	}
	r := rand.New(rand.NewPCG(3, 4))
	for run := range runs {
		if _, err := f.WriteAt(fixed, 0); err != nil {
			t.Fatal(err)
		}
		j := append([]byte(nil), raw...)
		k := r.IntN(len(j) - 20) // not in the commit mark: always damage
		what := fmt.Sprintf("run %d: cut at %d of %d", run, k, len(j))
		if run%2 == 1 {
			j[k] ^= byte(1 + r.IntN(255))
			what = fmt.Sprintf("run %d: byte %d of %d flipped", run, k, len(j))
		} else {
			j = j[:k]
		}
		if err := os.WriteFile(path, j, 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := journal.UndoOn(path, f)
		var de *journal.DamagedError
		if !errors.As(err, &de) {
			t.Fatalf("%s: undo = %v, want a DamagedError", what, err)
		}
		t.Logf("%s: %v", what, err)
		if rep != nil && rep.Marked {
			t.Fatalf("%s: a damaged journal was marked", what)
		}
		checkVolume(t, img)
	}
}

// idOf returns the id of the unit labelled label.
func idOf(units []*journal.UnitWriter, label string) int {
	for _, u := range units {
		if u.Label() == label {
			return u.ID()
		}
	}
	return 0
}
