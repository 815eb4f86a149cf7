package ntfs

import (
	"errors"
	"fmt"
	"sort"
)

// This file handles one non-resident attribute of a file as a whole, when
// its run list is split into extents held by the base record and by
// extension records named in the base record's $ATTRIBUTE_LIST (layout.h:
// every extent is an ATTR_RECORD with its own lowest and highest VCN and a
// mapping-pairs array that starts afresh; the allocated, data and
// initialized sizes are valid only in the extent whose lowest VCN is 0; the
// list is sorted by type, name and lowest VCN).

// nrExtent is one extent: the record holding it and its instance number.
type nrExtent struct {
	rec   uint64
	id    uint16
	start int64 // lowest VCN
}

// nrAttr is a non-resident attribute with every extent mapped.
type nrAttr struct {
	t    *tx
	base uint64
	typ  uint32
	name string
	exts []nrExtent // by lowest VCN
	runs []Run      // the whole run list, VCN 0 first
}

// loadNR maps every extent of the attribute (typ, name) of base. ok is
// false when the file has no such attribute; a resident one is an error.
func (t *tx) loadNR(base *Record, typ uint32, name string) (*nrAttr, bool, error) {
	n := &nrAttr{t: t, base: base.Num, typ: typ, name: name}
	al, err := t.attrList(base)
	if err != nil {
		return nil, false, err
	}
	if al == nil {
		a, ok, err := base.FindAttr(typ, name)
		if err != nil || !ok {
			return nil, false, err
		}
		if !a.NonResident {
			return nil, false, fmt.Errorf("ntfs: MFT record %d: attribute 0x%x is resident", base.Num, typ)
		}
		n.exts = []nrExtent{{rec: base.Num, id: a.ID, start: a.StartVCN()}}
	} else {
		for _, e := range al {
			if e.typ == typ && e.name == name {
				n.exts = append(n.exts, nrExtent{rec: RefNum(e.ref), id: e.id, start: e.startVCN})
			}
		}
		if len(n.exts) == 0 {
			return nil, false, nil
		}
	}
	sort.SliceStable(n.exts, func(i, j int) bool { return n.exts[i].start < n.exts[j].start })
	if len(n.exts) > 1<<16 {
		return nil, false, fmt.Errorf("ntfs: MFT record %d: attribute 0x%x has %d extents", base.Num, typ, len(n.exts))
	}
	next := int64(0)
	for i, e := range n.exts {
		r, a, err := n.extent(i)
		if err != nil {
			return nil, false, err
		}
		if !a.NonResident {
			return nil, false, fmt.Errorf("ntfs: MFT record %d: attribute 0x%x extent in record %d is resident", base.Num, typ, r.Num)
		}
		if a.StartVCN() != e.start || a.StartVCN() != next {
			return nil, false, fmt.Errorf("ntfs: MFT record %d: attribute 0x%x extent in record %d starts at VCN %d, want %d", base.Num, typ, r.Num, a.StartVCN(), next)
		}
		runs, err := a.Runs()
		if err != nil {
			return nil, false, fmt.Errorf("ntfs: MFT record %d: attribute 0x%x extent in record %d: %w", base.Num, typ, r.Num, err)
		}
		if c := runsClusters(runs); a.LastVCN() != a.StartVCN()+c-1 {
			return nil, false, fmt.Errorf("ntfs: MFT record %d: attribute 0x%x extent in record %d maps VCNs %d-%d with %d clusters of runs", base.Num, typ, r.Num, a.StartVCN(), a.LastVCN(), c)
		}
		n.runs = append(n.runs, runs...)
		next = a.LastVCN() + 1
	}
	_, first, err := n.extent(0)
	if err != nil {
		return nil, false, err
	}
	if first.AllocSize() > runsClusters(n.runs)*t.g.cluster || first.DataSize() > first.AllocSize() || first.InitSize() > first.DataSize() {
		return nil, false, fmt.Errorf("ntfs: MFT record %d: attribute 0x%x sizes (allocated %d, data %d, initialized %d) do not fit its %d clusters", base.Num, typ, first.AllocSize(), first.DataSize(), first.InitSize(), runsClusters(n.runs))
	}
	return n, true, nil
}

