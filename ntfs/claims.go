package ntfs

import (
	"fmt"
	"sort"
	"strings"
)

// This file keeps, for one operation, the set of clusters claimed by every
// MFT record the operation has read: the files and directories it touches,
// the records on the paths it resolved, and the metadata files it needs
// before allocating ($MFT, $MFTMirr, $LogFile, $Bitmap, $BadClus, $UpCase,
// the boot sectors). $Bitmap alone is not trusted: a cluster is handed out
// only when it is free in $Bitmap AND claimed by none of these, nor by any
// in-use record of $MFT (scanned once, before the first allocation), and
// before anything is staged the claims must agree with $Bitmap and with
// each other.
// A damaged $Bitmap (a live cluster marked free, or all zeros) or a
// cross-linked cluster is then a refusal, never a write over live data.

// claim is one run of clusters and who uses it.
type claim struct {
	lcn, n   int64
	owner    claimOwner
	verified bool // checked against $Bitmap
}

// claimOwner identifies an attribute (extent) of a record; two runs of the
// same owner may not overlap either, but only different owners make a
// cross-link worth naming both.
type claimOwner struct {
	rec  uint64
	typ  uint32
	name string
}

// ownerPlan owns the clusters this operation allocates.
var ownerPlan = claimOwner{rec: ^uint64(0)}

func (o claimOwner) String() string {
	switch {
	case o == ownerPlan:
		return "the clusters this change allocates"
	case o.rec == mftRecBoot && o.typ == 0:
		return "the boot sectors"
	}
	s := fmt.Sprintf("MFT record %d", o.rec)
	if n := metadataName(o.rec); n != "" {
		s = fmt.Sprintf("%s (MFT record %d)", n, o.rec)
	}
	if o.name != "" {
		return fmt.Sprintf("%s attribute 0x%x %q", s, o.typ, o.name)
	}
	return fmt.Sprintf("%s attribute 0x%x", s, o.typ)
}

// metadataName names the metadata files of the first records.
func metadataName(rec uint64) string {
	names := []string{"$MFT", "$MFTMirr", "$LogFile", "$Volume", "$AttrDef", "root directory", "$Bitmap", "$Boot", "$BadClus", "$Secure", "$UpCase", "$Extend"}
	if rec < uint64(len(names)) {
		return names[rec]
	}
	return ""
}

// claimSet is the claimed clusters of one operation, sorted by LCN.
type claimSet struct {
	list     []claim
	maxLen   int64
	problems []Refusal // cross-links, undecodable or out-of-volume run lists
	seen     map[uint64]bool
	// scanned are the runs of every in-use record of $MFT, gathered once
	// before the first allocation (scanMFT): they are avoided, but damage
	// among them is not this operation's to refuse.
	scanned []span
	// busy is the union of list and scanned, merged and sorted, for the
	// allocator's lookups; nil when it must be rebuilt.
	busy []span
}

// span is a run of clusters [lcn, end).
type span struct{ lcn, end int64 }

// taken reports whether cluster l is claimed by anyone.
func (c *claimSet) taken(l int64) bool {
	if c.busy == nil {
		all := make([]span, 0, len(c.list)+len(c.scanned))
		for _, x := range c.list {
			all = append(all, span{x.lcn, x.lcn + x.n})
		}
		all = append(all, c.scanned...)
		sort.Slice(all, func(i, j int) bool { return all[i].lcn < all[j].lcn })
		c.busy = []span{}
		for _, s := range all {
			if k := len(c.busy); k > 0 && s.lcn <= c.busy[k-1].end {
				c.busy[k-1].end = max(c.busy[k-1].end, s.end)
				continue
			}
			c.busy = append(c.busy, s)
		}
	}
	i := sort.Search(len(c.busy), func(i int) bool { return c.busy[i].end > l })
	return i < len(c.busy) && c.busy[i].lcn <= l
}

// add records a run for owner; overlaps with another owner's run, and runs
// outside the volume, are recorded as problems.
func (c *claimSet) add(o claimOwner, lcn, n, total int64) {
	if n <= 0 {
		return
	}
	if lcn < 0 || lcn+n > total || lcn+n < lcn {
		c.problems = append(c.problems, Refusal{ID: RefusalClusterConflict, Structure: o.String(),
			Reason: fmt.Sprintf("%s uses clusters %d-%d, outside the volume's %d clusters", o, lcn, lcn+n-1, total), Advice: adviceChkdsk})
		return
	}
	if x := c.overlap(lcn, lcn+n); x != nil && x.owner != o {
		at := max(lcn, x.lcn)
		c.problems = append(c.problems, Refusal{ID: RefusalClusterConflict, Structure: o.String() + " and " + x.owner.String(),
			Reason: fmt.Sprintf("cluster %d is used by both %s and %s (cross-linked)", at, x.owner, o), Advice: adviceChkdsk})
	}
	i := sort.Search(len(c.list), func(i int) bool { return c.list[i].lcn > lcn })
	c.list = append(c.list, claim{})
	copy(c.list[i+1:], c.list[i:])
	c.list[i] = claim{lcn: lcn, n: n, owner: o, verified: o == ownerPlan}
	c.maxLen = max(c.maxLen, n)
	c.busy = nil
}

