package eventlog

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Bounds of the work one record may cause (hostile chunks may loop through
// back-references or repeat a large substitution value many times).
const (
	maxDepth = 32     // element / template nesting
	maxSteps = 100000 // tokens evaluated per record
	// maxText bounds the text one record renders. A substitution value
	// can be referenced many times, so a 64 KiB chunk could otherwise
	// render gigabytes; real records render a few KiB.
	maxText = 1 << 20
)

// bxParser decodes Binary XML within one chunk.
type bxParser struct {
	chunk []byte
	steps int
	text  int // bytes of text rendered so far (maxText)
}

// write appends s to n's text, failing once the record has rendered more
// than maxText bytes.
func (p *bxParser) write(pos int, n *xnode, s string) error {
	p.text += len(s)
	if p.text > maxText {
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

// xmlEntities are the predefined XML entities an entity reference names.
var xmlEntities = map[string]string{"amp": "&", "lt": "<", "gt": ">", "quot": `"`, "apos": "'"}

// errBX wraps every Binary XML decoding error.
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

// step counts one more token against maxSteps (hostile input may
// loop through back-references) and checks that the token's first n bytes
// at pos are in the chunk.
func (p *bxParser) step(pos, n int) error {
	p.steps++
	if p.steps > maxSteps {
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

// nameRef reads the name a token at chunk offset tok refers to; the
// token's fixed part ends at after. A name offset past the token means the
// name is defined inline (Windows puts it right after the name offset), so
// the stream goes on past its size; otherwise it is a back-reference to a
// name defined earlier in the chunk.
func (p *bxParser) nameRef(ref, tok, after int) (string, int, error) {
	s, size, err := p.name(ref)
	if err != nil {
		return "", after, err
	}
	if ref > tok {
		return s, after + size, nil
	}
	return s, after, nil
}

// fragment evaluates tokens from pos into parent until end of stream (or,
// for a template instance, after its substitution values). It returns the
// position after what it consumed.
func (p *bxParser) fragment(pos int, parent *xnode, subs []subst, depth int) (int, error) {
	if depth > maxDepth {
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
	if def > pos {
		// A definition past the token is resident: it follows inline
		// (python-evtx and libevtx treat any forward offset so).
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
	if depth > maxDepth {
		return pos, p.bad(pos, "elements nested too deep")
	}
	tok := p.u8(pos)
	if err := p.need(pos, 11); err != nil {
		return pos, err
	}
	ref := int(p.u32(pos + 7))
	name, next, err := p.nameRef(ref, pos, pos+11)
	if err != nil {
		return pos, err
	}
	if tok&0x40 != 0 {
		// u32 attribute list size, after the inline name if any.
		next += 4
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
		aname, apos, err := p.nameRef(int(p.u32(pos+1)), pos, pos+5)
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
				_, pos, err = p.nameRef(int(p.u32(pos+1)), pos, pos+5)
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
		if err := p.write(pos, parent, string(rune(p.u16(pos+1)))); err != nil {
			return pos, err
		}
		return pos + 3, nil
	case 0x09: // entity reference: u32 name offset
		if err := p.need(pos, 5); err != nil {
			return pos, err
		}
		name, next, err := p.nameRef(int(p.u32(pos+1)), pos, pos+5)
		if err != nil {
			return pos, err
		}
		if err := p.write(pos, parent, xmlEntities[name]); err != nil {
			return pos, err
		}
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