// extent returns the record and attribute of extent i.
func (n *nrAttr) extent(i int) (*Record, Attr, error) {
	e := n.exts[i]
	r, err := n.t.record(e.rec)
	if err != nil {
		return nil, Attr{}, err
	}
	if r.Num != n.base && (RefNum(r.BaseRef()) != n.base || !r.InUse()) {
		return nil, Attr{}, fmt.Errorf("ntfs: MFT record %d lists attribute 0x%x in record %d, which is not one of its extension records", n.base, n.typ, r.Num)
	}
	as, err := r.Attrs()
	if err != nil {
		return nil, Attr{}, err
	}
	for _, a := range as {
		if a.Type == n.typ && a.Name == n.name && a.ID == e.id {
			return r, a, nil
		}
	}
	return nil, Attr{}, fmt.Errorf("ntfs: MFT record %d: attribute 0x%x (instance %d) listed in record %d is not there", n.base, n.typ, e.id, r.Num)
}

// first is the extent holding the sizes (lowest VCN 0).
func (n *nrAttr) first() (*Record, Attr, error) { return n.extent(0) }

// setSizes stores the sizes in the first extent.
func (n *nrAttr) setSizes(alloc, data, init int64) error {
	r, a, err := n.first()
	if err != nil {
		return err
	}
	r.SetSizes(a, alloc, data, init)
	n.t.dirty(r)
	return nil
}

// setRuns replaces the whole run list. Extents that map only VCNs whose
// clusters do not change stay as they are; from the first extent that
// changes on, the runs are laid out again: in the existing extents as far
// as their records have room, then in new extension records. Extents no
// longer needed are removed (an emptied extension record is freed). The
// base record's $ATTRIBUTE_LIST follows; a file without one gets one.
func (n *nrAttr) setRuns(runs []Run) error {
	base, err := n.t.record(n.base)
	if err != nil {
		return err
	}
	_, hasAL, err := base.FindAttr(AttrAttributeList, "")
	if err != nil {
		return err
	}
	// Extents before the first changed VCN stay; from extent k on the runs
	// are laid out again.
	same := sameRunsPrefix(n.runs, runs)
	k := 0
	for k+1 < len(n.exts) && n.exts[k+1].start <= same {
		k++
	}
	from := n.exts[k].start
	rest, err := runsFrom(runs, from)
	if err != nil {
		return err
	}
	exts := append([]nrExtent(nil), n.exts[:k]...)
	i := k
	for len(rest) > 0 || i == 0 {
		if i < len(n.exts) {
			r, a, err := n.extent(i)
			if err != nil {
				return err
			}
			ro := int(le16(r.Data[a.Off+0x20:]))
			room := a.Len - ro + r.Free()
			if !hasAL && r.Num == n.base {
				// Keep room for the $ATTRIBUTE_LIST the overflow will need.
				if all, err := EncodeRunList(rest); err != nil || align8(len(all)) > room {
					as, _ := r.Attrs()
					room -= align8(0x18 + 0x20*(len(as)+4))
				}
			}
			take := fitRuns(rest, room)
			if take == 0 && len(rest) > 0 {
				if i == 0 {
					return fmt.Errorf("ntfs: MFT record %d: attribute 0x%x: the first extent has no room: %w", n.base, n.typ, ErrNeedsAttributeList)
				}
				if err := n.dropExtent(n.exts[i]); err != nil {
					return err
				}
				i++
				continue
			}
			putLE64(r.Data[a.Off+0x10:], uint64(from))
			if err := r.SetRuns(a, rest[:take]); err != nil {
				return fmt.Errorf("ntfs: MFT record %d: attribute 0x%x: %w", n.base, n.typ, err)
			}
			n.t.dirty(r)
			e := n.exts[i]
			e.start = from
			exts = append(exts, e)
			from += runsClusters(rest[:take])
			rest = rest[take:]
			i++
			continue
		}
		r, err := n.t.newExtensionRecord(base)
		if err != nil {
			return err
		}
		room := r.Free() - align8(0x40+2*len([]rune(n.name)))
		take := fitRuns(rest, room)
		if take == 0 {
			return fmt.Errorf("ntfs: MFT record %d: attribute 0x%x: a run does not fit in an empty record", n.base, n.typ)
		}
		off, err := r.InsertNonResident(n.typ, n.name, rest[:take], 0, 0, 0)
		if err != nil {
			return fmt.Errorf("ntfs: MFT record %d: attribute 0x%x in new extension record %d: %w", n.base, n.typ, r.Num, err)
		}
		putLE64(r.Data[off+0x10:], uint64(from))
		putLE64(r.Data[off+0x18:], uint64(from+runsClusters(rest[:take])-1))
		exts = append(exts, nrExtent{rec: r.Num, id: le16(r.Data[off+0xE:]), start: from})
		from += runsClusters(rest[:take])
		rest = rest[take:]
		i++
	}
	for ; i < len(n.exts); i++ {
		if err := n.dropExtent(n.exts[i]); err != nil {
			return err
		}
	}
	old := n.exts
	n.exts, n.runs = exts, runs
	if !hasAL && len(exts) == 1 {
		return nil
	}
	if len(old) == len(exts) {
		changed := false
		for j := range old {
			changed = changed || old[j] != exts[j]
		}
		if !changed {
			return nil
		}
	}
	return n.t.replaceListEntries(n.base, n.typ, n.name, exts)
}

