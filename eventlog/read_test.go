package eventlog

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wuoffline/wuoffline/internal/evtxgen"
	"github.com/wuoffline/wuoffline/internal/testutil"
)

func readAll(t testing.TB, b []byte) []*Event {
	t.Helper()
	var evs []*Event
	st, err := Read(bytes.NewReader(b), int64(len(b)), Limits{}, func(e *Event) bool {
		evs = append(evs, e)
		return true
	})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if st.Skipped != 0 || st.Truncated || st.Records != len(evs) {
		t.Fatalf("Read: %+v for %d events", st, len(evs))
	}
	return evs
}

func TestReadEVTXGenerated(t *testing.T) {
	want := evtxgen.SampleEvents()
	got := readAll(t, evtxgen.File(want))
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
	p := filepath.Join(t.TempDir(), "System.evtx")
	if err := os.WriteFile(p, evtxgen.File(evtxgen.SampleEvents()), 0o644); err != nil {
		t.Fatal(err)
	}
	compareWithPython(t, p)
}

// TestRealLogsAgainstPythonEvtx: every record of the real Windows 10 logs
// decodes, and agrees with python-evtx on provider, event id, record id
// and every EventData value.
func TestRealLogsAgainstPythonEvtx(t *testing.T) {
	for _, name := range []string{"System-win10-1703.evtx", "Security-win10.evtx"} {
		t.Run(name, func(t *testing.T) {
			compareWithPython(t, testutil.SharedFixture(t, "evtx/"+name))
		})
	}
}

// pythonRecords runs evtx_dump.py on the file and decodes its output.
func pythonRecords(t *testing.T, p string) []evtxDumpRecord {
	t.Helper()
	tool := testutil.RequireTool(t, "evtx_dump.py")
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
	dec.Strict = false
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "Event" {
			var r evtxDumpRecord
			if err := dec.DecodeElement(&r, &se); err != nil {
				t.Fatalf("decoding evtx_dump.py output: %v", err)
			}
			recs = append(recs, r)
		}
	}
	return recs
}

// sameText compares a value as python-evtx prints it with ours. They
// render a few things differently, none of which is a decoding error:
// python-evtx prints GUIDs in lower case and booleans as True/False
// (Windows: upper case, true/false), drops a zero fraction of a second and
// computes FILETIME fractions in floating point (one microsecond off), and
// its XML output turns CR LF into LF.
//
// It also prints an array of strings as <string> elements (ours: joined
// with ", "), binary values in base64 (ours, like Windows: hex), and drops
// control characters that XML cannot carry.
func sameText(py, ours string) bool {
	ours = strings.ReplaceAll(ours, "\r\n", "\n")
	ours = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' && r != '\t' {
			return -1
		}
		return r
	}, ours)
	if strings.EqualFold(py, ours) {
		return true
	}
	if strings.HasPrefix(py, "<string>") {
		// python-evtx mis-splits an array that starts with empty strings
		// (for the UTF-16 "\0\0\0\0" "14\0" "60\0" it prints 14, "",
		// 14, 60): each non-empty string of ours must be one of its, and
		// each of its a part of one of ours.
		var py2, ours2 []string
		for _, s := range strings.Split(strings.TrimSuffix(py, "</string>\n"), "</string>\n") {
			if s = strings.TrimPrefix(s, "<string>"); s != "" {
				py2 = append(py2, s)
			}
		}
		for _, s := range strings.Split(ours, ", ") {
			if s != "" {
				ours2 = append(ours2, s)
			}
		}
		for _, o := range ours2 {
			if !slices.Contains(py2, o) {
				return false
			}
		}
		for _, p := range py2 {
			if !slices.ContainsFunc(ours2, func(o string) bool { return strings.Contains(o, p) }) {
				return false
			}
		}
		return true
	}
	if b, err := base64.StdEncoding.DecodeString(py); err == nil && len(b) > 0 {
		return strings.EqualFold(hex.EncodeToString(b), ours)
	}
	const layout = "2006-01-02 15:04:05.999999"
	tp, err1 := time.Parse(layout, py)
	to, err2 := time.Parse(layout, ours)
	if err1 != nil || err2 != nil {
		return false
	}
	d := tp.Sub(to)
	return d <= 2*time.Microsecond && d >= -2*time.Microsecond
}

