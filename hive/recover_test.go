package hive

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// yarpFile reads a file of the yarp fixture set.
func yarpFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(testutil.SharedFixture(t, "hives/yarp/"+rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// memLog wraps fixture bytes as a Log.
func memLog(name string, b []byte) Log {
	return Log{Name: name, R: bytes.NewReader(b), Size: int64(len(b))}
}

// yarpLogs returns the fixture's logs as Logs, in the given order.
func yarpLogs(t testing.TB, rels ...string) []Log {
	t.Helper()
	var logs []Log
	for _, r := range rels {
		logs = append(logs, memLog(filepath.Base(r), yarpFile(t, r)))
	}
	return logs
}

// readAllAt reads n bytes of ra from offset 0.
func readAllAt(t testing.TB, ra io.ReaderAt, n int64) []byte {
	t.Helper()
	b := make([]byte, n)
	if k, err := ra.ReadAt(b, 0); int64(k) != n {
		t.Fatalf("reading %d bytes of the recovered hive: got %d: %v", n, k, err)
	}
	return b
}

// recoverFixture runs recoverHive on a yarp primary and logs.
func recoverFixture(t testing.TB, primary string, logs ...string) (*recovered, []byte, error) {
	t.Helper()
	p := yarpFile(t, primary)
	rc, err := recoverHive(bytes.NewReader(p), int64(len(p)), yarpLogs(t, logs...))
	return rc, p, err
}

// image returns the recovered file's bytes (max of recovered and primary size).
func (rc *recovered) image(t testing.TB, primary []byte) []byte {
	t.Helper()
	return readAllAt(t, rc.ReaderAt(bytes.NewReader(primary)), max(rc.size, rc.primarySize))
}

// checkRecoveredBase asserts that the recovered base block is a clean
// primary base block with the given sequence number and hive-bins size.
func checkRecoveredBase(t *testing.T, rc *recovered, seq, hiveBins uint32) *BaseBlock {
	t.Helper()
	bb, err := ParseBaseBlock(rc.base)
	if err != nil {
		t.Fatalf("recovered base block: %v", err)
	}
	if bb.Dirty() || bb.FileType != fileTypePrimary || bb.Sequence1 != seq || bb.HiveBinsSize != hiveBins {
		t.Errorf("recovered base block: dirty %v, type %d, seq %d/%d, hbins %d; want clean, 0, %d/%d, %d",
			bb.Dirty(), bb.FileType, bb.Sequence1, bb.Sequence2, bb.HiveBinsSize, seq, seq, hiveBins)
	}
	if rc.size != BaseBlockSize+int64(hiveBins) {
		t.Errorf("recovered size %d, want %d", rc.size, BaseBlockSize+int64(hiveBins))
	}
	return bb
}

// diffRanges lists the byte offsets where a and b differ, merged into
// [start, end) ranges.
func diffRanges(a, b []byte) [][2]int {
	var r [][2]int
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] == b[i] {
			continue
		}
		if n := len(r); n > 0 && r[n-1][1] == i {
			r[n-1][1] = i + 1
		} else {
			r = append(r, [2]int{i, i + 1})
		}
	}
	return r
}

