package offline

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/wuoffline/wuoffline/hive"
	"github.com/wuoffline/wuoffline/session"
)

// This file is `wuoffline reg`: an offline regedit on hive files, read and
// changed through a session.HiveFile (exclusive access, journal beside the
// hive, undo).

// regTypes are the types reg set accepts.
var regTypes = map[string]hive.ValueType{
	"REG_SZ": hive.RegSZ, "REG_EXPAND_SZ": hive.RegExpandSZ, "REG_MULTI_SZ": hive.RegMultiSZ,
	"REG_DWORD": hive.RegDWORD, "REG_QWORD": hive.RegQWORD, "REG_BINARY": hive.RegBinary, "REG_NONE": hive.RegNone,
}

// utf16z encodes s as UTF-16LE with a terminating NUL.
func utf16z(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u)+2)
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// regEncode turns the DATA argument into value bytes for type t.
func regEncode(t hive.ValueType, s string) ([]byte, error) {
	switch t {
	case hive.RegSZ, hive.RegExpandSZ:
		return utf16z(s), nil
	case hive.RegMultiSZ:
		var b []byte
		if s != "" {
			for _, p := range strings.Split(s, `\0`) {
				if p == "" {
					return nil, errors.New("empty string inside REG_MULTI_SZ (it would end the list)")
				}
				b = append(b, utf16z(p)...)
			}
		}
		return append(b, 0, 0), nil
	case hive.RegDWORD, hive.RegQWORD:
		bits := 32
		if t == hive.RegQWORD {
			bits = 64
		}
		x, err := strconv.ParseUint(s, 0, bits)
		if err != nil || strings.HasPrefix(s, "0") && len(s) > 1 && !strings.HasPrefix(strings.ToLower(s), "0x") {
			return nil, fmt.Errorf("want a %d-bit number in decimal or 0x hex", bits)
		}
		b := make([]byte, bits/8)
		if bits == 32 {
			binary.LittleEndian.PutUint32(b, uint32(x))
		} else {
			binary.LittleEndian.PutUint64(b, x)
		}
		return b, nil
	default:
		h := strings.NewReplacer(",", "", " ", "", ":", "").Replace(s)
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, fmt.Errorf("want hex bytes: %v", err)
		}
		return b, nil
	}
}

func hiveSplit(path string) []string {
	var out []string
	for _, p := range strings.Split(path, `\`) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

var regQuote = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`)

// regExportValue renders one value as a .reg line.
func regExportValue(v *hive.Value) (string, error) {
	name := "@"
	if v.Name() != "" {
		name = `"` + regQuote.Replace(v.Name()) + `"`
	}
	d, err := v.Data()
	if err != nil {
		return "", err
	}
	switch v.Type() {
	case hive.RegSZ:
		if s, ok := regPlainText(d); ok {
			return name + `="` + regQuote.Replace(s) + `"`, nil
		}
	case hive.RegDWORD:
		if len(d) == 4 {
			return fmt.Sprintf("%s=dword:%08x", name, binary.LittleEndian.Uint32(d)), nil
		}
	}
	var b strings.Builder
	b.WriteString(name)
	if v.Type() == hive.RegBinary {
		b.WriteString("=hex:")
	} else {
		fmt.Fprintf(&b, "=hex(%x):", uint32(v.Type()))
	}
	for i, x := range d {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%02x", x)
	}
	return b.String(), nil
}

// regPlainText returns string data as text when it round-trips: UTF-16LE
// with exactly one terminating NUL and no other.
func regPlainText(d []byte) (string, bool) {
	if len(d) < 2 || len(d)%2 != 0 || d[len(d)-1] != 0 || d[len(d)-2] != 0 {
		return "", false
	}
	u := make([]uint16, len(d)/2-1)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(d[2*i:])
		if u[i] == 0 {
			return "", false
		}
	}
	s := string(utf16.Decode(u))
	if !slices.Equal(utf16.Encode([]rune(s)), u) {
		return "", false
	}
	return s, true
}

