package hive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// mKey is the model of a key: what the tree must hold after a sequence of
// edits, independent of the file's layout.
type mKey struct {
	name string
	subs map[string]*mKey // by upcased name
	vals map[string]mVal  // by upcased name
}

type mVal struct {
	name string
	typ  ValueType
	data []byte
}

func ukey(s string) string { return upcaseKey(stringUnits(s)) }

// loadModel reads the tree of h into a model.
func loadModel(t testing.TB, h *Hive) *mKey {
	t.Helper()
	root, err := h.Root()
	if err != nil {
		t.Fatal(err)
	}
	var load func(k *Key) *mKey
	load = func(k *Key) *mKey {
		m := &mKey{name: k.Name(), subs: map[string]*mKey{}, vals: map[string]mVal{}}
		vs, err := k.Values()
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			d, err := v.Data()
			if err != nil {
				t.Fatal(err)
			}
			m.vals[ukey(v.Name())] = mVal{v.Name(), v.Type(), d}
		}
		subs, err := k.Subkeys()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range subs {
			m.subs[ukey(s.Name())] = load(s)
		}
		return m
	}
	return load(root)
}

// find returns the model key at path, or nil.
func (m *mKey) find(path string) *mKey {
	for _, n := range splitPath(path) {
		if m = m.subs[ukey(n)]; m == nil {
			return nil
		}
	}
	return m
}

// compareKey checks that key k holds what model m says, and with deep
// set, the whole subtree.
func compareKey(t testing.TB, k *Key, m *mKey, deep bool) {
	t.Helper()
	if k.Name() != m.name && k.Path() != "" {
		t.Fatalf("key %q: name %q, model %q", k.Path(), k.Name(), m.name)
	}
	vs, err := k.Values()
	if err != nil {
		t.Fatalf("key %q: %v", k.Path(), err)
	}
	if len(vs) != len(m.vals) {
		t.Fatalf("key %q: %d values, model %d", k.Path(), len(vs), len(m.vals))
	}
	for _, v := range vs {
		mv, ok := m.vals[ukey(v.Name())]
		if !ok || mv.name != v.Name() {
			t.Fatalf("key %q: value %q not in the model", k.Path(), v.Name())
		}
		d, err := v.Data()
		if err != nil {
			t.Fatalf("key %q: value %q: %v", k.Path(), v.Name(), err)
		}
		if v.Type() != mv.typ || !bytes.Equal(d, mv.data) {
			t.Fatalf("key %q: value %q: %s %d bytes, model %s %d bytes", k.Path(), v.Name(), v.Type(), len(d), mv.typ, len(mv.data))
		}
	}
	subs, err := k.Subkeys()
	if err != nil {
		t.Fatalf("key %q: %v", k.Path(), err)
	}
	if len(subs) != len(m.subs) {
		t.Fatalf("key %q: %d subkeys, model %d", k.Path(), len(subs), len(m.subs))
	}
	for _, s := range subs {
		ms, ok := m.subs[ukey(s.Name())]
		if !ok || ms.name != s.Name() {
			t.Fatalf("key %q: subkey %q not in the model", k.Path(), s.Name())
		}
		if deep {
			compareKey(t, s, ms, true)
		}
	}
}

// editFile is a hive file opened for editing in a test.
type editFile struct {
	path string
	f    *os.File
	h    *Hive
	e    *Editor
}

// copyTo copies src into dir (named name) and returns the new path.
func copyTo(t testing.TB, src, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, name)
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// openEdit opens a hive file read-write with an editor whose grow
// function extends the file.
func openEdit(t testing.TB, path string, logPaths ...string) *editFile {
	return openEditBase(t, false, path, logPaths...)
}

// openEditBase is openEdit, reading the hive from a copy in memory when
// memBase is set.
func openEditBase(t testing.TB, memBase bool, path string, logPaths ...string) *editFile {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	logs := openLogs(t, logPaths...)
	var base io.ReaderAt = f
	if memBase {
		// Read through a snapshot in memory: the editor writes the file,
		// its view keeps what it wrote, and checking after every step
		// costs no system calls.
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		base = bytes.NewReader(b)
	}
	h, err := Open(base, st.Size(), logs...)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEditor(h, f, func(n int64) error { return f.Truncate(n) }, logs...)
	if err != nil {
		t.Fatal(err)
	}
	return &editFile{path: path, f: f, h: h, e: e}
}

