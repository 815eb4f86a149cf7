package hive

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"strings"
	"unicode/utf8"
)

// Severity grades a checker finding.
type Severity int

const (
	// Warning: an inconsistency Windows tolerates (a leaked cell, a stale
	// maximum-length hint, an sk reference count too high), worth
	// knowing before an edit but not a reason to refuse the hive.
	Warning Severity = iota
	// Error: Windows would reject the hive, drop part of it at load
	// ("self-healing"), or misbehave on it (lookups that miss keys).
	Error
)

// String returns "error" or "warning".
func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// NoOffset is the Offset of a finding about the base block (not a cell).
const NoOffset = 0xFFFFFFFF

// Finding is one problem found by Check.
type Finding struct {
	Severity Severity
	// Code is a stable identifier of the kind of problem, e.g.
	// "subkey-order", "lh-hash", "sk-refcount", "cell-leak" (see the
	// list in check.go).
	Code string
	// Offset is the cell offset (relative to the first hive bin) of the
	// structure at fault, or NoOffset for the base block.
	Offset uint32
	// Path is the key concerned, below the root ("" for the root or
	// when no key is concerned).
	Path    string
	Message string
}

// String renders the finding on one line: severity, code, offset, key,
// message.
func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(f.Severity.String())
	b.WriteString(" ")
	b.WriteString(f.Code)
	if f.Offset != NoOffset {
		fmt.Fprintf(&b, " at 0x%x", f.Offset)
	}
	if f.Path != "" {
		fmt.Fprintf(&b, " (key %q)", f.Path)
	}
	b.WriteString(": ")
	b.WriteString(f.Message)
	return b.String()
}

// maxFindings bounds the report; Dropped counts the findings left out.
const maxFindings = 1000

// CheckReport is the result of Check.
type CheckReport struct {
	Findings []Finding // at most 1000; see Dropped
	Dropped  int       // findings beyond the cap, not recorded

	Bins           int // hive bins
	Cells          int // cells in the bins
	AllocatedCells int
	ReferencedCell int // allocated cells reached from the root
	Keys, Values   int // reached from the root
	SecurityCells  int // distinct sk cells used by keys
}

// OK reports whether the hive has no Error findings.
func (r *CheckReport) OK() bool { return len(r.Problems()) == 0 && !r.droppedErrors() }

func (r *CheckReport) droppedErrors() bool { return r.Dropped > 0 }

// Problems returns the Error findings.
func (r *CheckReport) Problems() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Severity == Error {
			out = append(out, f)
		}
	}
	return out
}

// Has reports whether some finding has the given code.
func (r *CheckReport) Has(code string) bool {
	return slices.ContainsFunc(r.Findings, func(f Finding) bool { return f.Code == code })
}

