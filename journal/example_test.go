package journal_test

import (
	"fmt"
	"os"
	"path/filepath"

	"wuoffline/journal"
)

// A fix plans its writes on an Overlay (the dry run), shows the ranges,
// then journals and applies them with Commit; undo puts the bytes back.
func Example() {
	dir, _ := os.MkdirTemp("", "journal-example")
	defer os.RemoveAll(dir)
	vol, _ := os.Create(filepath.Join(dir, "volume.img"))
	defer vol.Close()
	vol.Write(make([]byte, 64<<10))

	// Dry run: editors write into the overlay and read their own writes back.
	plan := journal.NewOverlay(vol, 64<<10)
	plan.SetAlign(512)
	plan.Labeled("MFT record 0x1a").WriteAt([]byte("FILE0"), 0x3400)
	plan.Labeled("hive SOFTWARE bin").WriteAt([]byte{1, 2, 3}, 0x8010)
	for _, r := range plan.Ranges() {
		fmt.Printf("will write %#x+%d (%s)\n", r.Off, r.Len, r.Label)
	}

	// Journal, flush, write, flush, commit.
	h := journal.Header{ID: journal.VolumeID{Serial: 0xC0FFEE, Size: 64 << 10, Name: "volume.img"}, Tool: "example"}
	path, err := journal.Commit(dir, h, plan, vol, vol.Sync)
	if err != nil {
		fmt.Println(err)
		return
	}
	infos, _ := journal.Find(dir, h.ID)
	fmt.Println(len(infos), infos[0].State, infos[0].Path == path)

	rep, err := journal.Undo(path, vol, vol, vol.Sync)
	fmt.Println(rep.Summary(), err)
	// Output:
	// will write 0x3400+512 (MFT record 0x1a)
	// will write 0x8000+512 (hive SOFTWARE bin)
	// 1 committed true
	// undo: 2 range(s) restored, 0 already original <nil>
}
