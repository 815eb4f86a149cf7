package journal

import (
	"fmt"
	"strings"
)

// DamageKind says how a journal is damaged.
type DamageKind string

const (
	// DamageMissing: the journal file is not there (a named path that does
	// not exist, or a gap in the Seq numbers of a volume's journals).
	DamageMissing DamageKind = "missing"
	// DamageUnreadable: the file exists but cannot be read (permissions,
	// an I/O error of the stick).
	DamageUnreadable DamageKind = "unreadable"
	// DamageHeader: the magic or the header frame is damaged: nothing in
	// the file can be trusted, not even which volume it belongs to.
	DamageHeader DamageKind = "header"
	// DamageCut: the journal ends early (cut, or a frame runs past its
	// end) before its plan mark.
	DamageCut DamageKind = "cut"
	// DamageFrames: one or more frames fail their checksum or make no
	// sense (a flipped byte, garbage written over it).
	DamageFrames DamageKind = "frames"
)

// WriteProgress says whether a damaged journal's fix had started writing the
// target, as far as can be known.
type WriteProgress string

const (
	// WrittenUnknown: not known (the header is unreadable, or nothing
	// intact to compare with the target).
	WrittenUnknown WriteProgress = "unknown"
	// WrittenNone: every intact range still holds its original bytes.
	WrittenNone WriteProgress = "none"
	// WrittenSome: some intact range holds bytes of the fix (or the fix was
	// committed).
	WrittenSome WriteProgress = "some"
)

// DamagedError is the error for a journal that is damaged, cut, missing
// or unreadable. It says which file and what is still known. [Find]
// returns such journals with it in Info.Damage; [UndoOn] returns it (with
// a report of what it could still take back) so that a damaged journal
// is never "nothing to undo".
type DamagedError struct {
	Path string
	Kind DamageKind
	// At is the offset in the file of the first damage; -1 when it does
	// not apply (missing, unreadable).
	At  int64
	Err error // what was found
	// Seq is the Seq of a missing journal (a gap among a volume's
	// journals); 0 otherwise.
	Seq uint64
	// Version is the journal's format version; 0 when the header is
	// unreadable.
	Version int
	// Units is the number of units seen in frames that verify; UnitsIntact
	// how many of them belong to groups that are whole in the journal: only
	// those can be undone.
	Units, UnitsIntact int
	// PlannedUnits is what the plan mark says the journal held (version
	// 3); -1 when the plan mark is unreadable or absent.
	PlannedUnits int
	// Prepared tells whether the journal was known to be prepared, so that
	// writes may have happened: a version 3 journal always is (it only gets
	// its name once prepared); a version 1 or 2 journal when its plan mark
	// was read.
	Prepared bool
	// Written says whether the fix had started writing the target: set by
	// UndoOn from the intact ranges; WrittenUnknown from Find.
	Written WriteProgress
}

func (e *DamagedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "journal %s ", e.Path)
	switch e.Kind {
	case DamageMissing:
		if e.Seq > 0 {
			fmt.Fprintf(&b, "is missing (the journal numbered %d of this volume is not in the directory)", e.Seq)
		} else {
			b.WriteString("is missing")
		}
	case DamageUnreadable:
		b.WriteString("cannot be read")
	case DamageHeader:
		b.WriteString("is damaged in its header")
	case DamageCut:
		b.WriteString("is cut short")
	default:
		b.WriteString("is damaged")
	}
	if e.Err != nil {
		fmt.Fprintf(&b, " (%v)", e.Err)
	}
	switch e.Kind {
	case DamageMissing, DamageUnreadable, DamageHeader:
		b.WriteString(": nothing in it can be undone")
	default:
		fmt.Fprintf(&b, ": %d of the %d unit(s) it still names are whole", e.UnitsIntact, e.Units)
		if e.PlannedUnits >= 0 {
			fmt.Fprintf(&b, " (the plan held %d)", e.PlannedUnits)
		} else {
			b.WriteString(" (how many the plan held is lost)")
		}
	}
	switch e.Written {
	case WrittenNone:
		b.WriteString("; the fix had not started writing (every intact range holds its original bytes)")
	case WrittenSome:
		b.WriteString("; the fix had started writing")
	default:
		if e.Prepared {
			b.WriteString("; the fix may have started writing")
		}
	}
	return b.String()
}

// Unwrap returns what was found.
func (e *DamagedError) Unwrap() error { return e.Err }
