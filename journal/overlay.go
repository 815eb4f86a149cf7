package journal

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// Overlay is a dry run of a plan of writes: an io.ReaderAt and io.WriterAt
// over a read-only base that keeps every write in memory, so that the code
// making the plan reads back what it planned, and nothing reaches the base.
// When the plan has succeeded, [Overlay.Ranges] is the exact list of byte
// ranges it changes (what `fix --dry-run` reports) and [Journal.AddOverlay]
// or [Commit] journals and applies it. Memory is proportional to the bytes
// written. An Overlay is not safe for concurrent use.
type Overlay struct {
	base  io.ReaderAt
	size  int64
	align int64    // Ranges and Changes are widened to multiples of it
	ext   []extent // sorted by offset; not overlapping; touching only if labelled differently
}

// extent is a run of written bytes.
type extent struct {
	off    int64
	data   []byte
	labels []string // distinct, at most maxLabels
	more   int      // labels beyond maxLabels
}

// maxLabels bounds the labels kept per merged range; more are counted.
const maxLabels = 8

func (e *extent) end() int64 { return e.off + int64(len(e.data)) }

func (e *extent) addLabel(l string) {
	if l == "" {
		return
	}
	for _, x := range e.labels {
		if x == l {
			return
		}
	}
	if len(e.labels) < maxLabels {
		e.labels = append(e.labels, l)
	} else {
		e.more++
	}
}

// only reports whether label is the extent's one and only label ("" for
// none): a write so labelled and touching it continues it.
func (e *extent) only(label string) bool {
	if e.more > 0 {
		return false
	}
	if label == "" {
		return len(e.labels) == 0
	}
	return len(e.labels) == 1 && e.labels[0] == label
}

func (e *extent) label() string {
	s := strings.Join(e.labels, "; ")
	if e.more > 0 {
		s += fmt.Sprintf("; and %d more", e.more)
	}
	return s
}

// NewOverlay returns an empty overlay over base, whose size is size bytes;
// writes beyond size are refused.
func NewOverlay(base io.ReaderAt, size int64) *Overlay {
	return &Overlay{base: base, size: size, align: 1}
}

// SetAlign makes [Overlay.Ranges] and [Overlay.Changes] widen every range
// to whole blocks of n bytes (clipped at the end of the volume), filling
// the widening from the base, so that every journaled write is whole
// sectors: Windows refuses unaligned writes to a raw volume (\\.\D:), and
// undo then compares and restores whole sectors. n must be positive.
func (o *Overlay) SetAlign(n int64) {
	if n > 0 {
		o.align = n
	}
}

// Size returns the size given to NewOverlay.
func (o *Overlay) Size() int64 { return o.size }

