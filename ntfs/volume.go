package ntfs

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"unicode/utf16"

	"www.velocidex.com/golang/go-ntfs/parser"
)

// Volume is an NTFS volume opened for reading. Open computes its safety
// state once; FS gives a read-only file system view. A Volume is safe for
// concurrent use: every call into the third-party parser is serialised.
type Volume struct {
	r      *rdCountingReader
	size   int64
	boot   *BootSector
	upcase *UpCase
	safety *Safety

	mu  sync.Mutex // guards ctx (go-ntfs keeps caches and is not documented as goroutine-safe)
	ctx *parser.NTFSContext

	skippedMu sync.Mutex
	skipped   []string
}

// rdCountingReader counts the bytes read through it so that callers can
// show that diagnosing a volume reads a small, bounded amount of it.
type rdCountingReader struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *rdCountingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// Open opens the NTFS volume held in the first size bytes of r. It returns
// ErrBitLocker or ErrNotNTFS (from the boot sector) and an error when the
// $MFT cannot be located; every other problem (an unreadable $Volume,
// $LogFile, $UpCase or hiberfil.sys) is recorded in Safety as a refusal
// with its reason, so that a damaged volume is still diagnosed as far as
// possible. Open never writes.
func Open(r io.ReaderAt, size int64) (*Volume, error) {
	if size < BootSectorSize {
		return nil, fmt.Errorf("ntfs: volume of %d bytes is smaller than a boot sector", size)
	}
	// Every read, ours and go-ntfs's, is confined to the volume.
	cr := &rdCountingReader{r: io.NewSectionReader(r, 0, size)}
	boot, err := ReadBootSector(cr)
	if err != nil {
		return nil, err
	}
	v := &Volume{r: cr, size: size, boot: boot, safety: &Safety{Serial: boot.Serial}}
	if boot.VolumeSize() > size {
		v.safety.refuse(RefusalUnreadable,
			fmt.Sprintf("the boot sector says the volume has %d bytes but only %d are available (truncated image or wrong partition size)", boot.VolumeSize(), size),
			rdAdviceUnreadable)
	}
	mftOff := int64(boot.MFTCluster) * int64(boot.ClusterSize)
	if mftOff+int64(boot.RecordSize) > size {
		return nil, fmt.Errorf("ntfs: $MFT at 0x%x is beyond the end of the volume (%d bytes)", mftOff, size)
	}
	err = v.guard("$MFT (record 0) at 0x"+fmt.Sprintf("%x", mftOff), func() error {
		ctx, err := parser.GetNTFSContext(cr, 0)
		if err != nil {
			return err
		}
		v.ctx = ctx
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The root directory is needed for everything else; without it the
	// volume is not usable at all.
	if _, err := v.record(mftRecRoot, 0); err != nil {
		return nil, fmt.Errorf("ntfs: root directory: %w", err)
	}
	if err := v.loadUpCase(); err != nil {
		// Lookups still work for ASCII names with a fallback table, but
		// the writer must not use it: record why.
		v.upcase = asciiUpCase()
		v.safety.refuse(RefusalUnreadable, fmt.Sprintf("$UpCase (record 10) is unreadable (%v); names are compared with ASCII case folding only", err), rdAdviceUnreadable)
	}
	v.computeSafety()
	return v, nil
}

// Boot returns the decoded boot sector.
func (v *Volume) Boot() *BootSector { return v.boot }

// UpCase returns the volume's $UpCase table (record 10). When it could not
// be read, a table folding ASCII only is returned and Safety carries an
// "unreadable" refusal.
func (v *Volume) UpCase() *UpCase { return v.upcase }

// Safety returns the safety state computed by Open.
func (v *Volume) Safety() *Safety { return v.safety }

// BytesRead returns how many bytes have been read from the volume so far,
// by Open and by every later lookup and file read.
func (v *Volume) BytesRead() int64 { return v.r.n.Load() }

// SkippedNames lists (quoted, at most 100) directory entries that ReadDir
// left out because their on-disk names cannot be io/fs path elements: they
// contain '/' or NUL, are "." or "..", are empty, or are not valid UTF-16.
func (v *Volume) SkippedNames() []string {
	v.skippedMu.Lock()
	defer v.skippedMu.Unlock()
	return append([]string(nil), v.skipped...)
}

func (v *Volume) noteSkipped(dir string, name []uint16) {
	v.skippedMu.Lock()
	defer v.skippedMu.Unlock()
	if len(v.skipped) >= 100 {
		return
	}
	q := fmt.Sprintf("%s/%q", dir, string(utf16.Decode(name)))
	for _, s := range v.skipped {
		if s == q {
			return
		}
	}
	v.skipped = append(v.skipped, q)
}

// guard runs fn under the parser lock and turns a panic into an error.
// go-ntfs is a third-party parser written for forensics, not for hostile
// input: it indexes slices with on-disk values and can panic on damaged
// structures. A damaged volume must yield an error naming the structure
// being read, never a crash of the whole program.
func (v *Volume) guard(what string, fn func() error) (err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("ntfs: %s: damaged structure (the go-ntfs parser failed: %v)", what, p)
		}
	}()
	if err := fn(); err != nil {
		return fmt.Errorf("ntfs: %s: %w", what, err)
	}
	return nil
}

