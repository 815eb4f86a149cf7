package ntfs

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// These tests damage copies of testimages/data/broken-volume.img (the
// Windows volume that mkntfs and ntfs-3g built) the way damaged disks are
// damaged, and check that the writer refuses before it plans any write,
// with a typed refusal naming the structure and advising chkdsk, and that
// the image stays byte-identical.

// sdCountingWriter counts the writes that reach the device.
type sdCountingWriter struct {
	f *os.File
	n int
}

func (c *sdCountingWriter) WriteAt(p []byte, off int64) (int, error) {
	c.n++
	return c.f.WriteAt(p, off)
}

// sdImage is a writable copy of the Windows test volume.
type sdImage struct {
	path string
	f    *os.File
	size int64
	g    *geometry
}

func sdOpen(t *testing.T) *sdImage {
	t.Helper()
	return sdOpenPath(t, testutil.TestImage(t, "broken-volume.img"))
}

// sdOpenPath opens the volume image at p (a copy the test may damage).
func sdOpenPath(t *testing.T, p string) *sdImage {
	t.Helper()
	f := wtFile(t, p)
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	g, err := loadGeometry(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return &sdImage{path: p, f: f, size: st.Size(), g: g}
}

// patchAt writes b at logical offset off of an attribute with runs.
func (im *sdImage) patchAt(t *testing.T, runs []Run, off int64, b []byte) {
	t.Helper()
	sp, err := im.g.spans(runs, off, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	pos := int64(0)
	for _, s := range sp {
		if _, err := im.f.WriteAt(b[pos:pos+s.n], s.off); err != nil {
			t.Fatal(err)
		}
		pos += s.n
	}
}

// editRecord reads record num from $MFT, lets edit change it (fixups
// applied), protects it again and writes it back to $MFT and, when
// mirrored is set, to $MFTMirr too.
func (im *sdImage) editRecord(t *testing.T, num uint64, mirrored bool, edit func(b []byte)) {
	t.Helper()
	b := make([]byte, im.g.recSize)
	if err := readRuns(im.f, im.g, im.g.mftRuns, int64(num)*im.g.recSize, b); err != nil {
		t.Fatal(err)
	}
	if err := applyFixups(b); err != nil {
		t.Fatal(err)
	}
	edit(b)
	if err := protectFixups(b); err != nil {
		t.Fatal(err)
	}
	im.patchAt(t, im.g.mftRuns, int64(num)*im.g.recSize, b)
	if mirrored {
		im.patchAt(t, im.g.mirrRuns, int64(num)*im.g.recSize, b)
	}
}

// record reads a record of the (possibly already damaged) image.
func (im *sdImage) record(t *testing.T, num uint64) *Record {
	t.Helper()
	r, err := im.g.readRecord(im.f, num)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fileRuns resolves path and returns its record and unnamed $DATA runs.
func (im *sdImage) fileRuns(t *testing.T, path string) (*Record, []Run) {
	t.Helper()
	w, err := newWriter(im.f, nil, im.size, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := wtResolve(t, w.begin(), path)
	a, ok, err := rec.FindAttr(AttrData, "")
	if err != nil || !ok || !a.NonResident {
		t.Fatalf("%s: no non-resident $DATA (%v)", path, err)
	}
	runs, err := a.Runs()
	if err != nil {
		t.Fatal(err)
	}
	return rec, runs
}

// bitmapRuns returns the runs of $Bitmap's $DATA and its size.
func (im *sdImage) bitmapRuns(t *testing.T) ([]Run, int64) {
	t.Helper()
	a, ok, err := im.record(t, mftRecBitmap).FindAttr(AttrData, "")
	if err != nil || !ok {
		t.Fatalf("$Bitmap: %v", err)
	}
	runs, err := a.Runs()
	if err != nil {
		t.Fatal(err)
	}
	return runs, a.DataSize()
}

// clearBit marks cluster lcn free in $Bitmap on disk.
func (im *sdImage) clearBit(t *testing.T, lcn int64) {
	t.Helper()
	runs, _ := im.bitmapRuns(t)
	b := make([]byte, 1)
	if err := readRuns(im.f, im.g, runs, lcn/8, b); err != nil {
		t.Fatal(err)
	}
	if b[0]&(1<<(lcn%8)) == 0 {
		t.Fatalf("cluster %d is already free in $Bitmap", lcn)
	}
	b[0] &^= 1 << (lcn % 8)
	im.patchAt(t, runs, lcn/8, b)
}

// damageIndex renames one entry of the directory's index in place (bytes
// only, fixups kept valid), so that it no longer matches its record and,
// in a block, breaks the order: the leftmost leaf's last entry in an INDX
// block (its names sort first, so lookups of the test's targets still find
// their way), or the first entry of an $INDEX_ROOT-only directory.
func (im *sdImage) damageIndex(t *testing.T, dir string) {
	t.Helper()
	w, err := newWriter(im.f, nil, im.size, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tx := w.begin()
	nums, err := tx.resolve(dir)
	if err != nil {
		t.Fatal(err)
	}
	num := nums[len(nums)-1]
	tr, err := tx.tree(num)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.root.internal {
		e := tr.root.entries[0]
		if string16(e.name) == "SYSTEM" {
			t.Fatal("the first entry is the hive itself")
		}
		name := utf16ToBytes(e.name)
		im.editRecord(t, num, false, func(b []byte) {
			r, _ := ParseRecord(num, b)
			a, _, _ := r.FindAttr(AttrIndexRoot, i30)
			at := bytes.Index(b[a.Off:a.Off+a.Len], name)
			if at < 0 {
				t.Fatal("name not found in $INDEX_ROOT")
			}
			b[a.Off+at], b[a.Off+at+1] = '!', 0
		})
		return
	}
	leaf := tr.root
	for leaf.internal {
		if leaf, err = tr.childOf(leaf.entries[0]); err != nil {
			t.Fatal(err)
		}
	}
	e := leaf.entries[len(leaf.entries)-2]
	name := utf16ToBytes(e.name)
	raw := append([]byte(nil), leaf.raw...)
	at := bytes.Index(raw[0x18+leaf.entriesOff:], name)
	if at < 0 {
		t.Fatal("name not found in its block")
	}
	at += 0x18 + leaf.entriesOff
	raw[at], raw[at+1] = '~', 0
	if err := protectFixups(raw); err != nil {
		t.Fatal(err)
	}
	im.patchAt(t, tr.allocRuns, leaf.vcn*tr.vcnUnit, raw)
}

// sdWantRefused checks err is a RefusedError with a refusal of one of the
// ids, naming a structure and advising chkdsk.
func sdWantRefused(t *testing.T, err error, ids ...string) *RefusedError {
	t.Helper()
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want a *RefusedError with %v", err, ids)
	}
	for _, r := range re.Refusals {
		if slices.Contains(ids, r.ID) {
			if r.Structure == "" || !strings.Contains(r.Advice, "chkdsk /f") || strings.Contains(r.Advice, "run ntfsfix") {
				t.Errorf("refusal %+v: want a structure and chkdsk advice", r)
			}
			t.Logf("refused: %s [%s]: %s", r.ID, r.Structure, r.Reason)
			return re
		}
	}
	t.Fatalf("refusals %+v lack %v", re.Refusals, ids)
	return nil
}

// sdNtfs3gRefusesRO reports whether ntfs-3g refuses even a read-only mount.
func sdNtfs3gRefusesRO(t *testing.T, img string) bool {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "ntfs-3g")
	mp := t.TempDir()
	out, err := exec.Command("ntfs-3g", "-o", "ro", img, mp).CombinedOutput()
	if err == nil {
		if o, err := exec.Command("fusermount", "-u", mp).CombinedOutput(); err != nil {
			t.Errorf("fusermount -u: %v %s", err, o)
		}
		return false
	}
	t.Logf("ntfs-3g -o ro: %v: %s", err, bytes.TrimSpace(out))
	return true
}

// TestWriterRefusesDamage is the table of damaged volumes: for each, the
// operation that a fix or mv would run is refused before any write.
func TestWriterRefusesDamage(t *testing.T) {
	const (
		opOpen   = "open"   // OpenWriter itself refuses
		opRename = "rename" // a rename inside \Windows (fix's SoftwareDistribution)
		opHive   = "hive"   // a write to the SYSTEM hive (fix's registry edits)
	)
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, im *sdImage)
		op     string
		ids    []string
		// ntfs3g: whether ntfs-3g refuses the damaged volume read-only
		// too (checked, so that every volume ntfs-3g refuses we refuse).
		ntfs3g bool
	}{
		{"version 99.99", func(t *testing.T, im *sdImage) {
			im.editRecord(t, 3, true, func(b []byte) {
				r, err := ParseRecord(3, b)
				if err != nil {
					t.Fatal(err)
				}
				a, ok, _ := r.FindAttr(AttrVolumeInformation, "")
				if !ok {
					t.Fatal("no $VOLUME_INFORMATION")
				}
				v := a.Value()
				v[8], v[9] = 99, 99
			})
		}, opOpen, []string{RefusalVersion}, false}, // ntfs-3g 2022.10.3 mounts it read-only
		{"$MFTMirr differs", func(t *testing.T, im *sdImage) {
			// Change $Volume's copy in $MFTMirr only: one byte of its
			// $VOLUME_INFORMATION flags (a bit Windows never sets).
			b := make([]byte, im.g.recSize)
			if err := readRuns(im.f, im.g, im.g.mirrRuns, 3*im.g.recSize, b); err != nil {
				t.Fatal(err)
			}
			if err := applyFixups(b); err != nil {
				t.Fatal(err)
			}
			r, err := ParseRecord(3, b)
			if err != nil {
				t.Fatal(err)
			}
			a, _, _ := r.FindAttr(AttrVolumeInformation, "")
			a.Value()[0] ^= 0x40 // a reserved byte: only the comparison can tell
			if err := protectFixups(b); err != nil {
				t.Fatal(err)
			}
			im.patchAt(t, im.g.mirrRuns, 3*im.g.recSize, b)
		}, opOpen, []string{RefusalMFTMirr}, true},
		{"$MFT run list undecodable", func(t *testing.T, im *sdImage) {
			im.editRecord(t, 0, true, func(b []byte) {
				r, _ := ParseRecord(0, b)
				a, _, _ := r.FindAttr(AttrData, "")
				b[a.Off+int(le16(b[a.Off+0x20:]))] = 0x09 // a 9-byte length field
			})
		}, opOpen, []string{RefusalMFTRunList}, true},
		{"$MFT run outside the volume", func(t *testing.T, im *sdImage) {
			im.editRecord(t, 0, true, func(b []byte) {
				r, _ := ParseRecord(0, b)
				a, _, _ := r.FindAttr(AttrData, "")
				ro := a.Off + int(le16(b[a.Off+0x20:]))
				runs, err := a.Runs()
				if err != nil {
					t.Fatal(err)
				}
				// Move the first run past the last cluster of the volume.
				runs[0].LCN = int64(im.g.boot.TotalClusters()) + 1000
				rl, err := EncodeRunList(runs)
				if err != nil || len(rl) > a.Off+a.Len-ro {
					t.Fatalf("re-encoded run list of %d bytes does not fit (%v)", len(rl), err)
				}
				clear(b[ro : a.Off+a.Len])
				copy(b[ro:], rl)
			})
		}, opOpen, []string{RefusalMFTRunList}, true},
		{"damaged index in Windows", func(t *testing.T, im *sdImage) {
			im.damageIndex(t, "Windows")
		}, opRename, []string{RefusalIndex}, false},
		{"damaged index in config, hive write", func(t *testing.T, im *sdImage) {
			im.damageIndex(t, "Windows/System32/config")
		}, opHive, []string{RefusalIndex}, false},
		{"SYSTEM hive cross-linked with the Windows index", func(t *testing.T, im *sdImage) {
			w, err := newWriter(im.f, nil, im.size, WriterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			tx := w.begin()
			nums, err := tx.resolve("Windows")
			if err != nil {
				t.Fatal(err)
			}
			tr, err := tx.tree(nums[len(nums)-1])
			if err != nil {
				t.Fatal(err)
			}
			target := tr.allocRuns[0].LCN
			hive, _ := im.fileRuns(t, "Windows/System32/config/SYSTEM")
			im.editRecord(t, hive.Num, false, func(b []byte) {
				r, _ := ParseRecord(hive.Num, b)
				a, _, _ := r.FindAttr(AttrData, "")
				runs, _ := a.Runs()
				runs[0].LCN = target
				rl, err := EncodeRunList(runs)
				ro := a.Off + int(le16(b[a.Off+0x20:]))
				if err != nil || len(rl) > a.Off+a.Len-ro {
					t.Fatalf("re-encoded run list does not fit (%v)", err)
				}
				clear(b[ro : a.Off+a.Len])
				copy(b[ro:], rl)
			})
		}, opHive, []string{RefusalClusterConflict}, false},
		{"SYSTEM hive cluster free in $Bitmap", func(t *testing.T, im *sdImage) {
			_, runs := im.fileRuns(t, "Windows/System32/config/SYSTEM")
			im.clearBit(t, runs[0].LCN)
		}, opHive, []string{RefusalBitmap}, false},
		{"$Bitmap zeroed", func(t *testing.T, im *sdImage) {
			runs, n := im.bitmapRuns(t)
			im.patchAt(t, runs, 0, make([]byte, n))
		}, opRename, []string{RefusalBitmap, RefusalIndex}, false},
		{"$Bitmap zeroed, hive write", func(t *testing.T, im *sdImage) {
			runs, n := im.bitmapRuns(t)
			im.patchAt(t, runs, 0, make([]byte, n))
		}, opHive, []string{RefusalBitmap}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im := sdOpen(t)
			tc.damage(t, im)
			if err := im.f.Sync(); err != nil {
				t.Fatal(err)
			}
			before := testutil.SHA256File(t, im.path)
			cw := &sdCountingWriter{f: im.f}
			w, err := OpenWriter(im.f, cw, im.size, WriterOptions{})
			switch tc.op {
			case opOpen:
				sdWantRefused(t, err, tc.ids...)
				// The read side reports the same refusal for diagnose.
				if v, err := Open(im.f, im.size); err == nil {
					if !slices.ContainsFunc(v.Safety().Refusals, func(r Refusal) bool { return slices.Contains(tc.ids, r.ID) }) {
						t.Errorf("Safety().Refusals %+v lack %v", v.Safety().Refusals, tc.ids)
					}
				}
			case opRename:
				if err != nil {
					t.Fatalf("OpenWriter: %v", err)
				}
				tx := w.begin()
				err := tx.rename("Windows/SoftwareDistribution", "Windows/SoftwareDistribution.old.1")
				if err == nil {
					err = tx.flush()
				}
				sdWantRefused(t, err, tc.ids...)
				if len(tx.o.writes) != 0 {
					t.Errorf("refused after staging %d writes", len(tx.o.writes))
				}
				_, err = w.Rename("Windows/SoftwareDistribution", "Windows/SoftwareDistribution.old.1")
				sdWantRefused(t, err, tc.ids...)
			case opHive:
				if err != nil {
					t.Fatalf("OpenWriter: %v", err)
				}
				// Grow the hive by a page, as a hive editor that adds a
				// bin does: the data, the record and the parent's index
				// entry all change.
				d, err := w.OpenData("Windows/System32/config/SYSTEM")
				if err == nil {
					var size int64
					if size, err = d.Size(); err == nil {
						if _, err = d.WriteAt(make([]byte, 4096), size); err == nil {
							_, err = d.Plan()
						}
					}
				}
				sdWantRefused(t, err, tc.ids...)
			}
			if cw.n != 0 {
				t.Errorf("%d writes reached the device", cw.n)
			}
			if after := testutil.SHA256File(t, im.path); after != before {
				t.Error("the image changed")
			}
			if tc.ntfs3g && !sdNtfs3gRefusesRO(t, im.path) {
				t.Error("ntfs-3g mounts this volume read-only: the damage is not what the case means")
			}
		})
	}
}

// TestUndamagedVolumeNotRefused: the same operations on the undamaged
// volume plan without refusal (the preflight has no false alarms there),
// and ntfs-3g mounts it.
func TestUndamagedVolumeNotRefused(t *testing.T) {
	im := sdOpen(t)
	w, err := OpenWriter(im.f, im.f, im.size, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.PlanRename("Windows/SoftwareDistribution", "Windows/SoftwareDistribution.old.1"); err != nil {
		t.Fatal(err)
	}
	d, err := w.OpenData("Windows/System32/config/SYSTEM")
	if err != nil {
		t.Fatal(err)
	}
	size, err := d.Size()
	if err != nil {
		t.Fatal(err)
	}
	// A write in place and a growth (which allocates and changes the
	// parent's index entry) both plan.
	if _, err := d.WriteAt([]byte("x"), 4096); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt(make([]byte, 4096), size); err != nil {
		t.Fatal(err)
	}
	rs, err := d.Plan()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Off < 8192 {
			t.Errorf("planned a write at 0x%x, in the boot area", r.Off)
		}
	}
	if sdNtfs3gRefusesRO(t, im.path) {
		t.Error("ntfs-3g refuses the undamaged volume")
	}
}

// TestAllocatorAvoidsClaimedClusters: with the SYSTEM hive's first
// cluster wrongly free in $Bitmap, an operation that never opened the hive
// (a rename whose index grows) still does not get that cluster: the
// allocator avoids every cluster an in-use record of $MFT uses. With the
// boot sector's cluster marked free, allocation is refused.
func TestAllocatorAvoidsClaimedClusters(t *testing.T) {
	im := sdOpen(t)
	_, runs := im.fileRuns(t, "Windows/System32/config/SYSTEM")
	hive := runs[0].LCN
	im.clearBit(t, hive)
	w, err := OpenWriter(im.f, im.f, im.size, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tx := w.begin()
	got, err := tx.allocClusters(1, hive)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].LCN == hive {
		t.Fatalf("allocator handed out cluster %d, the SYSTEM hive's first", hive)
	}
	// Ask for every run from the hive's cluster on: never the hive's.
	for i := 0; i < 8; i++ {
		got, err := tx.allocClusters(1, hive)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range got {
			if hive >= r.LCN && hive < r.LCN+r.Length {
				t.Fatalf("allocation %d took cluster %d, the SYSTEM hive's first", i, hive)
			}
		}
	}

	im2 := sdOpen(t)
	im2.clearBit(t, 0)
	w2, err := OpenWriter(im2.f, im2.f, im2.size, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w2.begin().allocClusters(1, 0)
	sdWantRefused(t, err, RefusalBitmap)
}

// TestRefusedErrorNamesStructure: the error text carries every refusal's
// ID and reason, so a caller printing err alone still says what and where.
func TestRefusedErrorNamesStructure(t *testing.T) {
	e := refused(RefusalMFTMirr, "$MFTMirr (MFT record 1)", "$MFTMirr does not match $MFT (record 3)", adviceChkdsk)
	if s := e.Error(); !strings.Contains(s, RefusalMFTMirr) || !strings.Contains(s, "record 3") {
		t.Errorf("Error() = %q", s)
	}
}

// TestClaimSet: overlapping runs of two owners are a conflict naming the
// cluster and both; taken answers for every claimed cluster and no other.
func TestClaimSet(t *testing.T) {
	var c claimSet
	a := claimOwner{rec: 40, typ: AttrData}
	b := claimOwner{rec: 41, typ: AttrIndexAllocation, name: i30}
	c.add(a, 100, 10, 1000)
	c.add(a, 300, 1, 1000)
	if len(c.problems) != 0 {
		t.Fatalf("problems without overlap: %+v", c.problems)
	}
	for l, want := range map[int64]bool{99: false, 100: true, 109: true, 110: false, 300: true, 301: false} {
		if got := c.taken(l); got != want {
			t.Errorf("taken(%d) = %v, want %v", l, got, want)
		}
	}
	c.add(b, 105, 20, 1000)
	if len(c.problems) != 1 || !strings.Contains(c.problems[0].Reason, "cluster 105") ||
		!strings.Contains(c.problems[0].Reason, "MFT record 40") || !strings.Contains(c.problems[0].Reason, "MFT record 41") {
		t.Fatalf("cross-link: %+v", c.problems)
	}
	if !c.taken(124) || c.taken(125) {
		t.Error("taken does not follow the added run")
	}
	c.add(b, 995, 10, 1000)
	if len(c.problems) != 2 || c.problems[1].ID != RefusalClusterConflict {
		t.Fatalf("run outside the volume: %+v", c.problems)
	}
}
