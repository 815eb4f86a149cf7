package main

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"wuoffline/hive"
	"wuoffline/journal"
)

const regHelp = `Usage:
  wuoffline reg export HIVE [KEY]
  wuoffline reg get    HIVE KEY [VALUE]
  wuoffline reg set    [--dry-run] HIVE KEY VALUE TYPE DATA
  wuoffline reg delete [--dry-run] HIVE KEY [VALUE]
  wuoffline reg check  HIVE
  wuoffline reg undo   HIVE

An offline regedit for registry hive files (SYSTEM, SOFTWARE, NTUSER.DAT...).

KEY is a path below the hive's root with \ separators, matched
case-insensitively as Windows does; "" is the root. VALUE "" is the key's
default value. TYPE is REG_SZ, REG_EXPAND_SZ, REG_MULTI_SZ, REG_DWORD,
REG_QWORD, REG_BINARY or REG_NONE. DATA is the text for REG_SZ and
REG_EXPAND_SZ; the strings separated by \0 for REG_MULTI_SZ; a number in
decimal or 0x hex for REG_DWORD and REG_QWORD; hex bytes ("01 02 ff",
"01,02,ff" or "0102ff") for REG_BINARY and REG_NONE.

Transaction logs beside the hive (HIVE.LOG1, HIVE.LOG2, any case) are used
when the hive is dirty: reading shows the recovered state, and the first
write saves it, so the hive is clean afterwards.

set creates missing keys along KEY; delete removes a key with its whole
subtree, or one value. Both write the hive file in place, after saving the
bytes they change in a journal beside the hive; 'reg undo HIVE' takes the
newest change back. They refuse a hive the checker finds damaged (run
'reg check') and a hive with an interrupted change (run 'reg undo').

Options:
  --dry-run   print the planned changes and the byte ranges; write nothing

export prints a .reg-style text (UTF-8): [\KEY] headers, "name"="text" for
strings, dword:xxxxxxxx, hex(N):.. for other types, @ for the default value.
`

// regArgs splits args into the flags reg knows and positional arguments.
// Only exact flag words are flags, so that DATA such as "-1" or "--x" is
// taken as it is after a "--".
func regArgs(args []string) (pos []string, dry, help bool, err error) {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "--dry-run", "-dry-run", "-n":
			dry = true
		case "-h", "--help", "-help":
			help = true
		case "--":
			return append(pos, args[i+1:]...), dry, help, nil
		default:
			if strings.HasPrefix(a, "-") && len(a) > 1 && len(pos) < 2 {
				return nil, false, false, fmt.Errorf("unknown option %s", a)
			}
			pos = append(pos, a)
		}
	}
	return pos, dry, help, nil
}

func runReg(args []string, stdout, stderr io.Writer) int {
	pos, dry, help, err := regArgs(args)
	if help {
		fmt.Fprint(stdout, regHelp)
		return exitOK
	}
	if err != nil || len(pos) < 2 {
		if err != nil {
			fmt.Fprintf(stderr, "wuoffline reg: %v\n", err)
		}
		fmt.Fprint(stderr, regHelp)
		return exitUsage
	}
	sub, rest := pos[0], pos[1:]
	nargs := map[string][2]int{"export": {1, 2}, "get": {2, 3}, "set": {5, 5}, "delete": {2, 3}, "check": {1, 1}, "undo": {1, 1}}
	lim, ok := nargs[sub]
	if !ok || len(rest) < lim[0] || len(rest) > lim[1] || (dry && sub != "set" && sub != "delete") {
		fmt.Fprintf(stderr, "wuoffline reg: bad arguments for %q\n", sub)
		fmt.Fprint(stderr, regHelp)
		return exitUsage
	}
	c := &regCmd{stdout: stdout, stderr: stderr, path: rest[0], dry: dry}
	switch sub {
	case "export":
		key := ""
		if len(rest) > 1 {
			key = rest[1]
		}
		return c.export(key)
	case "get":
		if len(rest) == 3 {
			return c.getValue(rest[1], rest[2])
		}
		return c.getKey(rest[1])
	case "check":
		return c.check()
	case "undo":
		return c.undo()
	case "set":
		t, ok := regTypes[strings.ToUpper(rest[3])]
		if !ok {
			fmt.Fprintf(stderr, "wuoffline reg: unknown type %q (REG_SZ, REG_EXPAND_SZ, REG_MULTI_SZ, REG_DWORD, REG_QWORD, REG_BINARY, REG_NONE)\n", rest[3])
			return exitUsage
		}
		data, err := regEncode(t, rest[4])
		if err != nil {
			fmt.Fprintf(stderr, "wuoffline reg: %s data %q: %v\n", t, rest[4], err)
			return exitUsage
		}
		return c.edit(regEdit{op: "set", key: rest[1], value: rest[2], typ: t, data: data})
	default: // delete
		ed := regEdit{op: "delete-key", key: rest[1]}
		if len(rest) == 3 {
			ed = regEdit{op: "delete-value", key: rest[1], value: rest[2]}
		} else if len(hiveSplit(rest[1])) == 0 {
			fmt.Fprintln(stderr, "wuoffline reg: refusing to delete the root key")
			return exitUsage
		}
		return c.edit(ed)
	}
}

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

