package session

import (
	"io"
	"sync"
)

// Block cache geometry: reads are widened to whole blocks and kept, so that
// the diagnose, the plan and the checks that follow it read each structure
// from the medium once. The cache is bounded (memory never follows the size
// of what is read) and forgets its oldest blocks first.
const (
	cacheBlock = 32 << 10
	cacheMax   = 8 << 20
)

// Stats counts what reached the medium.
type Stats struct {
	Opens int   // opens of the target (1 per session)
	Reads int64 // ReadAt calls on the file or device
	Bytes int64 // bytes they returned
}

// Add sums two counts.
func (s Stats) Add(o Stats) Stats {
	return Stats{Opens: s.Opens + o.Opens, Reads: s.Reads + o.Reads, Bytes: s.Bytes + o.Bytes}
}

// cachedFile is a bounded read cache over a file or device, in file
// coordinates. Writes go through to the file and update cached blocks.
type cachedFile struct {
	r    io.ReaderAt
	w    io.WriterAt // nil: read-only
	size int64

	mu     sync.Mutex
	blocks map[int64][]byte
	order  []int64 // insertion order, for eviction
	stats  Stats
}

func newCachedFile(r io.ReaderAt, w io.WriterAt, size int64) *cachedFile {
	return &cachedFile{r: r, w: w, size: size, blocks: map[int64][]byte{}}
}

// Size is the file's size.
func (c *cachedFile) Size() int64 { return c.size }

// Stats returns what reached the medium so far.
func (c *cachedFile) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stats
	st.Opens = 1
	return st
}

// ReadAt implements io.ReaderAt through the cache. Large reads (more than
// a quarter of the cache) go to the file directly and are not kept.
func (c *cachedFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if off >= c.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > c.size-off {
		want = int(c.size - off)
	}
	if want > cacheMax/4 {
		c.mu.Lock()
		c.stats.Reads++
		c.mu.Unlock()
		n, err := c.r.ReadAt(p[:want], off)
		c.mu.Lock()
		c.stats.Bytes += int64(n)
		c.mu.Unlock()
		if err == nil && want < len(p) {
			err = io.EOF
		}
		return n, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	done := 0
	for done < want {
		pos := off + int64(done)
		bstart := pos - pos%cacheBlock
		b, err := c.block(bstart)
		if err != nil {
			return done, err
		}
		k := copy(p[done:want], b[pos-bstart:])
		if k == 0 {
			return done, io.ErrUnexpectedEOF
		}
		done += k
	}
	if want < len(p) {
		return done, io.EOF
	}
	return done, nil
}

// block returns the cached block at start, reading it on a miss. c.mu held.
func (c *cachedFile) block(start int64) ([]byte, error) {
	if b, ok := c.blocks[start]; ok {
		return b, nil
	}
	n := int64(cacheBlock)
	if n > c.size-start {
		n = c.size - start
	}
	// A full cache gives its oldest block's buffer to the new one: the
	// cache allocates cacheMax once, whatever is read through it.
	var b []byte
	for len(c.order)*cacheBlock >= cacheMax {
		old := c.order[0]
		if b == nil {
			b = c.blocks[old][:cap(c.blocks[old])]
		}
		delete(c.blocks, old)
		c.order = c.order[1:]
	}
	if b == nil {
		b = make([]byte, cacheBlock)
	}
	b = b[:n]
	c.stats.Reads++
	got, err := c.r.ReadAt(b, start)
	c.stats.Bytes += int64(got)
	if int64(got) < n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	c.blocks[start] = b
	c.order = append(c.order, start)
	return b, nil
}

// WriteAt writes through to the file and forgets the cached blocks it
// overlaps (the next read sees the file).
func (c *cachedFile) WriteAt(p []byte, off int64) (int, error) {
	if c.w == nil {
		return 0, io.ErrClosedPipe
	}
	c.mu.Lock()
	c.forget(off, int64(len(p)))
	c.mu.Unlock()
	n, err := c.w.WriteAt(p, off)
	if end := off + int64(n); end > c.size {
		c.size = end
	}
	return n, err
}

// forget drops the cached blocks overlapping [off, off+n). c.mu held.
func (c *cachedFile) forget(off, n int64) {
	if n <= 0 {
		return
	}
	for b := off - off%cacheBlock; b < off+n; b += cacheBlock {
		if _, ok := c.blocks[b]; ok {
			delete(c.blocks, b)
			for i, s := range c.order {
				if s == b {
					c.order = append(c.order[:i], c.order[i+1:]...)
					break
				}
			}
		}
	}
}

// resize sets the file's size after a truncation and forgets every block.
func (c *cachedFile) resize(n int64) {
	c.mu.Lock()
	c.size = n
	c.mu.Unlock()
	c.reset()
}

// reset forgets everything (after a write through another path).
func (c *cachedFile) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.blocks = map[int64][]byte{}
	c.order = nil
}
