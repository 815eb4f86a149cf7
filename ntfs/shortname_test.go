package ntfs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// TestShortNameForms: the candidates Windows tries for a long name, in
// order, as the directory fills: ~1 to ~4 on six characters, then the
// hashed form from ~1 on, the base giving up characters for a longer index.
func TestShortNameForms(t *testing.T) {
	up := asciiUpCase()
	gen := func(long string, taken map[string]bool) string {
		s, err := shortName(encodeName(long), up, func(c []uint16) (bool, error) { return taken[string16(c)], nil })
		if err != nil {
			t.Fatal(err)
		}
		return string16(s)
	}
	// Worked out by hand from the checksum's definition (see shortNameHash).
	hash := "F578"
	if got := string16(shortNameHash(encodeName("Program Files (x86)"))); got != hash {
		t.Fatalf("checksum of \"Program Files (x86)\": %s, want %s", got, hash)
	}
	taken := map[string]bool{}
	var got []string
	for i := 0; i < 7; i++ {
		s := gen("Program Files (x86)", taken)
		taken[s] = true
		got = append(got, s)
	}
	want := []string{"PROGRA~1", "PROGRA~2", "PROGRA~3", "PROGRA~4", "PR" + hash + "~1", "PR" + hash + "~2", "PR" + hash + "~3"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v, want %v", got, want)
	}
	for i := 4; i <= 9; i++ {
		taken[fmt.Sprintf("PR%s~%d", hash, i)] = true
	}
	if s := gen("Program Files (x86)", taken); s != "PR"+hash[:3]+"~10" {
		t.Errorf("after ~9: %s, want the base cut for ~10", s)
	}
	for _, c := range []struct{ long, want string }{
		{"cbs00LLLLLLLL.log", "CBS00L~1.LOG"},
		{"a+b=c;d.manifest", "A_B_C_~1.MAN"},
		{"ünïcödé name.txt", "NCDNAM~1.TXT"}, // non-ASCII dropped
		{"x.tar.gz", "XTAR~1.GZ"},
		{".hidden file", "HIDDEN~1"},
		{"ab.long extension", "AB8E43~1.LON"}, // base of two: hashed at once
	} {
		if s := gen(c.long, map[string]bool{}); s != c.want {
			t.Errorf("%q: %s, want %s", c.long, s, c.want)
		}
	}
	// The checksum's edge cases: empty, one and two code units.
	if h := string16(shortNameHash(nil)); h != "0000" {
		t.Errorf("hash of empty name: %s", h)
	}
	if h := string16(shortNameHash([]uint16{0x41})); h != "41C5" {
		t.Errorf("hash of \"A\": %s", h)
	}
}

// TestShortNamesOnVolume renames files that had DOS names (set through
// ntfs-3g) to long names sharing a prefix in one directory: the writer
// gives them ~1..~4 and then hashed short names, each unique; ntfs-3g
// reads every DOS name back (system.ntfs_dos_name) and fls lists them.
func TestShortNamesOnVolume(t *testing.T) {
	testutil.RequireTool(t, "setfattr")
	testutil.RequireTool(t, "getfattr")
	v := wtMakeVolume(t, 32<<20, "-s", "512", "-c", "4096")
	mp, unmount := wtMount(t, v.path, false)
	os.Mkdir(filepath.Join(mp, "d"), 0o755)
	for i := 0; i < 7; i++ {
		p := filepath.Join(mp, "d", fmt.Sprintf("f%d", i))
		os.WriteFile(p, []byte("x"), 0o644)
		if out, err := exec.Command("setfattr", "-h", "-n", "system.ntfs_dos_name", "-v", fmt.Sprintf("F%d", i), p).CombinedOutput(); err != nil {
			t.Fatalf("setfattr: %v %s", err, out)
		}
	}
	unmount()
	w := wtWriter(t, v.path)
	for i := 0; i < 7; i++ {
		if _, err := w.Rename(fmt.Sprintf("d/f%d", i), fmt.Sprintf("d/Servicing Stack Update %d.cab", i)); err != nil {
			t.Fatal(err)
		}
	}
	wtCheckAll(t, v.path)
	mp, unmount = wtMount(t, v.path, true)
	defer unmount()
	seen := map[string]bool{}
	for i := 0; i < 7; i++ {
		out, err := exec.Command("getfattr", "-h", "--only-values", "-n", "system.ntfs_dos_name", filepath.Join(mp, "d", fmt.Sprintf("Servicing Stack Update %d.cab", i))).Output()
		if err != nil {
			t.Fatalf("getfattr %d: %v", i, err)
		}
		dos := strings.TrimRight(string(out), "\x00\n")
		want := fmt.Sprintf("SERVIC~%d.CAB", i+1)
		if i >= 4 {
			want = fmt.Sprintf("SE%s~%d.CAB", string16(shortNameHash(encodeName(fmt.Sprintf("Servicing Stack Update %d.cab", i)))), 1)
		}
		if dos != want {
			t.Errorf("file %d: ntfs-3g reads DOS name %q, want %q", i, dos, want)
		}
		if seen[dos] {
			t.Errorf("DOS name %q twice", dos)
		}
		seen[dos] = true
	}
	// istat lists every $FILE_NAME of the record, the DOS one included.
	for i := 0; i < 7; i++ {
		num := wtNum(t, w, fmt.Sprintf("d/Servicing Stack Update %d.cab", i))
		out := string(testutil.Run(t, "istat", v.path, fmt.Sprint(num)))
		n := 0
		for dos := range seen {
			if strings.Contains(out, "Name: "+dos) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("istat %d lists %d of the DOS names:\n%s", num, n, out)
		}
	}
}
