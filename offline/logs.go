package offline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Bounds of log reading. Logs on a machine that failed to update for months
// grow to hundreds of MiB; the evidence that matters is the most recent, so
// only the tail of each file is read and only a few excerpts are kept.
const (
	maxLogTail   = 4 << 20 // bytes read from the end of one text log
	maxExcerpts  = 5       // the last N matching lines kept per log
	maxListItems = 20      // KBs, missing files, root causes kept per log
	maxLogFiles  = 16      // CbsPersist_*.log files read (newest names first)
)

// LogFinding is what one log file shows.
type LogFinding struct {
	// Path is the log's path on the volume (`\` separators).
	Path string `json:"path"`
	// Format: "cbs", "srttrail", "reportingevents", "windowsupdate",
	// "setuperr", "dism", "etl", "evtx", "cab".
	Format string `json:"format"`
	Size   int64  `json:"size"`
	// Tail is true when only the last part of a big file was read.
	Tail bool `json:"tail,omitempty"`
	// Failures counts the failure lines/events matched.
	Failures int `json:"failures"`
	// HRESULTs counts each failing HRESULT seen ("0x80070002").
	HRESULTs map[string]int `json:"hresults,omitempty"`
	// KBs lists the update (KB) numbers named by failures, most recent last.
	KBs []string `json:"kbs,omitempty"`
	// MissingFiles lists what `Failed to find file:` (CBS) named.
	MissingFiles []string `json:"missing_files,omitempty"`
	// RootCauses are Startup Repair's root-cause lines (SrtTrail.txt).
	RootCauses []string `json:"root_causes,omitempty"`
	// Last is the time of the last failure, when the log records times.
	Last *time.Time `json:"last,omitempty"`
	// Excerpts are the last few matching lines.
	Excerpts []Excerpt `json:"excerpts,omitempty"`
	// Classification used by the checks.
	InstallFailure bool   `json:"install_failure,omitempty"` // update download/installation failed
	StartupFailure bool   `json:"startup_failure,omitempty"` // Startup Repair blames servicing
	BITSFailure    bool   `json:"bits_failure,omitempty"`    // BITS (BG_E_*) errors
	UpgradeFailure bool   `json:"upgrade_failure,omitempty"` // setup (upgrade) errors
	LogFull        bool   `json:"log_full,omitempty"`        // 0x800719e4 ERROR_LOG_FULL (TxR)
	Error          string `json:"error,omitempty"`
}

// Excerpt is one matching log line.
type Excerpt struct {
	// Line is 1-based within the file, 0 when only the tail was read.
	Line int        `json:"line,omitempty"`
	Time *time.Time `json:"time,omitempty"`
	Text string     `json:"text"`
}

// Logs is the log evidence of one installation.
type Logs struct {
	Findings []LogFinding
}

// InstallFailures returns the findings that show failed update installs.
func (l *Logs) InstallFailures() []LogFinding {
	return l.filter(func(f *LogFinding) bool { return f.InstallFailure })
}

// StartupFailures returns the findings that blame servicing for a failed boot.
func (l *Logs) StartupFailures() []LogFinding {
	return l.filter(func(f *LogFinding) bool { return f.StartupFailure })
}

// BITSFailures returns the findings that show BITS errors.
func (l *Logs) BITSFailures() []LogFinding {
	return l.filter(func(f *LogFinding) bool { return f.BITSFailure })
}

// UpgradeFailures returns the findings from setuperr.log.
func (l *Logs) UpgradeFailures() []LogFinding {
	return l.filter(func(f *LogFinding) bool { return f.UpgradeFailure })
}

// LogFull returns the findings naming 0x800719e4 (ERROR_LOG_FULL).
func (l *Logs) LogFull() []LogFinding {
	return l.filter(func(f *LogFinding) bool { return f.LogFull })
}

