package secdesc

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// Real descriptors from a Windows 10 SYSTEM hive (regipy's test data in
// ../shared/fixtures/hives/regipy/SYSTEM.xz), ControlSet001\Services\<name>\Security.
const (
	wuauservSD = "010014807800000084000000140000003000000002001c000100000002801400ff000f000101000000000001000000000200480003000000000014009d00020001010000000000050b00000000001800ff010f000102000000000005200000002002000000001400ff010f00010100000000000512000000010100000000000512000000010100000000000512000000"
	bitsSD     = "0100148090000000a00000001400000034000000020020000100000002c0180000000c000102000000000005200000002002000002005c000400000000021400ff010f0001010000000000051200000000001800ff010f0001020000000000052000000020020000000014008d010200010100000000000504000000000014008d0102000101000000000005060000000102000000000005200000002002000001020000000000052000000020020000"
	eventlogSD = "010014808c00000098000000140000004400000002003000020000000240140072010d0001010000000000010000000002801400ff010f000101000000000001000000000200480003000000000014008d01020001010000000000050b00000000001800ff010f000102000000000005200000002002000000001400fd010200010100000000000512000000010100000000000512000000010100000000000512000000"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func read(b []byte) (*Descriptor, error) { return Read(bytes.NewReader(b), int64(len(b))) }

// TestReadRealDescriptors: the SDDL expected is Samba's reading of the
// same bytes (TestRealHiveAgainstSamba), in Windows' order of rights.
func TestReadRealDescriptors(t *testing.T) {
	for _, c := range []struct{ name, hex, sddl string }{
		{"wuauserv", wuauservSD, "O:SYG:SYD:(A;;CCLCSWRPLORC;;;AU)(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;BA)(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;SY)S:(AU;FA;CCDCLCSWRPWPDTLOSDRCWDWO;;;WD)"},
		{"BITS", bitsSD, "O:BAG:BAD:(A;CI;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;SY)(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;BA)(A;;CCLCSWLOCRRC;;;IU)(A;;CCLCSWLOCRRC;;;SU)S:(AU;SAFA;WDWO;;;BA)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := mustHex(t, c.hex)
			d, err := read(b)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.SDDL(); got != c.sddl {
				t.Errorf("SDDL\n got %s\nwant %s", got, c.sddl)
			}
			if got := d.Marshal(); !bytes.Equal(got, b) {
				t.Errorf("Marshal differs from what Windows wrote:\n got %x\nwant %x", got, b)
			}
		})
	}
}

// sd builds a descriptor's bytes for the hostile cases: header fields
// then a body at offset 20.
func sd(control uint16, owner, group, sacl, dacl uint32, body ...byte) []byte {
	b := []byte{1, 0, 0, 0}
	binary.LittleEndian.PutUint16(b[2:], control)
	for _, o := range []uint32{owner, group, sacl, dacl} {
		b = binary.LittleEndian.AppendUint32(b, o)
	}
	return append(b, body...)
}

var systemSID = []byte{1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0}

