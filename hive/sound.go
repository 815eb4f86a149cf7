package hive

import (
	"errors"
	"fmt"
	"sort"
)

// This file is the editor's soundness rule: before an edit changes a
// structure, the structure and everything the change depends on must check
// clean, and after the edit the same structures are checked again on the
// planned bytes (Editor.Verify), without reading the rest of the hive.
//
// What an edit reads is read strictly (Hive.strict): every cell must lie
// in a sound bin (valid header, the chain around it intact, cells tiling
// it exactly; soundBin). Before an edit changes a key (its node, subkey
// lists or values), the key is checked with the checker's own rules
// (precheck): its node, class, security cell, value list, every value and
// its data, its subkey lists (counts, order, lh hashes / lf hints) and the
// node of every subkey they list. Keys whose whole subtree is deleted are
// checked the same way, one checker for the whole subtree, so a cell that
// two of them share is found before it would be freed twice.
//
// What this cannot see: a reference to a cell from a structure the edit
// does not read (another key's value list pointing at a cell that is marked
// free, say). Only the full check (Hive.Check, `reg check`) walks every
// reference; Windows itself trusts the same size fields when it allocates.

// ErrDamaged is wrapped by every *DamagedError.
var ErrDamaged = errors.New("damaged hive structure")

// DamagedError is the editor's refusal: a structure that the edit reads or
// changes is damaged, and nothing was changed. Where names the structure
// (its kind, cell offset and key), What the problem. Damage elsewhere in
// the hive does not cause it.
type DamagedError struct {
	Where  string // e.g. `value list at 0x1a20 (key "ControlSet001\Control")`
	What   string
	Offset uint32 // cell offset of the damaged structure; NoOffset for the base block
	Path   string // key path ("" for the root or no key)
	Err    error  // the finding or reader error behind it
}

// Error renders "hive: damaged <where>: <what>".
func (e *DamagedError) Error() string {
	return fmt.Sprintf("hive: damaged %s: %s", e.Where, e.What)
}

// Unwrap returns ErrDamaged and the underlying error.
func (e *DamagedError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrDamaged}
	}
	return []error{ErrDamaged, e.Err}
}

// structural lists the reader's sentinels that mean damage (as opposed to
// a missing name, a full hive or an I/O refusal).
var structural = []error{ErrCellOffset, ErrRecord, ErrBin, ErrTruncated, ErrOrder, ErrDuplicate, ErrParent, ErrLoop}

// asDamaged turns a reader error about a damaged structure into a
// *DamagedError; other errors are returned as they are.
func asDamaged(err error) error {
	if err == nil {
		return nil
	}
	var de *DamagedError
	if errors.As(err, &de) {
		return err
	}
	hit := false
	for _, s := range structural {
		if errors.Is(err, s) {
			hit = true
			break
		}
	}
	if !hit {
		return err
	}
	d := &DamagedError{Offset: NoOffset, What: err.Error(), Err: err, Where: "hive"}
	var ke *KeyError
	hasKey := errors.As(err, &ke)
	if hasKey {
		d.Path = ke.Path
	}
	var ce *CellError
	if errors.As(err, &ce) {
		d.Offset = ce.Offset
		d.Where = fmt.Sprintf("%s at 0x%x", ce.Struct, ce.Offset)
		d.What = ce.Err.Error()
	}
	if hasKey {
		d.Where += keyLabel(d.Path)
	}
	return d
}

func keyLabel(path string) string {
	if path == "" {
		return " (root key)"
	}
	return fmt.Sprintf(" (key %q)", path)
}

// findingDamage turns a checker finding into a *DamagedError.
func findingDamage(f Finding) *DamagedError {
	d := &DamagedError{Offset: f.Offset, Path: f.Path, What: f.Message, Err: fmt.Errorf("%s: %s", f.Code, f.Message)}
	if f.Offset == NoOffset {
		d.Where = f.Code
	} else {
		d.Where = fmt.Sprintf("%s at 0x%x", f.Code, f.Offset)
	}
	d.Where += keyLabel(f.Path)
	return d
}

