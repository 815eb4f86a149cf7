package secdesc

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// ACE types ([MS-DTYP] 2.4.4.1) this package decodes: a header, an access
// mask and a SID ([MS-DTYP] 2.4.4.2-2.4.4.4, 2.4.4.13 mandatory label,
// 2.4.4.16 scoped policy id). Callback ACEs (2.4.4.6-2.4.4.8) have the same
// start and application data after the SID. Other types (object ACEs,
// resource attributes) keep their body as it is.
const (
	TypeAccessAllowed         = 0x00
	TypeAccessDenied          = 0x01
	TypeSystemAudit           = 0x02
	TypeSystemAlarm           = 0x03
	TypeAccessAllowedCallback = 0x09
	TypeAccessDeniedCallback  = 0x0a
	TypeSystemAuditCallback   = 0x0d
	TypeSystemMandatoryLabel  = 0x11
	TypeSystemScopedPolicyID  = 0x13
)

// ACE flags ([MS-DTYP] 2.4.4.1).
const (
	FlagObjectInherit    = 0x01
	FlagContainerInherit = 0x02
	FlagNoPropagate      = 0x04
	FlagInheritOnly      = 0x08
	FlagInherited        = 0x10
	FlagSuccessfulAccess = 0x40
	FlagFailedAccess     = 0x80
)

// aceHeaderSize is ACE_HEADER: type, flags, u16 size.
const aceHeaderSize = 4

// ACE is one access control entry.
type ACE struct {
	Type  byte
	Flags byte
	// Mask is the access mask (the first four bytes of the body of every
	// ACE type).
	Mask uint32
	// SID is the trustee (zero for a type this package does not decode).
	SID SID
	// Extra holds the bytes of the ACE after what is decoded: the
	// application data of a callback ACE, padding, or the whole body after
	// the mask of a type not decoded. Kept so that writing the ACE back
	// gives the same bytes.
	Extra []byte
}

// decoded reports whether the ACE type's body is a mask and a SID.
func decoded(t byte) bool {
	switch t {
	case TypeAccessAllowed, TypeAccessDenied, TypeSystemAudit, TypeSystemAlarm,
		TypeAccessAllowedCallback, TypeAccessDeniedCallback, TypeSystemAuditCallback,
		TypeSystemMandatoryLabel, TypeSystemScopedPolicyID:
		return true
	}
	return false
}

// parseACE reads the ACE at off in b, which must end by end (the end of
// its ACL); it returns the ACE and its size.
func parseACE(b []byte, off, end int) (ACE, int, error) {
	if off+aceHeaderSize > end {
		return ACE{}, 0, fmt.Errorf("header at 0x%x past the end of the ACL (0x%x)", off, end)
	}
	a := ACE{Type: b[off], Flags: b[off+1]}
	size := int(binary.LittleEndian.Uint16(b[off+2:]))
	if size < aceHeaderSize+4 {
		return ACE{}, 0, fmt.Errorf("at 0x%x: size %d is below the header and mask (8)", off, size)
	}
	if off+size > end {
		return ACE{}, 0, fmt.Errorf("at 0x%x: size %d runs past the end of the ACL (0x%x)", off, size, end)
	}
	a.Mask = binary.LittleEndian.Uint32(b[off+aceHeaderSize:])
	body := off + aceHeaderSize + 4
	if !decoded(a.Type) {
		a.Extra = append([]byte(nil), b[body:off+size]...)
		return a, size, nil
	}
	// The SID must lie inside the ACE: parse it in a slice that ends there.
	sid, n, err := parseSID(b[:off+size], body)
	if err != nil {
		return ACE{}, 0, fmt.Errorf("at 0x%x: %w", off, err)
	}
	a.SID = sid
	if rest := b[body+n : off+size]; len(rest) > 0 {
		a.Extra = append([]byte(nil), rest...)
	}
	return a, size, nil
}

// size is the ACE's length in bytes.
func (a ACE) size() int {
	if !decoded(a.Type) {
		return aceHeaderSize + 4 + len(a.Extra)
	}
	return aceHeaderSize + 4 + a.SID.size() + len(a.Extra)
}

