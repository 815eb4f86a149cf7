package hive

// Security cell ("sk") layout (formats.md, "Security"): "sk", reserved u16,
// flink u32 @4, blink u32 @8 (a circular list of every sk in the hive),
// reference count u32 @12 (keys using it), descriptor size u32 @16, the
// self-relative security descriptor @20.
const (
	skFixedSize   = 20
	skOffFlink    = 4
	skOffBlink    = 8
	skOffRefCount = 12
	skOffDescLen  = 16
)

// skRecord is a decoded security cell.
type skRecord struct {
	flink, blink uint32
	refCount     uint32
	desc         []byte
}

func parseSK(off uint32, d []byte) (*skRecord, error) {
	if len(d) < skFixedSize {
		return nil, cellErr(off, "security", ErrRecord, "cell holds %d bytes, a security cell needs %d", len(d), skFixedSize)
	}
	if d[0] != 's' || d[1] != 'k' {
		return nil, cellErr(off, "security", ErrRecord, "signature %q, want \"sk\"", d[0:2])
	}
	s := &skRecord{
		flink:    leUint32(d[skOffFlink:]),
		blink:    leUint32(d[skOffBlink:]),
		refCount: leUint32(d[skOffRefCount:]),
	}
	n := leUint32(d[skOffDescLen:])
	if uint64(skFixedSize)+uint64(n) > uint64(len(d)) {
		return nil, cellErr(off, "security", ErrRecord, "descriptor of %d bytes does not fit in the %d-byte cell", n, len(d))
	}
	s.desc = d[skFixedSize : skFixedSize+n]
	return s, nil
}

func (h *Hive) readSK(off uint32) (*skRecord, error) {
	d, err := h.cellData(off, "security")
	if err != nil {
		return nil, err
	}
	return parseSK(off, d)
}

// SecurityDescriptor returns the key's self-relative security descriptor
// (the bytes of its sk cell), not parsed.
func (k *Key) SecurityDescriptor() ([]byte, error) {
	s, err := k.h.readSK(k.nk.security)
	if err != nil {
		return nil, k.keyErr(err)
	}
	return s.desc, nil
}

// SecurityOffset returns the cell offset of the key's sk cell.
func (k *Key) SecurityOffset() uint32 { return k.nk.security }