// fitRuns is how many of the runs fit in room bytes of mapping pairs.
func fitRuns(runs []Run, room int) int {
	take := 0
	for take < len(runs) {
		rl, err := EncodeRunList(runs[:take+1])
		if err != nil || align8(len(rl)) > room {
			break
		}
		take++
	}
	return take
}

// dropExtent removes an extent; an extension record left empty is freed.
func (n *nrAttr) dropExtent(e nrExtent) error {
	if e.start == 0 {
		return fmt.Errorf("ntfs: MFT record %d: attribute 0x%x: the first extent would be removed", n.base, n.typ)
	}
	r, err := n.t.record(e.rec)
	if err != nil {
		return err
	}
	as, err := r.Attrs()
	if err != nil {
		return err
	}
	for _, a := range as {
		if a.Type == n.typ && a.Name == n.name && a.ID == e.id {
			if err := r.RemoveAttr(a.Off); err != nil {
				return err
			}
			break
		}
	}
	n.t.dirty(r)
	if r.Num != n.base {
		if left, err := r.Attrs(); err == nil && len(left) == 0 {
			return n.t.freeExtensionRecord(r)
		}
	}
	return nil
}

// sameRunsPrefix is the first VCN at which the two run lists map
// differently.
func sameRunsPrefix(a, b []Run) int64 {
	vcn := int64(0)
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			if a[i].LCN == b[i].LCN && a[i].Sparse == b[i].Sparse {
				return vcn + min(a[i].Length, b[i].Length)
			}
			return vcn
		}
		vcn += a[i].Length
	}
	return vcn
}

// runsFrom returns the runs mapping VCNs from vcn on (the run containing
// vcn is cut).
func runsFrom(runs []Run, vcn int64) ([]Run, error) {
	at := int64(0)
	for i, r := range runs {
		if vcn < at+r.Length {
			out := append([]Run(nil), runs[i:]...)
			if cut := vcn - at; cut > 0 {
				out[0].Length -= cut
				if !out[0].Sparse {
					out[0].LCN += cut
				}
			}
			return out, nil
		}
		at += r.Length
	}
	if vcn == at {
		return nil, nil
	}
	return nil, fmt.Errorf("ntfs: VCN %d beyond the %d clusters of the run list", vcn, at)
}

// replaceListEntries sets the $ATTRIBUTE_LIST entries of one attribute to
// exts, creating the list when the base record has none.
func (t *tx) replaceListEntries(baseNum uint64, typ uint32, name string, exts []nrExtent) error {
	base, err := t.record(baseNum)
	if err != nil {
		return err
	}
	es, err := t.listOrNew(base)
	if err != nil {
		return err
	}
	var out []alEntry
	for _, e := range es {
		if e.typ == typ && e.name == name {
			continue
		}
		out = append(out, e)
	}
	for _, x := range exts {
		r, err := t.record(x.rec)
		if err != nil {
			return err
		}
		out = append(out, alEntry{typ: typ, name: name, startVCN: x.start, ref: r.Ref(), id: x.id})
	}
	return t.writeAttrList(base, out)
}

