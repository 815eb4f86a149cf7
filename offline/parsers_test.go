package offline

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
	"testing/fstest"
	"unicode/utf16"
)

// winhttp builds a WinHttpSettings value the way netsh writes it.
func winhttp(flags uint32, proxy, bypass string) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, 0x28)
	b = binary.LittleEndian.AppendUint32(b, 7)
	b = binary.LittleEndian.AppendUint32(b, flags)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(proxy)))
	b = append(b, proxy...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(bypass)))
	b = append(b, bypass...)
	return b
}

func TestParseWinHTTPSettings(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		err    bool
		manual bool
		dead   bool
		proxy  string
	}{
		{name: "direct", in: WinHTTPDirect()},
		{name: "loopback", in: winhttp(3, "127.0.0.1:8888", "<local>"), manual: true, dead: true, proxy: "127.0.0.1:8888"},
		{name: "any", in: winhttp(3, "0.0.0.0:80", ""), manual: true, dead: true, proxy: "0.0.0.0:80"},
		{name: "per-scheme-loopback", in: winhttp(3, "http=localhost:3128;https=[::1]:3128", ""), manual: true, dead: true},
		{name: "per-scheme-mixed", in: winhttp(3, "http=127.0.0.1:3128;https=proxy.corp:3128", ""), manual: true, dead: false},
		{name: "corporate", in: winhttp(3, "proxy.contoso.com:8080", "*.contoso.com;<local>"), manual: true, proxy: "proxy.contoso.com:8080"},
		{name: "flag-off", in: winhttp(1, "127.0.0.1:8888", ""), manual: false},
		{name: "short", in: []byte{0x18, 0, 0, 0}, err: true},
		{name: "length-overrun", in: append(winhttp(3, "", "")[:12], 0xff, 0xff, 0, 0, 'a'), err: true},
		{name: "truncated-length", in: append(winhttp(3, "", "")[:12], 1, 0), err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseWinHTTPSettings(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if s.Manual() != tt.manual || s.DeadProxy() != tt.dead {
				t.Errorf("manual %v dead %v, want %v %v (%+v)", s.Manual(), s.DeadProxy(), tt.manual, tt.dead, s)
			}
			if tt.proxy != "" && s.Proxy != tt.proxy {
				t.Errorf("proxy %q, want %q", s.Proxy, tt.proxy)
			}
		})
	}
}

func FuzzWinHTTPSettings(f *testing.F) {
	f.Add(WinHTTPDirect())
	f.Add(winhttp(3, "127.0.0.1:8888", "<local>"))
	f.Add(winhttp(7, "http=a:1;https=b:2", "<local>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseWinHTTPSettings(b)
		if err != nil {
			return
		}
		if len(s.Proxy)+len(s.Bypass)+len(s.PACURL) > len(b) {
			t.Fatalf("strings longer than the value")
		}
		_ = s.DeadProxy()
	})
}

// multiSZ encodes strings as REG_MULTI_SZ data: each NUL-terminated, plus
// the list's final NUL.
func multiSZ(ss ...string) []byte {
	var b []byte
	for _, s := range ss {
		for _, u := range utf16.Encode([]rune(s)) {
			b = binary.LittleEndian.AppendUint16(b, u)
		}
		b = append(b, 0, 0)
	}
	return append(b, 0, 0)
}

func TestParsePendingRenames(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
		want []PendingRename
	}{
		{"rename-and-delete", multiSZ(`\??\C:\a.tmp`, `!\??\C:\a.dll`, `\??\C:\old.tmp`, ""),
			[]PendingRename{{Source: `\??\C:\a.tmp`, Dest: `\??\C:\a.dll`, Replace: true}, {Source: `\??\C:\old.tmp`}}},
		{"delete-first", multiSZ(`\??\C:\x`, "", `\??\C:\y`, `\??\C:\z`),
			[]PendingRename{{Source: `\??\C:\x`}, {Source: `\??\C:\y`, Dest: `\??\C:\z`}}},
		{"win11-prefix", multiSZ(`*1\??\C:\Windows\WinSxS\Temp\PendingDeletes\$$DeleteMe.x`, ""),
			[]PendingRename{{Source: `\??\C:\Windows\WinSxS\Temp\PendingDeletes\$$DeleteMe.x`, Prefixed: true}}},
		{"no-final-nul", multiSZ(`\??\C:\a`, `\??\C:\b`)[:len(multiSZ(`\??\C:\a`, `\??\C:\b`))-2],
			[]PendingRename{{Source: `\??\C:\a`, Dest: `\??\C:\b`}}},
		{"unterminated", []byte{'a', 0, 'b', 0}, []PendingRename{{Source: "ab"}}},
		{"odd-source", []byte{'a', 0, 0, 0, 0, 0, 'b', 0}, []PendingRename{{Source: "a"}, {Source: "b"}}},
		{"empty", nil, nil},
		{"only-nuls", make([]byte, 8), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParsePendingRenames(tt.raw)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func FuzzPendingRenames(f *testing.F) {
	f.Add(multiSZ(`\??\C:\a.tmp`, `!\??\C:\a.dll`, `\??\C:\old.tmp`, ""))
	f.Add(multiSZ(`*1\??\C:\x`, ""))
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ops := ParsePendingRenames(b)
		if len(ops) > len(b)/2+1 {
			t.Fatalf("%d operations from %d bytes", len(ops), len(b))
		}
		for _, op := range ops {
			_ = op.String()
		}
	})
}