// touchSet is what an edit read and changed, for Verify. Its size follows
// the edit, not the hive.
type touchSet struct {
	bins   map[uint32]hbin   // bins of every cell read, written, freed or allocated
	keys   map[uint32]string // key nodes the edit changed or created, with their paths
	sks    map[uint32]bool   // sk cells whose count or links changed
	freed  map[uint32]bool
	allocd map[uint32]bool
}

func newTouchSet() *touchSet {
	return &touchSet{bins: map[uint32]hbin{}, keys: map[uint32]string{}, sks: map[uint32]bool{}, freed: map[uint32]bool{}, allocd: map[uint32]bool{}}
}

func (t *touchSet) freedCell(off uint32) {
	delete(t.keys, off)
	delete(t.sks, off)
	delete(t.allocd, off)
	t.freed[off] = true
}

func (t *touchSet) allocated(off uint32) {
	t.allocd[off] = true
}

// newLazyChecker returns a checker that reads only what it is asked to
// check, through h's per-bin index.
func newLazyChecker(h *Hive) *checker {
	return &checker{h: h, r: &CheckReport{}, sks: map[uint32]*skUse{}, lazy: true, refs: map[uint32]bool{}}
}

// checkOne checks key node off (listed under parent, nilCell for the
// root) as the full check does, without descending to its subkeys.
func (c *checker) checkOne(off, parent uint32, path string) {
	c.checkKey(pending{off: off, parent: parent, path: path})
}

// carried lists the checker's codes for a wrong lh hash or lf hint of an
// existing subkey entry. An edit copies such an entry as it is (the hash
// only speeds up Windows' lookups; the editor finds positions by name and
// computes the hash of every entry it writes), so it is not a reason to
// refuse; Verify only reports the ones that were not there before.
var carried = map[string]bool{"lh-hash": true, "lf-hint": true}

// precheck checks the keys an edit is about to change (see the top of
// this file) and returns a *DamagedError for the first problem.
func (e *Editor) precheck(keys ...*Key) error {
	c := newLazyChecker(e.h)
	for _, k := range keys {
		c.checkOne(k.off, e.parentOf(k), k.Path())
	}
	return e.firstError(c)
}

// firstError returns the first Error finding of c as a *DamagedError, or
// nil; carried findings are remembered instead.
func (e *Editor) firstError(c *checker) error {
	for _, f := range c.r.Findings {
		if f.Severity != Error {
			continue
		}
		if carried[f.Code] {
			e.carried[f.Code+"|"+f.Path] = true
			continue
		}
		return findingDamage(f)
	}
	if c.r.Dropped > 0 {
		return &DamagedError{Offset: NoOffset, Where: "hive", What: fmt.Sprintf("%d more findings", c.r.Dropped)}
	}
	return nil
}

// precheckTree checks the parent of a key about to be deleted, and every
// key of the subtree with one checker (a cell two of them share would be
// freed twice), and the sk list links of every security cell they use.
func (e *Editor) precheckTree(parent, k *Key) error {
	c := newLazyChecker(e.h)
	c.checkOne(parent.off, e.parentOf(parent), parent.Path())
	if err := e.firstError(c); err != nil {
		return err
	}
	sks := map[uint32]bool{}
	err := k.Walk(func(d *Key) error {
		c.checkOne(d.off, d.nk.parent, d.Path())
		sks[d.nk.security] = true
		return e.firstError(c)
	})
	if err != nil {
		return asDamaged(err)
	}
	for off := range sks {
		if err := e.checkSKLinks(off); err != nil {
			return err
		}
	}
	return nil
}

// parentOf is the parent offset to check k against: nilCell for the root.
func (e *Editor) parentOf(k *Key) uint32 {
	if k.off == e.h.base.RootCell {
		return nilCell
	}
	return k.nk.parent
}

