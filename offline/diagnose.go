package offline

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wuoffline/wuoffline/image"
	"github.com/wuoffline/wuoffline/ntfs"
	"github.com/wuoffline/wuoffline/session"
)

// Exit codes of diagnose (README "Exit codes"; repair-catalog.md).
const (
	ExitOK      = 0 // nothing to fix
	ExitProblem = 1 // problems found that fix would repair
	ExitRefused = 3 // fix would be refused for safety
	ExitError   = 4 // the target could not be read / no Windows found
)

// Options controls a diagnose run.
type Options struct {
	// Letter is the drive letter WinPE gives the Windows volume ("D:"),
	// used in the printed sfc/dism commands; "" prints a placeholder.
	Letter string
	// Now is the rescue machine's clock (zero: time.Now()).
	Now time.Time
	// Progress, when set, receives short progress messages (it may be
	// called from several goroutines at once).
	Progress func(target, msg string)
	// Parallel bounds how many targets are read at once (0: the number
	// of CPUs).
	Parallel int
	// JournalDir is where fix journals are looked for besides the default
	// place (beside an image file, or the executable's directory).
	JournalDir string
}

func (o *Options) progress(target, format string, args ...any) {
	if o.Progress != nil {
		o.Progress(target, fmt.Sprintf(format, args...))
	}
}

// Diagnose examines every target, in parallel, and returns the report
// with the targets in argument order. It never writes.
func Diagnose(targets []string, opts Options) *Report {
	rep := &Report{SchemaVersion: SchemaVersion, Targets: make([]TargetReport, len(targets))}
	par := opts.Parallel
	if par <= 0 {
		par = runtime.NumCPU()
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			rep.Targets[i] = DiagnoseTarget(t, opts)
		}()
	}
	wg.Wait()
	return rep
}

// Exit is the exit code for the whole report: the highest code of any target.
func (r *Report) Exit() int {
	code := ExitOK
	for _, t := range r.Targets {
		code = max(code, t.Exit)
	}
	return code
}

// readCounter counts the reads and bytes of every countingReaderAt over
// one target (volumes are read in parallel by the checks).
type readCounter struct {
	reads, bytes atomic.Int64
}

// stats is what was read, as IOStats: diagnose opens a target once.
func (c *readCounter) stats() *IOStats {
	return &IOStats{Opens: 1, Reads: c.reads.Load(), BytesRead: c.bytes.Load()}
}

// countingReaderAt counts the reads and bytes read through it.
type countingReaderAt struct {
	r io.ReaderAt
	n *readCounter
}

// ReadAt implements io.ReaderAt.
func (c countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.reads.Add(1)
	c.n.bytes.Add(int64(n))
	return n, err
}

// DiagnoseTarget examines one TARGET: an image file, a block device, a
// directory where a Windows volume is mounted, or (on Windows) a drive
// letter. Errors are reported in the TargetReport, never returned.
func DiagnoseTarget(path string, opts Options) TargetReport {
	opts.progress(path, "opening")
	t, err := image.Open(path, image.Options{})
	if err != nil {
		tr := TargetReport{Target: path, Volumes: []VolumeReport{}, Installations: []InstallationReport{}, Error: err.Error()}
		var ue *image.UnsupportedError
		if errors.As(err, &ue) {
			tr.Advice = ue.Hint
		}
		tr.Exit = tr.exitCode()
		return tr
	}
	defer t.Close()
	// A fix interrupted on this target (journal prepared, never committed)
	// may have left the volume half-made: every command says so, refuses
	// (exit 3) and says how to roll back (undo) or finish (fix). The fix
	// paths finish or roll back such a journal before they diagnose.
	var pre []Refusal
	if t.Kind != image.KindDirectory {
		pre = interruptedRefusals(session.Wrap(path, t, session.Options{JournalDir: opts.JournalDir}))
	} else {
		pre = InterruptedRefusals(path, opts.JournalDir)
	}
	return diagnoseOpened(t, path, opts, pre...)
}