// appendTo appends the ACE's binary form to b.
func (a ACE) appendTo(b []byte) []byte {
	b = append(b, a.Type, a.Flags)
	b = binary.LittleEndian.AppendUint16(b, uint16(a.size()))
	b = binary.LittleEndian.AppendUint32(b, a.Mask)
	if decoded(a.Type) {
		b = a.SID.appendTo(b)
	}
	return append(b, a.Extra...)
}

// aceTypeSDDL are the SDDL names of the ACE types ([MS-DTYP] 2.5.1.1).
var aceTypeSDDL = map[byte]string{
	TypeAccessAllowed: "A", TypeAccessDenied: "D", TypeSystemAudit: "AU", TypeSystemAlarm: "AL",
	0x05: "OA", 0x06: "OD", 0x07: "OU", 0x08: "OL",
	TypeAccessAllowedCallback: "XA", TypeAccessDeniedCallback: "XD", 0x0b: "ZA", TypeSystemAuditCallback: "XU",
	TypeSystemMandatoryLabel: "ML", 0x12: "RA", TypeSystemScopedPolicyID: "SP",
}

// aceFlagSDDL are the SDDL names of the ACE flags, in the order SDDL
// writes them.
var aceFlagSDDL = []struct {
	bit  byte
	name string
}{
	{FlagObjectInherit, "OI"}, {FlagContainerInherit, "CI"}, {FlagNoPropagate, "NP"},
	{FlagInheritOnly, "IO"}, {FlagInherited, "ID"}, {FlagSuccessfulAccess, "SA"}, {FlagFailedAccess, "FA"},
}

// rightSDDL are the SDDL names of the access-mask bits ([MS-DTYP] 2.5.1.1),
// in the order Windows writes them for a service ("CCLCSWRPWPDTLOCRRC").
// For services the object-specific bits mean: CC query config, DC change
// config, LC query status, SW enumerate dependents, RP start, WP stop, DT
// pause/continue, LO interrogate, CR user-defined control.
var rightSDDL = []struct {
	bit  uint32
	name string
}{
	{0x1, "CC"}, {0x2, "DC"}, {0x4, "LC"}, {0x8, "SW"}, {0x10, "RP"}, {0x20, "WP"},
	{0x40, "DT"}, {0x80, "LO"}, {0x100, "CR"},
	{0x10000, "SD"}, {0x20000, "RC"}, {0x40000, "WD"}, {0x80000, "WO"},
	{0x10000000, "GA"}, {0x20000000, "GX"}, {0x40000000, "GW"}, {0x80000000, "GR"},
}

// RightsSDDL renders an access mask as SDDL rights ("CCLCSWRPWPDTLOCRRC");
// a mask with a bit SDDL has no name for is written in hex ("0x1200a9").
func RightsSDDL(mask uint32) string {
	var sb strings.Builder
	left := mask
	for _, r := range rightSDDL {
		if mask&r.bit != 0 {
			sb.WriteString(r.name)
			left &^= r.bit
		}
	}
	if left != 0 {
		return fmt.Sprintf("0x%x", mask)
	}
	return sb.String()
}

// SDDL renders the ACE as an SDDL ace string "(A;;CCLCRPRC;;;SY)"; a type
// this package does not decode shows its type number and body in hex.
func (a ACE) SDDL() string {
	var flags strings.Builder
	left := a.Flags
	for _, f := range aceFlagSDDL {
		if a.Flags&f.bit != 0 {
			flags.WriteString(f.name)
			left &^= f.bit
		}
	}
	if left != 0 {
		flags.WriteString(fmt.Sprintf("0x%x", left))
	}
	typ, ok := aceTypeSDDL[a.Type]
	if !ok {
		typ = fmt.Sprintf("0x%x", a.Type)
	}
	if !decoded(a.Type) {
		return fmt.Sprintf("(%s;%s;%s;;;body %x)", typ, flags.String(), RightsSDDL(a.Mask), a.Extra)
	}
	return fmt.Sprintf("(%s;%s;%s;;;%s)", typ, flags.String(), RightsSDDL(a.Mask), a.SID.SDDL())
}