// ReadAt reads the base with the planned writes laid over it.
func (o *Overlay) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("overlay: read at negative offset %d", off)
	}
	if off >= o.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), o.size-off))
	if m, err := o.base.ReadAt(p[:n], off); m < n {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return m, fmt.Errorf("overlay: reading the base at %#x: %w", off, err)
	}
	end := off + int64(n)
	i := sort.Search(len(o.ext), func(i int) bool { return o.ext[i].end() > off })
	for ; i < len(o.ext) && o.ext[i].off < end; i++ {
		e := &o.ext[i]
		lo, hi := max(e.off, off), min(e.end(), end)
		copy(p[lo-off:hi-off], e.data[lo-e.off:hi-e.off])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt records a planned write. It never writes the base.
func (o *Overlay) WriteAt(p []byte, off int64) (int, error) {
	return o.write(p, off, "")
}

// Labeled returns a writer into o whose writes carry label, shown with the
// range in reports and journals ("hive SOFTWARE", "MFT record 0x1a2").
func (o *Overlay) Labeled(label string) io.WriterAt {
	return labeled{o, label}
}

type labeled struct {
	o     *Overlay
	label string
}

func (l labeled) WriteAt(p []byte, off int64) (int, error) { return l.o.write(p, off, l.label) }

func (o *Overlay) write(p []byte, off int64, label string) (int, error) {
	n := int64(len(p))
	if off < 0 || off > o.size || n > o.size-off {
		return 0, fmt.Errorf("overlay: write %#x+%d beyond the end of the volume (%#x)", off, n, o.size)
	}
	if n == 0 {
		return 0, nil
	}
	end := off + n
	// ext[lo:hi] overlap [off, end), or touch it and carry the same label:
	// they merge with the write. Touching writes of different things stay
	// apart, so that undo decides (and reports) each on its own.
	lo := sort.Search(len(o.ext), func(i int) bool { return o.ext[i].end() > off })
	if lo > 0 && o.ext[lo-1].end() == off && o.ext[lo-1].only(label) {
		lo--
	}
	hi := lo
	for hi < len(o.ext) && o.ext[hi].off < end {
		hi++
	}
	if hi < len(o.ext) && o.ext[hi].off == end && o.ext[hi].only(label) {
		hi++
	}
	switch {
	case lo == hi:
		e := extent{off: off, data: append([]byte(nil), p...)}
		e.addLabel(label)
		o.ext = append(o.ext, extent{})
		copy(o.ext[lo+1:], o.ext[lo:])
		o.ext[lo] = e
	case hi-lo == 1 && o.ext[lo].off <= off:
		// The common case, a write inside or extending one range: grow it
		// in place (append is amortised, so sequential writes stay linear).
		e := &o.ext[lo]
		if grow := end - e.end(); grow > 0 {
			e.data = slices.Grow(e.data, int(grow))[:len(e.data)+int(grow)]
		}
		copy(e.data[off-e.off:], p)
		e.addLabel(label)
	default:
		start := min(o.ext[lo].off, off)
		last := max(o.ext[hi-1].end(), end)
		m := extent{off: start, data: make([]byte, last-start)}
		for i := lo; i < hi; i++ {
			e := &o.ext[i]
			copy(m.data[e.off-start:], e.data)
			for _, l := range e.labels {
				m.addLabel(l)
			}
			m.more += e.more
		}
		copy(m.data[off-start:], p)
		m.addLabel(label)
		o.ext[lo] = m
		o.ext = append(o.ext[:lo+1], o.ext[hi:]...)
	}
	return len(p), nil
}

// Range is a byte range a plan changes.
type Range struct {
	Off, Len int64
	Label    string // the labels of the writes merged into it, "; "-separated
}

// Change is a Range with its planned bytes.
type Change struct {
	Off   int64
	Data  []byte // owned by the Overlay: do not modify
	Label string
}

// Len returns the length of the change.
func (c Change) Len() int64 { return int64(len(c.Data)) }

// Ranges returns the ranges written so far, sorted, with overlapping
// writes merged, and touching writes merged when they carry the same label
// (each range is then one thing to undo and report), widened to the
// alignment (see SetAlign).
func (o *Overlay) Ranges() []Range {
	spans := o.spans()
	rs := make([]Range, len(spans))
	for i, sp := range spans {
		rs[i] = Range{sp.off, sp.end - sp.off, sp.label}
	}
	return rs
}

// Changes returns the ranges with their planned bytes. It fails only when
// widening to the alignment needs base bytes that cannot be read.
func (o *Overlay) Changes() ([]Change, error) {
	spans := o.spans()
	cs := make([]Change, len(spans))
	for i, sp := range spans {
		cs[i] = Change{Off: sp.off, Label: sp.label}
		if sp.first == sp.last && o.ext[sp.first].off == sp.off && o.ext[sp.first].end() == sp.end {
			cs[i].Data = o.ext[sp.first].data
			continue
		}
		cs[i].Data = make([]byte, sp.end-sp.off)
		if _, err := o.ReadAt(cs[i].Data, sp.off); err != nil {
			return nil, fmt.Errorf("overlay: widening %#x+%d to %d-byte blocks: %w", sp.off, sp.end-sp.off, o.align, err)
		}
	}
	return cs, nil
}

// labelOf is e's label as a span shows it.
func labelOf(e *extent) string { return e.label() }

// alignedSpan is a range of the result: extents first..last widened.
type alignedSpan struct {
	off, end    int64
	first, last int
	label       string
}

func (o *Overlay) spans() []alignedSpan {
	var out []alignedSpan
	var cur *extent // labels of the span being built
	for i := range o.ext {
		e := &o.ext[i]
		off := e.off / o.align * o.align
		end := min((e.end()+o.align-1)/o.align*o.align, o.size)
		if n := len(out); n > 0 && (off < out[n-1].end || off == out[n-1].end && out[n-1].label == labelOf(e)) {
			last := &out[n-1]
			last.end = max(last.end, end)
			last.last = i
			for _, l := range e.labels {
				cur.addLabel(l)
			}
			cur.more += e.more
			last.label = cur.label()
			continue
		}
		cur = &extent{labels: append([]string(nil), e.labels...), more: e.more}
		out = append(out, alignedSpan{off, end, i, i, cur.label()})
	}
	// A span's label can change after its neighbour was compared with it
	// (an unlabelled write later overlapped by a labelled one): join the
	// touching spans that ended up with the same label.
	k := 0
	for i := 1; i < len(out); i++ {
		if out[k].end == out[i].off && out[k].label == out[i].label {
			out[k].end, out[k].last = out[i].end, out[i].last
			continue
		}
		k++
		out[k] = out[i]
	}
	if len(out) > 0 {
		out = out[:k+1]
	}
	return out
}

// Bytes returns the number of bytes the plan's writes cover, before
// widening to the alignment.
func (o *Overlay) Bytes() int64 {
	var n int64
	for i := range o.ext {
		n += int64(len(o.ext[i].data))
	}
	return n
}
