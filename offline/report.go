package offline

import (
	"strconv"
	"time"
)

// SchemaVersion is the version of the JSON documents (Header.SchemaVersion,
// docs/*.schema.json). It changes only when a field changes meaning or
// disappears; new fields may be added within a version. Version 2: one
// document per target (JSON Lines for many) carrying the tool's version and
// a timestamp; a volume index is "volume" everywhere, a byte range is
// "offset" and "size" like a volume, refusals are always an array.
// Version 3: one name and one shape for one thing in every document (the
// names fix used): a change is "op" with "path"/"to", "hive"/"key"/"value"
// and "old"/"new" data (diagnose's evidence said "action", "data", "want");
// a journal's verb is "op"; what to do is "advice" (was "hint"), why is
// "reason" (was a unit's "why"); a path on the volume is "path" (was a
// log's "file"); reads are "io" (was diagnose's "bytes_read"); a target's
// outcome is "state" (was undo's "nothing"); an offset is "offset" (was a
// damaged journal's "at"); the tool's version is "tool_version" ("version"
// is the Windows version object); "refusals" is always present.
const SchemaVersion = 3

// Header starts every JSON document the command line prints: what made it
// and when.
type Header struct {
	SchemaVersion int    `json:"schema_version"`
	Command       string `json:"command"` // "diagnose", "fix", "undo"
	Tool          string `json:"tool"`    // "wuoffline"
	// ToolVersion is the tool's version ("version" is the Windows version
	// in every document).
	ToolVersion string `json:"tool_version"`
	Timestamp   string `json:"timestamp"`
}

// NewHeader returns the header of a document of command, made now by
// version of the tool; the timestamp is UTC RFC 3339.
func NewHeader(command, version string, now time.Time) Header {
	return Header{SchemaVersion: SchemaVersion, Command: command, Tool: "wuoffline", ToolVersion: version,
		Timestamp: now.UTC().Format(time.RFC3339)}
}

// DiagnoseDocument is one target's diagnosis as one JSON document
// (docs/diagnose.schema.json): the header and the target's fields.
type DiagnoseDocument struct {
	Header
	TargetReport
}

// NewDiagnoseDocument returns the document of one target's diagnosis.
func NewDiagnoseDocument(h Header, t TargetReport) DiagnoseDocument {
	if t.Refusals == nil {
		t.Refusals = []Refusal{}
	}
	return DiagnoseDocument{Header: h, TargetReport: t}
}

// FixDocument is one target's fix as one JSON document
// (docs/fix.schema.json).
type FixDocument struct {
	Header
	DryRun bool `json:"dry_run"`
	FixTargetReport
}

// NewFixDocument returns the document of one target's fix (dryRun: the
// plan only).
func NewFixDocument(h Header, dryRun bool, t FixTargetReport) FixDocument {
	if t.Refusals == nil {
		t.Refusals = []Refusal{}
	}
	return FixDocument{Header: h, DryRun: dryRun, FixTargetReport: t}
}

// UndoDocument is one target's undo as one JSON document
// (docs/undo.schema.json). Refusals is the target's refusal as an array,
// the same name and shape as in the other documents.
type UndoDocument struct {
	Header
	UndoTargetReport
	Refusals []Refusal `json:"refusals"`
}

// NewUndoDocument returns the document of one target's undo.
func NewUndoDocument(h Header, u UndoTargetReport) UndoDocument {
	d := UndoDocument{Header: h, UndoTargetReport: u, Refusals: []Refusal{}}
	if u.Refusal != nil {
		d.Refusals = append(d.Refusals, *u.Refusal)
	}
	return d
}

// WorstExit is the exit code of many targets: the worst of theirs, 4
// (error) over 3 (refused) over 2 over 1 (problems) over 0.
func WorstExit(codes ...int) int {
	worst := ExitOK
	for _, c := range codes {
		worst = worseExit(worst, c)
	}
	return worst
}

// Status is a check's verdict (repair-catalog.md, "Checks").
type Status string

