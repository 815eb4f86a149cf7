package hive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// realSystem returns the bytes of the Windows-made SYSTEM hive of the
// shared fixtures.
func realSystem(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(testutil.Decompress(t, testutil.SharedFixture(t, "hives/regipy/SYSTEM.xz"), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// editBytes opens an editor over a copy of b, writing into a memFile.
func editBytes(t testing.TB, b []byte) (*Hive, *Editor, *memFile) {
	t.Helper()
	h, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	mf := &memFile{b: bytes.Clone(b)}
	e, err := NewEditor(h, mf, mf.grow)
	if err != nil {
		t.Fatal(err)
	}
	return h, e, mf
}

// grow extends a memFile (the editor's grow function in tests).
func (m *memFile) grow(n int64) error {
	if n > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, n-int64(len(m.b)))...)
	}
	return nil
}

// cellNeighbours returns the cells just before and after the cell at off
// (0 when there is none) and whether each is free, from a full bin walk.
func cellNeighbours(t testing.TB, h *Hive, off uint32) (prev, next uint32, prevFree, nextFree bool) {
	t.Helper()
	b, err := h.findBin(off)
	if err != nil {
		t.Fatal(err)
	}
	bc, err := walkCells(h.src, b)
	if err != nil || bc.broken != 0 {
		t.Fatalf("bin 0x%x: %v %s", b.off, err, bc.why)
	}
	rel := off - b.off
	if p, ok := prevStart(bc, rel); ok {
		prev, prevFree = b.off+p, !bc.alloc.get(p)
	}
	if n := nextStart(bc, b, rel); n < b.size {
		next, nextFree = b.off+n, !bc.alloc.get(n)
	}
	return
}

// valueListBesideFree finds a key with values whose value list has a free
// cell right before or right after it.
func valueListBesideFree(t testing.TB, h *Hive, after bool) (*Key, uint32, uint32) {
	t.Helper()
	var key *Key
	var vl, free uint32
	errStop := errors.New("found")
	err := h.Walk(func(k *Key) error {
		if k.nk.valueCount < 1 {
			return nil
		}
		p, n, pf, nf := cellNeighbours(t, h, k.nk.valueList)
		switch {
		case after && nf:
			key, vl, free = k, k.nk.valueList, n
		case !after && pf:
			key, vl, free = k, k.nk.valueList, p
		default:
			return nil
		}
		return errStop
	})
	if key == nil {
		t.Fatalf("no value list with a free cell %s it (%v)", map[bool]string{true: "after", false: "before"}[after], err)
	}
	return key, vl, free
}

func cellSizeAt(b []byte, off uint32) int32 {
	return int32(binary.LittleEndian.Uint32(b[BaseBlockSize+int64(off):]))
}

func putCellSizeAt(b []byte, off uint32, v int32) {
	binary.LittleEndian.PutUint32(b[BaseBlockSize+int64(off):], uint32(v))
}

// firstValueName returns the name of the key's first value.
func firstValueName(t testing.TB, k *Key) string {
	t.Helper()
	vs, err := k.Values()
	if err != nil || len(vs) == 0 {
		t.Fatalf("values of %q: %v", k.Path(), err)
	}
	return vs[0].Name()
}

// wantRefused checks that err is a *DamagedError (about path, when path is
// not "-") and that nothing was planned or written.
func wantRefused(t *testing.T, err error, path string, e *Editor, mf *memFile, orig []byte) *DamagedError {
	t.Helper()
	var de *DamagedError
	if !errors.As(err, &de) || !errors.Is(err, ErrDamaged) {
		t.Fatalf("got %v (%T), want a *DamagedError", err, err)
	}
	if path != "-" && de.Path != path {
		t.Errorf("DamagedError names key %q, want %q (%v)", de.Path, path, de)
	}
	if rs := e.Ranges(); len(rs) != 0 {
		t.Errorf("the refused edit planned writes: %v", rs)
	}
	if err := e.Flush(); err != nil && !errors.Is(err, ErrDamaged) {
		t.Logf("flush after the refusal: %v", err)
	}
	if !bytes.Equal(mf.b, orig) {
		t.Fatal("the hive bytes changed after a refused edit")
	}
	return de
}