// LastFailure returns the most recent failure of any log (the latest
// time; a log without times counts only when no log has one), nil when no
// log shows a failure.
func (l *Logs) LastFailure() *PastFailure {
	var best *LogFinding
	for i := range l.Findings {
		f := &l.Findings[i]
		if f.Failures == 0 || len(f.Excerpts) == 0 {
			continue
		}
		switch {
		case best == nil:
			best = f
		case f.Last != nil && (best.Last == nil || f.Last.After(*best.Last)):
			best = f
		}
	}
	if best == nil {
		return nil
	}
	ex := best.Excerpts[len(best.Excerpts)-1]
	pf := &PastFailure{Path: best.Path, Text: ex.Text, Time: ex.Time}
	if pf.Time == nil {
		pf.Time = best.Last
	}
	if hrs := failingHRESULTs(ex.Text); len(hrs) > 0 {
		pf.HRESULT = hrs[0]
	}
	if m := reKB.FindStringSubmatch(ex.Text); m != nil {
		pf.KB = "KB" + m[1]
	} else if len(best.KBs) > 0 {
		pf.KB = best.KBs[len(best.KBs)-1]
	}
	return pf
}

func (l *Logs) filter(keep func(*LogFinding) bool) []LogFinding {
	var out []LogFinding
	for i := range l.Findings {
		if keep(&l.Findings[i]) {
			out = append(out, l.Findings[i])
		}
	}
	return out
}

// logEvidence turns findings into check evidence (the last excerpt of each).
func logEvidence(findings []LogFinding, what string) []Evidence {
	var out []Evidence
	for _, f := range findings {
		ev := Evidence{Kind: "log", Path: f.Path, Count: f.Failures, Time: f.Last}
		detail := fmt.Sprintf("%s: %d %s", f.Format, f.Failures, what)
		if len(f.HRESULTs) > 0 {
			detail += " (" + hresultSummary(f.HRESULTs) + ")"
		}
		if len(f.KBs) > 0 {
			detail += "; updates " + strings.Join(f.KBs, ", ")
		}
		if len(f.MissingFiles) > 0 {
			detail += "; missing file " + f.MissingFiles[len(f.MissingFiles)-1]
		}
		if len(f.RootCauses) > 0 {
			detail += "; root cause: " + f.RootCauses[len(f.RootCauses)-1]
		}
		if n := len(f.Excerpts); n > 0 {
			x := f.Excerpts[n-1]
			ev.Line = x.Line
			if x.Time != nil {
				ev.Time = x.Time
			}
			detail += "; last: " + clip(x.Text, 240)
		}
		ev.Detail = detail
		out = append(out, ev)
	}
	return out
}

func hresultSummary(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var parts []string
	for i, k := range keys {
		if i == 4 {
			parts = append(parts, "...")
			break
		}
		name := hresultName(k)
		if name != "" {
			parts = append(parts, fmt.Sprintf("%s %s x%d", k, name, m[k]))
		} else {
			parts = append(parts, fmt.Sprintf("%s x%d", k, m[k]))
		}
	}
	return strings.Join(parts, ", ")
}