// rdAttr is what the read side needs of one attribute of a record.
type rdAttr struct {
	typ       uint64
	name      string
	id        uint16
	resident  bool
	flags     uint16
	vcnStart  uint64
	size      int64 // value size (resident) or data size of the first extent
	allocated int64
	a         *parser.NTFS_ATTRIBUTE
}

// rdRecord is a base MFT record, its attributes gathered (including those
// that an $ATTRIBUTE_LIST places in extension records).
type rdRecord struct {
	num   uint64
	seq   uint16
	flags uint16 // 1 in use, 2 directory
	attrs []rdAttr
	entry *parser.MFT_ENTRY
}

func (r *rdRecord) isDir() bool { return r.flags&2 != 0 }

// find returns the first attribute of the given type and name that starts
// at VCN 0 (the first extent), or nil.
func (r *rdRecord) find(typ uint64, name string) *rdAttr {
	for i := range r.attrs {
		a := &r.attrs[i]
		if a.typ == typ && a.name == name && (a.resident || a.vcnStart == 0) {
			return a
		}
	}
	return nil
}

// rdErrRecordSequence reports a reference whose sequence number does not
// match the record: the entry is stale (the record was freed and reused).
var rdErrRecordSequence = errors.New("sequence number does not match the record (stale reference)")