func TestReadRejects(t *testing.T) {
	const dp = ControlSelfRelative | ControlDACLPresent
	aclHdr := func(size, count uint16) []byte {
		b := []byte{2, 0}
		b = binary.LittleEndian.AppendUint16(b, size)
		b = binary.LittleEndian.AppendUint16(b, count)
		return append(b, 0, 0)
	}
	ace := func(typ byte, size uint16, rest ...byte) []byte {
		b := []byte{typ, 0}
		b = binary.LittleEndian.AppendUint16(b, size)
		return append(b, rest...)
	}
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "below the 20-byte header"},
		{"short header", make([]byte, 19), "below the 20-byte header"},
		{"revision", append([]byte{2, 0, 0, 0x80}, make([]byte, 16)...), "revision 2"},
		{"absolute form", sd(ControlDACLPresent, 0, 0, 0, 0), "lacks SE_SELF_RELATIVE"},
		{"owner inside header", sd(dp, 4, 0, 0, 0), "owner offset 0x4 outside"},
		{"owner past end", sd(dp, 200, 0, 0, 0), "owner offset 0xc8 outside"},
		{"owner truncated", sd(dp, 20, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 5), "owner: SID at 0x14: 12 bytes past the end"},
		{"owner 16 subauthorities", sd(dp, 20, 0, 0, 0, append([]byte{1, 16, 0, 0, 0, 0, 0, 5}, make([]byte, 64)...)...), "16 sub-authorities"},
		{"group bad revision", sd(dp, 0, 20, 0, 0, 2, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0), "group: SID at 0x14: revision 2"},
		{"dacl size past end", sd(dp, 0, 0, 0, 20, aclHdr(16, 0)...), "DACL: at 0x14: size 16 outside"},
		{"dacl size below header", sd(dp, 0, 0, 0, 20, aclHdr(4, 0)...), "size 4 outside"},
		{"dacl bad revision", sd(dp, 0, 0, 0, 20, 3, 0, 8, 0, 0, 0, 0, 0), "DACL: at 0x14: revision 3"},
		{"ace count too high", sd(dp, 0, 0, 0, 20, append(aclHdr(16, 2), make([]byte, 8)...)...), "2 ACEs cannot fit in 16 bytes"},
		{"ace size below minimum", sd(dp, 0, 0, 0, 20, append(aclHdr(16, 1), ace(0, 4, 0, 0, 0, 0)...)...), "ACE 0: at 0x1c: size 4 is below"},
		{"ace past acl", sd(dp, 0, 0, 0, 20, append(aclHdr(16, 1), ace(0, 20, 0, 0, 0, 0)...)...), "size 20 runs past the end of the ACL"},
		{"sid past ace", sd(dp, 0, 0, 0, 20, append(aclHdr(28, 1), append(ace(0, 16, 0x10, 0, 0, 0), systemSID...)...)...), "SID at 0x24: 12 bytes past the end"},
		{"second ace missing", sd(dp, 0, 0, 0, 20, append(aclHdr(36, 2), append(ace(0, 20, 0x10, 0, 0, 0), append(systemSID, 0, 0, 0, 0, 0, 0, 0, 0)...)...)...), "ACE 1: at 0x30: size 0 is below"},
		{"sacl garbage", sd(ControlSelfRelative|ControlSACLPresent, 0, 0, 20, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), "SACL: at 0x14: revision 255"},
		{"too large", make([]byte, MaxSize+1), "above the largest descriptor"},
		{"the fixture's CryptSvc value (5 bytes)", []byte{0, 0, 0x0e, 0, 1}, "below the 20-byte header"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := read(c.b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "secdesc: ") {
				t.Errorf("error %q does not say where it comes from", err)
			}
		})
	}
}

