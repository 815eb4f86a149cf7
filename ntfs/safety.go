package ntfs

import (
	"errors"
	"fmt"
	"slices"
)

// Refusal IDs: why writing to a volume would be refused. The same reasons
// make ntfs-3g refuse a read-write mount (formats.md, "Refuse to write";
// repair-catalog.md, "Refusals").
const (
	RefusalBitLocker      = "bitlocker"
	RefusalHibernated     = "hibernated"
	RefusalFastStartup    = "fast-startup"
	RefusalLogFileUnclean = "logfile-unclean"
	RefusalDirty          = "dirty"
	RefusalUnreadable     = "unreadable"

	// The volume's own invariants, checked as ntfs-3g checks them at
	// mount (it refuses even a read-only mount when one fails).

	// RefusalMFTMirr: $MFTMirr differs from the first records of $MFT.
	RefusalMFTMirr = "mftmirr-mismatch"
	// RefusalMFTRunList: $MFT's (or $MFTMirr's) run list cannot be
	// decoded, has holes, or points outside the volume.
	RefusalMFTRunList = "mft-runlist"
	// RefusalVersion: the NTFS version in $Volume is not one Windows
	// writes (1.2, 3.0, 3.1).
	RefusalVersion = "ntfs-version"

	// Refusals of the writer's preflight: the structures a plan touches.

	// RefusalIndex: a directory index the plan would change does not check
	// clean (order, names, back-links, INDX fixups, index bitmap).
	RefusalIndex = "index-damaged"
	// RefusalClusterConflict: a cluster is claimed by two records the plan
	// read (cross-linked), a run list of one of them cannot be decoded or
	// lies outside the volume.
	RefusalClusterConflict = "cluster-conflict"
	// RefusalBitmap: $Bitmap marks free a cluster that a record the plan
	// read uses (a damaged or zeroed $Bitmap): allocating from it could
	// overwrite live data.
	RefusalBitmap = "bitmap-inconsistent"
)

// Safety is a volume's state as far as writing to it is concerned,
// computed once by Open. A check that could not be made is recorded as an
// "unreadable" refusal instead of aborting the others.
type Safety struct {
	Version        string // NTFS version from $VOLUME_INFORMATION, "3.1"
	Label          string // $VOLUME_NAME
	Serial         uint64 // from the boot sector
	VolumeFlags    uint16 // $VOLUME_INFORMATION flags, raw (Windows 10 sets 0x0080; keep unknown bits)
	Dirty          bool   // flags & 0x0001
	LogFileClean   bool
	LogFileVersion string    // restart page version "1.1", "2.0" (2.0 = Fast Startup); "" when $LogFile is empty or unreadable
	LogFileEmpty   bool      // $LogFile holds no restart page (ntfs-3g empties it on mount): clean by definition
	Hibernation    string    // "" none, else what hiberfil.sys shows: "hibr", "HIBR", "wake", "WAKE", "short" (<4 KiB)
	Refusals       []Refusal // empty => safe to write
}

// Refusal is one reason not to write to the volume and what the user
// should do about it.
type Refusal struct {
	ID        string // RefusalHibernated, ...
	Structure string // the damaged structure, e.g. "$MFTMirr (MFT record 1)"; "" for states such as hibernation
	Reason    string // what was found, for the report
	Advice    string // what the user should do
}

// Refused reports whether the refusal with the given ID was recorded.
func (s *Safety) Refused(id string) bool {
	for _, r := range s.Refusals {
		if r.ID == id {
			return true
		}
	}
	return false
}

// refusalsExcept returns the refusals whose ID is not in allow.
func (s *Safety) refusalsExcept(allow []string) []Refusal {
	var out []Refusal
	for _, r := range s.Refusals {
		if !slices.Contains(allow, r.ID) {
			out = append(out, r)
		}
	}
	return out
}

func (s *Safety) refuse(id, reason, advice string) {
	s.Refusals = append(s.Refusals, Refusal{ID: id, Reason: reason, Advice: advice})
}

const (
	rdAdviceShutdown = "boot this Windows and shut it down fully: `shutdown /s /t 0` from a command prompt " +
		"(holding Shift while clicking Shut down also works), or turn hibernation and Fast Startup off for good " +
		"with `powercfg /h off`; then run wuoffline again. Writing now would be lost or would corrupt the volume when Windows resumes."
	rdAdviceChkdsk = "run `chkdsk /f D:` on this volume (use its drive letter; in WinPE/WinRE first), or boot Windows and let it check the disk; then run wuoffline again."
	// adviceChkdsk is for damage only Windows' own checker can repair.
	// ntfsfix is not named: it only resets $LogFile and copies $MFT over
	// $MFTMirr, which hides the damage instead of repairing it.
	adviceChkdsk = "the NTFS metadata is damaged: run `chkdsk /f X:` on this volume from WinPE/WinRE " +
		"(X: is its drive letter there), then run wuoffline again. Do not use ntfsfix: it is not a repair. " +
		"If chkdsk fails too, image the disk before anything else."
	rdAdviceUnreadable = "the volume's metadata is damaged: run `chkdsk /f D:` on it from WinPE/WinRE (use its drive letter), " +
		"and if it still fails, image the disk before any repair."
)