// regShowData renders value data for people.
func regShowData(t hive.ValueType, d []byte) string {
	switch t {
	case hive.RegSZ, hive.RegExpandSZ, hive.RegLink:
		if s, ok := regPlainText(d); ok {
			return strconv.Quote(s)
		}
	case hive.RegMultiSZ:
		if len(d)%2 == 0 {
			u := make([]uint16, len(d)/2)
			for i := range u {
				u[i] = binary.LittleEndian.Uint16(d[2*i:])
			}
			var parts []string
			for _, p := range strings.Split(string(utf16.Decode(u)), "\x00") {
				if p == "" {
					break
				}
				parts = append(parts, strconv.Quote(p))
			}
			return "[" + strings.Join(parts, ", ") + "]"
		}
	case hive.RegDWORD:
		if len(d) == 4 {
			x := binary.LittleEndian.Uint32(d)
			return fmt.Sprintf("0x%08x (%d)", x, x)
		}
	case hive.RegQWORD:
		if len(d) == 8 {
			x := binary.LittleEndian.Uint64(d)
			return fmt.Sprintf("0x%016x (%d)", x, x)
		}
	}
	const show = 64
	s := hex.EncodeToString(d[:min(len(d), show)])
	if len(d) > show {
		s += fmt.Sprintf("... (%d bytes)", len(d))
	}
	if s == "" {
		s = "(empty)"
	}
	return "hex:" + s
}

