package ntfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestOpenWriterRefusesDirty sets the $Volume dirty bit (0x0001 of
// $VOLUME_INFORMATION's flags) and expects OpenWriter to refuse.
func TestOpenWriterRefusesDirty(t *testing.T) {
	v := wtMakeVolume(t, 32<<20, "-s", "512", "-c", "4096")
	f := wtFile(t, v.path)
	w, err := newWriter(f, f, v.size, WriterOptions{NoVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	tx := w.begin()
	rec, err := tx.record(3)
	if err != nil {
		t.Fatal(err)
	}
	a, ok, err := rec.FindAttr(AttrVolumeInformation, "")
	if err != nil || !ok {
		t.Fatalf("$VOLUME_INFORMATION: %v %v", ok, err)
	}
	vi := a.Value()
	putLE16(vi[0xA:], le16(vi[0xA:])|0x0001)
	tx.dirty(rec)
	if err := tx.flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.commit(tx); err != nil {
		t.Fatal(err)
	}
	// Record 3 is mirrored: $MFTMirr holds the same bytes.
	g, err := loadGeometry(f, v.size)
	if err != nil {
		t.Fatal(err)
	}
	m1, m2 := make([]byte, g.recSize), make([]byte, g.recSize)
	if err := readRuns(f, g, g.mftRuns, 3*g.recSize, m1); err != nil {
		t.Fatal(err)
	}
	if err := readRuns(f, g, g.mirrRuns, 3*g.recSize, m2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m1, m2) {
		t.Error("$MFTMirr copy of record 3 differs from $MFT's")
	}
	_, err = OpenWriter(f, f, v.size, WriterOptions{})
	var ref *RefusedError
	if !errors.As(err, &ref) {
		t.Fatalf("OpenWriter on a dirty volume: %v, want a RefusedError", err)
	}
	found := false
	for _, r := range ref.Refusals {
		found = found || r.ID == "dirty"
	}
	if !found {
		t.Errorf("refusals %+v lack \"dirty\"", ref.Refusals)
	}
}

// TestRenameLeavesLogFileAndVolume: renames never write $LogFile or
// $Volume (a clean $LogFile stays as it is; $Volume flags, known or not,
// are kept), and every range a rename writes is one it planned.
func TestRenameLeavesLogFileAndVolume(t *testing.T) {
	v := wtMakeVolume(t, 32<<20, "-s", "512", "-c", "4096")
	mp, unmount := wtMount(t, v.path, false)
	os.Mkdir(filepath.Join(mp, "d"), 0o755)
	for _, n := range []string{"a", "b", "c"} {
		os.WriteFile(filepath.Join(mp, n), nil, 0o644)
	}
	unmount()
	before, err := os.ReadFile(v.path)
	if err != nil {
		t.Fatal(err)
	}
	w := wtWriter(t, v.path)
	var planned []Range
	for _, mv := range [][2]string{{"a", "d/a2"}, {"b", "B"}, {"d", "e"}} {
		p, err := w.PlanRename(mv[0], mv[1])
		if err != nil {
			t.Fatal(err)
		}
		wrote, err := w.Rename(mv[0], mv[1])
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != len(wrote) {
			t.Errorf("%v: planned %v, wrote %v", mv, p, wrote)
		}
		planned = append(planned, p...)
	}
	after, err := os.ReadFile(v.path)
	if err != nil {
		t.Fatal(err)
	}
	// Every changed byte lies in a planned range.
	in := func(off int64) bool {
		for _, r := range planned {
			if off >= r.Off && off < r.Off+r.Len {
				return true
			}
		}
		return false
	}
	for i := range before {
		if before[i] != after[i] && !in(int64(i)) {
			t.Fatalf("byte 0x%x changed outside the planned ranges", i)
		}
	}
	// $LogFile's data and $Volume's record are untouched.
	tx := w.begin()
	for _, num := range []uint64{2, 3} {
		off := int64(num) * tx.g.recSize
		sp, err := tx.g.spans(tx.g.mftRuns, off, tx.g.recSize)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sp {
			if !bytes.Equal(before[s.off:s.off+s.n], after[s.off:s.off+s.n]) {
				t.Errorf("MFT record %d changed", num)
			}
		}
	}
	rec, _ := tx.record(2)
	a, _, _ := rec.FindAttr(AttrData, "")
	runs, _ := a.Runs()
	sp, err := tx.g.spans(runs, 0, a.DataSize())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sp {
		if !bytes.Equal(before[s.off:s.off+s.n], after[s.off:s.off+s.n]) {
			t.Error("$LogFile changed")
		}
	}
}
