package journal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// growPlan plans, over an 8 KiB file, a metadata rewrite inside it, an
// append straddling its end, and a cluster past a gap, as a container
// format allocating clusters does.
func growPlan(t *testing.T, f *os.File) *Overlay {
	t.Helper()
	o := NewOverlay(f, 8192)
	if _, err := o.Unit("append").WriteAt(make([]byte, 10), 9000); err == nil {
		t.Fatal("a write past the end succeeded without AllowGrowth")
	}
	o.AllowGrowth(1 << 20)
	if _, err := o.Unit("too far").WriteAt([]byte{1}, 1<<20); err == nil {
		t.Fatal("a write past the growth limit succeeded")
	}
	o.Unit("L2 table").WriteAt(randomBytes(1, 512), 512)
	o.Unit("append").WriteAt(randomBytes(2, 3000), 8000)
	o.Unit("cluster").WriteAt(randomBytes(3, 4096), 20480)
	if o.Size() != 20480+4096 || o.BaseSize() != 8192 {
		t.Fatalf("sizes %d, %d", o.Size(), o.BaseSize())
	}
	gap := make([]byte, 100)
	if n, err := o.ReadAt(gap, 15000); n != 100 || err != nil || !bytes.Equal(gap, make([]byte, 100)) {
		t.Fatalf("gap reads %d, %v, %x", n, err, gap[:8])
	}
	return o
}

// TestGrowth: a plan that grows the target is journaled with the old and
// new sizes, in file coordinates; commit extends the file, undo restores
// it byte for byte and cuts it back; the old API (no Truncate) and a file
// that grew further since leave the growth and say so; a changed appended
// range leaves its unit and the size.
func TestGrowth(t *testing.T) {
	dir := t.TempDir()
	orig := randomBytes(50, 8192)
	f := newImage(t, dir, orig)
	o := growPlan(t, f)
	h := header()
	h.Space = SpaceFile
	path, err := CommitOn(dir, h, o, f)
	if err != nil {
		t.Fatal(err)
	}
	fixed := make([]byte, o.Size())
	o.ReadAt(fixed, 0)
	if got := fileBytes(t, f); !bytes.Equal(got, fixed) {
		t.Fatalf("after commit: %d bytes, want %d, equal %v", len(got), len(fixed), bytes.Equal(got, fixed))
	}
	info, err := Open(path)
	if err != nil || info.Header.OldSize != 8192 || info.Header.NewSize != o.Size() || info.Header.Space != SpaceFile {
		t.Fatalf("header %+v, %v", info.Header, err)
	}
	grown := 0
	for _, r := range info.Records {
		if r.Grown {
			grown++
			if r.Off < 8192 {
				t.Errorf("grown range at %#x, before the old end", r.Off)
			}
		} else if r.Off+r.Len > 8192 {
			t.Errorf("range %#x+%d crosses the old end with original bytes", r.Off, r.Len)
		}
	}
	if grown != 2 {
		t.Fatalf("%d grown ranges, want the append's tail and the cluster", grown)
	}
	rep, err := UndoOn(path, f)
	if err != nil || !rep.Complete() || !rep.Truncated || !bytes.Equal(fileBytes(t, f), orig) {
		t.Fatalf("undo: %s, %v", rep.Summary(), err)
	}

	// Again, then the file grows further (Windows wrote to the virtual
	// disk and the container appended): restore, but never cut off what
	// was appended since.
	o = growPlan(t, f)
	path, err = CommitOn(dir, h, o, f)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("appended since"), o.Size()+100)
	rep, err = UndoOn(path, f)
	if err != nil || rep.Truncated || !rep.SizeLeft || !strings.Contains(rep.SizeNote, "grew") || rep.Complete() {
		t.Fatalf("undo after further growth: %s, %v", rep.Summary(), err)
	}
	if got := fileBytes(t, f); !bytes.Equal(got[:8192], orig) || int64(len(got)) != o.Size()+114 {
		t.Fatal("undo after further growth: the original bytes are not back, or the file was cut")
	}
	f.Truncate(8192)

	// The old API cannot truncate.
	o = growPlan(t, f)
	path, err = CommitOn(dir, h, o, f)
	if err != nil {
		t.Fatal(err)
	}
	rep, err = Undo(path, f, f, f.Sync)
	if err != nil || rep.Truncated || !rep.SizeLeft || !bytes.Equal(fileBytes(t, f)[:8192], orig) {
		t.Fatalf("undo through the old API: %s, %v", rep.Summary(), err)
	}
	f.Truncate(8192)

	// An appended range changed since: its unit is left, and the size.
	o = growPlan(t, f)
	path, err = CommitOn(dir, h, o, f)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("WINDOWS"), 21000)
	rep, err = UndoOn(path, f)
	if err != nil || rep.Truncated || !rep.SizeLeft || rep.UnitsLeft != 1 || rep.UnitsDone != 2 {
		t.Fatalf("undo with a changed appended cluster: %s, %v", rep.Summary(), err)
	}
	if got := fileBytes(t, f); !bytes.Equal(got[:8000], orig[:8000]) || int64(len(got)) != o.Size() {
		t.Fatal("undo with a changed appended cluster")
	}
}

