package journal

import (
	"io"
	"os"
)

// Device is the target a journal's ranges are written to and restored on,
// in the journal's coordinate space (Header.Space): an open image file or
// device (access.File), or one volume of it.
//
// A Device may also implement Truncate(size int64) error ([Truncater]):
// then [CommitOn] extends it to a grown plan's new size, and [UndoOn] cuts
// it back to the old size. It may tell its current size with
// Stat() (os.FileInfo, error) (preferred) or Size() int64, which must be
// the size now, after writes, not the size when it was opened: undo
// truncates only a target whose size it knows, and never one that grew
// further since.
type Device interface {
	io.ReaderAt
	io.WriterAt
	// Sync flushes what was written to stable storage.
	Sync() error
}

// Truncater is implemented by devices whose size can change (regular
// files).
type Truncater interface {
	Truncate(size int64) error
}

// funcDevice adapts the loose reader, writer and flush of the old API.
type funcDevice struct {
	r    io.ReaderAt
	w    io.WriterAt
	sync func() error
}

func (d funcDevice) ReadAt(p []byte, off int64) (int, error)  { return d.r.ReadAt(p, off) }
func (d funcDevice) WriteAt(p []byte, off int64) (int, error) { return d.w.WriteAt(p, off) }
func (d funcDevice) Sync() error {
	if d.sync == nil {
		return nil
	}
	return d.sync()
}

// deviceSize returns dev's current size, if it can tell.
func deviceSize(dev Device) (int64, bool) {
	if s, ok := dev.(interface{ Stat() (os.FileInfo, error) }); ok {
		if st, err := s.Stat(); err == nil && st.Mode().IsRegular() {
			return st.Size(), true
		}
		return 0, false
	}
	if s, ok := dev.(interface{ Size() int64 }); ok {
		return s.Size(), true
	}
	return 0, false
}
