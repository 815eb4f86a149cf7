package offline

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"wuoffline/internal/testutil"
)

func readAll(t testing.TB, b []byte) []*EVTXEvent {
	t.Helper()
	var evs []*EVTXEvent
	skipped, err := ReadEVTX(bytes.NewReader(b), int64(len(b)), func(e *EVTXEvent) bool {
		evs = append(evs, e)
		return true
	})
	if err != nil {
		t.Fatalf("ReadEVTX: %v", err)
	}
	if skipped != 0 {
		t.Fatalf("ReadEVTX skipped %d records", skipped)
	}
	return evs
}

func TestReadEVTXGenerated(t *testing.T) {
	want := sampleEvents()
	got := readAll(t, genEVTX(want))
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Provider != w.Provider || g.EventID != int(w.EventID) || !g.Written.Equal(w.Written) || g.RecordID != uint64(i+1) {
			t.Errorf("event %d: got %q/%d/%v/#%d, want %q/%d/%v/#%d", i, g.Provider, g.EventID, g.Written, g.RecordID, w.Provider, w.EventID, w.Written, i+1)
		}
		for _, d := range w.Data {
			if g.Named[d[0]] != d[1] {
				t.Errorf("event %d: Data %s = %q, want %q", i, d[0], g.Named[d[0]], d[1])
			}
		}
	}
}

// evtxDumpRecord is what evtx_dump.py prints for one record.
type evtxDumpRecord struct {
	System struct {
		Provider struct {
			Name string `xml:"Name,attr"`
		} `xml:"Provider"`
		EventID       string `xml:"EventID"`
		EventRecordID string `xml:"EventRecordID"`
	} `xml:"System"`
	Data []struct {
		Name  string `xml:"Name,attr"`
		Value string `xml:",chardata"`
	} `xml:"EventData>Data"`
}

// TestEVTXAgainstPythonEvtx checks the generated file and this reader
// against python-evtx (evtx_dump.py), an independent implementation.
func TestEVTXAgainstPythonEvtx(t *testing.T) {
	tool := testutil.RequireTool(t, "evtx_dump.py")
	p := filepath.Join(t.TempDir(), "System.evtx")
	b := genEVTX(sampleEvents())
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, p).Output()
	if err != nil {
		t.Fatalf("evtx_dump.py: %v", err)
	}
	// evtx_dump.py declares XML 1.1, which encoding/xml refuses: drop the
	// declaration, the content is plain 1.0.
	if i := bytes.Index(out, []byte("?>")); i >= 0 && bytes.HasPrefix(bytes.TrimSpace(out), []byte("<?xml")) {
		out = out[i+2:]
	}
	var recs []evtxDumpRecord
	dec := xml.NewDecoder(bytes.NewReader(out))
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "Event" {
			var r evtxDumpRecord
			if err := dec.DecodeElement(&r, &se); err != nil {
				t.Fatalf("decoding evtx_dump.py output: %v\n%s", err, out)
			}
			recs = append(recs, r)
		}
	}
	ours := readAll(t, b)
	if len(recs) != len(ours) {
		t.Fatalf("evtx_dump.py printed %d events, we read %d\n%s", len(recs), len(ours), out)
	}
	for i, r := range recs {
		o := ours[i]
		if r.System.Provider.Name != o.Provider {
			t.Errorf("record %d: provider %q (python) vs %q (ours)", i, r.System.Provider.Name, o.Provider)
		}
		if id, _ := strconv.Atoi(strings.TrimSpace(r.System.EventID)); id != o.EventID {
			t.Errorf("record %d: EventID %q (python) vs %d (ours)", i, r.System.EventID, o.EventID)
		}
		if len(r.Data) != len(o.Data) {
			t.Errorf("record %d: %d Data (python) vs %d (ours)", i, len(r.Data), len(o.Data))
			continue
		}
		for j, d := range r.Data {
			if o.Named[d.Name] != d.Value || o.Data[j] != d.Value {
				t.Errorf("record %d: Data %s = %q (python) vs %q (ours)", i, d.Name, d.Value, o.Named[d.Name])
			}
		}
	}
}

func TestReadEVTXFinding(t *testing.T) {
	fsys := fstest.MapFS{"Windows/System32/winevt/Logs/System.evtx": {Data: genEVTX(sampleEvents())}}
	f := readEVTXFinding(fsys, "Windows/System32/winevt/Logs/System.evtx")
	if f == nil || f.Error != "" {
		t.Fatalf("finding = %+v", f)
	}
	if f.Failures != 2 || !f.InstallFailure || f.HRESULTs["0x80070002"] != 2 {
		t.Errorf("failures %d, install %v, hresults %v; want 2 failures 0x80070002", f.Failures, f.InstallFailure, f.HRESULTs)
	}
	if len(f.KBs) != 1 || f.KBs[0] != "KB5043076" {
		t.Errorf("KBs = %v, want [KB5043076]", f.KBs)
	}
	if readEVTXFinding(fstest.MapFS{}, "x.evtx") != nil {
		t.Error("missing log gave a finding")
	}
}

