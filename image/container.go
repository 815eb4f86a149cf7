package image

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// layer is one container file seen as a virtual disk: reads and writes are
// in the coordinates of the virtual disk, and the container's logic (block
// allocation tables, L2 tables, refcounts, headers) runs over the bytes of
// the file. A layer of a differencing disk reads what it does not hold from
// its parent.
type layer interface {
	io.ReaderAt
	// WriteAt works out everything the write needs (which clusters or
	// blocks it lands in, what must be allocated, what is refused) before
	// it writes the first byte: a refused write writes nothing.
	io.WriterAt
	// virtualSize is the size of the virtual disk in bytes.
	virtualSize() int64
}

// maxChainDepth bounds a chain of differencing disks (qemu allows far
// deeper chains, but a Windows VM disk with more than a handful of
// snapshots layered on it is rare and a loop must end).
const maxChainDepth = 16

// maxVirtualSize bounds the virtual disk size a header may declare: 64 TiB,
// the VHDX maximum, and larger than any qcow2 a Windows VM uses. The size
// only bounds reads; no memory is allocated by it.
const maxVirtualSize = 64 << 40

// containerFile is the bytes of one container file: reads through r, writes
// through w (nil when read-only), and the file's current size, which grows
// as a write allocates past the end.
type containerFile struct {
	r    io.ReaderAt
	w    io.WriterAt
	size int64
	name string // for messages
}

// read reads len(p) bytes at off, all of which must be within the file.
func (f *containerFile) read(p []byte, off int64, what string) error {
	if off < 0 || off > f.size || int64(len(p)) > f.size-off {
		return fmt.Errorf("%s: %s at %d (%d bytes) is beyond the end of the file (%d bytes)", f.name, what, off, len(p), f.size)
	}
	if err := readFull(f.r, p, off); err != nil {
		return fmt.Errorf("%s: reading %s at %d: %w", f.name, what, off, err)
	}
	return nil
}

// readData reads data of a block or cluster that starts within the file;
// the part of it past the end of the file reads as zeros, as qemu reads it
// (a file may end in the middle of its last cluster).
func (f *containerFile) readData(p []byte, off int64, what string) error {
	if off < 0 || off >= f.size {
		return fmt.Errorf("%s: %s at %d is beyond the end of the file (%d bytes)", f.name, what, off, f.size)
	}
	n := int64(len(p))
	if n > f.size-off {
		n = f.size - off
		clear(p[n:])
	}
	return f.read(p[:n], off, what)
}

// write writes p at off and grows the recorded size when it writes past
// the end.
func (f *containerFile) write(p []byte, off int64, what string) error {
	if f.w == nil {
		return fmt.Errorf("%s: opened read-only", f.name)
	}
	if off < 0 {
		return fmt.Errorf("%s: writing %s at negative offset %d", f.name, what, off)
	}
	if _, err := f.w.WriteAt(p, off); err != nil {
		return fmt.Errorf("%s: writing %s at %d: %w", f.name, what, off, err)
	}
	if end := off + int64(len(p)); end > f.size {
		f.size = end
	}
	return nil
}

// chain opens the parents of differencing disks: read-only, at most
// maxChainDepth deep, each file at most once.
type chain struct {
	depth   int
	seen    map[string]bool // absolute paths of the files already in the chain
	infos   []os.FileInfo   // and the files themselves, to see through links
	closers []io.Closer     // parents opened here, closed with the Target
	first   layer           // the parent of the top layer, once opened
	reuse   bool            // hand out first instead of opening the parent again (Over)
}

// newChain starts a chain at the file path (which may be "" when the bytes
// do not come from a named file: then a differencing disk cannot be read).
func newChain(path string) *chain {
	c := &chain{seen: map[string]bool{}}
	if path != "" {
		if abs, err := filepath.Abs(path); err == nil {
			c.seen[filepath.Clean(abs)] = true
		}
		if st, err := os.Stat(path); err == nil {
			c.infos = append(c.infos, st)
		}
	}
	return c
}

// close closes every parent the chain opened.
func (c *chain) close() error {
	var errs []error
	for _, cl := range c.closers {
		errs = append(errs, cl.Close())
	}
	c.closers = nil
	return errors.Join(errs...)
}

