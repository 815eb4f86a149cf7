package ntfs

import (
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// The property test's size. CI runs the defaults (a few hundred renames in
// well under a minute); a soak run:
//
//	go test ./ntfs/ -run TestRenameProperty -wt.ops 5000 -wt.files 20000 -wt.seed 7 -timeout 2h
var (
	wtOps   = flag.Int("wt.ops", 240, "renames in TestRenameProperty")
	wtFiles = flag.Int("wt.files", 900, "files created for TestRenameProperty")
	wtSeed  = flag.Int64("wt.seed", 1, "random seed of TestRenameProperty")
	wtEvery = flag.Int("wt.every", 40, "renames between full external verifications")
)

// wtNames are stems that collate next to each other under $UpCase,
// including case variants and non-ASCII letters.
var wtNames = []string{"file", "File", "FILE", "file_", "file-", "file.", "filé", "Filé", "fileä", "FILEÄ",
	"Ärger", "ärger", "Zebra", "zebra", "ça", "Ça va", "日本語", "日本", "a", "A", "b", "Program Files", "PROGRA", "readme", "README", "x y z",
	"Ωmega", "ωmega", "long name with many many characters in it to fill index blocks quickly"}

func wtName(r *rand.Rand) string {
	s := wtNames[r.Intn(len(wtNames))]
	switch r.Intn(8) {
	case 0:
		s += fmt.Sprint(r.Intn(300))
	case 1, 3, 4, 5, 6, 7:
		s += fmt.Sprint(r.Intn(100000))
	case 2:
		s += "." + []string{"txt", "TXT", "dll", "manifest", "c"}[r.Intn(5)]
	}
	return strings.TrimRight(s, ". ")
}

// wtModel is the expected tree: every path (with "/"), directories marked.
type wtModel struct {
	paths map[string]bool // path -> is directory
	up    *UpCase
	byDir map[string]map[string]int // dir -> folded name -> count
}

func (m *wtModel) children(dir string) []string {
	var out []string
	for p := range m.paths {
		if path.Dir(p) == dir || dir == "" && !strings.Contains(p, "/") {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func (m *wtModel) existsFold(dir, name string) bool {
	if m.byDir == nil {
		m.reindex()
	}
	return m.byDir[dir][m.fold(name)] > 0
}

// reindex rebuilds the per-directory set of folded names.
func (m *wtModel) reindex() {
	m.byDir = map[string]map[string]int{}
	for p := range m.paths {
		m.index(p, 1)
	}
}

func (m *wtModel) index(p string, delta int) {
	d := path.Dir(p)
	if d == "." {
		d = ""
	}
	if m.byDir[d] == nil {
		m.byDir[d] = map[string]int{}
	}
	m.byDir[d][m.fold(path.Base(p))] += delta
}

// add records a new path.
func (m *wtModel) add(p string, dir bool) {
	m.paths[p] = dir
	if m.byDir != nil {
		m.index(p, 1)
	}
}

// fold maps a name through the volume's $UpCase (nil: ASCII only).
func (m *wtModel) fold(s string) string {
	u := encodeName(s)
	for i, c := range u {
		if m.up != nil {
			u[i] = m.up.Upper(c)
		} else if c >= 'a' && c <= 'z' {
			u[i] = c - 32
		}
	}
	return string16(u)
}

func (m *wtModel) dirs() []string {
	out := []string{""}
	for p, d := range m.paths {
		if d {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func (m *wtModel) move(from, to string) {
	moved := map[string]bool{}
	for p, d := range m.paths {
		if p == from || strings.HasPrefix(p, from+"/") {
			delete(m.paths, p)
			if m.byDir != nil {
				m.index(p, -1)
			}
			moved[to+strings.TrimPrefix(p, from)] = d
		}
	}
	for p, d := range moved {
		m.add(p, d)
	}
}

func wtJoin(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// wtBuild creates directories and files through an ntfs-3g mount; about
// one name in three gets a DOS name (setfattr system.ntfs_dos_name), the
// way Windows volumes with 8.3 names look.
func wtBuild(t testing.TB, img string, r *rand.Rand, m *wtModel, dirs []string, files int) {
	t.Helper()
	mp, unmount := wtMount(t, img, false)
	for _, d := range dirs {
		if err := os.Mkdir(filepath.Join(mp, d), 0o755); err != nil {
			t.Fatal(err)
		}
		m.add(d, true)
	}
	all := m.dirs()
	dos := 0
	for i := 0; i < files; i++ {
		// Skew: a third of the files go to one big directory.
		dir := all[r.Intn(len(all))]
		if i%3 == 0 {
			dir = all[len(all)-1]
		}
		name := wtName(r)
		if m.existsFold(dir, name) {
			continue
		}
		p := filepath.Join(mp, dir, name)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatalf("creating %s: %v", p, err)
		}
		m.add(wtJoin(dir, name), false)
		if r.Intn(3) == 0 && !strings.ContainsAny(name, "日ΩωäÄéçÇ") {
			short := fmt.Sprintf("S%06d.T", dos)
			dos++
			if out, err := exec.Command("setfattr", "-h", "-n", "system.ntfs_dos_name", "-v", short, p).CombinedOutput(); err != nil {
				t.Fatalf("setfattr %s: %v %s", p, err, out)
			}
		}
	}
	unmount()
}

// wtVerify compares the volume with the model through two independent
// readers: an ntfs-3g read-only mount (readdir, then stat of every name,
// which is a B-tree lookup in ntfs-3g) and sleuthkit's fls -r -p; and runs
// our own full check.
func wtVerify(t testing.TB, img string, m *wtModel) {
	t.Helper()
	wtCheckAll(t, img)
	want := make([]string, 0, len(m.paths))
	for p := range m.paths {
		want = append(want, p)
	}
	sort.Strings(want)

	mp, unmount := wtMount(t, img, true)
	var got []string
	var walk func(rel string)
	walk = func(rel string) {
		es, err := os.ReadDir(filepath.Join(mp, rel))
		if err != nil {
			t.Errorf("ntfs-3g readdir %q: %v", rel, err)
			return
		}
		for _, e := range es {
			if rel == "" && strings.HasPrefix(e.Name(), "$") {
				continue
			}
			p := wtJoin(rel, e.Name())
			st, err := os.Lstat(filepath.Join(mp, p))
			if err != nil {
				t.Errorf("ntfs-3g: readdir lists %q but stat fails: %v", p, err)
				continue
			}
			got = append(got, p)
			if st.IsDir() {
				walk(p)
			}
		}
	}
	walk("")
	unmount()
	sort.Strings(got)
	wtDiff(t, "ntfs-3g", want, got)

	// sleuthkit misreads long names in the index of volumes whose clusters
	// are larger than an index block (seen on a fresh mkntfs -c 65536
	// volume, before any write): fls is skipped there.
	if f, err := os.Open(img); err == nil {
		bs, err := ReadBootSector(f)
		f.Close()
		if err == nil && bs.ClusterSize > bs.IndexBlockSize {
			return
		}
	}
	testutil.RequireTool(t, "fls")
	out := testutil.Run(t, "fls", "-r", "-p", "-u", img)
	var fls []string
	for _, line := range strings.Split(string(out), "\n") {
		i := strings.IndexByte(line, '\t')
		if i < 0 || strings.Contains(line[:i], "*") {
			continue
		}
		p := line[i+1:]
		if strings.HasPrefix(p, "$") || strings.Contains(p, ":") {
			continue
		}
		fls = append(fls, p)
	}
	sort.Strings(fls)
	wtDiff(t, "fls", want, fls)
	if len(got) != len(want) || len(fls) != len(want) || len(want) == 0 {
		t.Errorf("model has %d paths, ntfs-3g %d, fls %d", len(want), len(got), len(fls))
	}
}

func wtDiff(t testing.TB, who string, want, got []string) {
	t.Helper()
	w := map[string]bool{}
	for _, p := range want {
		w[p] = true
	}
	g := map[string]bool{}
	n := 0
	for _, p := range got {
		g[p] = true
		if !w[p] && n < 10 {
			t.Errorf("%s lists %q, not in the model", who, p)
			n++
		}
	}
	for _, p := range want {
		if !g[p] && n < 20 {
			t.Errorf("%s misses %q", who, p)
			n++
		}
	}
}

// TestRenameProperty: random renames and moves on an mkntfs + ntfs-3g
// volume, each followed by the writer's own re-read and check of the
// touched directories, with periodic full verification by ntfs-3g, fls and
// Check --all against a model.
func TestRenameProperty(t *testing.T) {
	testutil.RequireTool(t, "setfattr")
	for _, geo := range [][]string{{"-s", "512", "-c", "4096"}, {"-s", "512", "-c", "1024"}} {
		t.Run(strings.Join(geo, ""), func(t *testing.T) {
			r := rand.New(rand.NewSource(*wtSeed))
			v := wtMakeVolume(t, 256<<20, geo...)
			w := wtWriter(t, v.path)
			m := &wtModel{paths: map[string]bool{}, up: w.up}
			wtBuild(t, v.path, r, m, []string{"one", "two", "two/deep", "two/deep/er", "big"}, *wtFiles)
			w = wtWriter(t, v.path)
			wtVerify(t, v.path, m)
			if t.Failed() {
				t.FailNow()
			}
			wtRandomRenames(t, w, v.path, r, m, *wtOps, *wtEvery)
		})
	}
}

func wtRandomRenames(t *testing.T, w *Writer, img string, r *rand.Rand, m *wtModel, ops, every int) {
	renamed, refused := 0, 0
	for i := 0; i < ops; i++ {
		var all []string
		for p := range m.paths {
			all = append(all, p)
		}
		sort.Strings(all)
		from := all[r.Intn(len(all))]
		dir := path.Dir(from)
		if dir == "." {
			dir = ""
		}
		if r.Intn(2) == 0 {
			ds := m.dirs()
			dir = ds[r.Intn(len(ds))]
		}
		name := wtName(r)
		if r.Intn(10) == 0 {
			name = strings.ToUpper(path.Base(from)) // case change or clash
		}
		to := wtJoin(dir, name)
		into := dir == from || strings.HasPrefix(dir, from+"/")
		clash := m.existsFold(dir, name) && !m.up.EqualFoldString(to, from)
		_, err := w.Rename(from, to)
		switch {
		case into:
			if err == nil {
				t.Fatalf("op %d: moving %q into itself (%q) succeeded", i, from, to)
			}
			refused++
		case clash:
			if !errors.Is(err, ErrExist) {
				t.Fatalf("op %d: rename %q -> %q onto an existing name: err %v, want ErrExist", i, from, to, err)
			}
			refused++
		case err != nil:
			t.Fatalf("op %d: rename %q -> %q: %v", i, from, to, err)
		default:
			m.move(from, to)
			renamed++
		}
		if (i+1)%every == 0 || i == ops-1 {
			wtVerify(t, img, m)
			if t.Failed() {
				t.Fatalf("after op %d (%q -> %q)", i, from, to)
			}
		}
	}
	t.Logf("%d renames, %d refused as expected", renamed, refused)
}
