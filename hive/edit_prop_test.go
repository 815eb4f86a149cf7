package hive

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// soakSteps runs the editor property test for that many steps per hive,
// with our checker and the independent tools after every step:
//
//	go test ./hive/ -run TestEditProperty -timeout 0 -args -hive.soak=2000
//
// Without it the test runs a CI-sized number of steps, with the checker
// after every step (every few steps on the 50 MB hive) and the tools on a
// sample of steps.
var soakSteps = flag.Int("hive.soak", 0, "editor property test: steps per hive, independent tools after every step")

// propSeed varies the random sequences (-args -hive.seed=N).
var propSeed = flag.Uint64("hive.seed", 0, "editor property test: added to the random seeds")

// propNames are the names random edits use: non-ASCII, and pairs that
// Windows' upcase tells apart although Go's unicode.ToUpper does not (ı,
// ſ) or that only differ in case.
var propNames = []string{
	"Ünïcødé", "ünÏcØdÉ", "Кириллица", "КИРИЛЛИЦА", "ı", "I", "ſ", "S", "straße", "Ω", "日本語",
	"plain", "PLAIN", "a b", "x.y", "Zz", "aa", "ab",
}

// propRun is one property-test run on one hive file.
type propRun struct {
	t        *testing.T
	r        *rand.Rand
	ef       *editFile
	m        *mKey
	pre      []Finding
	preAdj   int // adjacent free cells before the edits
	keys     int // keys in the model
	vals     int
	checkDue int // run our checker every checkDue steps
	toolDue  int // flush and run the independent tools every toolDue steps
}

