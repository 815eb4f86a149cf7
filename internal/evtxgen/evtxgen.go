// Package evtxgen writes small .evtx files for tests, from the format
// description (libevtx "Windows XML Event Log (EVTX) format"): the records are what
// Windows writes for a templated event: StartOfStream, a TemplateInstance
// with a resident template definition, then the substitution values. The
// generated files are checked with python-evtx's evtx_dump.py, which shares
// no code with this package.
package evtxgen

import (
	"encoding/binary"
	"hash/crc32"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/wuoffline/wuoffline/internal/filetime"
)

// Sizes of the format: a 4096-byte file header, 64 KiB chunks whose
// records start after a 512-byte chunk header.
const (
	FileHeaderSize  = 4096
	ChunkSize       = 65536
	ChunkHeaderSize = 512
)

// Event is one event to generate.
type Event struct {
	Provider string
	EventID  uint16
	Written  time.Time
	Data     [][2]string // Data elements: Name, value
	// Typed are Data elements after Data whose values are substitutions
	// of other types than string.
	Typed []Value
	// Rich adds a UserData element with the rarer tokens: an attribute of
	// several value tokens, CDATA, character and entity references, a
	// processing instruction, an optional substitution, an empty element.
	Rich bool
}

// Value is a Data element whose value is a typed substitution.
type Value struct {
	Name string
	Type byte   // value type: 0x08 uint32, 0x13 SID, 0x21 Binary XML, ...
	B    []byte // the value; ignored for 0x21, which holds <Inner>nested</Inner>
}

// genNested returns a Binary XML stream <Inner>nested</Inner> that lies
// at chunk offset base (its inline offsets are absolute). Like every
// stream Windows writes (and python-evtx expects), it is a template
// instance with a resident definition and its own substitution count (0).
func genNested(base int) []byte {
	w := &bxw{base: base}
	w.u8(0x0f)
	w.u8(1)
	w.u16(1)
	w.u8(0x0c)
	w.u8(0x01)
	w.u32(0x21)        // template id
	w.u32(w.pos() + 4) // resident definition follows
	w.u32(0)           // next definition
	w.b = append(w.b, make([]byte, 16)...)
	sizeAt := len(w.b)
	w.u32(0)
	body := len(w.b)
	w.u8(0x0f)
	w.u8(1)
	w.u16(1)
	in := w.open("Inner", false)
	w.u8(0x02)
	w.text("nested")
	w.u8(0x04)
	w.patchSize(in)
	w.u8(0x00)
	binary.LittleEndian.PutUint32(w.b[sizeAt:], uint32(len(w.b)-body))
	w.u32(0) // substitution count
	return w.b
}

// genRich writes the UserData element of a Rich event; substitution 0 is
// the provider.
func genRich(w *bxw) {
	ud := w.open("UserData", false)
	w.u8(0x02)
	r := w.open("Rich", true)
	w.attr("A", true)
	w.text("x")
	w.u8(0x08) // character reference: a second value token of A
	w.u16('&')
	w.attr("B", false)
	w.u8(0x09) // entity reference
	w.u32(w.pos() + 4)
	w.name("amp")
	w.u8(0x02)
	w.u8(0x07) // CDATA
	w.u16(5)
	w.utf16("cdata")
	w.u8(0x08)
	w.u16('!')
	w.u8(0x09)
	w.u32(w.pos() + 4)
	w.name("lt")
	w.u8(0x0a) // PI target, then PI data
	w.u32(w.pos() + 4)
	w.name("pi")
	w.u8(0x0b)
	w.u16(4)
	w.utf16("data")
	w.u8(0x0e) // optional substitution
	w.u16(0)
	w.u8(0x01)
	w.u8(0x04)
	w.patchSize(r)
	em := w.open("Empty", false)
	w.u8(0x03)
	w.patchSize(em)
	w.u8(0x04)
	w.patchSize(ud)
}

type bxw struct {
	b    []byte
	base int // chunk offset of b[0]
}