// reopen opens path afresh (no logs) and checks it strictly: clean, and
// no checker errors.
func reopen(t testing.TB, path string, allowed ...Finding) *Hive {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if h.Dirty() {
		t.Fatalf("reopen: hive is dirty: %+v", h.BaseBlock())
	}
	mustCheck(t, h, allowed...)
	return h
}

// mustCheck fails on any checker error, and on the warnings an edit must
// not cause (a maximum length below the real one, a wrong sk reference
// count, more leaked cells), unless the hive had them before the edit:
// allowed holds the findings of the unedited hive (errors and the stale
// maximum lengths matched by code and key, sk counts by cell).
func mustCheck(t testing.TB, h *Hive, allowed ...Finding) *CheckReport {
	t.Helper()
	r := h.Check()
	had := func(f Finding) bool {
		return slices.ContainsFunc(allowed, func(a Finding) bool {
			if a.Code != f.Code {
				return false
			}
			if f.Code == "sk-refcount" {
				return a.Offset == f.Offset
			}
			return a.Path == f.Path
		})
	}
	leaks, preLeaks := 0, 0
	for _, f := range allowed {
		if f.Code == "cell-leak" {
			preLeaks++
		}
	}
	for _, f := range r.Findings {
		switch {
		case f.Code == "cell-leak":
			leaks++
		case f.Severity == Error || f.Code == "key-maxlen" || f.Code == "sk-refcount":
			if !had(f) {
				t.Fatalf("checker: %s\n%s", f, r)
			}
		}
	}
	if leaks > preLeaks {
		t.Fatalf("checker: %d leaked cells, %d before the edits\n%s", leaks, preLeaks, r)
	}
	return r
}

