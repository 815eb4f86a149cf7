package hive

import (
	"bytes"
	"testing"
)

// TestOldLogRemnant: the log with 4 bytes appended after its dirty pages
// is read exactly like the original (EXPECTED.md, OldLogWithRemnantData).
func TestOldLogRemnant(t *testing.T) {
	orig, err := readLog(memLog("orig", yarpFile(t, "OldDirtyHive/OldDirtyHive.LOG1")))
	if err != nil || orig.err != nil {
		t.Fatal(err, orig.err)
	}
	remn, err := readLog(memLog("remn", yarpFile(t, "OldLogWithRemnantData")))
	if err != nil || remn.err != nil {
		t.Fatal(err, remn.err)
	}
	if orig.dirtyStart != 1024 || remn.dirtyStart != 1024 {
		t.Errorf("dirty pages start at %d and %d, want 1024", orig.dirtyStart, remn.dirtyStart)
	}
	var offs []int64
	if err := remn.oldPages(func(off int64, page []byte) bool {
		offs = append(offs, off)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(offs) != 64 {
		t.Fatalf("%d dirty pages, want 64", len(offs))
	}
	// Dirty ranges of the hive bins: 0-0x2000, 0xC000-0xE000,
	// 0x6A000-0x6B000, 0x74000-0x77000.
	ranges := [][2]int64{{0, 0x2000}, {0xC000, 0xE000}, {0x6A000, 0x6B000}, {0x74000, 0x77000}}
	i := 0
	for _, r := range ranges {
		for o := r[0]; o < r[1]; o += 512 {
			if offs[i] != BaseBlockSize+o {
				t.Fatalf("page %d at file 0x%x, want 0x%x", i, offs[i], BaseBlockSize+o)
			}
			i++
		}
	}
	// The pages end 4 bytes before the end: the remnant "remn" is not read.
	rest := make([]byte, remn.size-(1024+64*512))
	remn.r.ReadAt(rest, 1024+64*512)
	if got := string(rest); got != "remn" {
		t.Errorf("after the dirty pages: %q", got)
	}
}

// FuzzLog feeds arbitrary bytes as the only log, then as LOG1 beside the
// real LOG2, of a dirty new-format and a dirty old-format primary: no
// panic, bounded work, and any success is a clean recovered base block.
func FuzzLog(f *testing.F) {
	newPrimary := yarpFile(f, "NewDirtyHive1/NewDirtyHive")
	oldPrimary := yarpFile(f, "OldDirtyHive/OldDirtyHive")
	log2 := yarpFile(f, "NewDirtyHive1/NewDirtyHive.LOG2")
	for _, rel := range []string{
		"NewDirtyHive1/NewDirtyHive.LOG1", "NewDirtyHive1/NewDirtyHive.LOG2", "OldDirtyHive/OldDirtyHive.LOG1",
		"OldLogWithRemnantData", "BadLogHive1/BadLogHive.LOG1", "BadLogHive2/BadLogHive.LOG1", "BadLogHive3/BadLogHive.LOG2",
	} {
		f.Add(yarpFile(f, rel))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, primary := range [][]byte{newPrimary, oldPrimary} {
			for _, logs := range [][]Log{
				{memLog("LOG1", data)},
				{memLog("LOG1", data), memLog("LOG2", log2)},
			} {
				rc, err := recoverHive(bytes.NewReader(primary), int64(len(primary)), logs)
				if err != nil {
					continue
				}
				bb, err := ParseBaseBlock(rc.base)
				if err != nil || bb.Dirty() || bb.FileType != fileTypePrimary {
					t.Fatalf("recovered base block %+v, %v", bb, err)
				}
				if rc.size != BaseBlockSize+int64(bb.HiveBinsSize) {
					t.Fatalf("size %d for hive-bins size %d", rc.size, bb.HiveBinsSize)
				}
				if rc.nextSequence() <= bb.Sequence1 && rc.maxLogSequence != 0xFFFFFFFF {
					t.Fatalf("nextSequence %d not above the recovered %d", rc.nextSequence(), bb.Sequence1)
				}
				ra := rc.ReaderAt(bytes.NewReader(primary))
				buf := make([]byte, 64<<10)
				if n, err := ra.ReadAt(buf, 0); n != len(buf) {
					t.Fatalf("reading the recovered hive: %d, %v", n, err)
				}
				if !bytes.Equal(buf[:BaseBlockSize], rc.base) {
					t.Fatal("overlay does not serve the recovered base block")
				}
				if rc.dirty && len(rc.applied) == 0 {
					t.Fatal("dirty primary recovered without applying a log")
				}
			}
		}
	})
}
