package journal_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/wuoffline/wuoffline/journal"
)

// A fix plans its writes on an Overlay (the dry run), one unit per
// change, shows the ranges, then journals and applies them with CommitOn;
// undo puts the bytes back, unit by unit.
func Example() {
	dir, _ := os.MkdirTemp("", "journal-example")
	defer os.RemoveAll(dir)
	vol, _ := os.Create(filepath.Join(dir, "volume.img"))
	defer vol.Close()
	vol.Write(make([]byte, 64<<10))

	// Dry run: editors write into the overlay and read their own writes back.
	plan := journal.NewOverlay(vol, 64<<10)
	plan.SetAlign(512)
	plan.Unit("MFT record 0x1a").WriteAt([]byte("FILE0"), 0x3400)
	plan.Unit("hive SOFTWARE bin").WriteAt([]byte{1, 2, 3}, 0x8010)
	for _, r := range plan.Ranges() {
		fmt.Printf("will write %#x+%d (%s)\n", r.Off, r.Len, r.Label)
	}

	// Journal, flush, write, flush, commit.
	h := journal.Header{ID: journal.VolumeID{Serial: 0xC0FFEE, Size: 64 << 10, Name: "volume.img"}, Tool: "example"}
	path, err := journal.CommitOn(dir, h, plan, vol) // *os.File is a journal.Device
	if err != nil {
		fmt.Println(err)
		return
	}
	infos, _ := journal.Find(dir, h.ID)
	fmt.Println(len(infos), infos[0].State, infos[0].Path == path)

	rep, err := journal.UndoOn(path, vol)
	fmt.Println(rep.Summary(), err)
	for _, u := range rep.Units {
		fmt.Println(u.Label, u.Outcome)
	}
	// Output:
	// will write 0x3400+512 (MFT record 0x1a)
	// will write 0x8000+512 (hive SOFTWARE bin)
	// 1 committed true
	// undo: 2 range(s) restored, 0 already original <nil>
	// hive SOFTWARE bin restored
	// MFT record 0x1a restored
}
