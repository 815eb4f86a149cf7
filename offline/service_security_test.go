package offline

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
	"github.com/wuoffline/wuoffline/secdesc"
)

// svcACE builds one ACE from an SDDL alias.
func svcACE(t *testing.T, typ byte, flags byte, mask uint32, alias string) secdesc.ACE {
	t.Helper()
	sid, ok := secdesc.WellKnown(alias)
	if !ok {
		t.Fatalf("alias %s", alias)
	}
	return secdesc.ACE{Type: typ, Flags: flags, Mask: mask, SID: sid}
}

// windowsLike is shaped like a Windows 10 service descriptor: owner and
// group SYSTEM, a SACL auditing failures by Everyone, and dacl.
func windowsLike(t *testing.T, dacl ...secdesc.ACE) *secdesc.Descriptor {
	sy, _ := secdesc.WellKnown("SY")
	d := &secdesc.Descriptor{Revision: 1, Control: secdesc.ControlSelfRelative | secdesc.ControlDACLPresent | secdesc.ControlSACLPresent,
		Owner: &sy, Group: &sy,
		SACL: &secdesc.ACL{Revision: 2, ACEs: []secdesc.ACE{svcACE(t, secdesc.TypeSystemAudit, secdesc.FlagFailedAccess, 0xf00ff, "WD")}}}
	if dacl != nil {
		d.DACL = &secdesc.ACL{Revision: 2, ACEs: dacl}
	}
	return d
}

func TestServiceSecurityFinding(t *testing.T) {
	const (
		A, D = secdesc.TypeAccessAllowed, secdesc.TypeAccessDenied
		all  = 0xf01ff
	)
	// The DACL Windows 10 ships for wuauserv (regipy's real SYSTEM hive).
	shipped := func() []secdesc.ACE {
		return []secdesc.ACE{svcACE(t, A, 0, 0x2009d, "AU"), svcACE(t, A, 0, all, "BA"), svcACE(t, A, 0, all, "SY")}
	}
	for _, c := range []struct {
		name string
		d    *secdesc.Descriptor
		want string // "" = fine; else a part of the finding
	}{
		{"as Windows ships it", windowsLike(t, shipped()...), ""},
		{"the documented DACL", windowsLike(t, documentedDACL().ACEs...), ""},
		{"NULL DACL", &secdesc.Descriptor{Revision: 1, Control: 0x8014}, ""},
		{"guests denied (a look-alike)", windowsLike(t, append([]secdesc.ACE{svcACE(t, D, 0, 0x30, "BG")}, shipped()...)...), ""},
		{"deny after the allow", windowsLike(t, append(shipped(), svcACE(t, D, 0, 0x30, "SY"))...), ""},
		{"inherit-only deny", windowsLike(t, append([]secdesc.ACE{svcACE(t, D, secdesc.FlagInheritOnly, all, "SY")}, shipped()...)...), ""},
		{"SYSTEM denied start and stop", windowsLike(t, append([]secdesc.ACE{svcACE(t, D, 0, 0x70, "SY")}, shipped()...)...), "denies SYSTEM start, stop (D;;RPWPDT;;;SY)"},
		{"Everyone denied start", windowsLike(t, append([]secdesc.ACE{svcACE(t, D, 0, 0x10, "WD")}, shipped()...)...), "denies Administrators start (D;;RP;;;WD)"},
		{"Administrators denied everything (generic)", windowsLike(t, append([]secdesc.ACE{svcACE(t, D, 0, secdesc.GenericAll, "BA")}, shipped()...)...), "denies SYSTEM start, stop, query config, query status (D;;GA;;;BA)"},
		{"Authenticated Users denied query", windowsLike(t, append([]secdesc.ACE{svcACE(t, D, 0, 0x5, "AU")}, shipped()...)...), "denies SYSTEM query config, query status (D;;CCLC;;;AU)"},
		{"empty DACL", windowsLike(t), ""},
		{"nothing grants start", windowsLike(t, svcACE(t, A, 0, 0x2008d, "AU"), svcACE(t, A, 0, 0x2008d, "BA")), "grants neither SYSTEM nor Administrators the right to start it D:(A;;CCLCSWLORC;;;AU)(A;;CCLCSWLORC;;;BA)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "empty DACL" {
				c.d.DACL = &secdesc.ACL{Revision: 2}
				c.want = "grants neither SYSTEM nor Administrators the right to start it (an empty DACL)"
			}
			got := serviceSecurityFinding(c.d)
			if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
				t.Fatalf("finding %q, want %q", got, c.want)
			}
		})
	}
}