// checkSKLinks reads sk cell off and checks that its neighbours link back
// to it.
func (e *Editor) checkSKLinks(off uint32) error {
	sk, err := e.h.readSK(off)
	if err != nil {
		return asDamaged(err)
	}
	if msg := checkDescriptor(sk.desc); msg != "" {
		return &DamagedError{Offset: off, Where: fmt.Sprintf("security at 0x%x", off), What: msg}
	}
	next, err := e.h.readSK(sk.flink)
	if err != nil {
		return asDamaged(fmt.Errorf("flink of the sk at 0x%x: %w", off, err))
	}
	prev, err := e.h.readSK(sk.blink)
	if err != nil {
		return asDamaged(fmt.Errorf("blink of the sk at 0x%x: %w", off, err))
	}
	if next.blink != off || prev.flink != off {
		return &DamagedError{Offset: off, Where: fmt.Sprintf("security at 0x%x", off),
			What: fmt.Sprintf("sk list broken: flink 0x%x links back to 0x%x, blink 0x%x links on to 0x%x", sk.flink, next.blink, sk.blink, prev.flink)}
	}
	return nil
}

// Verify checks, on the planned bytes and without reading the rest of the
// hive, everything the edits so far touched: every bin they read or
// changed is sound again (walked afresh), every key they changed or created
// passes the checker's rules (node, class, security, values and their data,
// subkey lists and the nodes they list), every sk whose count or links
// changed is linked both ways, every cell they allocated is referenced by
// one of those structures and every cell they freed is free or reused by
// one. A finding is the editor's fault (it changed only structures that
// checked clean): nothing must be written then. The full check stays
// Hive.Check.
func (e *Editor) Verify() *CheckReport {
	h, t := e.h, e.h.touched
	c := newLazyChecker(h)
	offs := func(m map[uint32]bool) []uint32 {
		out := make([]uint32, 0, len(m))
		for o := range m {
			out = append(out, o)
		}
		sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
		return out
	}
	// Bins first, from the planned bytes, not from the editor's index.
	bins := make([]hbin, 0, len(t.bins))
	for _, b := range t.bins {
		bins = append(bins, b)
	}
	sort.Slice(bins, func(i, j int) bool { return bins[i].off < bins[j].off })
	h.mu.Lock()
	for _, b := range bins {
		h.bins.forget(b)
	}
	for _, b := range bins {
		if _, err := h.bins.soundBin(h.src, b); err != nil {
			c.add(Error, "bin-cell", errOffset(err), "", "%v", err)
		}
	}
	h.mu.Unlock()
	c.r.Bins = len(bins)
	keys := make([]uint32, 0, len(t.keys))
	for o := range t.keys {
		keys = append(keys, o)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, off := range keys {
		path := t.keys[off]
		k, err := h.readKey(off, path)
		if err != nil {
			c.add(Error, "key-record", off, path, "%v", err)
			continue
		}
		c.checkOne(off, e.parentOf(k), path)
	}
	for _, off := range offs(t.sks) {
		if err := e.checkSKLinks(off); err != nil {
			c.add(Error, "sk-list", off, "", "%v", err)
		}
	}
	for _, off := range offs(t.allocd) {
		if !c.referenced(off) {
			c.add(Error, "cell-leak", off, "", "cell allocated by the edit is referenced by no structure it changed")
		}
	}
	for _, off := range offs(t.freed) {
		if start, allocated := c.cell(off); start && allocated && !c.referenced(off) {
			c.add(Error, "ref-free", off, "", "cell freed by the edit is still allocated")
		}
	}
	// Findings the touched structures had before the edit are not the
	// edit's: keep them as warnings.
	for i, f := range c.r.Findings {
		if f.Severity == Error && e.carried[f.Code+"|"+f.Path] {
			c.r.Findings[i].Severity = Warning
		}
	}
	return c.r
}