// hresultName names the HRESULTs that matter here.
func hresultName(h string) string {
	switch strings.ToLower(h) {
	case "0x80070002":
		return "ERROR_FILE_NOT_FOUND"
	case "0x80070003":
		return "ERROR_PATH_NOT_FOUND"
	case "0x800719e4":
		return "ERROR_LOG_FULL"
	case "0x800f081f":
		return "CBS_E_SOURCE_MISSING"
	case "0x800f0922":
		return "CBS_E_INSTALLERS_FAILED"
	case "0x80073712":
		return "ERROR_SXS_COMPONENT_STORE_CORRUPT"
	case "0x8024402c":
		return "WU_E_PT_WINHTTP_NAME_NOT_RESOLVED"
	case "0x80244022":
		return "WU_E_PT_HTTP_STATUS_SERVICE_UNAVAIL"
	}
	return ""
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// ReadLogs reads every log of repair-catalog.md ("Evidence in logs") that
// exists on the volume. Missing logs are simply absent from the result; a
// log that cannot be read is a finding with Error set.
func ReadLogs(fsys fs.FS) *Logs {
	l := &Logs{}
	add := func(p, format string, parse func(*LogFinding, []byte, bool)) {
		f, ok := readTail(fsys, p, format)
		if !ok {
			return
		}
		if f.Error == "" && parse != nil {
			parse(&f.LogFinding, f.data, f.Tail)
		}
		f.data = nil
		l.Findings = append(l.Findings, f.LogFinding)
	}
	add("Windows/Logs/CBS/CBS.log", "cbs", parseCBS)
	for _, p := range globNames(fsys, "Windows/Logs/CBS", "cbspersist_", ".log", maxLogFiles) {
		add(p, "cbs", parseCBS)
	}
	for _, p := range globNames(fsys, "Windows/Logs/CBS", "cbspersist_", ".cab", maxLogFiles) {
		add(p, "cab", nil) // compressed: presence only
	}
	add("Windows/System32/LogFiles/Srt/SrtTrail.txt", "srttrail", parseSrtTrail)
	add("Windows/SoftwareDistribution/ReportingEvents.log", "reportingevents", parseReportingEvents)
	add("Windows/WindowsUpdate.log", "windowsupdate", parseWindowsUpdateLog)
	add("Windows/Panther/setuperr.log", "setuperr", parseSetupErr)
	add("$WINDOWS.~BT/Sources/Panther/setuperr.log", "setuperr", parseSetupErr)
	add("Windows/Logs/DISM/dism.log", "dism", parseDISM)
	if etls := globNames(fsys, "Windows/Logs/WindowsUpdate", "", ".etl", 1<<20); len(etls) > 0 {
		var total int64
		for _, p := range etls {
			if fi, err := fs.Stat(fsys, p); err == nil {
				total += fi.Size()
			}
		}
		l.Findings = append(l.Findings, LogFinding{
			Path: winPath("Windows/Logs/WindowsUpdate") + `\*.etl`, Format: "etl", Size: total,
			Excerpts: []Excerpt{{Text: fmt.Sprintf("%d ETW trace files (binary; run Get-WindowsUpdateLog on a working Windows to read them)", len(etls))}},
		})
	}
	if f := readEVTXFinding(fsys, "Windows/System32/winevt/Logs/System.evtx"); f != nil {
		l.Findings = append(l.Findings, *f)
	}
	return l
}

// tailFinding is a finding with the bytes read.
type tailFinding struct {
	LogFinding
	data []byte
}

// readTail reads at most the last maxLogTail bytes of a file. ok is false
// when the file does not exist.
func readTail(fsys fs.FS, p, format string) (tailFinding, bool) {
	tf := tailFinding{LogFinding: LogFinding{Path: winPath(p), Format: format}}
	f, err := fsys.Open(p)
	if err != nil {
		if isNotExist(err) {
			return tf, false
		}
		tf.Error = err.Error()
		return tf, true
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		tf.Error = err.Error()
		return tf, true
	}
	if !fi.Mode().IsRegular() {
		return tf, false
	}
	tf.Size = fi.Size()
	if format == "cab" {
		return tf, true
	}
	n := tf.Size
	off := int64(0)
	if n > maxLogTail {
		off, n = n-maxLogTail, maxLogTail
		tf.Tail = true
	}
	buf := make([]byte, n)
	if ra, ok := f.(io.ReaderAt); ok {
		m, err := ra.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			tf.Error = fmt.Sprintf("reading %d bytes at %d: %v", n, off, err)
			return tf, true
		}
		buf = buf[:m]
	} else {
		if off > 0 {
			if _, err := io.CopyN(io.Discard, f, off); err != nil {
				tf.Error = err.Error()
				return tf, true
			}
		}
		m, err := io.ReadFull(f, buf)
		if err != nil && err != io.ErrUnexpectedEOF {
			tf.Error = err.Error()
			return tf, true
		}
		buf = buf[:m]
	}
	tf.data = buf
	return tf, true
}

// globNames lists files of dir whose lower-case name has prefix and suffix,
// sorted by name, the last max of them.
func globNames(fsys fs.FS, dir, prefix, suffix string, max int) []string {
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		n := strings.ToLower(e.Name())
		if e.Type().IsRegular() && strings.HasPrefix(n, prefix) && strings.HasSuffix(n, suffix) {
			out = append(out, path.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return out
}

// decodeText turns a log's bytes into a string: UTF-16LE when it has a BOM
// (SrtTrail.txt is written so) or looks like UTF-16 (NULs in odd places),
// else UTF-8/ANSI as is. A tail read may start in the middle of a line or
// of a UTF-16 code unit; the caller drops the first partial line.
func decodeText(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte{0xff, 0xfe}):
		return utf16LE(b[2:])
	case bytes.HasPrefix(b, []byte{0xef, 0xbb, 0xbf}):
		return string(b[3:])
	case looksUTF16(b):
		return utf16LE(b)
	}
	return string(b)
}

