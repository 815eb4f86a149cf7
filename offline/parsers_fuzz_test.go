package offline

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseHosts: any hosts file (UTF-8, ANSI, UTF-16 with or without a
// BOM, binary junk) yields matches that each name an update host on an
// active line, and never panics.
func FuzzParseHosts(f *testing.F) {
	f.Add([]byte("0.0.0.0 windowsupdate.com\r\n127.0.0.1 localhost\n"))
	f.Add([]byte("\xff\xfe0\x00.\x000\x00 \x00a\x00\n\x00"))
	f.Add([]byte("# 0.0.0.0 update.microsoft.com\n0.0.0.0\tdownload.windowsupdate.com # x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range ParseHosts(b) {
			if m.Line < 1 || len(m.Hosts) == 0 || m.Address == "" {
				t.Fatalf("bad match %+v", m)
			}
			for _, h := range m.Hosts {
				if !IsUpdateHost(h) {
					t.Fatalf("match %q is not an update host", h)
				}
			}
		}
	})
}

// FuzzParseRegChange: whatever the user types after `reg set`/`reg delete`
// is either a change or a usage error; never a panic.
func FuzzParseRegChange(f *testing.F) {
	f.Add("set", `HKLM\SOFTWARE\X`, "V", "REG_DWORD", "0x10")
	f.Add("set", `SYSTEM\Select`, "", "REG_MULTI_SZ", "a\x00b")
	f.Add("set", `K`, "V", "REG_BINARY", "de ad be ef")
	f.Add("set", `K`, "V", "REG_QWORD", "-1")
	f.Add("delete", `\`, "", "", "")
	f.Fuzz(func(t *testing.T, op, key, value, typ, data string) {
		ch, err := ParseRegChange(op, key, &value, typ, data)
		if err != nil {
			if !errors.Is(err, ErrRegUsage) {
				t.Fatalf("error not a usage error: %v", err)
			}
			return
		}
		_ = ch.String()
		if op == "delete" {
			if _, err := ParseRegChange(op, key, nil, typ, data); err != nil && !strings.Contains(err.Error(), "root") {
				t.Fatalf("delete key: %v", err)
			}
		}
	})
}
