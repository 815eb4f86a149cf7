package offline

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"wuoffline/internal/filetime"
)

// A small, bounded reader of Windows event log files (.evtx), enough to get
// each record's provider, event id, time and data values. Format facts
// (libevtx documentation, "Windows XML Event Log (EVTX) format"):
//
//   - file header: 4096 bytes, "ElfFile\0"; then chunks of 65536 bytes,
//     each starting "ElfChnk\0" with a 512-byte header; records start at
//     chunk offset 512 and end at the chunk's free-space offset (header +48);
//   - record: u32 0x00002a2a, u32 size, u64 record id, FILETIME written,
//     Binary XML, u32 size copy;
//   - Binary XML: a token stream; names and template definitions are
//     referred to by chunk-relative offsets and may be defined inline (the
//     offset then points just after the referring token);
//   - a record is usually StartOfStream + TemplateInstance: a template
//     (an XML fragment with substitution tokens) plus an array of typed
//     substitution values.
const (
	evtxHeaderSize  = 4096
	evtxChunkSize   = 65536
	evtxChunkHeader = 512
	evtxMaxChunks   = 4096   // 256 MiB of log: far above Windows' 20 MiB default
	evtxMaxDepth    = 32     // element / template nesting
	evtxMaxSteps    = 100000 // tokens evaluated per record
	// evtxMaxText bounds the text one record renders. A substitution
	// value can be referenced many times, so a 64 KiB chunk could
	// otherwise render gigabytes; real records render a few KiB.
	evtxMaxText = 1 << 20
)

// ErrNotEVTX is returned for a file that is not an event log.
var ErrNotEVTX = errors.New("evtx: not an event log file (no ElfFile signature)")

// EVTXEvent is one event record.
type EVTXEvent struct {
	RecordID uint64
	// Written is the record's FILETIME (UTC).
	Written  time.Time
	Provider string // System/Provider@Name
	EventID  int    // System/EventID
	// Data are the EventData/Data (or UserData) values in order; Named
	// maps the Name attribute of each Data element to its value.
	Data  []string
	Named map[string]string
}

// ReadEVTX calls fn for every record of an event log that can be decoded,
// chunk by chunk. Damaged chunks and records are skipped (their count is
// returned in skipped); only an unreadable or foreign file is an error.
// fn returning false stops the walk.
func ReadEVTX(r io.ReaderAt, size int64, fn func(*EVTXEvent) bool) (skipped int, err error) {
	hdr := make([]byte, 8)
	if size < evtxHeaderSize {
		return 0, ErrNotEVTX
	}
	if _, err := r.ReadAt(hdr, 0); err != nil {
		return 0, fmt.Errorf("evtx: reading file header: %w", err)
	}
	if string(hdr) != "ElfFile\x00" {
		return 0, ErrNotEVTX
	}
	n := (size - evtxHeaderSize) / evtxChunkSize
	if n > evtxMaxChunks {
		n = evtxMaxChunks
	}
	chunk := make([]byte, evtxChunkSize)
	for i := int64(0); i < n; i++ {
		off := evtxHeaderSize + i*evtxChunkSize
		if _, err := r.ReadAt(chunk, off); err != nil && err != io.EOF {
			return skipped, fmt.Errorf("evtx: reading chunk %d at %d: %w", i, off, err)
		}
		if string(chunk[:8]) != "ElfChnk\x00" {
			continue // unused (zeroed) chunk of a log that is not full
		}
		s, stop := readChunk(chunk, fn)
		skipped += s
		if stop {
			break
		}
	}
	return skipped, nil
}

