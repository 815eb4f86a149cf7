package offline

import (
	"strings"
	"unicode/utf16"
)

// PendingRename is one operation of PendingFileRenameOperations: Windows'
// session manager applies them at boot, before services start.
type PendingRename struct {
	// Source and Dest are NT paths ("\??\C:\Windows\...") with the markers
	// removed; Dest "" means delete Source.
	Source, Dest string
	// Replace is true when the destination was marked `!` (replace an
	// existing file: MOVEFILE_REPLACE_EXISTING).
	Replace bool
	// Prefixed is true when the source carried the `*1` prefix that
	// Windows 11 writes.
	Prefixed bool
}

// Delete reports whether the operation deletes its source.
func (p PendingRename) Delete() bool { return p.Dest == "" }

// String is "rename A -> B", "replace A -> B" or "delete A".
func (p PendingRename) String() string {
	switch {
	case p.Delete():
		return "delete " + p.Source
	case p.Replace:
		return "replace " + p.Dest + " with " + p.Source
	}
	return "rename " + p.Source + " -> " + p.Dest
}

// maxRenamePairs bounds the pairs decoded from one value.
const maxRenamePairs = 100000

// ParsePendingRenames decodes the raw REG_MULTI_SZ data of
// PendingFileRenameOperations(2): UTF-16LE strings, each NUL-terminated,
// in pairs (source, destination), the list ending with an extra NUL. An
// empty destination is an empty string, so the data cannot be split like
// an ordinary MULTI_SZ (which would lose it): the strings are cut at every
// NUL and exactly the terminators are dropped from the end.
func ParsePendingRenames(raw []byte) []PendingRename {
	u := make([]uint16, len(raw)/2)
	for i := range u {
		u[i] = uint16(raw[2*i]) | uint16(raw[2*i+1])<<8
	}
	var toks []string
	start := 0
	for i, c := range u {
		if c == 0 {
			toks = append(toks, string(utf16.Decode(u[start:i])))
			start = i + 1
			if len(toks) > 2*maxRenamePairs+2 {
				break
			}
		}
	}
	if start < len(u) && len(toks) <= 2*maxRenamePairs+2 {
		toks = append(toks, string(utf16.Decode(u[start:]))) // unterminated last string
	}
	// An odd count ending with "" means the last "" is the MULTI_SZ list
	// terminator; drop terminators until the count is even.
	for len(toks)%2 == 1 && toks[len(toks)-1] == "" {
		toks = toks[:len(toks)-1]
	}
	// Trailing pairs of empty strings are padding.
	for len(toks) >= 2 && toks[len(toks)-1] == "" && toks[len(toks)-2] == "" {
		toks = toks[:len(toks)-2]
	}
	var out []PendingRename
	for i := 0; i+1 < len(toks) && len(out) < maxRenamePairs; i += 2 {
		p := PendingRename{Source: toks[i], Dest: toks[i+1]}
		if strings.HasPrefix(p.Source, "*1") {
			p.Source, p.Prefixed = strings.TrimPrefix(p.Source, "*1"), true
		}
		if strings.HasPrefix(p.Dest, "!") {
			p.Dest, p.Replace = strings.TrimPrefix(p.Dest, "!"), true
		}
		out = append(out, p)
	}
	if len(toks)%2 == 1 && len(out) < maxRenamePairs && toks[len(toks)-1] != "" {
		// a source without its destination: treat as delete, as the
		// session manager reads a missing string as empty
		p := PendingRename{Source: strings.TrimPrefix(toks[len(toks)-1], "*1")}
		p.Prefixed = p.Source != toks[len(toks)-1]
		out = append(out, p)
	}
	return out
}
