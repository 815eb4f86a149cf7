package session

import (
	"io"

	"github.com/wuoffline/wuoffline/image"
	"github.com/wuoffline/wuoffline/journal"
)

// device is the opened target as the journal writes and restores it: FILE
// coordinates, through the session's cache (so that what the session reads
// next sees the writes), flushed by the file's Sync. Its Size is the size
// now, after writes, as journal.Device asks.
type device struct {
	s *Session
	w io.WriterAt // the cache, or a test's wrapper of it
}

func (d device) ReadAt(p []byte, off int64) (int, error)  { return d.s.cache.ReadAt(p, off) }
func (d device) WriteAt(p []byte, off int64) (int, error) { return d.w.WriteAt(p, off) }
func (d device) Sync() error                              { return d.s.file.Sync() }
func (d device) Size() int64                              { return d.s.cache.Size() }

// fileDevice is a device whose size can change (an image file): a container
// that allocated clusters grew it, and undo cuts it back (journal.Truncater).
type fileDevice struct{ device }

func (d fileDevice) Truncate(n int64) error {
	if err := d.s.file.Truncate(n); err != nil {
		return err
	}
	d.s.cache.resize(n)
	return nil
}

// dev is the target as a journal.Device writing through w; a block device
// has a fixed size and is never truncated.
func (s *Session) dev(w io.WriterAt) journal.Device {
	d := device{s: s, w: w}
	if s.device {
		return d
	}
	return fileDevice{d}
}

// volumeDevice is one volume of the target, for journals that hold volume
// coordinates (made before sessions): never truncated.
type volumeDevice struct {
	io.ReaderAt
	io.WriterAt
	sync func() error
}

func (d volumeDevice) Sync() error { return d.sync() }

// maxGrowth bounds how far a container may grow the file during one change:
// a fix writes a few MiB, and a container allocating for it appends at most
// a few of its blocks (VHDX: 32 MiB by default).
const maxGrowth = 1 << 30

// mayGrow reports whether the target's container may allocate (append
// clusters) when written: not a raw image or fixed VHD, whose data is laid
// out in place, and never a block device, whose size is fixed.
func (s *Session) mayGrow() bool {
	if s.device || s.Target == nil {
		return false
	}
	switch s.Target.Format {
	case image.FormatRaw, image.FormatVHDFixed, image.FormatDirectory, "":
		return false
	}
	return true
}

// fileCoordinates reports whether a journal's ranges are offsets in the
// target file (journal.SpaceFile). Journals made by sessions before the
// header had a Space field say "volume" with Offset 0 and hold file
// coordinates too; any other "volume" journal holds coordinates of the
// volume at Header.Offset.
func fileCoordinates(h journal.Header) bool {
	return h.Space == journal.SpaceFile || h.Offset == 0
}