func TestParseHosts(t *testing.T) {
	hosts := "# Copyright (c) 1993-2009 Microsoft Corp.\r\n" +
		"#\r\n" +
		"# 127.0.0.1       localhost\r\n" +
		"127.0.0.1 localhost\r\n" +
		"0.0.0.0 windowsupdate.com\r\n" +
		"0.0.0.0\tdl.delivery.mp.microsoft.com   # blocked by privacy tool\r\n" +
		"0.0.0.0 vortex.data.microsoft.com\r\n" +
		"# 0.0.0.0 update.microsoft.com\r\n" +
		"127.0.0.1 a.example fe3.delivery.mp.microsoft.com DOWNLOAD.WindowsUpdate.com.\r\n" +
		"0.0.0.0 au.v4.download.windowsupdate.com #wuoffline: disabled\r\n" +
		"0.0.0.0 7.au.l.windowsupdate.com\r\n" +
		"0.0.0.0 notwindowsupdate.com\r\n"
	got := ParseHosts([]byte(hosts))
	var lines []int
	for _, m := range got {
		lines = append(lines, m.Line)
	}
	if want := []int{5, 6, 9, 10, 11}; !slices.Equal(lines, want) {
		t.Fatalf("lines %v, want %v (%+v)", lines, want, got)
	}
	if m := got[2]; m.Address != "127.0.0.1" || !slices.Equal(m.Hosts, []string{"fe3.delivery.mp.microsoft.com", "DOWNLOAD.WindowsUpdate.com."}) {
		t.Errorf("line 9: %+v", m)
	}
	// UTF-16 with BOM (some tools save it so).
	u := []byte{0xff, 0xfe}
	for _, r := range "0.0.0.0 update.microsoft.com\r\n" {
		u = append(u, byte(r), 0)
	}
	if m := ParseHosts(u); len(m) != 1 || m[0].Hosts[0] != "update.microsoft.com" {
		t.Errorf("UTF-16 hosts: %+v", m)
	}
}

func TestIsLoopbackOrAny(t *testing.T) {
	yes := []string{"", "  ", "127.0.0.1", "http://127.0.0.1:8530", "https://127.8.9.10/x", "localhost", "http://LOCALHOST:80",
		"::1", "[::1]:8080", "http://[::1]:8530", "0.0.0.0", "0.0.0.0:80", "::", "http://0.0.0.0"}
	no := []string{"wsus.contoso.com", "http://wsus:8530", "10.0.0.5:8530", "http://192.168.1.2", "https://[2001:db8::1]:443", "localhost.contoso.com"}
	for _, s := range yes {
		if !IsLoopbackOrAny(s) {
			t.Errorf("IsLoopbackOrAny(%q) = false", s)
		}
	}
	for _, s := range no {
		if IsLoopbackOrAny(s) {
			t.Errorf("IsLoopbackOrAny(%q) = true", s)
		}
	}
}

func TestFirewallRule(t *testing.T) {
	tests := []struct {
		name, value string
		blocks      bool
	}{
		{"WindowsUpdateBlock", `v2.30|Action=Block|Active=TRUE|Dir=Out|App=%SystemRoot%\system32\svchost.exe|Svc=wuauserv|Name=Block Windows Update|`, true},
		{"{5B1C8F2A}", `v2.31|Action=Block|Active=TRUE|Dir=Out|Protocol=6|Svc=BITS|Name=x|`, true},
		{"Rule1", `v2.30|Action=Block|Active=TRUE|Dir=Out|Name=Windows Update Blocker|`, true},
		{"CoreNet", `v2.30|Action=Allow|Active=TRUE|Dir=Out|Svc=wuauserv|Name=@FirewallAPI.dll,-25000|`, false},
		{"Telemetry", `v2.30|Action=Block|Active=TRUE|Dir=Out|Svc=DiagTrack|Name=Block telemetry|`, false},
	}
	for _, tt := range tests {
		fr, ok := ParseFirewallRule(tt.value)
		if !ok {
			t.Fatalf("%s: not parsed", tt.name)
		}
		if fr.BlocksUpdates(tt.name) != tt.blocks {
			t.Errorf("%s: BlocksUpdates = %v, want %v", tt.name, !tt.blocks, tt.blocks)
		}
	}
	if _, ok := ParseFirewallRule("not a rule"); ok {
		t.Error("garbage parsed as a rule")
	}
}