// TestEditRefusesDamageNearEdit damages, in a real Windows SYSTEM hive, a
// structure that an edit touches and checks that the edit is refused with
// a *DamagedError naming it, and that nothing is planned or written.
func TestEditRefusesDamageNearEdit(t *testing.T) {
	orig := realSystem(t)
	h0, err := Open(bytes.NewReader(orig), int64(len(orig)))
	if err != nil {
		t.Fatal(err)
	}
	if r := h0.Check(); !r.OK() {
		t.Fatalf("the fixture is not clean:\n%s", r)
	}
	type damage struct {
		name string
		// hurt damages b and returns the key to edit and the value to
		// delete.
		hurt func(t *testing.T, b []byte) (key, value string)
	}
	for _, d := range []damage{
		{"free cell before a value list grown 8 bytes into it", func(t *testing.T, b []byte) (string, string) {
			k, vl, _ := valueListBesideFree(t, h0, true)
			p, _, _, _ := cellNeighbours(t, h0, vl)
			putCellSizeAt(b, p, int32(vl-p)+8)
			return k.Path(), firstValueName(t, k)
		}},
		{"free cell before a value list swallowing it whole", func(t *testing.T, b []byte) (string, string) {
			k, vl, _ := valueListBesideFree(t, h0, true)
			p, _, _, _ := cellNeighbours(t, h0, vl)
			putCellSizeAt(b, p, int32(vl-p)-cellSizeAt(b, vl)) // the bin still tiles
			return k.Path(), firstValueName(t, k)
		}},
		{"free cell after a value list with an impossible size", func(t *testing.T, b []byte) (string, string) {
			k, _, free := valueListBesideFree(t, h0, true)
			putCellSizeAt(b, free, 0x7FFFFFF8)
			return k.Path(), firstValueName(t, k)
		}},
		{"value list marked free", func(t *testing.T, b []byte) (string, string) {
			k, vl, _ := valueListBesideFree(t, h0, true)
			putCellSizeAt(b, vl, -cellSizeAt(b, vl))
			return k.Path(), firstValueName(t, k)
		}},
		{"header of the value list's bin: wrong own offset", func(t *testing.T, b []byte) (string, string) {
			k, vl, _ := valueListBesideFree(t, h0, true)
			bin, _ := h0.findBin(vl)
			binary.LittleEndian.PutUint32(b[BaseBlockSize+int64(bin.off)+4:], bin.off+binAlign)
			return k.Path(), firstValueName(t, k)
		}},
		{"header of the bin after the value list's", func(t *testing.T, b []byte) (string, string) {
			k, vl, _ := valueListBesideFree(t, h0, true)
			bin, _ := h0.findBin(vl)
			if bin.end() >= h0.base.HiveBinsSize {
				t.Skip("the last bin")
			}
			copy(b[BaseBlockSize+int64(bin.end()):], "hbXn")
			return k.Path(), firstValueName(t, k)
		}},
		{"size of the value list's bin", func(t *testing.T, b []byte) (string, string) {
			k, vl, _ := valueListBesideFree(t, h0, true)
			bin, _ := h0.findBin(vl)
			binary.LittleEndian.PutUint32(b[BaseBlockSize+int64(bin.off)+8:], bin.size+binAlign)
			return k.Path(), firstValueName(t, k)
		}},
	} {
		t.Run(d.name, func(t *testing.T) {
			b := bytes.Clone(orig)
			key, value := d.hurt(t, b)
			for _, op := range []string{"delete", "set"} {
				_, e, mf := editBytes(t, b)
				var err error
				if op == "delete" {
					err = e.DeleteValue(key, value)
				} else {
					err = e.SetValue(key, "WuofflineTest", RegDWORD, []byte{1, 0, 0, 0})
				}
				de := wantRefused(t, err, "-", e, mf, b)
				t.Logf("%s: %v", op, de)
			}
		})
	}
}