// TestDocumentedDACL: the ACL fix writes is Microsoft's SDDL string, read
// by our renderer and, independently, by Samba's SDDL parser.
func TestDocumentedDACL(t *testing.T) {
	if got := "D:" + documentedDACL().SDDL(); got != documentedUpdateDACL {
		t.Fatalf("documented DACL renders as %s, want %s", got, documentedUpdateDACL)
	}
	ref := testutil.SambaDecode(t, []testutil.SambaInput{{Label: "ms", SDDL: documentedUpdateDACL}})[0]
	if ref.Error != "" || ref.DACL == nil {
		t.Fatalf("samba: %+v", ref)
	}
	var ours [][]any
	for _, e := range documentedDACL().ACEs {
		ours = append(ours, []any{float64(e.Type), float64(e.Flags), float64(e.Mask), e.SID.String()})
	}
	if !reflect.DeepEqual(ours, ref.DACL.ACEs) {
		t.Fatalf("our documented DACL %v, Samba's reading of Microsoft's string %v", ours, ref.DACL.ACEs)
	}
}

// TestRestoreServiceDACL: the restored descriptor, decoded by Samba (no
// shared code), has the old owner, group and SACL and exactly the ACEs
// Samba reads from Microsoft's SDDL string; anything else is refused.
func TestRestoreServiceDACL(t *testing.T) {
	locked := windowsLike(t, svcACE(t, secdesc.TypeAccessDenied, 0, 0x70, "SY"), svcACE(t, secdesc.TypeAccessAllowed, 0, 0xf01ff, "SY"))
	locked.Control |= secdesc.ControlDACLProtected | secdesc.ControlDACLAutoInherited
	old := locked.Marshal()
	out, before, err := restoreServiceDACL(old, documentedUpdateDACL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(before, "(D;;RPWPDT;;;SY)") {
		t.Errorf("old descriptor rendered %q", before)
	}
	ref := testutil.SambaDecode(t, []testutil.SambaInput{
		{Label: "old", Data: old}, {Label: "new", Data: out}, {Label: "ms", SDDL: documentedUpdateDACL},
	})
	o, n, ms := ref[0], ref[1], ref[2]
	if o.Error != "" || n.Error != "" || ms.Error != "" {
		t.Fatalf("samba: %q %q %q", o.Error, n.Error, ms.Error)
	}
	if !reflect.DeepEqual(n.Owner, o.Owner) || !reflect.DeepEqual(n.Group, o.Group) || !reflect.DeepEqual(n.SACL, o.SACL) {
		t.Errorf("owner/group/SACL changed: %s -> %s", o.SDDL, n.SDDL)
	}
	if n.DACL == nil || !reflect.DeepEqual(n.DACL.ACEs, ms.DACL.ACEs) {
		t.Errorf("restored DACL %+v, Microsoft's %+v", n.DACL, ms.DACL)
	}
	// P and AI went with the old DACL (sc sdset "D:..." carries neither).
	if n.Control != 0x8014 {
		t.Errorf("control %#x, want 0x8014", n.Control)
	}
	d, err := secdesc.Read(bytes.NewReader(out), int64(len(out)))
	if err != nil || serviceSecurityFinding(d) != "" {
		t.Errorf("restored descriptor: %v, finding %q", err, serviceSecurityFinding(d))
	}

	if _, _, err := restoreServiceDACL(old, "D:(A;;GA;;;WD)"); err == nil {
		t.Error("an undocumented DACL was accepted")
	}
	if _, _, err := restoreServiceDACL(old[:len(old)-1], documentedUpdateDACL); err == nil {
		t.Error("a damaged descriptor was rewritten")
	}
}