func TestReadEVTXDamaged(t *testing.T) {
	good := genEVTX(sampleEvents())
	cases := map[string][]byte{
		"empty":           {},
		"short":           good[:100],
		"no-signature":    append([]byte("ElfFilX\x00"), good[8:]...),
		"header-only":     good[:evtxHeaderSize],
		"truncated-chunk": good[:evtxHeaderSize+evtxChunkSize-1],
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			n := 0
			_, err := ReadEVTX(bytes.NewReader(b), int64(len(b)), func(*EVTXEvent) bool { n++; return true })
			if name != "header-only" && name != "truncated-chunk" && err == nil {
				t.Errorf("no error")
			}
			if n != 0 && name != "truncated-chunk" {
				t.Errorf("%d events from damaged input", n)
			}
		})
	}
	// A record whose size field overruns the chunk is skipped, not read.
	bad := append([]byte{}, good...)
	off := evtxHeaderSize + evtxChunkHeader
	bad[off+4], bad[off+5], bad[off+6] = 0xff, 0xff, 0x7f
	if _, err := ReadEVTX(bytes.NewReader(bad), int64(len(bad)), func(*EVTXEvent) bool { return true }); err != nil {
		t.Errorf("damaged record: %v", err)
	}
}

// FuzzEVTX feeds arbitrary chunk contents to the record walker and the
// Binary XML evaluator: no panic, no hang, bounded work.
func FuzzEVTX(f *testing.F) {
	// Seeds are the used parts of generated chunks, one after another
	// (the rest of each chunk is zeros, which the target pads back):
	// small inputs keep mutation fast.
	used := func(c []byte) []byte { return c[:binary.LittleEndian.Uint32(c[48:])] }
	f.Add(used(genChunk(1, sampleEvents())))
	f.Add(used(genChunk(7, sampleEvents()[1:2])))
	// Every value type and the rarer tokens; the second record shares
	// the first's template.
	f.Add(used(genChunk(2, richEvents()[1:3])))
	// Several chunks: record ids go on, templates are per chunk. Kept
	// small: the engine minimizes every new input, byte by byte.
	s := sampleEvents()
	f.Add(slices.Concat(used(genChunk(1, s[:1])), used(genChunk(2, s[1:3])), used(genChunk(4, s[3:]))))
	f.Fuzz(func(t *testing.T, data []byte) {
		file := fuzzEVTXFile(data)
		n := 0
		ReadEVTX(bytes.NewReader(file), int64(len(file)), func(*EVTXEvent) bool {
			n++
			return n < 1000 // and stop early sometimes: fn returning false
		})
	})
}

// fuzzEVTXFile turns fuzz data into an .evtx file: a file header, then a
// chunk for each piece of data that starts with the chunk signature (and
// one for what comes before the first), each padded to the chunk size; at
// most 8 chunks.
func fuzzEVTXFile(data []byte) []byte {
	sig := []byte("ElfChnk\x00")
	file := make([]byte, evtxHeaderSize, evtxHeaderSize+8*evtxChunkSize)
	copy(file, "ElfFile\x00")
	for i := 0; len(data) > 0 && i < 8; i++ {
		end := bytes.Index(data[1:], sig) + 1
		if end == 0 {
			end = len(data)
		}
		c := make([]byte, evtxChunkSize)
		copy(c, data[:end])
		file = append(file, c...)
		data = data[end:]
	}
	return file
}

// TestReadEVTXRich reads the rich events (every value type, the rarer
// tokens, a nested Binary XML value, a shared template) and checks what
// each value renders as.
func TestReadEVTXRich(t *testing.T) {
	want := richEvents()
	got := readAll(t, genEVTX(want))
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for _, i := range []int{1, 2} {
		g := got[i]
		if g.Provider != want[i].Provider || g.EventID != int(want[i].EventID) {
			t.Errorf("event %d: %q/%d, want %q/%d", i, g.Provider, g.EventID, want[i].Provider, want[i].EventID)
		}
		if n := 1 + len(richValues()); len(g.Data) < n {
			t.Fatalf("event %d: %d values, want at least %d: %q", i, len(g.Data), n, g.Data)
		}
		for _, v := range richValues() {
			if got, ok := g.Named[v.Name]; !ok || got != v.Text {
				t.Errorf("event %d: %s (type %#x) = %q, want %q", i, v.Name, v.Type, got, v.Text)
			}
		}
		// UserData leaves: Rich's text is CDATA, a character reference,
		// an entity reference (the processing instruction renders
		// nothing) and the optional substitution of the provider.
		if r := g.Named["Rich"]; r != "cdata!<"+want[i].Provider {
			t.Errorf("event %d: UserData Rich = %q", i, r)
		}
		if e, ok := g.Named["Empty"]; !ok || e != "" {
			t.Errorf("event %d: UserData Empty = %q, %v", i, e, ok)
		}
	}
	// The same events spread over several chunks, as the fuzz target
	// builds them, read in full too.
	used := func(c []byte) []byte { return c[:binary.LittleEndian.Uint32(c[48:])] }
	file := fuzzEVTXFile(slices.Concat(used(genChunk(1, sampleEvents())), used(genChunk(5, richEvents()))))
	if evs := readAll(t, file); len(evs) != len(sampleEvents())+len(richEvents()) || evs[len(evs)-1].RecordID != 8 {
		t.Errorf("two chunks: %d events", len(evs))
	}
}
