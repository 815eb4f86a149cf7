package secdesc

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// aclHeaderSize is the ACL header ([MS-DTYP] 2.4.5): revision, Sbz1, u16
// AclSize (header and ACEs), u16 AceCount, u16 Sbz2.
const aclHeaderSize = 8

// ACL is an access control list: a DACL or a SACL.
type ACL struct {
	// Revision is 2 (ACL_REVISION) or 4 (ACL_REVISION_DS, object ACEs).
	Revision byte
	ACEs     []ACE
	// Slack holds bytes between the last ACE and the AclSize the header
	// declares (Windows may leave room there), kept for a byte-exact write.
	Slack []byte
}

// parseACL reads the ACL at off in b (a whole descriptor).
func parseACL(b []byte, off int) (*ACL, error) {
	if off < 0 || off+aclHeaderSize > len(b) {
		return nil, fmt.Errorf("header at 0x%x past the end (%d bytes)", off, len(b))
	}
	a := &ACL{Revision: b[off]}
	if a.Revision != 2 && a.Revision != 4 {
		return nil, fmt.Errorf("at 0x%x: revision %d, want 2 or 4", off, a.Revision)
	}
	size := int(binary.LittleEndian.Uint16(b[off+2:]))
	count := int(binary.LittleEndian.Uint16(b[off+4:]))
	if size < aclHeaderSize || off+size > len(b) {
		return nil, fmt.Errorf("at 0x%x: size %d outside the descriptor (%d bytes)", off, size, len(b))
	}
	end := off + size
	// Each ACE takes at least 8 bytes: the count is bounded by the size
	// before anything is allocated for it.
	if count > (size-aclHeaderSize)/(aceHeaderSize+4) {
		return nil, fmt.Errorf("at 0x%x: %d ACEs cannot fit in %d bytes", off, count, size)
	}
	a.ACEs = make([]ACE, 0, count)
	p := off + aclHeaderSize
	for i := 0; i < count; i++ {
		ace, n, err := parseACE(b, p, end)
		if err != nil {
			return nil, fmt.Errorf("at 0x%x: ACE %d: %w", off, i, err)
		}
		a.ACEs = append(a.ACEs, ace)
		p += n
	}
	if p < end {
		a.Slack = append([]byte(nil), b[p:end]...)
	}
	return a, nil
}

// size is the ACL's length in bytes.
func (a *ACL) size() int {
	n := aclHeaderSize + len(a.Slack)
	for _, e := range a.ACEs {
		n += e.size()
	}
	return n
}

// appendTo appends the ACL's binary form to b.
func (a *ACL) appendTo(b []byte) []byte {
	b = append(b, a.Revision, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(a.size()))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(a.ACEs)))
	b = append(b, 0, 0)
	for _, e := range a.ACEs {
		b = e.appendTo(b)
	}
	return append(b, a.Slack...)
}

// SDDL renders the ACEs as SDDL ("(A;;CC;;;SY)(D;;RP;;;BA)"), without
// the "D:" or "S:" prefix and flags, which belong to the descriptor.
func (a *ACL) SDDL() string {
	var sb strings.Builder
	for _, e := range a.ACEs {
		sb.WriteString(e.SDDL())
	}
	return sb.String()
}

// GenericMapping says which specific rights the generic rights stand for
// on one kind of object (GENERIC_MAPPING).
type GenericMapping struct {
	Read, Write, Execute, All uint32
}

// Generic access rights ([MS-DTYP] 2.4.3).
const (
	GenericAll     = 0x10000000
	GenericExecute = 0x20000000
	GenericWrite   = 0x40000000
	GenericRead    = 0x80000000
)

// mapGeneric replaces the generic bits of mask by what m says they mean.
func (m GenericMapping) mapGeneric(mask uint32) uint32 {
	out := mask &^ (GenericAll | GenericExecute | GenericWrite | GenericRead)
	if mask&GenericRead != 0 {
		out |= m.Read
	}
	if mask&GenericWrite != 0 {
		out |= m.Write
	}
	if mask&GenericExecute != 0 {
		out |= m.Execute
	}
	if mask&GenericAll != 0 {
		out |= m.All
	}
	return out
}

// Access evaluates the ACL for a token that holds the SIDs in token, the
// way Windows' access check walks a DACL: in order, skipping inherit-only
// ACEs, each right decided by the first allow or deny ACE that names it
// for one of the token's SIDs. It returns the rights granted and those
// denied (generic rights mapped by m); a right in neither is not granted.
// Callback and object ACEs are not evaluated (their conditions need a
// running system): a caller that needs certainty inspects the ACEs.
func (a *ACL) Access(token []SID, m GenericMapping) (granted, denied uint32) {
	for _, e := range a.ACEs {
		if e.Flags&FlagInheritOnly != 0 || (e.Type != TypeAccessAllowed && e.Type != TypeAccessDenied) {
			continue
		}
		if !holds(token, e.SID) {
			continue
		}
		bits := m.mapGeneric(e.Mask) &^ (granted | denied)
		if e.Type == TypeAccessAllowed {
			granted |= bits
		} else {
			denied |= bits
		}
	}
	return granted, denied
}

// Denying returns the deny ACEs that take part in Access for token and
// name one of rights (generic rights mapped by m): the ACEs to show when
// Access reports a right denied.
func (a *ACL) Denying(token []SID, m GenericMapping, rights uint32) []ACE {
	var out []ACE
	for _, e := range a.ACEs {
		if e.Type == TypeAccessDenied && e.Flags&FlagInheritOnly == 0 && holds(token, e.SID) && m.mapGeneric(e.Mask)&rights != 0 {
			out = append(out, e)
		}
	}
	return out
}

func holds(token []SID, s SID) bool {
	for _, t := range token {
		if t.Equal(s) {
			return true
		}
	}
	return false
}
