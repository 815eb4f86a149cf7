package image

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"
)

// TestReviewGPTPartitionOverTable: a GPT whose header (CRC intact) lets a
// partition start over the partition entry array must not hand out a
// writer for it: writing that "volume" would overwrite the partition
// table. Volume.Damaged promises "overlaps ... the table itself".
func TestReviewGPTPartitionOverTable(t *testing.T) {
	base := buildGPT512(t)
	orig, err := os.ReadFile(base.path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		start uint64
	}{
		{"over the entry array", 2},
		{"over the primary header", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := sparseFile(t, "overtable.img", 0)
			b := append([]byte(nil), orig...)
			binary.LittleEndian.PutUint64(b[512+40:], tc.start)  // first usable LBA
			binary.LittleEndian.PutUint64(b[1024+32:], tc.start) // partition 1 starts there
			resealGPT(b, 512)
			clear(b[len(b)-512 : len(b)-504]) // backup unusable: the primary is used
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			tg, err := Open(p, Options{Writable: true})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			v := tg.Volumes[0]
			if v.Index != 1 || !strings.Contains(v.Damaged, "table") {
				t.Errorf("partition %d (offset %d): Damaged %q, want it to name the table", v.Index, v.Offset, v.Damaged)
			}
			if _, err := tg.WriterAt(v); err == nil {
				t.Errorf("WriterAt handed out a writer over the partition table")
			}
		})
	}
}
