// Package secdesc reads and writes self-relative Windows security
// descriptors ([MS-DTYP] 2.4.6): the form Windows stores in the registry,
// e.g. a service's `Services\<name>\Security` : `Security` value that the
// service control manager checks before it starts, stops or reconfigures
// the service. It renders them as SDDL ([MS-DTYP] 2.5.1) for people.
//
// One file per structure: descriptor.go (the header and its four
// offsets), acl.go (ACL and access evaluation), ace.go, sid.go.
package secdesc

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// Control bits of SECURITY_DESCRIPTOR ([MS-DTYP] 2.4.6).
const (
	ControlOwnerDefaulted     = 0x0001
	ControlGroupDefaulted     = 0x0002
	ControlDACLPresent        = 0x0004
	ControlDACLDefaulted      = 0x0008
	ControlSACLPresent        = 0x0010
	ControlSACLDefaulted      = 0x0020
	ControlDACLAutoInheritReq = 0x0100
	ControlSACLAutoInheritReq = 0x0200
	ControlDACLAutoInherited  = 0x0400
	ControlSACLAutoInherited  = 0x0800
	ControlDACLProtected      = 0x1000
	ControlSACLProtected      = 0x2000
	ControlRMValid            = 0x4000
	ControlSelfRelative       = 0x8000
)

// headerSize is the self-relative header: revision, Sbz1, u16 control,
// then the u32 offsets of owner, group, SACL and DACL (0 = absent).
const headerSize = 20

// MaxSize bounds a descriptor: the header, two SIDs of at most 68 bytes
// and two ACLs of at most 65535 bytes (their size field is 16 bits).
const MaxSize = headerSize + 2*68 + 2*0xffff

// Descriptor is a security descriptor. A nil Owner, Group, SACL or DACL is
// absent; with ControlDACLPresent set and a nil DACL it is a NULL DACL
// (everyone is granted every right).
type Descriptor struct {
	Revision byte
	// Sbz1 is the resource manager control byte when ControlRMValid is
	// set; kept as read.
	Sbz1    byte
	Control uint16
	Owner   *SID
	Group   *SID
	SACL    *ACL
	DACL    *ACL
}

// Read parses the self-relative security descriptor of size bytes in r
// (a registry value's data). It checks every offset and size against
// size before use; errors say which part was being read and where.
func Read(r io.ReaderAt, size int64) (*Descriptor, error) {
	if size < headerSize {
		return nil, fmt.Errorf("secdesc: %d bytes, below the %d-byte header", size, headerSize)
	}
	if size > MaxSize {
		return nil, fmt.Errorf("secdesc: %d bytes, above the largest descriptor (%d)", size, MaxSize)
	}
	b := make([]byte, size)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("secdesc: reading %d bytes: %w", size, err)
	}
	d := &Descriptor{Revision: b[0], Sbz1: b[1], Control: binary.LittleEndian.Uint16(b[2:])}
	if d.Revision != 1 {
		return nil, fmt.Errorf("secdesc: revision %d, want 1", d.Revision)
	}
	if d.Control&ControlSelfRelative == 0 {
		// The absolute form holds pointers, meaningless on disk.
		return nil, fmt.Errorf("secdesc: control 0x%04x lacks SE_SELF_RELATIVE", d.Control)
	}
	offs := [4]int{}
	for i := range offs {
		o := binary.LittleEndian.Uint32(b[4+4*i:])
		if o != 0 && (o < headerSize || int64(o) >= size) {
			return nil, fmt.Errorf("secdesc: %s offset 0x%x outside 0x%x..0x%x", partName[i], o, headerSize, size)
		}
		offs[i] = int(o)
	}
	var err error
	if offs[0] != 0 {
		if d.Owner, err = sidAt(b, offs[0]); err != nil {
			return nil, fmt.Errorf("secdesc: owner: %w", err)
		}
	}
	if offs[1] != 0 {
		if d.Group, err = sidAt(b, offs[1]); err != nil {
			return nil, fmt.Errorf("secdesc: group: %w", err)
		}
	}
	// An ACL whose "present" bit is clear is ignored by Windows whatever
	// its offset says ([MS-DTYP] 2.4.6: SP/DP).
	if d.Control&ControlSACLPresent != 0 && offs[2] != 0 {
		if d.SACL, err = parseACL(b, offs[2]); err != nil {
			return nil, fmt.Errorf("secdesc: SACL: %w", err)
		}
	}
	if d.Control&ControlDACLPresent != 0 && offs[3] != 0 {
		if d.DACL, err = parseACL(b, offs[3]); err != nil {
			return nil, fmt.Errorf("secdesc: DACL: %w", err)
		}
	}
	return d, nil
}