func compareWithPython(t *testing.T, p string) {
	recs := pythonRecords(t, p)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	ours := readAll(t, b)
	if len(recs) == 0 || len(recs) != len(ours) {
		t.Fatalf("evtx_dump.py printed %d events, we read %d", len(recs), len(ours))
	}
	bad := 0
	for i, r := range recs {
		o := ours[i]
		if r.System.Provider.Name != o.Provider {
			t.Errorf("record %d: provider %q (python) vs %q (ours)", i, r.System.Provider.Name, o.Provider)
		}
		if id, _ := strconv.Atoi(strings.TrimSpace(r.System.EventID)); id != o.EventID {
			t.Errorf("record %d: EventID %q (python) vs %d (ours)", i, r.System.EventID, o.EventID)
		}
		if id, _ := strconv.ParseUint(strings.TrimSpace(r.System.EventRecordID), 10, 64); id != o.RecordID {
			t.Errorf("record %d: EventRecordID %q (python) vs %d (ours)", i, r.System.EventRecordID, o.RecordID)
		}
		if len(r.Data) != len(o.Data) {
			t.Errorf("record %d: %d Data (python) vs %d (ours)", i, len(r.Data), len(o.Data))
			continue
		}
		for j, d := range r.Data {
			if !sameText(d.Value, o.Data[j]) || (d.Name != "" && !sameText(d.Value, o.Named[d.Name])) {
				if bad++; bad < 20 {
					t.Errorf("record %d: Data %d %s = %q (python) vs %q (ours)", i, j, d.Name, d.Value, o.Data[j])
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d values differ", bad)
	}
}

func TestReadEVTXDamaged(t *testing.T) {
	good := evtxgen.File(evtxgen.SampleEvents())
	cases := map[string][]byte{
		"empty":           {},
		"short":           good[:100],
		"no-signature":    append([]byte("ElfFilX\x00"), good[8:]...),
		"header-only":     good[:fileHeaderSize],
		"truncated-chunk": good[:fileHeaderSize+chunkSize-1],
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			n := 0
			_, err := Read(bytes.NewReader(b), int64(len(b)), Limits{}, func(*Event) bool { n++; return true })
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
	off := fileHeaderSize + chunkHeaderSize
	bad[off+4], bad[off+5], bad[off+6] = 0xff, 0xff, 0x7f
	if st, err := Read(bytes.NewReader(bad), int64(len(bad)), Limits{}, func(*Event) bool { return true }); err != nil || st.Skipped != 1 {
		t.Errorf("damaged record: %+v, %v; want one skipped record and no error", st, err)
	}
}

// FuzzEVTX feeds arbitrary chunk contents to the record walker and the
// Binary XML evaluator: no panic, no hang, bounded work.
func FuzzEVTX(f *testing.F) {
	// Seeds are the used parts of generated chunks, one after another
	// (the rest of each chunk is zeros, which the target pads back):
	// small inputs keep mutation fast.
	used := func(c []byte) []byte { return c[:binary.LittleEndian.Uint32(c[48:])] }
	f.Add(used(evtxgen.Chunk(1, evtxgen.SampleEvents())))
	f.Add(used(evtxgen.Chunk(7, evtxgen.SampleEvents()[1:2])))
	// Every value type and the rarer tokens; the second record shares
	// the first's template.
	f.Add(used(evtxgen.Chunk(2, evtxgen.RichEvents()[1:3])))
	// Several chunks: record ids go on, templates are per chunk. Kept
	// small: the engine minimizes every new input, byte by byte.
	s := evtxgen.SampleEvents()
	f.Add(slices.Concat(used(evtxgen.Chunk(1, s[:1])), used(evtxgen.Chunk(2, s[1:3])), used(evtxgen.Chunk(4, s[3:]))))
	// A real chunk (the first of a Windows 10 System log), when the
	// fixture is there: templates, names and values as Windows writes them.
	if b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(f), "..", "shared", "fixtures", "evtx", "System-win10-1703.evtx")); err == nil && len(b) >= fileHeaderSize+chunkSize {
		f.Add(used(b[fileHeaderSize : fileHeaderSize+chunkSize]))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file := fuzzEVTXFile(data)
		n := 0
		Read(bytes.NewReader(file), int64(len(file)), Limits{MaxRecords: 5000}, func(*Event) bool {
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
	file := make([]byte, fileHeaderSize, fileHeaderSize+8*chunkSize)
	copy(file, "ElfFile\x00")
	for i := 0; len(data) > 0 && i < 8; i++ {
		end := bytes.Index(data[1:], sig) + 1
		if end == 0 {
			end = len(data)
		}
		c := make([]byte, chunkSize)
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
	want := evtxgen.RichEvents()
	got := readAll(t, evtxgen.File(want))
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for _, i := range []int{1, 2} {
		g := got[i]
		if g.Provider != want[i].Provider || g.EventID != int(want[i].EventID) {
			t.Errorf("event %d: %q/%d, want %q/%d", i, g.Provider, g.EventID, want[i].Provider, want[i].EventID)
		}
		if n := 1 + len(evtxgen.RichValues()); len(g.Data) < n {
			t.Fatalf("event %d: %d values, want at least %d: %q", i, len(g.Data), n, g.Data)
		}
		for _, v := range evtxgen.RichValues() {
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
	file := fuzzEVTXFile(slices.Concat(used(evtxgen.Chunk(1, evtxgen.SampleEvents())), used(evtxgen.Chunk(5, evtxgen.RichEvents()))))
	if evs := readAll(t, file); len(evs) != len(evtxgen.SampleEvents())+len(evtxgen.RichEvents()) || evs[len(evs)-1].RecordID != 8 {
		t.Errorf("two chunks: %d events", len(evs))
	}
}

// TestReadLimits: the record and byte limits stop the walk and say so.
func TestReadLimits(t *testing.T) {
	p := testutil.SharedFixture(t, "evtx/System-win10-1703.evtx")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	count := func(lim Limits) (int, Stats) {
		n := 0
		st, err := Read(bytes.NewReader(b), int64(len(b)), lim, func(*Event) bool { n++; return true })
		if err != nil {
			t.Fatal(err)
		}
		return n, st
	}
	all, st := count(Limits{})
	if all != 1881 || st.Truncated || st.Skipped != 0 {
		t.Fatalf("whole file: %d records, %+v; want 1881 (python-evtx's count)", all, st)
	}
	if n, st := count(Limits{MaxRecords: 100}); n != 100 || !st.Truncated {
		t.Errorf("MaxRecords 100: %d records, %+v", n, st)
	}
	if n, st := count(Limits{MaxBytes: fileHeaderSize + 2*chunkSize}); n == 0 || n >= all || !st.Truncated || st.Chunks != 2 {
		t.Errorf("MaxBytes of two chunks: %d records, %+v", n, st)
	}
}

// TestWindowsUpdateFailureDecoded: the real System log's WindowsUpdateClient
// event 20 carries the error code and the update title.
func TestWindowsUpdateFailureDecoded(t *testing.T) {
	b, err := os.ReadFile(testutil.SharedFixture(t, "evtx/System-win10-1703.evtx"))
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, e := range readAll(t, b) {
		if e.Provider == "Microsoft-Windows-WindowsUpdateClient" && e.EventID == 20 && e.Named["errorCode"] == "0x80248007" &&
			strings.Contains(e.Named["updateTitle"], "(KB4025342)") {
			found++
		}
	}
	if found == 0 {
		t.Error("no event 20 with 0x80248007 for KB4025342")
	}
}
