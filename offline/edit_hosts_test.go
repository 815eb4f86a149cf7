package offline

import (
	"bytes"
	"strings"
	"testing"
)

func TestCommentOutHosts(t *testing.T) {
	tests := []struct {
		name, in, out string
		edits         int
	}{
		{"crlf", "# comment\r\n0.0.0.0 windowsupdate.com\r\n127.0.0.1 localhost\r\n",
			"# comment\r\n# wuoffline: 0.0.0.0 windowsupdate.com\r\n127.0.0.1 localhost\r\n", 1},
		{"lf no final eol", "0.0.0.0\tdl.delivery.mp.microsoft.com # tool", "# wuoffline: 0.0.0.0\tdl.delivery.mp.microsoft.com # tool", 1},
		{"mixed line keeps the telemetry host", "0.0.0.0 vortex.data.microsoft.com update.microsoft.com\r\n",
			"# wuoffline: 0.0.0.0 vortex.data.microsoft.com update.microsoft.com\r\n0.0.0.0 vortex.data.microsoft.com\r\n", 1},
		{"commented already", "# 0.0.0.0 windowsupdate.com\n", "# 0.0.0.0 windowsupdate.com\n", 0},
		{"telemetry only", "0.0.0.0 vortex.data.microsoft.com\n", "0.0.0.0 vortex.data.microsoft.com\n", 0},
		{"cdn suffix", "0.0.0.0 au.l.windowsupdate.com\n", "# wuoffline: 0.0.0.0 au.l.windowsupdate.com\n", 1},
		{"empty", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, edits, err := CommentOutHosts([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.out || len(edits) != tt.edits {
				t.Errorf("got %q (%d edits), want %q (%d)", out, len(edits), tt.out, tt.edits)
			}
			if len(ParseHosts(out)) != 0 {
				t.Errorf("update hosts still active in %q", out)
			}
			again, e2, _ := CommentOutHosts(out)
			if !bytes.Equal(again, out) || len(e2) != 0 {
				t.Errorf("not idempotent: %q", again)
			}
		})
	}
	if _, _, err := CommentOutHosts([]byte{0xFF, 0xFE, 'a', 0}); err == nil {
		t.Error("UTF-16 hosts file rewritten")
	}
}

func FuzzCommentOutHosts(f *testing.F) {
	f.Add([]byte("0.0.0.0 windowsupdate.com\r\n127.0.0.1 localhost\n"))
	f.Add([]byte("0.0.0.0 a update.microsoft.com # x\n\n\r\n#"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, edits, err := CommentOutHosts(b)
		if err != nil {
			return
		}
		if len(edits) == 0 && !bytes.Equal(out, b) {
			t.Fatalf("no edit but output changed: %q -> %q", b, out)
		}
		// Every original line survives, commented or not.
		if len(out) < len(b) {
			t.Fatalf("output shorter than input")
		}
		if strings.Count(string(out), HostsMarker) < len(edits) {
			t.Fatalf("%d edits, fewer markers", len(edits))
		}
	})
}

func TestMultiSZ(t *testing.T) {
	for _, ss := range [][]string{nil, {"a"}, {`C:\Windows\System32\poqexec.exe /display_progress`, "autocheck autochk *"}} {
		got := decodeMultiSZ(encodeMultiSZ(ss))
		if strings.Join(got, "|") != strings.Join(ss, "|") || len(got) != len(ss) {
			t.Errorf("round trip %q -> %q", ss, got)
		}
	}
	ev := Evidence{Op: "remove-entry", Hive: "SYSTEM", Key: "K", Value: "SetupExecute", Type: "REG_MULTI_SZ",
		Raw: encodeMultiSZ([]string{"autocheck autochk *", `C:\Windows\System32\poqexec.exe /display_progress \SystemRoot\WinSxS\pending.xml`})}
	a, err := actionFor("setup-execute", ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeMultiSZ(a.newRaw); len(got) != 1 || got[0] != "autocheck autochk *" {
		t.Errorf("remove-entry kept %q", got)
	}
}
