package hive

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// reglookupTypes maps our types to reglookup's TYPE column.
var reglookupTypes = map[ValueType]string{
	RegNone: "NONE", RegSZ: "SZ", RegExpandSZ: "EXPAND_SZ", RegBinary: "BINARY",
	RegDWORD: "DWORD", RegDWORDBigEndian: "DWORD_BE", RegLink: "LINK", RegMultiSZ: "MULTI_SZ",
	RegResourceList: "RSRC_LIST", RegFullResourceDescriptor: "RSRC_DESC",
	RegResourceRequirementsList: "RSRC_REQ_LIST", RegQWORD: "QWORD",
}

// unescapeReglookup undoes reglookup's %XX quoting of one field.
func unescapeReglookup(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if x, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b = append(b, byte(x))
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
}

// walkLines renders every key and value of h in the shape of reglookup's
// PATH,TYPE,VALUE,MTIME lines, with VALUE only for DWORD/QWORD (the
// numbers; other data is compared by the hivexregedit test).
func walkLines(t *testing.T, h *Hive) []string {
	t.Helper()
	root, err := h.Root()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(k *Key, path string)
	walk = func(k *Key, path string) {
		kp := path
		if kp == "" {
			kp = "/"
		}
		out = append(out, fmt.Sprintf("%s,KEY,,%s", kp, k.LastWritten().Format("2006-01-02 15:04:05")))
		vs, err := k.Values()
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			typ, ok := reglookupTypes[v.Type()]
			if !ok {
				typ = fmt.Sprintf("0x%.8X", uint32(v.Type()))
			}
			val := ""
			switch v.Type() {
			case RegDWORD, RegDWORDBigEndian:
				if x, err := v.Uint32(); err == nil {
					val = fmt.Sprintf("0x%.8X", x)
				}
			case RegQWORD:
				if x, err := v.Uint64(); err == nil {
					val = fmt.Sprintf("0x%.16X", x)
				}
			}
			if _, err := v.Data(); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s/%s,%s,%s,", path, v.Name(), typ, val))
		}
		subs, err := k.Subkeys()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range subs {
			walk(s, path+"/"+s.Name())
		}
	}
	walk(root, "")
	return out
}

// TestReglookupSYSTEM compares a walk of a real SYSTEM hive (11.7 MB) with
// reglookup's export (libregf-independent C code): every key with its
// last-write time, every value with its type, DWORD and QWORD numbers.
func TestReglookupSYSTEM(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	tool := testutil.RequireTool(t, "reglookup")
	path := testutil.Decompress(t, testutil.SharedFixture(t, "hives/regipy/SYSTEM.xz"), "")
	h, err := openFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	ours := walkLines(t, h)

	theirs := reglookupLines(t, tool, path)
	compareLines(t, ours, theirs)
	t.Logf("%d keys and values agree with reglookup", len(ours))
}