func countModel(m *mKey) (keys, vals int) {
	keys, vals = 1, len(m.vals)
	for _, s := range m.subs {
		k, v := countModel(s)
		keys += k
		vals += v
	}
	return
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// pick walks from the root to a random key; it returns its path (stored
// names), the key and its parent.
func (p *propRun) pick(minDepth int) (string, *mKey, *mKey) {
	path, k := "", p.m
	var parent *mKey
	for depth := 0; ; depth++ {
		if len(k.subs) == 0 || (depth >= minDepth && p.r.IntN(100) < 30) {
			if depth < minDepth {
				return "", nil, nil
			}
			return path, k, parent
		}
		names := sortedKeys(k.subs)
		c := k.subs[names[p.r.IntN(len(names))]]
		parent, k = k, c
		if path != "" {
			path += `\`
		}
		path += c.name
	}
}

func (p *propRun) name() string {
	n := propNames[p.r.IntN(len(propNames))]
	if p.r.IntN(3) > 0 {
		n += fmt.Sprint(p.r.IntN(20))
	}
	return n
}

func (p *propRun) data() (ValueType, []byte) {
	types := []ValueType{RegSZ, RegExpandSZ, RegMultiSZ, RegDWORD, RegQWORD, RegBinary, RegNone}
	t := types[p.r.IntN(len(types))]
	var n int
	switch x := p.r.IntN(100); {
	case x < 30:
		n = p.r.IntN(5) // inline
	case x < 80:
		n = 5 + p.r.IntN(300)
	case x < 95:
		n = 1000 + p.r.IntN(bigDataSegment-1000+9) // around the big-data threshold
	default:
		n = bigDataSegment + 1 + p.r.IntN(3*bigDataSegment) // db
	}
	switch t {
	case RegDWORD:
		n = 4
	case RegQWORD:
		n = 8
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(p.r.Uint32())
	}
	return t, b
}

func (p *propRun) step(i int) string {
	t := p.t
	e := p.ef.e
	switch op := p.r.IntN(100); {
	case op < 35: // create
		path, k, _ := p.pick(0)
		name := p.name()
		full := name
		if path != "" {
			full = path + `\` + name
		}
		if _, err := e.CreateKey(full); err != nil {
			t.Fatalf("step %d: CreateKey(%q): %v", i, full, err)
		}
		if _, ok := k.subs[ukey(name)]; !ok {
			k.subs[ukey(name)] = &mKey{name: name, subs: map[string]*mKey{}, vals: map[string]mVal{}}
			p.keys++
		}
		p.compare(path, k)
		return "create " + full
	case op < 70: // set value
		path, k, _ := p.pick(0)
		name := p.name()
		if len(k.vals) > 0 && p.r.IntN(2) == 0 {
			vs := sortedKeys(k.vals)
			name = k.vals[vs[p.r.IntN(len(vs))]].name
			if p.r.IntN(3) == 0 {
				name = strings.ToUpper(name) // same value for Windows unless ı/ſ...
			}
		}
		if p.r.IntN(20) == 0 {
			name = "" // the default value
		}
		typ, data := p.data()
		if err := e.SetValue(path, name, typ, data); err != nil {
			t.Fatalf("step %d: SetValue(%q, %q): %v", i, path, name, err)
		}
		if old, ok := k.vals[ukey(name)]; ok {
			name = old.name // the stored name stays
		} else {
			p.vals++
		}
		k.vals[ukey(name)] = mVal{name, typ, data}
		p.compare(path, k)
		return fmt.Sprintf("set %q %q %s %d bytes", path, name, typ, len(data))
	case op < 85: // delete value
		path, k, _ := p.pick(0)
		if len(k.vals) == 0 {
			return "nothing"
		}
		vs := sortedKeys(k.vals)
		v := k.vals[vs[p.r.IntN(len(vs))]]
		if err := e.DeleteValue(path, v.name); err != nil {
			t.Fatalf("step %d: DeleteValue(%q, %q): %v", i, path, v.name, err)
		}
		delete(k.vals, ukey(v.name))
		p.vals--
		p.compare(path, k)
		return fmt.Sprintf("delete value %q %q", path, v.name)
	default: // delete key (small subtrees, so the hive does not empty out)
		path, k, parent := p.pick(1)
		if k == nil {
			return "nothing"
		}
		nk, nv := countModel(k)
		if nk > 200 {
			return "nothing"
		}
		if err := e.DeleteKey(path); err != nil {
			t.Fatalf("step %d: DeleteKey(%q): %v", i, path, err)
		}
		delete(parent.subs, ukey(k.name))
		p.keys -= nk
		p.vals -= nv
		pp := ""
		if i := strings.LastIndexByte(path, '\\'); i >= 0 {
			pp = path[:i]
		}
		p.compare(pp, parent)
		return fmt.Sprintf("delete key %q (%d keys, %d values)", path, nk, nv)
	}
}

// compare checks one key (not its subtree) against the model.
func (p *propRun) compare(path string, m *mKey) {
	p.t.Helper()
	k, err := p.ef.h.OpenKey(path)
	if err != nil {
		p.t.Fatalf("OpenKey(%q): %v", path, err)
	}
	compareKey(p.t, k, m, false)
}

// verifyFile flushes, reopens the file alone and compares it with the
// model, and runs hivexregedit, regfexport and reglookup on it.
func (p *propRun) verifyFile(step int, withRegf bool, times map[string]time.Duration) {
	t := p.t
	t.Helper()
	t0 := time.Now()
	lap := func(what string) {
		times[what] += time.Since(t0)
		t0 = time.Now()
	}
	if err := p.ef.e.Flush(); err != nil {
		t.Fatalf("step %d: Flush: %v", step, err)
	}
	h2 := reopen(t, p.ef.path, p.pre...)
	compareKey(t, mustRoot(t, h2), p.m, true)
	if n := adjacentFree(t, h2); n > p.preAdj {
		t.Fatalf("step %d: %d pairs of adjacent free cells, %d before the edits: freed cells were not merged", step, n, p.preAdj)
	}
	lap("reopen+check+compare")
	ours := regExport(t, h2)
	theirs, err := exec.Command(testutil.RequireTool(t, "hivexregedit"), "--export", p.ef.path, `\`).Output()
	lap("hivexregedit")
	if err != nil {
		t.Fatalf("step %d: hivexregedit: %v", step, err)
	}
	if ours != string(theirs) {
		t.Fatalf("step %d: hivexregedit export differs from ours (%d vs %d bytes): %s", step, len(theirs), len(ours), firstDiff(ours, string(theirs)))
	}
	// regfexport (libregf): every key and value. It is the slowest of
	// the three (a minute on 50 MB): only when asked.
	if withRegf {
		out, err := exec.Command(testutil.RequireTool(t, "regfexport"), p.ef.path).Output()
		lap("regfexport")
		if err != nil {
			t.Fatalf("step %d: regfexport: %v", step, err)
		}
		if k, v := bytes.Count(out, []byte("\nKey path: ")), bytes.Count(out, []byte("\nValue: ")); k != p.keys || v != p.vals {
			t.Fatalf("step %d: regfexport lists %d keys and %d values, the model %d and %d", step, k, v, p.keys, p.vals)
		}
	}
	// reglookup: every key and value, and every DWORD/QWORD number.
	out, err := exec.Command(testutil.RequireTool(t, "reglookup"), p.ef.path).Output()
	lap("reglookup")
	if err != nil {
		t.Fatalf("step %d: reglookup: %v", step, err)
	}
	var keys, vals int
	var nums []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<26)
	for first := true; sc.Scan(); first = false {
		if first {
			continue
		}
		f := strings.Split(sc.Text(), ",")
		if len(f) < 4 {
			continue
		}
		switch f[len(f)-3] {
		case "KEY":
			keys++
		case "DWORD", "QWORD":
			vals++
			nums = append(nums, f[len(f)-3]+" "+f[len(f)-2])
		default:
			vals++
		}
	}
	if keys != p.keys || vals != p.vals {
		t.Fatalf("step %d: reglookup lists %d keys and %d values, the model %d and %d", step, keys, vals, p.keys, p.vals)
	}
	want := modelNumbers(p.m, nil)
	sort.Strings(nums)
	sort.Strings(want)
	if !slices.Equal(nums, want) {
		t.Fatalf("step %d: reglookup's DWORD/QWORD values differ from the model", step)
	}
}

// modelNumbers lists "DWORD 0x%08X" / "QWORD 0x%016X" for the model's
// well-formed numbers, as reglookup prints them.
func modelNumbers(m *mKey, out []string) []string {
	for _, v := range m.vals {
		switch {
		case v.typ == RegDWORD && len(v.data) == 4:
			out = append(out, fmt.Sprintf("DWORD 0x%08X", leUint32(v.data)))
		case v.typ == RegQWORD && len(v.data) == 8:
			out = append(out, fmt.Sprintf("QWORD 0x%016X", leUint64(v.data)))
		}
	}
	for _, s := range m.subs {
		out = modelNumbers(s, out)
	}
	return out
}

func runProperty(t *testing.T, src string, steps, checkDue, toolDue int, regfAtEnd bool, seed uint64) {
	testutil.RequireTool(t, "hivexregedit")
	testutil.RequireTool(t, "regfexport")
	testutil.RequireTool(t, "reglookup")
	path := copyTo(t, src, t.TempDir(), "hive")
	ef := openEditBase(t, true, path)
	p := &propRun{t: t, r: rand.New(rand.NewPCG(seed+*propSeed, 0x5EED)), ef: ef, checkDue: checkDue, toolDue: toolDue}
	p.pre = ef.h.Check().Findings
	p.m = loadModel(t, ef.h)
	p.preAdj = adjacentFree(t, ef.h)
	p.keys, p.vals = countModel(p.m)
	if *soakSteps > 0 {
		steps, p.checkDue, p.toolDue = *soakSteps, 1, 1
	}
	counts := map[string]int{}
	var tStep, tCheck, tTools time.Duration
	tTimes := map[string]time.Duration{}
	for i := 1; i <= steps; i++ {
		t0 := time.Now()
		what := p.step(i)
		tStep += time.Since(t0)
		t0 = time.Now()
		counts[strings.Fields(what)[0]]++
		if i%p.checkDue == 0 {
			mustCheck(t, ef.h, p.pre...)
		}
		tCheck += time.Since(t0)
		t0 = time.Now()
		if i%p.toolDue == 0 || i == steps {
			p.verifyFile(i, regfAtEnd && i == steps || *soakSteps > 0, tTimes)
		}
		tTools += time.Since(t0)
	}
	st, _ := os.Stat(path)
	t.Logf("%d steps on %s (%v); now %d keys, %d values, %d bytes; time: edits %v, checker %v, file+tools %v",
		steps, filepath.Base(src), counts, p.keys, p.vals, st.Size(), tStep.Round(time.Millisecond), tCheck.Round(time.Millisecond), tTools.Round(time.Millisecond))
	t.Logf("file verification: %v", tTimes)
}

// TestEditProperty runs random sequences of create/delete/set on a real
// Windows SYSTEM hive and on a 50 MB SOFTWARE-shaped hive built by hivex,
// checking after every step the edited keys against a model of the tree
// and our checker, and on a sample of steps the whole file against the
// model and with hivexregedit and reglookup (and regfexport at the end on
// SYSTEM; on every sampled step of both with -hive.soak). About 80 s.
func TestEditProperty(t *testing.T) {
	t.Run("SYSTEM", func(t *testing.T) {
		src := testutil.Decompress(t, testutil.SharedFixture(t, "hives/regipy/SYSTEM.xz"), "")
		runProperty(t, src, 300, 10, 150, true, 1)
	})
	t.Run("big", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds a 50 MB hive")
		}
		src := bigHive(t)
		runProperty(t, src, 200, 100, 200, false, 2)
	})
}

// bigHive builds the 50 MB hive with testimages/mkbighive.py (hivex) in the
// test's temp dir.
func bigHive(t testing.TB) string {
	t.Helper()
	py := ""
	for _, c := range []string{"python3", "/usr/bin/python3"} {
		if p, err := exec.LookPath(c); err == nil && exec.Command(p, "-c", "import hivex").Run() == nil {
			py = p
			break
		}
	}
	if py == "" {
		testutil.Unavailable(t, "python3 with the hivex module (apt-get install python3-hivex)")
		return ""
	}
	out := filepath.Join(t.TempDir(), "SOFTWARE")
	testutil.Run(t, py, filepath.Join(testutil.RepoRoot(t), "testimages", "mkbighive.py"),
		testutil.SharedFixture(t, "hives/hivex/minimal"), out, "50")
	return out
}

// firstDiff describes the first line where two exports differ.
func firstDiff(ours, theirs string) string {
	ol, tl := strings.Split(ours, "\n"), strings.Split(theirs, "\n")
	for i := 0; i < max(len(ol), len(tl)); i++ {
		var a, b string
		if i < len(ol) {
			a = ol[i]
		}
		if i < len(tl) {
			b = tl[i]
		}
		if a != b {
			j := 0
			for j < min(len(a), len(b)) && a[j] == b[j] {
				j++
			}
			j = max(0, j-60)
			return fmt.Sprintf("line %d (%d vs %d bytes), from byte %d:\nours:  %.200q\nhivex: %.200q", i+1, len(a), len(b), j, a[j:], b[j:])
		}
	}
	return "no line differs"
}

// adjacentFree counts pairs of free cells that follow each other in a bin
// (Windows merges them; so must the editor).
func adjacentFree(t testing.TB, h *Hive) int {
	t.Helper()
	bins, err := h.allBins()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, b := range bins {
		buf := make([]byte, b.size)
		if _, err := h.src.ReadAt(buf, BaseBlockSize+int64(b.off)); err != nil {
			t.Fatal(err)
		}
		prevFree := false
		for p := uint32(binHeaderSize); p+4 <= b.size; {
			raw := int32(leUint32(buf[p:]))
			size := uint32(raw)
			if raw < 0 {
				size = uint32(-int64(raw))
			}
			if size < minCellSize {
				break
			}
			if raw > 0 && prevFree {
				n++
			}
			prevFree = raw > 0
			p += size
		}
	}
	return n
}