// regCmd is one run of reg on a hive file.
type regCmd struct {
	stdout, stderr io.Writer
	path           string
	dry            bool
}

func (c *regCmd) fail(code int, format string, args ...any) int {
	fmt.Fprintf(c.stderr, "wuoffline reg: "+format+"\n", args...)
	return code
}

// regLogs finds HIVE.LOG1 and HIVE.LOG2 beside the hive, in any case.
func regLogs(path string) []string {
	dir, base := filepath.Dir(path), filepath.Base(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, want := range []string{".log1", ".log2"} {
		for _, e := range ents {
			if e.Type().IsRegular() && strings.EqualFold(e.Name(), base+want) {
				out = append(out, filepath.Join(dir, e.Name()))
				break
			}
		}
	}
	return out
}

// openedHive is a hive file and its logs, open for reading.
type openedHive struct {
	f     *os.File
	size  int64
	logs  []hive.Log
	files []*os.File
}

func (o *openedHive) close() {
	for _, f := range o.files {
		f.Close()
	}
	o.f.Close()
}

func (c *regCmd) openFiles(writable bool) (*openedHive, error) {
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(c.path, flag, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", c.path)
	}
	o := &openedHive{f: f, size: st.Size()}
	for _, lp := range regLogs(c.path) {
		lf, err := os.Open(lp)
		if err != nil {
			continue
		}
		ls, err := lf.Stat()
		if err != nil {
			lf.Close()
			continue
		}
		o.files = append(o.files, lf)
		o.logs = append(o.logs, hive.Log{Name: filepath.Base(lp), R: lf, Size: ls.Size()})
	}
	return o, nil
}

// open opens the hive for reading (recovered in memory if dirty).
func (c *regCmd) open() (*hive.Hive, *openedHive, int) {
	o, err := c.openFiles(false)
	if err != nil {
		return nil, nil, c.fail(exitError, "%v", err)
	}
	h, err := hive.Open(o.f, o.size, o.logs...)
	if err != nil {
		o.close()
		return nil, nil, c.fail(exitError, "%s: %v", c.path, err)
	}
	c.noteDirty(h)
	return h, o, exitOK
}

func (c *regCmd) noteDirty(h *hive.Hive) {
	switch {
	case h.Recovered():
		fmt.Fprintf(c.stderr, "wuoffline reg: note: %s is dirty; showing the state recovered from its logs (in memory)\n", c.path)
	case h.Dirty():
		fmt.Fprintf(c.stderr, "wuoffline reg: warning: %s is dirty and no log beside it recovers it; showing the file as it is\n", c.path)
	}
}

func (c *regCmd) export(key string) int {
	h, o, code := c.open()
	if h == nil {
		return code
	}
	defer o.close()
	k, err := h.OpenKey(key)
	if err != nil {
		return c.fail(exitError, "%v", err)
	}
	fmt.Fprint(c.stdout, "Windows Registry Editor Version 5.00\n\n")
	// Key.Walk visits each key once and bounds the depth, so a damaged hive
	// that lists a key under two parents cannot make the export repeat or
	// explode.
	err = k.Walk(func(k *hive.Key) error {
		fmt.Fprintf(c.stdout, "[\\%s]\n", k.Path())
		vs, err := k.Values()
		if err != nil {
			return err
		}
		for _, v := range vs {
			line, err := regExportValue(v)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, line)
		}
		fmt.Fprintln(c.stdout)
		return nil
	})
	if err != nil {
		return c.fail(exitError, "%v", err)
	}
	return exitOK
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

func (c *regCmd) getKey(key string) int {
	h, o, code := c.open()
	if h == nil {
		return code
	}
	defer o.close()
	k, err := h.OpenKey(key)
	if err != nil {
		return c.fail(exitError, "%v", err)
	}
	fmt.Fprintf(c.stdout, "[\\%s]  last written %s\n", k.Path(), k.LastWritten().UTC().Format(time.RFC3339))
	subs, err := k.Subkeys()
	if err != nil {
		return c.fail(exitError, "%v", err)
	}
	for _, s := range subs {
		fmt.Fprintf(c.stdout, "  %s\\\n", s.Name())
	}
	vs, err := k.Values()
	if err != nil {
		return c.fail(exitError, "%v", err)
	}
	for _, v := range vs {
		d, err := v.Data()
		if err != nil {
			return c.fail(exitError, "%v", err)
		}
		name := v.Name()
		if name == "" {
			name = "(default)"
		}
		fmt.Fprintf(c.stdout, "  %s  %s  %s\n", name, v.Type(), regShowData(v.Type(), d))
	}
	return exitOK
}

func (c *regCmd) getValue(key, name string) int {
	h, o, code := c.open()
	if h == nil {
		return code
	}
	defer o.close()
	k, err := h.OpenKey(key)
	if err != nil {
		return c.fail(exitError, "%v", err)
	}
	v, err := k.Value(name)
	if err != nil {
		return c.fail(exitError, "%v", err)
	}
	d, err := v.Data()
	if err != nil {
		return c.fail(exitError, "%v", err)
	}
	fmt.Fprintf(c.stdout, "%s\t%s\n", v.Type(), regShowData(v.Type(), d))
	return exitOK
}

func (c *regCmd) check() int {
	h, o, code := c.open()
	if h == nil {
		return code
	}
	defer o.close()
	r := h.Check()
	fmt.Fprint(c.stdout, r.String())
	fmt.Fprintf(c.stdout, "%s: %d bins, %d cells (%d allocated, %d referenced), %d keys, %d values, %d security cells\n",
		c.path, r.Bins, r.Cells, r.AllocatedCells, r.ReferencedCell, r.Keys, r.Values, r.SecurityCells)
	if !r.OK() {
		fmt.Fprintf(c.stdout, "%d errors: Windows would reject or repair this hive\n", len(r.Problems()))
		return exitProblem
	}
	fmt.Fprintln(c.stdout, "no errors")
	return exitOK
}

// regEdit is one change asked on the command line.
type regEdit struct {
	op         string // "set", "delete-key", "delete-value"
	key, value string
	typ        hive.ValueType
	data       []byte
}

func (ed regEdit) String() string {
	switch ed.op {
	case "set":
		return fmt.Sprintf("reg set %q %q %s", ed.key, ed.value, ed.typ)
	case "delete-key":
		return fmt.Sprintf("reg delete %q", ed.key)
	}
	return fmt.Sprintf("reg delete %q %q", ed.key, ed.value)
}

// zeroTail reads a file and zeros past its end, so that a plan can cover
// bins the hive grows into.
type zeroTail struct {
	r    io.ReaderAt
	size int64
}

func (z zeroTail) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	n := 0
	if off < z.size {
		m := min(int64(len(p)), z.size-off)
		k, err := z.r.ReadAt(p[:m], off)
		if int64(k) < m {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return k, err
		}
		n = int(m)
	}
	clear(p[n:])
	return len(p), nil
}