// diagnoseOpened examines a target opened by the caller (fix diagnoses the
// target its session opened, and the reopened one after writing); pre are
// refusals found before.
func diagnoseOpened(t *image.Target, path string, opts Options, pre ...Refusal) (tr TargetReport) {
	tr = TargetReport{Target: path, Volumes: []VolumeReport{}, Installations: []InstallationReport{}, Refusals: pre}
	defer func() {
		if e := recover(); e != nil {
			tr.Error = fmt.Sprintf("internal error: %v", e)
		}
		tr.Exit = tr.exitCode()
	}()
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	letter := opts.Letter
	if letter == "" && isDriveLetter(path) {
		letter = path
	}
	tr.diagnoseOpened(t, path, letter, opts)
	return tr
}

// diagnoseOpened fills the report from an opened target.
func (tr *TargetReport) diagnoseOpened(t *image.Target, path, letter string, opts Options) {
	tr.Kind, tr.Format, tr.Table, tr.SectorSize, tr.Size = string(t.Kind), t.Format, t.Table, t.SectorSize, t.Size
	if t.Kind == image.KindDirectory {
		tr.diagnoseDirectory(path, letter, opts)
		return
	}
	if t.Device {
		if isDriveLetter(path) && runningWindowsDir(path) {
			tr.Refusals = append(tr.Refusals, Refusal{ID: "running-system",
				Reason: path + " is the running Windows",
				Advice: "boot WinPE/WinRE (or another Windows) and run wuoffline from there"})
		}
		if m := mountedElsewhere(path); m != "" {
			tr.Refusals = append(tr.Refusals, Refusal{ID: "mounted",
				Reason: fmt.Sprintf("%s is mounted (%s)", path, m),
				Advice: "unmount it first (umount), or point wuoffline at the mounted directory for diagnose only"})
		}
	}
	var counter readCounter
	bitlocker := 0
	for _, v := range t.Volumes {
		vr := VolumeReport{Index: v.Index, Offset: v.Offset, Size: v.Size, Type: v.Type, Name: v.Name, Content: v.Content}
		if v.Damaged != "" {
			vr.Note = "partition entry damaged: " + v.Damaged
		}
		switch v.Content {
		case image.ContentBitLocker:
			bitlocker++
			vr.Note = "BitLocker-encrypted: cannot look inside"
		case image.ContentNTFS:
			opts.progress(path, "volume %d: reading NTFS", v.Index)
			vol, err := ntfs.Open(countingReaderAt{r: t.ReaderAt(v), n: &counter}, v.Size)
			switch {
			case errors.Is(err, ntfs.ErrBitLocker):
				bitlocker++
				vr.Content = image.ContentBitLocker
				vr.Note = "BitLocker-encrypted: cannot look inside"
			case err != nil:
				vr.Error = err.Error()
			default:
				fsys := vol.FS()
				if IsWindows(fsys) {
					vr.Windows = true
					opts.progress(path, "volume %d: Windows found, running checks", v.Index)
					ir := diagnoseInstallation(fsys, letter, opts)
					ir.Volume = v.Index
					ir.Safety.fromNTFS(vol.Safety())
					tr.Installations = append(tr.Installations, ir)
				}
			}
		}
		tr.Volumes = append(tr.Volumes, vr)
	}
	tr.IO = counter.stats()
	if len(tr.Installations) == 0 && bitlocker > 0 {
		tr.Refusals = append(tr.Refusals, Refusal{ID: "bitlocker",
			Reason: fmt.Sprintf("%d BitLocker-encrypted volume(s) (-FVE-FS- at byte 3) and no readable Windows installation", bitlocker),
			Advice: "unlock it first: `manage-bde -unlock D: -RecoveryPassword ...` in WinPE, or `dislocker` on Linux, and point wuoffline at the unlocked volume"})
	}
	if len(tr.Installations) == 0 && bitlocker == 0 && tr.Error == "" {
		tr.Error = "no Windows installation found (no volume has Windows\\System32\\config\\SYSTEM and SOFTWARE)"
	}
	opts.progress(path, "done")
}

// diagnoseDirectory handles a mounted volume.
func (tr *TargetReport) diagnoseDirectory(path, letter string, opts Options) {
	d, err := OpenDirFS(path)
	if err != nil {
		tr.Error = err.Error()
		return
	}
	defer d.Close()
	vr := VolumeReport{Content: "directory"}
	if !IsWindows(d) {
		tr.Volumes = append(tr.Volumes, vr)
		tr.Error = "no Windows installation in this directory (no Windows\\System32\\config\\SYSTEM and SOFTWARE); name the directory where the Windows volume is mounted"
		return
	}
	vr.Windows = true
	tr.Volumes = append(tr.Volumes, vr)
	ir := diagnoseInstallation(d, letter, opts)
	ir.Safety.fromDirectory(d)
	if runningWindowsDir(path) {
		ir.Safety.Refusals = append(ir.Safety.Refusals, Refusal{ID: "running-system",
			Reason: path + " is the running Windows",
			Advice: "boot WinPE/WinRE or another system and run wuoffline from there"})
	}
	ir.Safety.Writable = len(ir.Safety.Refusals) == 0
	tr.Installations = append(tr.Installations, ir)
}