// TestRecoverNewDirtyHive1 replays both new-format logs and compares the
// result with Windows 10's own recovery of the same files.
func TestRecoverNewDirtyHive1(t *testing.T) {
	windows := yarpFile(t, "NewDirtyHive1/RecoveredHive_Windows10")
	for _, order := range [][]string{
		{"NewDirtyHive1/NewDirtyHive.LOG1", "NewDirtyHive1/NewDirtyHive.LOG2"},
		{"NewDirtyHive1/NewDirtyHive.LOG2", "NewDirtyHive1/NewDirtyHive.LOG1"},
	} {
		t.Run(filepath.Base(order[0])+"_first", func(t *testing.T) {
			rc, primary, err := recoverFixture(t, "NewDirtyHive1/NewDirtyHive", order...)
			if err != nil {
				t.Fatal(err)
			}
			if !rc.dirty || rc.format != logFormatNew {
				t.Fatalf("dirty %v format %d, want dirty new-format recovery", rc.dirty, rc.format)
			}
			// LOG1 (seq 2) first, then LOG2 (3, 4, 5): 2 logs, 4 entries.
			if len(rc.applied) != 2 || rc.applied[0].name != "NewDirtyHive.LOG1" || rc.applied[1].name != "NewDirtyHive.LOG2" {
				t.Fatalf("applied %+v, want LOG1 then LOG2", rc.applied)
			}
			if got := rc.entriesApplied(); got != 4 {
				t.Errorf("%d entries applied, want 4", got)
			}
			if rc.applied[0].firstSeq != 2 || rc.applied[1].firstSeq != 3 || rc.applied[1].lastSeq != 5 {
				t.Errorf("sequences %+v, want 2..2 then 3..5", rc.applied)
			}
			checkRecoveredBase(t, rc, 5, 20480)
			img := rc.image(t, primary)
			if len(img) != len(windows) {
				t.Fatalf("recovered image %d bytes, Windows' %d", len(img), len(windows))
			}
			if d := diffRanges(img[BaseBlockSize:], windows[BaseBlockSize:]); len(d) != 0 {
				t.Fatalf("recovered bytes differ from RecoveredHive_Windows10 after the base block at %d ranges, first at file 0x%x",
					len(d), d[0][0]+BaseBlockSize)
			}
			// Windows then wrote 6/6; with 5/5 the base blocks differ only
			// in the sequence numbers (the checksum happens to agree).
			for _, d := range diffRanges(img[:BaseBlockSize], windows[:BaseBlockSize]) {
				if d[0] < bbOffSequence1 || d[1] > bbOffSequence2+4 {
					t.Errorf("base block differs from Windows' at [%d, %d), want only the sequence numbers", d[0], d[1])
				}
			}
			// The next save must be above every sequence seen: 6, as Windows.
			if got := rc.nextSequence(); got != 6 {
				t.Errorf("nextSequence %d, want 6", got)
			}
			ri := rc.info()
			if want := `&{new [{NewDirtyHive.LOG1 1 2 2 40} {NewDirtyHive.LOG2 3 3 5 56}] 5 6}`; fmt.Sprint(ri) != want {
				t.Errorf("info %v, want %s", ri, want)
			}
		})
	}
}

// TestRecoverOldDirtyHive replays the old-format log and compares with
// Windows 7's recovery: EXPECTED.md lists the only two places where they
// differ outside the base block (the first bin's timestamp and one byte of
// key 4500, both rewritten by Windows after recovery).
func TestRecoverOldDirtyHive(t *testing.T) {
	windows := yarpFile(t, "OldDirtyHive/RecoveredHive_Windows7")
	for _, tc := range []struct {
		name string
		logs []string
	}{
		{"LOG1+empty LOG2", []string{"OldDirtyHive/OldDirtyHive.LOG1", "OldDirtyHive/OldDirtyHive.LOG2"}},
		{"empty LOG2+LOG1", []string{"OldDirtyHive/OldDirtyHive.LOG2", "OldDirtyHive/OldDirtyHive.LOG1"}},
		{"LOG1 only", []string{"OldDirtyHive/OldDirtyHive.LOG1"}},
		{"LOG1 with remnant data", []string{"OldLogWithRemnantData", "OldDirtyHive/OldDirtyHive.LOG2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, primary, err := recoverFixture(t, "OldDirtyHive/OldDirtyHive", tc.logs...)
			if err != nil {
				t.Fatal(err)
			}
			if rc.format != logFormatOld || len(rc.applied) != 1 {
				t.Fatalf("format %d applied %+v, want one old-format log", rc.format, rc.applied)
			}
			// 64 pages of 512 bytes: 0x0-0x2000, 0xC000-0xE000,
			// 0x6A000-0x6B000, 0x74000-0x77000 of the hive bins.
			if rc.applied[0].pages != 64 {
				t.Errorf("%d pages applied, want 64", rc.applied[0].pages)
			}
			checkRecoveredBase(t, rc, 5, 487424)
			img := rc.image(t, primary)
			want := [][2]int{{0x1014, 0x101C}, {0x6BDC8, 0x6BDC9}}
			var got [][2]int
			for _, d := range diffRanges(img[BaseBlockSize:], windows[BaseBlockSize:]) {
				got = append(got, [2]int{d[0] + BaseBlockSize, d[1] + BaseBlockSize})
			}
			// The timestamp may share bytes with Windows'; every
			// difference must lie inside the two known places.
			for _, g := range got {
				if !(g[0] >= want[0][0] && g[1] <= want[0][1]) && g != want[1] {
					t.Errorf("recovered image differs from RecoveredHive_Windows7 at file [0x%x, 0x%x)", g[0], g[1])
				}
			}
			if len(got) == 0 {
				t.Error("no difference from RecoveredHive_Windows7: the fixture notes say there are two")
			}
		})
	}
}