func TestDefaultStart(t *testing.T) {
	tests := []struct {
		svc, fam string
		start    uint32
		delayed  bool
		exists   bool
	}{
		{"wuauserv", "7", 2, false, true}, {"wuauserv", "11", 3, false, true},
		{"BITS", "10", 2, true, true}, {"BITS", "11", 3, false, true},
		{"UsoSvc", "11", 2, true, true}, {"UsoSvc", "8.1", 0, false, false},
		{"dosvc", "10", 2, true, true}, {"DoSvc", "11", 3, false, true},
		{"WaaSMedicSvc", "", 3, false, true}, {"nosuch", "10", 0, false, false},
	}
	for _, tt := range tests {
		s, d, e := DefaultStart(tt.svc, tt.fam)
		if s != tt.start || d != tt.delayed || e != tt.exists {
			t.Errorf("DefaultStart(%s, %s) = %d %v %v, want %d %v %v", tt.svc, tt.fam, s, d, e, tt.start, tt.delayed, tt.exists)
		}
	}
	for b, f := range map[int]string{7601: "7", 9600: "8.1", 19045: "10", 22000: "11", 26100: "11", 0: ""} {
		if familyOf(b) != f {
			t.Errorf("familyOf(%d) = %q, want %q", b, familyOf(b), f)
		}
	}
}

func TestCheckPayloadMagic(t *testing.T) {
	cab := append([]byte("MSCF\x00\x00\x00\x00"), binary.LittleEndian.AppendUint32(nil, 100)...)
	cab = append(cab, bytes.Repeat([]byte{1}, 88)...)
	if len(cab) != 100 {
		t.Fatal(len(cab))
	}
	for ext, magics := range payloadMagic {
		if len(magics) == 0 || ext[0] != '.' {
			t.Errorf("bad table entry %q", ext)
		}
	}
}

func TestPrintableUTF16(t *testing.T) {
	u := func(s string) []byte {
		var b []byte
		for _, r := range s {
			b = append(b, byte(r), 0)
		}
		return b
	}
	tests := []struct {
		in   []byte
		want string
		ok   bool
	}{
		{u("916daf2f4e04db01"), "916daf2f4e04db01", true},
		{append(u("abc"), 0, 0), "abc", true},
		{[]byte{5, 0, 0, 0}, "", false},
		{append(append(u("ab"), 0, 0), u("c")...), "", false},
		{[]byte{0x41, 0x04, 0x42, 0x00}, "", false},
		{[]byte{1, 2, 3}, "", false},
	}
	for _, tt := range tests {
		got, ok := printableUTF16(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("printableUTF16(% x) = %q %v, want %q %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSmallHelpers(t *testing.T) {
	for s, want := range map[string]bool{"D:": true, "d:": true, `E:\`: true, "D:/": true, "DD:": false, "1:": false, "D": false, "/dev/sdb": false} {
		if IsDriveLetter(s) != want {
			t.Errorf("IsDriveLetter(%q) = %v", s, !want)
		}
	}
	for s, want := range map[string]bool{"1": true, "p1": true, "12": true, "p": false, "": false, "a": false, "p1a": false} {
		if isPartSuffix(s) != want {
			t.Errorf("isPartSuffix(%q) = %v", s, !want)
		}
	}
	fsys := fstest.MapFS{
		"Windows/SoftwareDistribution/x":       {},
		"Windows/SoftwareDistribution.old/x":   {},
		"Windows/SoftwareDistribution.old.1/x": {},
		"Windows/System32/catroot2/x":          {},
	}
	if got := asideName(fsys, "Windows/SoftwareDistribution"); got != "SoftwareDistribution.old.2" {
		t.Errorf("asideName = %q", got)
	}
	if got := asideName(fsys, "Windows/System32/catroot2"); got != "catroot2.old" {
		t.Errorf("asideName = %q", got)
	}
}
