package hive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	ftime "github.com/wuoffline/wuoffline/internal/filetime"
)

// names returns the keys' names.
func names(ks []*Key) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.Name())
	}
	return out
}

// TestOpenKey checks path lookups from yarp's EXPECTED.md: case-insensitive
// with Windows upcase, leading backslash allowed, stored case returned.
func TestOpenKey(t *testing.T) {
	tests := []struct {
		file, path string
		want       string // Path() of the key found; "" with notFound
		notFound   bool
	}{
		{"ManySubkeysHive", `key_with_MAny_subkeys\2119\find_me`, `key_with_many_subkeys\2119\find_me`, false},
		{"ManySubkeysHive", `\key_with_maNY_sUBkeys\2119\Find_me`, `key_with_many_subkeys\2119\find_me`, false},
		{"ManySubkeysHive", `key_with_many_subkeys\3000`, `key_with_many_subkeys\3000`, false},
		{"ManySubkeysHive", `key_with_many_subkeys\1`, `key_with_many_subkeys\1`, false},
		{"ManySubkeysHive", `key_with_many_subkeys\999`, `key_with_many_subkeys\999`, false},
		{"ManySubkeysHive", `key_with_many_subkeys\0`, "", true},
		{"ManySubkeysHive", `key_with_many_subkeys\9999`, "", true},
		{"ManySubkeysHive", `key_with_many_subkeys\3000\doesnt_exist`, "", true},
		{"ManySubkeysHive", `key_with_many_subkeys\doesnt_exist\doesnt_exist`, "", true},
		{"UnicodeHive", `ПриВет\КлюЧ`, `Привет\Ключ`, false},
		{"UnicodeHive", `\ПриВет\КлюЧ`, `Привет\Ключ`, false},
		{"UnicodeHive", `привет`, `Привет`, false},
		{"UnicodeHive", `\привеТ`, `Привет`, false},
		{"BogusKeyNamesHive", "testnew\r\nne", "testnew\r\nne", false},
		{"BogusKeyNamesHive", "testnu\x00l", "testnu\x00l", false},
		{"ExtendedASCIIHive", "ËIGENAARDIG", "ëigenaardig", false},
		{"CompHive", "\u009f\\123", "\u009f\\123", false},
		{"CompHive", "\u0178", "\u0178", false},
		{"CompHive", "\u00ff", "\u0178", false}, // ÿ upcases to Ÿ (U+0178), never to U+009F
		{"PairHive", "\U00010400", "\U00010400", false},
		{"TruncatedPairHive", "\uFFFD", "\uFFFD", false},
		{"TruncatedPairHive2", "key\uFFFD", "key\uFFFD", false},
		{"UpcaseHive", "SS1", "ss1", false},
		{"UpcaseHive", "ß2", "ß2", false},
		{"UpcaseHive", "SS2", "", true}, // ß is not expanded to SS
		{"EmptyHive", "", "", false},
		{"EmptyHive", `\`, "", false},
		{"EmptyHive", "x", "", true},
		{"NewDirtyHive1/NewDirtyHive", `Key2\Key2_2`, `Key2\Key2_2`, false},
		{"NewDirtyHive1/NewDirtyHive", `Key2\Key2_2\doesnt_exist`, "", true},
		{"BigDataHive", "KEY_WITH_BIGDATA", "key_with_bigdata", false},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.path, func(t *testing.T) {
			h := mustOpen(t, tt.file)
			k, err := h.OpenKey(tt.path)
			if tt.notFound {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("OpenKey(%q) = %v, want ErrNotFound", tt.path, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("OpenKey(%q): %v", tt.path, err)
			}
			if k.Path() != tt.want {
				t.Errorf("Path() = %q, want %q", k.Path(), tt.want)
			}
		})
	}
}

// TestSubkeyOrder checks the stored order and that Subkeys accepts it.
func TestSubkeyOrder(t *testing.T) {
	tests := []struct {
		file, path string
		want       []string
	}{
		{"UpcaseHive", "", []string{"ss1", "SS3", "ß2"}},
		{"PairHive", "", []string{"ss1", "SS3", "\U00010400"}},
		{"TruncatedPairHive", "", []string{"ss1", "SS3", "\uFFFD"}},
		{"TruncatedPairHive2", "", []string{"key1", "key2", "key3", "key\uFFFD", "key\uFFFD"}},
		{"CompHive", "", []string{"\u009f", "\u0178"}},
		{"BogusKeyNamesHive", "", []string{"testnew\r\nne", "testnu\x00l"}},
		{"EmptyHive", "", nil},
		{"DeletedTreeHive", "1", []string{"2"}},
		{"System_Delta", "", []string{"ControlSet001", "MountedDevices"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			k, err := mustOpen(t, tt.file).OpenKey(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			subs, err := k.Subkeys()
			if err != nil {
				t.Fatal(err)
			}
			if got := names(subs); !slices.Equal(got, tt.want) {
				t.Errorf("Subkeys = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestManySubkeys checks an ri list of 9 li leaves holding 5000 keys.
func TestManySubkeys(t *testing.T) {
	k, err := mustOpen(t, "ManySubkeysHive").OpenKey("key_with_many_subkeys")
	if err != nil {
		t.Fatal(err)
	}
	subs, err := k.Subkeys()
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 5000 || k.SubkeyCount() != 5000 {
		t.Fatalf("%d subkeys (declared %d), want 5000", len(subs), k.SubkeyCount())
	}
	if subs[0].Name() != "1" || subs[1].Name() != "10" || subs[4999].Name() != "999" {
		t.Errorf("order: %q %q ... %q", subs[0].Name(), subs[1].Name(), subs[4999].Name())
	}
	// Every key is found by lookup (binary search over the ri).
	for _, s := range subs {
		if _, err := k.Subkey(s.Name()); err != nil {
			t.Fatalf("Subkey(%q): %v", s.Name(), err)
		}
	}
}

// TestWalkErrors checks the typed errors for damaged trees (EXPECTED.md).
func TestWalkErrors(t *testing.T) {
	tests := []struct {
		file, path string
		wantN      int   // subkeys returned before the error
		want       error // sentinel
		off        uint32
	}{
		{"WrongOrderHive", "1", 1, ErrOrder, 0x370},
		{"WrongOrderHive", "2", 3, ErrOrder, 0x5e8},
		{"BadListHive", "2", 0, ErrParent, 0x470},
		{"BadSubkeyHive", "2", 0, ErrParent, 0x470},
		{"DuplicateSubkeysHive", "key_with_many_subkeys", 3892, ErrDuplicate, 0x6ade0},
		{"InvalidParentHive", "key_with_many_subkeys", 4335, ErrParent, 0x74b08},
		{"TruncatedNameHive", "", 0, ErrRecord, 0},
		{"TruncatedDirtyHive", "key_with_many_subkeys", 0, ErrCellOffset, 0},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.path, func(t *testing.T) {
			k, err := mustOpen(t, tt.file).OpenKey(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			subs, err := k.Subkeys()
			if !errors.Is(err, tt.want) {
				t.Fatalf("Subkeys: %v, want %v", err, tt.want)
			}
			if len(subs) != tt.wantN {
				t.Errorf("%d subkeys before the error, want %d", len(subs), tt.wantN)
			}
			var ce *CellError
			var ke *KeyError
			if !errors.As(err, &ce) || !errors.As(err, &ke) {
				t.Fatalf("error %v is not a *KeyError wrapping a *CellError", err)
			}
			if tt.off != 0 && ce.Offset != tt.off {
				t.Errorf("CellError.Offset = 0x%x, want 0x%x", ce.Offset, tt.off)
			}
			if ke.Path != tt.path || !strings.HasPrefix(err.Error(), "hive: ") {
				t.Errorf("message %q does not name key %q", err, tt.path)
			}
		})
	}
}

// TestValueErrors checks value lists pointing beyond the bins.
func TestValueErrors(t *testing.T) {
	k, err := mustOpen(t, "DeletedDataHiveTruncated").OpenKey("123")
	if err != nil {
		t.Fatal(err)
	}
	_, err = k.Values()
	var ce *CellError
	if !errors.Is(err, ErrCellOffset) || !errors.As(err, &ce) || ce.Offset != 0x100290 {
		t.Fatalf("Values: %v, want a cell-offset error at 0x100290", err)
	}
	if want := `hive: key "123": value list at 0x100290: `; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q, want prefix %q", err, want)
	}
}

// TestOpenErrors checks files that must not open.
func TestOpenErrors(t *testing.T) {
	tests := []struct {
		file string
		logs []string
		want error
	}{
		{"TruncatedHive", nil, ErrTruncated},
		{"InvalidParentFragment", nil, ErrBaseBlock},
		{"TruncatedHiveBin", nil, ErrTruncated},
		{"NewDirtyHive1/NewDirtyHive.LOG1", nil, ErrBaseBlock},
		{"BadLogHive1/BadLogHive", []string{"BadLogHive1/BadLogHive.LOG1", "BadLogHive1/BadLogHive.LOG2"}, ErrDirty},
		{"BadLogHive2/BadLogHive", []string{"BadLogHive2/BadLogHive.LOG1", "BadLogHive2/BadLogHive.LOG2"}, ErrDirty},
		{"BadLogHive3/BadLogHive", []string{"BadLogHive3/BadLogHive.LOG1", "BadLogHive3/BadLogHive.LOG2"}, ErrDirty},
		{"BadBaseBlockHive/BadBaseBlockHive", nil, ErrDirty},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var lp []string
			for _, l := range tt.logs {
				lp = append(lp, yarp(t, l))
			}
			_, err := openFile(t, yarp(t, tt.file), lp...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open: %v, want %v", err, tt.want)
			}
		})
	}
}

// TestDirty checks dirty hives with and without their logs.
func TestDirty(t *testing.T) {
	// New-format logs: both applied, the tree changes (EXPECTED.md).
	h := mustOpen(t, "NewDirtyHive1/NewDirtyHive", "NewDirtyHive1/NewDirtyHive.LOG1", "NewDirtyHive1/NewDirtyHive.LOG2")
	if !h.Dirty() || !h.Recovered() {
		t.Fatalf("Dirty=%v Recovered=%v, want both", h.Dirty(), h.Recovered())
	}
	for _, p := range []string{"Key3", `Key3\Key3_1`, `Key3\Key3_2`, `Key3\Key3_3`} {
		if _, err := h.OpenKey(p); err != nil {
			t.Errorf("after recovery: %v", err)
		}
	}
	for _, p := range []string{"Key1", `Key2\Key2_1`, `Key3\Key3_2\doesnt_exist`} {
		if _, err := h.OpenKey(p); !errors.Is(err, ErrNotFound) {
			t.Errorf("after recovery, OpenKey(%q) = %v, want ErrNotFound", p, err)
		}
	}
	k, _ := h.OpenKey("Key3")
	if v, err := k.Value(""); err != nil {
		t.Error(err)
	} else if d, err := v.Data(); err != nil || len(d) != 2882 {
		t.Errorf("Key3 default: %d bytes, %v; want 2882", len(d), err)
	}
	// The same primary without logs: dirty, read as it is.
	h = mustOpen(t, "NewDirtyHive1/NewDirtyHive")
	if !h.Dirty() || h.Recovered() {
		t.Fatalf("no logs: Dirty=%v Recovered=%v", h.Dirty(), h.Recovered())
	}
	if _, err := h.OpenKey(`Key2\Key2_2`); err != nil {
		t.Error(err)
	}
	// Old-format log.
	h = mustOpen(t, "OldDirtyHive/OldDirtyHive", "OldDirtyHive/OldDirtyHive.LOG1", "OldDirtyHive/OldDirtyHive.LOG2")
	if !h.Recovered() {
		t.Fatal("OldDirtyHive not recovered")
	}
	if _, err := h.OpenKey(`key_with_many_subkeys\1`); !errors.Is(err, ErrNotFound) {
		t.Errorf("key 1 after recovery: %v", err)
	}
	fm, err := h.OpenKey(`key_with_many_subkeys\5000\find_me_in_log`)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(0, 0).Add(0); fm.LastWritten().Equal(want) {
		t.Error("no timestamp")
	}
	if got, want := fm.LastWritten(), ftime.ToTime(131332436868856000); !got.Equal(want) {
		t.Errorf("find_me_in_log written %v, want %v", got, want)
	}
	k, err = h.OpenKey(`key_with_many_subkeys\4500`)
	if err != nil {
		t.Fatal(err)
	}
	v, err := k.Value("V")
	if err != nil {
		t.Fatal(err)
	}
	if ss, err := v.MultiText(); err != nil || !slices.Equal(ss, []string{"a", "bb", "ccc"}) {
		t.Errorf("MultiText = %q, %v", ss, err)
	}
	// Bad base block: recovered from the log's base block.
	h = mustOpen(t, "BadBaseBlockHive/BadBaseBlockHive", "BadBaseBlockHive/BadBaseBlockHive.LOG1", "BadBaseBlockHive/BadBaseBlockHive.LOG2")
	if !h.Recovered() || h.Minor() != 3 {
		t.Errorf("BadBaseBlockHive: Recovered=%v minor=%d", h.Recovered(), h.Minor())
	}
	if _, err := h.OpenKey("key_with_many_subkeys"); err != nil {
		t.Error(err)
	}
	// Dirty by checksum; the bins size comes from the bins present.
	for _, f := range []struct {
		name string
		bins uint32
	}{{"EffectiveSizeHive", 487424}, {"GarbageHive", 4096}, {"TruncatedDirtyHive", 8192}} {
		h := mustOpen(t, f.name)
		if !h.Dirty() {
			t.Errorf("%s: not dirty", f.name)
		}
		if n, err := h.HiveBinsSize(); err != nil || n != f.bins {
			t.Errorf("%s: hive-bins size %d, %v; want %d", f.name, n, err, f.bins)
		}
	}
	// A clean hive ignores its logs.
	h = mustOpen(t, "NewDirtyHive1/RecoveredHive_Windows10", "NewDirtyHive1/NewDirtyHive.LOG1", "NewDirtyHive1/NewDirtyHive.LOG2")
	if h.Dirty() || h.Recovered() {
		t.Errorf("clean hive: Dirty=%v Recovered=%v", h.Dirty(), h.Recovered())
	}
}

// TestValues checks decoding of every kind of value data.
func TestValues(t *testing.T) {
	utf16z := func(s string) []byte {
		var b []byte
		for _, u := range stringUnits(s) {
			b = append(b, byte(u), byte(u>>8))
		}
		return append(b, 0, 0)
	}
	tests := []struct {
		file, key, value string
		typ              ValueType
		data             []byte // nil: not checked
		text             string
	}{
		{"StringValuesHive", "key", "", RegSZ, utf16z("test тест"), "test тест"},
		{"StringValuesHive", "key", "1", RegBinary, []byte("test"), ""},
		{"StringValuesHive", "key", "2", RegExpandSZ, utf16z("test тест"), "test тест"},
		{"StringValuesHive", "KEY", "3", RegSZ, utf16z("test тест "), "test тест "},
		{"ExtendedASCIIHive", "ëigenaardig", "ËIGENAARDIG", RegSZ, utf16z("ëigenaardig"), "ëigenaardig"},
		{"BigDataHive", "key_with_bigdata", "", RegBinary, bytes.Repeat([]byte("1"), 16345), ""},
		{"BigDataHive", "key_with_bigdata", "V", RegBinary, bytes.Repeat([]byte("2"), 81725), ""},
		{"NewDirtyHive1/NewDirtyHive", "Key1", "", RegSZ, nil, strings.Repeat("1", 6000)},
		{"NewDirtyHive1/NewDirtyHive", "KEY2", "V", RegSZ, nil, "testTEST"},
		{"TruncatedPairHive2", "key1", "val1", RegSZ, nil, "321"},
		{"TruncatedPairHive2", "key2", "val2", RegBinary, []byte{0x12}, ""},
		{"TruncatedPairHive2", "key3", "val3", RegDWORD, []byte{2, 0, 0, 0}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.key+"/"+tt.value, func(t *testing.T) {
			k, err := mustOpen(t, tt.file).OpenKey(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			v, err := k.Value(tt.value)
			if err != nil {
				t.Fatal(err)
			}
			if v.Type() != tt.typ {
				t.Errorf("Type = %v, want %v", v.Type(), tt.typ)
			}
			d, err := v.Data()
			if err != nil {
				t.Fatal(err)
			}
			if tt.data != nil && !bytes.Equal(d, tt.data) {
				t.Errorf("Data = %q (%d bytes), want %q", d[:min(len(d), 40)], len(d), tt.data[:min(len(tt.data), 40)])
			}
			if tt.text != "" {
				if s, err := v.Text(); err != nil || s != tt.text {
					t.Errorf("Text = %.40q, %v; want %.40q", s, err, tt.text)
				}
			}
		})
	}
	// Numbers, lists and type errors.
	k, err := mustOpen(t, "TruncatedPairHive2").OpenKey("key3")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := k.Value("val3")
	if x, err := v.Uint32(); err != nil || x != 2 {
		t.Errorf("Uint32 = %d, %v", x, err)
	}
	if x, err := v.Uint64(); err != nil || x != 2 {
		t.Errorf("Uint64 = %d, %v", x, err)
	}
	if _, err := v.Text(); !errors.Is(err, ErrType) {
		t.Errorf("Text of a DWORD: %v, want ErrType", err)
	}
	if _, err := k.Value("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing value: %v", err)
	}
	k, err = mustOpen(t, "MultiSzHive").OpenKey("key")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Value(""); !errors.Is(err, ErrNotFound) {
		t.Errorf("default value of MultiSzHive\\key: %v, want ErrNotFound", err)
	}
	for name, want := range map[string][]string{"1": {}, "2": {"привет", "как дела?"}} {
		v, err := k.Value(name)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := v.MultiText(); err != nil || !slices.Equal(got, want) {
			t.Errorf("MultiText(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	// Values in stored order.
	root, err := mustOpen(t, "ValuesOrderHive").Root()
	if err != nil {
		t.Fatal(err)
	}
	vs, err := root.Values()
	if err != nil {
		t.Fatal(err)
	}
	var vn []string
	for _, v := range vs {
		vn = append(vn, v.Name())
	}
	if !slices.Equal(vn, []string{"aaa", "zzz", "bbb"}) {
		t.Errorf("values %q", vn)
	}
}

// TestKeyMetadata checks timestamps, classes, flags and security.
func TestKeyMetadata(t *testing.T) {
	h := mustOpen(t, "EmptyHive")
	root, err := h.Root()
	if err != nil {
		t.Fatal(err)
	}
	if root.Name() != "{dedef10d-30ff-45b5-9d44-b3fa249ecd49}" || root.Flags() != 0x2C || root.Path() != "" {
		t.Errorf("root %q flags 0x%x path %q", root.Name(), root.Flags(), root.Path())
	}
	sd, err := root.SecurityDescriptor()
	if err != nil || len(sd) != 144 || root.SecurityOffset() != 0x98 {
		t.Errorf("security: %d bytes at 0x%x, %v", len(sd), root.SecurityOffset(), err)
	}
	if p, err := root.Parent(); p != nil || err != nil {
		t.Errorf("root parent %v, %v", p, err)
	}
	if got := h.BaseBlock().LastWritten.Unix(); got != time.Date(2017, 3, 4, 16, 37, 31, 0, time.UTC).Unix() {
		t.Errorf("base block written %v", h.BaseBlock().LastWritten)
	}
	h = mustOpen(t, "DeletedTreePartialPathHive")
	k, err := h.OpenKey(`1\2`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k.LastWritten(), ftime.ToTime(131345184953072285); !got.Equal(want) {
		t.Errorf("1\\2 written %v, want %v", got, want)
	}
	p, err := k.Parent()
	if err != nil || p.Name() != "1" || p.Path() != "1" {
		t.Errorf("parent %v, %v", p, err)
	}
	if c, err := k.ClassName(); err != nil || c != "" {
		t.Errorf("class %q, %v", c, err)
	}
}

// TestWalk counts keys and checks that Walk stops on damage instead of
// looping.
func TestWalk(t *testing.T) {
	count := func(h *Hive) (int, error) {
		n := 0
		err := h.Walk(func(k *Key) error { n++; return nil })
		return n, err
	}
	if n, err := count(mustOpen(t, "ManySubkeysHive")); err != nil || n != 5003 {
		t.Errorf("ManySubkeysHive: %d keys, %v; want 5003", n, err)
	}
	h := mustOpen(t, "ManySubkeysHive")
	n := 0
	err := h.Walk(func(k *Key) error {
		n++
		if k.Name() == "key_with_many_subkeys" {
			return SkipKey
		}
		return nil
	})
	if err != nil || n != 2 {
		t.Errorf("SkipKey: %d keys, %v", n, err)
	}
	if _, err := count(mustOpen(t, "WrongOrderHive")); !errors.Is(err, ErrOrder) {
		t.Errorf("WrongOrderHive: %v, want ErrOrder", err)
	}
	// A subkey list that lists its own key's parent's list: 1\2 -> 2.
	m := loadMutable(t, "DeletedTreeHive")
	k, one := m.key(`1\2`), m.key("1")
	m.put32(k.off, nkOffSubkeys, 1)
	m.put32(k.off, nkOffSubkeyList, one.nk.subkeyList)
	if _, err := count(m.open()); !errors.Is(err, ErrParent) {
		t.Errorf("looped hive: %v, want ErrParent", err)
	}
	// A loop whose parent fields agree: 1 lists the root, whose (never
	// checked) parent field names 1. Only the visited set stops it.
	m = loadMutable(t, "DeletedTreeHive")
	root, one := m.key(""), m.key("1")
	m.put32(one.nk.subkeyList, 4, root.off)
	m.put32(root.off, nkOffParent, one.off)
	if _, err := count(m.open()); !errors.Is(err, ErrLoop) {
		t.Errorf("looped hive: %v, want ErrLoop", err)
	}
}

// TestCellStart checks that a reference into the middle of a cell, or to a
// free cell, is a cell-offset error naming the offset, not a misread.
func TestCellStart(t *testing.T) {
	m := loadMutable(t, "StringValuesHive")
	k := m.key("key")
	first := m.get32(k.nk.valueList, 0)
	m.put32(k.nk.valueList, 0, first+8) // inside the first vk
	k = m.key("key")
	_, err := k.Values()
	var ce *CellError
	if !errors.Is(err, ErrCellOffset) || !errors.As(err, &ce) || ce.Offset != first+8 {
		t.Fatalf("Values: %v, want a cell-offset error at 0x%x", err, first+8)
	}
	if !strings.Contains(err.Error(), "no cell starts here") {
		t.Errorf("message %q", err)
	}
	// A free cell.
	m = loadMutable(t, "StringValuesHive")
	k = m.key("key")
	off := m.get32(k.nk.valueList, 4)
	sz := int32(binary.LittleEndian.Uint32(m.b[BaseBlockSize+off:]))
	binary.LittleEndian.PutUint32(m.b[BaseBlockSize+off:], uint32(-sz))
	if _, err := m.key("key").Values(); !errors.Is(err, ErrCellOffset) || !strings.Contains(err.Error(), "free cell") {
		t.Errorf("free value cell: %v", err)
	}
	// A damaged size field earlier in the bin hides the cells after it.
	m = loadMutable(t, "EmptyHive")
	binary.LittleEndian.PutUint32(m.b[BaseBlockSize+binHeaderSize:], 3)
	if _, err := m.open().Root(); !errors.Is(err, ErrCellOffset) || !strings.Contains(err.Error(), "impossible size") {
		t.Errorf("root after a damaged cell: %v", err)
	}
}

// TestReaderDamage checks the reader's own walk errors on damaged copies of
// healthy hives.
func TestReaderDamage(t *testing.T) {
	// Two entries of a value list naming the same value.
	m := loadMutable(t, "StringValuesHive")
	k := m.key("key")
	m.put32(k.nk.valueList, 4, m.get32(k.nk.valueList, 0))
	vs, err := m.key("key").Values()
	if !errors.Is(err, ErrDuplicate) || len(vs) != 1 {
		t.Errorf("duplicate value: %d values, %v", len(vs), err)
	}
	// A key name with a backslash.
	m = loadMutable(t, "UnicodeHive")
	k = m.key("Привет")
	m.b[BaseBlockSize+int(k.off)+4+nkFixedSize] = '\\'
	m.b[BaseBlockSize+int(k.off)+4+nkFixedSize+1] = 0
	root, err := m.open().Root()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Subkeys(); !errors.Is(err, ErrRecord) || !strings.Contains(err.Error(), "backslash") {
		t.Errorf("backslash: %v", err)
	}
	// A subkey count larger than the lists.
	m = loadMutable(t, "ManySubkeysHive")
	k = m.key("key_with_many_subkeys")
	m.put32(k.off, nkOffSubkeys, 5001)
	if _, err := m.key("key_with_many_subkeys").Subkeys(); !errors.Is(err, ErrRecord) {
		t.Errorf("count: %v", err)
	}
	// An ri that lists the same leaf twice.
	m = loadMutable(t, "ManySubkeysHive")
	k = m.key("key_with_many_subkeys")
	m.put32(k.nk.subkeyList, 8, m.get32(k.nk.subkeyList, 4))
	if _, err := m.key("key_with_many_subkeys").Subkeys(); !errors.Is(err, ErrLoop) {
		t.Errorf("leaf twice: %v", err)
	}
	// A list count beyond its cell.
	m = loadMutable(t, "UnicodeHive")
	root0 := m.key("")
	binary.LittleEndian.PutUint16(m.b[BaseBlockSize+int(root0.nk.subkeyList)+4+2:], 0xFFFF)
	if _, err := m.key("").Subkeys(); !errors.Is(err, ErrRecord) || !strings.Contains(err.Error(), "do not fit") {
		t.Errorf("list count: %v", err)
	}
}

// TestLazyHugeHive opens a 2 GiB hive (a sparse file: EmptyHive plus one
// giant free bin) and reads its tree: the reader must touch only the cells
// it needs, not the file.
func TestLazyHugeHive(t *testing.T) {
	b := seedBytes(t, "EmptyHive") // base block + one 4 KiB bin
	const total = 0x7FFF0000       // hive-bins size
	le := binary.LittleEndian
	le.PutUint32(b[bbOffHiveBins:], total)
	putBaseBlockChecksum(b[:BaseBlockSize])
	path := t.TempDir() + "/huge"
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	var hdr [binHeaderSize + 4]byte
	copy(hdr[:], "hbin")
	le.PutUint32(hdr[4:], 0x1000)
	le.PutUint32(hdr[8:], total-0x1000)
	le.PutUint32(hdr[binHeaderSize:], total-0x1000-binHeaderSize) // one free cell
	if _, err := f.WriteAt(hdr[:], BaseBlockSize+0x1000); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(BaseBlockSize + total); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}
	cr := &countingReader{r: f}
	h, err := Open(cr, BaseBlockSize+total)
	if err != nil {
		t.Fatal(err)
	}
	root, err := h.Root()
	if err != nil {
		t.Fatal(err)
	}
	if subs, err := root.Subkeys(); err != nil || len(subs) != 0 {
		t.Fatalf("Subkeys: %d, %v", len(subs), err)
	}
	if _, err := h.OpenKey(`a\b`); !errors.Is(err, ErrNotFound) {
		t.Fatalf("OpenKey: %v", err)
	}
	// A reference into the giant bin: one size field read, not 2 GiB.
	if _, err := h.cellData(0x1000+binHeaderSize, "test"); !errors.Is(err, ErrCellOffset) {
		t.Fatalf("free cell in the giant bin: %v", err)
	}
	if n := cr.bytes.Load(); n > 256<<10 {
		t.Errorf("read %d bytes of a 2 GiB hive", n)
	} else {
		t.Logf("read %d bytes in %d calls", n, cr.calls.Load())
	}
}

// TestConcurrentLookups uses one Hive from several goroutines (run with
// -race): the bin index and cell-walk caches are shared.
func TestConcurrentLookups(t *testing.T) {
	h := mustOpen(t, "ManySubkeysHive")
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := g; i < 5000; i += 97 {
				if _, err := h.OpenKey(fmt.Sprintf(`key_with_many_subkeys\%d`, i+1)); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