func looksUTF16(b []byte) bool {
	if len(b) < 8 {
		return false
	}
	n := min(len(b), 512) &^ 1
	odd, even := 0, 0
	for i := 0; i < n; i += 2 {
		if b[i] == 0 {
			even++
		}
		if b[i+1] == 0 {
			odd++
		}
	}
	// ASCII text in UTF-16LE has a NUL in every odd byte.
	return odd > n/4 && even < n/16
}

func utf16LE(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return string(utf16.Decode(u))
}

// eachLine calls fn for every line of text with its 1-based number (0 when
// tail is set: numbers are unknown then). The first, possibly partial, line
// of a tail is skipped.
func eachLine(data []byte, tail bool, fn func(n int, line string)) {
	text := decodeText(data)
	lines := strings.Split(text, "\n")
	for i, ln := range lines {
		if tail && i == 0 {
			continue
		}
		ln = strings.TrimRight(ln, "\r\x00")
		if ln == "" {
			continue
		}
		n := i + 1
		if tail {
			n = 0
		}
		fn(n, ln)
	}
}

var (
	reHRESULT = regexp.MustCompile(`(?i)0x[0-9a-f]{8}\b`)
	reKB      = regexp.MustCompile(`\bKB(\d{6,8})\b`)
	// "Package_for_KB5034441~31bf3856ad364e35~amd64~~10.0.1.0" names a KB too.
	rePackageKB = regexp.MustCompile(`(?i)Package_(?:for_|\d+_for_)?KB(\d{6,8})`)
)

// failingHRESULTs returns the HRESULTs of s that are failures (severity
// bit set: 0x8xxxxxxx or 0xCxxxxxxx), lower-case.
func failingHRESULTs(s string) []string {
	var out []string
	for _, h := range reHRESULT.FindAllString(s, -1) {
		c := h[2]
		if c == '8' || c == 'c' || c == 'C' {
			out = append(out, strings.ToLower(h))
		}
	}
	return out
}

// record notes one matching line in a finding.
func (f *LogFinding) record(n int, t *time.Time, line string, hrs []string) {
	f.Failures++
	if f.HRESULTs == nil && len(hrs) > 0 {
		f.HRESULTs = map[string]int{}
	}
	for _, h := range hrs {
		if len(f.HRESULTs) < 64 || f.HRESULTs[h] > 0 {
			f.HRESULTs[h]++
		}
		if h == "0x800719e4" {
			f.LogFull = true
		}
	}
	for _, m := range reKB.FindAllStringSubmatch(line, -1) {
		f.addKB("KB" + m[1])
	}
	for _, m := range rePackageKB.FindAllStringSubmatch(line, -1) {
		f.addKB("KB" + m[1])
	}
	if t != nil {
		if f.Last == nil || t.After(*f.Last) {
			tt := *t
			f.Last = &tt
		}
	}
	f.Excerpts = append(f.Excerpts, Excerpt{Line: n, Time: t, Text: clip(strings.TrimSpace(line), 400)})
	if len(f.Excerpts) > maxExcerpts {
		f.Excerpts = f.Excerpts[len(f.Excerpts)-maxExcerpts:]
	}
}

func (f *LogFinding) addKB(kb string) {
	f.KBs = appendRecent(f.KBs, kb)
}