// TestRecoverBadBaseBlockHive: the primary's base block is unusable (minor
// 1, checksum INVL); the log's base block replaces it and the bins come out
// as for OldDirtyHive.
func TestRecoverBadBaseBlockHive(t *testing.T) {
	rc, primary, err := recoverFixture(t, "BadBaseBlockHive/BadBaseBlockHive",
		"BadBaseBlockHive/BadBaseBlockHive.LOG1", "BadBaseBlockHive/BadBaseBlockHive.LOG2")
	if err != nil {
		t.Fatal(err)
	}
	if rc.format != logFormatOld || len(rc.applied) != 1 || rc.applied[0].name != "BadBaseBlockHive.LOG1" {
		t.Fatalf("format %d applied %+v, want LOG1 (old format)", rc.format, rc.applied)
	}
	bb := checkRecoveredBase(t, rc, 5, 487424)
	if bb.Minor != 3 || bb.RootCell != 0x20 {
		t.Errorf("recovered minor %d root 0x%x, want 3 and 0x20 from the log", bb.Minor, bb.RootCell)
	}
	ref, refPrimary, err := recoverFixture(t, "OldDirtyHive/OldDirtyHive", "OldDirtyHive/OldDirtyHive.LOG1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rc.image(t, primary)[BaseBlockSize:], ref.image(t, refPrimary)[BaseBlockSize:]) {
		t.Error("recovered bins differ from OldDirtyHive's recovery")
	}
}

// TestRecoverFailures: dirty primaries whose logs cannot be used.
func TestRecoverFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		primary string
		logs    []string
	}{
		{"BadLogHive1 log checksum", "BadLogHive1/BadLogHive", []string{"BadLogHive1/BadLogHive.LOG1", "BadLogHive1/BadLogHive.LOG2"}},
		{"BadLogHive2 no DIRT", "BadLogHive2/BadLogHive", []string{"BadLogHive2/BadLogHive.LOG1", "BadLogHive2/BadLogHive.LOG2"}},
		{"BadLogHive3 both checksums", "BadLogHive3/BadLogHive", []string{"BadLogHive3/BadLogHive.LOG1", "BadLogHive3/BadLogHive.LOG2"}},
		{"TruncatedDirtyHive no logs", "TruncatedDirtyHive", nil},
		{"OldDirtyHive empty logs", "OldDirtyHive/OldDirtyHive", []string{"OldDirtyHive/OldDirtyHive.LOG2", "BadLogHive1/BadLogHive.LOG2"}},
		// New-format logs of another hive state are stale for a primary
		// whose secondary sequence is above theirs... here they belong
		// to NewDirtyHive (seq 2, 3) and OldDirtyHive is at 5/4.
		{"OldDirtyHive foreign stale new logs", "OldDirtyHive/OldDirtyHive", []string{"NewDirtyHive1/NewDirtyHive.LOG1", "NewDirtyHive1/NewDirtyHive.LOG2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, _, err := recoverFixture(t, tc.primary, tc.logs...)
			if !errors.Is(err, ErrNoUsableLog) {
				t.Fatalf("recoverHive = %+v, %v; want an error wrapping ErrNoUsableLog", rc, err)
			}
		})
	}
}