// The statuses of a check. Diagnose uses ok, problem, info, skipped and
// failed; fix adds fixed.
const (
	StatusOK      Status = "ok"      // nothing wrong
	StatusProblem Status = "problem" // evidence found; `wuoffline fix` repairs it
	StatusInfo    Status = "info"    // worth knowing, not a fault that fix repairs by default
	StatusFixed   Status = "fixed"   // fix repaired it
	StatusSkipped Status = "skipped" // the check could not apply (e.g. the hive is absent)
	StatusFailed  Status = "failed"  // reading what the check needs failed
)

// Case is one of the two situations of the mission, or none.
type Case string

// The cases a check belongs to; an installation is "healthy" when no
// check reports a problem.
const (
	CaseStartup Case = "failed-startup"      // Windows loops in Automatic Repair
	CaseInstall Case = "failed-installation" // updates fail to download or install
	CaseHealthy Case = "healthy"
)

// Evidence is one fact a check found. The fields are structured so that
// `fix` can act on them without reading the volume again: a file path,
// a registry location, the old data. A field that fix's actions also carry
// has the action's JSON name (FixAction): "op", "path", "to", "hive",
// "key", "value", "type", "old", "new" (schema version 3), and the same
// Go name.
type Evidence struct {
	// Kind says which fields are meaningful: "file", "dir", "key",
	// "value", "line" (a line of a text file), "log" (a log excerpt),
	// "rename" (a pending rename pair), "note".
	Kind string `json:"kind"`
	// Path is a path on the Windows volume with `\` separators
	// ("Windows\SoftwareDistribution") for file, dir, line and log evidence,
	// and the source of a rename pair.
	Path string `json:"path,omitempty"`
	// To is the path Path is renamed to (full path, `\` separators, the
	// same directory): what fix renames it to (Action "rename"), or the
	// destination of a pending rename pair.
	To string `json:"to,omitempty"`
	// Hive ("SYSTEM", "SOFTWARE", "COMPONENTS") and Key (below the hive
	// root, `\`-separated, with the real control set: "ControlSet001\...")
	// for key and value evidence.
	Hive string `json:"hive,omitempty"`
	Key  string `json:"key,omitempty"`
	// Value is the registry value name ("" is the default value).
	Value string `json:"value,omitempty"`
	// Type is the registry value type ("REG_DWORD").
	Type string `json:"type,omitempty"`
	// Old is the data found, in readable form (a DWORD in decimal, a
	// string as is, a MULTI_SZ joined by " | ", binary in hex; a line's
	// text): what a change replaces, hence "old".
	Old string `json:"old,omitempty"`
	// Raw is the value's raw bytes (what undo must restore); base64 in JSON.
	Raw []byte `json:"raw,omitempty"`
	// New is what fix would put instead ("3"), when fix changes data.
	New string `json:"new,omitempty"`
	// Line is the 1-based line number for line and log evidence.
	Line int `json:"line,omitempty"`
	// Size and Count describe files and directories.
	Size  int64 `json:"size,omitempty"`
	Count int   `json:"count,omitempty"`
	// Time is when the evidence was recorded (log line time, key write time).
	Time *time.Time `json:"time,omitempty"`
	// Detail is a one-line human explanation.
	Detail string `json:"detail"`
	// Op is what `wuoffline fix` does with this item, named as a fix
	// action's "op": "rename" (to To), "delete-key", "delete-value", "set"
	// (to New: a DWORD, WinHttpSettings, a REG_SZ/REG_EXPAND_SZ path, or a
	// service's DACL in SDDL),
	// "remove-entry" (from a MULTI_SZ), "comment-out" (a hosts line),
	// "rewrite" (a file rewritten by its rule: Registry.pol entries
	// removed, gpt.ini's version raised); "" when the item is reported only.
	Op string `json:"op,omitempty"`
	// OptIn names the opt-in the action needs ("" = done by default).
	OptIn string `json:"opt_in,omitempty"`
}