// regMaxFile is the largest hive file: a base block and the largest
// hive-bins size a base block can describe.
const regMaxFile = 4096 + 0x7FFFF000

// regJournalID identifies a hive file's journals: by its name (a hive file
// has no volume serial) and its size before the change.
func regJournalID(path string, size int64) journal.VolumeID {
	return journal.VolumeID{Name: filepath.Base(path), Size: size}
}

// regJournals returns the journals of the hive file at path, whatever
// size the file had when each was made (a change can grow the file),
// newest first.
func regJournals(path string) ([]*journal.Info, error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	prefix := strings.ToLower(journal.FileName(journal.Header{ID: regJournalID(path, 0)}))
	prefix = prefix[:strings.LastIndex(prefix, "-")+1] // NAME.wuoffline-SERIAL-
	var out []*journal.Info
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasPrefix(strings.ToLower(e.Name()), prefix) || !strings.HasSuffix(e.Name(), ".journal") {
			continue
		}
		info, err := journal.Open(filepath.Join(dir, e.Name()))
		if err != nil || !strings.EqualFold(info.Header.ID.Name, base) || info.Header.ID.Serial != 0 {
			continue
		}
		out = append(out, info)
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Header.Created.After(out[b].Header.Created) })
	return out, nil
}

// edit plans one change on a journal overlay, prints it, and unless it is
// a dry run journals and applies it.
func (c *regCmd) edit(ed regEdit) int {
	if !c.dry {
		infos, err := regJournals(c.path)
		if err != nil {
			return c.fail(exitError, "%v", err)
		}
		for _, in := range infos {
			if in.Interrupted() {
				return c.fail(exitRefused, "%s: an earlier change was interrupted: %s", c.path, in.Advice("reg undo "+c.path))
			}
		}
	}
	o, err := c.openFiles(!c.dry)
	if err != nil {
		return c.fail(exitError, "%v", err)
	}
	defer o.close()
	plan := journal.NewOverlay(zeroTail{o.f, o.size}, regMaxFile)
	w := plan.Labeled("hive " + filepath.Base(c.path))
	h, err := hive.Open(plan, o.size, o.logs...)
	if err != nil {
		if errors.Is(err, hive.ErrDirty) {
			return c.fail(exitRefused, "%s: %v; nothing written", c.path, err)
		}
		return c.fail(exitError, "%s: %v", c.path, err)
	}
	c.noteDirty(h)
	if h.Dirty() && !h.Recovered() {
		return c.fail(exitRefused, "%s is dirty and no transaction log beside it (%s.LOG1, .LOG2) recovers it; refusing to write", c.path, filepath.Base(c.path))
	}
	before := h.Check()
	if !before.OK() {
		fmt.Fprint(c.stderr, before.String())
		return c.fail(exitRefused, "%s: the checker finds %d errors; refusing to write (see 'wuoffline reg check')", c.path, len(before.Problems()))
	}
	newSize := o.size
	grow := func(n int64) error {
		if n > plan.Size() {
			return fmt.Errorf("%d bytes is beyond the largest hive", n)
		}
		newSize = max(newSize, n)
		return nil
	}
	e, err := hive.NewEditor(h, w, grow, o.logs...)
	if err != nil {
		return c.fail(exitRefused, "%v", err)
	}
	var changes []string
	switch ed.op {
	case "set":
		changes, err = c.planSet(e, ed)
	case "delete-key":
		changes, err = c.planDeleteKey(e, ed)
	default:
		changes, err = c.planDeleteValue(e, ed)
	}
	if err != nil {
		if errors.Is(err, hive.ErrNotFound) {
			return c.fail(exitError, "%v; nothing written", err)
		}
		return c.fail(exitError, "%v; nothing written", err)
	}
	if h.Recovered() {
		changes = append([]string{"write the state recovered from the transaction logs"}, changes...)
	}
	if err := e.Flush(); err != nil {
		return c.fail(exitError, "%v; nothing written", err)
	}
	// The edit must leave no new checker error.
	after := h.Check()
	if !after.OK() {
		fmt.Fprint(c.stderr, after.String())
		return c.fail(exitError, "internal error: the edited hive would not pass the checker; nothing written")
	}
	for _, ch := range changes {
		fmt.Fprintln(c.stdout, ch)
	}
	if newSize > o.size {
		fmt.Fprintf(c.stdout, "the file grows from %d to %d bytes\n", o.size, newSize)
	}
	rs := plan.Ranges()
	if c.dry {
		fmt.Fprintf(c.stdout, "dry run: %d byte ranges would change (%d bytes); nothing written\n", len(rs), plan.Bytes())
		for _, r := range rs {
			fmt.Fprintf(c.stdout, "  0x%08x +%d\n", r.Off, r.Len)
		}
		return exitOK
	}
	dir, err := journal.ChooseDir(c.path, true, "")
	if err != nil {
		return c.fail(exitRefused, "%v; nothing written", err)
	}
	hdr := journal.Header{
		ID:      regJournalID(c.path, o.size),
		Target:  c.path,
		Tool:    "wuoffline reg " + version,
		Note:    ed.String(),
		Created: time.Now().UTC(),
	}
	jpath, err := journal.Commit(dir, hdr, plan, o.f, o.f.Sync)
	if err != nil {
		if jpath != "" {
			return c.fail(exitError, "%v\nthe change was interrupted; take it back with: wuoffline reg undo %s", err, c.path)
		}
		return c.fail(exitError, "%v; nothing written", err)
	}
	fmt.Fprintf(c.stdout, "changed %d byte ranges (%d bytes) of %s\n", len(rs), plan.Bytes(), c.path)
	fmt.Fprintf(c.stdout, "journal: %s\nundo with: wuoffline reg undo %s\n", jpath, c.path)
	return exitOK
}