func (w *bxw) pos() int     { return w.base + len(w.b) }
func (w *bxw) u8(v byte)    { w.b = append(w.b, v) }
func (w *bxw) u16(v int)    { w.b = binary.LittleEndian.AppendUint16(w.b, uint16(v)) }
func (w *bxw) u32(v int)    { w.b = binary.LittleEndian.AppendUint32(w.b, uint32(v)) }
func (w *bxw) u64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *bxw) utf16(s string) {
	for _, u := range utf16.Encode([]rune(s)) {
		w.u16(int(u))
	}
}

// name writes an inline name node: u32 next, u16 hash, u16 length, chars, NUL.
func (w *bxw) name(s string) {
	u := utf16.Encode([]rune(s))
	var h uint32
	for _, c := range u {
		h = h*65599 + uint32(c)
	}
	w.u32(0)
	w.u16(int(h & 0xffff))
	w.u16(len(u))
	w.utf16(s)
	w.u16(0)
}

// open writes an OpenStartElement with an inline name; it returns the
// index of its size field to patch.
func (w *bxw) open(name string, hasAttrs bool) int {
	tok := byte(0x01)
	if hasAttrs {
		tok = 0x41
	}
	w.u8(tok)
	w.u16(0xffff) // dependency id: none
	sizeAt := len(w.b)
	w.u32(0)
	// The name offset points right after the fixed part: the name is
	// inline, and (as Windows writes it) the attribute list size of an
	// element with attributes follows the name.
	w.u32(w.pos() + 4)
	w.name(name)
	if hasAttrs {
		w.u32(0) // attribute list size (not used by readers)
	}
	return sizeAt
}

func (w *bxw) patchSize(at int) {
	binary.LittleEndian.PutUint32(w.b[at:], uint32(len(w.b)-(at+4)))
}

func (w *bxw) attr(name string, more bool) {
	tok := byte(0x06)
	if more {
		tok = 0x46
	}
	w.u8(tok)
	w.u32(w.pos() + 4)
	w.name(name)
}

func (w *bxw) text(s string) {
	w.u8(0x05)
	w.u8(0x01)
	w.u16(len(utf16.Encode([]rune(s))))
	w.utf16(s)
}

func (w *bxw) subst(idx int, typ byte) {
	w.u8(0x0d)
	w.u16(idx)
	w.u8(typ)
}

// genTemplateBody writes the template's XML: Event/System(Provider,
// EventID, TimeCreated, EventRecordID, Channel)/EventData(Data*).
// Substitutions: 0 provider (string), 1 event id (uint16), 2 time
// (FILETIME), 3 record id (uint64), 4.. data values (string), then the
// typed values.
func genTemplateBody(w *bxw, dataNames []string, typed []Value, rich bool) {
	w.u8(0x0f)
	w.u8(1)
	w.u16(1)
	ev := w.open("Event", true)
	w.attr("xmlns", false)
	w.text("http://schemas.microsoft.com/win/2004/08/events/event")
	w.u8(0x02)
	sys := w.open("System", false)
	w.u8(0x02)
	pr := w.open("Provider", true)
	w.attr("Name", false)
	w.subst(0, 0x01)
	w.u8(0x03)
	w.patchSize(pr)
	id := w.open("EventID", false)
	w.u8(0x02)
	w.subst(1, 0x06)
	w.u8(0x04)
	w.patchSize(id)
	tc := w.open("TimeCreated", true)
	w.attr("SystemTime", false)
	w.subst(2, 0x11)
	w.u8(0x03)
	w.patchSize(tc)
	rid := w.open("EventRecordID", false)
	w.u8(0x02)
	w.subst(3, 0x0a)
	w.u8(0x04)
	w.patchSize(rid)
	ch := w.open("Channel", false)
	w.u8(0x02)
	w.text("System")
	w.u8(0x04)
	w.patchSize(ch)
	w.u8(0x04)
	w.patchSize(sys)
	ed := w.open("EventData", false)
	w.u8(0x02)
	for i, n := range dataNames {
		d := w.open("Data", true)
		w.attr("Name", false)
		w.text(n)
		w.u8(0x02)
		w.subst(4+i, 0x01)
		w.u8(0x04)
		w.patchSize(d)
	}
	for i, v := range typed {
		d := w.open("Data", true)
		w.attr("Name", false)
		w.text(v.Name)
		w.u8(0x02)
		w.subst(4+len(dataNames)+i, v.Type)
		w.u8(0x04)
		w.patchSize(d)
	}
	w.u8(0x04)
	w.patchSize(ed)
	if rich {
		genRich(w)
	}
	w.u8(0x04)
	w.patchSize(ev)
	w.u8(0x00) // end of stream
}

// genRecord writes one record at chunk offset off. When shared is
// non-zero the record refers to the template defined at that chunk offset
// (by an earlier record) instead of carrying its own: that is how Windows
// writes every event after the first of its kind in a chunk. It returns
// the record and the chunk offset of its template definition.
func genRecord(off int, id uint64, e Event, shared int) ([]byte, int) {
	w := &bxw{base: off}
	w.u32(0x00002a2a)
	w.u32(0) // size, patched
	w.u64(id)
	w.u64(filetime.FromTime(e.Written))
	// BinXML
	w.u8(0x0f)
	w.u8(1)
	w.u16(1)
	w.u8(0x0c)
	w.u8(0x01)
	w.u32(int(id)) // template id
	defAt := w.pos() + 4
	if shared != 0 {
		defAt = shared
		w.u32(defAt) // an earlier record's definition
	} else {
		w.u32(defAt) // resident definition follows
		// template definition: next, GUID, data size, data
		w.u32(0)
		guid := [16]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, byte(id)}
		w.b = append(w.b, guid[:]...)
		sizeAt := len(w.b)
		w.u32(0)
		bodyStart := len(w.b)
		var names []string
		for _, d := range e.Data {
			names = append(names, d[0])
		}
		genTemplateBody(w, names, e.Typed, e.Rich)
		binary.LittleEndian.PutUint32(w.b[sizeAt:], uint32(len(w.b)-bodyStart))
	}
	// substitution array
	type val struct {
		typ byte
		b   []byte
	}
	u16s := func(s string) []byte {
		var b []byte
		for _, u := range utf16.Encode([]rune(s)) {
			b = binary.LittleEndian.AppendUint16(b, u)
		}
		return b
	}
	vals := []val{
		{0x01, u16s(e.Provider)},
		{0x06, binary.LittleEndian.AppendUint16(nil, e.EventID)},
		{0x11, binary.LittleEndian.AppendUint64(nil, filetime.FromTime(e.Written))},
		{0x0a, binary.LittleEndian.AppendUint64(nil, id)},
	}
	for _, d := range e.Data {
		vals = append(vals, val{0x01, u16s(d[1])})
	}
	for _, v := range e.Typed {
		if v.Type == 0x21 {
			v.B = genNested(0) // for its size: placed below
		}
		vals = append(vals, val{v.Type, v.B})
	}
	w.u32(len(vals))
	for _, v := range vals {
		w.u16(len(v.b))
		w.u8(v.typ)
		w.u8(0)
	}
	for _, v := range vals {
		if v.typ == 0x21 {
			v.b = genNested(w.pos())
		}
		w.b = append(w.b, v.b...)
	}
	// size copy; pad the record to 8 bytes like Windows does
	for (len(w.b)+4)%8 != 0 {
		w.u8(0)
	}
	w.u32(0)
	binary.LittleEndian.PutUint32(w.b[4:], uint32(len(w.b)))
	binary.LittleEndian.PutUint32(w.b[len(w.b)-4:], uint32(len(w.b)))
	return w.b, defAt
}

// shape is the template key of an event: its Data names.
func shape(e Event) string {
	var b strings.Builder
	for _, d := range e.Data {
		b.WriteString(d[0])
		b.WriteByte(0)
	}
	for _, v := range e.Typed {
		b.WriteString(v.Name)
		b.WriteByte(v.Type)
	}
	if e.Rich {
		b.WriteString("\x00rich")
	}
	return b.String()
}