// record loads MFT record num and checks it: "FILE" magic, in use, a base
// record, and (when seq is not 0) the expected sequence number.
func (v *Volume) record(num uint64, seq uint16) (*rdRecord, error) {
	if num >= 1<<48 {
		return nil, fmt.Errorf("ntfs: record %d: reference out of range", num)
	}
	rec := &rdRecord{num: num}
	err := v.guard(fmt.Sprintf("MFT record %d", num), func() error {
		e, err := v.ctx.GetMFT(int64(num))
		if err != nil {
			return err
		}
		if !e.Magic().IsValid() {
			return errors.New("no FILE signature")
		}
		rec.entry = e
		rec.seq = e.Sequence_value()
		rec.flags = uint16(e.Flags().Value)
		if rec.flags&1 == 0 {
			return errors.New("record is not in use")
		}
		if e.Base_record_reference()&(1<<48-1) != 0 {
			return errors.New("record is an extension record, not a base record")
		}
		if seq != 0 && seq != rec.seq {
			return fmt.Errorf("reference sequence %d, record sequence %d: %w", seq, rec.seq, rdErrRecordSequence)
		}
		for _, a := range e.EnumerateAttributes(v.ctx) {
			ra := rdAttr{
				typ:      a.Type().Value,
				name:     a.Name(),
				id:       a.Attribute_id(),
				resident: a.IsResident(),
				flags:    uint16(*a.Flags()),
				a:        a,
			}
			if ra.resident {
				ra.size = int64(a.Content_size())
			} else {
				ra.vcnStart = a.Runlist_vcn_start()
				ra.size = int64(a.Actual_size())
				ra.allocated = int64(a.Allocated_size())
				// Sizes are checked here so that no caller sizes a buffer
				// from an impossible value: data never exceeds its
				// allocation, and unless sparse or compressed the
				// allocation is real clusters of this volume.
				switch {
				case ra.size < 0 || ra.allocated < 0:
					return fmt.Errorf("attribute 0x%x: negative size", ra.typ)
				case ra.vcnStart == 0 && ra.size > ra.allocated:
					return fmt.Errorf("attribute 0x%x: data size %d exceeds allocated size %d", ra.typ, ra.size, ra.allocated)
				case ra.flags&(AttrFlagSparse|AttrFlagCompressed) == 0 && ra.allocated > v.size:
					return fmt.Errorf("attribute 0x%x: allocated size %d exceeds the volume (%d bytes)", ra.typ, ra.allocated, v.size)
				}
			}
			rec.attrs = append(rec.attrs, ra)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// rdMaxResident bounds a resident attribute value: it lives inside one
// MFT record, whose size the boot sector caps at 64 KiB.
const rdMaxResident = 64 << 10

// attrBytes reads an attribute's whole value, refusing values larger than
// limit (checked against the header's size before anything is read).
func (v *Volume) attrBytes(rec *rdRecord, a *rdAttr, limit int64) ([]byte, error) {
	what := fmt.Sprintf("MFT record %d: attribute 0x%x %q", rec.num, a.typ, a.name)
	if a.size > limit {
		return nil, fmt.Errorf("ntfs: %s: value of %d bytes exceeds the %d expected", what, a.size, limit)
	}
	if a.resident && a.size > int64(v.boot.RecordSize) {
		return nil, fmt.Errorf("ntfs: %s: resident value of %d bytes is larger than a record", what, a.size)
	}
	s, err := v.stream(rec, a)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, a.size)
	if _, err := s.ReadAt(buf, 0); err != nil && !(errors.Is(err, io.EOF) && len(buf) == 0) {
		return nil, fmt.Errorf("ntfs: %s: %w", what, err)
	}
	return buf, nil
}

// rdStream reads one attribute's value (all extents) through go-ntfs,
// bounded by the attribute's size, with full reads and panics recovered.
type rdStream struct {
	v    *Volume
	what string
	r    io.ReaderAt
	size int64
}

// stream opens the value of attribute a (the first extent; go-ntfs joins
// the later ones found through $ATTRIBUTE_LIST).
func (v *Volume) stream(rec *rdRecord, a *rdAttr) (*rdStream, error) {
	what := fmt.Sprintf("MFT record %d: attribute 0x%x %q", rec.num, a.typ, a.name)
	if a.flags&AttrFlagEncrypted != 0 {
		return nil, fmt.Errorf("ntfs: %s: encrypted (EFS) data cannot be read offline", what)
	}
	s := &rdStream{v: v, what: what, size: a.size}
	err := v.guard(what, func() error {
		if a.resident {
			s.r = a.a.Data(v.ctx)
			return nil
		}
		r, err := parser.OpenStream(v.ctx, rec.entry, a.typ, a.id, a.name)
		if err != nil {
			return err
		}
		s.r = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ReadAt reads from the attribute value. Reads beyond the value's size
// return io.EOF; a short read inside it is an error (go-ntfs returns short
// reads without an error when a run is missing).
func (s *rdStream) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("ntfs: %s: negative offset", s.what)
	}
	if off >= s.size {
		return 0, io.EOF
	}
	want := p
	if rem := s.size - off; int64(len(want)) > rem {
		want = want[:rem]
	}
	n := 0
	for n < len(want) {
		var m int
		err := s.v.guard(s.what, func() error {
			var err error
			m, err = s.r.ReadAt(want[n:], off+int64(n))
			if err == io.EOF {
				err = nil
			}
			return err
		})
		n += m
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, fmt.Errorf("ntfs: %s: no data at offset %d of %d (damaged run list?)", s.what, off+int64(n), s.size)
		}
	}
	if len(want) < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// loadUpCase reads record 10's unnamed $DATA and parses it.
func (v *Volume) loadUpCase() error {
	rec, err := v.record(mftRecUpCase, 0)
	if err != nil {
		return err
	}
	a := rec.find(AttrData, "")
	if a == nil {
		return errors.New("no $DATA attribute")
	}
	if a.size != 2*UpCaseEntries {
		return fmt.Errorf("$DATA has %d bytes, want %d", a.size, 2*UpCaseEntries)
	}
	b, err := v.attrBytes(rec, a, 2*UpCaseEntries)
	if err != nil {
		return err
	}
	u, err := ParseUpCase(b)
	if err != nil {
		return err
	}
	v.upcase = u
	return nil
}

// asciiUpCase is the fallback when $UpCase is unreadable: identity except
// a-z.
func asciiUpCase() *UpCase {
	u := &UpCase{}
	for i := range u.table {
		u.table[i] = uint16(i)
	}
	for c := 'a'; c <= 'z'; c++ {
		u.table[c] = uint16(c - 'a' + 'A')
	}
	return u
}