// writeAttrList stores a sorted list in the base record's $ATTRIBUTE_LIST,
// adding the attribute (resident) when there is none, and growing a
// non-resident one by clusters when it needs more room.
func (t *tx) writeAttrList(base *Record, out []alEntry) error {
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].typ != out[j].typ {
			return out[i].typ < out[j].typ
		}
		if out[i].name != out[j].name {
			return out[i].name < out[j].name
		}
		return out[i].startVCN < out[j].startVCN
	})
	b := encodeAttrList(out)
	t.dirty(base)
	a, ok, err := base.FindAttr(AttrAttributeList, "")
	if err != nil {
		return err
	}
	if !ok {
		// The list's own entry is not listed (layout.h: $ATTRIBUTE_LIST
		// never names itself).
		if _, err := base.InsertResident(AttrAttributeList, "", b, false); err != nil {
			return fmt.Errorf("ntfs: MFT record %d: adding an $ATTRIBUTE_LIST: %w", base.Num, err)
		}
		return nil
	}
	if !a.NonResident {
		if err := base.SetResidentValue(a, b); err == nil {
			return nil
		} else if !errors.Is(err, ErrNeedsAttributeList) {
			return fmt.Errorf("ntfs: MFT record %d: $ATTRIBUTE_LIST: %w", base.Num, err)
		}
		// Make it non-resident: the record has no room for it.
		cl := t.g.cluster
		nc := (int64(len(b)) + cl - 1) / cl
		got, err := t.allocClusters(nc, 0)
		if err != nil {
			return fmt.Errorf("ntfs: MFT record %d: $ATTRIBUTE_LIST: %w", base.Num, err)
		}
		buf := make([]byte, nc*cl)
		copy(buf, b)
		if err := stageRuns(t.o, t.g, got, 0, buf); err != nil {
			return err
		}
		if err := base.RemoveAttr(a.Off); err != nil {
			return err
		}
		if _, err := base.InsertNonResident(AttrAttributeList, "", got, nc*cl, int64(len(b)), int64(len(b))); err != nil {
			return fmt.Errorf("ntfs: MFT record %d: non-resident $ATTRIBUTE_LIST: %w", base.Num, err)
		}
		return nil
	}
	runs, err := a.Runs()
	if err != nil {
		return err
	}
	if int64(len(b)) > a.AllocSize() {
		cl := t.g.cluster
		need := (int64(len(b))+cl-1)/cl - runsClusters(runs)
		near := int64(0)
		if k := len(runs); k > 0 {
			near = runs[k-1].LCN + runs[k-1].Length
		}
		got, err := t.allocClusters(need, near)
		if err != nil {
			return fmt.Errorf("ntfs: MFT record %d: growing $ATTRIBUTE_LIST: %w", base.Num, err)
		}
		for _, r := range got {
			runs = appendRun(runs, r.LCN, r.Length)
		}
		if err := base.SetRuns(a, runs); err != nil {
			return fmt.Errorf("ntfs: MFT record %d: growing $ATTRIBUTE_LIST: %w", base.Num, err)
		}
		if a, _, err = base.FindAttr(AttrAttributeList, ""); err != nil {
			return err
		}
		base.SetSizes(a, runsClusters(runs)*cl, a.DataSize(), a.InitSize())
		a, _, _ = base.FindAttr(AttrAttributeList, "")
	}
	buf := b
	if old := a.DataSize(); old > int64(len(b)) {
		buf = append(append([]byte(nil), b...), make([]byte, old-int64(len(b)))...)
	}
	if err := stageRuns(t.o, t.g, runs, 0, buf); err != nil {
		return fmt.Errorf("ntfs: MFT record %d: writing $ATTRIBUTE_LIST: %w", base.Num, err)
	}
	base.SetSizes(a, a.AllocSize(), int64(len(b)), int64(len(b)))
	return nil
}