// diagnoseInstallation opens the installation and runs every check.
func diagnoseInstallation(fsys fs.FS, letter string, opts Options) InstallationReport {
	ir := InstallationReport{Checks: []Result{}, Logs: []LogFinding{}, Cases: []Case{}, Commands: []Command{}}
	ir.Safety.Refusals = []Refusal{}
	ir.Safety.Hives = []HiveState{}
	in, err := OpenInstallation(fsys, letter)
	if err != nil {
		ir.Safety.Refusals = append(ir.Safety.Refusals, Refusal{ID: "unreadable", Reason: err.Error(), Advice: "check the volume with chkdsk /f"})
		return ir
	}
	defer in.Close()
	in.Now = opts.Now
	ir.Letter, ir.LetterKnown = in.Letter, in.LetterKnown
	ir.Version = in.Version
	ir.Safety.Hives = append(ir.Safety.Hives, in.Hives...)
	ir.Safety.ControlSet = in.ControlSet
	ir.Safety.Refusals = append(ir.Safety.Refusals, in.Refusals...)
	ir.Checks = RunChecks(in)
	ir.Logs = append(ir.Logs, in.Logs().Findings...)
	ir.Cases = casesOf(ir.Checks)
	ir.LastFailure = in.Logs().LastFailure()
	ir.Commands = commandsFor(in, ir.Cases)
	ir.Safety.Writable = len(ir.Safety.Refusals) == 0
	return ir
}

// fromNTFS copies the volume's safety state and refusals.
func (s *Safety) fromNTFS(v *ntfs.Safety) {
	if v == nil {
		return
	}
	s.NTFSVersion, s.Label, s.Dirty = v.Version, v.Label, v.Dirty
	s.LogFileClean, s.LogFileVersion, s.Hibernation = v.LogFileClean, v.LogFileVersion, v.Hibernation
	rs := []Refusal{}
	for _, r := range v.Refusals {
		rs = append(rs, Refusal{ID: r.ID, Reason: r.Reason, Advice: r.Advice})
	}
	s.Refusals = append(rs, s.Refusals...)
	s.Writable = len(s.Refusals) == 0
}

// fromDirectory checks what can be checked through a mount: hiberfil.sys
// (its first 4 KiB start with hibr/HIBR/wake/WAKE, or it is shorter than
// 4 KiB, when Windows is hibernated or in a Fast Startup shutdown). The
// NTFS dirty flag and $LogFile are not visible through a mount.
func (s *Safety) fromDirectory(fsys fs.FS) {
	s.LogFileClean = true // not knowable; the mount succeeded
	fi, err := fs.Stat(fsys, "hiberfil.sys")
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var head []byte
	if err == nil {
		head, err = readHead(fsys, "hiberfil.sys", 4096)
	}
	sig := ""
	switch {
	case err != nil:
		// Fail closed: a hiberfil.sys that is there but cannot be read
		// may hold a hibernated Windows.
		s.Refusals = append(s.Refusals, Refusal{ID: "unreadable",
			Reason: fmt.Sprintf("hiberfil.sys could not be read (%v): whether Windows is hibernated is unknown", err),
			Advice: "check that the volume is mounted readable by this user (run as root / Administrator); if the file is damaged, boot this Windows and shut it down fully (`shutdown /s /t 0`), or run `chkdsk /f` on the volume; then run wuoffline again"})
		return
	case fi.Size() < 4096:
		sig = "short"
	case len(head) >= 4:
		switch string(head[:4]) {
		case "hibr", "HIBR", "wake", "WAKE":
			sig = string(head[:4])
		}
	}
	if sig != "" {
		s.Hibernation = sig
		s.Refusals = append(s.Refusals, Refusal{ID: "hibernated",
			Reason: fmt.Sprintf("hiberfil.sys shows a hibernated Windows (%q)", sig),
			Advice: "boot this Windows and shut it down fully (`shutdown /s /t 0`), or turn hibernation and Fast Startup off with `powercfg /h off`; then run wuoffline again"})
	}
}

