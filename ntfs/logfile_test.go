package ntfs

import (
	"bytes"
	"strings"
	"testing"
)

// rdRestartPage builds a restart page as Windows writes one (charlie's
// layout: 4 KiB pages, USA at 0x1E with 9 entries, restart area at 0x30),
// protected with update sequence number usn.
func rdRestartPage(major, minor int16, lsn uint64, inUse, flags uint16, usn uint16) []byte {
	p := make([]byte, 4096)
	copy(p, "RSTR")
	putLE16(p[4:], 0x1E)
	putLE16(p[6:], 9)
	putLE32(p[0x10:], 4096)
	putLE32(p[0x14:], 4096)
	putLE16(p[0x18:], 0x30)
	putLE16(p[0x1A:], uint16(minor))
	putLE16(p[0x1C:], uint16(major))
	ra := p[0x30:]
	putLE64(ra, lsn)
	putLE16(ra[0x08:], 1)      // one client
	putLE16(ra[0x0A:], 0xFFFF) // no free client
	putLE16(ra[0x0C:], inUse)
	putLE16(ra[0x0E:], flags)
	// Protect: save each stride's last two bytes in the USA, write usn.
	putLE16(p[0x1E:], usn)
	for i := 1; i <= 8; i++ {
		end := i*512 - 2
		copy(p[0x1E+2*i:], p[end:end+2])
		putLE16(p[end:], usn)
	}
	return p
}

func TestReadLogFileRestart(t *testing.T) {
	clean := rdRestartPage(1, 1, 100, 0, 2, 7)
	dirty := rdRestartPage(1, 1, 200, 0, 0, 8)
	fast := rdRestartPage(2, 0, 300, 0, 2, 9)
	ff := bytes.Repeat([]byte{0xFF}, 4096)
	log := func(pages ...[]byte) []byte {
		b := bytes.Join(pages, nil)
		return append(b, make([]byte, 64<<10)...) // room for log records
	}
	chkd := rdRestartPage(1, 1, 50, 0, 2, 0)
	copy(chkd, "CHKD")
	putLE16(chkd[6:], 0) // chkdsk may drop the USA
	for i := 1; i <= 8; i++ {
		putLE16(chkd[i*512-2:], 0)
	}
	torn := bytes.Clone(clean)
	torn[1022] ^= 1
	tests := []struct {
		name    string
		data    []byte
		empty   bool
		clean   bool
		version string
		lsn     uint64
		err     string
	}{
		{"clean", log(clean, clean), false, true, "1.1", 100, ""},
		{"newer-second-page-wins", log(clean, dirty), false, false, "1.1", 200, ""},
		{"newer-first-page-wins", log(dirty, clean), false, false, "1.1", 200, ""},
		{"fast-startup", log(fast, clean), false, true, "2.0", 300, ""},
		{"first-torn-second-used", log(torn, dirty), false, false, "1.1", 200, ""},
		{"empty", bytes.Repeat(ff, 18), true, true, "", 0, ""},
		{"chkd-without-usa", log(chkd, ff), false, true, "1.1", 50, ""},
		{"no-restart-page", log(make([]byte, 8192)), false, false, "", 0, "no RSTR"},
		{"both-torn", log(torn, torn), false, false, "", 0, "update sequence mismatch"},
		{"too-small", make([]byte, 600), false, false, "", 0, "too small"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ReadLogFileRestart(bytes.NewReader(tt.data), int64(len(tt.data)))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			version := ""
			if !r.Empty {
				version = string(rune('0'+r.MajorVersion)) + "." + string(rune('0'+r.MinorVersion))
			}
			if r.Empty != tt.empty || r.Clean() != tt.clean || version != tt.version || r.CurrentLSN != tt.lsn {
				t.Errorf("got %+v (clean %v), want empty %v clean %v version %s lsn %d", r, r.Clean(), tt.empty, tt.clean, tt.version, tt.lsn)
			}
		})
	}
}

// TestReadLogFileRestartBounded: a log that is one restart page and then
// garbage is probed at 512, 1024, ... up to 64 KiB at most, never beyond.
func TestReadLogFileRestartBounded(t *testing.T) {
	data := append(rdRestartPage(1, 1, 1, 0, 2, 3), bytes.Repeat([]byte{0x41}, 1<<20)...)
	cr := &rdCountingReader{r: bytes.NewReader(data)}
	if _, err := ReadLogFileRestart(cr, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if n := cr.n.Load(); n > 512+4096+512 {
		t.Errorf("read %d bytes", n)
	}
}