// knownVersion reports whether major.minor is an NTFS version Windows
// writes: 1.2 (NT 4), 3.0 (Windows 2000) and 3.1 (XP and later). ntfs-3g
// refuses to mount any other.
func knownVersion(major, minor byte) bool {
	return major == 1 && minor == 2 || major == 3 && (minor == 0 || minor == 1)
}

// computeSafety fills v.safety; every check records its own failure.
func (v *Volume) computeSafety() {
	s := v.safety
	s.Refusals = append(s.Refusals, metadataRefusals(v.r, v.size)...)
	if err := v.checkVolumeInfo(); err != nil {
		s.refuse(RefusalUnreadable, fmt.Sprintf("$Volume (record 3) is unreadable: %v; its dirty flag is unknown", err), rdAdviceUnreadable)
	}
	if err := v.checkLogFile(); err != nil {
		s.refuse(RefusalUnreadable, fmt.Sprintf("$LogFile (record 2) is unreadable: %v; whether Windows left unwritten changes is unknown", err), rdAdviceUnreadable)
	}
	if err := v.checkHiberfil(); err != nil {
		s.refuse(RefusalUnreadable, fmt.Sprintf("hiberfil.sys could not be checked: %v; whether Windows is hibernated is unknown", err), rdAdviceShutdown)
	}
}

// checkVolumeInfo reads $VOLUME_INFORMATION and $VOLUME_NAME of $Volume.
// $VOLUME_INFORMATION (0x70, 12 bytes): 8 reserved bytes, major version @8,
// minor @9, flags u16 @0x0A; flag 0x0001 is VOLUME_IS_DIRTY (layout.h).
func (v *Volume) checkVolumeInfo() error {
	s := v.safety
	rec, err := v.record(mftRecVolume, 0)
	if err != nil {
		return err
	}
	if a := rec.find(AttrVolumeName, ""); a != nil {
		// At most 128 UTF-16 code units ($AttrDef: 2-256 bytes).
		if b, err := v.attrBytes(rec, a, 256); err == nil {
			s.Label = decodeUTF16(b)
		}
	}
	a := rec.find(AttrVolumeInformation, "")
	if a == nil {
		return errors.New("no $VOLUME_INFORMATION attribute")
	}
	b, err := v.attrBytes(rec, a, 64)
	if err != nil {
		return err
	}
	if len(b) < 12 {
		return fmt.Errorf("$VOLUME_INFORMATION has %d bytes, want 12", len(b))
	}
	s.Version = fmt.Sprintf("%d.%d", b[8], b[9])
	if !knownVersion(b[8], b[9]) {
		s.Refusals = append(s.Refusals, Refusal{ID: RefusalVersion, Structure: "$Volume (MFT record 3) $VOLUME_INFORMATION",
			Reason: fmt.Sprintf("NTFS version %s is not one Windows writes (1.2, 3.0 or 3.1): the volume is damaged or not made by Windows", s.Version),
			Advice: adviceChkdsk})
	}
	s.VolumeFlags = le16(b[10:])
	s.Dirty = s.VolumeFlags&1 != 0
	if s.Dirty {
		s.refuse(RefusalDirty, fmt.Sprintf("the NTFS dirty flag is set in $Volume (flags 0x%04x): the file system was not closed cleanly or Windows scheduled a check", s.VolumeFlags), rdAdviceChkdsk)
	}
	return nil
}

// checkLogFile reads the restart pages of $LogFile.
func (v *Volume) checkLogFile() error {
	s := v.safety
	rec, err := v.record(mftRecLogFile, 0)
	if err != nil {
		return err
	}
	a := rec.find(AttrData, "")
	if a == nil {
		return errors.New("no $DATA attribute")
	}
	st, err := v.stream(rec, a)
	if err != nil {
		return err
	}
	rs, err := ReadLogFileRestart(st, a.size)
	if err != nil {
		return err
	}
	s.LogFileEmpty = rs.Empty
	s.LogFileClean = rs.Clean()
	if rs.Empty {
		return nil
	}
	s.LogFileVersion = fmt.Sprintf("%d.%d", rs.MajorVersion, rs.MinorVersion)
	if rs.MajorVersion == 2 && rs.MinorVersion == 0 {
		// ntfs-3g refuses these too: Windows 8 and later may keep metadata
		// cached for Fast Startup ("hybrid shutdown"); a power cut can
		// also leave version 2.0 behind.
		s.refuse(RefusalFastStartup, "$LogFile restart area is version 2.0: Windows was shut down with Fast Startup (hybrid shutdown) or hibernated, and may hold unwritten metadata of this volume", rdAdviceShutdown)
	}
	if !s.LogFileClean {
		s.refuse(RefusalLogFileUnclean, fmt.Sprintf("$LogFile is not clean (client in use %d, restart flags 0x%04x): Windows did not unmount this volume cleanly and has changes to replay", rs.ClientInUse, rs.Flags), rdAdviceShutdown+" If Windows cannot boot, run `chkdsk /f D:` from WinPE/WinRE instead.")
	}
	return nil
}