// fileRecords returns the base record and every extension record its
// $ATTRIBUTE_LIST names, each once, in list order.
func (t *tx) fileRecords(base *Record) ([]*Record, error) {
	out := []*Record{base}
	al, err := t.attrList(base)
	if err != nil {
		return nil, err
	}
	seen := map[uint64]bool{base.Num: true}
	for _, e := range al {
		n := RefNum(e.ref)
		if seen[n] {
			continue
		}
		seen[n] = true
		r, err := t.record(n)
		if err != nil {
			return nil, err
		}
		if RefNum(r.BaseRef()) != base.Num || !r.InUse() {
			return nil, fmt.Errorf("ntfs: MFT record %d lists record %d, which is not one of its extension records", base.Num, n)
		}
		out = append(out, r)
	}
	return out, nil
}

// read returns the attribute's data (bytes past the initialized size read
// as zero), refusing more than limit bytes.
func (n *nrAttr) read(limit int64) ([]byte, error) {
	_, a, err := n.first()
	if err != nil {
		return nil, err
	}
	size := a.DataSize()
	if size < 0 || size > limit || size > n.t.g.size {
		return nil, fmt.Errorf("attribute 0x%x: data size %d out of range", n.typ, size)
	}
	buf := make([]byte, size)
	if init := min(a.InitSize(), size); init > 0 {
		if err := readRuns(n.t.o, n.t.g, n.runs, 0, buf[:init]); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// makeRoom moves attributes of a full base record into new extension
// records until need bytes are free, the largest first, creating the
// $ATTRIBUTE_LIST when the file has none (Windows makes room the same
// way). $STANDARD_INFORMATION, $ATTRIBUTE_LIST and $FILE_NAME stay in the
// base record, as do a directory's $I30 index attributes (the index code
// holds their places).
func (t *tx) makeRoom(base *Record, need int) error {
	for tries := 0; base.Free() < need; tries++ {
		as, err := base.Attrs()
		if err != nil {
			return err
		}
		var pick *Attr
		for i, a := range as {
			switch {
			case a.Type == AttrStandardInformation, a.Type == AttrAttributeList, a.Type == AttrFileName:
				continue
			case a.Name == i30 && (a.Type == AttrIndexRoot || a.Type == AttrIndexAllocation || a.Type == AttrBitmap):
				continue
			}
			if pick == nil || a.Len > pick.Len {
				pick = &as[i]
			}
		}
		// Moving out an attribute smaller than a list entry gains nothing.
		if pick == nil || pick.Len <= 0x20 || tries >= 8 {
			return fmt.Errorf("ntfs: MFT record %d: %d bytes needed, %d free, and nothing left to move out: %w", base.Num, need, base.Free(), ErrNeedsAttributeList)
		}
		if err := t.moveOut(base, *pick); err != nil {
			return err
		}
	}
	return nil
}

// moveOut moves attribute a of base, as it is, into a new extension
// record with a new instance number, and lists it there.
func (t *tx) moveOut(base *Record, a Attr) error {
	es, err := t.listOrNew(base)
	if err != nil {
		return err
	}
	raw := append([]byte(nil), base.Data[a.Off:a.Off+a.Len]...)
	r, err := t.newExtensionRecord(base)
	if err != nil {
		return err
	}
	off, err := r.insertSpace(a.Type, a.Name, len(raw))
	if err != nil {
		return fmt.Errorf("ntfs: MFT record %d: moving attribute 0x%x to record %d: %w", base.Num, a.Type, r.Num, err)
	}
	copy(r.Data[off:], raw)
	id := r.takeAttrID()
	putLE16(r.Data[off+0xE:], id)
	t.dirty(r)
	if err := base.RemoveAttr(a.Off); err != nil {
		return err
	}
	t.dirty(base)
	for i, e := range es {
		if RefNum(e.ref) == base.Num && e.id == a.ID && e.typ == a.Type {
			es[i].ref, es[i].id = r.Ref(), id
		}
	}
	return t.writeAttrList(base, es)
}

// listOrNew returns the base record's $ATTRIBUTE_LIST entries, or, for a
// file without one, the entries a new list needs: every attribute of the
// base record (the list never names itself).
func (t *tx) listOrNew(base *Record) ([]alEntry, error) {
	es, err := t.attrList(base)
	if err != nil || es != nil {
		return es, err
	}
	as, err := base.Attrs()
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		e := alEntry{typ: a.Type, name: a.Name, ref: base.Ref(), id: a.ID}
		if a.NonResident {
			e.startVCN = a.StartVCN()
		}
		es = append(es, e)
	}
	return es, nil
}
