package image

import (
	"fmt"
	"io"
	"slices"
)

// Backing is a TARGET's bytes opened by someone else (package access): New
// identifies the container and partition table on it. An io.WriterAt
// backing can be written through a Writable target; a backing with
// Device() bool and SectorSize() int says it is a block device and its
// logical sector size.
type Backing interface {
	io.ReaderAt
	Size() int64
}

// New identifies the target in b (opened by the caller, who keeps closing
// it: Close on the result does not close b). path is for messages.
func New(path string, b Backing, opts Options) (*Target, error) {
	device, sector := false, 0
	if d, ok := b.(interface{ Device() bool }); ok {
		device = d.Device()
	}
	if s, ok := b.(interface{ SectorSize() int }); ok {
		sector = s.SectorSize()
	}
	t, err := probe(b, b.Size(), sector)
	if err != nil {
		if ue, ok := err.(*UnsupportedError); ok {
			return nil, unsupported(ue.Format, path)
		}
		return nil, fmt.Errorf("image: %s: %w", path, err)
	}
	t.Path, t.Device = path, device
	bf := backingFile{b}
	t.f = bf
	if opts.Writable {
		if _, ok := b.(io.WriterAt); !ok {
			return nil, fmt.Errorf("image: %s: opened read-only", path)
		}
		t.w = bf
	}
	return t, nil
}

// Over returns the same target (same volumes) whose reads go through r and
// writes through w (nil: read-only), both in the coordinates of the FILE.
// For raw images and fixed VHDs the data area starts at byte 0 of the file,
// so the volumes' offsets are unchanged. Close and Sync of the result do
// nothing: the caller owns r and w.
func (t *Target) Over(r io.ReaderAt, w io.WriterAt, size int64) (*Target, error) {
	if t.Format != FormatRaw && t.Format != FormatVHDFixed {
		return nil, fmt.Errorf("image: %s: a %s target cannot be planned over another reader", t.Path, t.Format)
	}
	if size < t.Size {
		return nil, fmt.Errorf("image: %s: %d bytes is smaller than the target's %d", t.Path, size, t.Size)
	}
	c := *t
	c.Volumes = slices.Clone(t.Volumes)
	c.Warnings = slices.Clone(t.Warnings)
	c.f = nil
	c.r = io.NewSectionReader(r, 0, t.Size)
	c.w = w
	return &c, nil
}

// backingFile adapts a Backing to what a Target holds; Close leaves the
// backing open (its opener closes it).
type backingFile struct{ b Backing }

func (f backingFile) ReadAt(p []byte, off int64) (int, error) { return f.b.ReadAt(p, off) }
func (f backingFile) WriteAt(p []byte, off int64) (int, error) {
	w, ok := f.b.(io.WriterAt)
	if !ok {
		return 0, fmt.Errorf("image: opened read-only")
	}
	return w.WriteAt(p, off)
}
func (f backingFile) Close() error { return nil }
func (f backingFile) Sync() error {
	if s, ok := f.b.(interface{ Sync() error }); ok {
		return s.Sync()
	}
	return nil
}