var partName = [4]string{"owner", "group", "SACL", "DACL"}

func sidAt(b []byte, off int) (*SID, error) {
	s, _, err := parseSID(b, off)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// Marshal returns the self-relative form: the header, then the SACL, the
// DACL, the owner and the group, the order Windows' MakeSelfRelativeSD
// writes them (so a descriptor Windows wrote comes back byte for byte).
// The present bits follow the parts: a nil SACL or DACL keeps its present
// bit as set in Control (a NULL DACL stays a NULL DACL). An ACL's size
// field is 16 bits: a read ACL always fits; one a caller builds must stay
// below 64 KiB (a service DACL is a few hundred bytes).
func (d *Descriptor) Marshal() []byte {
	b := make([]byte, headerSize, headerSize+256)
	b[0], b[1] = d.Revision, d.Sbz1
	ctl := d.Control | ControlSelfRelative
	if d.SACL != nil {
		ctl |= ControlSACLPresent
	}
	if d.DACL != nil {
		ctl |= ControlDACLPresent
	}
	binary.LittleEndian.PutUint16(b[2:], ctl)
	put := func(field int) {
		binary.LittleEndian.PutUint32(b[4+4*field:], uint32(len(b)))
	}
	if d.SACL != nil {
		put(2)
		b = d.SACL.appendTo(b)
	}
	if d.DACL != nil {
		put(3)
		b = d.DACL.appendTo(b)
	}
	if d.Owner != nil {
		put(0)
		b = d.Owner.appendTo(b)
	}
	if d.Group != nil {
		put(1)
		b = d.Group.appendTo(b)
	}
	return b
}

// NullDACL reports a DACL that is present but NULL: no access check at
// all, every right granted to everyone.
func (d *Descriptor) NullDACL() bool {
	return d.Control&ControlDACLPresent != 0 && d.DACL == nil
}

// Access evaluates the DACL for a token holding the SIDs in token (see
// ACL.Access). No DACL, or a NULL DACL, grants everything.
func (d *Descriptor) Access(token []SID, m GenericMapping) (granted, denied uint32) {
	if d.DACL == nil {
		return m.All | m.Read | m.Write | m.Execute, 0
	}
	return d.DACL.Access(token, m)
}

// SDDL renders the descriptor as an SDDL string
// ("O:SYG:SYD:(A;;CCLCSWRPWPDTLOCRRC;;;SY)S:(AU;FA;CCDCLC...;;;WD)").
func (d *Descriptor) SDDL() string {
	var sb strings.Builder
	if d.Owner != nil {
		sb.WriteString("O:" + d.Owner.SDDL())
	}
	if d.Group != nil {
		sb.WriteString("G:" + d.Group.SDDL())
	}
	if d.Control&ControlDACLPresent != 0 || d.DACL != nil {
		sb.WriteString("D:" + aclFlags(d.Control, ControlDACLProtected, ControlDACLAutoInheritReq, ControlDACLAutoInherited))
		if d.DACL == nil {
			sb.WriteString("NO_ACCESS_CONTROL")
		} else {
			sb.WriteString(d.DACL.SDDL())
		}
	}
	if d.SACL != nil {
		sb.WriteString("S:" + aclFlags(d.Control, ControlSACLProtected, ControlSACLAutoInheritReq, ControlSACLAutoInherited))
		sb.WriteString(d.SACL.SDDL())
	}
	return sb.String()
}

// aclFlags renders the SDDL ACL flags P, AR and AI.
func aclFlags(ctl, protected, req, inherited uint16) string {
	s := ""
	if ctl&protected != 0 {
		s += "P"
	}
	if ctl&req != 0 {
		s += "AR"
	}
	if ctl&inherited != 0 {
		s += "AI"
	}
	return s
}
