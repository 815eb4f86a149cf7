package offline

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/wuoffline/wuoffline/internal/bytesize"
)

// Bounds of the file-system walks: SoftwareDistribution may hold gigabytes
// of payloads; only headers are read, and only of a bounded number of files.
const (
	maxWalkEntries   = 200000
	maxPayloadChecks = 2000
	payloadHeadBytes = 4096
)

// fileEvidence describes a file or directory of the volume.
func fileEvidence(kind, p string, fi fs.FileInfo, detail string) Evidence {
	ev := Evidence{Kind: kind, Path: winPath(p), Detail: detail}
	if fi != nil {
		if !fi.IsDir() {
			ev.Size = fi.Size()
		}
		if t := fi.ModTime(); !t.IsZero() && t.Year() > 1601 {
			t = t.UTC()
			ev.Time = &t
		}
	}
	return ev
}

// asideName is the first free name of the ".old" suffix rule of
// repair-catalog.md: NAME.old, else NAME.old.1, NAME.old.2, ...
func asideName(fsys fs.FS, p string) string {
	cand := p + ".old"
	for i := 1; i < 1000; i++ {
		if _, err := fs.Stat(fsys, cand); err != nil {
			return path.Base(cand)
		}
		cand = fmt.Sprintf("%s.old.%d", p, i)
	}
	return path.Base(cand)
}

// readHead reads up to n bytes from the start of a file.
func readHead(fsys fs.FS, p string, n int) ([]byte, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	m, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, err
	}
	return buf[:m], nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------- pending-xml

// PendingXML is `pending-xml`: Windows\WinSxS\pending.xml (and
// pending.xml.bad) holds servicing operations that run at the next boot;
// an operation naming a missing file stops the boot with 0x80070002.
type PendingXML struct{}

// ID implements Check.
func (PendingXML) ID() string { return "pending-xml" }

// Case implements Check.
func (PendingXML) Case() Case { return CaseStartup }

// Diagnose implements Check.
func (c PendingXML) Diagnose(in *Installation) Result {
	r := newResult(c)
	for _, p := range []string{"Windows/WinSxS/pending.xml", "Windows/WinSxS/pending.xml.bad"} {
		fi, err := fs.Stat(in.FS, p)
		if err != nil {
			if !isNotExist(err) {
				return failed(r, winPath(p), err)
			}
			continue
		}
		ev := fileEvidence("file", p, fi, "pending servicing operations that Windows runs at the next boot")
		r.Evidence = append(r.Evidence, ev.renameTo(asideName(in.FS, p), ""))
	}
	if len(r.Evidence) == 0 {
		r.Summary = "no pending.xml in Windows\\WinSxS"
		return r
	}
	r.Status = StatusProblem
	r.Summary = fmt.Sprintf("%s present: an unfinished update is replayed at every boot", r.Evidence[0].Path)
	// Startup Repair's verdict (SrtTrail.txt) is the failed-startup
	// evidence of the logs; it belongs with the marker that causes it.
	r.Evidence = append(r.Evidence, logEvidence(in.Logs().StartupFailures(), "startup failures")...)
	r.Fix = "rename pending.xml aside (to pending.xml.old); Windows then boots without replaying the unfinished update"
	return r
}

// ---------------------------------------------------------------- txr

// TxR is `txr`: the registry transaction logs in Windows\System32\config\TxR
// (*.blf, *.regtrans-ms). They exist on every Windows; they matter only when
// servicing markers are present or the CBS logs show ERROR_LOG_FULL.
type TxR struct{}

// ID implements Check.
func (TxR) ID() string { return "txr" }

// Case implements Check.
func (TxR) Case() Case { return CaseStartup }

