package offline

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/wuoffline/wuoffline/internal/evtxgen"
	"github.com/wuoffline/wuoffline/internal/testutil"
)

func testLog(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "logs", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLogParsers(t *testing.T) {
	tests := []struct {
		file      string
		parse     func(*LogFinding, []byte, bool)
		failures  int
		hresults  map[string]int
		kbs       []string
		missing   []string
		causes    []string
		install   bool
		startup   bool
		bits      bool
		upgrade   bool
		logFull   bool
		lastLine  int
		lastInclu string
	}{
		{file: "CBS.log", parse: parseCBS, failures: 4,
			hresults: map[string]int{"0x80070002": 3, "0x800719e4": 1},
			kbs:      []string{"KB5037768"},
			missing:  []string{`amd64_microsoft-windows-servicingstack_31bf3856ad364e35_10.0.19041.4350_none_7d3f2bd3f1c0a1b2\wcp.dll`},
			install:  true, logFull: true, lastLine: 7, lastInclu: "Processing complete"},
		{file: "dism.log", parse: parseDISM, failures: 1, hresults: map[string]int{"0x80070002": 1}, install: true, lastLine: 3, lastInclu: "Internal_Finalize"},
		{file: "setuperr.log", parse: parseSetupErr, failures: 2, hresults: map[string]int{"0x80070002": 2}, upgrade: true, lastLine: 2},
		{file: "ReportingEvents.log", parse: parseReportingEvents, failures: 2,
			hresults: map[string]int{"0x80070002": 1, "0x80200053": 1}, kbs: []string{"KB5037768"}, install: true, bits: true, lastLine: 2, lastInclu: "Download failed"},
		{file: "WindowsUpdate.log", parse: parseWindowsUpdateLog, failures: 2,
			hresults: map[string]int{"0x80070002": 1, "0x80200053": 1}, install: true, bits: true, lastLine: 3, lastInclu: "BITS job failed"},
		{file: "SrtTrail.txt", parse: parseSrtTrail, failures: 2, hresults: map[string]int{"0x80070002": 1},
			causes: []string{"A patch is preventing the system from starting."}, startup: true, lastLine: 11},
		{file: "SrtTrail-ansi.txt", parse: parseSrtTrail, failures: 2, hresults: map[string]int{"0x80070002": 1},
			causes: []string{`Boot critical file c:\windows\system32\drivers\x.sys is corrupt. A patch is preventing the system from starting.`}, startup: true, lastLine: 11},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f := &LogFinding{Path: tt.file}
			tt.parse(f, testLog(t, tt.file), false)
			if f.Failures != tt.failures {
				t.Errorf("failures = %d, want %d; excerpts %+v", f.Failures, tt.failures, f.Excerpts)
			}
			if len(f.HRESULTs) != len(tt.hresults) {
				t.Errorf("hresults = %v, want %v", f.HRESULTs, tt.hresults)
			}
			for h, n := range tt.hresults {
				if f.HRESULTs[h] != n {
					t.Errorf("hresult %s x%d, want x%d", h, f.HRESULTs[h], n)
				}
			}
			if !slices.Equal(f.KBs, tt.kbs) {
				t.Errorf("KBs = %v, want %v", f.KBs, tt.kbs)
			}
			if !slices.Equal(f.MissingFiles, tt.missing) {
				t.Errorf("missing = %q, want %q", f.MissingFiles, tt.missing)
			}
			if !slices.Equal(f.RootCauses, tt.causes) {
				t.Errorf("causes = %q, want %q", f.RootCauses, tt.causes)
			}
			if f.InstallFailure != tt.install || f.StartupFailure != tt.startup || f.BITSFailure != tt.bits || f.UpgradeFailure != tt.upgrade || f.LogFull != tt.logFull {
				t.Errorf("flags install=%v startup=%v bits=%v upgrade=%v logfull=%v, want %v %v %v %v %v",
					f.InstallFailure, f.StartupFailure, f.BITSFailure, f.UpgradeFailure, f.LogFull,
					tt.install, tt.startup, tt.bits, tt.upgrade, tt.logFull)
			}
			if n := len(f.Excerpts); n == 0 {
				t.Fatal("no excerpts")
			} else {
				last := f.Excerpts[n-1]
				if last.Line != tt.lastLine {
					t.Errorf("last excerpt line %d, want %d", last.Line, tt.lastLine)
				}
				if !strings.Contains(last.Text, tt.lastInclu) {
					t.Errorf("last excerpt %q lacks %q", last.Text, tt.lastInclu)
				}
			}
		})
	}
}

