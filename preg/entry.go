package preg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
)

// Registry value types an entry may carry (winnt.h).
const (
	RegSZ       = 1
	RegExpandSZ = 2
	RegBinary   = 3
	RegDWORD    = 4
	RegMultiSZ  = 7
	RegQWORD    = 11
)

// Entry is one [key;value;type;size;data] of a policy file.
type Entry struct {
	Key   string // "Software\Policies\Microsoft\Windows\WindowsUpdate"
	Value string // value name, or a "**" instruction
	Type  uint32
	Data  []byte
	// Raw are the entry's bytes as in the file, from '[' to ']'.
	Raw []byte
	// Offset is where Raw starts in the file.
	Offset int64
}

// Delimiters, UTF-16LE.
const (
	chOpen  = '['
	chSemi  = ';'
	chClose = ']'
)

var errTruncated = errors.New("truncated")

// parseEntry parses the entry at the start of b and returns it with its
// size in bytes.
func parseEntry(b []byte) (Entry, int, error) {
	p := 0
	char := func(want rune) error {
		if p+2 > len(b) {
			return errTruncated
		}
		if c := binary.LittleEndian.Uint16(b[p:]); rune(c) != want {
			return fmt.Errorf("%q expected at +%d, found U+%04X", want, p, c)
		}
		p += 2
		return nil
	}
	str := func() (string, error) {
		var u []uint16
		for {
			if p+2 > len(b) {
				return "", errTruncated
			}
			c := binary.LittleEndian.Uint16(b[p:])
			p += 2
			if c == 0 {
				return string(utf16.Decode(u)), nil
			}
			u = append(u, c)
		}
	}
	u32 := func() (uint32, error) {
		if p+4 > len(b) {
			return 0, errTruncated
		}
		v := binary.LittleEndian.Uint32(b[p:])
		p += 4
		return v, nil
	}
	var e Entry
	var err error
	if err = char(chOpen); err != nil {
		return e, 0, err
	}
	if e.Key, err = str(); err != nil {
		return e, 0, fmt.Errorf("key: %w", err)
	}
	if err = char(chSemi); err != nil {
		return e, 0, err
	}
	if e.Value, err = str(); err != nil {
		return e, 0, fmt.Errorf("value name: %w", err)
	}
	if err = char(chSemi); err != nil {
		return e, 0, err
	}
	if e.Type, err = u32(); err != nil {
		return e, 0, fmt.Errorf("type: %w", err)
	}
	if err = char(chSemi); err != nil {
		return e, 0, err
	}
	size, err := u32()
	if err != nil {
		return e, 0, fmt.Errorf("size: %w", err)
	}
	if err = char(chSemi); err != nil {
		return e, 0, err
	}
	// The size is checked against what is left before it is used.
	if uint64(size) > uint64(len(b)-p) {
		return e, 0, fmt.Errorf("data of %d bytes at +%d: only %d left", size, p, len(b)-p)
	}
	e.Data = b[p : p+int(size)]
	p += int(size)
	if err = char(chClose); err != nil {
		return e, 0, err
	}
	e.Raw = b[:p]
	return e, p, nil
}

// appendTo encodes the entry.
func (e Entry) appendTo(b []byte) []byte {
	ch := func(c rune) { b = binary.LittleEndian.AppendUint16(b, uint16(c)) }
	str := func(s string) {
		for _, c := range utf16.Encode([]rune(s)) {
			b = binary.LittleEndian.AppendUint16(b, c)
		}
		b = append(b, 0, 0)
	}
	ch(chOpen)
	str(e.Key)
	ch(chSemi)
	str(e.Value)
	ch(chSemi)
	b = binary.LittleEndian.AppendUint32(b, e.Type)
	ch(chSemi)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(e.Data)))
	ch(chSemi)
	b = append(b, e.Data...)
	ch(chClose)
	return b
}

// IsInstruction reports a "**" value name (a deletion or other instruction
// to the Group Policy client, not a value).
func (e Entry) IsInstruction() bool { return strings.HasPrefix(e.Value, "**") }

// DWORD returns the data of a REG_DWORD entry.
func (e Entry) DWORD() (uint32, bool) {
	if e.Type != RegDWORD || len(e.Data) != 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(e.Data), true
}

// Text returns the data of a REG_SZ / REG_EXPAND_SZ entry without its NUL.
func (e Entry) Text() (string, bool) {
	if (e.Type != RegSZ && e.Type != RegExpandSZ) || len(e.Data)%2 != 0 {
		return "", false
	}
	u := make([]uint16, len(e.Data)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(e.Data[2*i:])
	}
	for len(u) > 0 && u[len(u)-1] == 0 {
		u = u[:len(u)-1]
	}
	return string(utf16.Decode(u)), true
}

// String renders the entry for people: `Key\Value = data`.
func (e Entry) String() string {
	v := fmt.Sprintf("(type %d, %d bytes)", e.Type, len(e.Data))
	if n, ok := e.DWORD(); ok {
		v = fmt.Sprint(n)
	} else if s, ok := e.Text(); ok {
		v = fmt.Sprintf("%q", s)
	}
	return e.Key + `\` + e.Value + " = " + v
}

// DWORDEntry and StringEntry build entries (for writers and tests).
func DWORDEntry(key, value string, n uint32) Entry {
	return Entry{Key: key, Value: value, Type: RegDWORD, Data: binary.LittleEndian.AppendUint32(nil, n)}
}

// StringEntry builds a REG_SZ entry with its terminating NUL.
func StringEntry(key, value, s string) Entry {
	var d []byte
	for _, c := range utf16.Encode([]rune(s)) {
		d = binary.LittleEndian.AppendUint16(d, c)
	}
	return Entry{Key: key, Value: value, Type: RegSZ, Data: append(d, 0, 0)}
}