// Diagnose implements Check.
func (c TxR) Diagnose(in *Installation) Result {
	r := newResult(c)
	const dir = "Windows/System32/config/TxR"
	ents, err := fs.ReadDir(in.FS, dir)
	if err != nil {
		if isNotExist(err) {
			r.Summary = "no registry transaction logs (config\\TxR absent)"
			return r
		}
		return failed(r, winPath(dir), err)
	}
	for _, e := range ents {
		n := strings.ToLower(e.Name())
		if !e.Type().IsRegular() || !(strings.HasSuffix(n, ".blf") || strings.HasSuffix(n, ".regtrans-ms")) {
			continue
		}
		fi, _ := e.Info()
		ev := fileEvidence("file", path.Join(dir, e.Name()), fi, "registry transaction log")
		r.Evidence = append(r.Evidence, ev.renameTo(asideName(in.FS, path.Join(dir, e.Name())), "txr"))
	}
	if len(r.Evidence) == 0 {
		r.Summary = "no registry transaction logs in config\\TxR"
		return r
	}
	full := in.Logs().LogFull()
	markers := in.startupMarkerPresent()
	if !markers && len(full) == 0 {
		// They exist on every Windows: without servicing markers or
		// ERROR_LOG_FULL they are no fault.
		r.Summary = fmt.Sprintf("%d registry transaction log files (normal without servicing markers)", len(r.Evidence))
		return r
	}
	r.Evidence = append(r.Evidence, logEvidence(full, "ERROR_LOG_FULL lines")...)
	r.Status = StatusProblem
	r.OptIn = "txr"
	why := "failed-startup markers are present"
	if len(full) > 0 {
		why = "the CBS logs show 0x800719e4 (ERROR_LOG_FULL)"
	}
	r.Summary = fmt.Sprintf("%d registry transaction log files, and %s", len(r.Evidence)-len(full), why)
	r.Fix = "opt-in `txr`: rename the *.blf and *.regtrans-ms files aside (.old); Windows recreates them"
	return r
}

