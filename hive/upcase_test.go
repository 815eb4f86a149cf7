package hive

import (
	"encoding/binary"
	"os/exec"
	"testing"
	"unicode"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

func TestUpcase(t *testing.T) {
	tests := []struct{ in, want rune }{
		{'a', 'A'}, {'z', 'Z'}, {'A', 'A'}, {'0', '0'}, {'_', '_'},
		{'à', 'À'}, {'ÿ', 'Ÿ'}, {'ā', 'Ā'}, {'я', 'Я'}, {'ё', 'Ё'},
		{'ß', 'ß'},                         // not expanded to SS, not mapped to ẞ
		{'ı', 'ı'},                         // dotless i stays (unicode.ToUpper gives I)
		{'ſ', 'ſ'},                         // long s stays (unicode.ToUpper gives S)
		{'ς', 'ς'},                         // final sigma stays (unicode.ToUpper gives Σ)
		{'ǅ', 'ǅ'},                         // titlecase digraph stays
		{'\u2170', '\u2160'},               // small roman numeral one
		{'\u24d0', '\u24b6'},               // circled a
		{'ａ', 'Ａ'},                         // fullwidth
		{0xD801, 0xD801}, {0xDC28, 0xDC28}, // surrogates are code units, left alone
		{0xFFFF, 0xFFFF},
	}
	for _, tt := range tests {
		if got := upcase(uint16(tt.in)); got != uint16(tt.want) {
			t.Errorf("upcase(U+%04X) = U+%04X, want U+%04X", tt.in, got, tt.want)
		}
	}
	// Windows' table and Go's disagree somewhere; the tests above pin
	// some of the places. Make sure the table is not simply Go's.
	diff := 0
	for c := 0; c < 0x10000; c++ {
		if c >= 0xD800 && c < 0xE000 {
			continue
		}
		g := unicode.ToUpper(rune(c))
		if g > 0xFFFF || uint16(g) != upcase(uint16(c)) {
			diff++
		}
	}
	if diff == 0 {
		t.Error("upcase equals unicode.ToUpper everywhere")
	}
	t.Logf("%d code units where Windows and Go upcase differ", diff)
}

// TestUpcaseTableFromFixture re-derives the table from the Windows 10 NTFS
// fixture with The Sleuth Kit's icat and compares all 65,536 entries with
// the generated table (the generator's input and output must agree).
func TestUpcaseTableFromFixture(t *testing.T) {
	icat := testutil.RequireTool(t, "icat")
	img := testutil.Decompress(t, testutil.SharedFixture(t, "ntfs/charlie.dd.bz2"), "")
	data, err := exec.Command(icat, img, "10").Output()
	if err != nil {
		t.Fatalf("icat: %v", err)
	}
	if len(data) != 131072 {
		t.Fatalf("$UpCase is %d bytes", len(data))
	}
	for c := 0; c < 0x10000; c++ {
		want := binary.LittleEndian.Uint16(data[2*c:])
		if got := upcase(uint16(c)); got != want {
			t.Fatalf("upcase(U+%04X) = U+%04X, $UpCase says U+%04X", c, got, want)
		}
	}
}

func TestCompareNamesAndHash(t *testing.T) {
	u := stringUnits
	tests := []struct {
		a, b string
		want int
	}{
		{"a", "A", 0}, {"a", "b", -1}, {"B", "a", 1}, {"ab", "a", 1}, {"", "a", -1},
		{"ss1", "SS3", -1}, {"SS3", "ß2", -1}, // UpcaseHive's order
		{"ı", "I", 1}, // U+0131 > U+0049
		{"Привет", "пРИВЕТ", 0},
		{"\U00010400", "SS3", 1},
	}
	for _, tt := range tests {
		if got := compareNames(u(tt.a), u(tt.b)); got != tt.want {
			t.Errorf("compareNames(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
	// lh hash: H = 37*H + upcase(c). "a" -> 'A' = 0x41.
	if h := nameHash(u("a")); h != 0x41 {
		t.Errorf("nameHash(a) = %#x", h)
	}
	if h := nameHash(u("ab")); h != 37*0x41+0x42 {
		t.Errorf("nameHash(ab) = %#x", h)
	}
	if nameHash(u("Key")) != nameHash(u("KEY")) {
		t.Error("hash is case-sensitive")
	}
}
