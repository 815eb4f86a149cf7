package ntfs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func wtSeeds(t testing.TB, glob string) map[string][]byte {
	t.Helper()
	ps, err := filepath.Glob(filepath.Join("testdata", "write", glob))
	if err != nil || len(ps) == 0 {
		t.Fatalf("no seeds %s: %v", glob, err)
	}
	out := map[string][]byte{}
	for _, p := range ps {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

func TestFixupsRoundTrip(t *testing.T) {
	for name, raw := range wtSeeds(t, "*.bin") {
		b := append([]byte(nil), raw...)
		if err := applyFixups(b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		plain := append([]byte(nil), b...)
		usn := le16(raw[le16(raw[4:]):])
		if err := protectFixups(b); err != nil {
			t.Fatal(err)
		}
		if got := le16(b[le16(b[4:]):]); got != usn+1 {
			t.Errorf("%s: update sequence number %d after write, want %d", name, got, usn+1)
		}
		if err := applyFixups(b); err != nil {
			t.Fatalf("%s: re-applying: %v", name, err)
		}
		// Everything but the sequence number itself is unchanged.
		uo := le16(b[4:])
		copy(b[uo:uo+2], plain[uo:uo+2])
		if !bytes.Equal(b, plain) {
			t.Errorf("%s: round trip changed the record", name)
		}
		// A torn stride is detected.
		torn := append([]byte(nil), raw...)
		torn[fixupStride-1] ^= 0xFF
		if err := applyFixups(torn); err == nil {
			t.Errorf("%s: torn stride not detected", name)
		}
	}
}

func TestFixupsSkipZero(t *testing.T) {
	b := append([]byte(nil), wtSeeds(t, "mft-record-0.bin")["mft-record-0.bin"]...)
	if err := applyFixups(b); err != nil {
		t.Fatal(err)
	}
	putLE16(b[le16(b[4:]):], 0xFFFE)
	if err := protectFixups(b); err != nil {
		t.Fatal(err)
	}
	if got := le16(b[le16(b[4:]):]); got != 1 {
		t.Errorf("sequence after 0xFFFE is %d, want 1 (0xFFFF and 0 are skipped)", got)
	}
}

func wtRecord(t testing.TB, name string) *Record {
	t.Helper()
	b := append([]byte(nil), wtSeeds(t, name)[name]...)
	if err := applyFixups(b); err != nil {
		t.Fatal(err)
	}
	r, err := ParseRecord(1, b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRecordEdit(t *testing.T) {
	r := wtRecord(t, "mft-record-dosname.bin")
	fns, err := r.fileNames()
	if err != nil || len(fns) != 2 {
		t.Fatalf("file names %v, %v; want the Win32 + DOS pair", fns, err)
	}
	used, id := r.Used(), le16(r.Data[recNextAttrID:])
	v := buildFileName(fns[0].raw, fns[0].parent, encodeName("a new name.txt"), NamespaceWin32)
	off, err := r.InsertResident(AttrFileName, "", v, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := le16(r.Data[recNextAttrID:]); got != id+1 {
		t.Errorf("next_attr_id %d, want %d", got, id+1)
	}
	if le16(r.Data[off+0xE:]) != id {
		t.Errorf("new attribute instance %d, want %d", le16(r.Data[off+0xE:]), id)
	}
	if r.Used()%8 != 0 || r.Used() != used+align8(0x18+len(v)) {
		t.Errorf("used %d after insert, want %d", r.Used(), used+align8(0x18+len(v)))
	}
	as, err := r.Attrs()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(as); i++ {
		if as[i].Type < as[i-1].Type {
			t.Errorf("attributes out of type order: 0x%x after 0x%x", as[i].Type, as[i-1].Type)
		}
	}
	// Resize a value and remove the attribute again.
	a := Attr{}
	for _, x := range as {
		if x.Off == off {
			a = x
		}
	}
	if err := r.SetResidentValue(a, append(v, make([]byte, 40)...)); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveAttr(off); err != nil {
		t.Fatal(err)
	}
	if r.Used() != used {
		t.Errorf("used %d after remove, want %d", r.Used(), used)
	}
	if _, err := r.Attrs(); err != nil {
		t.Fatal(err)
	}
	// A value larger than the record is refused with ErrNeedsAttributeList.
	if _, err := r.InsertResident(AttrData, "big", make([]byte, len(r.Data)), false); err == nil {
		t.Error("oversized attribute accepted")
	}
}

func TestRunListTable(t *testing.T) {
	for _, tc := range []struct {
		name string
		enc  []byte
		runs []Run
	}{
		{"one run", []byte{0x21, 0x10, 0x00, 0x01, 0}, []Run{{LCN: 256, Length: 16}}},
		{"backwards delta", []byte{0x11, 0x04, 0x40, 0x11, 0x02, 0xF0, 0}, []Run{{LCN: 0x40, Length: 4}, {LCN: 0x30, Length: 2}}},
		{"sparse", []byte{0x11, 0x04, 0x10, 0x01, 0x08, 0x11, 0x01, 0x10, 0}, []Run{{LCN: 16, Length: 4}, {Length: 8, Sparse: true}, {LCN: 32, Length: 1}}},
		{"empty", []byte{0}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeRunList(tc.enc)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.runs) {
				t.Fatalf("runs %v, want %v", got, tc.runs)
			}
			for i := range got {
				if got[i] != tc.runs[i] {
					t.Errorf("run %d: %v, want %v", i, got[i], tc.runs[i])
				}
			}
			enc, err := EncodeRunList(tc.runs)
			if err != nil || !bytes.Equal(enc, tc.enc) {
				t.Errorf("encode: % x, %v; want % x", enc, err, tc.enc)
			}
		})
	}
	for _, bad := range [][]byte{{}, {0x21, 0x10}, {0x09, 1, 0}, {0x11, 0x00, 0x05, 0}, {0x11, 0x01, 0xFF, 0}} {
		if _, err := DecodeRunList(bad); err == nil {
			t.Errorf("DecodeRunList(% x) accepted", bad)
		}
	}
}

// FuzzRunList: decoding never panics, and what decodes re-encodes to a
// list that decodes the same.
func FuzzRunList(f *testing.F) {
	f.Add([]byte{0x21, 0x10, 0x00, 0x01, 0})
	f.Add([]byte{0x11, 0x04, 0x10, 0x01, 0x08, 0x11, 0x01, 0x10, 0})
	f.Add([]byte{0x31, 0x40, 0x00, 0x00, 0x01, 0x32, 0x00, 0x01, 0x80, 0x00, 0x00, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		runs, err := DecodeRunList(b)
		if err != nil {
			return
		}
		enc, err := EncodeRunList(runs)
		if err != nil {
			t.Fatalf("re-encoding %v: %v", runs, err)
		}
		again, err := DecodeRunList(enc)
		if err != nil || len(again) != len(runs) {
			t.Fatalf("re-decoding: %v %v", again, err)
		}
		for i := range runs {
			if again[i] != runs[i] {
				t.Fatalf("run %d: %v became %v", i, runs[i], again[i])
			}
		}
	})
}

// FuzzRecord: parsing a damaged MFT record never panics, and a record that
// parses yields attributes inside it.
func FuzzRecord(f *testing.F) {
	for _, b := range wtSeeds(f, "mft-record-*.bin") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		b = append([]byte(nil), b...)
		if applyFixups(b) != nil {
			return
		}
		r, err := ParseRecord(0, b)
		if err != nil {
			return
		}
		as, err := r.Attrs()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			_ = a.Value()
			if a.NonResident {
				_, _ = a.Runs()
			}
			if a.Type == AttrFileName && !a.NonResident {
				_, _ = parseFileName(a.Value())
			}
			if a.Type == AttrAttributeList && !a.NonResident {
				_, _ = parseAttrList(a.Value())
			}
		}
		_, _ = r.fileNames()
	})
}

// FuzzRecordEdit: insert, resize and remove on any parsable record keep it
// parsable with the same attributes.
func FuzzRecordEdit(f *testing.F) {
	for _, b := range wtSeeds(f, "mft-record-*.bin") {
		f.Add(b, uint16(40), uint8(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, n uint16, which uint8) {
		b = append([]byte(nil), b...)
		if applyFixups(b) != nil {
			return
		}
		r, err := ParseRecord(0, b)
		if err != nil {
			return
		}
		before, _ := r.Attrs()
		off, err := r.InsertResident(AttrData, "x", make([]byte, int(n)%2048), false)
		if err != nil {
			return
		}
		if _, err := r.Attrs(); err != nil {
			t.Fatalf("after insert: %v", err)
		}
		if err := r.RemoveAttr(off); err != nil {
			t.Fatal(err)
		}
		after, err := r.Attrs()
		if err != nil || len(after) != len(before) {
			t.Fatalf("after remove: %d attributes (%v), had %d", len(after), err, len(before))
		}
		if len(after) > 0 {
			a := after[int(which)%len(after)]
			if !a.NonResident {
				_ = r.SetResidentValue(a, make([]byte, int(n)%512))
				if _, err := r.Attrs(); err != nil {
					t.Fatalf("after resize: %v", err)
				}
			}
		}
	})
}

// FuzzIndx: parsing a damaged INDX block never panics, and a block that
// parses re-encodes to entries that parse the same.
func FuzzIndx(f *testing.F) {
	for _, b := range wtSeeds(f, "indx-*.bin") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		b = append([]byte(nil), b...)
		n, err := parseIndx(b, int64(le64(append(b, make([]byte, 0x18)...)[0x10:])))
		if err != nil {
			return
		}
		buf := make([]byte, n.used())
		encodeEntries(buf, n.entries, n.internal)
		again, err := parseEntries(buf, n.internal)
		if err != nil || len(again) != len(n.entries) {
			t.Fatalf("re-parsing %d entries: %d, %v", len(n.entries), len(again), err)
		}
	})
}

// TestAttrNameAfterValueRejected: a name placed after (or over) the value
// parses as damage. FuzzRecordEdit found that SetResidentValue on such an
// attribute shrank the attribute under its name; the parser now refuses
// the layout the editor cannot keep valid.
func TestAttrNameAfterValueRejected(t *testing.T) {
	b := append([]byte(nil), wtSeeds(t, "mft-record-5-root.bin")["mft-record-5-root.bin"]...)
	if err := applyFixups(b); err != nil {
		t.Fatal(err)
	}
	r, err := ParseRecord(5, b)
	if err != nil {
		t.Fatal(err)
	}
	a, ok, err := r.FindAttr(AttrIndexRoot, i30)
	if err != nil || !ok {
		t.Fatalf("$INDEX_ROOT $I30: %v %v", ok, err)
	}
	// Point the name at the value: it now overlaps what SetResidentValue
	// rewrites.
	putLE16(b[a.Off+0xA:], le16(b[a.Off+0x14:]))
	if _, err := ParseRecord(5, b); err == nil {
		t.Fatal("a record whose attribute name overlaps its value parsed")
	}
}
