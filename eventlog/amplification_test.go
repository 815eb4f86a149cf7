package eventlog

import (
	"encoding/binary"
	"testing"
)

// TestReviewEVTXSubstitutionAmplification: one template instance whose
// body repeats a substitution of a 20 KB value thousands of times would
// render hundreds of megabytes of text from one 64 KiB chunk. The text a
// record renders must stay bounded by a small multiple of the chunk.
func TestReviewEVTXSubstitutionAmplification(t *testing.T) {
	c := make([]byte, chunkSize)
	copy(c, "ElfChnk\x00")
	le := binary.LittleEndian
	le.PutUint32(c[48:], chunkSize)
	rec := chunkHeaderSize
	le.PutUint32(c[rec:], 0x00002a2a)
	le.PutUint32(c[rec+4:], uint32(chunkSize-rec))
	pos := rec + 24
	copy(c[pos:], []byte{0x0f, 0x01, 0x01, 0x00}) // start of stream
	pos += 4
	c[pos] = 0x0c // template instance, definition resident right after
	def := pos + 10
	le.PutUint32(c[pos+6:], uint32(def))
	const valueSize = 20000
	body := def + 24
	n := (chunkSize - body - 1 - 8 - valueSize - 8) / 4
	le.PutUint32(c[def+20:], uint32(4*n+1))
	for i := 0; i < n; i++ {
		copy(c[body+4*i:], []byte{0x0d, 0x00, 0x00, 0x0e}) // substitution 0
	}
	c[body+4*n] = 0x00 // end of the template's stream
	after := body + 4*n + 1
	le.PutUint32(c[after:], 1)           // one substitution value
	le.PutUint16(c[after+4:], valueSize) // its size
	c[after+6] = 0x0e                    // binary: rendered as hex
	for i := after + 8; i < after+8+valueSize; i++ {
		c[i] = 0xAB
	}

	p := &bxParser{chunk: c}
	root := &xnode{}
	_, err := p.fragment(rec+24, root, nil, 0)
	if got := root.text.Len(); got > 16*chunkSize {
		t.Fatalf("one record rendered %d bytes of text (err %v): unbounded amplification", got, err)
	}
	if err == nil {
		t.Fatalf("no error for a record rendering far more text than a chunk holds")
	}
}