func regValueName(n string) string {
	if n == "" {
		return "(default)"
	}
	return strconv.Quote(n)
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

func (c *regCmd) planSet(e *hive.Editor, ed regEdit) ([]string, error) {
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

func (c *regCmd) planDeleteKey(e *hive.Editor, ed regEdit) ([]string, error) {
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

func (c *regCmd) planDeleteValue(e *hive.Editor, ed regEdit) ([]string, error) {
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

// undo takes back the newest change journaled for the hive.
func (c *regCmd) undo() int {
	infos, err := regJournals(c.path)
	if err != nil {
		return c.fail(exitError, "%v", err)
	}
	todo := journal.Undoable(infos)
	if len(todo) == 0 {
		return c.fail(exitError, "no change to undo for %s (no journal beside it that is committed or interrupted)", c.path)
	}
	in := todo[0]
	f, err := os.OpenFile(c.path, os.O_RDWR, 0)
	if err != nil {
		return c.fail(exitError, "%v", err)
	}
	defer f.Close()
	rep, err := journal.Undo(in.Path, f, f, f.Sync)
	if err != nil {
		return c.fail(exitError, "%v", err)
	}
	fmt.Fprintf(c.stdout, "%s (%s, %s)\n", rep.Summary(), in.Header.Note, in.Path)
	if !rep.Complete() {
		return c.fail(exitError, "undo incomplete: some ranges changed since the change (Windows wrote the hive?); they were left alone")
	}
	// A change that grew the file: cut the grown bins off again.
	if st, err := f.Stat(); err == nil && in.Header.ID.Size > 0 && st.Size() > in.Header.ID.Size {
		if err := f.Truncate(in.Header.ID.Size); err != nil {
			return c.fail(exitError, "truncating back to %d bytes: %v", in.Header.ID.Size, err)
		}
		if err := f.Sync(); err != nil {
			return c.fail(exitError, "%v", err)
		}
		fmt.Fprintf(c.stdout, "file cut back to its size before the change (%d bytes)\n", in.Header.ID.Size)
	}
	return exitOK
}
