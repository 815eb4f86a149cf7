package journal

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// legacyHeader encodes h as a version 1 or 2 header payload, laid out as
// those versions wrote it.
func legacyHeader(v int, h Header) []byte {
	le := binary.LittleEndian
	b := le.AppendUint16(nil, uint16(v))
	b = le.AppendUint16(b, 0)
	b = le.AppendUint64(b, h.ID.Serial)
	b = le.AppendUint64(b, uint64(h.ID.Size))
	b = le.AppendUint64(b, uint64(h.Offset))
	b = le.AppendUint64(b, uint64(h.Created.UnixNano()))
	if v >= 2 {
		b = le.AppendUint64(b, h.Seq)
	}
	for _, s := range []string{h.ID.Name, h.Target, h.Tool, h.Note} {
		s = cut(s, maxString)
		b = le.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	return b
}

// legacyRange is one range of a version 1 or 2 journal.
type legacyRange struct {
	off      int64
	old, new []byte
	label    string
}

// legacyJournal lays out a whole version 1 or 2 journal: header, ranges,
// and marks ("P", "PC", "PCU"...).
func legacyJournal(v int, h Header, rs []legacyRange, marks string) []byte {
	le := binary.LittleEndian
	out := appendFrame([]byte(magic), frameHeader, legacyHeader(v, h))
	sum := sha256.New()
	var total int64
	for _, r := range rs {
		p := le.AppendUint64(nil, uint64(r.off))
		p = le.AppendUint32(p, uint32(len(r.new)))
		p = le.AppendUint16(p, uint16(len(r.label)))
		p = append(p, r.label...)
		p = append(p, r.old...)
		p = append(p, r.new...)
		sum.Write(p)
		total += int64(len(r.new))
		out = appendFrame(out, frameWrite, p)
	}
	for _, m := range marks {
		switch m {
		case 'P':
			p := le.AppendUint32(nil, uint32(len(rs)))
			p = le.AppendUint64(p, uint64(total))
			out = appendFrame(out, framePrepared, sum.Sum(p))
		case 'C':
			out = appendFrame(out, frameCommitted, le.AppendUint64(nil, uint64(h.Created.UnixNano())))
		case 'U':
			out = appendFrame(out, frameUndone, make([]byte, undoneSizeV2))
		}
	}
	return out
}

// legacyPlan is a version 2 fix: two ranges of one rename (its label with
// a part suffix, as Add split large ranges), a merged range of two
// things, and a range sharing a sector with it.
func legacyPlan(orig []byte) []legacyRange {
	r := func(off int64, n int, label string, seed uint64) legacyRange {
		return legacyRange{off, append([]byte(nil), orig[off:off+int64(n)]...), randomBytes(seed, n), label}
	}
	return []legacyRange{
		r(0x1000, 512, "rename A", 1),
		r(0x1200, 512, "rename A (part at +0x200)", 2),
		r(0x4000, 100, "rename B; rename C", 3),
		r(0x4100, 50, "rename D", 4), // the sector of B and C
		r(0x8000, 512, "", 5),
	}
}

// TestLegacyJournals reads and undoes version 1 and 2 journals: units are
// made from labels (A's two ranges are one unit, B, C and D one group by
// merging and by sharing a sector), changed-since leaves whole groups,
// and a damaged legacy journal (which cannot say which unit a lost frame
// belonged to) restores nothing and says so.
func TestLegacyJournals(t *testing.T) {
	for _, v := range []int{1, 2} {
		dir := t.TempDir()
		orig := randomBytes(30, 1<<16)
		img := newImage(t, dir, orig)
		rs := legacyPlan(orig)
		fixed := append([]byte(nil), orig...)
		for _, r := range rs {
			copy(fixed[r.off:], r.new)
		}
		raw := legacyJournal(v, header(), rs, "PC")
		info, err := Read(bytes.NewReader(raw), int64(len(raw)))
		if err != nil || info.Damage != nil || info.State != StateCommitted || info.Header.Version != v || info.Header.Space != SpaceVolume {
			t.Fatalf("v%d: %+v, %v", v, info, err)
		}
		if len(info.Units) != 5 || len(info.Groups) != 3 {
			t.Fatalf("v%d: %d units in %d groups, want 5 in 3: %+v", v, len(info.Units), len(info.Groups), info.Units)
		}
		if info.Records[0].Group != info.Records[1].Group || info.Records[2].Group != info.Records[3].Group || info.Records[0].Group == info.Records[2].Group {
			t.Fatalf("v%d: groups %+v", v, info.Records)
		}
		// Windows changed rename D's bytes: B, C and D stay, A and the
		// unlabelled range are restored.
		img.WriteAt(fixed, 0)
		img.WriteAt([]byte{^fixed[0x4110], ^fixed[0x4111]}, 0x4110)
		p := filepath.Join(dir, "j.journal")
		os.WriteFile(p, raw, 0o600)
		rep, err := Undo(p, img, img, img.Sync)
		if err != nil || rep.UnitsLeft != 3 || rep.UnitsDone != 2 || !rep.Marked || rep.Complete() {
			t.Fatalf("v%d: undo %+v, %v", v, rep, err)
		}
		got := fileBytes(t, img)
		if !bytes.Equal(got[0x1000:0x1400], orig[0x1000:0x1400]) || !bytes.Equal(got[0x4000:0x4064], fixed[0x4000:0x4064]) || !bytes.Equal(got[0x8000:0x8200], orig[0x8000:0x8200]) {
			t.Fatalf("v%d: undo did not restore exactly the unchanged groups", v)
		}
		if after, err := Open(p); err != nil || after.State != StateUndone || after.LastUndo.Changed != 1 {
			t.Fatalf("v%d: after undo %+v, %v", v, after, err)
		}

		// A flipped byte in the third range: nothing is restored.
		img.WriteAt(fixed, 0)
		bad := append([]byte(nil), raw...)
		in, _ := Read(bytes.NewReader(raw), int64(len(raw)))
		bad[in.Records[2].pos+in.Records[2].data+3] ^= 1
		os.WriteFile(p, bad, 0o600)
		rep, err = Undo(p, img, img, img.Sync)
		var de *DamagedError
		if !errors.As(err, &de) || de.UnitsIntact != 0 || de.Written != WrittenSome || rep.Done != 0 {
			t.Fatalf("v%d: damaged undo %+v, %v", v, rep, err)
		}
		if !bytes.Equal(fileBytes(t, img), fixed) {
			t.Fatalf("v%d: a damaged legacy journal restored something", v)
		}
		// Intact, undo restores all.
		os.WriteFile(p, raw, 0o600)
		if rep, err := Undo(p, img, img, img.Sync); err != nil || !rep.Complete() || !bytes.Equal(fileBytes(t, img), orig) {
			t.Fatalf("v%d: undo %+v, %v", v, rep, err)
		}
	}
}
