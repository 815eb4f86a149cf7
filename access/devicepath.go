package access

import "strings"

// windowsDevicePath is VolumePath on Windows, here so that its rules are
// tested on every platform: a drive letter alone, with or without a
// trailing separator or the \\.\ prefix, names the volume device; other
// \\.\ and \\?\Volume{...} paths are devices as given.
func windowsDevicePath(path string) (string, bool) {
	p := strings.TrimRight(path, `\/`)
	for _, pre := range []string{`\\.\`, `//./`} {
		if rest, ok := strings.CutPrefix(p, pre); ok {
			if isLetter(rest) {
				return `\\.\` + strings.ToUpper(rest), true
			}
			return path, true
		}
	}
	if isLetter(p) {
		return `\\.\` + strings.ToUpper(p), true
	}
	if strings.HasPrefix(path, `\\?\Volume{`) {
		return strings.TrimRight(path, `\`), true
	}
	return path, false
}

// isLetter: "D:".
func isLetter(s string) bool {
	return len(s) == 2 && s[1] == ':' && ('A' <= s[0] && s[0] <= 'Z' || 'a' <= s[0] && s[0] <= 'z')
}