func TestCBSTimes(t *testing.T) {
	f := &LogFinding{}
	parseCBS(f, testLog(t, "CBS.log"), false)
	if f.Last == nil || f.Last.Format("2006-01-02 15:04:05") != "2024-05-14 10:21:35" {
		t.Errorf("last = %v", f.Last)
	}
}

// TestReadLogsTail: a log bigger than maxLogTail is read from its end;
// only what is in the tail counts and line numbers are not claimed.
func TestReadLogsTail(t *testing.T) {
	filler := bytes.Repeat([]byte("2024-05-14 09:00:00, Info                  CBS    nothing to see here, just filling the log up\r\n"), maxLogTail/60)
	early := []byte("2024-05-14 08:00:00, Error                 CBS    early failure [HRESULT = 0x80070003 - ERROR_PATH_NOT_FOUND]\r\n")
	data := append(append(early, filler...), testLog(t, "CBS.log")...)
	fsys := fstest.MapFS{"Windows/Logs/CBS/CBS.log": {Data: data}}
	l := ReadLogs(fsys)
	if len(l.Findings) != 1 {
		t.Fatalf("findings = %+v", l.Findings)
	}
	f := l.Findings[0]
	if !f.Tail || f.Failures != 4 || f.HRESULTs["0x80070003"] != 0 {
		t.Errorf("tail=%v failures=%d hresults=%v; want the tail only (4 failures, no 0x80070003)", f.Tail, f.Failures, f.HRESULTs)
	}
	for _, x := range f.Excerpts {
		if x.Line != 0 {
			t.Errorf("excerpt claims line %d in a tail read", x.Line)
		}
	}
}

func TestReadLogsAll(t *testing.T) {
	fsys := fstest.MapFS{
		"Windows/Logs/CBS/CBS.log":                         {Data: testLog(t, "CBS.log")},
		"Windows/Logs/CBS/CbsPersist_20240510101010.log":   {Data: testLog(t, "CBS.log")},
		"Windows/Logs/CBS/CbsPersist_20240401101010.cab":   {Data: []byte("MSCF")},
		"Windows/System32/LogFiles/Srt/SrtTrail.txt":       {Data: testLog(t, "SrtTrail.txt")},
		"Windows/SoftwareDistribution/ReportingEvents.log": {Data: testLog(t, "ReportingEvents.log")},
		"Windows/WindowsUpdate.log":                        {Data: testLog(t, "WindowsUpdate.log")},
		"Windows/Panther/setuperr.log":                     {Data: testLog(t, "setuperr.log")},
		"$WINDOWS.~BT/Sources/Panther/setuperr.log":        {Data: testLog(t, "setuperr.log")},
		"Windows/Logs/DISM/dism.log":                       {Data: testLog(t, "dism.log")},
		"Windows/Logs/WindowsUpdate/WindowsUpdate.1.etl":   {Data: make([]byte, 4096)},
		"Windows/System32/winevt/Logs/System.evtx":         {Data: evtxgen.File(evtxgen.SampleEvents())},
	}
	l := ReadLogs(fsys)
	formats := map[string]int{}
	for _, f := range l.Findings {
		formats[f.Format]++
		if f.Error != "" {
			t.Errorf("%s: %s", f.Path, f.Error)
		}
	}
	want := map[string]int{"cbs": 2, "cab": 1, "srttrail": 1, "reportingevents": 1, "windowsupdate": 1, "setuperr": 2, "dism": 1, "etl": 1, "evtx": 1}
	for k, n := range want {
		if formats[k] != n {
			t.Errorf("%d %s findings, want %d (all: %v)", formats[k], k, n, formats)
		}
	}
	if len(l.InstallFailures()) != 6 || len(l.StartupFailures()) != 1 || len(l.UpgradeFailures()) != 2 || len(l.LogFull()) != 2 || len(l.BITSFailures()) != 2 {
		t.Errorf("install %d startup %d upgrade %d logfull %d bits %d", len(l.InstallFailures()), len(l.StartupFailures()), len(l.UpgradeFailures()), len(l.LogFull()), len(l.BITSFailures()))
	}
}