// startupMarkerPresent runs the failed-startup marker checks (cheap
// registry and file lookups) and reports whether any shows a problem.
func (in *Installation) startupMarkerPresent() bool {
	for _, c := range []Check{PendingXML{}, CBSPending{}, ComponentsMarkers{}, SetupExecute{}, PendingRenames{}, RebootFlags{}} {
		if runOne(c, in).Status == StatusProblem {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------- softwaredistribution

// sdScan is the result of examining Windows\SoftwareDistribution.
type sdScan struct {
	present bool
	fi      fs.FileInfo
	files   int
	size    int64
	partial bool       // the walk stopped at maxWalkEntries
	damage  []Evidence // payloads and DataStore problems
	err     error
}

// softwareDistribution examines the folder once per installation.
func (in *Installation) softwareDistribution() *sdScan {
	if in.sd != nil {
		return in.sd
	}
	s := &sdScan{}
	in.sd = s
	const dir = "Windows/SoftwareDistribution"
	fi, err := fs.Stat(in.FS, dir)
	if err != nil {
		if !isNotExist(err) {
			s.err = err
		}
		return s
	}
	if !fi.IsDir() {
		s.err = fmt.Errorf("%s is not a directory", winPath(dir))
		return s
	}
	s.present, s.fi = true, fi
	entries, checked := 0, 0
	walkErr := fs.WalkDir(in.FS, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable subdirectory: count what can be read
		}
		entries++
		if entries > maxWalkEntries {
			s.partial = true
			return fs.SkipAll
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		s.files++
		s.size += info.Size()
		rel := strings.ToLower(strings.TrimPrefix(p, dir+"/"))
		if strings.HasPrefix(rel, "download/") && checked < maxPayloadChecks {
			checked++
			if ev, bad := in.checkPayload(p, info); bad {
				s.damage = append(s.damage, ev)
			}
		}
		return nil
	})
	if walkErr != nil {
		s.err = walkErr
	}
	// DataStore.edb is the update history database (an ESE file: its
	// header carries the signature 0x89ABCDEF at offset 4).
	edb := dir + "/DataStore/DataStore.edb"
	if efi, err := fs.Stat(in.FS, edb); err != nil {
		if isNotExist(err) {
			s.damage = append(s.damage, Evidence{Kind: "file", Path: winPath(edb), Detail: "update database DataStore.edb is missing"})
		}
	} else {
		head, err := readHead(in.FS, edb, 8)
		switch {
		case efi.Size() == 0:
			s.damage = append(s.damage, fileEvidence("file", edb, efi, "update database DataStore.edb is empty"))
		case err == nil && (len(head) < 8 || binary.LittleEndian.Uint32(head[4:]) != 0x89ABCDEF):
			s.damage = append(s.damage, fileEvidence("file", edb, efi, "update database DataStore.edb has no ESE database signature (damaged or zero-filled)"))
		}
	}
	return s
}

// payloadMagic is what a downloaded payload must start with, by extension.
var payloadMagic = map[string][]string{
	".cab":  {"MSCF"},
	".msu":  {"MSCF"},
	".esd":  {"MSWIM\x00\x00\x00"},
	".wim":  {"MSWIM\x00\x00\x00"},
	".exe":  {"MZ"},
	".dll":  {"MZ"},
	".zip":  {"PK\x03\x04"},
	".appx": {"PK\x03\x04"},
	".msix": {"PK\x03\x04"},
	".cat":  {"\x30"}, // PKCS #7 DER SEQUENCE
	".xml":  {"<", "\xef\xbb\xbf<", "\xff\xfe<"},
}

// checkPayload reads a payload's head and reports it when its content does
// not match its extension, it is zero-filled or empty, or (a cabinet) it is
// shorter than its header's cbCabinet (offset 8) says.
func (in *Installation) checkPayload(p string, fi fs.FileInfo) (Evidence, bool) {
	ext := strings.ToLower(path.Ext(p))
	magics, known := payloadMagic[ext]
	if fi.Size() == 0 {
		if known {
			return fileEvidence("file", p, fi, "downloaded payload is empty"), true
		}
		return Evidence{}, false
	}
	head, err := readHead(in.FS, p, payloadHeadBytes)
	if err != nil {
		return fileEvidence("file", p, fi, "downloaded payload cannot be read: "+err.Error()), true
	}
	if allZero(head) {
		return fileEvidence("file", p, fi, "downloaded payload is zero-filled (an interrupted download)"), true
	}
	if !known {
		return Evidence{}, false
	}
	ok := false
	for _, m := range magics {
		if bytes.HasPrefix(head, []byte(m)) {
			ok = true
		}
	}
	if !ok {
		return fileEvidence("file", p, fi, fmt.Sprintf("content does not match the %s extension (starts % x)", ext, head[:min(len(head), 8)])), true
	}
	if magics[0] == "MSCF" && len(head) >= 12 {
		if want := int64(binary.LittleEndian.Uint32(head[8:])); want > fi.Size() {
			return fileEvidence("file", p, fi, fmt.Sprintf("cabinet is truncated: %d of %d bytes", fi.Size(), want)), true
		}
	}
	return Evidence{}, false
}

// installEvidence is the failed-installation evidence shared by
// softwaredistribution and catroot2: log failures and damaged payloads.
func (in *Installation) installEvidence() []Evidence {
	ev := logEvidence(in.Logs().InstallFailures(), "update failures")
	ev = append(ev, in.softwareDistribution().damage...)
	return ev
}

// SoftwareDistribution is `softwaredistribution`: the Windows Update cache.
type SoftwareDistribution struct{}

// ID implements Check.
func (SoftwareDistribution) ID() string { return "softwaredistribution" }

// Case implements Check.
func (SoftwareDistribution) Case() Case { return CaseInstall }

// Diagnose implements Check.
func (c SoftwareDistribution) Diagnose(in *Installation) Result {
	r := newResult(c)
	s := in.softwareDistribution()
	if s.err != nil {
		return failed(r, `Windows\SoftwareDistribution`, s.err)
	}
	if !s.present {
		r.Summary = `Windows\SoftwareDistribution is absent (Windows recreates it)`
		return r
	}
	more := ""
	if s.partial {
		more = "+"
	}
	dirEv := fileEvidence("dir", "Windows/SoftwareDistribution", s.fi,
		fmt.Sprintf("%d%s files, %s", s.files, more, bytesize.Format(s.size)))
	dirEv.Size, dirEv.Count = s.size, s.files
	aside := asideName(in.FS, "Windows/SoftwareDistribution")
	dirEv = dirEv.renameTo(aside, "")
	ev := in.installEvidence()
	if len(ev) == 0 {
		r.Status = StatusInfo
		r.Summary = fmt.Sprintf("update cache: %d%s files, %s; no failure evidence", s.files, more, bytesize.Format(s.size))
		r.Evidence = append(r.Evidence, dirEv)
		return r
	}
	r.Status = StatusProblem
	r.Evidence = append([]Evidence{dirEv}, ev...)
	r.Summary = fmt.Sprintf("update cache (%d files, %s) with failed-installation evidence: %s", s.files, bytesize.Format(s.size), ev[0].Detail)
	r.Summary = clip(r.Summary, 300)
	r.Fix = fmt.Sprintf(`rename Windows\SoftwareDistribution to %s (never deleted); Windows rebuilds the folder and downloads again`, aside)
	return r
}

// Catroot2 is `catroot2`: the catalog database of Cryptographic Services.
type Catroot2 struct{}

// ID implements Check.
func (Catroot2) ID() string { return "catroot2" }

// Case implements Check.
func (Catroot2) Case() Case { return CaseInstall }

// Diagnose implements Check.
func (c Catroot2) Diagnose(in *Installation) Result {
	r := newResult(c)
	const dir = "Windows/System32/catroot2"
	fi, err := fs.Stat(in.FS, dir)
	if err != nil {
		if isNotExist(err) {
			r.Summary = `Windows\System32\catroot2 is absent (Windows recreates it)`
			return r
		}
		return failed(r, winPath(dir), err)
	}
	dirEv := fileEvidence("dir", dir, fi, "catalog database of Cryptographic Services")
	n, size := 0, int64(0)
	_ = fs.WalkDir(in.FS, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if n > maxWalkEntries {
			return fs.SkipAll
		}
		if d.Type().IsRegular() {
			n++
			if i, err := d.Info(); err == nil {
				size += i.Size()
			}
		}
		return nil
	})
	dirEv.Count, dirEv.Size = n, size
	dirEv.Detail = fmt.Sprintf("catalog database: %d files, %s", n, bytesize.Format(size))
	aside := asideName(in.FS, dir)
	dirEv = dirEv.renameTo(aside, "")
	ev := in.installEvidence()
	// dberr.txt is Cryptographic Services' own error log of the catalog
	// database: "CatalogDB: 10:15:31 12/09/2024: ... error 0x80070002".
	if f, ok := readTail(in.FS, dir+"/dberr.txt", "dberr"); ok && f.Error == "" {
		eachLine(f.data, f.Tail, func(n int, line string) {
			if hrs := failingHRESULTs(line); len(hrs) > 0 {
				f.record(n, nil, line, hrs)
			}
		})
		if f.Failures > 0 {
			ev = append(logEvidence([]LogFinding{f.LogFinding}, "catalog database errors"), ev...)
		}
	}
	if len(ev) == 0 {
		r.Status = StatusInfo
		r.Summary = fmt.Sprintf("catalog database: %d files, %s; no failure evidence", n, bytesize.Format(size))
		r.Evidence = append(r.Evidence, dirEv)
		return r
	}
	r.Status = StatusProblem
	r.Evidence = append([]Evidence{dirEv}, ev...)
	r.Summary = clip("catalog database present with failed-installation evidence: "+ev[0].Detail, 300)
	r.Fix = fmt.Sprintf(`rename Windows\System32\catroot2 to %s; Cryptographic Services rebuilds it`, aside)
	if in.startupMarkerPresent() {
		// Boot code integrity reads System32\CatRoot, never catroot2
		// (Azure repair-script-library, win-fix-catalog-store.ps1).
		r.Fix += "; this does not repair the failed startup: boot code integrity reads System32\\CatRoot, not catroot2"
	}
	return r
}

// BITSQueue is `bits-queue`: the BITS job queue in
// ProgramData\Microsoft\Network\Downloader (qmgr0.dat/qmgr1.dat on 7 and
// 8.1; qmgr.db + qmgr.jfm on 10 and 11).
type BITSQueue struct{}

// ID implements Check.
func (BITSQueue) ID() string { return "bits-queue" }

// Case implements Check.
func (BITSQueue) Case() Case { return CaseInstall }

// Diagnose implements Check.
func (c BITSQueue) Diagnose(in *Installation) Result {
	r := newResult(c)
	const dir = "ProgramData/Microsoft/Network/Downloader"
	ents, err := fs.ReadDir(in.FS, dir)
	if err != nil {
		if isNotExist(err) {
			r.Summary = "no BITS job queue (Downloader folder absent)"
			return r
		}
		return failed(r, winPath(dir), err)
	}
	damaged := 0
	for _, e := range ents {
		n := strings.ToLower(e.Name())
		if !e.Type().IsRegular() || !strings.HasPrefix(n, "qmgr") ||
			!(strings.HasSuffix(n, ".dat") || n == "qmgr.db" || n == "qmgr.jfm") {
			continue
		}
		p := path.Join(dir, e.Name())
		fi, _ := e.Info()
		ev := fileEvidence("file", p, fi, "BITS job queue file")
		ev = ev.renameTo(asideName(in.FS, p), "")
		if fi != nil && fi.Size() == 0 {
			ev.Detail = "BITS job queue file is empty (damaged queue)"
			damaged++
		} else if n == "qmgr.db" {
			// qmgr.db is an ESE database: signature 0x89ABCDEF at offset 4
			// of its header. (qmgr.jfm, the flush map, may be all zeros.)
			if head, err := readHead(in.FS, p, 8); err == nil && (len(head) < 8 || binary.LittleEndian.Uint32(head[4:]) != 0x89ABCDEF) {
				ev.Detail = "BITS job queue database has no ESE signature (damaged queue)"
				damaged++
			}
		}
		r.Evidence = append(r.Evidence, ev)
	}
	if len(r.Evidence) == 0 {
		r.Summary = "no BITS job queue files"
		return r
	}
	bits := logEvidence(in.Logs().BITSFailures(), "BITS failures")
	if len(bits) == 0 && damaged == 0 {
		r.Status = StatusInfo
		r.Summary = fmt.Sprintf("BITS job queue: %d files; no BITS failures in the logs", len(r.Evidence))
		return r
	}
	nq := len(r.Evidence)
	r.Evidence = append(r.Evidence, bits...)
	r.Status = StatusProblem
	if damaged > 0 {
		r.Summary = fmt.Sprintf("BITS job queue: %d of %d files damaged", damaged, nq)
	} else {
		r.Summary = fmt.Sprintf("BITS job queue (%d files) and BITS failures in the logs", nq)
	}
	r.Fix = "rename the qmgr files aside (.old); BITS starts with an empty queue (Microsoft's reset procedure deletes them)"
	return r
}

// ---------------------------------------------------------------- hosts

// Hosts is `hosts`: lines of Windows\System32\drivers\etc\hosts that map a
// Windows Update host to anything (anti-telemetry tools add them).
type Hosts struct{}

// ID implements Check.
func (Hosts) ID() string { return "hosts" }

// Case implements Check.
func (Hosts) Case() Case { return CaseInstall }

const hostsPath = "Windows/System32/drivers/etc/hosts"

// maxHostsBytes bounds the hosts file read (blocklists reach a few MiB).
const maxHostsBytes = 32 << 20

// Diagnose implements Check.
func (c Hosts) Diagnose(in *Installation) Result {
	r := newResult(c)
	f, err := in.FS.Open(hostsPath)
	if err != nil {
		if isNotExist(err) {
			r.Summary = "no hosts file"
			return r
		}
		return failed(r, winPath(hostsPath), err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxHostsBytes))
	f.Close()
	if err != nil {
		return failed(r, winPath(hostsPath), err)
	}
	for _, m := range ParseHosts(data) {
		r.Evidence = append(r.Evidence, Evidence{
			Kind: "line", Path: winPath(hostsPath), Line: m.Line, Old: m.Text,
			Detail: fmt.Sprintf("maps update host %s to %s", strings.Join(m.Hosts, ", "), m.Address),
			Op:     "comment-out",
		})
	}
	if len(r.Evidence) == 0 {
		r.Summary = "hosts file maps no Windows Update host"
		return r
	}
	r.Status = StatusProblem
	r.Summary = fmt.Sprintf("hosts file redirects %d Windows Update host line(s), e.g. line %d: %s", len(r.Evidence), r.Evidence[0].Line, clip(r.Evidence[0].Old, 120))
	r.Fix = "comment those lines out with the marker `# wuoffline:` (undo and people can see them)"
	return r
}

// timePtr returns a pointer to a copy of t, nil for the zero time.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
