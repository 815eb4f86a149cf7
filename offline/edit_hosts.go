package offline

import (
	"bytes"
	"errors"
	"strings"
)

// HostsMarker starts every hosts line that fix comments out, so that people
// (and a later diagnose) can see what wuoffline did (repair-catalog.md,
// `hosts`: "comment them out with a recognisable marker").
const HostsMarker = "# wuoffline: "

// errUTF16Hosts: the rewrite keeps the file's bytes outside the edited lines
// exactly; it only handles the single-byte encodings Windows writes hosts in.
var errUTF16Hosts = errors.New("hosts file is UTF-16: not rewritten (edit it by hand)")

// CommentOutHosts returns the hosts file data with every active line that
// maps a Windows Update host commented out with HostsMarker, and the edits
// made. A line that also maps other hosts keeps them: it is commented out
// whole and followed by a line with the same address and only the other
// names (blocking telemetry hosts is the user's choice). Line endings and
// every other byte are kept.
func CommentOutHosts(data []byte) ([]byte, []LineEdit, error) {
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		return nil, nil, errUTF16Hosts
	}
	var out bytes.Buffer
	var edits []LineEdit
	rest := data
	for n := 1; len(rest) > 0; n++ {
		line := rest
		eol := []byte(nil)
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
			eol = []byte("\n")
			if bytes.HasSuffix(line, []byte("\r")) {
				line = line[:len(line)-1]
				eol = []byte("\r\n")
			}
		} else {
			rest = nil
		}
		newLine, changed := commentHostsLine(string(line), string(eol))
		if changed {
			edits = append(edits, LineEdit{Line: n, Old: string(line), New: strings.TrimRight(newLine, "\r\n")})
			out.WriteString(newLine)
		} else {
			out.Write(line)
		}
		out.Write(eol)
	}
	return out.Bytes(), edits, nil
}

// commentHostsLine rewrites one line (without its end of line); eol is the
// line ending used to separate a kept remainder.
func commentHostsLine(line, eol string) (string, bool) {
	active := line
	comment := ""
	if i := strings.IndexByte(line, '#'); i >= 0 {
		active, comment = line[:i], line[i:]
	}
	f := strings.Fields(active)
	if len(f) < 2 {
		return line, false
	}
	var others []string
	blocked := false
	for _, name := range f[1:] {
		if IsUpdateHost(name) {
			blocked = true
		} else {
			others = append(others, name)
		}
	}
	if !blocked {
		return line, false
	}
	s := HostsMarker + line
	if len(others) > 0 {
		if eol == "" {
			eol = "\r\n"
		}
		s += eol + f[0] + " " + strings.Join(others, " ")
		if comment != "" {
			s += " " + comment
		}
	}
	return s, true
}
