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
// only when it is free in $Bitmap AND claimed by none of these, and before
// anything is staged the claims must agree with $Bitmap and with each other.
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

// mftRecBoot and mftRecBadClus are the records of the boot sectors
// ($Boot) and of the bad cluster list ($BadClus, whose $Bad stream maps
// every bad cluster).
const (
	mftRecLogFile = 2
	mftRecBoot    = 7
	mftRecBadClus = 8
)

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
	return nil
}

// soundClusters is the preflight of every change to cluster ownership and
// of every flush: it refuses when the claims conflict, or when $Bitmap
// marks free a cluster that a record read by this operation uses.
func (t *tx) soundClusters() error {
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
// returns the first. It reads only the bitmap bytes it needs unless the
// whole bitmap is already loaded.
func (t *tx) freeIn(lcn, n int64) (int64, int64, error) {
	var bits []byte
	base := lcn / 8
	if t.cbm != nil {
		bits = t.cbm.bits
		base = 0
	} else {
		rec, err := t.record(mftRecBitmap)
		if err != nil {
			return 0, 0, err
		}
		a, ok, err := rec.FindAttr(AttrData, "")
		if err != nil || !ok || !a.NonResident {
			return 0, 0, fmt.Errorf("no non-resident $DATA (%v)", err)
		}
		runs, err := a.Runs()
		if err != nil {
			return 0, 0, err
		}
		hi := (lcn + n + 7) / 8
		if hi > a.DataSize() {
			return 0, 0, fmt.Errorf("$Bitmap holds %d bytes, cluster %d needs %d", a.DataSize(), lcn+n-1, hi)
		}
		bits = make([]byte, hi-base)
		if base < a.InitSize() {
			if err := readRuns(t.o, t.g, runs, base, bits[:min(int64(len(bits)), a.InitSize()-base)]); err != nil {
				return 0, 0, err
			}
		}
	}
	var free, first int64 = 0, -1
	for l := lcn; l < lcn+n; l++ {
		i := l/8 - base
		if i >= int64(len(bits)) || bits[i]&(1<<(l%8)) == 0 {
			if first < 0 {
				first = l
			}
			free++
		}
	}
	return free, first, nil
}
