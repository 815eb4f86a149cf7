package offline

import (
	"github.com/wuoffline/wuoffline/ntfs"
)

// Hibernation and Fast Startup without a working Windows (--discard-hibernation).
//
// A hibernated Windows resumes with its own view of the volume, so offline
// writes would be lost or would corrupt it: fix refuses. A machine that does
// not boot cannot be shut down properly either. ntfs-3g's remove_hiberfile
// mount option answers that by deleting hiberfil.sys once the volume is
// mounted: the boot loader then finds no hibernation image and Windows
// starts afresh. --discard-hibernation does the same through the journal: it
// renames hiberfil.sys aside (hiberfil.sys.old) before any other change, so
// `wuoffline undo` brings the hibernated session back byte for byte.
//
// Only when $LogFile needs no replay: a log with changes Windows has not
// written yet (unclean, or the version 2.0 restart area Fast Startup and
// hibernation leave) holds metadata of this volume that only Windows' own
// NTFS driver can replay; discarding it is how ntfs-3g loses data. Then fix
// keeps refusing and says what to do.

const (
	hiberfilPath = "hiberfil.sys"
	// hibernationCheck labels the action in the plan and the journal.
	hibernationCheck = "hibernation"
	// HibernationWarning says what --discard-hibernation loses.
	HibernationWarning = "the hibernated Windows session is discarded: programs that were open and their unsaved work are lost " +
		"(after a Fast Startup shutdown nothing is lost: no user session was saved); Windows starts afresh. " +
		"`wuoffline undo` brings the session back"
	// logReplayAdvice replaces the usual "boot Windows and shut it down"
	// for a machine that cannot boot.
	logReplayAdvice = "Windows left changes in $LogFile that must be replayed by Windows' own NTFS driver before anything else writes: " +
		"from WinPE/WinRE, open a command prompt and let Windows mount the volume (`dir D:\\` replays the log; use its drive letter), " +
		"then `chkdsk /f D:`, then `del D:\\hiberfil.sys` if Windows is still hibernated; then run wuoffline again. " +
		"From Linux there is no tool that replays the NTFS log: ntfs-3g (remove_hiberfile, ntfsfix) empties it instead and loses those changes; " +
		"mount read-only (`mount -o ro`) to copy data off, and use WinPE for the repair."
)

// discardsHibernation reports whether --discard-hibernation applies to the
// installation: asked for, the volume refuses writing because it is
// hibernated, and for no other reason (a $LogFile that needs replay, Fast
// Startup's log, a dirty volume ... keep refusing).
func discardsHibernation(ir InstallationReport, opts FixOptions) bool {
	if !opts.DiscardHibernation {
		return false
	}
	hibernated := false
	for _, r := range ir.Safety.Refusals {
		if r.ID != ntfs.RefusalHibernated {
			return false
		}
		hibernated = true
	}
	return hibernated && ir.Safety.LogFileClean
}

// writeRefusals are the refusals of the installation that stop fix. With
// --discard-hibernation the hibernation refusal is lifted when it is the
// only one; when the log needs replay, the advice says what to do from
// WinPE and from Linux instead of "boot Windows".
func writeRefusals(ir InstallationReport, opts FixOptions) []Refusal {
	if discardsHibernation(ir, opts) {
		return nil
	}
	if !opts.DiscardHibernation {
		return ir.Safety.Refusals
	}
	out := make([]Refusal, 0, len(ir.Safety.Refusals))
	for _, r := range ir.Safety.Refusals {
		switch r.ID {
		case ntfs.RefusalLogFileUnclean, ntfs.RefusalFastStartup:
			r.Advice = "--discard-hibernation cannot be used: " + logReplayAdvice
		}
		out = append(out, r)
	}
	return out
}

// allowedRefusals are the refusal IDs the NTFS writer may ignore because
// the plan deals with them first.
func allowedRefusals(ir InstallationReport, opts FixOptions) []string {
	if discardsHibernation(ir, opts) {
		return []string{ntfs.RefusalHibernated}
	}
	return nil
}

// hibernationAction renames hiberfil.sys aside: the first action of the
// plan, so that every other write happens on a volume Windows will not
// resume over.
func hibernationAction() *plannedAction {
	return &plannedAction{FixAction: FixAction{Check: hibernationCheck, Op: "rename", Path: hiberfilPath, To: hiberfilPath + ".old",
		Old: "hibernated session (hiberfil.sys)", New: HibernationWarning}}
}

// hibernationOutcome is the fix outcome of the hibernation action, from the
// diagnosis after the fix: fixed when the volume no longer shows a
// hibernated Windows.
func hibernationOutcome(after *InstallationReport) (Status, string) {
	for _, r := range after.Safety.Refusals {
		if r.ID == ntfs.RefusalHibernated {
			return StatusFailed, "hiberfil.sys still shows a hibernated Windows: " + r.Reason
		}
	}
	return StatusFixed, "hibernated session discarded (hiberfil.sys renamed aside; undo brings it back)"
}
