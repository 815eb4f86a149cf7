package hive

import (
	"bytes"
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// TestEditorRefusesSequenceWrap: a hive whose sequence is already
// 0xFFFFFFFF cannot be given a higher one; the editor must refuse instead of
// wrapping to 0 (stale log entries would then look newer than the edit).
func TestEditorRefusesSequenceWrap(t *testing.T) {
	b, err := os.ReadFile(testutil.SharedFixture(t, "hives/hivex/minimal"))
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint32{0xFFFFFFFE, 0xFFFFFFFF} {
		img := append([]byte(nil), b...)
		binary.LittleEndian.PutUint32(img[4:], seq)
		binary.LittleEndian.PutUint32(img[8:], seq)
		binary.LittleEndian.PutUint32(img[508:], Checksum(img[:BaseBlockSize]))
		h, err := Open(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			t.Fatalf("seq %#x: open: %v", seq, err)
		}
		e, err := NewEditor(h, discardWriterAt{}, nil)
		switch {
		case seq == 0xFFFFFFFF && (err == nil || !strings.Contains(err.Error(), "sequence")):
			t.Errorf("seq %#x: NewEditor = %v, want a refusal naming the sequence", seq, err)
		case seq != 0xFFFFFFFF && err != nil:
			t.Errorf("seq %#x: NewEditor: %v", seq, err)
		case seq != 0xFFFFFFFF && e.Sequence() != 0xFFFFFFFF:
			t.Errorf("seq %#x: next sequence %#x, want 0xffffffff", seq, e.Sequence())
		}
	}
}

type discardWriterAt struct{}

func (discardWriterAt) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }
