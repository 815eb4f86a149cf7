package hive

import (
	"bytes"
	"fmt"
	"testing"
)

// memFile is a growable in-memory file: the io.WriterAt edits go to.
type memFile struct{ b []byte }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > 1<<31 {
		return 0, fmt.Errorf("memFile: offset %d", off)
	}
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(m.b).ReadAt(p, off)
}

// FuzzEdit edits arbitrary bytes opened as a hive: every edit may fail,
// none may panic, hang or allocate without bound; and a hive our checker
// passes must still open and pass after the edits are flushed.
// consistentBase returns a copy of fuzz input data with a consistent base
// block (equal sequences, right checksum), or nearly every mutation would
// only make the hive dirty, which the editor refuses: the fuzzer should
// explore the bins. ok is false for inputs over 4 MiB.
func consistentBase(data []byte) ([]byte, bool) {
	if len(data) > 4<<20 {
		return nil, false
	}
	data = bytes.Clone(data)
	if len(data) >= BaseBlockSize {
		copy(data[bbOffSequence2:bbOffSequence2+4], data[bbOffSequence1:bbOffSequence1+4])
		putBaseBlockChecksum(data)
	}
	return data, true
}

func FuzzEdit(f *testing.F) {
	for _, s := range fuzzSeedHives {
		f.Add(seedBytes(f, s), uint8(0))
	}
	f.Add(seedBytes(f, "ManySubkeysHive"), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		data, ok := consistentBase(data)
		if !ok {
			return
		}
		mf := &memFile{b: bytes.Clone(data)}
		h, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		ok = h.Check().OK()
		e, err := NewEditor(h, mf, func(int64) error { return nil })
		if err != nil {
			return
		}
		var firstErr error
		try := func(err error) {
			if firstErr == nil {
				firstErr = err
			}
		}
		root, err := h.Root()
		if err == nil {
			if subs, err := root.Subkeys(); err == nil && len(subs) > 0 {
				victim := subs[int(which)%len(subs)].Path()
				try(e.SetValue(victim, "v", RegBinary, bytes.Repeat([]byte{1}, 17000)))
				try(e.DeleteKey(victim))
			}
		}
		_, err = e.CreateKey(`Fz\Ünï\Ж`)
		try(err)
		try(e.SetValue(`Fz`, "", RegSZ, []byte("a\x00\x00\x00")))
		try(e.SetValue(`Fz\Ünï`, "x", RegDWORD, []byte{1, 2, 3, 4}))
		try(e.DeleteValue(`Fz`, ""))
		try(e.DeleteKey(`Fz\Ünï`))
		flushErr := e.Flush()
		if !ok || firstErr != nil || flushErr != nil {
			return
		}
		h2, err := Open(bytes.NewReader(mf.b), int64(len(mf.b)))
		if err != nil {
			t.Fatalf("edited hive does not open: %v", err)
		}
		if r := h2.Check(); !r.OK() {
			t.Fatalf("edited hive fails the checker:\n%s", r)
		}
	})
}
