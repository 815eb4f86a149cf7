package journal

import (
	"fmt"
	"io"
	"slices"
	"sort"
)

// Overlay is a dry run of a plan of writes: an io.ReaderAt and io.WriterAt
// over a read-only base that keeps every write in memory, so that the code
// making the plan reads back what it planned, and nothing reaches the base.
// When the plan has succeeded, [Overlay.Ranges] is the exact list of byte
// ranges it changes (what `fix --dry-run` reports) and [CommitOn] journals
// and applies it. Memory is proportional to the bytes written. An Overlay
// is not safe for concurrent use.
//
// # Units
//
// Every write belongs to a plan unit: one rename, one hive edit, one file
// rewrite, a change that takes the target from one consistent state to
// another. Write through [Overlay.Unit] (a new unit) or [Overlay.Labeled]
// (the unit of that label); plain [Overlay.WriteAt] writes belong to one
// anonymous unit. The journal keeps the units, and undo restores or
// leaves each unit whole; units whose writes overlap or share a block
// ([Overlay.SetGroup]) are restored or left together.
//
// # Growth
//
// By default a write past the base's size is refused. [Overlay.AllowGrowth]
// lets writes extend the target (a container format appending clusters):
// reads between the base's end and the new end see zeros where nothing was
// written, [Overlay.Size] reports the new size, and the journal records the
// old and new sizes so that undo can cut the target back.
type Overlay struct {
	base     io.ReaderAt
	baseSize int64    // the base's size
	size     int64    // the planned size: baseSize, or more after growth
	limit    int64    // the largest size growth may reach (baseSize: no growth)
	align    int64    // Ranges and Changes are widened to multiples of it
	group    int64    // block size grouping units (0: the alignment, at least 512)
	ext      []extent // sorted by offset; not overlapping; touching only if their units differ
	labels   []string // unit labels, by id-1
	byLabel  map[string]int
	anon     int // the unit of unlabelled writes, 0 until first used
}

// extent is a run of written bytes.
type extent struct {
	off   int64
	data  []byte
	units []int // sorted unit ids
}

func (e *extent) end() int64 { return e.off + int64(len(e.data)) }

// maxLabels bounds the labels shown per merged range; more are counted.
const maxLabels = 8

// NewOverlay returns an empty overlay over base, whose size is size bytes;
// writes beyond size are refused unless [Overlay.AllowGrowth] is called.
func NewOverlay(base io.ReaderAt, size int64) *Overlay {
	return &Overlay{base: base, baseSize: size, size: size, limit: size, align: 1, byLabel: map[string]int{}}
}

// SetAlign makes [Overlay.Ranges] and [Overlay.Changes] widen every range
// to whole blocks of n bytes (clipped at the end of the target), filling
// the widening from the base, so that every journaled write is whole
// sectors: Windows refuses unaligned writes to a raw volume (\\.\D:), and
// undo then compares and restores whole sectors. n must be positive.
func (o *Overlay) SetAlign(n int64) {
	if n > 0 {
		o.align = n
	}
}

// SetGroup sets the block size by which units are grouped: units whose
// ranges share a block of n bytes (offsets k*n to (k+1)*n in the
// overlay's coordinates) are one group, which undo restores or leaves
// whole; pass the cluster size when units must not share a cluster. The
// default is the alignment, and at least 512 (the smallest sector).
func (o *Overlay) SetGroup(n int64) {
	if n > 0 {
		o.group = n
	}
}

// groupBlock is the effective grouping block size.
func (o *Overlay) groupBlock() int64 {
	return max(o.group, o.align, defaultBlock)
}

// AllowGrowth lets writes extend the overlay past the base's size, up to
// limit bytes in all (a limit at or below the base's size turns growth
// off). Memory stays proportional to the bytes written: a gap left
// between the base's end and a write reads as zeros and is not stored.
func (o *Overlay) AllowGrowth(limit int64) {
	o.limit = max(limit, o.baseSize, o.size)
}

// Size returns the planned size: the base's size given to NewOverlay, or
// more when writes grew it (see AllowGrowth).
func (o *Overlay) Size() int64 { return o.size }

// BaseSize returns the base's size given to NewOverlay.
func (o *Overlay) BaseSize() int64 { return o.baseSize }