func TestDecodeText(t *testing.T) {
	u16 := func(s string) []byte {
		var b []byte
		for _, r := range s {
			b = append(b, byte(r), byte(r>>8))
		}
		return b
	}
	tests := map[string][]byte{
		"bom16": append([]byte{0xff, 0xfe}, u16("Root cause found:")...),
		"raw16": u16("Root cause found:"),
		"utf8":  []byte("\xef\xbb\xbfRoot cause found:"),
		"ansi":  []byte("Root cause found:"),
	}
	for name, b := range tests {
		if got := decodeText(b); got != "Root cause found:" {
			t.Errorf("%s: %q", name, got)
		}
	}
}

// FuzzCBSLog: the line parsers of CBS/DISM/setup/ReportingEvents/
// WindowsUpdate/SrtTrail logs take any bytes without panicking and keep
// their bounded lists bounded.
func FuzzCBSLog(f *testing.F) {
	for _, n := range []string{"CBS.log", "dism.log", "setuperr.log", "ReportingEvents.log", "WindowsUpdate.log", "SrtTrail.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", "logs", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
	}
	f.Fuzz(func(t *testing.T, data []byte, tail bool) {
		for _, p := range []func(*LogFinding, []byte, bool){parseCBS, parseDISM, parseSetupErr, parseReportingEvents, parseWindowsUpdateLog, parseSrtTrail} {
			lf := &LogFinding{}
			p(lf, data, tail)
			if len(lf.Excerpts) > maxExcerpts || len(lf.KBs) > maxListItems || len(lf.MissingFiles) > maxListItems || len(lf.RootCauses) > maxListItems {
				t.Fatalf("unbounded lists: %d excerpts %d kbs", len(lf.Excerpts), len(lf.KBs))
			}
		}
	})
}

func TestReadEVTXFinding(t *testing.T) {
	fsys := fstest.MapFS{"Windows/System32/winevt/Logs/System.evtx": {Data: evtxgen.File(evtxgen.SampleEvents())}}
	f := readEVTXFinding(fsys, "Windows/System32/winevt/Logs/System.evtx")
	if f == nil || f.Error != "" {
		t.Fatalf("finding = %+v", f)
	}
	if f.Failures != 2 || !f.InstallFailure || f.HRESULTs["0x80070002"] != 2 {
		t.Errorf("failures %d, install %v, hresults %v; want 2 failures 0x80070002", f.Failures, f.InstallFailure, f.HRESULTs)
	}
	if len(f.KBs) != 1 || f.KBs[0] != "KB5043076" {
		t.Errorf("KBs = %v, want [KB5043076]", f.KBs)
	}
	if readEVTXFinding(fstest.MapFS{}, "x.evtx") != nil {
		t.Error("missing log gave a finding")
	}
}

// TestReadEVTXFindingRealLog: the real Windows 10 1703 System log's
// WindowsUpdateClient failures (event 20: 0x80248007 for KB4025342,
// 0x80246013 for KB890830) are reported.
func TestReadEVTXFindingRealLog(t *testing.T) {
	b, err := os.ReadFile(testutil.SharedFixture(t, "evtx/System-win10-1703.evtx"))
	if err != nil {
		t.Fatal(err)
	}
	f := readEVTXFinding(fstest.MapFS{"System.evtx": {Data: b}}, "System.evtx")
	if f == nil || f.Error != "" || !f.InstallFailure {
		t.Fatalf("finding = %+v", f)
	}
	if f.HRESULTs["0x80248007"] == 0 || f.HRESULTs["0x80246013"] == 0 {
		t.Errorf("HRESULTs = %v, want 0x80248007 and 0x80246013", f.HRESULTs)
	}
	if !slices.Contains(f.KBs, "KB4025342") || !slices.Contains(f.KBs, "KB890830") {
		t.Errorf("KBs = %v, want KB4025342 and KB890830", f.KBs)
	}
	if f.Last == nil || f.Last.Year() != 2017 {
		t.Errorf("last failure %v, want a 2017 time", f.Last)
	}
}