// TestEditRefusesBadSubkeyList points an entry of a subkey list outside
// the hive: creating or deleting a key under it is refused.
func TestEditRefusesBadSubkeyList(t *testing.T) {
	orig := realSystem(t)
	h0, err := Open(bytes.NewReader(orig), int64(len(orig)))
	if err != nil {
		t.Fatal(err)
	}
	// A key with at least three subkeys in one leaf.
	var parent *Key
	errStop := errors.New("found")
	h0.Walk(func(k *Key) error {
		if k.nk.subkeyCount >= 3 && k.Path() != "" {
			if l, err := h0.readList(k.nk.subkeyList); err == nil && l.sig != "ri" {
				parent = k
				return errStop
			}
		}
		return nil
	})
	if parent == nil {
		t.Fatal("no key with a leaf of 3 subkeys")
	}
	subs, err := parent.Subkeys()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		entry uint32
	}{
		{"outside the hive bins", 0x7FFFFFF8},
		{"into the middle of a cell", parent.off + 8},
		{"at a free cell", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(orig)
			entry := tc.entry
			if entry == 0 {
				_, vl, _ := valueListBesideFree(t, h0, true)
				_, next, _, _ := cellNeighbours(t, h0, vl)
				entry = next
			}
			// The last entry of the leaf (not the one the edits reach).
			l, _ := h0.readList(parent.nk.subkeyList)
			w := 4
			if l.hints != nil {
				w = 8
			}
			pos := BaseBlockSize + int64(l.off) + cellSizeLen + listHeaderSize + int64(w*(len(l.entries)-1))
			binary.LittleEndian.PutUint32(b[pos:], entry)
			for _, op := range []string{"create", "delete"} {
				_, e, mf := editBytes(t, b)
				if op == "create" {
					_, err = e.CreateKey(parent.Path() + `\WuofflineNew`)
				} else {
					err = e.DeleteKey(subs[0].Path())
				}
				de := wantRefused(t, err, "-", e, mf, b)
				if !strings.Contains(de.Error(), parent.Path()) {
					t.Errorf("%s: the error does not name the key %q: %v", op, parent.Path(), de)
				}
			}
		})
	}
}

