package preg

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

const wuKey = `Software\Policies\Microsoft\Windows\WindowsUpdate`

func sample() []Entry {
	return []Entry{
		StringEntry(wuKey, "WUServer", "http://127.0.0.1:8530"),
		DWORDEntry(wuKey+`\AU`, "NoAutoUpdate", 1),
		DWORDEntry(`Software\Policies\Microsoft\Windows\DataCollection`, "AllowTelemetry", 0),
		{Key: wuKey, Value: "**del.WUStatusServer", Type: RegSZ, Data: []byte{' ', 0, 0, 0}},
		{Key: `Software\Policies\Ünïcødé`, Value: "bin", Type: RegBinary, Data: []byte{0, 1, 2, ']', 0, ';', 0}},
	}
}

func TestRoundTrip(t *testing.T) {
	b := Encode(sample())
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Entries) != len(sample()) {
		t.Fatalf("%d entries", len(f.Entries))
	}
	for i, w := range sample() {
		g := f.Entries[i]
		if g.Key != w.Key || g.Value != w.Value || g.Type != w.Type || !bytes.Equal(g.Data, w.Data) {
			t.Errorf("entry %d: %+v, want %+v", i, g, w)
		}
	}
	if s, ok := f.Entries[0].Text(); !ok || s != "http://127.0.0.1:8530" {
		t.Errorf("Text = %q %v", s, ok)
	}
	if n, ok := f.Entries[1].DWORD(); !ok || n != 1 {
		t.Errorf("DWORD = %d %v", n, ok)
	}
	if !f.Entries[3].IsInstruction() || f.Entries[0].IsInstruction() {
		t.Error("IsInstruction")
	}
}

// TestFilterKeepsBytes: the kept entries and the header are byte for byte
// the input's; the result parses.
func TestFilterKeepsBytes(t *testing.T) {
	in := Encode(sample())
	out, dropped, err := Filter(in, func(e Entry) bool { return strings.HasPrefix(e.Key, wuKey) && !e.IsInstruction() })
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 2 {
		t.Fatalf("dropped %d", len(dropped))
	}
	want := Encode([]Entry{sample()[2], sample()[3], sample()[4]})
	if !bytes.Equal(out, want) {
		t.Fatalf("filtered bytes differ")
	}
	if !bytes.HasPrefix(out, in[:HeaderSize]) {
		t.Error("header changed")
	}
	if _, err := Parse(out); err != nil {
		t.Fatal(err)
	}
	if out, _, _ := Filter(in, func(Entry) bool { return false }); !bytes.Equal(out, in) {
		t.Error("nothing dropped, bytes changed")
	}
}

func TestDamaged(t *testing.T) {
	good := Encode(sample())
	cases := map[string][]byte{
		"empty":     {},
		"signature": append([]byte("PRex"), good[4:]...),
		"version":   append([]byte("PReg\x02\x00\x00\x00"), good[8:]...),
		"truncated": good[:len(good)-1],
		"no-open":   append(append([]byte{}, good[:8]...), 'x', 0),
		"huge-size": func() []byte {
			b := Encode([]Entry{DWORDEntry("k", "v", 1)})
			// the size field: after [k\0;v\0;type;
			i := 8 + 2 + 4 + 2 + 4 + 2 + 4 + 2
			b[i], b[i+1], b[i+2], b[i+3] = 0xff, 0xff, 0xff, 0x7f
			return b
		}(),
	}
	for name, b := range cases {
		if _, err := Parse(b); err == nil {
			t.Errorf("%s: no error", name)
		}
		if _, _, err := Filter(b, func(Entry) bool { return true }); err == nil {
			t.Errorf("%s: Filter: no error", name)
		}
	}
	if f, err := Parse(good[:HeaderSize]); err != nil || len(f.Entries) != 0 {
		t.Errorf("header only: %v %v", f, err)
	}
	if _, err := Read(bytes.NewReader(nil), MaxFileSize+1); err == nil {
		t.Error("oversized: no error")
	}
}

// TestIndependentReader checks Encode and Filter output with
// testimages/pregread.py, a reader that shares no code with this package.
func TestIndependentReader(t *testing.T) {
	py := testutil.RequireTool(t, "python3")
	dir := t.TempDir()
	script := filepath.Join(testutil.RepoRoot(t), "testimages", "pregread.py")
	in := Encode(sample())
	out, _, err := Filter(in, func(e Entry) bool { return e.Value == "WUServer" })
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "Registry.pol")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := exec.Command(py, script, p).CombinedOutput()
	if err != nil {
		t.Fatalf("independent reader: %v\n%s", err, b)
	}
	var got []struct {
		Key, Value, Data string
		Type             uint32
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := sample()[1:]
	if len(got) != len(want) {
		t.Fatalf("independent reader: %d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Key != w.Key || got[i].Value != w.Value || got[i].Type != w.Type {
			t.Errorf("entry %d: %+v, want %s", i, got[i], w)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Encode(sample()))
	f.Add(Encode(nil))
	f.Add(Encode(sample()[:1])[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		pf, err := Parse(b)
		if err != nil {
			return
		}
		// The entries' raw bytes cover the file exactly, and Filter
		// keeping everything gives the input back.
		raw := append([]byte{}, b[:HeaderSize]...)
		for _, e := range pf.Entries {
			raw = append(raw, e.Raw...)
		}
		if !bytes.Equal(raw, b) {
			t.Fatalf("entries do not cover the file")
		}
		out, _, err := Filter(b, func(Entry) bool { return false })
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("Filter keeping all: %v", err)
		}
	})
}