// TestRecoverClean: a clean primary is not recovered, whatever the logs say.
func TestRecoverClean(t *testing.T) {
	rc, primary, err := recoverFixture(t, "NewDirtyHive1/RecoveredHive_Windows10",
		"NewDirtyHive1/NewDirtyHive.LOG1", "NewDirtyHive1/NewDirtyHive.LOG2")
	if err != nil {
		t.Fatal(err)
	}
	if rc.dirty || len(rc.pages) != 0 || len(rc.applied) != 0 || rc.format != logFormatNone {
		t.Fatalf("clean hive: dirty %v, %d pages, applied %+v", rc.dirty, len(rc.pages), rc.applied)
	}
	if !bytes.Equal(rc.image(t, primary), primary) {
		t.Error("clean hive reads differently through the overlay")
	}
	// Its logs are never applied but still count for the next save: the
	// primary is at 6/6 and the logs reach 5.
	if rc.nextSequence() != 7 || rc.info() != nil {
		t.Errorf("nextSequence %d, info %v; want 7, nil", rc.nextSequence(), rc.info())
	}
	p2 := append([]byte(nil), primary...)
	setLogSeq(p2, 1) // clean at 1/1: the logs' 5 must win
	rc, err = recoverHive(bytes.NewReader(p2), int64(len(p2)), yarpLogs(t, "NewDirtyHive1/NewDirtyHive.LOG1", "NewDirtyHive1/NewDirtyHive.LOG2"))
	if err != nil || rc.dirty || rc.nextSequence() != 6 {
		t.Errorf("clean 1/1 with logs up to 5: %v dirty %v nextSequence %d, want 6", err, rc.dirty, rc.nextSequence())
	}
}

// setEntrySeq rewrites an entry's sequence number and both hashes, so that
// it stays a valid entry with another number.
func setEntrySeq(log []byte, off int64, seq uint32) {
	le := binary.LittleEndian
	e := log[off:]
	size := le.Uint32(e[hvleOffSize:])
	le.PutUint32(e[hvleOffSequence:], seq)
	le.PutUint64(e[hvleOffHash1:], marvin32(logEntryHashSeed, e[hvleHeaderSize:size]))
	le.PutUint64(e[hvleOffHash2:], marvin32(logEntryHashSeed, e[:hvleOffHash2]))
}

// setLogSeq rewrites a log's base-block sequence numbers and checksum.
func setLogSeq(log []byte, seq uint32) {
	binary.LittleEndian.PutUint32(log[bbOffSequence1:], seq)
	binary.LittleEndian.PutUint32(log[bbOffSequence2:], seq)
	putBaseBlockChecksum(log)
}

