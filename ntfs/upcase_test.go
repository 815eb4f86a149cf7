package ntfs

import (
	"io/fs"
	"strings"
	"testing"
	"unicode/utf16"
)

// TestUpCaseWindows checks Compare/EqualFold with the $UpCase table of the
// Windows 10 fixture, where it differs from Go's case folding.
func TestUpCaseWindows(t *testing.T) {
	v := rdOpenImage(t, rdFixtureImage(t, "charlie"))
	raw, err := fs.ReadFile(v.FS(), "$UpCase")
	if err != nil {
		t.Fatal(err)
	}
	up, err := ParseUpCase(raw)
	if err != nil {
		t.Fatal(err)
	}
	if *up != *v.UpCase() {
		t.Fatal("Volume.UpCase differs from $UpCase read through FS")
	}
	u := func(s string) []uint16 { return utf16.Encode([]rune(s)) }
	tests := []struct {
		a, b    string
		fold    bool
		compare int
		goFold  bool // what strings.EqualFold says, for contrast
	}{
		{"windows", "WINDOWS", true, 1, true},
		{"Überprüfung", "üBERPRÜFUNG", true, -1, true},
		{"ſ", "S", false, 1, true},   // U+017F long s: Windows leaves it alone
		{"ı", "I", false, 1, false},  // dotless i
		{"ς", "Σ", false, 1, true},   // final sigma is not upcased by Windows
		{"ß", "SS", false, 1, false}, // no expansion
		{"a", "ab", false, -1, false},
		{"ab", "a", false, 1, false},
		{"", "", true, 0, true},
		{"_", "a", false, 1, false}, // 0x5F sorts after upcased 'A' (0x41)
	}
	for _, tt := range tests {
		if got := up.EqualFold(u(tt.a), u(tt.b)); got != tt.fold {
			t.Errorf("EqualFold(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.fold)
		}
		if got := up.Compare(u(tt.a), u(tt.b)); got != tt.compare {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.compare)
		}
		if strings.EqualFold(tt.a, tt.b) != tt.goFold {
			t.Errorf("strings.EqualFold(%q, %q) changed", tt.a, tt.b)
		}
	}

	// Windows wrote the root index of charlie: its entries must be in
	// strictly increasing Compare order.
	rec, _, err := v.lookup("test", ".")
	if err != nil {
		t.Fatal(err)
	}
	ix, err := v.openIndex(rec)
	if err != nil {
		t.Fatal(err)
	}
	all, err := ix.all()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 10 {
		t.Fatalf("root index has %d entries", len(all))
	}
	for i := 1; i < len(all); i++ {
		if up.Compare(all[i-1].name, all[i].name) >= 0 {
			t.Errorf("root index order: %q before %q", string(utf16.Decode(all[i-1].name)), string(utf16.Decode(all[i].name)))
		}
	}
}

func TestParseUpCaseSize(t *testing.T) {
	for _, n := range []int{0, 2, 2*UpCaseEntries - 2, 2*UpCaseEntries + 2} {
		if _, err := ParseUpCase(make([]byte, n)); err == nil {
			t.Errorf("ParseUpCase(%d bytes) succeeded", n)
		}
	}
}
