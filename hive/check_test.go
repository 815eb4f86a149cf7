package hive

import (
	"bytes"
	"encoding/binary"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// codes returns the distinct finding codes of a report with the given
// severity, sorted.
func codes(r *CheckReport, sev Severity) []string {
	var out []string
	for _, f := range r.Findings {
		if f.Severity == sev && !slices.Contains(out, f.Code) {
			out = append(out, f.Code)
		}
	}
	slices.Sort(out)
	return out
}

// TestCheckFixtures runs the checker on every kind of fixture: healthy
// Windows-made hives must be clean; crafted damage must be found with the
// code EXPECTED.md's description implies.
func TestCheckFixtures(t *testing.T) {
	tests := []struct {
		file     string
		logs     []string
		errors   []string // exact set of Error codes
		warnings []string // Warning codes that must be present (others allowed)
	}{
		{file: "EmptyHive"},
		{file: "ManySubkeysHive"},
		{file: "SlackHive"},
		{file: "UnicodeHive"},
		{file: "UpcaseHive"},
		{file: "PairHive"},
		{file: "TruncatedPairHive"},
		{file: "TruncatedPairHive2"},
		{file: "BigDataHive"},
		{file: "StringValuesHive"},
		{file: "MultiSzHive"},
		{file: "ExtendedASCIIHive"},
		{file: "BogusKeyNamesHive"},
		{file: "System_Delta"},
		{file: "TwoOwnersHive"},
		{file: "RemnantData"},
		{file: "ValuesOrderHive"},
		{file: "OffHive"},
		{file: "OldDirtyHive/RecoveredHive_Windows7"},
		{file: "NewDirtyHive1/RecoveredHive_Windows10", warnings: []string{"cell-leak"}},
		{file: "NewDirtyHive1/NewDirtyHive", logs: []string{"NewDirtyHive1/NewDirtyHive.LOG1", "NewDirtyHive1/NewDirtyHive.LOG2"}, warnings: []string{"cell-leak"}},
		{file: "OldDirtyHive/OldDirtyHive", logs: []string{"OldDirtyHive/OldDirtyHive.LOG1", "OldDirtyHive/OldDirtyHive.LOG2"}},
		{file: "HealedHive", warnings: []string{"cell-leak", "sk-refcount"}},
		{file: "DeletedTreeNoRootFlagHive", warnings: []string{"key-flags"}},

		{file: "WrongOrderHive", errors: []string{"subkey-order"}},
		{file: "DuplicateSubkeysHive", errors: []string{"subkey-duplicate"}},
		{file: "BadListHive", errors: []string{"key-parent", "ref-twice"}},
		{file: "BadSubkeyHive", errors: []string{"key-parent", "ref-twice"}},
		{file: "InvalidParentHive", errors: []string{"key-parent"}},
		{file: "TruncatedNameHive", errors: []string{"key-record"}},
		{file: "DeletedDataHiveTruncated", errors: []string{"ref-not-cell"}, warnings: []string{"cell-leak"}},
		// CompHive's first key was renamed to byte 0x9F by editing the
		// file; its lf hint still says 0x81, so Windows' binary search,
		// which compares hints first, would not find it.
		{file: "CompHive", errors: []string{"lf-hint"}},
		{file: "NewDirtyHive1/NewDirtyHive", errors: []string{"base-dirty"}},
		{file: "EffectiveSizeHive", errors: []string{"base-dirty"}, warnings: []string{"base-bins-size"}},
		{file: "TruncatedDirtyHive", errors: []string{"base-dirty", "list-count", "ref-not-cell"}},
	}
	for _, tt := range tests {
		name := tt.file
		if len(tt.logs) > 0 {
			name += "+logs"
		}
		t.Run(name, func(t *testing.T) {
			r := mustOpen(t, tt.file, tt.logs...).Check()
			if got := codes(r, Error); !slices.Equal(got, tt.errors) {
				t.Errorf("error codes %q, want %q\n%s", got, tt.errors, r)
			}
			if r.OK() != (len(tt.errors) == 0) {
				t.Errorf("OK() = %v with errors %q", r.OK(), codes(r, Error))
			}
			warns := codes(r, Warning)
			for _, w := range tt.warnings {
				if !slices.Contains(warns, w) {
					t.Errorf("warning %q missing; report:\n%s", w, r)
				}
			}
			if len(tt.errors) == 0 && len(tt.warnings) == 0 && len(r.Findings) > 0 {
				t.Errorf("healthy hive has findings:\n%s", r)
			}
		})
	}
}

// TestCheckHealedCounts checks the exact leaks of HealedHive: 5 allocated
// cells that nothing reaches (EXPECTED.md): nk 0x2C8, its value list
// 0x218, vk 0x168, data 0x140 and sk 0x3B8. The sk is still in the sk list,
// so it is reported as an sk no key uses rather than as a leak.
func TestCheckHealedCounts(t *testing.T) {
	r := mustOpen(t, "HealedHive").Check()
	var leaks []uint32
	for _, f := range r.Findings {
		if f.Code == "cell-leak" {
			leaks = append(leaks, f.Offset)
		}
	}
	if want := []uint32{0x140, 0x168, 0x218, 0x2c8}; !slices.Equal(leaks, want) {
		t.Errorf("leaks at %x, want %x", leaks, want)
	}
	found := false
	for _, f := range r.Findings {
		if f.Code == "sk-refcount" && f.Offset == 0x3b8 {
			found = true
		}
	}
	if !found {
		t.Errorf("unused sk 0x3b8 not reported:\n%s", r)
	}
	if r.AllocatedCells != 14 || r.Cells != 20 {
		t.Errorf("cells %d allocated %d, want 20 and 14", r.Cells, r.AllocatedCells)
	}
}

// TestCheckRealHives runs the checker on real Windows hives: clean.
func TestCheckRealHives(t *testing.T) {
	for _, f := range []string{"regipy/SYSTEM.xz", "regipy/NTUSER.DAT.xz", "regipy/SAM.xz", "hivex/minimal", "hivex/special", "hivex/rlenvalue_test_hive"} {
		t.Run(f, func(t *testing.T) {
			if testing.Short() && strings.Contains(f, "SYSTEM") {
				t.Skip("slow")
			}
			path := testutil.Decompress(t, testutil.SharedFixture(t, "hives/"+f), "")
			h, err := openFile(t, path)
			if err != nil {
				t.Fatal(err)
			}
			r := h.Check()
			if len(r.Findings) > 0 {
				t.Errorf("findings on a healthy hive:\n%s", r)
			}
			if r.Keys == 0 || r.ReferencedCell != r.AllocatedCells {
				t.Errorf("keys %d, referenced %d of %d allocated cells", r.Keys, r.ReferencedCell, r.AllocatedCells)
			}
			t.Logf("%d keys, %d values, %d cells", r.Keys, r.Values, r.Cells)
		})
	}
	// A damaged real hive: the bin chain breaks at 0x19000.
	path := testutil.Decompress(t, testutil.SharedFixture(t, "hives/regipy/corrupted_system_hive.xz"), "")
	h, err := openFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	r := h.Check()
	if r.OK() || !r.Has("bin-header") || !r.Has("base-bins-size") || r.Has("cell-leak") {
		t.Errorf("corrupted_system_hive:\n%s", r)
	}
}

// mutable is a fixture loaded into memory, to damage in place.
type mutable struct {
	t *testing.T
	b []byte
}

func loadMutable(t *testing.T, rel string) *mutable {
	b, err := os.ReadFile(yarp(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return &mutable{t: t, b: b}
}

func (m *mutable) open() *Hive {
	h, err := Open(bytes.NewReader(m.b), int64(len(m.b)))
	if err != nil {
		m.t.Fatal(err)
	}
	return h
}

// put32 writes v at byte off of the data of the cell at cell offset cell.
func (m *mutable) put32(cell uint32, off int, v uint32) {
	binary.LittleEndian.PutUint32(m.b[BaseBlockSize+int(cell)+cellSizeLen+off:], v)
}

func (m *mutable) get32(cell uint32, off int) uint32 {
	return binary.LittleEndian.Uint32(m.b[BaseBlockSize+int(cell)+cellSizeLen+off:])
}

func (m *mutable) key(path string) *Key {
	k, err := m.open().OpenKey(path)
	if err != nil {
		m.t.Fatal(err)
	}
	return k
}

// TestCheckMutations damages healthy hives one field at a time and checks
// that the checker names the damage (and the reader does not panic).
func TestCheckMutations(t *testing.T) {
	tests := []struct {
		name, file string
		damage     func(m *mutable)
		want       string
		sev        Severity
	}{
		{"lh hash", "BigDataHive", func(m *mutable) {
			k := m.key("")
			m.put32(k.nk.subkeyList, 8, 0x12345678)
		}, "lh-hash", Error},
		{"lf hint", "DeletedTreeHive", func(m *mutable) {
			k := m.key("")
			m.put32(k.nk.subkeyList, 8, 'x')
		}, "lf-hint", Error},
		{"sk refcount low", "EmptyHive", func(m *mutable) {
			m.put32(0x98, skOffRefCount, 0)
		}, "sk-refcount", Error},
		{"sk refcount high", "EmptyHive", func(m *mutable) {
			m.put32(0x98, skOffRefCount, 7)
		}, "sk-refcount", Warning},
		{"sk flink", "TwoOwnersHive", func(m *mutable) {
			m.put32(0x98, skOffFlink, 0x98)
		}, "sk-list", Error},
		{"sk signature", "EmptyHive", func(m *mutable) {
			m.b[BaseBlockSize+0x98+4] = 'x'
		}, "sk-record", Error},
		{"sk descriptor", "EmptyHive", func(m *mutable) {
			m.b[BaseBlockSize+0x98+4+skFixedSize] = 2 // revision
		}, "sk-descriptor", Error},
		{"freed value", "StringValuesHive", func(m *mutable) {
			vs, _ := m.key("key").Values()
			off := vs[1].Offset()
			sz := int32(binary.LittleEndian.Uint32(m.b[BaseBlockSize+off:]))
			binary.LittleEndian.PutUint32(m.b[BaseBlockSize+off:], uint32(-sz))
		}, "ref-free", Error},
		{"value count", "StringValuesHive", func(m *mutable) {
			k := m.key("key")
			m.put32(k.off, nkOffValues, 1000)
		}, "value-list", Error},
		{"duplicate value", "StringValuesHive", func(m *mutable) {
			k := m.key("key")
			m.put32(k.nk.valueList, 4, m.get32(k.nk.valueList, 0))
		}, "ref-twice", Error},
		{"subkey count", "ManySubkeysHive", func(m *mutable) {
			k := m.key("key_with_many_subkeys")
			m.put32(k.off, nkOffSubkeys, 4999)
		}, "list-count", Error},
		{"subkey loop", "DeletedTreeHive", func(m *mutable) {
			k := m.key(`1\2`)
			// 2 gets a subkey list: 1's list, whose entry is 2 itself.
			one := m.key("1")
			m.put32(k.off, nkOffSubkeys, 1)
			m.put32(k.off, nkOffSubkeyList, one.nk.subkeyList)
		}, "ref-twice", Error},
		{"loop through the root", "DeletedTreeHive", func(m *mutable) {
			root, one := m.key(""), m.key("1")
			m.put32(one.nk.subkeyList, 4, root.off)
			m.put32(root.off, nkOffParent, one.off)
		}, "ref-twice", Error},
		{"cell size zero", "EmptyHive", func(m *mutable) {
			binary.LittleEndian.PutUint32(m.b[BaseBlockSize+0x98:], 0)
		}, "bin-cell", Error},
		{"big data signature", "BigDataHive", func(m *mutable) {
			v, err := m.key("key_with_bigdata").Value("v")
			if err != nil {
				m.t.Fatal(err)
			}
			m.b[BaseBlockSize+int(v.vk.dataOff)+4] = 'x'
		}, "value-bigdata", Error},
		{"inline too long", "StringValuesHive", func(m *mutable) {
			v, _ := m.key("key").Value("1")
			m.put32(v.off, vkOffDataLen, vkInlineBit|5)
		}, "value-inline", Error},
		{"empty value with data", "StringValuesHive", func(m *mutable) {
			v, _ := m.key("key").Value("2")
			m.put32(v.off, vkOffDataLen, 0)
		}, "value-data", Error},
		{"key name with backslash", "UnicodeHive", func(m *mutable) {
			k := m.key("Привет")
			m.b[BaseBlockSize+int(k.off)+4+nkFixedSize] = '\\'
			m.b[BaseBlockSize+int(k.off)+4+nkFixedSize+1] = 0
		}, "key-name", Error},
		{"max name length", "UnicodeHive", func(m *mutable) {
			m.put32(m.key("").off, nkOffMaxName, 2)
		}, "key-maxlen", Warning},
		{"hive-entry flag", "UnicodeHive", func(m *mutable) {
			k := m.key("Привет")
			binary.LittleEndian.PutUint16(m.b[BaseBlockSize+int(k.off)+4+nkOffFlags:], k.nk.flags|KeyHiveEntry)
		}, "key-flags", Warning},
		{"nil security", "UnicodeHive", func(m *mutable) {
			m.put32(m.key("Привет").off, nkOffSecurity, nilCell)
		}, "sk-missing", Error},
		{"class beyond cell", "UnicodeHive", func(m *mutable) {
			k := m.key("Привет")
			m.put32(k.off, nkOffClass, k.nk.security)
			binary.LittleEndian.PutUint16(m.b[BaseBlockSize+int(k.off)+4+nkOffClassLen:], 4000)
		}, "ref-twice", Error},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := loadMutable(t, tt.file)
			tt.damage(m)
			h := m.open()
			r := h.Check()
			found := false
			for _, f := range r.Findings {
				if f.Code == tt.want && f.Severity == tt.sev {
					found = true
				}
			}
			if !found {
				t.Errorf("no %v %q finding:\n%s", tt.sev, tt.want, r)
			}
			if (tt.sev == Error) == r.OK() {
				t.Errorf("OK() = %v", r.OK())
			}
			walkAll(h, 100000) // must not panic or hang
		})
	}
}

// walkAll reads every key, value and datum reachable through the public
// API, ignoring errors, visiting at most limit keys (a damaged hive can
// list the same key under two parents).
func walkAll(h *Hive, limit int) int {
	root, err := h.Root()
	if err != nil {
		return 0
	}
	n := 0
	stack := []*Key{root}
	for len(stack) > 0 && n < limit {
		k := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n++
		k.ClassName()
		k.SecurityDescriptor()
		k.Parent()
		vs, _ := k.Values()
		for _, v := range vs {
			v.Data()
			v.Text()
			v.MultiText()
			v.Uint32()
			v.Uint64()
		}
		k.Value("")
		subs, _ := k.Subkeys()
		if len(subs) > 0 {
			k.Subkey(subs[len(subs)/2].Name())
		}
		if len(k.Path()) < 2000 {
			stack = append(stack, subs...)
		}
	}
	return n
}