// act returns e with the fix action (and opt-in) that applies to it.
func (e Evidence) act(action, optIn string) Evidence {
	e.Op, e.OptIn = action, optIn
	return e
}

// renameTo returns e with the fix action that renames e.Path to name in
// the same directory (aside, or back to an original name).
func (e Evidence) renameTo(name, optIn string) Evidence {
	e.To = winDir(e.Path) + name
	return e.act("rename", optIn)
}

// Result is the outcome of one check on one installation.
type Result struct {
	ID      string `json:"id"`
	Case    Case   `json:"case"`
	Status  Status `json:"status"`
	Summary string `json:"summary"`
	// Evidence is never nil in JSON (an empty list when nothing was found).
	Evidence []Evidence `json:"evidence"`
	// Fix says what `wuoffline fix` does about it ("" when nothing).
	Fix string `json:"fix,omitempty"`
	// OptIn names the opt-in that fix needs ("wsus", "proxy",
	// "os-upgrade", "txr"); "" when fix applies it by default.
	OptIn string `json:"opt_in,omitempty"`
	// Error is the read error behind StatusFailed.
	Error string `json:"error,omitempty"`
}

// Report is the whole output of one diagnose run.
type Report struct {
	SchemaVersion int            `json:"schema_version"`
	Targets       []TargetReport `json:"targets"`
}

// TargetReport is what diagnose found on one TARGET argument.
type TargetReport struct {
	Target     string `json:"target"`
	Kind       string `json:"kind,omitempty"`   // "disk", "volume", "directory"
	Format     string `json:"format,omitempty"` // "raw", "vhd-fixed", "directory"
	Table      string `json:"table,omitempty"`  // "gpt", "mbr", ""
	SectorSize int    `json:"sector_size,omitempty"`
	Size       int64  `json:"size,omitempty"`
	// Volumes lists every volume of the target (one for a bare volume).
	Volumes []VolumeReport `json:"volumes"`
	// Installations lists every Windows installation found.
	Installations []InstallationReport `json:"installations"`
	// Refusals that concern the target as a whole (a BitLocker volume when
	// no Windows could be read, a mounted device); never nil in a document.
	Refusals []Refusal `json:"refusals"`
	// Error is set when the target could not be read at all.
	Error string `json:"error,omitempty"`
	// Advice says how to get past Error (e.g. convert a qcow2 image).
	Advice string `json:"advice,omitempty"`
	// IO counts what diagnose read from the target, as fix's IO does (an
	// image or device; nil for a directory or a target not opened).
	IO *IOStats `json:"io,omitempty"`
	// Exit is the exit code this target alone calls for (0, 1, 3 or 4).
	Exit int `json:"exit"`
}

