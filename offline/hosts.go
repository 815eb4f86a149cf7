package offline

import (
	"net"
	"net/url"
	"strings"
)

// updateHosts are the Windows Update hosts that anti-telemetry tools block
// (repair-catalog.md). Telemetry hosts (vortex.data.microsoft.com, ...)
// are deliberately absent: those entries are the user's choice.
var updateHosts = map[string]bool{
	"windowsupdate.com":                           true,
	"download.windowsupdate.com":                  true,
	"au.download.windowsupdate.com":               true,
	"v4.download.windowsupdate.com":               true,
	"au.v4.download.windowsupdate.com":            true,
	"fg.v4.download.windowsupdate.com":            true,
	"ctldl.windowsupdate.com":                     true,
	"www.windowsupdate.com":                       true,
	"update.microsoft.com":                        true,
	"fe2.update.microsoft.com":                    true,
	"sls.update.microsoft.com":                    true,
	"statsfe2.update.microsoft.com":               true,
	"dl.delivery.mp.microsoft.com":                true,
	"tlu.dl.delivery.mp.microsoft.com":            true,
	"fe3.delivery.mp.microsoft.com":               true,
	"fe3.delivery.dsp.mp.microsoft.com.nsatc.net": true,
	"emdl.ws.microsoft.com":                       true,
	"statsfe1.ws.microsoft.com":                   true,
	"statsfe2.ws.microsoft.com":                   true,
	"displaycatalog.mp.microsoft.com":             true,
	"statsfe2.update.microsoft.com.akadns.net":    true,
	"fe2.update.microsoft.com.akadns.net":         true,
	"sls.update.microsoft.com.akadns.net":         true,
	"update.microsoft.com.akadns.net":             true,
}

// updateSuffixes: every name below these is an update host (the
// `*.l.windowsupdate.com` CDN names and the other windowsupdate.com and
// update.microsoft.com forms).
var updateSuffixes = []string{
	".windowsupdate.com",
	".update.microsoft.com",
	".update.microsoft.com.akadns.net",
}

// IsUpdateHost reports whether name (case-insensitive, trailing dot
// allowed) is a Windows Update host.
func IsUpdateHost(name string) bool {
	n := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
	if n == "" {
		return false
	}
	if updateHosts[n] {
		return true
	}
	for _, s := range updateSuffixes {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	return false
}

// HostsMatch is a hosts-file line that maps update hosts.
type HostsMatch struct {
	Line    int      // 1-based
	Text    string   // the line as it is
	Address string   // the address it maps them to
	Hosts   []string // the update hosts it names
}

// ParseHosts returns the active lines of a hosts file (UTF-8/ANSI, or
// UTF-16 with BOM) that map an update host. The format: an address, then
// one or more names, separated by blanks; `#` starts a comment.
func ParseHosts(data []byte) []HostsMatch {
	var out []HostsMatch
	text := decodeText(data)
	for i, ln := range strings.Split(text, "\n") {
		ln = strings.TrimRight(ln, "\r\x00")
		active := ln
		if j := strings.IndexByte(active, '#'); j >= 0 {
			active = active[:j]
		}
		f := strings.Fields(active)
		if len(f) < 2 {
			continue
		}
		var hosts []string
		for _, h := range f[1:] {
			if IsUpdateHost(h) {
				hosts = append(hosts, h)
			}
		}
		if len(hosts) > 0 {
			out = append(out, HostsMatch{Line: i + 1, Text: ln, Address: f[0], Hosts: hosts})
		}
	}
	return out
}

// IsLoopbackOrAny reports whether a server setting (a URL, host, host:port
// or [v6]:port) points at this machine or nowhere: 127.0.0.0/8, ::1,
// localhost, 0.0.0.0 or ::. Blank and whitespace also count as nowhere.
func IsLoopbackOrAny(s string) bool {
	h := hostOf(s)
	if h == "" {
		return true
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	if ip == nil {
		return false
	}
	return ip.IsLoopback() || ip.IsUnspecified()
}

// hostOf extracts the host part of a URL or host[:port] string.
func hostOf(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if strings.Contains(s, "://") {
		if u, err := url.Parse(s); err == nil {
			return u.Hostname()
		}
	}
	// host:port, [v6]:port, bare v6, bare host; strip any path
	if i := strings.IndexAny(s, "/"); i >= 0 {
		s = s[:i]
	}
	if strings.HasPrefix(s, "[") {
		if j := strings.IndexByte(s, ']'); j > 0 {
			return s[1:j]
		}
	}
	if strings.Count(s, ":") == 1 {
		return s[:strings.IndexByte(s, ':')]
	}
	return s
}