func TestReadNullAndAbsentDACL(t *testing.T) {
	// The descriptor the test images carried before: SE_SELF_RELATIVE,
	// DACL and SACL present, every offset 0: a NULL DACL.
	d, err := read(sd(0x8014, 0, 0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !d.NullDACL() || d.SDDL() != "D:NO_ACCESS_CONTROL" {
		t.Fatalf("NullDACL %v, SDDL %q", d.NullDACL(), d.SDDL())
	}
	if g, _ := d.Access(nil, GenericMapping{All: 0xf01ff}); g&0x10 == 0 {
		t.Errorf("a NULL DACL must grant everything, got %#x", g)
	}
	// DACL offset set but the present bit clear: ignored, as Windows does.
	d, err = read(sd(ControlSelfRelative, 0, 0, 0, 20, 0xff, 0xff))
	if err != nil || d.DACL != nil {
		t.Fatalf("DACL %v, err %v", d.DACL, err)
	}
}

func TestAccess(t *testing.T) {
	sy, _ := WellKnown("SY")
	ba, _ := WellKnown("BA")
	au, _ := WellKnown("AU")
	m := GenericMapping{Read: 0x2008d, Write: 0x20002, Execute: 0x20170, All: 0xf01ff}
	allow := func(mask uint32, s SID) ACE { return ACE{Type: TypeAccessAllowed, Mask: mask, SID: s} }
	deny := func(mask uint32, s SID) ACE { return ACE{Type: TypeAccessDenied, Mask: mask, SID: s} }
	for _, c := range []struct {
		name            string
		aces            []ACE
		token           []SID
		granted, denied uint32
	}{
		{"allow", []ACE{allow(0x14, sy)}, []SID{sy}, 0x14, 0},
		{"other SID", []ACE{allow(0x14, ba)}, []SID{sy}, 0, 0},
		{"deny first wins", []ACE{deny(0x10, au), allow(0xf01ff, sy)}, []SID{sy, au}, 0xf01ff &^ 0x10, 0x10},
		{"allow first wins", []ACE{allow(0x10, sy), deny(0x10, sy)}, []SID{sy}, 0x10, 0},
		{"inherit-only skipped", []ACE{{Type: TypeAccessDenied, Flags: FlagInheritOnly, Mask: 0x10, SID: sy}, allow(0x10, sy)}, []SID{sy}, 0x10, 0},
		{"generic execute", []ACE{allow(GenericExecute, sy)}, []SID{sy}, 0x20170, 0},
		{"generic all denied", []ACE{deny(GenericAll, ba)}, []SID{ba}, 0, 0xf01ff},
		{"empty", nil, []SID{sy}, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, d := (&ACL{Revision: 2, ACEs: c.aces}).Access(c.token, m)
			if g != c.granted || d != c.denied {
				t.Fatalf("granted %#x denied %#x, want %#x %#x", g, d, c.granted, c.denied)
			}
		})
	}
}

func TestMarshalBuilt(t *testing.T) {
	sy, _ := WellKnown("SY")
	pu, _ := WellKnown("PU")
	d := &Descriptor{Revision: 1, Control: ControlSelfRelative | ControlDACLPresent, DACL: &ACL{Revision: 2, ACEs: []ACE{
		{Type: TypeAccessAllowed, Mask: 0x201fd, SID: sy},
		{Type: TypeAccessDenied, Flags: FlagInherited, Mask: 0x10, SID: pu},
	}}}
	b := d.Marshal()
	back, err := read(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, d) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, d)
	}
	if got, want := back.SDDL(), "D:(A;;CCLCSWRPWPDTLOCRRC;;;SY)(D;ID;RP;;;PU)"; got != want {
		t.Errorf("SDDL %s, want %s", got, want)
	}
}

// compareSamba reports how d differs from Samba's reading of the same bytes.
func compareSamba(d *Descriptor, s testutil.SambaSD) []string {
	var diffs []string
	if d.Revision != byte(s.Revision) || int(d.Control) != s.Control {
		diffs = append(diffs, "revision/control "+strconv.Itoa(int(d.Revision))+"/"+strconv.Itoa(int(d.Control))+" vs "+strconv.Itoa(s.Revision)+"/"+strconv.Itoa(s.Control))
	}
	sidStr := func(p *SID) *string {
		if p == nil {
			return nil
		}
		v := p.String()
		return &v
	}
	if !reflect.DeepEqual(sidStr(d.Owner), s.Owner) || !reflect.DeepEqual(sidStr(d.Group), s.Group) {
		diffs = append(diffs, "owner/group")
	}
	acl := func(name string, a *ACL, sa *testutil.SambaACL) {
		if (a == nil) != (sa == nil) {
			diffs = append(diffs, name+" presence")
			return
		}
		if a == nil {
			return
		}
		if int(a.Revision) != sa.Revision || len(a.ACEs) != len(sa.ACEs) {
			diffs = append(diffs, name+" revision or ACE count")
			return
		}
		for i, e := range a.ACEs {
			sid := ""
			if e.Type <= 3 {
				sid = e.SID.String()
			}
			got := []any{float64(e.Type), float64(e.Flags), float64(e.Mask), sid}
			if !reflect.DeepEqual(got, sa.ACEs[i]) {
				diffs = append(diffs, name+" ACE "+strconv.Itoa(i))
			}
		}
	}
	acl("DACL", d.DACL, s.DACL)
	acl("SACL", d.SACL, s.SACL)
	return diffs
}