// ReadAt reads the base with the planned writes laid over it; past the
// base's end (after growth) unwritten bytes read as zeros.
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
	end := off + int64(n)
	if off < o.baseSize {
		b := int(min(end, o.baseSize) - off)
		if m, err := o.base.ReadAt(p[:b], off); m < b {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return m, fmt.Errorf("overlay: reading the base at %#x: %w", off, err)
		}
		clear(p[b:n])
	} else {
		clear(p[:n])
	}
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

// WriteAt records a planned write of the anonymous unit. It never writes
// the base.
func (o *Overlay) WriteAt(p []byte, off int64) (int, error) {
	return o.write(p, off, o.anonUnit())
}

func (o *Overlay) anonUnit() int {
	if o.anon == 0 {
		o.labels = append(o.labels, "")
		o.anon = len(o.labels)
	}
	return o.anon
}

// UnitWriter writes into an overlay on behalf of one plan unit.
type UnitWriter struct {
	o  *Overlay
	id int
}

// WriteAt records a planned write of the unit.
func (u *UnitWriter) WriteAt(p []byte, off int64) (int, error) { return u.o.write(p, off, u.id) }

// ID returns the unit's id (from 1), as in [Change.Units] and the journal.
func (u *UnitWriter) ID() int { return u.id }

// Label returns the unit's label.
func (u *UnitWriter) Label() string { return u.o.labels[u.id-1] }

// Unit starts a new plan unit labelled label ("rename \Windows\SoftwareDistribution",
// "hive SOFTWARE: delete value X"): every write through the returned writer
// belongs to it. Two calls make two units, even with the same label.
func (o *Overlay) Unit(label string) *UnitWriter {
	o.labels = append(o.labels, cut(label, maxString))
	return &UnitWriter{o, len(o.labels)}
}

// Labeled returns a writer into o for the unit named label, made on the
// first call with that label: writes through every writer Labeled returns
// for one label belong to one unit. Labeled("") is the anonymous unit of
// WriteAt.
func (o *Overlay) Labeled(label string) io.WriterAt {
	if label == "" {
		return &UnitWriter{o, o.anonUnit()}
	}
	id, ok := o.byLabel[label]
	if !ok {
		id = o.Unit(label).id
		o.byLabel[label] = id
	}
	return &UnitWriter{o, id}
}

// UnitLabel returns the label of unit id ("" for the anonymous unit or an
// unknown id).
func (o *Overlay) UnitLabel(id int) string {
	if id < 1 || id > len(o.labels) {
		return ""
	}
	return o.labels[id-1]
}

// hasOnly reports whether units is exactly {u}.
func hasOnly(units []int, u int) bool { return len(units) == 1 && units[0] == u }

// addUnits merges sorted unit sets.
func addUnits(a []int, b ...int) []int {
	for _, u := range b {
		i, found := slices.BinarySearch(a, u)
		if !found {
			a = slices.Insert(a, i, u)
		}
	}
	return a
}

func (o *Overlay) write(p []byte, off int64, unit int) (int, error) {
	n := int64(len(p))
	if off < 0 || off > o.limit || n > o.limit-off {
		if o.limit > o.baseSize {
			return 0, fmt.Errorf("overlay: write %#x+%d beyond the growth limit (%#x)", off, n, o.limit)
		}
		return 0, fmt.Errorf("overlay: write %#x+%d beyond the end of the volume (%#x)", off, n, o.size)
	}
	if n == 0 {
		return 0, nil
	}
	end := off + n
	o.size = max(o.size, end)
	// ext[lo:hi] overlap [off, end), or touch it and belong to this unit
	// alone: they merge with the write. Touching writes of different
	// units stay apart, so that undo decides (and reports) each on its own.
	lo := sort.Search(len(o.ext), func(i int) bool { return o.ext[i].end() > off })
	if lo > 0 && o.ext[lo-1].end() == off && hasOnly(o.ext[lo-1].units, unit) {
		lo--
	}
	hi := lo
	for hi < len(o.ext) && o.ext[hi].off < end {
		hi++
	}
	if hi < len(o.ext) && o.ext[hi].off == end && hasOnly(o.ext[hi].units, unit) {
		hi++
	}
	switch {
	case lo == hi:
		e := extent{off: off, data: append([]byte(nil), p...), units: []int{unit}}
		o.ext = slices.Insert(o.ext, lo, e)
	case hi-lo == 1 && o.ext[lo].off <= off:
		// The common case, a write inside or extending one range: grow it
		// in place (append is amortised, so sequential writes stay linear).
		e := &o.ext[lo]
		if grow := end - e.end(); grow > 0 {
			e.data = slices.Grow(e.data, int(grow))[:len(e.data)+int(grow)]
		}
		copy(e.data[off-e.off:], p)
		e.units = addUnits(e.units, unit)
	default:
		start := min(o.ext[lo].off, off)
		last := max(o.ext[hi-1].end(), end)
		m := extent{off: start, data: make([]byte, last-start)}
		for i := lo; i < hi; i++ {
			e := &o.ext[i]
			copy(m.data[e.off-start:], e.data)
			m.units = addUnits(m.units, e.units...)
		}
		copy(m.data[off-start:], p)
		m.units = addUnits(m.units, unit)
		o.ext[lo] = m
		o.ext = append(o.ext[:lo+1], o.ext[hi:]...)
	}
	return len(p), nil
}

