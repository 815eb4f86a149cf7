package offline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// WinHTTPSettings is the decoded WinHttpSettings value (netsh winhttp
// proxy settings) of SOFTWARE\Microsoft\Windows\CurrentVersion\Internet
// Settings\Connections. Layout (little-endian, repair-catalog.md): DWORD
// version, DWORD counter, DWORD flags (1 always; +2 manual proxy, +4 PAC
// URL, +8 auto-detect), DWORD length + ASCII proxy, DWORD length + ASCII
// bypass list, [DWORD length + PAC URL], padding.
type WinHTTPSettings struct {
	Version uint32
	Counter uint32
	Flags   uint32
	Proxy   string
	Bypass  string
	PACURL  string
}

// WinHTTP flag bits.
const (
	WinHTTPFlagDirect     = 0x1
	WinHTTPFlagProxy      = 0x2
	WinHTTPFlagPAC        = 0x4
	WinHTTPFlagAutoDetect = 0x8
)

// WinHTTPDirect is the 20-byte value of "direct access (no proxy)" that
// `netsh winhttp reset proxy` writes and fix restores.
func WinHTTPDirect() []byte { return []byte(winHTTPDirect) }

// winHTTPDirect is kept as a string constant so that no caller can change it.
const winHTTPDirect = "\x18\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// maxWinHTTPString bounds one string of the value (the value is small;
// a length beyond the data is damage, not a reason to allocate).
const maxWinHTTPString = 1 << 16

// ParseWinHTTPSettings decodes the value. A value that ends after the
// bypass list has no PAC URL (Windows writes 20-byte values for direct).
func ParseWinHTTPSettings(b []byte) (*WinHTTPSettings, error) {
	if len(b) < 12 {
		return nil, fmt.Errorf("WinHttpSettings: %d bytes, need at least 12", len(b))
	}
	s := &WinHTTPSettings{
		Version: binary.LittleEndian.Uint32(b),
		Counter: binary.LittleEndian.Uint32(b[4:]),
		Flags:   binary.LittleEndian.Uint32(b[8:]),
	}
	off := 12
	str := func(what string) (string, error) {
		if off == len(b) {
			return "", nil
		}
		if len(b)-off < 4 {
			return "", fmt.Errorf("WinHttpSettings: %s length at %d: %w", what, off, errShort)
		}
		n := int(binary.LittleEndian.Uint32(b[off:]))
		off += 4
		if n > maxWinHTTPString || n > len(b)-off {
			return "", fmt.Errorf("WinHttpSettings: %s at %d: length %d exceeds the %d bytes left", what, off, n, len(b)-off)
		}
		v := strings.TrimRight(string(b[off:off+n]), "\x00")
		off += n
		return v, nil
	}
	var err error
	if s.Proxy, err = str("proxy"); err != nil {
		return nil, err
	}
	if s.Bypass, err = str("bypass list"); err != nil {
		return nil, err
	}
	if s.Flags&WinHTTPFlagPAC != 0 {
		if s.PACURL, err = str("PAC URL"); err != nil {
			return nil, err
		}
	}
	return s, nil
}

var errShort = errors.New("value too short")

// Manual reports whether a manual proxy is configured.
func (s *WinHTTPSettings) Manual() bool { return s.Flags&WinHTTPFlagProxy != 0 && s.Proxy != "" }

// ProxyServers splits the proxy setting ("host:port" or
// "http=host:port;https=host:port") into its servers.
func (s *WinHTTPSettings) ProxyServers() []string {
	var out []string
	for _, part := range strings.FieldsFunc(s.Proxy, func(r rune) bool { return r == ';' || r == ' ' }) {
		if i := strings.IndexByte(part, '='); i >= 0 {
			part = part[i+1:]
		}
		if part != "" {
			out = append(out, part)
		}
	}
	return out
}

// DeadProxy reports whether every proxy server is loopback or 0.0.0.0:
// such a proxy (left by a tool, or a dead local filter) blocks all updates.
func (s *WinHTTPSettings) DeadProxy() bool {
	if !s.Manual() {
		return false
	}
	srv := s.ProxyServers()
	if len(srv) == 0 {
		return false
	}
	for _, x := range srv {
		if !IsLoopbackOrAny(x) {
			return false
		}
	}
	return true
}