// readChunk walks the records of one chunk.
func readChunk(c []byte, fn func(*EVTXEvent) bool) (skipped int, stop bool) {
	end := int(binary.LittleEndian.Uint32(c[48:]))
	if end > len(c) || end < evtxChunkHeader {
		end = len(c)
	}
	for off := evtxChunkHeader; off+28 <= end; {
		if binary.LittleEndian.Uint32(c[off:]) != 0x00002a2a {
			break
		}
		sz := int(binary.LittleEndian.Uint32(c[off+4:]))
		if sz < 28 || sz > end-off {
			skipped++
			break
		}
		ev := &EVTXEvent{
			RecordID: binary.LittleEndian.Uint64(c[off+8:]),
			Written:  filetime.ToTime(binary.LittleEndian.Uint64(c[off+16:])),
		}
		p := &bxParser{chunk: c}
		root := &xnode{}
		if _, err := p.fragment(off+24, root, nil, 0); err != nil {
			skipped++
		} else {
			ev.fill(root)
			if !fn(ev) {
				return skipped, true
			}
		}
		off += sz
	}
	return skipped, false
}

// xnode is a decoded XML element.
type xnode struct {
	name     string
	attrs    [][2]string
	children []*xnode
	text     strings.Builder
}

func (n *xnode) child(name string) *xnode {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (n *xnode) attr(name string) string {
	for _, a := range n.attrs {
		if a[0] == name {
			return a[1]
		}
	}
	return ""
}

// fill extracts the fields of EVTXEvent from the decoded XML.
func (ev *EVTXEvent) fill(root *xnode) {
	e := root.child("Event")
	if e == nil {
		return
	}
	if sys := e.child("System"); sys != nil {
		if p := sys.child("Provider"); p != nil {
			ev.Provider = p.attr("Name")
		}
		if id := sys.child("EventID"); id != nil {
			if n, err := strconv.Atoi(strings.TrimSpace(id.text.String())); err == nil {
				ev.EventID = n
			}
		}
	}
	if d := e.child("EventData"); d != nil {
		for _, c := range d.children {
			v := c.text.String()
			ev.Data = append(ev.Data, v)
			if name := c.attr("Name"); name != "" {
				if ev.Named == nil {
					ev.Named = map[string]string{}
				}
				ev.Named[name] = v
			}
		}
	}
	if u := e.child("UserData"); u != nil {
		var walk func(n *xnode, depth int)
		walk = func(n *xnode, depth int) {
			if depth > evtxMaxDepth {
				return
			}
			if len(n.children) == 0 {
				ev.Data = append(ev.Data, n.text.String())
				if ev.Named == nil {
					ev.Named = map[string]string{}
				}
				ev.Named[n.name] = n.text.String()
			}
			for _, c := range n.children {
				walk(c, depth+1)
			}
		}
		for _, c := range u.children {
			walk(c, 0)
		}
	}
}

// bxParser decodes Binary XML within one chunk.
type bxParser struct {
	chunk []byte
	steps int
	text  int // bytes of text rendered so far (evtxMaxText)
}

// write appends s to n's text, failing once the record has rendered more
// than evtxMaxText bytes.
func (p *bxParser) write(pos int, n *xnode, s string) error {
	p.text += len(s)
	if p.text > evtxMaxText {
		return p.bad(pos, "record renders too much text")
	}
	n.text.WriteString(s)
	return nil
}

// subst is one substitution value of a template instance.
type subst struct {
	typ  byte
	off  int // chunk offset of the value
	data []byte
}

var errBX = errors.New("evtx: bad binary XML")

func (p *bxParser) bad(pos int, what string) error {
	return fmt.Errorf("%w: %s at chunk offset %#x", errBX, what, pos)
}

func (p *bxParser) need(pos, n int) error {
	if pos < 0 || n < 0 || pos+n > len(p.chunk) {
		return p.bad(pos, "truncated")
	}
	return nil
}

// step counts one more token against evtxMaxSteps (hostile input may
// loop through back-references) and checks that the token's first n bytes
// at pos are in the chunk.
func (p *bxParser) step(pos, n int) error {
	p.steps++
	if p.steps > evtxMaxSteps {
		return p.bad(pos, "too many tokens")
	}
	return p.need(pos, n)
}

func (p *bxParser) u8(pos int) byte    { return p.chunk[pos] }
func (p *bxParser) u16(pos int) int    { return int(binary.LittleEndian.Uint16(p.chunk[pos:])) }
func (p *bxParser) u32(pos int) uint32 { return binary.LittleEndian.Uint32(p.chunk[pos:]) }

// name reads a name at chunk offset off (u32 next, u16 hash, u16 length in
// characters, UTF-16 characters, u16 NUL) and returns it with its size.
func (p *bxParser) name(off int) (string, int, error) {
	if err := p.need(off, 8); err != nil {
		return "", 0, err
	}
	n := p.u16(off + 6)
	size := 8 + 2*n + 2
	if err := p.need(off, size); err != nil {
		return "", 0, err
	}
	return decodeUTF16(p.chunk[off+8 : off+8+2*n]), size, nil
}

// nameRef reads a name referenced from a token at pos whose fixed part
// ends at after: when the offset points at after, the name is inline and
// the stream continues past it.
func (p *bxParser) nameRef(ref, after int) (string, int, error) {
	s, size, err := p.name(ref)
	if err != nil {
		return "", after, err
	}
	if ref == after {
		return s, after + size, nil
	}
	return s, after, nil
}

// fragment evaluates tokens from pos into parent until end of stream (or,
// for a template instance, after its substitution values). It returns the
// position after what it consumed.
func (p *bxParser) fragment(pos int, parent *xnode, subs []subst, depth int) (int, error) {
	if depth > evtxMaxDepth {
		return pos, p.bad(pos, "nesting too deep")
	}
	for {
		if err := p.step(pos, 1); err != nil {
			return pos, err
		}
		tok := p.u8(pos)
		switch tok & 0x0f {
		case 0x00: // end of stream
			return pos + 1, nil
		case 0x0f: // start of stream: token, u8, u16
			pos += 4
		case 0x0c: // template instance
			return p.templateInstance(pos, parent, depth)
		case 0x01:
			var err error
			pos, err = p.element(pos, parent, subs, depth)
			if err != nil {
				return pos, err
			}
		case 0x05, 0x07, 0x08, 0x09, 0x0d, 0x0e:
			var err error
			pos, err = p.content(pos, parent, subs, depth)
			if err != nil {
				return pos, err
			}
		default:
			return pos, p.bad(pos, fmt.Sprintf("unexpected token %#x", tok))
		}
	}
}

// templateInstance: token 0x0c, u8, u32 template id, u32 definition offset;
// a resident definition (u32 next, GUID, u32 data size, data) follows
// inline; then u32 count, count × (u16 size, u8 type, u8 pad), the values.
func (p *bxParser) templateInstance(pos int, parent *xnode, depth int) (int, error) {
	if err := p.need(pos, 10); err != nil {
		return pos, err
	}
	def := int(p.u32(pos + 6))
	after := pos + 10
	if err := p.need(def, 24); err != nil {
		return pos, p.bad(pos, "template definition outside chunk")
	}
	dataSize := int(p.u32(def + 20))
	body := def + 24
	if err := p.need(body, dataSize); err != nil {
		return pos, p.bad(def, "template data outside chunk")
	}
	if def == after {
		after = body + dataSize
	} else if def > after {
		// python-evtx and libevtx treat any forward offset as resident.
		after = body + dataSize
	}
	if err := p.need(after, 4); err != nil {
		return pos, err
	}
	count := int(p.u32(after))
	after += 4
	if count > (len(p.chunk)-after)/4 {
		return pos, p.bad(after-4, "substitution count too large")
	}
	subs := make([]subst, count)
	vpos := after + 4*count
	for i := range subs {
		sz := p.u16(after + 4*i)
		subs[i].typ = p.u8(after + 4*i + 2)
		if err := p.need(vpos, sz); err != nil {
			return pos, p.bad(vpos, "substitution value outside chunk")
		}
		subs[i].off, subs[i].data = vpos, p.chunk[vpos:vpos+sz]
		vpos += sz
	}
	// The definition's own stream ends with its end-of-stream token.
	tp := &bxParser{chunk: p.chunk, steps: p.steps, text: p.text}
	if _, err := tp.fragment(body, parent, subs, depth+1); err != nil {
		return pos, err
	}
	p.steps, p.text = tp.steps, tp.text
	return vpos, nil
}

// element: token 0x01 (0x41 with attributes), u16 dependency id, u32 size,
// u32 name offset, [u32 attribute list size], inline name?, attributes,
// then 0x02 (close start: content follows up to 0x04) or 0x03 (empty).
func (p *bxParser) element(pos int, parent *xnode, subs []subst, depth int) (int, error) {
	if depth > evtxMaxDepth {
		return pos, p.bad(pos, "elements nested too deep")
	}
	tok := p.u8(pos)
	if err := p.need(pos, 11); err != nil {
		return pos, err
	}
	ref := int(p.u32(pos + 7))
	after := pos + 11
	if tok&0x40 != 0 {
		after += 4
	}
	name, next, err := p.nameRef(ref, after)
	if err != nil {
		return pos, err
	}
	el := &xnode{name: name}
	parent.children = append(parent.children, el)
	pos = next
	// attributes
	for {
		if err := p.need(pos, 1); err != nil {
			return pos, err
		}
		t := p.u8(pos)
		if t&0x0f != 0x06 {
			break
		}
		if err := p.step(pos, 5); err != nil {
			return pos, err
		}
		aname, apos, err := p.nameRef(int(p.u32(pos+1)), pos+5)
		if err != nil {
			return pos, err
		}
		holder := &xnode{}
		apos, err = p.content(apos, holder, subs, depth+1)
		if err != nil {
			return pos, err
		}
		// an attribute may carry several value tokens
		for {
			if err := p.need(apos, 1); err != nil {
				return apos, err
			}
			switch p.u8(apos) & 0x0f {
			case 0x05, 0x07, 0x08, 0x09, 0x0d, 0x0e:
				apos, err = p.content(apos, holder, subs, depth+1)
				if err != nil {
					return apos, err
				}
				continue
			}
			break
		}
		el.attrs = append(el.attrs, [2]string{aname, holder.text.String()})
		pos = apos
	}
	switch p.u8(pos) {
	case 0x03: // close empty element
		return pos + 1, nil
	case 0x02: // close start element: content up to end element
		pos++
	default:
		return pos, p.bad(pos, fmt.Sprintf("token %#x where an element's start should close", p.u8(pos)))
	}
	for {
		if err := p.step(pos, 1); err != nil {
			return pos, err
		}
		t := p.u8(pos)
		switch t & 0x0f {
		case 0x04: // end element
			return pos + 1, nil
		case 0x01:
			pos, err = p.element(pos, el, subs, depth+1)
		case 0x05, 0x07, 0x08, 0x09, 0x0d, 0x0e:
			pos, err = p.content(pos, el, subs, depth+1)
		case 0x0a: // PI target: u32 name offset (+ inline name)
			if err = p.need(pos, 5); err == nil {
				_, pos, err = p.nameRef(int(p.u32(pos+1)), pos+5)
			}
		case 0x0b: // PI data: u16 length, UTF-16
			if err = p.need(pos, 3); err == nil {
				n := 3 + 2*p.u16(pos+1)
				if err = p.need(pos, n); err == nil {
					pos += n
				}
			}
		default:
			return pos, p.bad(pos, fmt.Sprintf("unexpected token %#x in element %q", t, name))
		}
		if err != nil {
			return pos, err
		}
	}
}

// content handles one value-like token: value text, CDATA, character or
// entity reference, or a substitution.
func (p *bxParser) content(pos int, parent *xnode, subs []subst, depth int) (int, error) {
	tok := p.u8(pos)
	switch tok & 0x0f {
	case 0x05: // value: u8 type (string), u16 length in chars, UTF-16
		if err := p.need(pos, 4); err != nil {
			return pos, err
		}
		typ := p.u8(pos + 1)
		if typ != 0x01 {
			return pos, p.bad(pos, fmt.Sprintf("value of type %#x", typ))
		}
		n := p.u16(pos + 2)
		if err := p.need(pos+4, 2*n); err != nil {
			return pos, err
		}
		if err := p.write(pos, parent, decodeUTF16(p.chunk[pos+4:pos+4+2*n])); err != nil {
			return pos, err
		}
		return pos + 4 + 2*n, nil
	case 0x07: // CDATA: u16 length, UTF-16
		if err := p.need(pos, 3); err != nil {
			return pos, err
		}
		n := p.u16(pos + 1)
		if err := p.need(pos+3, 2*n); err != nil {
			return pos, err
		}
		if err := p.write(pos, parent, decodeUTF16(p.chunk[pos+3:pos+3+2*n])); err != nil {
			return pos, err
		}
		return pos + 3 + 2*n, nil
	case 0x08: // character reference: u16
		if err := p.need(pos, 3); err != nil {
			return pos, err
		}
		parent.text.WriteRune(rune(p.u16(pos + 1)))
		return pos + 3, nil
	case 0x09: // entity reference: u32 name offset
		if err := p.need(pos, 5); err != nil {
			return pos, err
		}
		name, next, err := p.nameRef(int(p.u32(pos+1)), pos+5)
		if err != nil {
			return pos, err
		}
		parent.text.WriteString(map[string]string{"amp": "&", "lt": "<", "gt": ">", "quot": `"`, "apos": "'"}[name])
		return next, nil
	case 0x0d, 0x0e: // normal / optional substitution: u16 index, u8 type
		if err := p.need(pos, 4); err != nil {
			return pos, err
		}
		idx := p.u16(pos + 1)
		if idx < len(subs) {
			if err := p.substitute(subs[idx], parent, depth); err != nil {
				return pos, err
			}
		}
		return pos + 4, nil
	}
	return pos, p.bad(pos, fmt.Sprintf("unexpected token %#x", tok))
}

// substitute renders one substitution value into parent: nested Binary
// XML (type 0x21) becomes child elements, everything else text.
func (p *bxParser) substitute(s subst, parent *xnode, depth int) error {
	if s.typ == 0x21 {
		if len(s.data) == 0 {
			return nil
		}
		// The nested stream lies inside this chunk, at the value's offset.
		np := &bxParser{chunk: p.chunk, steps: p.steps, text: p.text}
		_, err := np.fragment(s.off, parent, nil, depth+1)
		p.steps, p.text = np.steps, np.text
		return err
	}
	return p.write(s.off, parent, variantText(s.typ, s.data))
}

// variantText renders a typed value as the XML text Windows shows.
func variantText(typ byte, b []byte) string {
	le := binary.LittleEndian
	switch typ {
	case 0x00:
		return ""
	case 0x01:
		return strings.TrimRight(decodeUTF16(b), "\x00")
	case 0x02:
		return strings.TrimRight(string(b), "\x00")
	case 0x03:
		if len(b) >= 1 {
			return strconv.Itoa(int(int8(b[0])))
		}
	case 0x04:
		if len(b) >= 1 {
			return strconv.Itoa(int(b[0]))
		}
	case 0x05:
		if len(b) >= 2 {
			return strconv.Itoa(int(int16(le.Uint16(b))))
		}
	case 0x06:
		if len(b) >= 2 {
			return strconv.Itoa(int(le.Uint16(b)))
		}
	case 0x07:
		if len(b) >= 4 {
			return strconv.Itoa(int(int32(le.Uint32(b))))
		}
	case 0x08:
		if len(b) >= 4 {
			return strconv.FormatUint(uint64(le.Uint32(b)), 10)
		}
	case 0x09:
		if len(b) >= 8 {
			return strconv.FormatInt(int64(le.Uint64(b)), 10)
		}
	case 0x0a:
		if len(b) >= 8 {
			return strconv.FormatUint(le.Uint64(b), 10)
		}
	case 0x0b:
		if len(b) >= 4 {
			return strconv.FormatFloat(float64(math.Float32frombits(le.Uint32(b))), 'g', -1, 32)
		}
	case 0x0c:
		if len(b) >= 8 {
			return strconv.FormatFloat(math.Float64frombits(le.Uint64(b)), 'g', -1, 64)
		}
	case 0x0d:
		if len(b) >= 4 {
			if le.Uint32(b) != 0 {
				return "true"
			}
			return "false"
		}
	case 0x0f:
		if len(b) >= 16 {
			return fmt.Sprintf("{%08X-%04X-%04X-%X-%X}", le.Uint32(b), le.Uint16(b[4:]), le.Uint16(b[6:]), b[8:10], b[10:16])
		}
	case 0x10:
		switch len(b) {
		case 4:
			return fmt.Sprintf("0x%x", le.Uint32(b))
		case 8:
			return fmt.Sprintf("0x%x", le.Uint64(b))
		}
	case 0x11:
		if len(b) >= 8 {
			return filetime.ToTime(le.Uint64(b)).Format("2006-01-02 15:04:05.000000")
		}
	case 0x13:
		return sidText(b)
	case 0x14:
		if len(b) >= 4 {
			return fmt.Sprintf("0x%08x", le.Uint32(b))
		}
	case 0x15:
		if len(b) >= 8 {
			return fmt.Sprintf("0x%016x", le.Uint64(b))
		}
	case 0x81: // array of UTF-16 strings, NUL-separated
		return strings.Join(strings.FieldsFunc(decodeUTF16(b), func(r rune) bool { return r == 0 }), ", ")
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

// sidText renders a binary SID: revision, count, 6-byte big-endian
// authority, count little-endian sub-authorities.
func sidText(b []byte) string {
	if len(b) < 8 {
		return strings.ToUpper(hex.EncodeToString(b))
	}
	n := int(b[1])
	if len(b) < 8+4*n {
		return strings.ToUpper(hex.EncodeToString(b))
	}
	var auth uint64
	for _, c := range b[2:8] {
		auth = auth<<8 | uint64(c)
	}
	s := fmt.Sprintf("S-%d-%d", b[0], auth)
	for i := 0; i < n; i++ {
		s += "-" + strconv.FormatUint(uint64(binary.LittleEndian.Uint32(b[8+4*i:])), 10)
	}
	return s
}

func decodeUTF16(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// Windows Update client events in the System log (repair-catalog.md):
// event 20 is "Installation Failure: Windows failed to install the
// following update with error 0x80070002: ... (KBnnnnnnn)", event 19 the
// matching success.
const (
	wuProvider      = "Microsoft-Windows-WindowsUpdateClient"
	wuEventFailure  = 20
	wuEventSuccess  = 19
	evtxFormatLabel = "evtx"
)

// readEVTXFinding reads the System event log for Windows Update
// installation failures. nil when the log does not exist.
func readEVTXFinding(fsys fs.FS, p string) *LogFinding {
	f := &LogFinding{File: winPath(p), Format: evtxFormatLabel}
	file, err := fsys.Open(p)
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		f.Error = err.Error()
		return f
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		f.Error = err.Error()
		return f
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f.Size = fi.Size()
	ra, ok := file.(io.ReaderAt)
	if !ok {
		f.Error = "file system gives no random access"
		return f
	}
	successes := 0
	skipped, err := ReadEVTX(ra, fi.Size(), func(ev *EVTXEvent) bool {
		if !strings.EqualFold(ev.Provider, wuProvider) {
			return true
		}
		switch ev.EventID {
		case wuEventSuccess:
			successes++
		case wuEventFailure:
			code := ev.Named["errorCode"]
			title := ev.Named["updateTitle"]
			if code == "" && len(ev.Data) > 0 {
				code = ev.Data[0]
			}
			if title == "" && len(ev.Data) > 1 {
				title = ev.Data[1]
			}
			t := ev.Written
			line := fmt.Sprintf("event %d (record %d): Installation Failure: error %s: %s", ev.EventID, ev.RecordID, code, title)
			f.record(0, &t, line, failingHRESULTs(code))
			f.InstallFailure = true
			if containsBITSCode(failingHRESULTs(code)) {
				f.BITSFailure = true
			}
		}
		return true
	})
	if err != nil {
		f.Error = err.Error()
	} else if skipped > 0 && f.Failures == 0 {
		f.Error = fmt.Sprintf("%d records could not be decoded", skipped)
	}
	_ = successes
	return f
}