// serviceDescriptors extracts every service Security value of the real
// Windows 10 SYSTEM hive with python3-hivex.
func serviceDescriptors(t *testing.T) ([]string, [][]byte) {
	t.Helper()
	hv := testutil.Decompress(t, testutil.SharedFixture(t, "hives/regipy/SYSTEM.xz"), "")
	py := "/usr/bin/python3"
	if exec.Command(py, "-c", "import hivex").Run() != nil {
		testutil.Unavailable(t, "python3 with the hivex module (apt-get install python3-hivex)")
	}
	out := testutil.Run(t, py, filepath.Join("testdata", "service_descriptors.py"), hv)
	var labels []string
	var blobs [][]byte
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("service_descriptors.py: %q", line)
		}
		labels = append(labels, f[0])
		blobs = append(blobs, mustHex(t, f[2]))
	}
	return labels, blobs
}

// TestRealHiveAgainstSamba reads every service descriptor of a real
// Windows 10 SYSTEM hive and compares each with Samba's decoding: the same
// verdict (both read it or both refuse it), the same parts; and what
// Windows wrote comes back byte for byte from Marshal.
func TestRealHiveAgainstSamba(t *testing.T) {
	labels, blobs := serviceDescriptors(t)
	if len(blobs) < 100 {
		t.Fatalf("only %d service descriptors extracted", len(blobs))
	}
	in := make([]testutil.SambaInput, len(blobs))
	for i := range blobs {
		in[i] = testutil.SambaInput{Label: labels[i], Data: blobs[i]}
	}
	ref := testutil.SambaDecode(t, in)
	read, refused := 0, 0
	for i, b := range blobs {
		d, err := Read(bytes.NewReader(b), int64(len(b)))
		s := ref[i]
		if (err != nil) != (s.Error != "") {
			t.Errorf("%s: we say %v, samba says %q", labels[i], err, s.Error)
			continue
		}
		if err != nil {
			refused++
			continue
		}
		read++
		if diffs := compareSamba(d, s); len(diffs) > 0 {
			t.Errorf("%s: differs from samba (%s): ours %s, samba %s", labels[i], strings.Join(diffs, ", "), d.SDDL(), s.SDDL)
		}
		if !bytes.Equal(d.Marshal(), b) {
			t.Errorf("%s: Marshal is not what Windows wrote", labels[i])
		}
	}
	t.Logf("%d service descriptors: %d read and equal to samba's decoding, %d refused by both", len(blobs), read, refused)
	if read == 0 || refused == 0 {
		t.Errorf("expected both readable descriptors and the damaged CryptSvc value (read %d, refused %d)", read, refused)
	}
}

// FuzzRead: any bytes give a descriptor or an error, never a panic; a
// descriptor read back from its Marshal is the same descriptor, and
// renders. Seeds: the descriptors below and testdata/fuzz/FuzzRead, eleven
// service descriptors of the real Windows 10 SYSTEM hive (extracted with
// testdata/service_descriptors.py, python3-hivex), the damaged CryptSvc
// value among them.
func FuzzRead(f *testing.F) {
	for _, s := range []string{wuauservSD, bitsSD, eventlogSD} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Add(sd(0x8014, 0, 0, 0, 0))
	f.Add([]byte{0, 0, 0x0e, 0, 1})
	f.Add(sd(ControlSelfRelative|ControlDACLPresent, 20, 20, 0, 32, append(append([]byte(nil), systemSID...), 2, 0, 8, 0, 0, 0, 0, 0)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Read(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		_ = d.SDDL()
		out := d.Marshal()
		back, err := Read(bytes.NewReader(out), int64(len(out)))
		if err != nil {
			t.Fatalf("Marshal of a read descriptor does not read: %v", err)
		}
		if !reflect.DeepEqual(back, d) {
			t.Fatalf("round trip differs:\n got %+v\nwant %+v", back, d)
		}
	})
}