// missingKeys lists the keys along path that do not exist yet.
func missingKeys(h *hive.Hive, path string) ([]string, error) {
	var out []string
	cur := ""
	exists := true
	for _, n := range hiveSplit(path) {
		if cur != "" {
			cur += `\`
		}
		cur += n
		if exists {
			_, err := h.OpenKey(cur)
			if err == nil {
				continue
			}
			if !errors.Is(err, hive.ErrNotFound) {
				return nil, err
			}
			exists = false
		}
		out = append(out, cur)
	}
	return out, nil
}

// RegChange is one change of a hive: reg set or reg delete.
type RegChange struct {
	op         string // "set", "delete-key", "delete-value"
	key, value string
	typ        hive.ValueType
	data       []byte
}

func (ed RegChange) String() string {
	switch ed.op {
	case "set":
		return fmt.Sprintf("reg set %q %q %s", ed.key, ed.value, ed.typ)
	case "delete-key":
		return fmt.Sprintf("reg delete %q", ed.key)
	}
	return fmt.Sprintf("reg delete %q %q", ed.key, ed.value)
}

func planSet(e *hive.Editor, ed RegChange) ([]string, error) {
	h := e.Hive()
	missing, err := missingKeys(h, ed.key)
	if err != nil {
		return nil, err
	}
	var changes []string
	for _, m := range missing {
		changes = append(changes, fmt.Sprintf("create key [\\%s]", m))
	}
	old := "(none: new value)"
	if len(missing) == 0 {
		k, err := h.OpenKey(ed.key)
		if err != nil {
			return nil, err
		}
		if v, err := k.Value(ed.value); err == nil {
			d, err := v.Data()
			if err != nil {
				return nil, err
			}
			old = v.Type().String() + " " + regShowData(v.Type(), d)
		} else if !errors.Is(err, hive.ErrNotFound) {
			return nil, err
		}
	}
	if _, err := e.CreateKey(ed.key); err != nil {
		return nil, err
	}
	if err := e.SetValue(ed.key, ed.value, ed.typ, ed.data); err != nil {
		return nil, err
	}
	changes = append(changes, fmt.Sprintf("set [\\%s] %s\n  old: %s\n  new: %s %s", ed.key, regValueName(ed.value), old, ed.typ, regShowData(ed.typ, ed.data)))
	return changes, nil
}

func planDeleteKey(e *hive.Editor, ed RegChange) ([]string, error) {
	k, err := e.Hive().OpenKey(ed.key)
	if err != nil {
		return nil, err
	}
	keys, values := 0, 0
	err = k.Walk(func(k *hive.Key) error {
		keys++
		values += k.ValueCount()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := e.DeleteKey(ed.key); err != nil {
		return nil, err
	}
	return []string{fmt.Sprintf("delete key [\\%s] with its subtree: %d keys, %d values", k.Path(), keys, values)}, nil
}

func planDeleteValue(e *hive.Editor, ed RegChange) ([]string, error) {
	k, err := e.Hive().OpenKey(ed.key)
	if err != nil {
		return nil, err
	}
	v, err := k.Value(ed.value)
	if err != nil {
		return nil, err
	}
	d, err := v.Data()
	if err != nil {
		return nil, err
	}
	if err := e.DeleteValue(ed.key, ed.value); err != nil {
		return nil, err
	}
	return []string{fmt.Sprintf("delete value [\\%s] %s\n  old: %s %s", k.Path(), regValueName(v.Name()), v.Type(), regShowData(v.Type(), d))}, nil
}

func regValueName(n string) string {
	if n == "" {
		return "(default)"
	}
	return strconv.Quote(n)
}

// ErrRegUsage marks a reg command line whose arguments are wrong (exit 2).
var ErrRegUsage = errors.New("usage")

// ParseRegChange builds a change from the command line: op "set" (with
// type and data as typed: REG_SZ text, REG_MULTI_SZ strings separated by
// \0, a number for REG_DWORD/REG_QWORD, hex bytes otherwise), or "delete"
// (a key with its subtree when value is nil, else one value).
func ParseRegChange(op, key string, value *string, typ, data string) (RegChange, error) {
	switch op {
	case "set":
		t, ok := regTypes[strings.ToUpper(typ)]
		if !ok {
			return RegChange{}, fmt.Errorf("%w: unknown type %q (REG_SZ, REG_EXPAND_SZ, REG_MULTI_SZ, REG_DWORD, REG_QWORD, REG_BINARY, REG_NONE)", ErrRegUsage, typ)
		}
		b, err := regEncode(t, data)
		if err != nil {
			return RegChange{}, fmt.Errorf("%w: %s data %q: %v", ErrRegUsage, t, data, err)
		}
		return RegChange{op: "set", key: key, value: *value, typ: t, data: b}, nil
	case "delete":
		if value != nil {
			return RegChange{op: "delete-value", key: key, value: *value}, nil
		}
		if len(hiveSplit(key)) == 0 {
			return RegChange{}, fmt.Errorf("%w: refusing to delete the root key", ErrRegUsage)
		}
		return RegChange{op: "delete-key", key: key}, nil
	}
	return RegChange{}, fmt.Errorf("%w: unknown change %q", ErrRegUsage, op)
}

// RegFile is a hive file opened for reading by `wuoffline reg`.
type RegFile struct {
	hf *session.HiveFile
	h  *hive.Hive
}

// OpenRegFile opens and parses the hive file at path (a dirty hive in its
// state recovered from the logs beside it, in memory).
func OpenRegFile(path string) (*RegFile, error) {
	hf, err := session.OpenHive(path, false)
	if err != nil {
		return nil, err
	}
	h, err := hf.Open()
	if err != nil {
		hf.Close()
		return nil, err
	}
	return &RegFile{hf: hf, h: h}, nil
}

// Close closes the hive file.
func (r *RegFile) Close() error { return r.hf.Close() }

// DirtyNote says how a dirty hive is shown ("" for a clean one).
func (r *RegFile) DirtyNote() string { return dirtyNote(r.h, r.hf.Path) }

func dirtyNote(h *hive.Hive, path string) string {
	switch {
	case h.Recovered():
		return fmt.Sprintf("note: %s is dirty; showing the state recovered from its logs (in memory)", path)
	case h.Dirty():
		return fmt.Sprintf("warning: %s is dirty and no log beside it recovers it; showing the file as it is", path)
	}
	return ""
}

// Export writes the key and its subtree as .reg-style text (UTF-8).
func (r *RegFile) Export(w io.Writer, key string) error {
	k, err := r.h.OpenKey(key)
	if err != nil {
		return err
	}
	fmt.Fprint(w, "Windows Registry Editor Version 5.00\n\n")
	// Key.Walk visits each key once and bounds the depth, so a damaged hive
	// that lists a key under two parents cannot make the export repeat or
	// explode.
	return k.Walk(func(k *hive.Key) error {
		fmt.Fprintf(w, "[\\%s]\n", k.Path())
		vs, err := k.Values()
		if err != nil {
			return err
		}
		for _, v := range vs {
			line, err := regExportValue(v)
			if err != nil {
				return err
			}
			fmt.Fprintln(w, line)
		}
		fmt.Fprintln(w)
		return nil
	})
}

// GetKey writes a key's last-written time, subkeys and values.
func (r *RegFile) GetKey(w io.Writer, key string) error {
	k, err := r.h.OpenKey(key)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "[\\%s]  last written %s\n", k.Path(), k.LastWritten().UTC().Format(time.RFC3339))
	subs, err := k.Subkeys()
	if err != nil {
		return err
	}
	for _, s := range subs {
		fmt.Fprintf(w, "  %s\\\n", s.Name())
	}
	vs, err := k.Values()
	if err != nil {
		return err
	}
	for _, v := range vs {
		d, err := v.Data()
		if err != nil {
			return err
		}
		name := v.Name()
		if name == "" {
			name = "(default)"
		}
		fmt.Fprintf(w, "  %s  %s  %s\n", name, v.Type(), regShowData(v.Type(), d))
	}
	return nil
}

// GetValue returns one value as "TYPE\tdata".
func (r *RegFile) GetValue(key, name string) (string, error) {
	k, err := r.h.OpenKey(key)
	if err != nil {
		return "", err
	}
	v, err := k.Value(name)
	if err != nil {
		return "", err
	}
	d, err := v.Data()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s\t%s", v.Type(), regShowData(v.Type(), d)), nil
}

// Check runs the full hive checker, writes its report and reports whether
// the hive is sound.
func (r *RegFile) Check(w io.Writer) bool {
	rep := r.h.Check()
	fmt.Fprint(w, rep.String())
	fmt.Fprintf(w, "%s: %d bins, %d cells (%d allocated, %d referenced), %d keys, %d values, %d security cells\n",
		r.hf.Path, rep.Bins, rep.Cells, rep.AllocatedCells, rep.ReferencedCell, rep.Keys, rep.Values, rep.SecurityCells)
	if !rep.OK() {
		fmt.Fprintf(w, "%d errors: Windows would reject or repair this hive\n", len(rep.Problems()))
		return false
	}
	fmt.Fprintln(w, "no errors")
	return true
}

// RegEditResult is a planned (or made) hive change.
type RegEditResult struct {
	Notes   []string // a dirty hive's note
	Changes []string // what changes, for people
	Ranges  []session.Range
	Bytes   int64
	// SizeBefore and SizeAfter are the file's sizes (it may grow).
	SizeBefore, SizeAfter int64
	Journal               string // the journal, once written
}

// RegEdit plans change ch on the hive file at path on an overlay, and
// unless dry journals it beside the hive and writes it. Refusals (read-only
// file, another wuoffline, an interrupted change, a dirty or damaged hive)
// are a *session.RefusedError; nothing is written then. now is the
// last-written time stamped into the keys and header it changes (zero: the
// moment of the write).
func RegEdit(path string, ch RegChange, dry bool, tool string, now time.Time) (*RegEditResult, error) {
	hf, err := session.OpenHive(path, !dry)
	if err != nil {
		return nil, err
	}
	defer hf.Close()
	e, err := hf.Edit(StampClock(now))
	if err != nil {
		return nil, err
	}
	res := &RegEditResult{}
	if n := dirtyNote(e.Hive, path); n != "" {
		res.Notes = append(res.Notes, n)
	}
	switch ch.op {
	case "set":
		res.Changes, err = planSet(e.Editor, ch)
	case "delete-key":
		res.Changes, err = planDeleteKey(e.Editor, ch)
	default:
		res.Changes, err = planDeleteValue(e.Editor, ch)
	}
	if err != nil {
		return res, err
	}
	if e.Hive.Recovered() {
		res.Changes = append([]string{"write the state recovered from the transaction logs"}, res.Changes...)
	}
	if err := e.Finish(); err != nil {
		return res, err
	}
	res.Ranges, res.Bytes = e.Ranges(), e.Bytes()
	res.SizeBefore, res.SizeAfter = e.Sizes()
	if dry {
		return res, nil
	}
	res.Journal, err = e.Commit(ch.String(), tool)
	return res, err
}

// RegUndo takes back the newest change journaled for the hive file.
func RegUndo(path string) (*session.HiveUndo, error) {
	hf, err := session.OpenHive(path, true)
	if err != nil {
		return nil, err
	}
	defer hf.Close()
	return hf.Undo()
}

// RegJournalNote is what a hive undo prints: the journal's summary, note
// and path.
func RegJournalNote(u *session.HiveUndo) string {
	return fmt.Sprintf("%s (%s, %s)", u.Report.Summary(), u.Journal.Header.Note, filepath.Clean(u.Journal.Path))
}
