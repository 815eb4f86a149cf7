package session

import (
	"testing"
	"time"

	"github.com/wuoffline/wuoffline/internal/testutil"
	"github.com/wuoffline/wuoffline/journal"
)

// writeBrokenGPT unpacks broken-gpt.img and opens it for writing: the
// image, its original sha256, the session and its Windows volume.
func writeBrokenGPT(t *testing.T) (string, string, *Session, *Volume) {
	t.Helper()
	img := testutil.TestImage(t, "broken-gpt.img")
	orig := testutil.SHA256File(t, img)
	s, err := Open(img, Options{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Pick(0)
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	return img, orig, s, v
}

// TestCommitUnitsFileSpace: a plan's renames are one journal unit each,
// with their labels, in FILE coordinates (the header says so, and where
// the volume lies), grouped by the volume's cluster; undo through Replay
// takes both back unit by unit and the image is byte for byte the
// original.
func TestCommitUnitsFileSpace(t *testing.T) {
	img, orig, s, v := writeBrokenGPT(t)
	defer s.Close()
	p, err := s.Plan(v)
	if err != nil {
		t.Fatal(err)
	}
	labels := []string{`rename Windows\System32\catroot2 -> catroot2.x`, `rename Windows\System32\catroot2.x -> catroot2.y`}
	if _, err := p.Rename(labels[0], `Windows\System32\catroot2`, `Windows\System32\catroot2.x`); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Rename(labels[1], `Windows\System32\catroot2.x`, `Windows\System32\catroot2.y`); err != nil {
		t.Fatal(err)
	}
	jp, err := s.Commit(p, CommitOptions{Note: "test"})
	if err != nil {
		t.Fatal(err)
	}
	info, err := journal.Open(jp)
	if err != nil || info.Damage != nil {
		t.Fatalf("journal: %v %v", err, info.Damage)
	}
	h := info.Header
	if h.Space != journal.SpaceFile || h.Offset != v.Offset || h.Block != 4096 || h.OldSize != h.NewSize {
		t.Errorf("header: space %q offset %d (volume at %d) block %d sizes %d/%d", h.Space, h.Offset, v.Offset, h.Block, h.OldSize, h.NewSize)
	}
	if len(info.Units) != 2 || info.Units[0].Label != labels[0] || info.Units[1].Label != labels[1] {
		t.Fatalf("units: %+v", info.Units)
	}
	// Both renames write the System32 index block and records of one
	// MFT cluster: one group.
	if len(info.Groups) != 1 {
		t.Errorf("groups: %+v", info.Groups)
	}
	rep, err := s.Replay(v, info, false)
	if err != nil || !rep.Complete() || rep.UnitsDone != 2 {
		t.Fatalf("undo: %v %+v", err, rep)
	}
	s.Close()
	if testutil.SHA256File(t, img) != orig {
		t.Error("undo did not restore the image byte for byte")
	}
}

// TestReplayVolumeJournal: a journal in volume coordinates from the
// volume's offset (made before sessions) still replays on its volume.
func TestReplayVolumeJournal(t *testing.T) {
	img, orig, s, v := writeBrokenGPT(t)
	defer s.Close()
	vw, err := s.Target.WriterAt(v.Volume)
	if err != nil {
		t.Fatal(err)
	}
	o := journal.NewOverlay(v.Reader(), v.Size)
	o.Unit("volume bytes").WriteAt([]byte("journal in volume space"), 0x3000)
	dir, _ := s.JournalDir()
	h := journal.Header{ID: v.ID, Target: img, Offset: v.Offset, Space: journal.SpaceVolume, Created: time.Now()}
	jp, err := journal.Commit(dir, h, o, vw, s.file.Sync)
	if err != nil {
		t.Fatal(err)
	}
	if testutil.SHA256File(t, img) == orig {
		t.Fatal("the change was not written")
	}
	info, err := journal.Open(jp)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Replay(v, info, false)
	if err != nil || !rep.Complete() || rep.Done != 1 {
		t.Fatalf("undo: %v %+v", err, rep)
	}
	s.Close()
	if testutil.SHA256File(t, img) != orig {
		t.Error("undo of a volume-space journal did not restore the image")
	}
}