// Chunk builds one 64 KiB chunk holding the events, record ids from first.
func Chunk(first uint64, events []Event) []byte {
	c := make([]byte, ChunkSize)
	copy(c, "ElfChnk\x00")
	off := ChunkHeaderSize
	last := 0
	templates := map[string]int{}
	for i, e := range events {
		r, def := genRecord(off, first+uint64(i), e, templates[shape(e)])
		if off+len(r) > len(c) {
			break
		}
		copy(c[off:], r)
		if templates[shape(e)] == 0 {
			templates[shape(e)] = def
			// The chunk's template pointer table (32 buckets at 0x180)
			// lists every definition; readers may look templates up there.
			bucket := 0x180 + 4*(len(templates)-1)%128
			binary.LittleEndian.PutUint32(c[bucket:], uint32(def))
		}
		last = off
		off += len(r)
	}
	n := uint64(len(events))
	le := binary.LittleEndian
	le.PutUint64(c[8:], first)
	le.PutUint64(c[16:], first+n-1)
	le.PutUint64(c[24:], first)
	le.PutUint64(c[32:], first+n-1)
	le.PutUint32(c[40:], 128)
	le.PutUint32(c[44:], uint32(last))
	le.PutUint32(c[48:], uint32(off))
	le.PutUint32(c[52:], crc32.ChecksumIEEE(c[512:off]))
	h := crc32.NewIEEE()
	h.Write(c[:120])
	h.Write(c[128:512])
	le.PutUint32(c[124:], h.Sum32())
	return c
}

// File builds a whole file: header + one chunk.
func File(events []Event) []byte {
	f := make([]byte, FileHeaderSize)
	copy(f, "ElfFile\x00")
	le := binary.LittleEndian
	le.PutUint64(f[8:], 0)
	le.PutUint64(f[16:], 0)
	le.PutUint64(f[24:], uint64(len(events)+1))
	le.PutUint32(f[32:], 128)
	le.PutUint16(f[36:], 1)
	le.PutUint16(f[38:], 3)
	le.PutUint16(f[40:], FileHeaderSize)
	le.PutUint16(f[42:], 1)
	le.PutUint32(f[124:], crc32.ChecksumIEEE(f[:120]))
	return append(f, Chunk(1, events)...)
}

// SampleEvents is a System log excerpt: a Windows Update failure (event 20),
// a success (19) and an unrelated event.
func SampleEvents() []Event {
	t0 := time.Date(2024, 9, 12, 10, 15, 32, 0, time.UTC)
	return []Event{
		{Provider: "Microsoft-Windows-Kernel-General", EventID: 12, Written: t0.Add(-time.Hour),
			Data: [][2]string{{"MajorVersion", "10"}, {"MinorVersion", "0"}}},
		{Provider: "Microsoft-Windows-WindowsUpdateClient", EventID: 20, Written: t0,
			Data: [][2]string{{"errorCode", "0x80070002"}, {"updateTitle", "2024-09 Cumulative Update for Windows 11 Version 23H2 for x64-based Systems (KB5043076)"},
				{"updateGuid", "{8A5F2B41-2D8C-4E2B-9F1A-3C7D5E6F7A8B}"}, {"updateRevisionNumber", "1"}, {"serviceGuid", "{7971F918-A847-4430-9279-4A52D1EFE18D}"}}},
		{Provider: "Microsoft-Windows-WindowsUpdateClient", EventID: 20, Written: t0.Add(30 * time.Second),
			Data: [][2]string{{"errorCode", "0x80070002"}, {"updateTitle", "2024-09 Cumulative Update for Windows 11 Version 23H2 for x64-based Systems (KB5043076)"},
				{"updateGuid", "{8A5F2B41-2D8C-4E2B-9F1A-3C7D5E6F7A8B}"}, {"updateRevisionNumber", "1"}, {"serviceGuid", "{7971F918-A847-4430-9279-4A52D1EFE18D}"}}},
		{Provider: "Microsoft-Windows-WindowsUpdateClient", EventID: 19, Written: t0.Add(time.Minute),
			Data: [][2]string{{"updateTitle", "Security Intelligence Update for Microsoft Defender Antivirus - KB2267602"}, {"updateGuid", "{11111111-2222-3333-4444-555555555555}"}, {"updateRevisionNumber", "200"}, {"serviceGuid", "{7971F918-A847-4430-9279-4A52D1EFE18D}"}}},
	}
}

// RichValue is a typed value with the text the reader must render for it.
type RichValue struct {
	Value
	Text string
}

// RichValues covers every value type variantText knows, plus a value too
// short for its type (rendered as hex).
func RichValues() []RichValue {
	le := binary.LittleEndian
	u32 := func(v uint32) []byte { return le.AppendUint32(nil, v) }
	u64 := func(v uint64) []byte { return le.AppendUint64(nil, v) }
	guid := []byte{0x41, 0x2B, 0x5F, 0x8A, 0x8C, 0x2D, 0x2B, 0x4E, 0x9F, 0x1A, 0x3C, 0x7D, 0x5E, 0x6F, 0x7A, 0x8B}
	when := time.Date(2024, 9, 12, 10, 15, 32, 500_000_000, time.UTC)
	return []RichValue{
		{Value{"null", 0x00, nil}, ""},
		{Value{"ansi", 0x02, []byte("ansi\x00")}, "ansi"},
		{Value{"int8", 0x03, []byte{0xff}}, "-1"},
		{Value{"uint8", 0x04, []byte{200}}, "200"},
		{Value{"int16", 0x05, []byte{0xfe, 0xff}}, "-2"},
		{Value{"uint16", 0x06, []byte{0xff, 0xff}}, "65535"},
		{Value{"int32", 0x07, u32(0xfffffffd)}, "-3"},
		{Value{"uint32", 0x08, u32(4_000_000_000)}, "4000000000"},
		{Value{"int64", 0x09, u64(0xfffffffffffffffc)}, "-4"},
		{Value{"uint64", 0x0a, u64(1 << 63)}, "9223372036854775808"},
		{Value{"float", 0x0b, u32(0x3fc00000)}, "1.5"},
		{Value{"double", 0x0c, u64(0x3fd0000000000000)}, "0.25"},
		{Value{"bool", 0x0d, u32(1)}, "true"},
		{Value{"binary", 0x0e, []byte{0xde, 0xad}}, "DEAD"},
		{Value{"guid", 0x0f, guid}, "{8A5F2B41-2D8C-4E2B-9F1A-3C7D5E6F7A8B}"},
		{Value{"size", 0x10, u32(0x1000)}, "0x1000"},
		{Value{"filetime", 0x11, u64(filetime.FromTime(when))}, "2024-09-12 10:15:32.500000"},
		{Value{"sid", 0x13, []byte{1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0}}, "S-1-5-18"},
		{Value{"hex32", 0x14, u32(0xC0000005)}, "0xc0000005"},
		{Value{"hex64", 0x15, u64(0x80070002)}, "0x0000000080070002"},
		{Value{"strings", 0x81, []byte{'a', 0, 0, 0, 'b', 0, 0, 0}}, "a, b"},
		{Value{"nested", 0x21, nil}, ""}, // its text is the child element's
		{Value{"short", 0x08, []byte{1, 2}}, "0102"},
	}
}

// RichEvents is two events of one rich shape (the second refers to the
// first's template), between two plain sample events.
func RichEvents() []Event {
	var typed []Value
	for _, v := range RichValues() {
		typed = append(typed, v.Value)
	}
	s := SampleEvents()
	rich := Event{Provider: "Rich-Provider", EventID: 4242, Written: s[0].Written,
		Data: [][2]string{{"first", "plain"}}, Typed: typed, Rich: true}
	again := rich
	again.Provider, again.EventID = "Rich-Again", 4243
	return []Event{s[0], rich, again, s[3]}
}
