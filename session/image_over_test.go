package session

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/wuoffline/wuoffline/image"
	"github.com/wuoffline/wuoffline/internal/testutil"
)

// sizedReader is a Backing over bytes.
type sizedReader struct{ *bytes.Reader }

func (s sizedReader) Size() int64 { return s.Reader.Size() }

// memWriter records writes in file coordinates.
type memWriter struct{ b []byte }

func (m *memWriter) WriteAt(p []byte, off int64) (int, error) { return copy(m.b[off:], p), nil }

// TestImageNewOver: image.New (what Open builds its Target with) identifies the same volumes as Open from bytes someone
// else opened; Over reads and writes through another reader and writer in
// file coordinates (a write to a volume lands at the volume's offset of the
// file), and refuses to be written when New was not Writable.
func TestImageNewOver(t *testing.T) {
	img := testutil.TestImage(t, "broken-gpt.img")
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	opened, err := image.Open(img, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	nt, err := image.New(img, sizedReader{bytes.NewReader(data)}, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nt.Volumes) != len(opened.Volumes) || nt.Table != opened.Table || nt.Format != opened.Format {
		t.Fatalf("New: %+v, Open: %+v", nt, opened)
	}
	for i := range nt.Volumes {
		if nt.Volumes[i] != opened.Volumes[i] {
			t.Errorf("volume %d: New %+v, Open %+v", i, nt.Volumes[i], opened.Volumes[i])
		}
	}
	if _, err := nt.WriterAt(nt.Volumes[0]); err == nil {
		t.Error("a target New made read-only hands out a writer")
	}
	mw := &memWriter{b: make([]byte, len(data))}
	ov, err := nt.Over(bytes.NewReader(data), mw, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	v := ov.Volumes[len(ov.Volumes)-1]
	w, err := ov.WriterAt(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("wuoffline"), 3); err != nil {
		t.Fatal(err)
	}
	if string(mw.b[v.Offset+3:v.Offset+12]) != "wuoffline" {
		t.Error("a volume write did not land at the volume's offset in the file")
	}
	got := make([]byte, 8)
	if _, err := io.ReadFull(ov.ReaderAt(v), got); err != nil || !bytes.Equal(got, data[v.Offset:v.Offset+8]) {
		t.Errorf("read through Over: %q %v", got, err)
	}
	if _, err := nt.Over(bytes.NewReader(data), mw, 10); err == nil {
		t.Error("Over accepted a reader smaller than the target")
	}
}