// TestGrowthInterrupted: a grown plan interrupted after every number of
// writes is finished by resume or rolled back by undo, byte for byte.
func TestGrowthInterrupted(t *testing.T) {
	orig := randomBytes(51, 8192)
	for k := 0; k <= 5; k++ {
		for _, finish := range []string{"undo", "resume"} {
			dir := t.TempDir()
			f := newImage(t, dir, orig)
			o := growPlan(t, f)
			want := make([]byte, o.Size())
			o.ReadAt(want, 0)
			h := header()
			h.Space, h.OldSize, h.NewSize = SpaceFile, o.BaseSize(), o.Size()
			j := prepared(t, dir, h, o)
			fw := testutil.NewFaultWriter(f, k, testutil.FaultError)
			applied := j.Apply(fw, nil) == nil
			j.Close()
			if finish == "resume" && !applied {
				rep, err := ResumeOn(j.Path(), f)
				if err != nil || !rep.Complete() || !bytes.Equal(fileBytes(t, f), want) {
					t.Fatalf("k=%d resume: %+v, %v", k, rep, err)
				}
			}
			rep, err := UndoOn(j.Path(), f)
			if err != nil || !rep.Complete() || !bytes.Equal(fileBytes(t, f), orig) {
				t.Fatalf("k=%d %s then undo: %+v, %v", k, finish, rep, err)
			}
		}
	}
}

// TestFindDamaged: Find never skips a journal it cannot read, reports a
// missing one (a gap in the numbers below a fix not yet undone), ignores a
// plan abandoned while being written (.part), and undo of such a list
// never says "nothing to undo".
func TestFindDamaged(t *testing.T) {
	dir := t.TempDir()
	orig := randomBytes(52, imageSize)
	img := newImage(t, dir, orig)
	var paths []string
	for i := range 3 {
		o := NewOverlay(img, imageSize)
		o.Unit("change").WriteAt(randomBytes(uint64(i), 100), int64(i)*4096)
		p, err := CommitOn(dir, header(), o, img)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	// An abandoned plan: a .part file.
	j, err := Create(dir, header())
	if err != nil {
		t.Fatal(err)
	}
	j.f.Close()
	// The newest journal gets a flipped byte in its range, the middle one
	// disappears.
	raw, _ := os.ReadFile(paths[2])
	in, _ := Read(bytes.NewReader(raw), int64(len(raw)))
	raw[in.Records[0].pos+in.Records[0].data] ^= 0x10
	os.WriteFile(paths[2], raw, 0o600)
	os.Remove(paths[1])
	infos, err := Find(dir, testID)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[DamageKind]int{}
	for _, in := range infos {
		if de := in.Damaged(); de != nil {
			kinds[de.Kind]++
			if de.Kind == DamageMissing && de.Seq != 2 {
				t.Errorf("missing journal number %d, want 2", de.Seq)
			}
		}
	}
	if len(infos) != 3 || kinds[DamageFrames] != 1 || kinds[DamageMissing] != 1 {
		t.Fatalf("Find: %d journals, damage %v", len(infos), kinds)
	}
	todo := Undoable(infos)
	if len(todo) != 3 {
		t.Fatalf("Undoable: %d", len(todo))
	}
	var damaged int
	for _, in := range todo {
		_, err := UndoOn(in.Path, img)
		var de *DamagedError
		if errors.As(err, &de) {
			damaged++
			if !strings.Contains(de.Error(), filepath.Base(dir)) {
				t.Errorf("damage report %q does not name the file", de)
			}
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if damaged != 2 {
		t.Fatalf("%d journals reported damaged, want 2", damaged)
	}
	// A journal whose header is unreadable is returned, with its damage.
	h := header()
	h.Created = h.Created.Add(-time.Hour)
	os.WriteFile(filepath.Join(dir, FileName(h)), append([]byte(magic), "garbage garbage"...), 0o600)
	infos, _ = Find(dir, testID)
	kinds = map[DamageKind]int{}
	for _, in := range infos {
		if de := in.Damaged(); de != nil {
			kinds[de.Kind]++
		}
	}
	if kinds[DamageHeader] != 1 {
		t.Fatalf("Find with an unreadable journal: %v", kinds)
	}
	// Once every journal older than the gap is undone, the gap no longer
	// matters to undo.
	infos, _ = Find(dir, testID)
	for _, in := range infos {
		if de := in.Damaged(); de != nil && de.Kind == DamageMissing {
			t.Errorf("gap still reported after the older journal was undone")
		}
	}
}

// TestRollbackOn: a grown plan whose write fails is rolled back through
// the journal itself, and the file cut back.
func TestRollbackOn(t *testing.T) {
	dir := t.TempDir()
	orig := randomBytes(53, 8192)
	f := newImage(t, dir, orig)
	o := growPlan(t, f)
	h := header()
	h.Space, h.OldSize, h.NewSize = SpaceFile, o.BaseSize(), o.Size()
	j := prepared(t, dir, h, o)
	defer j.Close()
	if err := j.ApplyOn(&failAfter{f, 2}); err == nil {
		t.Fatal("ApplyOn through a failing device succeeded")
	}
	rep, err := j.RollbackOn(f)
	if err != nil || !rep.Complete() || !rep.Truncated || !bytes.Equal(fileBytes(t, f), orig) {
		t.Fatalf("RollbackOn: %s, %v", rep.Summary(), err)
	}
}

// failAfter is a device whose writes fail after n; it can still be
// truncated and sized (an os.File underneath).
type failAfter struct {
	*os.File
	n int
}

func (d *failAfter) WriteAt(p []byte, off int64) (int, error) {
	if d.n <= 0 {
		return 0, errors.New("device refuses the write")
	}
	d.n--
	return d.File.WriteAt(p, off)
}
