package offline

import (
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/wuoffline/wuoffline/eventlog"
)

// Windows Update client events in the System log (repair-catalog.md):
// event 20 is "Installation Failure: Windows failed to install the
// following update with error 0x80070002: ... (KBnnnnnnn)" (Data errorCode,
// updateTitle, updateGuid, ...), event 25 "Windows Update failed to check
// for updates with error 0x..." (errorCode), event 31 "Windows Update failed
// to download an update" (errorCode, updateTitle).
const (
	wuProvider      = "Microsoft-Windows-WindowsUpdateClient"
	evtxFormatLabel = "evtx"
)

// wuFailureEvent names a WindowsUpdateClient failure event.
func wuFailureEvent(id int) (string, bool) {
	switch id {
	case 20:
		return "installation failure", true
	case 25:
		return "check for updates failed", true
	case 31:
		return "download failure", true
	}
	return "", false
}

// evtxMaxBytes bounds one System.evtx read: Windows' default maximum log
// size is 20 MiB; a log grown by policy is read up to 256 MiB.
const evtxMaxBytes = 256 << 20

// readEVTXFinding reads the System event log for Windows Update
// installation failures. nil when the log does not exist.
func readEVTXFinding(fsys fs.FS, p string) *LogFinding {
	f := &LogFinding{Path: winPath(p), Format: evtxFormatLabel}
	file, err := fsys.Open(p)
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		f.Error = err.Error()
		return f
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		f.Error = err.Error()
		return f
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f.Size = fi.Size()
	ra, ok := file.(io.ReaderAt)
	if !ok {
		f.Error = "file system gives no random access"
		return f
	}
	st, err := eventlog.Read(ra, fi.Size(), eventlog.Limits{MaxBytes: evtxMaxBytes}, func(ev *eventlog.Event) bool {
		what, ok := wuFailureEvent(ev.EventID)
		if !ok || !strings.EqualFold(ev.Provider, wuProvider) {
			return true
		}
		code, title := ev.Named["errorCode"], ev.Named["updateTitle"]
		if code == "" && len(ev.Data) > 0 {
			code = ev.Data[0]
		}
		if title == "" && ev.EventID != 25 && len(ev.Data) > 1 {
			title = ev.Data[1]
		}
		line := fmt.Sprintf("WindowsUpdateClient event %d (record %d): %s %s", ev.EventID, ev.RecordID, what, code)
		if title != "" {
			line += ": " + title
		}
		t := ev.Written
		hrs := failingHRESULTs(code)
		f.record(0, &t, line, hrs)
		f.InstallFailure = true
		if containsBITSCode(hrs) {
			f.BITSFailure = true
		}
		return true
	})
	switch {
	case err != nil:
		f.Error = err.Error()
	case st.Skipped > 0:
		f.Error = fmt.Sprintf("%d of %d records could not be decoded", st.Skipped, st.Skipped+st.Records)
	case st.Truncated:
		f.Tail = true // only the first evtxMaxBytes were read
	}
	return f
}