// TestEditIgnoresDamageElsewhere damages a bin and a key far from the
// edited ones: the edit goes ahead, Verify passes, and the edit is what
// independent readers see.
func TestEditIgnoresDamageElsewhere(t *testing.T) {
	orig := realSystem(t)
	h0, err := Open(bytes.NewReader(orig), int64(len(orig)))
	if err != nil {
		t.Fatal(err)
	}
	const target = `ControlSet001\Control\Session Manager`
	k, err := h0.OpenKey(target)
	if err != nil {
		t.Fatal(err)
	}
	// The last bin, if no cell of the target key's path is in it: break
	// its tiling.
	bins, _ := h0.allBins()
	last := bins[len(bins)-1]
	if b, _ := h0.findBin(k.off); b == last {
		t.Skip("the target key is in the last bin")
	}
	b := bytes.Clone(orig)
	putCellSizeAt(b, last.off+binHeaderSize, 0x7FFFFFF8)
	_, e, mf := editBytes(t, b)
	if err := e.SetValue(target, "PendingFileRenameOperations", RegMultiSZ, utf16z("a\x00b\x00")); err != nil {
		t.Fatalf("an edit far from the damage was refused: %v", err)
	}
	if err := e.DeleteValue(target, "PendingFileRenameOperations"); err != nil {
		t.Fatal(err)
	}
	if r := e.Verify(); !r.OK() {
		t.Fatalf("Verify:\n%s", r)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(mf.b, b) {
		t.Fatal("nothing written")
	}
	// The damage is still there and the edit added no problem.
	problems := func(b []byte) map[string]bool {
		h, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, f := range h.Check().Problems() {
			m[f.String()] = true
		}
		return m
	}
	before, after := problems(b), problems(mf.b)
	if !before[fmt.Sprintf("error bin-cell at 0x%x: cell at 0x%x has an impossible size 2147483640 (bin at 0x%x)", last.off+binHeaderSize, last.off+binHeaderSize, last.off)] {
		t.Errorf("the planted damage is not reported: %v", before)
	}
	for f := range after {
		if !before[f] {
			t.Errorf("new problem: %s", f)
		}
	}
}

// hugeDeclared builds hives whose headers declare 1 GiB of hive bins while
// the file holds 144 KiB: the first bin of hivex's minimal hive, then
// zeros.
func hugeDeclared(t testing.TB) (clean, dirty []byte) {
	t.Helper()
	min, err := os.ReadFile(testutil.SharedFixture(t, "hives/hivex/minimal"))
	if err != nil {
		t.Fatal(err)
	}
	const declared = 1 << 30
	b := make([]byte, BaseBlockSize+144<<10)
	copy(b, min)
	binary.LittleEndian.PutUint32(b[bbOffHiveBins:], declared)
	putBaseBlockChecksum(b)
	clean = b
	dirty = bytes.Clone(b)
	binary.LittleEndian.PutUint32(dirty[bbOffSequence1:], binary.LittleEndian.Uint32(dirty[bbOffSequence2:])+1)
	putBaseBlockChecksum(dirty)
	return clean, dirty
}

// hugeLog returns a new-format log for primary (whose sequence numbers are
// seq, seq-1) declaring 1 GiB of hive bins, with one entry rewriting the
// first bin so that its header claims nearly all of it.
func hugeLog(t testing.TB, primary []byte, seq uint32) []byte {
	t.Helper()
	le := binary.LittleEndian
	page := bytes.Clone(primary[BaseBlockSize : BaseBlockSize+binAlign])
	le.PutUint32(page[8:], 1<<30-binAlign)
	entry := make([]byte, alignUp(hvleHeaderSize+hvleRefSize+binAlign, logSector))
	copy(entry, hvleSignature)
	le.PutUint32(entry[hvleOffSize:], uint32(len(entry)))
	le.PutUint32(entry[hvleOffHiveBins:], 1<<30)
	le.PutUint32(entry[hvleOffPageCount:], 1)
	le.PutUint32(entry[hvleHeaderSize:], 0)
	le.PutUint32(entry[hvleHeaderSize+4:], binAlign)
	copy(entry[hvleHeaderSize+hvleRefSize:], page)
	log := make([]byte, logSector, logSector+len(entry))
	copy(log, primary[:logSector])
	le.PutUint32(log[bbOffFileType:], fileTypeLogNew)
	le.PutUint32(log[bbOffHiveBins:], 1<<30)
	setLogSeq(log, seq)
	log = append(log, entry...)
	setEntrySeq(log, logSector, seq)
	return log
}

// zeroTail reads as b followed by zeros, without holding the zeros.
type zeroTail struct{ b []byte }

func (z *zeroTail) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	if off < int64(len(z.b)) {
		n = copy(p, z.b[off:])
	}
	clear(p[n:])
	return len(p), nil
}

