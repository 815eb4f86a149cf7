package image

import (
	"errors"
	"fmt"
	"io"
)

// Backing is the bytes of a target that someone else opened (the session
// opens files and devices with exclusive access): a reader with a size,
// and optionally an io.WriterAt.
type Backing interface {
	io.ReaderAt
	Size() int64
}

// New identifies the container format and partition table of b, the bytes
// of the file or device at path (path names it in messages and is where
// the parent of a differencing disk is looked for). New does not own b:
// Close closes only the parents it opened.
//
// With opts.Writable and a b that is an io.WriterAt, the volumes of raw
// data (a raw image, a fixed VHD, a device) can be written through
// WriterAt. A container (qcow2, VHDX, dynamic or differencing VHD) is
// written only through Over, where its metadata writes go through the
// caller's writer too.
func New(path string, b Backing, opts Options) (*Target, error) {
	if b == nil {
		return nil, errors.New("image: New: no bytes given")
	}
	size := b.Size()
	if size < 0 {
		return nil, fmt.Errorf("image: %s: negative size %d", path, size)
	}
	t, err := probeNamed(path, b, size, 0)
	if err != nil {
		return nil, err
	}
	if w, ok := b.(io.WriterAt); ok && opts.Writable && t.lay == nil {
		t.w = w
	}
	return t, nil
}

// Over returns the same target (the same container format, disk size and
// volumes) with its reads and writes going through r and w, which hold the
// whole FILE, size bytes of it, in the file's own coordinates. For raw data
// the volumes map straight onto r and w; for a container, the container's
// logic runs over r and w, so that its own metadata writes (L2 tables,
// refcounts, BAT entries, VHD footers, VHDX headers) land in w too. A write
// that allocates grows the file past size: w must accept writes at any
// offset from 0 on.
//
// w may be nil for a read-only view. The parents of a differencing disk
// are shared with t, and read only. Closing the result closes nothing.
//
// The session passes a journal.Overlay of the whole file as r and w: the
// journal then records file ranges, and undo restores the file byte for
// byte, container metadata included.
func (t *Target) Over(r io.ReaderAt, w io.WriterAt, size int64) (*Target, error) {
	if t.Kind == KindDirectory {
		return nil, fmt.Errorf("image: %s is a directory: it has no bytes to write through", t.Path)
	}
	if r == nil {
		return nil, fmt.Errorf("image: %s: Over needs a reader", t.Path)
	}
	id, err := Identify(r, size)
	if err != nil {
		return nil, fmt.Errorf("image: %s: over the given bytes: %w", t.Path, err)
	}
	if id.Format != t.Format {
		return nil, fmt.Errorf("image: %s: the given bytes hold a %s, the target is a %s", t.Path, id.Format, t.Format)
	}
	o := *t
	o.f, o.over, o.fileSize = nil, true, size
	o.Volumes = append([]Volume(nil), t.Volumes...)
	o.Warnings = append([]string(nil), t.Warnings...)
	if t.lay == nil {
		if id.DataSize != t.Size {
			return nil, fmt.Errorf("image: %s: the given bytes hold %d bytes of data, the target %d", t.Path, id.DataSize, t.Size)
		}
		o.r, o.w = io.NewSectionReader(r, 0, t.Size), w
		return &o, nil
	}
	// The same parents: the chain hands the top layer the parent t's top
	// layer has, instead of opening it again.
	c := &chain{seen: map[string]bool{}, reuse: true}
	if t.chain != nil {
		c.first = t.chain.first
	}
	l, err := openLayer(id, &containerFile{r: r, w: w, size: size, name: t.Path}, t.Path, c)
	if err != nil {
		return nil, fmt.Errorf("image: %s: over the given bytes: %w", t.Path, err)
	}
	if l.virtualSize() != t.Size {
		return nil, fmt.Errorf("image: %s: the given bytes hold a %d-byte disk, the target %d", t.Path, l.virtualSize(), t.Size)
	}
	o.lay, o.r, o.chain = l, l, c
	o.w = nil
	if w != nil {
		o.w = l
	}
	return &o, nil
}