// VolumeReport describes one volume of a target.
type VolumeReport struct {
	Index   int    `json:"volume"` // the same name as in every other document
	Offset  int64  `json:"offset"`
	Size    int64  `json:"size"`
	Type    string `json:"type,omitempty"`
	Name    string `json:"name,omitempty"`
	Content string `json:"content"` // "ntfs", "bitlocker", "fat", "empty", "unknown", "directory"
	// Windows is true when a Windows installation was found on it.
	Windows bool   `json:"windows"`
	Note    string `json:"note,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Refusal is a reason why `wuoffline fix` would write nothing.
type Refusal struct {
	ID     string `json:"id"` // "bitlocker", "hibernated", "fast-startup", "logfile-unclean", "dirty", "unreadable", "control-set", "hive", "mounted", "locked", "read-only", "journal"
	Reason string `json:"reason"`
	Advice string `json:"advice"`
}

// Safety is the safety state of the volume that holds an installation.
type Safety struct {
	// Writable is true when fix would be allowed to write (no refusals).
	Writable       bool        `json:"writable"`
	NTFSVersion    string      `json:"ntfs_version,omitempty"`
	Label          string      `json:"label,omitempty"`
	Dirty          bool        `json:"dirty"`
	LogFileClean   bool        `json:"logfile_clean"`
	LogFileVersion string      `json:"logfile_version,omitempty"`
	Hibernation    string      `json:"hibernation,omitempty"`
	Hives          []HiveState `json:"hives"`
	// ControlSet is the control set named by SYSTEM\Select\Current; 0 when
	// it is invalid (then ControlSet001 was read for reporting only).
	ControlSet int       `json:"control_set"`
	Refusals   []Refusal `json:"refusals"`
}

// HiveState says how a hive was read.
type HiveState struct {
	Name      string   `json:"name"` // "SYSTEM", "SOFTWARE", "COMPONENTS"
	Path      string   `json:"path"`
	Present   bool     `json:"present"`
	Dirty     bool     `json:"dirty"`     // the primary file needed recovery
	Recovered bool     `json:"recovered"` // read in its recovered state (logs applied in memory)
	Logs      []string `json:"logs,omitempty"`
	Error     string   `json:"error,omitempty"`
}

// Version is what SOFTWARE\Microsoft\Windows NT\CurrentVersion says.
type Version struct {
	// Product is the product name, corrected to "Windows 11" on build
	// 22000 and later (the registry still says "Windows 10" there).
	Product         string `json:"product"`
	RegistryProduct string `json:"registry_product,omitempty"`
	Edition         string `json:"edition,omitempty"`
	DisplayVersion  string `json:"display_version,omitempty"` // "23H2", or ReleaseId "1909"
	Build           int    `json:"build"`
	UBR             int    `json:"ubr"`
	// Family is the column of the service-defaults table: "7", "8.1", "10", "11"
	// ("" when unknown).
	Family string `json:"family"`
}

// String is "Windows 11 Pro 23H2 (build 22631.3447)".
func (v Version) String() string {
	s := v.Product
	if v.DisplayVersion != "" {
		s += " " + v.DisplayVersion
	}
	if v.Build > 0 {
		s += " (build " + strconv.Itoa(v.Build)
		if v.UBR > 0 {
			s += "." + strconv.Itoa(v.UBR)
		}
		s += ")"
	}
	return s
}

// InstallationReport is everything diagnose says about one Windows installation.
type InstallationReport struct {
	// Volume is the VolumeReport.Index of the volume that holds it.
	Volume int `json:"volume"`
	// Letter is the drive letter the commands below use ("D:"), and
	// LetterKnown whether it is the user's real letter or a placeholder.
	Letter      string  `json:"letter"`
	LetterKnown bool    `json:"letter_known"`
	Version     Version `json:"version"`
	Safety      Safety  `json:"safety"`
	// Cases lists the cases that apply, most important first
	// ("failed-startup", "failed-installation"), or ["healthy"].
	Cases  []Case   `json:"cases"`
	Checks []Result `json:"checks"`
	// Logs summarises the log evidence read.
	Logs []LogFinding `json:"logs"`
	// LastFailure is the most recent failure the logs record: past
	// evidence, shown beside the diagnosis, never the diagnosis itself
	// (Cases come from what is wrong now). nil when no log shows one.
	LastFailure *PastFailure `json:"last_failure,omitempty"`
	// Commands are what only a running Windows or WinPE can do, with the
	// installation's drive letter.
	Commands []Command `json:"commands"`
}

// PastFailure is one failure a log recorded.
type PastFailure struct {
	// Time is when it was logged (nil when the log has no times).
	Time *time.Time `json:"time,omitempty"`
	// Path is the log's path on the volume (`\` separators).
	Path string `json:"path"`
	// Text is the log line or event (clipped).
	Text string `json:"text"`
	// HRESULT is the failing code named, "" when none.
	HRESULT string `json:"hresult,omitempty"`
	// KB is the update named, "" when none.
	KB string `json:"kb,omitempty"`
}

// Command is a command line to run in WinPE/WinRE, with why.
type Command struct {
	Line string `json:"line"`
	Why  string `json:"why"`
}