// appendRecent appends s to a bounded list, moving it to the end when it
// is already there (so the list ends with the most recent).
func appendRecent(list []string, s string) []string {
	for i, x := range list {
		if x == s {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	list = append(list, s)
	if len(list) > maxListItems {
		list = list[len(list)-maxListItems:]
	}
	return list
}

// parseCBSTime parses the "2024-05-14 10:21:33" prefix of CBS, DISM and
// setup logs (local time of the machine; reported as is, zone unknown).
func parseCBSTime(line string) (*time.Time, string, bool) {
	if len(line) < 20 || line[4] != '-' || line[7] != '-' || line[10] != ' ' || line[13] != ':' {
		return nil, line, false
	}
	t, err := time.Parse("2006-01-02 15:04:05", line[:19])
	if err != nil {
		return nil, line, false
	}
	rest := strings.TrimPrefix(line[19:], ",")
	return &t, strings.TrimSpace(rest), true
}

// splitLevel splits "Error                 CBS    message" into its level,
// component and message (the CBS/DISM/setup line layout).
func splitLevel(rest string) (level, comp, msg string) {
	f := strings.Fields(rest)
	if len(f) < 2 {
		return "", "", rest
	}
	level, comp = f[0], f[1]
	i := strings.Index(rest, comp)
	msg = strings.TrimSpace(rest[i+len(comp):])
	return level, comp, msg
}

// reMissing extracts the file of "Failed to find file: <name>" (CBS);
// the name ends at " [" (the HRESULT) or the end of the line.
var reMissing = regexp.MustCompile(`(?i)Failed to find file:?\s*(.+?)(?:\s*\[HRESULT|\s*$)`)

// parseCBS reads CBS.log / CbsPersist_*.log. Lines are
// `2024-05-14 10:21:33, Error                 CBS    Failed to ... [HRESULT = 0x80070002 - ERROR_FILE_NOT_FOUND]`.
// A failure is an Error-level line or a line with a failing HRESULT
// ("HRESULT = 0x00000000" is success and is very common).
func parseCBS(f *LogFinding, data []byte, tail bool) {
	eachLine(data, tail, func(n int, line string) {
		t, rest, ok := parseCBSTime(line)
		if !ok {
			return
		}
		level, _, msg := splitLevel(rest)
		hrs := failingHRESULTs(msg)
		missing := reMissing.FindStringSubmatch(msg)
		if !strings.EqualFold(level, "Error") && len(hrs) == 0 && missing == nil {
			return
		}
		f.record(n, t, line, hrs)
		if missing != nil {
			f.MissingFiles = appendRecent(f.MissingFiles, strings.TrimSpace(missing[1]))
		}
		f.InstallFailure = true
	})
}

// parseDISM reads dism.log (same line layout as CBS.log): error lines with
// a failing HRESULT, such as `(hr:0x80070002)`.
func parseDISM(f *LogFinding, data []byte, tail bool) {
	eachLine(data, tail, func(n int, line string) {
		t, rest, ok := parseCBSTime(line)
		if !ok {
			return
		}
		level, _, msg := splitLevel(rest)
		hrs := failingHRESULTs(msg)
		if !strings.EqualFold(level, "Error") || len(hrs) == 0 {
			return
		}
		f.record(n, t, line, hrs)
		f.InstallFailure = true
	})
}

// parseSetupErr reads setuperr.log (Panther): every line is an error of
// Windows Setup, which is the upgrade case.
func parseSetupErr(f *LogFinding, data []byte, tail bool) {
	eachLine(data, tail, func(n int, line string) {
		t, _, _ := parseCBSTime(line)
		f.record(n, t, line, failingHRESULTs(line))
		f.UpgradeFailure = true
	})
}

// parseSrtTrail reads Startup Repair's log. It is written in UTF-16LE with
// a BOM (older ones in ANSI); the root cause follows a "Root cause found:"
// line and a dashed rule, e.g. "A patch is preventing the system from starting."
func parseSrtTrail(f *LogFinding, data []byte, tail bool) {
	inCause := false
	eachLine(data, tail, func(n int, line string) {
		s := strings.TrimSpace(line)
		low := strings.ToLower(s)
		switch {
		case strings.HasPrefix(low, "root cause found"):
			inCause = true
			return
		case inCause && strings.Trim(s, "-") == "":
			return
		case inCause:
			inCause = false
			f.RootCauses = appendRecent(f.RootCauses, s)
			f.record(n, nil, s, failingHRESULTs(s))
			if srtBlamesServicing(low) {
				f.StartupFailure = true
			}
			return
		}
		if hrs := failingHRESULTs(s); len(hrs) > 0 || strings.Contains(low, "patch is preventing") {
			f.record(n, nil, s, hrs)
			if srtBlamesServicing(low) || containsAny(hrs, "0x80070002") {
				f.StartupFailure = true
			}
		}
	})
}

// srtBlamesServicing reports whether a Startup Repair line points at
// updates/servicing (what wuoffline repairs).
func srtBlamesServicing(low string) bool {
	for _, k := range []string{"patch is preventing", "pending", "update", "0x80070002", "servicing"} {
		if strings.Contains(low, k) {
			return true
		}
	}
	return false
}

func containsAny(list []string, want ...string) bool {
	for _, x := range list {
		for _, w := range want {
			if strings.EqualFold(x, w) {
				return true
			}
		}
	}
	return false
}

// parseReportingEvents reads SoftwareDistribution\ReportingEvents.log, one
// tab-separated record per line:
//
//	{GUID} TIME 1 EVENT CATEGORY {UPDATE} 200 HRESULT SOURCE Success|Failure STAGE MESSAGE
//
// where HRESULT is 8 hex digits without 0x. A failure is a record whose
// 10th field is "Failure" or whose HRESULT is a failure code.
func parseReportingEvents(f *LogFinding, data []byte, tail bool) {
	eachLine(data, tail, func(n int, line string) {
		fields := strings.Split(line, "\t")
		if len(fields) < 12 {
			return
		}
		hr := strings.ToLower(strings.TrimSpace(fields[7]))
		var hrs []string
		if len(hr) == 8 && (hr[0] == '8' || hr[0] == 'c') && isHex(hr) {
			hrs = []string{"0x" + hr}
		}
		if !strings.EqualFold(strings.TrimSpace(fields[9]), "Failure") && len(hrs) == 0 {
			return
		}
		var t *time.Time
		// "2024-05-14 10:21:33:123+0200": date, time, milliseconds, zone.
		if ts := strings.TrimSpace(fields[1]); len(ts) >= 19 {
			if tt, err := time.Parse("2006-01-02 15:04:05", ts[:19]); err == nil {
				t = &tt
			}
		}
		msg := strings.Join(fields[10:], " ")
		f.record(n, t, msg, hrs)
		f.InstallFailure = true
		if containsBITSCode(hrs) {
			f.BITSFailure = true
		}
	})
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// containsBITSCode: BITS errors are facility 0x20 (BG_E_*, 0x8020xxxx).
func containsBITSCode(hrs []string) bool {
	for _, h := range hrs {
		if strings.HasPrefix(h, "0x8020") {
			return true
		}
	}
	return false
}

// parseWindowsUpdateLog reads the Windows 7/8 WindowsUpdate.log, one record
// per line, tab-separated: date, time, PID, TID, component, message, e.g.
// `2024-05-14	10:21:33:123	 968	1a2c	Agent	  * WARNING: Exit code = 0x80070002`.
// A failure is a WARNING/FATAL/error line with a failing HRESULT.
func parseWindowsUpdateLog(f *LogFinding, data []byte, tail bool) {
	eachLine(data, tail, func(n int, line string) {
		fields := strings.SplitN(line, "\t", 6)
		if len(fields) < 6 {
			return
		}
		hrs := failingHRESULTs(fields[5])
		if len(hrs) == 0 {
			return
		}
		low := strings.ToLower(fields[5])
		if !strings.Contains(low, "warning") && !strings.Contains(low, "fatal") && !strings.Contains(low, "fail") && !strings.Contains(low, "error") {
			return
		}
		var t *time.Time
		if ts := strings.TrimSpace(fields[0]) + " " + strings.TrimSpace(fields[1]); len(ts) >= 19 {
			if tt, err := time.Parse("2006-01-02 15:04:05", ts[:19]); err == nil {
				t = &tt
			}
		}
		f.record(n, t, line, hrs)
		f.InstallFailure = true
		comp := strings.TrimSpace(fields[4])
		if containsBITSCode(hrs) || strings.EqualFold(comp, "DnldMgr") && strings.Contains(low, "bits") {
			f.BITSFailure = true
		}
	})
}

func isNotExist(err error) bool {
	return err != nil && errors.Is(err, fs.ErrNotExist)
}