// overlap returns a claim overlapping [lo, hi), or nil.
func (c *claimSet) overlap(lo, hi int64) *claim {
	i := sort.Search(len(c.list), func(i int) bool { return c.list[i].lcn >= hi })
	for i--; i >= 0 && c.list[i].lcn+c.maxLen > lo; i-- {
		if c.list[i].lcn+c.list[i].n > lo {
			return &c.list[i]
		}
	}
	return nil
}

// claimRecord adds the runs of every non-resident attribute of an in-use
// record read from the volume.
func (t *tx) claimRecord(r *Record) {
	if t.claims.seen == nil {
		t.claims.seen = map[uint64]bool{}
	}
	if t.claims.seen[r.Num] || !r.InUse() {
		return
	}
	t.claims.seen[r.Num] = true
	as, err := r.Attrs()
	if err != nil {
		return // ParseRecord accepted it: cannot happen
	}
	total := int64(t.g.boot.TotalClusters())
	for _, a := range as {
		if !a.NonResident {
			continue
		}
		o := claimOwner{rec: r.Num, typ: a.Type, name: a.Name}
		runs, err := a.Runs()
		if err != nil {
			t.claims.problems = append(t.claims.problems, Refusal{ID: RefusalClusterConflict, Structure: o.String(),
				Reason: fmt.Sprintf("the run list of %s cannot be decoded (%v): which clusters it uses is unknown", o, err), Advice: adviceChkdsk})
			continue
		}
		for _, run := range runs {
			if !run.Sparse {
				t.claims.add(o, run.LCN, run.Length, total)
			}
		}
	}
}

// claimMetadata reads the metadata records whose clusters must never be
// handed out, and claims the boot sector and its backup directly (they
// hold whatever $Boot says or not).
func (t *tx) claimMetadata() error {
	if t.metaClaimed {
		return nil
	}
	for _, n := range []uint64{mftRecMFT, mftRecMFTMirr, mftRecLogFile, mftRecBitmap, mftRecBadClus, mftRecUpCase} {
		if _, err := t.record(n); err != nil {
			return refused(RefusalClusterConflict, claimOwner{rec: n}.String(),
				fmt.Sprintf("%s cannot be read (%v): which clusters it uses is unknown", metadataName(n), err), adviceChkdsk)
		}
	}
	total := int64(t.g.boot.TotalClusters())
	boot := claimOwner{rec: mftRecBoot}
	// The boot area is the first 8 KiB ($Boot's usual size); the backup
	// boot sector is the sector after the last one the boot sector counts.
	t.claims.add(boot, 0, max(1, (8192+t.g.cluster-1)/t.g.cluster), total)
	if b := t.g.boot.VolumeSize() / t.g.cluster; b < total {
		t.claims.add(boot, b, 1, total)
	}
	t.metaClaimed = true
	return t.scanMFT()
}

// scanMFT gathers the clusters of every in-use record of $MFT, so that the
// allocator also avoids files this operation never opened when $Bitmap
// wrongly calls their clusters free. It reads $MFT once, sequentially, in
// 1 MiB pieces; records that do not parse are skipped (their damage is
// reported by Check, not refused here: the allocation does not touch them).
func (t *tx) scanMFT() error {
	g := t.g
	total := int64(g.boot.TotalClusters())
	const chunk = 1 << 20
	per := max(1, chunk/g.recSize)
	buf := make([]byte, per*g.recSize)
	var out []span
	for first := uint64(0); first < g.records(); first += uint64(per) {
		n := min(uint64(per), g.records()-first)
		b := buf[:int64(n)*g.recSize]
		if err := readRuns(t.o, g, g.mftRuns, int64(first)*g.recSize, b); err != nil {
			return refused(RefusalClusterConflict, "$MFT (MFT record 0)", fmt.Sprintf("$MFT cannot be read at record %d: %v", first, err), adviceChkdsk)
		}
		for i := uint64(0); i < n; i++ {
			rb := b[int64(i)*g.recSize : int64(i+1)*g.recSize]
			if string(rb[:4]) != "FILE" || le16(rb[recFlags:])&RecordInUse == 0 || applyFixups(rb) != nil {
				continue
			}
			r, err := ParseRecord(first+i, rb)
			if err != nil {
				continue
			}
			as, _ := r.Attrs()
			for _, a := range as {
				if !a.NonResident {
					continue
				}
				runs, err := a.Runs()
				if err != nil {
					continue
				}
				for _, run := range runs {
					if !run.Sparse && run.LCN >= 0 && run.LCN < total {
						out = append(out, span{run.LCN, min(run.LCN+run.Length, total)})
					}
				}
			}
		}
	}
	t.claims.scanned = out
	t.claims.busy = nil
	return nil
}