func utf16z(s string) []byte {
	u := stringUnits(s)
	b := make([]byte, 2*len(u)+2)
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func TestEditBasic(t *testing.T) {
	for _, fx := range []string{"hives/hivex/minimal", "hives/yarp/EmptyHive", "hives/yarp/CompHive", "hives/regipy/SAM.xz"} {
		t.Run(fx, func(t *testing.T) {
			src := testutil.Decompress(t, testutil.SharedFixture(t, fx), "")
			path := copyTo(t, src, t.TempDir(), "hive")
			ef := openEdit(t, path)
			m := loadModel(t, ef.h)
			pre := ef.h.Check().Findings
			e := ef.e
			names := []string{"Ünïcødé", "Кириллица", "ı-dotless", "ſ-long-s", "ASCII", "ascii2", "Zeta", "alpha"}
			for _, n := range names {
				if _, err := e.CreateKey(`WuoTest\` + n + `\Sub`); err != nil {
					t.Fatal(err)
				}
			}
			big := bytes.Repeat([]byte("0123456789abcdef"), 2000) // 32000 bytes: db in 1.4+
			sets := []struct {
				key, name string
				typ       ValueType
				data      []byte
			}{
				{`WuoTest\ASCII`, "dw", RegDWORD, []byte{1, 2, 3, 4}},
				{`WuoTest\ASCII`, "", RegSZ, utf16z("default")},
				{`WuoTest\ASCII`, "Ünïcødé", RegSZ, utf16z("Кириллица")},
				{`WuoTest\ASCII`, "big", RegBinary, big},
				{`WuoTest\ASCII`, "empty", RegNone, nil},
				{`WuoTest\ASCII`, "q", RegQWORD, []byte{1, 2, 3, 4, 5, 6, 7, 8}},
				{`WuoTest\ascii`, "DW", RegDWORD, []byte{9, 9, 9, 9}}, // same value, other case
				{`WuoTest\ASCII`, "big", RegBinary, big[:20000]},
				{`WuoTest\ASCII`, "q", RegQWORD, big[:100]},
			}
			for _, s := range sets {
				if err := e.SetValue(s.key, s.name, s.typ, s.data); err != nil {
					t.Fatal(err)
				}
			}
			mustCheck(t, ef.h, pre...)
			if err := e.DeleteValue(`WuoTest\ASCII`, "EMPTY"); err != nil {
				t.Fatal(err)
			}
			if err := e.DeleteKey(`WuoTest\Zeta`); err != nil {
				t.Fatal(err)
			}
			if err := e.DeleteValue(`WuoTest\ASCII`, "nope"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("deleting a missing value: %v", err)
			}
			mustCheck(t, ef.h, pre...)
			if len(e.Ranges()) == 0 {
				t.Fatal("no ranges planned")
			}
			if err := e.Flush(); err != nil {
				t.Fatal(err)
			}
			// The model of what must be there.
			wt := &mKey{name: "WuoTest", subs: map[string]*mKey{}, vals: map[string]mVal{}}
			m.subs[ukey("WuoTest")] = wt
			for _, n := range names {
				if n == "Zeta" {
					continue
				}
				sub := &mKey{name: "Sub", subs: map[string]*mKey{}, vals: map[string]mVal{}}
				wt.subs[ukey(n)] = &mKey{name: n, subs: map[string]*mKey{ukey("Sub"): sub}, vals: map[string]mVal{}}
			}
			a := wt.subs[ukey("ASCII")]
			a.vals[ukey("dw")] = mVal{"dw", RegDWORD, []byte{9, 9, 9, 9}}
			a.vals[""] = mVal{"", RegSZ, utf16z("default")}
			a.vals[ukey("Ünïcødé")] = mVal{"Ünïcødé", RegSZ, utf16z("Кириллица")}
			a.vals[ukey("big")] = mVal{"big", RegBinary, big[:20000]}
			a.vals[ukey("q")] = mVal{"q", RegQWORD, big[:100]}
			h2 := reopen(t, path, pre...)
			root, _ := h2.Root()
			compareKey(t, root, m, true)
			if tool := testutil.RequireTool(t, "hivexregedit"); tool != "" {
				ours := regExport(t, h2)
				theirs := testutil.Run(t, tool, "--export", path, `\`)
				if ours != string(theirs) {
					t.Fatalf("hivexregedit export differs from ours")
				}
			}
		})
	}
}

var _ = fmt.Sprint
var _ = slices.Sort[[]int]
var _ = sort.Strings
var _ = strings.Cut

// TestEditDirtyHive edits a dirty hive (Windows 10 left it with new-format
// logs): the file alone must afterwards hold the recovered state plus the
// edit, be clean with a sequence above every log's, and read in hivex.
func TestEditDirtyHive(t *testing.T) {
	dir := t.TempDir()
	path := copyTo(t, yarp(t, "NewDirtyHive1/NewDirtyHive"), dir, "NewDirtyHive")
	l1 := copyTo(t, yarp(t, "NewDirtyHive1/NewDirtyHive.LOG1"), dir, "NewDirtyHive.LOG1")
	l2 := copyTo(t, yarp(t, "NewDirtyHive1/NewDirtyHive.LOG2"), dir, "NewDirtyHive.LOG2")
	ef := openEdit(t, path, l1, l2)
	if !ef.h.Recovered() {
		t.Fatal("not recovered")
	}
	maxLog := ef.h.rec.maxLogSequence
	// What Windows itself recovered is the model.
	win, err := openFile(t, yarp(t, "NewDirtyHive1/RecoveredHive_Windows10"))
	if err != nil {
		t.Fatal(err)
	}
	m := loadModel(t, win)
	compareKey(t, mustRoot(t, ef.h), m, true)
	pre := ef.h.Check().Findings // Windows' own recovery leaves leaked cells
	if err := ef.e.SetValue("", "WuoEdit", RegDWORD, []byte{1, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if _, err := ef.e.CreateKey(`Ünïcødé\Кириллица`); err != nil {
		t.Fatal(err)
	}
	rs := ef.e.Ranges()
	if len(rs) == 0 || rs[0].Off != 0 || rs[0].Len < BaseBlockSize {
		t.Fatalf("planned ranges %v: the recovered base block must be written", rs)
	}
	if err := ef.e.Flush(); err != nil {
		t.Fatal(err)
	}
	m.vals[ukey("WuoEdit")] = mVal{"WuoEdit", RegDWORD, []byte{1, 0, 0, 0}}
	u := &mKey{name: "Ünïcødé", subs: map[string]*mKey{}, vals: map[string]mVal{}}
	u.subs[ukey("Кириллица")] = &mKey{name: "Кириллица", subs: map[string]*mKey{}, vals: map[string]mVal{}}
	m.subs[ukey("Ünïcødé")] = u

	h2 := reopen(t, path, pre...) // no logs: the file alone
	bb := h2.BaseBlock()
	if bb.Sequence1 != bb.Sequence2 || bb.Sequence1 <= maxLog {
		t.Fatalf("sequences %d/%d, logs go up to %d", bb.Sequence1, bb.Sequence2, maxLog)
	}
	compareKey(t, mustRoot(t, h2), m, true)
	// With the logs beside it, the hive is clean: Windows ignores them.
	h3, err := openFile(t, path, l1, l2)
	if err != nil || h3.Recovered() {
		t.Fatalf("reopen with logs: recovered=%v err=%v", h3 != nil && h3.Recovered(), err)
	}
	tool := testutil.RequireTool(t, "hivexregedit")
	if ours, theirs := regExport(t, h2), testutil.Run(t, tool, "--export", path, `\`); ours != string(theirs) {
		t.Fatalf("hivexregedit export differs from ours")
	}
}

func mustRoot(t testing.TB, h *Hive) *Key {
	t.Helper()
	r, err := h.Root()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestEditManySubkeys grows a key past Windows' leaf limit (an ri is
// created, leaves split) and shrinks it again.
func TestEditManySubkeys(t *testing.T) {
	src := testutil.SharedFixture(t, "hives/hivex/minimal")
	path := copyTo(t, src, t.TempDir(), "hive")
	ef := openEdit(t, path)
	m := loadModel(t, ef.h)
	mk := &mKey{name: "Many", subs: map[string]*mKey{}, vals: map[string]mVal{}}
	m.subs[ukey("Many")] = mk
	const n = 1300
	for i := range n {
		// Reverse and interleaved order: inserts land everywhere.
		name := fmt.Sprintf("k%05d", (i*7919)%n)
		if i%3 == 0 {
			name = fmt.Sprintf("Ж%04d", i)
		}
		if _, err := ef.e.CreateKey(`Many\` + name); err != nil {
			t.Fatal(err)
		}
		mk.subs[ukey(name)] = &mKey{name: name, subs: map[string]*mKey{}, vals: map[string]mVal{}}
	}
	mustCheck(t, ef.h)
	k, err := ef.h.OpenKey("Many")
	if err != nil {
		t.Fatal(err)
	}
	top, err := ef.h.readList(k.nk.subkeyList)
	if err != nil || top.sig != "ri" || len(top.entries) < 3 {
		t.Fatalf("top list %+v, %v: want an ri of 3+ leaves", top, err)
	}
	compareKey(t, mustRoot(t, ef.h), m, true)
	// Delete most of them: leaves empty out, the ri collapses.
	for name, c := range mk.subs {
		if len(mk.subs) <= 5 {
			break
		}
		if err := ef.e.DeleteKey(`Many\` + c.name); err != nil {
			t.Fatal(err)
		}
		delete(mk.subs, name)
	}
	if err := ef.e.Flush(); err != nil {
		t.Fatal(err)
	}
	h2 := reopen(t, path)
	compareKey(t, mustRoot(t, h2), m, true)
	if err := ef.e.DeleteKey("Many"); err != nil {
		t.Fatal(err)
	}
	if err := ef.e.Flush(); err != nil {
		t.Fatal(err)
	}
	delete(m.subs, ukey("Many"))
	h3 := reopen(t, path)
	compareKey(t, mustRoot(t, h3), m, true)
	r := h3.Check()
	if r.Has("cell-leak") {
		t.Fatalf("cells leaked:\n%s", r)
	}
	if n := adjacentFree(t, h3); n != 0 {
		t.Fatalf("%d pairs of adjacent free cells", n)
	}
}

// TestEditFreesSK deletes a key that is the only user of its security
// descriptor: the sk cell is freed and unlinked from the sk list.
func TestEditFreesSK(t *testing.T) {
	src := testutil.Decompress(t, testutil.SharedFixture(t, "hives/regipy/SYSTEM.xz"), "")
	path := copyTo(t, src, t.TempDir(), "SYSTEM")
	ef := openEditBase(t, true, path)
	pre := ef.h.Check().Findings
	// A leaf key whose sk has a reference count of 1.
	var victim *Key
	err := ef.h.Walk(func(k *Key) error {
		if k.Path() == "" || k.SubkeyCount() > 0 || victim != nil {
			return nil
		}
		sk, err := ef.h.readSK(k.SecurityOffset())
		if err != nil {
			return err
		}
		if sk.refCount == 1 {
			victim = k
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if victim == nil {
		t.Fatal("no key with a private sk in SYSTEM")
	}
	skOff := victim.SecurityOffset()
	sk, _ := ef.h.readSK(skOff)
	before := ef.h.Check().SecurityCells
	if err := ef.e.DeleteKey(victim.Path()); err != nil {
		t.Fatal(err)
	}
	ci, _, err := ef.h.cellAt(skOff, "security")
	if err != nil || ci.allocated {
		t.Fatalf("sk cell 0x%x after deleting its only user %q: allocated=%v err=%v", skOff, victim.Path(), ci.allocated, err)
	}
	if prev, _ := ef.h.readSK(sk.blink); prev == nil || prev.flink != sk.flink {
		t.Fatalf("sk list not relinked around 0x%x", skOff)
	}
	r := mustCheck(t, ef.h, pre...)
	if r.SecurityCells != before-1 {
		t.Fatalf("%d security cells in use, want %d", r.SecurityCells, before-1)
	}
	if err := ef.e.Flush(); err != nil {
		t.Fatal(err)
	}
	reopen(t, path, pre...)
}

// TestEditNoGrow: without a grow function, an edit that needs a new bin
// fails with ErrNoGrow, and nothing at all is written.
func TestEditNoGrow(t *testing.T) {
	b, err := os.ReadFile(testutil.SharedFixture(t, "hives/hivex/minimal"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	mf := &memFile{b: bytes.Clone(b)}
	e, err := NewEditor(h, mf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateKey("small"); err != nil {
		t.Fatal(err) // fits in the free space
	}
	planned := e.Ranges()
	err = e.SetValue("small", "big", RegBinary, make([]byte, 9000))
	if !errors.Is(err, ErrNoGrow) {
		t.Fatalf("SetValue needing a bin: %v, want ErrNoGrow", err)
	}
	// The failed edit changed nothing: the plan is the key alone.
	if !slices.Equal(planned, e.Ranges()) {
		t.Fatalf("the failed edit changed the plan: %v, then %v", planned, e.Ranges())
	}
	if !bytes.Equal(mf.b, b) {
		t.Fatal("written before Flush")
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	h2, err := Open(bytes.NewReader(mf.b), int64(len(mf.b)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h2.OpenKey("small"); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, h2)
}

// TestEditCleanHiveLogs: a clean hive's stale logs are not applied, but the
// sequence number written is above theirs.
func TestEditCleanHiveLogs(t *testing.T) {
	dir := t.TempDir()
	path := copyTo(t, yarp(t, "NewDirtyHive1/RecoveredHive_Windows10"), dir, "hive")
	l1 := copyTo(t, yarp(t, "NewDirtyHive1/NewDirtyHive.LOG1"), dir, "hive.LOG1")
	l2 := copyTo(t, yarp(t, "NewDirtyHive1/NewDirtyHive.LOG2"), dir, "hive.LOG2")
	ef := openEdit(t, path, l1, l2)
	if ef.h.Recovered() {
		t.Fatal("logs applied to a clean hive")
	}
	dirty := openEdit(t, copyTo(t, yarp(t, "NewDirtyHive1/NewDirtyHive"), t.TempDir(), "d"), l1, l2)
	maxLog := dirty.h.rec.maxLogSequence
	pre := ef.h.Check().Findings
	if err := ef.e.SetValue("", "x", RegDWORD, []byte{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	if err := ef.e.Flush(); err != nil {
		t.Fatal(err)
	}
	bb := reopen(t, path, pre...).BaseBlock()
	if bb.Sequence1 != bb.Sequence2 || bb.Sequence1 <= maxLog {
		t.Fatalf("sequences %d/%d, logs go up to %d", bb.Sequence1, bb.Sequence2, maxLog)
	}
}

// TestEditBigData sets values around the big-data limits in a Windows-made
// 1.5 hive: hivex must read every byte back (it counts on the 4 spare
// bytes Windows leaves in every segment cell), then shrink them.
func TestEditBigData(t *testing.T) {
	tool := testutil.RequireTool(t, "hivexregedit")
	path := copyTo(t, yarp(t, "BigDataHive"), t.TempDir(), "hive")
	ef := openEdit(t, path)
	if ef.h.Minor() < 4 {
		t.Fatalf("BigDataHive is version 1.%d", ef.h.Minor())
	}
	pre := ef.h.Check().Findings
	lengths := []int{16343, 16344, 16345, 16346, 16347, 16348, 16349, 32688, 32689, 32692, 32693, 50000}
	for round, shrink := range []bool{false, true} {
		for i, n := range lengths {
			if shrink {
				n = lengths[len(lengths)-1-i] // reuse cells of other sizes
			}
			data := bytes.Repeat([]byte{byte(i + 1), byte(round)}, n/2+1)[:n]
			if err := ef.e.SetValue("", fmt.Sprintf("v%02d", i), RegBinary, data); err != nil {
				t.Fatal(err)
			}
		}
		if err := ef.e.Flush(); err != nil {
			t.Fatal(err)
		}
		h2 := reopen(t, path, pre...)
		if ours, theirs := regExport(t, h2), string(testutil.Run(t, tool, "--export", path, `\`)); ours != theirs {
			t.Fatalf("round %d: hivexregedit reads other data: %s", round, firstDiff(ours, theirs))
		}
	}
}
