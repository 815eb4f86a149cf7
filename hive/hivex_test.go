package hive

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// TestHivexWrittenTypes has hivex (independent C code) write values of
// every kind into hivex's minimal hive, then reads them back. It also pins
// a hivex defect the checker must catch: hivex stores data longer than
// 16344 bytes in one cell even in a version 1.5 hive, where Windows
// expects a "db" record (regfinfo fails on the result too).
func TestHivexWrittenTypes(t *testing.T) {
	tool := testutil.RequireTool(t, "hivexregedit")
	src, err := os.ReadFile(testutil.SharedFixture(t, "hives/hivex/minimal"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "t.hive")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	big := strings.TrimSuffix(strings.Repeat("41,", 20000), ",")
	reg := "Windows Registry Editor Version 5.00\n\n[\\Types]\n" +
		"\"none\"=hex(0):01,02\n" +
		"\"sz\"=hex(1):61,00,62,00,00,00,63,00\n" +
		"\"multi\"=hex(7):61,00,00,00,62,00,63,00,00,00,00,00\n" +
		"\"dword\"=dword:01020304\n" +
		"\"dwbe\"=hex(5):01,02,03,04\n" +
		"\"link\"=hex(6):5c,00,52,00\n" +
		"\"qword\"=hex(b):01,02,03,04,05,06,07,08\n" +
		"\"unknown\"=hex(12345):ff,ee\n" +
		"\"empty\"=hex(3):\n" +
		"\"big\"=hex(3):" + big + "\n" +
		"@=hex(2):25,00,00,00\n"
	regPath := filepath.Join(dir, "t.reg")
	if err := os.WriteFile(regPath, []byte(reg), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, tool, "--merge", path, "--prefix", "", regPath)

	h, err := openFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := h.OpenKey("TYPES")
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string) *Value {
		v, err := k.Value(name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		typ  ValueType
		data []byte
	}{
		{"none", RegNone, []byte{1, 2}},
		{"dwbe", RegDWORDBigEndian, []byte{1, 2, 3, 4}},
		{"link", RegLink, []byte{0x5c, 0, 0x52, 0}},
		{"qword", RegQWORD, []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{"unknown", ValueType(0x12345), []byte{0xff, 0xee}},
		{"empty", RegBinary, []byte{}},
		{"big", RegBinary, bytes.Repeat([]byte{0x41}, 20000)},
		{"", RegExpandSZ, []byte{0x25, 0, 0, 0}},
	}
	for _, tt := range tests {
		v := get(tt.name)
		d, err := v.Data()
		if v.Type() != tt.typ || err != nil || !bytes.Equal(d, tt.data) {
			t.Errorf("%q: %v %d bytes %v; want %v %d bytes", tt.name, v.Type(), len(d), err, tt.typ, len(tt.data))
		}
	}
	if s := ValueType(0x12345).String(); s != "0x12345" {
		t.Errorf("unknown type String() = %q", s)
	}
	if s, err := get("sz").Text(); err != nil || s != "ab" {
		t.Errorf("sz: %q, %v (text after the NUL must be dropped)", s, err)
	}
	if s, err := get("link").Text(); err != nil || s != `\R` {
		t.Errorf("link: %q, %v", s, err)
	}
	if s, err := get("").Text(); err != nil || s != "%" {
		t.Errorf("default: %q, %v", s, err)
	}
	if ss, err := get("multi").MultiText(); err != nil || strings.Join(ss, "|") != "a|bc" {
		t.Errorf("multi: %q, %v", ss, err)
	}
	if x, err := get("dword").Uint32(); err != nil || x != 0x01020304 {
		t.Errorf("dword: %#x, %v", x, err)
	}
	if x, err := get("dwbe").Uint32(); err != nil || x != 0x01020304 {
		t.Errorf("dwbe: %#x, %v", x, err)
	}
	if x, err := get("qword").Uint64(); err != nil || x != 0x0807060504030201 {
		t.Errorf("qword: %#x, %v", x, err)
	}
	if _, err := get("none").Uint32(); err == nil {
		t.Error("2-byte REG_NONE read as a DWORD")
	}

	r := h.Check()
	if got := codes(r, Error); strings.Join(got, ",") != "value-bigdata" {
		t.Errorf("checker errors %q, want only value-bigdata:\n%s", got, r)
	}
}

// TestHivexLhHashes pins the other hivex defect formats.md names: its lh
// hashes for non-ASCII names are not Windows' (not even ASCII-only upcase:
// sign-extended bytes). The checker must report each; a lookup by name,
// which like Windows trusts the lh hash, misses those keys while
// enumeration still lists them.
func TestHivexLhHashes(t *testing.T) {
	tool := testutil.RequireTool(t, "hivexregedit")
	src, err := os.ReadFile(testutil.SharedFixture(t, "hives/hivex/minimal"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "u.hive")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	reg := "Windows Registry Editor Version 5.00\n\n[\\б]\n\n[\\А]\n\n[\\аб]\n\n[\\z]\n"
	regPath := filepath.Join(dir, "u.reg")
	if err := os.WriteFile(regPath, []byte(reg), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, tool, "--merge", path, "--prefix", "", "--encoding", "UTF-8", regPath)
	h, err := openFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	root, err := h.Root()
	if err != nil {
		t.Fatal(err)
	}
	subs, err := root.Subkeys()
	if err != nil || strings.Join(names(subs), ",") != "z,А,аб,б" {
		t.Fatalf("Subkeys = %q, %v", names(subs), err)
	}
	if _, err := h.OpenKey("z"); err != nil {
		t.Errorf("ASCII key: %v", err)
	}
	if _, err := h.OpenKey("б"); err == nil {
		t.Error("key with a wrong lh hash found by lookup; Windows would not find it")
	}
	r := h.Check()
	n := 0
	for _, f := range r.Findings {
		if f.Code == "lh-hash" {
			n++
		}
	}
	if n != 3 || len(r.Problems()) != 3 {
		t.Errorf("%d lh-hash findings, want 3:\n%s", n, r)
	}
}