// TestMemoryBoundedByData opens, checks and tries to edit hives whose
// headers declare 1 GiB of hive bins over 144 KiB of data: everything the
// package allocates follows the data, not the declarations.
func TestMemoryBoundedByData(t *testing.T) {
	clean, dirty := hugeDeclared(t)
	seq := binary.LittleEndian.Uint32(dirty[bbOffSequence1:])
	log := hugeLog(t, dirty, seq)
	for _, tc := range []struct {
		name    string
		b       []byte
		logs    []Log
		openErr error // nil: Open must succeed
	}{
		{"clean base block", clean, nil, ErrTruncated},
		{"dirty, no log", dirty, nil, nil},
		{"dirty, a log declaring 1 GiB", dirty, []Log{memLog("LOG1", log)}, nil},
		{"a log that claims to be 1 GiB long", dirty, []Log{{Name: "LOG2", R: bytes.NewReader(log), Size: 1 << 30}}, io.ErrUnexpectedEOF},
		{"a 256 MiB log (zeros after its entry)", dirty, []Log{{Name: "LOG1", R: &zeroTail{log}, Size: 256 << 20}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			h, err := Open(bytes.NewReader(tc.b), int64(len(tc.b)), tc.logs...)
			if tc.openErr != nil {
				if !errors.Is(err, tc.openErr) {
					t.Fatalf("Open: %v, want %v", err, tc.openErr)
				}
			} else {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if r := h.Check(); r.OK() {
					t.Errorf("Check finds nothing wrong")
				}
				h.Walk(func(*Key) error { return nil })
				mf := &memFile{b: bytes.Clone(tc.b)}
				e, err := NewEditor(h, mf, mf.grow, tc.logs...)
				if err == nil {
					err = e.SetValue("", "x", RegBinary, make([]byte, 100))
				}
				if err == nil {
					t.Fatal("an edit of the hive was accepted")
				}
				t.Logf("edit refused: %v", err)
				if !bytes.Equal(mf.b, tc.b) {
					t.Fatal("the hive was written")
				}
			}
			runtime.ReadMemStats(&after)
			if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
				t.Fatalf("allocated %d MiB for 144 KiB of hive", got>>20)
			}
			if got := int64(after.HeapInuse) - int64(before.HeapInuse); got > 64<<20 {
				t.Fatalf("heap grew by %d MiB for 144 KiB of hive", got>>20)
			}
		})
	}
}