// openParent opens the parent named by ref (as the child stores it) of the
// child at childPath, read-only, and returns it as a layer. candidates are
// the paths to try, most specific first (a VHD stores both a relative and
// an absolute path).
//
// format is the parent's format as the child records it ("" when it does
// not): "raw" is taken as it is, without looking at the parent's bytes,
// as qemu does.
func (c *chain) openParent(childPath, format string, candidates []string) (layer, string, error) {
	if c.reuse {
		if c.first == nil {
			return nil, "", errors.New("its parent was not opened with the target")
		}
		return c.first, "", nil
	}
	top := c.depth == 0
	if c.depth+1 >= maxChainDepth {
		return nil, "", fmt.Errorf("the chain of differencing disks is more than %d deep", maxChainDepth)
	}
	if childPath == "" {
		return nil, "", errors.New("its parent cannot be found: the disk was not opened from a named file")
	}
	var tried []string
	for _, cand := range candidates {
		if cand == "" {
			continue
		}
		p := cand
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(childPath), p)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		abs = filepath.Clean(abs)
		st, err := os.Stat(abs)
		if err != nil || !st.Mode().IsRegular() {
			tried = append(tried, abs)
			continue
		}
		if c.seen[abs] || slices.ContainsFunc(c.infos, func(fi os.FileInfo) bool { return os.SameFile(fi, st) }) {
			return nil, "", fmt.Errorf("the chain of differencing disks loops: %s is its own ancestor", abs)
		}
		c.infos = append(c.infos, st)
		f, err := os.Open(abs)
		if err != nil {
			return nil, "", fmt.Errorf("opening the parent %s: %w", abs, err)
		}
		c.closers = append(c.closers, f)
		c.seen[abs] = true
		c.depth++
		id := Identification{Format: FormatRaw, DataSize: st.Size()}
		if format != "raw" {
			if id, err = Identify(f, st.Size()); err != nil {
				return nil, "", fmt.Errorf("the parent %s: %w", abs, err)
			}
		}
		l, err := openLayer(id, &containerFile{r: f, size: st.Size(), name: abs}, abs, c)
		if err != nil {
			return nil, "", fmt.Errorf("the parent %s: %w", abs, err)
		}
		if top {
			c.first = l
		}
		return l, abs, nil
	}
	return nil, "", fmt.Errorf("its parent is missing (looked for %q): put the parent beside it, or convert the chain: qemu-img convert -O raw CHILD OUT", tried)
}

// openLayer opens the container format id names over f. Raw data and a
// fixed VHD are a rawLayer; the others parse their headers here.
func openLayer(id Identification, f *containerFile, path string, c *chain) (layer, error) {
	switch id.Format {
	case FormatQCOW2:
		return openQCOW2(f, path, c)
	case FormatVHDDynamic, FormatVHDDifferencing:
		return openVHD(f, path, c)
	case FormatVHDX:
		return openVHDX(f, path, c)
	case FormatRaw:
		return &rawLayer{f: f, size: id.DataSize}, nil
	case FormatVHDFixed:
		l := &rawLayer{f: f, size: id.DataSize}
		foot := make([]byte, vhdFooterSize)
		if err := f.read(foot, f.size-vhdFooterSize, "VHD footer"); err != nil {
			return nil, err
		}
		ft, err := parseVHDFooter(foot)
		if err != nil {
			return nil, fmt.Errorf("%s: VHD footer: %w", f.name, err)
		}
		l.vhdID = &ft.uniqueID
		return l, nil
	}
	return nil, unsupported(id.Format, path)
}

// rawLayer is data stored as it is: a raw image, or a fixed VHD's data
// before its footer.
type rawLayer struct {
	f     *containerFile
	size  int64
	vhdID *[16]byte // a fixed VHD's unique ID, which a differencing child names
}

// vhdUniqueID returns a fixed VHD's unique ID (zero for raw data).
func (l *rawLayer) vhdUniqueID() [16]byte {
	if l.vhdID == nil {
		return [16]byte{}
	}
	return *l.vhdID
}

func (l *rawLayer) virtualSize() int64 { return l.size }

// ReadAt reads the data as it is; past the data it reads nothing.
func (l *rawLayer) ReadAt(p []byte, off int64) (int, error) {
	return io.NewSectionReader(l.f.r, 0, l.size).ReadAt(p, off)
}

// WriteAt writes within the data only.
func (l *rawLayer) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > l.size || int64(len(p)) > l.size-off {
		return 0, fmt.Errorf("%s: write of %d bytes at %d is outside the disk (%d bytes); nothing written", l.f.name, len(p), off, l.size)
	}
	if err := l.f.write(p, off, "disk data"); err != nil {
		return 0, err
	}
	return len(p), nil
}