// soundClusters is the preflight of every change to cluster ownership and
// of every flush: it refuses when the claims conflict, or when $Bitmap
// marks free a cluster that a record read by this operation uses.
func (t *tx) soundClusters() error {
	if len(t.claims.problems) > 0 {
		return &RefusedError{Refusals: append([]Refusal(nil), t.claims.problems...)}
	}
	// Read $Bitmap's record first: reading it adds its own claims, which
	// must not happen while the loop below walks the list.
	if _, err := t.record(mftRecBitmap); err != nil {
		return refused(RefusalBitmap, "$Bitmap (MFT record 6)", fmt.Sprintf("$Bitmap cannot be read: %v", err), adviceChkdsk)
	}
	if len(t.claims.problems) > 0 {
		return &RefusedError{Refusals: append([]Refusal(nil), t.claims.problems...)}
	}
	var bad []string
	first := -1
	for i := range t.claims.list {
		cl := &t.claims.list[i]
		if cl.verified {
			continue
		}
		free, at, err := t.freeIn(cl.lcn, cl.n)
		if err != nil {
			return refused(RefusalBitmap, "$Bitmap (MFT record 6)", fmt.Sprintf("$Bitmap cannot be read: %v", err), adviceChkdsk)
		}
		if free > 0 {
			if first < 0 {
				first = i
			}
			if len(bad) < 5 {
				bad = append(bad, fmt.Sprintf("%d of the clusters %d-%d of %s (first %d)", free, cl.lcn, cl.lcn+cl.n-1, cl.owner, at))
			}
			continue
		}
		cl.verified = true
	}
	if first >= 0 {
		return refused(RefusalBitmap, "$Bitmap (MFT record 6)",
			"$Bitmap marks as free clusters that are in use: "+strings.Join(bad, "; ")+"; allocating from it could overwrite live data", adviceChkdsk)
	}
	return nil
}

// freeIn counts the clusters of [lcn, lcn+n) that $Bitmap marks free and
// returns the first. Unless the whole bitmap is already loaded it reads
// only the 4 KiB pages of $Bitmap it needs, once per operation.
func (t *tx) freeIn(lcn, n int64) (int64, int64, error) {
	const page = 4096
	var free, first int64 = 0, -1
	var bits []byte
	var base int64 = -1
	for l := lcn; l < lcn+n; l++ {
		byteAt := l / 8
		var b byte
		if t.cbm != nil {
			if byteAt >= int64(len(t.cbm.bits)) {
				return 0, 0, fmt.Errorf("$Bitmap holds %d bytes, cluster %d is beyond", len(t.cbm.bits), l)
			}
			b = t.cbm.bits[byteAt]
		} else {
			if base < 0 || byteAt < base || byteAt >= base+int64(len(bits)) {
				var err error
				base = byteAt / page * page
				if bits, err = t.bitmapPage(base / page); err != nil {
					return 0, 0, err
				}
				if byteAt >= base+int64(len(bits)) {
					return 0, 0, fmt.Errorf("$Bitmap has no byte for cluster %d", l)
				}
			}
			b = bits[byteAt-base]
		}
		if b&(1<<(l%8)) == 0 {
			if first < 0 {
				first = l
			}
			free++
		}
	}
	return free, first, nil
}

// bitmapPage returns page i (4 KiB, shorter at the end) of $Bitmap's data.
func (t *tx) bitmapPage(i int64) ([]byte, error) {
	const page = 4096
	if b, ok := t.bmPages[i]; ok {
		return b, nil
	}
	rec, err := t.record(mftRecBitmap)
	if err != nil {
		return nil, err
	}
	a, ok, err := rec.FindAttr(AttrData, "")
	if err != nil || !ok || !a.NonResident {
		return nil, fmt.Errorf("no non-resident $DATA (%v)", err)
	}
	runs, err := a.Runs()
	if err != nil {
		return nil, err
	}
	lo := i * page
	if lo >= a.DataSize() {
		return nil, fmt.Errorf("page %d is past its %d bytes", i, a.DataSize())
	}
	b := make([]byte, min(page, a.DataSize()-lo))
	if lo < a.InitSize() {
		if err := readRuns(t.o, t.g, runs, lo, b[:min(int64(len(b)), a.InitSize()-lo)]); err != nil {
			return nil, err
		}
	}
	if t.bmPages == nil {
		t.bmPages = map[int64][]byte{}
	}
	t.bmPages[i] = b
	return b, nil
}