// TestRecoverChainRules exercises the replay rules on edited copies of
// NewDirtyHive1's logs (LOG1: entry 2 at 0x200; LOG2: entries 3 at 0x200,
// 4 at 0x2000, 5 at 0x8000).
func TestRecoverChainRules(t *testing.T) {
	primary := yarpFile(t, "NewDirtyHive1/NewDirtyHive")
	log1 := yarpFile(t, "NewDirtyHive1/NewDirtyHive.LOG1")
	log2 := yarpFile(t, "NewDirtyHive1/NewDirtyHive.LOG2")
	clone := func(b []byte) []byte { return append([]byte(nil), b...) }
	type want struct {
		logs    []string // applied, in order
		lastSeq uint32
		entries int
		err     bool
	}
	for _, tc := range []struct {
		name    string
		primary func([]byte)
		log1    func([]byte)
		log2    func([]byte)
		want    want
	}{
		{name: "as Windows wrote them", want: want{logs: []string{"LOG1", "LOG2"}, lastSeq: 5, entries: 4}},
		{name: "bad hash-1 in entry 4 stops replay after 3",
			log2: func(b []byte) { b[0x2000+hvleOffHash1] ^= 1 },
			want: want{logs: []string{"LOG1", "LOG2"}, lastSeq: 3, entries: 2}},
		{name: "bad hash-2 in entry 5 stops replay after 4",
			log2: func(b []byte) { b[0x8000+hvleOffHash2+7] ^= 0x80 },
			want: want{logs: []string{"LOG1", "LOG2"}, lastSeq: 4, entries: 3}},
		{name: "page data changed in entry 4 (hash-1 covers it)",
			log2: func(b []byte) { b[0x2000+0x1000] ^= 0xFF },
			want: want{logs: []string{"LOG1", "LOG2"}, lastSeq: 3, entries: 2}},
		{name: "gap: entry 4 renumbered 7",
			log2: func(b []byte) { setEntrySeq(b, 0x2000, 7) },
			want: want{logs: []string{"LOG1", "LOG2"}, lastSeq: 3, entries: 2}},
		{name: "bad size in entry 4",
			log2: func(b []byte) {
				binary.LittleEndian.PutUint32(b[0x2000+hvleOffSize:], 0x6001)
			},
			want: want{logs: []string{"LOG1", "LOG2"}, lastSeq: 3, entries: 2}},
		{name: "hive-bins size not a multiple of 4096 in entry 3",
			log2: func(b []byte) {
				binary.LittleEndian.PutUint32(b[0x200+hvleOffHiveBins:], 20480+512)
				setEntrySeq(b, 0x200, 3)
			},
			want: want{logs: []string{"LOG1"}, lastSeq: 2, entries: 1}},
		{name: "LOG2 not at N+1: not continued",
			log2: func(b []byte) {
				setLogSeq(b, 4)
				setEntrySeq(b, 0x200, 4)
				setEntrySeq(b, 0x2000, 5)
				setEntrySeq(b, 0x8000, 6)
			},
			want: want{logs: []string{"LOG1"}, lastSeq: 2, entries: 1}},
		{name: "LOG1 stale (below the primary's secondary): LOG2 alone",
			primary: func(b []byte) {
				binary.LittleEndian.PutUint32(b[bbOffSequence1:], 4)
				binary.LittleEndian.PutUint32(b[bbOffSequence2:], 3)
				putBaseBlockChecksum(b)
			},
			want: want{logs: []string{"LOG2"}, lastSeq: 5, entries: 3}},
		{name: "LOG1's first entry has the wrong number: LOG2 starts",
			log1: func(b []byte) { setEntrySeq(b, 0x200, 9) },
			want: want{logs: []string{"LOG2"}, lastSeq: 5, entries: 3}},
		{name: "both stale",
			primary: func(b []byte) {
				binary.LittleEndian.PutUint32(b[bbOffSequence1:], 7)
				binary.LittleEndian.PutUint32(b[bbOffSequence2:], 6)
				putBaseBlockChecksum(b)
			},
			want: want{err: true}},
		{name: "primary base block bad: newest log only",
			primary: func(b []byte) { copy(b[bbOffChecksum:], "INVL") },
			want:    want{logs: []string{"LOG2"}, lastSeq: 5, entries: 3}},
		{name: "primary checksum bad, LOG2 base block bad: newest usable log (LOG1)",
			primary: func(b []byte) { copy(b[bbOffChecksum:], "INVL") },
			log2:    func(b []byte) { copy(b[bbOffChecksum:], "INVL") },
			want:    want{logs: []string{"LOG1"}, lastSeq: 2, entries: 1}},
		{name: "sequence numbers wrap",
			primary: func(b []byte) {
				binary.LittleEndian.PutUint32(b[bbOffSequence1:], 0)
				binary.LittleEndian.PutUint32(b[bbOffSequence2:], 0xFFFFFFFF)
				putBaseBlockChecksum(b)
			},
			log1: func(b []byte) { setLogSeq(b, 0xFFFFFFFF); setEntrySeq(b, 0x200, 0xFFFFFFFF) },
			log2: func(b []byte) {
				setLogSeq(b, 0)
				setEntrySeq(b, 0x200, 0)
				setEntrySeq(b, 0x2000, 1)
				setEntrySeq(b, 0x8000, 2)
			},
			want: want{logs: []string{"LOG1", "LOG2"}, lastSeq: 2, entries: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, l1, l2 := clone(primary), clone(log1), clone(log2)
			for _, m := range []struct {
				f func([]byte)
				b []byte
			}{{tc.primary, p}, {tc.log1, l1}, {tc.log2, l2}} {
				if m.f != nil {
					m.f(m.b)
				}
			}
			rc, err := recoverHive(bytes.NewReader(p), int64(len(p)), []Log{memLog("LOG1", l1), memLog("LOG2", l2)})
			if tc.want.err {
				if !errors.Is(err, ErrNoUsableLog) {
					t.Fatalf("got %+v, %v; want ErrNoUsableLog", rc, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, a := range rc.applied {
				names = append(names, a.name)
			}
			if fmt.Sprint(names) != fmt.Sprint(tc.want.logs) || rc.lastSeq != tc.want.lastSeq || rc.entriesApplied() != tc.want.entries {
				t.Errorf("applied %v up to %d (%d entries), want %v up to %d (%d entries)",
					names, rc.lastSeq, rc.entriesApplied(), tc.want.logs, tc.want.lastSeq, tc.want.entries)
			}
			checkRecoveredBase(t, rc, tc.want.lastSeq, 20480)
		})
	}
}

// TestRecoverHostileLogs: sizes that would need huge allocations or reads
// are refused by arithmetic.
func TestRecoverHostileLogs(t *testing.T) {
	primary := yarpFile(t, "OldDirtyHive/OldDirtyHive")
	old := yarpFile(t, "OldDirtyHive/OldDirtyHive.LOG1")
	newLog := yarpFile(t, "NewDirtyHive1/NewDirtyHive.LOG2")
	clone := func(b []byte) []byte { return append([]byte(nil), b...) }
	for _, tc := range []struct {
		name string
		log  func() []byte
	}{
		{"old log claims 2 GiB of bins", func() []byte {
			b := clone(old)
			binary.LittleEndian.PutUint32(b[bbOffHiveBins:], 0x7FFFF000)
			putBaseBlockChecksum(b)
			return b
		}},
		{"old log bitmap all dirty", func() []byte {
			b := clone(old)
			for i := 516; i < 516+487424/4096; i++ {
				b[i] = 0xFF
			}
			return b
		}},
		{"old log truncated in its pages", func() []byte { return clone(old)[:20000] }},
		{"old log truncated in its bitmap", func() []byte { return clone(old)[:520] }},
		{"only a base block", func() []byte { return clone(old)[:512] }},
		{"shorter than a base block", func() []byte { return clone(old)[:100] }},
		{"new log entry claims 4 GiB of pages", func() []byte {
			b := clone(newLog)
			binary.LittleEndian.PutUint32(b[0x200+hvleOffPageCount:], 0xFFFFFFFF)
			return b
		}},
		{"new log entry size beyond the file", func() []byte {
			b := clone(newLog)
			binary.LittleEndian.PutUint32(b[0x200+hvleOffSize:], 0xFFFFFE00)
			return b
		}},
		{"log says it is a primary", func() []byte {
			b := clone(old)
			binary.LittleEndian.PutUint32(b[bbOffFileType:], 0)
			putBaseBlockChecksum(b)
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := recoverHive(bytes.NewReader(primary), int64(len(primary)), []Log{memLog("LOG1", tc.log())})
			if !errors.Is(err, ErrNoUsableLog) {
				t.Fatalf("got %+v, %v; want ErrNoUsableLog", rc, err)
			}
		})
	}
	// A Log whose Size is absurd is refused before any allocation.
	rc, err := recoverHive(bytes.NewReader(primary), int64(len(primary)),
		[]Log{{Name: "huge", R: bytes.NewReader(nil), Size: 1 << 40}})
	if !errors.Is(err, ErrNoUsableLog) {
		t.Fatalf("1 TiB log: got %+v, %v", rc, err)
	}
}

// TestLogEntriesHashes parses every entry of the fixtures' new-format logs:
// Windows computed their Marvin32 hashes, so this validates marvin32 with
// the log seed on real data.
func TestLogEntriesHashes(t *testing.T) {
	for _, tc := range []struct {
		rel  string
		seqs []uint32
		end  int64 // where the run of valid entries ends
	}{
		// EXPECTED.md: nothing follows LOG1's entry; 24576 zero bytes
		// follow LOG2's (entries end at 40960 of 65536).
		{"NewDirtyHive1/NewDirtyHive.LOG1", []uint32{2}, 24576},
		{"NewDirtyHive1/NewDirtyHive.LOG2", []uint32{3, 4, 5}, 40960},
	} {
		data := yarpFile(t, tc.rel)
		lf, err := readLog(memLog(tc.rel, data))
		if err != nil || lf.err != nil {
			t.Fatalf("%s: %v %v", tc.rel, err, lf.err)
		}
		var got []uint32
		for _, e := range lf.entries {
			got = append(got, e.seq)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.seqs) {
			t.Errorf("%s: entries %v, want %v", tc.rel, got, tc.seqs)
		}
		last := lf.entries[len(lf.entries)-1]
		if end := last.off + int64(last.size); end != tc.end || !bytes.Equal(data[end:], make([]byte, len(data)-int(end))) {
			t.Errorf("%s: entries end at %d, want %d followed by zeros", tc.rel, end, tc.end)
		}
	}
}

// TestRecoverLeavesFilesAlone: recovery reads; the fixture files are
// unchanged afterwards.
func TestRecoverLeavesFilesAlone(t *testing.T) {
	names := []string{"NewDirtyHive1/NewDirtyHive", "NewDirtyHive1/NewDirtyHive.LOG1", "NewDirtyHive1/NewDirtyHive.LOG2"}
	sum := func() [][32]byte {
		var s [][32]byte
		for _, n := range names {
			s = append(s, sha256.Sum256(yarpFile(t, n)))
		}
		return s
	}
	before := sum()
	var files []*os.File
	open := func(rel string) (*os.File, int64) {
		f, err := os.Open(testutil.SharedFixture(t, "hives/yarp/"+rel))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		return f, st.Size()
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	p, ps := open(names[0])
	l1, l1s := open(names[1])
	l2, l2s := open(names[2])
	rc, err := recoverHive(p, ps, []Log{{"LOG1", l1, l1s}, {"LOG2", l2, l2s}})
	if err != nil {
		t.Fatal(err)
	}
	readAllAt(t, rc.ReaderAt(p), rc.size)
	if fmt.Sprint(sum()) != fmt.Sprint(before) {
		t.Fatal("fixture files changed")
	}
}

// TestRecoverPersist plays the editor's part: writing pageWrites over a
// copy of the primary and then baseWithSequence(nextSequence()) gives a
// clean file equal to the overlay, and for NewDirtyHive1 equal to
// RecoveredHive_Windows10 byte for byte (Windows also wrote 6/6).
func TestRecoverPersist(t *testing.T) {
	rc, primary, err := recoverFixture(t, "NewDirtyHive1/NewDirtyHive",
		"NewDirtyHive1/NewDirtyHive.LOG1", "NewDirtyHive1/NewDirtyHive.LOG2")
	if err != nil {
		t.Fatal(err)
	}
	file := append([]byte(nil), primary...)
	for _, w := range rc.pageWrites() {
		if w.off < BaseBlockSize || w.off+int64(len(w.data)) > int64(len(file)) {
			t.Fatalf("write at 0x%x (%d bytes) outside the hive bins of this file", w.off, len(w.data))
		}
		copy(file[w.off:], w.data)
	}
	copy(file, rc.baseWithSequence(rc.nextSequence()))
	windows := yarpFile(t, "NewDirtyHive1/RecoveredHive_Windows10")
	if d := diffRanges(file, windows); len(d) != 0 {
		t.Errorf("persisted recovery differs from RecoveredHive_Windows10 at %v", d)
	}
	img := rc.image(t, primary)
	if !bytes.Equal(file[BaseBlockSize:], img[BaseBlockSize:]) {
		t.Error("persisted bins differ from the overlay")
	}
	if ws := rc.pageWrites(); len(ws) != 1 || ws[0].off != BaseBlockSize || len(ws[0].data) != 20480 {
		t.Errorf("page writes %d runs, want one run of the 20480 bytes of bins", len(ws))
	}
}

// TestRecoverOldInvalidDirtyBin: an old-format log whose dirty copy of the
// bin at 0x6A000 has a bad header is replayed up to that bin only (dirty
// pages: 16 at 0x0, 16 at 0xC000, 8 at 0x6A000, 24 at 0x74000).
func TestRecoverOldInvalidDirtyBin(t *testing.T) {
	primary := yarpFile(t, "OldDirtyHive/OldDirtyHive")
	for _, tc := range []struct {
		name  string
		edit  func(page []byte)
		pages int
	}{
		{"signature", func(p []byte) { copy(p, "hbim") }, 32},
		{"offset", func(p []byte) { binary.LittleEndian.PutUint32(p[4:], 0x6B000) }, 32},
		{"size", func(p []byte) { binary.LittleEndian.PutUint32(p[8:], 0x800) }, 32},
		{"unchanged", func([]byte) {}, 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := append([]byte(nil), yarpFile(t, "OldDirtyHive/OldDirtyHive.LOG1")...)
			tc.edit(log[1024+32*512:])
			rc, err := recoverHive(bytes.NewReader(primary), int64(len(primary)), []Log{memLog("LOG1", log)})
			if err != nil {
				t.Fatal(err)
			}
			if rc.applied[0].pages != tc.pages || len(rc.pages) != tc.pages {
				t.Fatalf("%d pages applied (%d in the map), want %d", rc.applied[0].pages, len(rc.pages), tc.pages)
			}
			img := rc.image(t, primary)
			cut := BaseBlockSize + 0x6A000
			if tc.pages == 32 && !bytes.Equal(img[cut:], primary[cut:]) {
				t.Error("bytes from the bad bin on are not the primary's")
			}
			if bytes.Equal(img[BaseBlockSize:cut], primary[BaseBlockSize:cut]) {
				t.Error("pages before the bad bin were not applied")
			}
		})
	}
}

// BenchmarkRecoverNewDirtyHive1 measures a full replay of both logs plus a
// read of the recovered bins.
func BenchmarkRecoverNewDirtyHive1(b *testing.B) {
	primary := yarpFile(b, "NewDirtyHive1/NewDirtyHive")
	l1 := yarpFile(b, "NewDirtyHive1/NewDirtyHive.LOG1")
	l2 := yarpFile(b, "NewDirtyHive1/NewDirtyHive.LOG2")
	buf := make([]byte, 20480)
	b.ResetTimer()
	for b.Loop() {
		rc, err := recoverHive(bytes.NewReader(primary), int64(len(primary)), []Log{memLog("LOG1", l1), memLog("LOG2", l2)})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rc.ReaderAt(bytes.NewReader(primary)).ReadAt(buf, BaseBlockSize); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(l1)+len(l2)+BaseBlockSize+len(buf)), "bytes-read/op")
}