// TestVerifyAfterEdits edits a real SYSTEM hive (keys created and
// deleted, big data, a value set and deleted, a Windows-made subtree
// deleted), checks that Verify passes reading a small part of the hive,
// and that after Flush the full checker and independent readers
// (hivexregedit, reglookup) see exactly the model.
func TestVerifyAfterEdits(t *testing.T) {
	orig := realSystem(t)
	cr := &countingReader{r: bytes.NewReader(orig)}
	h, err := Open(cr, int64(len(orig)))
	if err != nil {
		t.Fatal(err)
	}
	pre := h.Check().Findings
	mf := &memFile{b: bytes.Clone(orig)}
	e, err := NewEditor(h, mf, mf.grow)
	if err != nil {
		t.Fatal(err)
	}
	const sm = `ControlSet001\Control\Session Manager`
	// A Windows-made key with a subtree, to delete.
	svc, err := h.OpenKey(`ControlSet001\Services`)
	if err != nil {
		t.Fatal(err)
	}
	subs, err := svc.Subkeys()
	if err != nil {
		t.Fatal(err)
	}
	var victim string
	for _, s := range subs {
		if s.SubkeyCount() > 0 && s.ValueCount() > 0 {
			victim = s.Path()
			break
		}
	}
	big := bytes.Repeat([]byte("wuoffline"), 5000)
	steps := []func() error{
		func() error { _, err := e.CreateKey(`ControlSet001\Control\WuofflineGone\Sub`); return err },
		func() error { return e.SetValue(`ControlSet001\Control\WuofflineGone\Sub`, "big", RegBinary, big) },
		func() error { _, err := e.CreateKey(`ControlSet001\Control\WuofflineKeep`); return err },
		func() error {
			return e.SetValue(`ControlSet001\Control\WuofflineKeep`, "n", RegDWORD, []byte{42, 0, 0, 0})
		},
		func() error { return e.SetValue(`ControlSet001\Control\WuofflineKeep`, "big", RegBinary, big) },
		func() error { return e.SetValue(sm, "PendingFileRenameOperations", RegMultiSZ, utf16z("a\x00b\x00")) },
		func() error { return e.DeleteValue(sm, "PendingFileRenameOperations") },
		func() error { return e.DeleteKey(`ControlSet001\Control\WuofflineGone`) },
		func() error { return e.DeleteKey(victim) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	cr.bytes.Store(0)
	cr.calls.Store(0)
	r := e.Verify()
	if !r.OK() {
		t.Fatalf("Verify:\n%s", r)
	}
	t.Logf("Verify: %d bins, %d keys, %d values; read %d bytes in %d reads of a %d-byte hive", r.Bins, r.Keys, r.Values, cr.bytes.Load(), cr.calls.Load(), len(orig))
	if cr.bytes.Load() > int64(len(orig))/10 {
		t.Errorf("Verify read %d bytes of a %d-byte hive", cr.bytes.Load(), len(orig))
	}
	if r.Keys == 0 || r.Values == 0 {
		t.Errorf("Verify checked %d keys and %d values", r.Keys, r.Values)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "SYSTEM")
	if err := os.WriteFile(path, mf.b, 0o644); err != nil {
		t.Fatal(err)
	}
	h2 := reopen(t, path, pre...)
	// The model, through our reader.
	for _, gone := range []string{`ControlSet001\Control\WuofflineGone`, victim} {
		if _, err := h2.OpenKey(gone); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s after deleting it: %v", gone, err)
		}
	}
	k, err := h2.OpenKey(`ControlSet001\Control\WuofflineKeep`)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := k.Value("big"); err != nil {
		t.Error(err)
	} else if d, err := v.Data(); err != nil || !bytes.Equal(d, big) {
		t.Errorf("big: %d bytes, %v", len(d), err)
	}
	// Independent readers.
	if tool := testutil.RequireTool(t, "hivexregedit"); tool != "" {
		theirs, err := exec.Command(tool, "--export", path, `\`).Output()
		if err != nil {
			t.Fatalf("hivexregedit: %v", err)
		}
		if ours := regExport(t, h2); ours != string(theirs) {
			t.Error("hivexregedit --export differs from our reading")
		}
		for _, want := range []string{"[\\ControlSet001\\Control\\WuofflineKeep]\n\"big\"=hex(3):77,75,6f", "\"n\"=dword:0000002a"} {
			if !strings.Contains(string(theirs), want) {
				t.Errorf("hivexregedit does not show %q", want)
			}
		}
		for _, gone := range []string{"WuofflineGone", victim + "]"} {
			if strings.Contains(string(theirs), gone) {
				t.Errorf("hivexregedit still shows %q", gone)
			}
		}
	}
	if tool := testutil.RequireTool(t, "reglookup"); tool != "" {
		compareLines(t, walkLines(t, h2), reglookupLines(t, tool, path))
	}
}

// TestVerifyCatchesBadPlan plants editor mistakes in the planned bytes
// after a good edit: Verify must report each.
func TestVerifyCatchesBadPlan(t *testing.T) {
	orig := realSystem(t)
	const key = `ControlSet001\Control\Session Manager`
	for _, tc := range []struct {
		name string
		bad  func(t *testing.T, h *Hive, e *Editor)
	}{
		{"new value node's signature", func(t *testing.T, h *Hive, e *Editor) {
			v := mustValue(t, h, key, "WuofflineV")
			e.view.write([]byte("xx"), BaseBlockSize+int64(v.off)+cellSizeLen)
		}},
		{"new value node marked free", func(t *testing.T, h *Hive, e *Editor) {
			v := mustValue(t, h, key, "WuofflineV")
			ci, _, _ := h.cellAt(v.off, "value")
			e.putCellSize(v.off, ci.size, false)
		}},
		{"value list count too high", func(t *testing.T, h *Hive, e *Editor) {
			k, _ := h.OpenKey(key)
			e.put32(k.off, nkOffValues, k.nk.valueCount+1000)
		}},
		{"freed value node left allocated", func(t *testing.T, h *Hive, e *Editor) {
			for off := range h.touched.freed {
				ci, _, err := h.cellAt(off, "freed")
				if err == nil {
					e.putCellSize(off, ci.size, true)
					return
				}
			}
			t.Fatal("no freed cell")
		}},
		{"the bin of the key's value list broken", func(t *testing.T, h *Hive, e *Editor) {
			k, _ := h.OpenKey(key)
			b, _ := h.findBin(k.nk.valueList)
			e.view.write([]byte{0xF8, 0xFF, 0xFF, 0x7F}, BaseBlockSize+int64(b.off)+binHeaderSize)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, e, _ := editBytes(t, orig)
			if err := e.SetValue(key, "WuofflineV", RegSZ, utf16z("value")); err != nil {
				t.Fatal(err)
			}
			if err := e.DeleteValue(key, "ObjectDirectories"); err != nil {
				t.Fatal(err)
			}
			if r := e.Verify(); !r.OK() {
				t.Fatalf("Verify of the good plan:\n%s", r)
			}
			tc.bad(t, h, e)
			r := e.Verify()
			if r.OK() {
				t.Fatal("Verify passes a broken plan")
			}
			t.Logf("%s", r)
		})
	}
}

func mustValue(t *testing.T, h *Hive, key, name string) *Value {
	t.Helper()
	k, err := h.OpenKey(key)
	if err != nil {
		t.Fatal(err)
	}
	v, err := k.Value(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// FuzzVerify edits arbitrary hives and runs the touched-cell checker:
// on a hive the full checker passes, no edit may be refused as damaged
// and Verify must pass the plan (no false alarm in either direction);
// then one planned byte is changed anywhere and Verify runs again, which
// must not panic or hang whatever it finds.
func FuzzVerify(f *testing.F) {
	for _, s := range fuzzSeedHives {
		f.Add(seedBytes(f, s), uint32(0), byte(0))
	}
	f.Add(seedBytes(f, "ManySubkeysHive"), uint32(0x1020), byte(0xFF))
	f.Fuzz(func(t *testing.T, data []byte, pos uint32, val byte) {
		data, ok := consistentBase(data)
		if !ok {
			return
		}
		h, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		ok = h.Check().OK()
		mf := &memFile{b: bytes.Clone(data)}
		e, err := NewEditor(h, mf, mf.grow)
		if err != nil {
			return
		}
		refused := func(err error) {
			if ok && errors.Is(err, ErrDamaged) {
				t.Fatalf("an edit of a hive the checker passes was refused: %v", err)
			}
		}
		_, err = e.CreateKey(`Fz\A`)
		refused(err)
		refused(e.SetValue(`Fz`, "v", RegBinary, bytes.Repeat([]byte{7}, 300)))
		refused(e.SetValue(``, "w", RegDWORD, []byte{1, 2, 3, 4}))
		refused(e.DeleteKey(`Fz\A`))
		if r := e.Verify(); ok && e.err == nil && !r.OK() {
			t.Fatalf("Verify rejects the plan of a sound edit:\n%s", r)
		}
		if e.view.size > 0 {
			p := int64(pos) % e.view.size
			e.view.write([]byte{val}, p)
			e.Verify()
		}
	})
}

// TestEditRefusesBadSK breaks the sk list links of the security cell an
// edit changes the count of: creating a key under its users, or deleting
// one, is refused and nothing is planned.
func TestEditRefusesBadSK(t *testing.T) {
	orig := realSystem(t)
	h0, err := Open(bytes.NewReader(orig), int64(len(orig)))
	if err != nil {
		t.Fatal(err)
	}
	const parent = `ControlSet001\Control`
	k, err := h0.OpenKey(parent)
	if err != nil {
		t.Fatal(err)
	}
	subs, err := k.Subkeys()
	if err != nil {
		t.Fatal(err)
	}
	var child string
	for _, s := range subs {
		if s.nk.security == k.nk.security && s.SubkeyCount() == 0 {
			child = s.Path()
			break
		}
	}
	if child == "" {
		t.Fatalf("no leaf subkey of %s shares its sk", parent)
	}
	for _, tc := range []struct {
		name  string
		field int
		val   uint32
	}{
		{"flink into the middle of a cell", skOffFlink, k.off + 8},
		{"blink to a key node", skOffBlink, k.off},
		{"flink to itself", skOffFlink, k.nk.security},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(orig)
			binary.LittleEndian.PutUint32(b[BaseBlockSize+int64(k.nk.security)+cellSizeLen+int64(tc.field):], tc.val)
			_, e, mf := editBytes(t, b)
			_, err := e.CreateKey(parent + `\WuofflineNew`)
			wantRefused(t, err, "-", e, mf, b)
			_, e, mf = editBytes(t, b)
			wantRefused(t, e.DeleteKey(child), "-", e, mf, b)
		})
	}
}