// Range is a byte range a plan changes.
type Range struct {
	Off, Len int64
	Label    string // the labels of the units whose writes merged into it, "; "-separated
}

// Change is a Range with its planned bytes and units.
type Change struct {
	Off   int64
	Data  []byte // owned by the Overlay: do not modify
	Label string
	// Units are the ids of the units whose writes are in the range
	// (see [Overlay.Unit]), sorted.
	Units []int
}

// Len returns the length of the change.
func (c Change) Len() int64 { return int64(len(c.Data)) }

// Ranges returns the ranges written so far, sorted, with overlapping
// writes merged, and touching writes merged when they belong to the same
// units (each range is then one thing to undo and report), widened to
// the alignment (see SetAlign).
func (o *Overlay) Ranges() []Range {
	spans := o.spans()
	rs := make([]Range, len(spans))
	for i, sp := range spans {
		rs[i] = Range{sp.off, sp.end - sp.off, o.labelOf(sp.units)}
	}
	return rs
}

// Changes returns the ranges with their planned bytes. It fails only when
// widening to the alignment needs base bytes that cannot be read.
func (o *Overlay) Changes() ([]Change, error) {
	spans := o.spans()
	cs := make([]Change, len(spans))
	for i, sp := range spans {
		cs[i] = Change{Off: sp.off, Label: o.labelOf(sp.units), Units: sp.units}
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

// Groups returns the groups of units the plan makes so far: the unit ids
// of each group (units that overlap or share a block, see SetGroup), in
// the order of their first range. Undo restores or leaves each group
// whole; a dry run can show them.
func (o *Overlay) Groups() [][]int {
	spans := o.spans()
	rs := make([]unitRange, len(spans))
	for i, sp := range spans {
		rs[i] = unitRange{sp.off, sp.end, sp.units}
	}
	g := groupUnits(len(o.labels), rs, o.groupBlock(), false)
	var out [][]int
	used := map[int]bool{}
	for _, r := range rs {
		for _, u := range r.units {
			used[u] = true
		}
	}
	for u := 1; u < len(g); u++ {
		if !used[u] {
			continue
		}
		for len(out) <= g[u] {
			out = append(out, nil)
		}
		out[g[u]] = append(out[g[u]], u)
	}
	return out
}

// labelOf is the label of a range written by units.
func (o *Overlay) labelOf(units []int) string {
	ls := make([]string, 0, len(units))
	for _, u := range units {
		ls = append(ls, o.labels[u-1])
	}
	return joinLabels(ls)
}

// alignedSpan is a range of the result: extents first..last widened.
type alignedSpan struct {
	off, end    int64
	first, last int
	units       []int
}

func (o *Overlay) spans() []alignedSpan {
	var out []alignedSpan
	for i := range o.ext {
		e := &o.ext[i]
		off := e.off / o.align * o.align
		end := min((e.end()+o.align-1)/o.align*o.align, o.size)
		if n := len(out); n > 0 && (off < out[n-1].end || off == out[n-1].end && slices.Equal(out[n-1].units, e.units)) {
			last := &out[n-1]
			last.end = max(last.end, end)
			last.last = i
			last.units = addUnits(last.units, e.units...)
			continue
		}
		out = append(out, alignedSpan{off, end, i, i, slices.Clone(e.units)})
	}
	// A span's units can change after its neighbour was compared with it
	// (a write of one unit widened into the sector of another): join the
	// touching spans that ended up with the same units.
	k := 0
	for i := 1; i < len(out); i++ {
		if out[k].end == out[i].off && slices.Equal(out[k].units, out[i].units) {
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