// regExport renders h the way `hivexregedit --export HIVE '\'` does: every
// key (stored order, depth first) with every value's data in hex.
func regExport(t *testing.T, h *Hive) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("Windows Registry Editor Version 5.00\n\n")
	root, err := h.Root()
	if err != nil {
		t.Fatal(err)
	}
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	var walk func(k *Key, path string)
	walk = func(k *Key, path string) {
		line(&b, fmt.Sprintf("[\\%s]", path))
		vs, err := k.Values()
		if err != nil {
			t.Fatal(err)
		}
		// hivexregedit sorts values and keys by name (code points).
		sort.SliceStable(vs, func(i, j int) bool { return vs[i].Name() < vs[j].Name() })
		for _, v := range vs {
			var lb strings.Builder
			if v.Name() == "" {
				lb.WriteString("@=")
			} else {
				fmt.Fprintf(&lb, "\"%s\"=", esc.Replace(v.Name()))
			}
			d, err := v.Data()
			if err != nil {
				t.Fatal(err)
			}
			if v.Type() == RegDWORD && len(d) == 4 {
				x, _ := v.Uint32()
				fmt.Fprintf(&lb, "dword:%08x", x)
				line(&b, lb.String())
				continue
			}
			fmt.Fprintf(&lb, "hex(%x):", uint32(v.Type()))
			for i, c := range d {
				if i > 0 {
					lb.WriteByte(',')
				}
				fmt.Fprintf(&lb, "%02x", c)
			}
			line(&b, lb.String())
		}
		b.WriteByte('\n')
		subs, err := k.Subkeys()
		if err != nil {
			t.Fatal(err)
		}
		sort.SliceStable(subs, func(i, j int) bool { return subs[i].Name() < subs[j].Name() })
		for _, s := range subs {
			p := s.Name()
			if path != "" {
				p = path + `\` + p
			}
			walk(s, p)
		}
	}
	walk(root, "")
	return b.String()
}

// line writes s and a newline as Perl prints a string: all in UTF-8 when it
// holds a character above U+00FF, else one byte per character (Latin-1).
func line(b *strings.Builder, s string) {
	wide := false
	for _, r := range s {
		if r > 0xFF {
			wide = true
		}
	}
	if wide {
		b.WriteString(s)
	} else {
		for _, r := range s {
			b.WriteByte(byte(r))
		}
	}
	b.WriteByte('\n')
}

// TestHivexExport compares every byte of every value with hivexregedit's
// export (libhivex, independent C code), for real and crafted hives.
// (System_Delta is left out: hivexregedit itself fails on its tombstone
// values with "value_value: Bad address".)
func TestHivexExport(t *testing.T) {
	tool := testutil.RequireTool(t, "hivexregedit")
	files := []string{
		"hives/yarp/StringValuesHive", "hives/yarp/BigDataHive", "hives/yarp/MultiSzHive",
		"hives/yarp/UnicodeHive", "hives/yarp/ManySubkeysHive",
		"hives/yarp/ExtendedASCIIHive", "hives/yarp/TwoOwnersHive", "hives/hivex/minimal",
		"hives/hivex/special", "hives/hivex/rlenvalue_test_hive",
	}
	if !testing.Short() {
		files = append(files, "hives/regipy/SYSTEM.xz", "hives/regipy/NTUSER.DAT.xz", "hives/regipy/SAM.xz")
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			path := testutil.Decompress(t, testutil.SharedFixture(t, f), "")
			h, err := openFile(t, path)
			if err != nil {
				t.Fatal(err)
			}
			ours := regExport(t, h)
			theirs, err := exec.Command(tool, "--export", path, `\`).Output()
			if err != nil {
				t.Fatalf("hivexregedit: %v", err)
			}
			if ours == string(theirs) {
				return
			}
			ol, tl := strings.Split(ours, "\n"), strings.Split(string(theirs), "\n")
			for i := 0; i < max(len(ol), len(tl)); i++ {
				var a, b string
				if i < len(ol) {
					a = ol[i]
				}
				if i < len(tl) {
					b = tl[i]
				}
				if a != b {
					t.Fatalf("line %d differs:\nours:   %.200q\nhivex:  %.200q", i+1, a, b)
				}
			}
		})
	}
}

// TestRegfexportClasses compares every key's class name in the real SYSTEM
// hive with regfexport's (libregf, independent C code): the 14 keys that
// have one (the Lsa JD/Skew1/GBG/Data boot-key parts among them).
func TestRegfexportClasses(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	tool := testutil.RequireTool(t, "regfexport")
	path := testutil.Decompress(t, testutil.SharedFixture(t, "hives/regipy/SYSTEM.xz"), "")
	out, err := exec.Command(tool, path).Output()
	if err != nil {
		t.Fatalf("regfexport: %v", err)
	}
	theirs := map[string]string{}
	cur := ""
	for _, l := range strings.Split(string(out), "\n") {
		if p, ok := strings.CutPrefix(l, "Key path: "); ok {
			_, cur, _ = strings.Cut(p, `\`) // drop the root key's name
		} else if c, ok := strings.CutPrefix(l, "Class name: "); ok {
			theirs[cur] = c
		}
	}
	h, err := openFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	ours := map[string]string{}
	if err := h.Walk(func(k *Key) error {
		c, err := k.ClassName()
		if c != "" {
			ours[k.Path()] = c
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(theirs) != 14 || len(ours) != len(theirs) {
		t.Errorf("%d class names, regfexport %d", len(ours), len(theirs))
	}
	for p, c := range theirs {
		if ours[p] != c {
			t.Errorf("%s: class %q, regfexport %q", p, ours[p], c)
		}
	}
	if c := ours[`ControlSet001\Control\Lsa\JD`]; c != "67cd88ed" {
		t.Errorf("JD class %q", c)
	}
}

// reglookupLines runs reglookup on path and returns its lines in the shape
// of walkLines.
func reglookupLines(t *testing.T, tool, path string) []string {
	t.Helper()
	cmd := exec.Command(tool, path)
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("reglookup: %v", err)
	}
	var theirs []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<24)
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue // header
		}
		f := strings.Split(sc.Text(), ",")
		if len(f) != 4 {
			t.Fatalf("reglookup line %q", sc.Text())
		}
		parts := strings.Split(f[0], "/")
		for i := range parts {
			parts[i] = unescapeReglookup(parts[i])
		}
		p := strings.Join(parts, "/")
		switch f[1] {
		case "KEY":
			theirs = append(theirs, fmt.Sprintf("%s,KEY,,%s", p, f[3]))
		case "DWORD", "DWORD_BE", "QWORD":
			theirs = append(theirs, fmt.Sprintf("%s,%s,%s,", p, f[1], f[2]))
		default:
			theirs = append(theirs, fmt.Sprintf("%s,%s,,", p, f[1]))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return theirs
}

// compareLines compares walkLines output with reglookupLines output.
func compareLines(t *testing.T, ours, theirs []string) {
	t.Helper()
	sort.Strings(ours)
	sort.Strings(theirs)
	if len(ours) != len(theirs) {
		t.Errorf("%d lines from our walk, %d from reglookup", len(ours), len(theirs))
	}
	diff := 0
	for i, j := 0, 0; i < len(ours) || j < len(theirs); {
		switch {
		case j >= len(theirs) || (i < len(ours) && ours[i] < theirs[j]):
			t.Errorf("only ours:      %q", ours[i])
			i++
			diff++
		case i >= len(ours) || theirs[j] < ours[i]:
			t.Errorf("only reglookup: %q", theirs[j])
			j++
			diff++
		default:
			i++
			j++
		}
		if diff > 20 {
			t.Fatal("too many differences")
		}
	}
}