// readVirtual fills p from a layer at off, with zeros past its end: what a
// child reads of a parent smaller than itself.
func readVirtual(l layer, p []byte, off int64) error {
	clear(p)
	size := l.virtualSize()
	if off >= size {
		return nil
	}
	n := int64(len(p))
	if n > size-off {
		n = size - off
	}
	return readFull(l, p[:n], off)
}

// checkRange checks a virtual read or write of n bytes at off against the
// size of the virtual disk.
func checkRange(name string, off int64, n int, size int64) error {
	if off < 0 || off > size || int64(n) > size-off {
		return fmt.Errorf("%s: %d bytes at %d are outside the virtual disk (%d bytes)", name, n, off, size)
	}
	return nil
}

// finishRead turns a read clipped to the end of the disk into io.EOF, as
// io.ReaderAt asks.
func clipRead(p []byte, off, size int64) ([]byte, error) {
	if off < 0 {
		return nil, fmt.Errorf("read at negative offset %d", off)
	}
	if off >= size {
		return p[:0], io.EOF
	}
	if int64(len(p)) > size-off {
		return p[:size-off], io.EOF
	}
	return p, nil
}

// fileWrite is one write of a container file that a plan makes: the bytes
// b, or n bytes that fill produces a chunk at a time (a whole new block of
// a VHD or VHDX, whose size a header declares, is never held in memory at
// once).
type fileWrite struct {
	off  int64
	b    []byte
	n    int64
	fill func(p []byte, at int64) error // fills p with the bytes at off+at
	what string
}

// fillChunk bounds the buffer of a filled write.
const fillChunk = 1 << 20

// blockFill returns the fill function of a block of the guest disk at
// guest offset base: what read gives there now, with data written at in
// bytes into the block on top.
func blockFill(read func(p []byte, pos int64) error, base int64, data []byte, in int64) func(p []byte, at int64) error {
	return func(p []byte, at int64) error {
		if err := read(p, base+at); err != nil {
			return err
		}
		// The part of the write that falls in [at, at+len(p)).
		lo, hi := max(in, at), min(in+int64(len(data)), at+int64(len(p)))
		if lo < hi {
			copy(p[lo-at:hi-at], data[lo-in:hi-in])
		}
		return nil
	}
}

// planFunc works out every file write a guest write needs, and the
// function that brings the layer's in-memory tables up to date once they
// are written. It writes nothing.
type planFunc func(p []byte, off int64) ([]fileWrite, func(), error)

// writePlanned is WriteAt for every container: check the range, plan the
// whole write (a refusal writes nothing), write, then commit the plan to
// the in-memory tables.
func writePlanned(f *containerFile, size int64, p []byte, off int64, plan planFunc) (int, error) {
	if f.w == nil {
		return 0, fmt.Errorf("%s: opened read-only", f.name)
	}
	if err := checkRange(f.name, off, len(p), size); err != nil {
		return 0, err
	}
	ws, commit, err := plan(p, off)
	if err != nil {
		return 0, fmt.Errorf("%s: write of %d bytes at %d refused, nothing written: %w", f.name, len(p), off, err)
	}
	var buf []byte
	for _, w := range ws {
		if w.fill == nil {
			if err := f.write(w.b, w.off, w.what); err != nil {
				return 0, err
			}
			continue
		}
		if buf == nil {
			buf = make([]byte, fillChunk)
		}
		for at := int64(0); at < w.n; at += fillChunk {
			p := buf[:min(fillChunk, w.n-at)]
			if err := w.fill(p, at); err != nil {
				return 0, fmt.Errorf("%s: %s at %d: %w", f.name, w.what, w.off+at, err)
			}
			if err := f.write(p, w.off+at, w.what); err != nil {
				return 0, err
			}
		}
	}
	commit()
	return len(p), nil
}

// readUnits is ReadAt for every container: it clips the read to the
// virtual disk and reads it one cluster or block (of unit bytes) at a time.
func readUnits(p []byte, off, size, unit int64, read func(p []byte, pos int64) error) (int, error) {
	buf, eof := clipRead(p, off, size)
	if buf == nil {
		return 0, eof
	}
	done := 0
	for done < len(buf) {
		pos := off + int64(done)
		n := int(min(int64(len(buf)-done), unit-pos%unit))
		if err := read(buf[done:done+n], pos); err != nil {
			return done, err
		}
		done += n
	}
	return done, eof
}