// String lists the findings, one a line.
func (r *CheckReport) String() string {
	var b strings.Builder
	for _, f := range r.Findings {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	if r.Dropped > 0 {
		fmt.Fprintf(&b, "... and %d more findings\n", r.Dropped)
	}
	return b.String()
}

// bitmap is one bit per 8-byte cell slot of the hive-bins data.
type bitmap []uint64

func newBitmap(size uint32) bitmap { return make(bitmap, (size/cellAlign+63)/64) }

func (m bitmap) get(off uint32) bool {
	i := off / cellAlign
	return int(i/64) < len(m) && m[i/64]&(1<<(i%64)) != 0
}

func (m bitmap) set(off uint32) {
	i := off / cellAlign
	if int(i/64) < len(m) {
		m[i/64] |= 1 << (i % 64)
	}
}

func (m bitmap) clear(off uint32) {
	i := off / cellAlign
	if int(i/64) < len(m) {
		m[i/64] &^= 1 << (i % 64)
	}
}

// checker holds the state of one Check run. Its memory is three bitmaps of
// one bit per 8 bytes of hive bins, the sk table, and the walk's stack of
// pending keys.
type checker struct {
	h      *Hive
	r      *CheckReport
	limit  uint32 // end of the bins actually present
	starts bitmap // a cell starts here
	alloc  bitmap // ... and is allocated
	ref    bitmap // ... and something references it
	sks    map[uint32]*skUse
	skList []uint32 // sk cells in first-use order

	// lazy: a bounded check (Editor.Verify) that knows only the bins it
	// reads, through the hive's per-bin index, and records references in
	// refs instead of the bitmaps.
	lazy bool
	refs map[uint32]bool
}

// cell reports whether a cell starts at off and whether it is allocated.
func (c *checker) cell(off uint32) (start, allocated bool) {
	if off%cellAlign != 0 {
		return false, false
	}
	if !c.lazy {
		return off < c.limit && c.starts.get(off), c.alloc.get(off)
	}
	if off == nilCell {
		return false, false
	}
	h := c.h
	b, err := h.findBin(off)
	if err != nil || off < b.off+binHeaderSize {
		return false, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	bc, err := h.bins.cellsOf(h.src, b)
	if err != nil {
		return false, false
	}
	rel := off - b.off
	return bc.starts.get(rel), bc.alloc.get(rel)
}

// referenced reports whether a reference to off was recorded; mark
// records one.
func (c *checker) referenced(off uint32) bool {
	if c.lazy {
		return c.refs[off]
	}
	return c.ref.get(off)
}

func (c *checker) mark(off uint32) {
	if c.lazy {
		c.refs[off] = true
		return
	}
	c.ref.set(off)
}

// skUse is what the walk learned about one sk cell.
type skUse struct {
	rec  *skRecord
	uses uint32
}

// Codes used by Check (Finding.Code):
//
//	base-dirty, base-checksum, base-clustering, base-bins-size, base-root
//	bin-header, bin-cell           hive bins and the cells tiling them
//	ref-not-cell, ref-free         a reference to no cell / a free cell
//	ref-twice                      a cell referenced from two places
//	cell-leak (warning)            allocated, but nothing references it
//	key-record, key-size, key-name, key-parent, key-flags, key-depth
//	key-maxlen (warning)           stored maximum lengths below the real ones
//	class                          class name cell
//	list-record, list-count, list-nested, list-empty, list-version
//	subkey-order, subkey-duplicate, lh-hash, lf-hint
//	value-list, value-record, value-duplicate, value-data, value-inline,
//	value-bigdata
//	sk-missing, sk-record, sk-descriptor, sk-refcount, sk-list
func (c *checker) add(sev Severity, code string, off uint32, path, format string, args ...any) {
	if len(c.r.Findings) >= maxFindings {
		c.r.Dropped++
		return
	}
	c.r.Findings = append(c.r.Findings, Finding{Severity: sev, Code: code, Offset: off, Path: path, Message: fmt.Sprintf(format, args...)})
}

// Check verifies the whole hive as Windows' loader does (base block, bins
// and cells, every key node, list, value and security cell reachable from
// the root; cf. ReactOS cmcheck.c) and beyond what any other tool checks:
// subkey order under Windows' upcase table, lh hashes and lf hints, counts
// against lists, sk reference counts and the sk list links, allocated
// cells that nothing references, and cells referenced twice. It reads every
// bin once; memory is a few bits per 8 bytes of hive.
func (h *Hive) Check() *CheckReport {
	// The checker reads every cell, in tree order: give it its own view of
	// the hive with a small page cache, so that neighbouring cells cost one
	// read of the source instead of one each.
	hc := &Hive{
		src:     newCheckCache(h.src, h.srcSize, checkCacheSlots),
		srcSize: h.srcSize, base: h.base,
		dirty: h.dirty, recovered: h.recovered, rec: h.rec,
	}
	h.mu.Lock()
	hc.bins = binIndex{limit: h.bins.limit, lenient: h.bins.lenient}
	h.mu.Unlock()
	c := &checker{h: hc, r: &CheckReport{}, sks: map[uint32]*skUse{}}
	c.checkBase()
	if !c.checkBins() {
		return c.r
	}
	binsOK := !c.r.Has("bin-header") && !c.r.Has("bin-cell")
	c.walk()
	c.checkSecurity()
	if binsOK {
		// With a broken bin chain most of the tree is unreachable and
		// every cell would look leaked: noise, not information.
		c.checkLeaks()
	}
	return c.r
}

// Check opens the hive in r (recovering it from logs in memory if it is
// dirty and logs are given) and checks it. The error is Open's.
func Check(r io.ReaderAt, size int64, logs ...Log) (*CheckReport, error) {
	h, err := Open(r, size, logs...)
	if err != nil {
		return nil, err
	}
	return h.Check(), nil
}

func (c *checker) checkBase() {
	bb := c.h.base
	switch {
	case c.h.dirty && !c.h.recovered:
		c.add(Error, "base-dirty", NoOffset, "", "the hive is dirty (sequence numbers %d/%d, checksum ok: %v) and no log recovered it", bb.Sequence1, bb.Sequence2, bb.ChecksumOK)
	case c.h.recovered:
		// The recovered base block is consistent; nothing to report:
		// Windows would replay the same logs at load.
	default:
		if !bb.ChecksumOK {
			c.add(Error, "base-checksum", NoOffset, "", "checksum 0x%08x is wrong", bb.Checksum)
		}
	}
	if bb.Clustering != 1 {
		c.add(Error, "base-clustering", NoOffset, "", "clustering factor %d, want 1", bb.Clustering)
	}
}

// checkBins reads every bin and the cells tiling it. It returns false when
// nothing more can be checked.
func (c *checker) checkBins() bool {
	bins, err := c.h.allBins()
	if err != nil {
		c.add(Error, "bin-header", errOffset(err), "", "%v", err)
	}
	if len(bins) == 0 {
		c.add(Error, "bin-header", 0, "", "no hive bins")
		return false
	}
	c.limit = bins[len(bins)-1].end()
	c.r.Bins = len(bins)
	if !c.h.bins.lenient && c.limit != c.h.base.HiveBinsSize {
		c.add(Error, "base-bins-size", NoOffset, "", "base block declares 0x%x bytes of hive bins, the bins end at 0x%x", c.h.base.HiveBinsSize, c.limit)
	} else if c.h.bins.lenient && c.limit != c.h.base.HiveBinsSize {
		c.add(Warning, "base-bins-size", NoOffset, "", "dirty base block declares 0x%x bytes of hive bins, the bins present end at 0x%x", c.h.base.HiveBinsSize, c.limit)
	}
	c.starts, c.alloc, c.ref = newBitmap(c.limit), newBitmap(c.limit), newBitmap(c.limit)
	for _, b := range bins {
		// walkCells reads the bin in bounded chunks: memory does not
		// follow a bin size that a header declares.
		bc, err := walkCells(c.h.src, b)
		if err != nil {
			c.add(Error, "bin-header", b.off, "", "reading bin: %v", err)
			continue
		}
		if bc.broken != 0 {
			c.add(Error, "bin-cell", b.off+bc.broken, "", "%s (bin at 0x%x)", bc.why, b.off)
		}
		for i, w := range bc.starts {
			for w != 0 {
				bit := uint32(bits.TrailingZeros64(w))
				w &^= 1 << bit
				rel := (uint32(i)*64 + bit) * cellAlign
				c.r.Cells++
				c.starts.set(b.off + rel)
				if bc.alloc.get(rel) {
					c.r.AllocatedCells++
					c.alloc.set(b.off + rel)
				}
			}
		}
		// The reader would walk this bin again on its first cell read:
		// hand it the walk.
		c.h.mu.Lock()
		if c.h.bins.cells == nil {
			c.h.bins.cells = map[uint32]*binCells{}
		}
		c.h.bins.cells[b.off] = bc
		c.h.mu.Unlock()
	}
	return true
}

// errOffset extracts the cell offset of err, or NoOffset.
func errOffset(err error) uint32 {
	var ce *CellError
	if errors.As(err, &ce) {
		return ce.Offset
	}
	return NoOffset
}

// ref records a reference to the cell at off (what, from key path) and
// reports whether the cell may be read: an allocated cell start.
// Referencing a cell a second time is reported unless shared is set.
func (c *checker) refCell(off uint32, what, path string, shared bool) bool {
	start, allocated := c.cell(off)
	if !start {
		c.add(Error, "ref-not-cell", off, path, "%s: no cell starts at 0x%x", what, off)
		return false
	}
	if !allocated {
		c.add(Error, "ref-free", off, path, "%s: the cell at 0x%x is free", what, off)
		return false
	}
	if c.referenced(off) {
		if !shared {
			c.add(Error, "ref-twice", off, path, "%s: the cell at 0x%x is already used by another structure", what, off)
			return false
		}
		return true
	}
	c.mark(off)
	c.r.ReferencedCell++
	return true
}

// data reads a referenced cell's data, reporting a read failure.
func (c *checker) data(off uint32, what, path, code string) ([]byte, bool) {
	d, err := c.h.cellData(off, what)
	if err != nil {
		c.add(Error, code, off, path, "%v", err)
		return nil, false
	}
	return d, true
}

// pending is a key waiting to be checked. A child waiting in the stack
// holds its parent's path (shared, not copied) and its own name; walk joins
// them when the child's turn comes. Joining at queue time would copy the
// whole path once per list entry: a small hive with a deep chain of long
// names and a list repeating one entry would cost gigabytes.
type pending struct {
	off    uint32
	parent uint32 // nilCell for the root
	path   string // the key's path; for a queued child, its parent's
	name   []uint16
	depth  int
}

// maxReportPath bounds the key paths in findings (bytes): deeper paths keep
// their last part, which names the key, after a "..." marker.
const maxReportPath = 1024

// reportPath joins a parent's path and a child's name for findings,
// cutting the front of paths longer than maxReportPath.
func reportPath(parent string, name []uint16) string {
	p := unitsString(name)
	if parent != "" {
		p = parent + `\` + p
	}
	if len(p) > maxReportPath {
		cut := len(p) - maxReportPath
		for cut < len(p) && !utf8.RuneStart(p[cut]) {
			cut++
		}
		p = "..." + p[cut:]
	}
	return p
}

// walk checks the tree from the root, depth first with an explicit stack,
// each key node at most once.
func (c *checker) walk() {
	root := c.h.base.RootCell
	stack := []pending{{off: root, parent: nilCell}}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if p.name != nil {
			p.path, p.name = reportPath(p.path, p.name), nil
		}
		children := c.checkKey(p)
		for i := len(children) - 1; i >= 0; i-- {
			stack = append(stack, children[i])
		}
	}
}

// checkKey checks one key node and returns its subkeys to visit.
func (c *checker) checkKey(p pending) []pending {
	what := "key node"
	if p.parent == nilCell {
		what = "root key"
	}
	if !c.refCell(p.off, what, p.path, false) {
		if p.parent == nilCell {
			c.add(Error, "base-root", NoOffset, "", "root cell 0x%x is not an allocated cell", p.off)
		}
		return nil
	}
	d, ok := c.data(p.off, what, p.path, "key-record")
	if !ok {
		return nil
	}
	nk, err := parseNK(p.off, d)
	if err != nil {
		c.add(Error, "key-record", p.off, p.path, "%v", err)
		return nil
	}
	c.r.Keys++
	// cmcheck: a key cell larger than 0x45C bytes is not sane (a name is
	// at most 255 UTF-16 characters).
	if len(d) > 0x45C {
		c.add(Error, "key-size", p.off, p.path, "key node cell of %d bytes (Windows' limit is 1116)", len(d))
	}
	if nk.nameLen == 0 {
		c.add(Error, "key-name", p.off, p.path, "empty key name")
	}
	if slices.Contains(nk.name, '\\') {
		c.add(Error, "key-name", p.off, p.path, "key name %q contains a backslash", unitsString(nk.name))
	}
	if nk.flags&KeyVolatile != 0 {
		c.add(Warning, "key-flags", p.off, p.path, "volatile key stored in the file (flags 0x%x)", nk.flags)
	}
	if p.parent == nilCell {
		if nk.flags&KeyHiveEntry == 0 {
			c.add(Warning, "key-flags", p.off, p.path, "root key lacks the hive-entry flag (flags 0x%x)", nk.flags)
		}
	} else {
		if nk.parent != p.parent {
			c.add(Error, "key-parent", p.off, p.path, "parent field 0x%x, but the key is listed under 0x%x", nk.parent, p.parent)
		}
		if nk.flags&KeyHiveEntry != 0 {
			c.add(Warning, "key-flags", p.off, p.path, "non-root key has the hive-entry flag (flags 0x%x)", nk.flags)
		}
	}
	c.checkClass(p, nk)
	c.checkKeySecurity(p, nk)
	c.checkValues(p, nk)
	children := c.checkSubkeys(p, nk)
	if len(children) > 0 && p.depth+1 >= maxKeyDepth {
		c.add(Error, "key-depth", p.off, p.path, "subkeys deeper than %d levels are not visited", maxKeyDepth)
		return nil
	}
	return children
}

func (c *checker) checkClass(p pending, nk *nkRecord) {
	if nk.classLen == 0 {
		return
	}
	if nk.class == nilCell {
		// cmcheck resets the length; harmless.
		c.add(Warning, "class", p.off, p.path, "class length %d with no class cell", nk.classLen)
		return
	}
	if !c.refCell(nk.class, "class name", p.path, false) {
		return
	}
	d, ok := c.data(nk.class, "class name", p.path, "class")
	if !ok {
		return
	}
	if int(nk.classLen) > len(d) {
		c.add(Error, "class", nk.class, p.path, "class of %d bytes does not fit in the %d-byte cell", nk.classLen, len(d))
	}
}

func (c *checker) checkKeySecurity(p pending, nk *nkRecord) {
	if nk.security == nilCell {
		c.add(Error, "sk-missing", p.off, p.path, "key has no security cell")
		return
	}
	if u, ok := c.sks[nk.security]; ok {
		u.uses++
		return
	}
	if !c.refCell(nk.security, "security", p.path, false) {
		return
	}
	d, ok := c.data(nk.security, "security", p.path, "sk-record")
	if !ok {
		return
	}
	s, err := parseSK(nk.security, d)
	if err != nil {
		c.add(Error, "sk-record", nk.security, p.path, "%v", err)
		return
	}
	if msg := checkDescriptor(s.desc); msg != "" {
		c.add(Error, "sk-descriptor", nk.security, p.path, "%s", msg)
	}
	c.sks[nk.security] = &skUse{rec: s, uses: 1}
	c.skList = append(c.skList, nk.security)
	c.r.SecurityCells++
}

// checkDescriptor validates the header of a self-relative security
// descriptor (what RtlValidRelativeSecurityDescriptor looks at first):
// revision 1, the self-relative control bit, and owner, group, SACL and
// DACL offsets inside the descriptor.
func checkDescriptor(d []byte) string {
	if len(d) < 20 {
		return fmt.Sprintf("security descriptor of %d bytes, at least 20 needed", len(d))
	}
	if d[0] != 1 {
		return fmt.Sprintf("security descriptor revision %d, want 1", d[0])
	}
	control := leUint16(d[2:])
	if control&0x8000 == 0 {
		return "security descriptor is not self-relative"
	}
	for i, name := range []string{"owner", "group", "SACL", "DACL"} {
		off := leUint32(d[4+4*i:])
		if off != 0 && (off < 20 || uint64(off)+8 > uint64(len(d))) {
			return fmt.Sprintf("security descriptor %s offset %d outside its %d bytes", name, off, len(d))
		}
	}
	return ""
}

func (c *checker) checkValues(p pending, nk *nkRecord) {
	if nk.valueCount == 0 {
		return
	}
	if !c.refCell(nk.valueList, "value list", p.path, false) {
		return
	}
	d, ok := c.data(nk.valueList, "value list", p.path, "value-list")
	if !ok {
		return
	}
	if uint64(nk.valueCount)*4 > uint64(len(d)) {
		c.add(Error, "value-list", nk.valueList, p.path, "%d values do not fit in the %d-byte cell", nk.valueCount, len(d))
		return
	}
	seen := make(map[string]uint32, nk.valueCount)
	var maxName, maxData uint32
	for i := range nk.valueCount {
		off := leUint32(d[4*i:])
		if !c.refCell(off, "value", p.path, false) {
			continue
		}
		vd, ok := c.data(off, "value", p.path, "value-record")
		if !ok {
			continue
		}
		vk, err := parseVK(off, vd)
		if err != nil {
			c.add(Error, "value-record", off, p.path, "%v", err)
			continue
		}
		c.r.Values++
		key := upcaseKey(vk.name)
		if prev, dup := seen[key]; dup {
			c.add(Error, "value-duplicate", off, p.path, "value %q has the name of the value at 0x%x", unitsString(vk.name), prev)
		}
		seen[key] = off
		maxName = max(maxName, uint32(len(vk.name))*2)
		maxData = max(maxData, vk.length())
		c.checkValueData(p, off, vk)
	}
	if nk.maxValName < maxName {
		c.add(Warning, "key-maxlen", p.off, p.path, "max value name length %d, a value name takes %d bytes", nk.maxValName, maxName)
	}
	if nk.maxValData < maxData {
		c.add(Warning, "key-maxlen", p.off, p.path, "max value data length %d, a value holds %d bytes", nk.maxValData, maxData)
	}
}

// upcaseKey is a map key equal for names equal under Windows upcase.
func upcaseKey(name []uint16) string {
	b := make([]byte, 0, 2*len(name))
	for _, u := range name {
		u = upcase(u)
		b = append(b, byte(u), byte(u>>8))
	}
	return string(b)
}

func (c *checker) checkValueData(p pending, off uint32, vk *vkRecord) {
	name := unitsString(vk.name)
	n := vk.length()
	if vk.isInline() {
		if n > 4 {
			c.add(Error, "value-inline", off, p.path, "value %q: inline data of %d bytes (at most 4)", name, n)
		}
		return
	}
	if n == 0 {
		if vk.dataOff != nilCell {
			// cmcheck: data must be nil when the length is 0.
			c.add(Error, "value-data", off, p.path, "value %q: empty, but its data offset is 0x%x, not nil", name, vk.dataOff)
		}
		return
	}
	if !c.refCell(vk.dataOff, fmt.Sprintf("data of value %q", name), p.path, false) {
		return
	}
	d, ok := c.data(vk.dataOff, "value data", p.path, "value-data")
	if !ok {
		return
	}
	isDB := len(d) >= 2 && d[0] == 'd' && d[1] == 'b'
	if c.h.base.Minor >= 4 && n > bigDataSegment {
		if !isDB {
			c.add(Error, "value-bigdata", vk.dataOff, p.path, "value %q: %d bytes in a version 1.%d hive must be in a db record; Windows would misread this cell", name, n, c.h.base.Minor)
			if uint32(len(d)) < n {
				c.add(Error, "value-data", vk.dataOff, p.path, "value %q: %d bytes declared, the cell holds %d", name, n, len(d))
			}
			return
		}
		segs, err := c.h.bigSegments(vk.dataOff, d, n)
		if err != nil {
			c.add(Error, "value-bigdata", vk.dataOff, p.path, "value %q: %v", name, err)
			return
		}
		if !c.refCell(leUint32(d[4:]), "big data segment list", p.path, false) {
			return
		}
		left := n
		for i, so := range segs {
			if !c.refCell(so, fmt.Sprintf("big data segment %d", i), p.path, false) {
				return
			}
			sd, ok := c.data(so, "big data segment", p.path, "value-bigdata")
			if !ok {
				return
			}
			want := min(left, bigDataSegment)
			if uint32(len(sd)) < want {
				c.add(Error, "value-bigdata", so, p.path, "value %q: segment %d holds %d bytes, want %d", name, i, len(sd), want)
			}
			left -= want
		}
		return
	}
	if uint32(len(d)) < n {
		c.add(Error, "value-data", vk.dataOff, p.path, "value %q: %d bytes declared, the cell holds %d", name, n, len(d))
	}
}

// checkSubkeys checks the subkey lists of a key and returns its children.
func (c *checker) checkSubkeys(p pending, nk *nkRecord) []pending {
	if nk.subkeyCount == 0 {
		return nil
	}
	if !c.refCell(nk.subkeyList, "subkey list", p.path, false) {
		return nil
	}
	d, ok := c.data(nk.subkeyList, "subkey list", p.path, "list-record")
	if !ok {
		return nil
	}
	top, err := parseList(nk.subkeyList, d)
	if err != nil {
		c.add(Error, "list-record", nk.subkeyList, p.path, "%v", err)
		return nil
	}
	leaves := []*subkeyList{top}
	if top.sig == "ri" {
		leaves = leaves[:0]
		if len(top.entries) == 0 {
			c.add(Error, "list-empty", top.off, p.path, "empty ri list")
		}
		for _, lo := range top.entries {
			if !c.refCell(lo, "subkey list leaf", p.path, false) {
				continue
			}
			ld, ok := c.data(lo, "subkey list", p.path, "list-record")
			if !ok {
				continue
			}
			leaf, err := parseList(lo, ld)
			if err != nil {
				c.add(Error, "list-record", lo, p.path, "%v", err)
				continue
			}
			if leaf.sig == "ri" {
				c.add(Error, "list-nested", lo, p.path, "ri list inside the ri at 0x%x", top.off)
				continue
			}
			if len(leaf.entries) == 0 {
				c.add(Error, "list-empty", lo, p.path, "empty leaf in the ri at 0x%x", top.off)
			}
			leaves = append(leaves, leaf)
		}
	}
	total := 0
	for _, l := range leaves {
		total += len(l.entries)
		if l.sig == "lh" && c.h.base.Minor < 5 {
			c.add(Warning, "list-version", l.off, p.path, "lh list in a version 1.%d hive (lh needs 1.5)", c.h.base.Minor)
		}
	}
	if uint32(total) != nk.subkeyCount {
		c.add(Error, "list-count", top.off, p.path, "lists hold %d subkeys, the key declares %d", total, nk.subkeyCount)
	}
	var children []pending
	var prev []uint16
	var prevOff uint32
	var maxName, maxClass uint32
	for _, l := range leaves {
		for i, off := range l.entries {
			if start, allocated := c.cell(off); !start || !allocated {
				c.add(Error, "ref-not-cell", off, p.path, "subkey entry %d of the list at 0x%x: no allocated cell at 0x%x", i, l.off, off)
				continue
			}
			cd, err := c.h.cellData(off, "key node")
			var cnk *nkRecord
			if err == nil {
				cnk, err = parseNK(off, cd)
			}
			if err != nil {
				c.add(Error, "key-record", off, p.path, "%v", err)
				c.refCell(off, "key node", p.path, false) // reported; not a leak
				continue
			}
			name := cnk.name
			cpath := func() string { return reportPath(p.path, name) }
			switch l.sig {
			case "lh":
				if want := nameHash(name); l.hints[i] != want {
					c.add(Error, "lh-hash", l.off, cpath(), "lh entry %d: hash 0x%08x, Windows computes 0x%08x", i, l.hints[i], want)
				}
			case "lf":
				if !hintMatches(l.hints[i], name) {
					c.add(Error, "lf-hint", l.off, cpath(), "lf entry %d: hint %q does not match the name", i, hintBytes(l.hints[i]))
				}
			}
			if prev != nil {
				switch compareNames(prev, name) {
				case 0:
					c.add(Error, "subkey-duplicate", off, cpath(), "subkey has the same name as the one at 0x%x", prevOff)
				case 1:
					c.add(Error, "subkey-order", off, cpath(), "subkey sorts before %q at 0x%x under Windows' upcase order", unitsString(prev), prevOff)
				}
			}
			prev, prevOff = name, off
			maxName = max(maxName, uint32(len(name))*2)
			maxClass = max(maxClass, uint32(cnk.classLen))
			children = append(children, pending{off: off, parent: p.off, path: p.path, name: name, depth: p.depth + 1})
		}
	}
	if nk.maxName&0xFFFF < maxName {
		c.add(Warning, "key-maxlen", p.off, p.path, "max subkey name length %d, a subkey name takes %d bytes", nk.maxName&0xFFFF, maxName)
	}
	if nk.maxClass < maxClass {
		c.add(Warning, "key-maxlen", p.off, p.path, "max subkey class length %d, a subkey class takes %d bytes", nk.maxClass, maxClass)
	}
	return children
}

func hintBytes(h uint32) []byte { return []byte{byte(h), byte(h >> 8), byte(h >> 16), byte(h >> 24)} }

// hintMatches reports whether an lf name hint is what Windows writes for
// name: the first four code units as bytes, zero-padded; when one of them
// is above U+00FF Windows stops there, leaving zeros (cf. ReactOS
// CmpAddToLeaf, which fills from the fourth down and gives up at the first
// wide unit; an all-zero hint is also accepted for such names, as the
// lookup treats a zero byte as "end of hint").
func hintMatches(hint uint32, name []uint16) bool {
	var want [4]byte
	n := min(len(name), 4)
	wide := false
	for j := n; j > 0; j-- {
		if name[j-1] > 0xFF {
			wide = true
			break
		}
		want[j-1] = byte(name[j-1])
	}
	got := hintBytes(hint)
	if [4]byte(got) == want {
		return true
	}
	return wide && hint == 0
}

// checkSecurity checks sk reference counts and the circular sk list.
func (c *checker) checkSecurity() {
	for _, off := range c.skList {
		u := c.sks[off]
		switch {
		case u.rec.refCount < u.uses:
			c.add(Error, "sk-refcount", off, "", "reference count %d, but %d keys use it", u.rec.refCount, u.uses)
		case u.rec.refCount > u.uses:
			c.add(Warning, "sk-refcount", off, "", "reference count %d, but only %d keys use it", u.rec.refCount, u.uses)
		}
	}
	if len(c.skList) == 0 {
		return
	}
	// Follow flink from the first sk; every step must be an sk whose blink
	// points back; the chain must close, and hold every used sk.
	start := c.skList[0]
	inList := make(map[uint32]bool, len(c.skList))
	cur := start
	for steps := 0; ; steps++ {
		if inList[cur] {
			c.add(Error, "sk-list", cur, "", "sk list returns to 0x%x without passing 0x%x", cur, start)
			break
		}
		inList[cur] = true
		u, ok := c.sks[cur]
		if !ok {
			// An sk no key uses: read it (it must still be valid).
			rec, err := c.listedSK(cur)
			if err != nil {
				c.add(Error, "sk-list", cur, "", "sk list entry: %v", err)
				break
			}
			u = &skUse{rec: rec}
			c.sks[cur] = u
			c.add(Warning, "sk-refcount", cur, "", "sk cell in the list but used by no key (reference count %d)", rec.refCount)
		}
		next := u.rec.flink
		nu, ok := c.sks[next]
		var nrec *skRecord
		if ok {
			nrec = nu.rec
		} else {
			r, err := c.listedSK(next)
			if err != nil {
				c.add(Error, "sk-list", cur, "", "flink 0x%x: %v", next, err)
				break
			}
			nrec = r
		}
		if nrec.blink != cur {
			c.add(Error, "sk-list", next, "", "blink 0x%x, but the previous sk in the list is 0x%x", nrec.blink, cur)
		}
		if next == start {
			break
		}
		if steps > c.r.Cells {
			break // cannot happen: inList stops loops
		}
		cur = next
	}
	for _, off := range c.skList {
		if !inList[off] {
			c.add(Error, "sk-list", off, "", "sk cell used by keys is not in the sk list")
		}
	}
}

// listedSK reads an sk cell reached through the list links.
func (c *checker) listedSK(off uint32) (*skRecord, error) {
	if start, allocated := c.cell(off); !start || !allocated {
		return nil, fmt.Errorf("no allocated cell at 0x%x", off)
	}
	if !c.referenced(off) {
		c.mark(off)
		c.r.ReferencedCell++
	}
	return c.h.readSK(off)
}

// checkLeaks reports allocated cells that nothing references.
func (c *checker) checkLeaks() {
	for i, w := range c.alloc {
		leak := w &^ c.ref[i]
		for leak != 0 {
			b := uint32(0)
			for leak&(1<<b) == 0 {
				b++
			}
			leak &^= 1 << b
			off := (uint32(i)*64 + b) * cellAlign
			c.add(Warning, "cell-leak", off, "", "allocated cell referenced by nothing")
		}
	}
}

// checkCache is a direct-mapped cache of 4 KiB pages over an io.ReaderAt,
// of a fixed number of slots (allocated as used). It is private to one Check
// run (so it can never serve bytes an editor has since changed), or sits
// under an editor's view, over bytes the editor never writes (its writes
// stay in the view's pages, which are read first).
type checkCache struct {
	r     io.ReaderAt
	size  int64
	tags  []int64 // page index + 1; 0 = empty
	pages []*[checkCachePage]byte
}

const (
	checkCachePage  = 4096
	checkCacheSlots = 4096 // 16 MiB for a full Check
	editCacheSlots  = 256  // 1 MiB under an editor: it reads a few paths
)

func newCheckCache(r io.ReaderAt, size int64, slots int) *checkCache {
	return &checkCache{r: r, size: size, tags: make([]int64, slots), pages: make([]*[checkCachePage]byte, slots)}
}

// ReadAt implements io.ReaderAt.
func (c *checkCache) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("hive: negative offset %d", off)
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= c.size {
			return n, io.EOF
		}
		idx := pos / checkCachePage
		slot := idx % int64(len(c.tags))
		if c.tags[slot] != idx+1 {
			if c.pages[slot] == nil {
				c.pages[slot] = new([checkCachePage]byte)
			}
			pg := c.pages[slot][:min(checkCachePage, c.size-idx*checkCachePage)]
			if m, err := c.r.ReadAt(pg, idx*checkCachePage); m < len(pg) {
				c.tags[slot] = 0
				if err == nil {
					err = io.ErrUnexpectedEOF
				}
				return n, err
			}
			c.tags[slot] = idx + 1
		}
		in := pos - idx*checkCachePage
		avail := min(checkCachePage, c.size-idx*checkCachePage) - in
		n += copy(p[n:n+int(min(int64(len(p)-n), avail))], c.pages[slot][in:])
	}
	return n, nil
}