// casesOf lists the cases that apply, most important first. They come
// from what is wrong on the disk now (checks with status problem), never
// from log history alone: logs record failures that a fix (or Windows)
// may have cured since; they are shown as past evidence (LastFailure).
func casesOf(results []Result) []Case {
	startup, install := false, false
	for _, r := range results {
		if r.Status != StatusProblem {
			continue
		}
		switch r.Case {
		case CaseStartup:
			startup = true
		case CaseInstall:
			install = true
		}
	}
	var cs []Case
	if startup {
		cs = append(cs, CaseStartup)
	}
	if install {
		cs = append(cs, CaseInstall)
	}
	if len(cs) == 0 {
		cs = []Case{CaseHealthy}
	}
	return cs
}

// commandsFor returns what only a running Windows or WinPE can do, with
// the installation's drive letter.
func commandsFor(in *Installation, cases []Case) []Command {
	l := in.Letter
	cmds := []Command{{
		Line: fmt.Sprintf(`sfc /scannow /offbootdir=%s\ /offwindir=%s\Windows`, l, l),
		Why:  "from WinPE/WinRE: check and restore protected system files (missing files are what 0x80070002 reports)",
	}}
	for _, c := range cases {
		if c == CaseStartup {
			cmds = append(cmds, Command{
				Line: fmt.Sprintf(`dism /Image:%s\ /Cleanup-Image /RevertPendingActions`, l),
				Why:  "the heavier alternative to wuoffline's pending-* fixes: reverts every pending servicing action (then run the sfc command above)",
			})
		}
	}
	return cmds
}

// exitCode is the exit code this target calls for.
func (tr *TargetReport) exitCode() int {
	refused := len(tr.Refusals) > 0
	problem, failedCheck := false, false
	for _, in := range tr.Installations {
		if len(in.Safety.Refusals) > 0 {
			refused = true
		}
		for _, c := range in.Checks {
			switch c.Status {
			case StatusProblem:
				problem = true
			case StatusFailed:
				failedCheck = true
			}
		}
	}
	switch {
	case refused:
		return ExitRefused
	case tr.Error != "":
		return ExitError
	case problem:
		return ExitProblem
	case failedCheck:
		return ExitError
	}
	return ExitOK
}

// isDriveLetter reports whether s is a Windows drive letter ("D:", "d:\").
func isDriveLetter(s string) bool {
	s = strings.TrimRight(s, `\/`)
	return len(s) == 2 && s[1] == ':' && ('A' <= s[0] && s[0] <= 'Z' || 'a' <= s[0] && s[0] <= 'z')
}

// IsDriveLetter reports whether a TARGET is a Windows drive letter.
func IsDriveLetter(s string) bool { return isDriveLetter(s) }

// runningWindowsDir reports whether a directory target is the running
// Windows' system drive (only possible on Windows).
func runningWindowsDir(p string) bool {
	if runtime.GOOS != "windows" {
		return false
	}
	sd := os.Getenv("SystemDrive")
	if sd == "" {
		return false
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return false
	}
	return strings.EqualFold(strings.TrimRight(abs, `\`), strings.TrimRight(sd, `\`))
}

// mountedElsewhere returns the mount point when a block device (or one of
// its partitions) is mounted, from /proc/self/mounts (Linux only).
func mountedElsewhere(dev string) string {
	real, err := filepath.EvalSymlinks(dev)
	if err != nil {
		real = dev
	}
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return ""
	}
	for _, ln := range strings.Split(string(b), "\n") {
		f := strings.Fields(ln)
		if len(f) < 2 || !strings.HasPrefix(f[0], "/dev/") {
			continue
		}
		src, err := filepath.EvalSymlinks(f[0])
		if err != nil {
			src = f[0]
		}
		if src == real || strings.HasPrefix(src, real) && len(src) > len(real) && isPartSuffix(src[len(real):]) {
			return src + " on " + f[1]
		}
	}
	return ""
}

// isPartSuffix: "1", "p1" (nvme0n1p1, loop0p1).
func isPartSuffix(s string) bool {
	s = strings.TrimPrefix(s, "p")
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
