package journal

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// Info is what a journal file says, read by [Open], [Read] or [Find].
type Info struct {
	Path    string
	Header  Header
	State   State
	Records []Record
	Bytes   int64 // total bytes of the saved ranges
	// Units and Groups are the plan's units and their groups (see
	// [Record.Units]), sorted by id. A version 1 or 2 journal has no units
	// on disk: they are made from the range labels (one unit per label,
	// one per unlabelled range).
	Units  []UnitInfo
	Groups []GroupInfo
	// PlannedRanges, PlannedUnits and PlannedGroups are what the plan mark
	// says (version 3); -1 when it was not read.
	PlannedRanges, PlannedUnits, PlannedGroups int
	// Prepared tells whether the plan was prepared, so that writes may
	// have happened (see [DamagedError.Prepared]).
	Prepared bool
	// Committed is when the last commit mark was written (zero if none).
	Committed time.Time
	// LastUndo is the last undo mark, nil if undo never completed.
	LastUndo *UndoCounts
	// Damage is nil for an intact journal. A torn append (Torn: the last
	// frame half-written by a crash, after which nothing was lost) is a
	// plain error; any other damage is a *[DamagedError] saying what is
	// still known. DamageAt is where the first damage is.
	Damage   error
	DamageAt int64
	// Torn is true when the damage is a torn append (a frame running past
	// the end of the file, or a zero-filled tail) that loses nothing: it is
	// cut off before a new mark is appended.
	Torn bool
	// End is the offset just past the last intact frame.
	End int64
}

// Interrupted reports whether the journal records a fix that was prepared
// but neither committed nor undone: the volume may be half-changed.
func (i *Info) Interrupted() bool { return i.State == StateInterrupted }

// Damaged returns the journal's damage as a *DamagedError, or nil when it
// is intact or merely torn.
func (i *Info) Damaged() *DamagedError {
	var de *DamagedError
	if errors.As(i.Damage, &de) {
		return de
	}
	return nil
}

// Advice says in one sentence what to do about the journal's state, or ""
// when there is nothing to do. It is AdviceWith(target, "").
func (i *Info) Advice(target string) string { return i.AdviceWith(target, "") }

// AdviceWith is Advice for a user who named the journal directory
// (--journal DIR): every command it suggests carries it.
func (i *Info) AdviceWith(target, journalDir string) string {
	cmd := func(verb string) string {
		if journalDir != "" {
			return fmt.Sprintf("`wuoffline %s --journal %s %s`", verb, journalDir, target)
		}
		return fmt.Sprintf("`wuoffline %s %s`", verb, target)
	}
	if de := i.Damaged(); de != nil {
		switch de.Kind {
		case DamageMissing, DamageUnreadable, DamageHeader:
			return fmt.Sprintf("%v; keep it for inspection, and check the volume (%s)", de, cmd("check"))
		}
		return fmt.Sprintf("%v: %s takes back only the changes the journal still describes whole, and lists the rest", de, cmd("undo"))
	}
	switch {
	case i.State == StateInterrupted:
		return fmt.Sprintf("a fix of this volume was interrupted (journal %s): run %s to roll it back to the original bytes, or %s to finish it", i.Path, cmd("undo"), cmd("fix"))
	case i.State == StateUndone && i.LastUndo != nil && (i.LastUndo.Changed > 0 || i.LastUndo.Lost > 0 || i.LastUndo.Left > 0):
		n := i.LastUndo.UnitsLeft
		if n == 0 {
			n = i.LastUndo.Changed + i.LastUndo.Lost
		}
		return fmt.Sprintf("the last undo (journal %s) could not take back %d change(s): the volume changed since", i.Path, n)
	}
	return ""
}

// Open reads the journal file at path. It fails only when the file
// cannot be read or is not a journal at all, with a *[DamagedError]
// (DamageMissing, DamageUnreadable or DamageHeader); damage after the
// header is reported in Info.Damage.
func Open(path string) (*Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, openError(path, err)
	}
	defer f.Close()
	info, _, err := readOpen(f, path)
	return info, err
}

// openError is the DamagedError for a journal file that cannot be opened.
func openError(path string, err error) *DamagedError {
	kind := DamageUnreadable
	if errors.Is(err, os.ErrNotExist) {
		kind = DamageMissing
	}
	return &DamagedError{Path: path, Kind: kind, At: -1, Err: err, PlannedUnits: -1, Written: WrittenUnknown}
}

// readOpen reads the whole of the open journal file f, named path, and
// returns the file's size too (a torn tail lies between Info.End and it).
func readOpen(f *os.File, path string) (*Info, int64, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, 0, &DamagedError{Path: path, Kind: DamageUnreadable, At: -1, Err: err, PlannedUnits: -1, Written: WrittenUnknown}
	}
	info, err := Read(f, st.Size())
	if err != nil {
		var de *DamagedError
		if errors.As(err, &de) {
			de.Path = path
			return nil, 0, de
		}
		return nil, 0, fmt.Errorf("journal %s: %w", path, err)
	}
	info.Path = path
	if de := info.Damaged(); de != nil {
		de.Path = path
	}
	return info, st.Size(), nil
}

// frameError is damage found at a frame.
type frameError struct {
	Pos int64
	Msg string
}

func (e *frameError) Error() string { return fmt.Sprintf("frame at %#x: %s", e.Pos, e.Msg) }

// Read parses a journal of size bytes from r. It fails, with a
// *[DamagedError] of kind DamageHeader, only when r does not start with a
// journal magic and an intact header; later damage is reported in
// Info.Damage with everything that could still be read. In a version 3
// journal a damaged frame is skipped: the parse resynchronises on the
// next frame that verifies, so that the units after the damage are still
// known. Every length is checked against size before use, so hostile
// input costs a bounded number of reads of the file and memory bounded by
// its size.
func Read(r io.ReaderAt, size int64) (*Info, error) {
	headerErr := func(err error) error {
		return &DamagedError{Kind: DamageHeader, At: 0, Err: err, PlannedUnits: -1, Written: WrittenUnknown}
	}
	if size < int64(len(magic))+frameHead+frameTail {
		return nil, headerErr(fmt.Errorf("not a journal: %d bytes", size))
	}
	var m [len(magic)]byte
	if _, err := r.ReadAt(m[:], 0); err != nil {
		return nil, headerErr(fmt.Errorf("reading magic: %w", err))
	}
	if string(m[:]) != magic {
		return nil, headerErr(errors.New("not a journal: bad magic"))
	}
	info := &Info{End: int64(len(magic)), PlannedRanges: -1, PlannedUnits: -1, PlannedGroups: -1}
	p := &parser{r: r, size: size, sum: sha256.New(), budget: 4*size + 1<<20, labels: map[int]string{}}
	pos := int64(len(magic))
	for pos < size {
		typ, plen, err := p.frame(pos)
		if err == nil {
			err = p.apply(info, typ, pos, plen)
		}
		if err == nil {
			pos += frameHead + plen + frameTail
			info.End = pos
			continue
		}
		if !p.header {
			return nil, headerErr(fmt.Errorf("header: %w", err))
		}
		torn := p.torn || p.zeroTail(pos) || (p.crcEnd > 0 && p.zeroTail(p.crcEnd))
		if p.version < 3 {
			p.damage(info, pos, pos, err, torn)
			if !torn {
				info.Torn = false
			}
			break
		}
		if torn && p.planMark && len(p.regions) == 0 {
			// A mark half-appended by a crash: nothing of the plan is lost.
			info.Damage, info.DamageAt, info.Torn = err, pos, true
			break
		}
		next := p.resync(pos + 1)
		end := next
		if next < 0 {
			end = size
		}
		p.damage(info, pos, end, err, torn)
		if next < 0 {
			break
		}
		pos = next
	}
	if !p.header {
		return nil, headerErr(errors.New("header: missing"))
	}
	p.finish(info)
	return info, nil
}

// region is a damaged part [off, end) of a journal file.
type region struct{ off, end int64 }

// parser holds the state of one Read.
type parser struct {
	r        io.ReaderAt
	size     int64
	sum      hash.Hash // SHA-256 over 'W' payloads, checked against 'P'
	version  int
	jid      uint64
	header   bool
	marked   bool  // a 'P', 'C' or 'U' frame was seen: no more 'W'
	prepared bool  // prepared: the 'P' frame was seen, or (version 3) implied by the file's existence
	planMark bool  // the 'P' frame was seen
	torn     bool  // the last frame error was a frame running past EOF
	crcEnd   int64 // end of the last frame whose CRC failed, 0 if none
	budget   int64 // bytes the resynchronisation may still checksum
	regions  []region
	cut      bool           // the first damage looked like a cut (runs past EOF, zeros)
	labels   map[int]string // version 3: unit labels, as first given
	badUnits map[int]bool   // version 3: units whose frames disagree
	buf      [32 << 10]byte
}

// frame checks the frame at pos: its header, bounds and CRC.
func (p *parser) frame(pos int64) (typ byte, plen int64, err error) {
	p.torn, p.crcEnd = false, 0
	if p.size-pos < frameHead+frameTail {
		p.torn = true
		return 0, 0, &frameError{pos, fmt.Sprintf("truncated: %d bytes left", p.size-pos)}
	}
	var h [frameHead]byte
	if _, err := p.r.ReadAt(h[:], pos); err != nil {
		return 0, 0, &frameError{pos, "reading: " + err.Error()}
	}
	typ = h[0]
	plen = int64(binary.LittleEndian.Uint32(h[4:]))
	switch typ {
	case frameHeader, frameWrite, framePrepared, frameCommitted, frameUndone:
	default:
		return 0, 0, &frameError{pos, fmt.Sprintf("unknown frame type %#02x", typ)}
	}
	if h[1]|h[2]|h[3] != 0 {
		return 0, 0, &frameError{pos, "reserved bytes not zero"}
	}
	if plen > p.size-pos-frameHead-frameTail {
		p.torn = true
		return 0, 0, &frameError{pos, fmt.Sprintf("payload of %d bytes runs past the end of the journal (%d bytes)", plen, p.size)}
	}
	crc := crc32.Update(0, castagnoli, h[:])
	for done := int64(0); done < plen; {
		n := min(int64(len(p.buf)), plen-done)
		if _, err := p.r.ReadAt(p.buf[:n], pos+frameHead+done); err != nil {
			return 0, 0, &frameError{pos, "reading payload: " + err.Error()}
		}
		crc = crc32.Update(crc, castagnoli, p.buf[:n])
		done += n
	}
	var t [frameTail]byte
	if _, err := p.r.ReadAt(t[:], pos+frameHead+plen); err != nil {
		return 0, 0, &frameError{pos, "reading crc: " + err.Error()}
	}
	if got := binary.LittleEndian.Uint32(t[:]); got != crc {
		p.crcEnd = pos + frameHead + plen + frameTail
		return 0, 0, &frameError{pos, fmt.Sprintf("crc %#08x, computed %#08x", got, crc)}
	}
	return typ, plen, nil
}

// plausible reports whether a version 3 frame of type typ may have a
// payload of plen bytes.
func plausible(typ byte, plen int64) bool {
	switch typ {
	case frameWrite:
		return plen >= writeFixed+unitFixed+1
	case framePrepared:
		return plen == preparedSize
	case frameCommitted:
		return plen == markSize
	case frameUndone:
		return plen == undoneSize
	}
	return false
}

// resync finds the first offset at or after from where a version 3
// frame verifies (and, for a 'W' frame, carries this journal's id), or -1.
// The checksumming it may do is bounded by p.budget: a hostile file full
// of frame-like headers cannot make it quadratic.
func (p *parser) resync(from int64) int64 {
	var win [64 << 10]byte
	for q := from; q <= p.size-frameHead-frameTail; {
		n := int(min(int64(len(win)), p.size-q))
		if m, err := p.r.ReadAt(win[:n], q); m < n && !(errors.Is(err, io.EOF) && m == n) {
			return -1
		}
		last := 0
		for i := 0; i+frameHead <= n; i++ {
			last = i
			b := win[i:]
			if b[1]|b[2]|b[3] != 0 {
				continue
			}
			typ, plen := b[0], int64(binary.LittleEndian.Uint32(b[4:]))
			at := q + int64(i)
			if !plausible(typ, plen) || plen > p.size-at-frameHead-frameTail {
				continue
			}
			p.budget -= plen + frameHead + frameTail
			if p.budget < 0 {
				return -1
			}
			if _, _, err := p.frame(at); err != nil {
				continue
			}
			if typ == frameWrite {
				var id [8]byte
				if _, err := p.r.ReadAt(id[:], at+frameHead+writeFixed-8); err != nil || binary.LittleEndian.Uint64(id[:]) != p.jid {
					continue
				}
			}
			return at
		}
		q += int64(last) + 1
	}
	return -1
}

// small reads a payload known to be small (already bounded by frame).
func (p *parser) small(pos, plen int64) ([]byte, error) {
	b := make([]byte, plen)
	if _, err := p.r.ReadAt(b, pos+frameHead); err != nil {
		return nil, &frameError{pos, "reading payload: " + err.Error()}
	}
	return b, nil
}

// apply interprets an intact frame, enforcing the frame order.
func (p *parser) apply(info *Info, typ byte, pos, plen int64) error {
	bad := func(format string, args ...any) error {
		return &frameError{pos, fmt.Sprintf("%c frame: ", typ) + fmt.Sprintf(format, args...)}
	}
	if !p.header && typ != frameHeader {
		return bad("before the header")
	}
	switch typ {
	case frameHeader:
		if p.header {
			return bad("second header")
		}
		if plen > maxHeader {
			return bad("%d bytes, more than %d", plen, maxHeader)
		}
		b, err := p.small(pos, plen)
		if err != nil {
			return err
		}
		h, err := decodeHeader(b)
		if err != nil {
			return bad("%v", err)
		}
		info.Header = h
		p.header, p.version, p.jid = true, h.Version, h.jid
		info.State = StatePlanned
		if p.version >= 3 {
			// A version 3 journal is renamed to its name only once its
			// plan mark is flushed: the file's existence proves it was
			// prepared, even if the mark itself is damaged later.
			info.State, info.Prepared, p.prepared = StateInterrupted, true, true
		}
	case frameWrite:
		if p.marked {
			return bad("after a mark")
		}
		if p.version >= 3 {
			return p.write3(info, pos, plen, bad)
		}
		return p.write2(info, pos, plen, bad)
	case framePrepared:
		if p.marked {
			return bad("after a mark")
		}
		return p.plan(info, pos, plen, bad)
	case frameCommitted:
		if !p.prepared {
			return bad("commit without a prepared plan")
		}
		if plen != markSize {
			return bad("%d bytes, want %d", plen, markSize)
		}
		b, err := p.small(pos, plen)
		if err != nil {
			return err
		}
		info.Committed = time.Unix(0, int64(binary.LittleEndian.Uint64(b))).UTC()
		info.State = StateCommitted
		p.marked = true
	case frameUndone:
		want := undoneSizeV2
		if p.version >= 3 {
			want = undoneSize
		}
		if plen != int64(want) {
			return bad("%d bytes, want %d", plen, want)
		}
		b, err := p.small(pos, plen)
		if err != nil {
			return err
		}
		n := func(i int) int { return int(binary.LittleEndian.Uint32(b[8+4*i:])) }
		u := &UndoCounts{
			Time:     time.Unix(0, int64(binary.LittleEndian.Uint64(b))).UTC(),
			Restored: n(0), Already: n(1), Changed: n(2), Lost: n(3),
		}
		if p.version >= 3 {
			u.Left, u.UnitsRestored, u.UnitsLeft = n(4), n(5), n(6)
		}
		info.LastUndo = u
		info.State = StateUndone
		p.marked = true
	}
	return nil
}

// write2 reads a version 1 or 2 'W' frame: offset, length, label, old
// bytes, new bytes.
func (p *parser) write2(info *Info, pos, plen int64, bad func(string, ...any) error) error {
	if plen < writeFixedV2 {
		return bad("%d bytes, fewer than %d", plen, writeFixedV2)
	}
	var fixed [writeFixedV2]byte
	if _, err := p.r.ReadAt(fixed[:], pos+frameHead); err != nil {
		return &frameError{pos, "reading payload: " + err.Error()}
	}
	off := int64(binary.LittleEndian.Uint64(fixed[0:]))
	n := int64(binary.LittleEndian.Uint32(fixed[8:]))
	ll := int64(binary.LittleEndian.Uint16(fixed[12:]))
	if off < 0 || n == 0 || n > maxRecord || off > (1<<62)-n {
		return bad("range %#x+%d out of bounds", uint64(off), n)
	}
	if plen != writeFixedV2+ll+2*n {
		return bad("payload %d bytes, label %d and range %d need %d", plen, ll, n, writeFixedV2+ll+2*n)
	}
	label := make([]byte, ll)
	if _, err := p.r.ReadAt(label, pos+frameHead+writeFixedV2); err != nil {
		return &frameError{pos, "reading label: " + err.Error()}
	}
	if err := p.hashPayload(pos, plen); err != nil {
		return err
	}
	info.Records = append(info.Records, Record{
		Index: len(info.Records), Off: off, Len: n, Label: string(label), pos: pos, size: plen, data: writeFixedV2 + ll,
	})
	info.Bytes += n
	return nil
}

// write3 reads a version 3 'W' frame (see writeFixed): the fixed part,
// the units (id u32, label length u16, label: a unit's label is given in
// the first frame that names the unit, later ones give length 0), then
// the old bytes (absent for a grown range) and the new bytes.
func (p *parser) write3(info *Info, pos, plen int64, bad func(string, ...any) error) error {
	if plen < writeFixed {
		return bad("%d bytes, fewer than %d", plen, writeFixed)
	}
	var fx [writeFixed]byte
	if _, err := p.r.ReadAt(fx[:], pos+frameHead); err != nil {
		return &frameError{pos, "reading payload: " + err.Error()}
	}
	le := binary.LittleEndian
	off := int64(le.Uint64(fx[0:]))
	n := int64(le.Uint32(fx[8:]))
	flags := le.Uint16(fx[12:])
	nunits := int(le.Uint16(fx[14:]))
	group := int(le.Uint32(fx[16:]))
	gidx := int(le.Uint32(fx[20:]))
	gcnt := int(le.Uint32(fx[24:]))
	jid := le.Uint64(fx[28:])
	if jid != p.jid {
		return bad("journal id %#x, the header's is %#x (a frame of another journal)", jid, p.jid)
	}
	if off < 0 || n == 0 || n > maxRecord || off > (1<<62)-n {
		return bad("range %#x+%d out of bounds", uint64(off), n)
	}
	if flags&^flagGrown != 0 || nunits == 0 || gcnt == 0 || gidx >= gcnt || group > 1<<30 {
		return bad("flags %#x, %d units, range %d of %d in group %d: invalid", flags, nunits, gidx, gcnt, group)
	}
	grown := flags&flagGrown != 0
	data := n
	if !grown {
		data = 2 * n
	}
	ulen := plen - writeFixed - data
	if ulen < int64(nunits)*unitFixed {
		return bad("payload %d bytes, too short for %d units and a range of %d", plen, nunits, n)
	}
	ub, err := p.small(pos+writeFixed, ulen) // small reads at pos+frameHead+writeFixed
	if err != nil {
		return err
	}
	units := make([]int, 0, nunits)
	for range nunits {
		if len(ub) < unitFixed {
			return bad("unit list runs past its end")
		}
		id := int(le.Uint32(ub))
		ll := int(le.Uint16(ub[4:]))
		if ll > maxString || ll > len(ub)-unitFixed || id > 1<<30 {
			return bad("unit %d: label of %d bytes, %d left", id, ll, len(ub)-unitFixed)
		}
		if ll > 0 {
			l := string(ub[unitFixed : unitFixed+ll])
			if old, ok := p.labels[id]; ok && old != "" && old != l {
				p.badUnit(id)
			}
			p.labels[id] = l
		} else if _, ok := p.labels[id]; !ok {
			p.labels[id] = ""
		}
		units = append(units, id)
		ub = ub[unitFixed+ll:]
	}
	if len(ub) != 0 {
		return bad("%d bytes after the unit list", len(ub))
	}
	if err := p.hashPayload(pos, plen); err != nil {
		return err
	}
	sort.Ints(units)
	info.Records = append(info.Records, Record{
		Index: len(info.Records), Off: off, Len: n, Units: units, Group: group, Grown: grown,
		pos: pos, size: plen, data: plen - data, gidx: gidx, gcnt: gcnt,
	})
	info.Bytes += n
	return nil
}

func (p *parser) badUnit(id int) {
	if p.badUnits == nil {
		p.badUnits = map[int]bool{}
	}
	p.badUnits[id] = true
}

// plan reads the 'P' frame: the plan's size and checksum. When the
// journal is intact up to it, they must match what was read; after damage
// they are what the plan held.
func (p *parser) plan(info *Info, pos, plen int64, bad func(string, ...any) error) error {
	want := preparedSizeV2
	if p.version >= 3 {
		want = preparedSize
	}
	if plen != int64(want) {
		return bad("%d bytes, want %d", plen, want)
	}
	b, err := p.small(pos, plen)
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	count := int(le.Uint32(b[0:]))
	total := int64(le.Uint64(b[4:]))
	sum := b[12:]
	groups, units := -1, -1
	if p.version >= 3 {
		groups, units = int(le.Uint32(b[12:])), int(le.Uint32(b[16:]))
		sum = b[20:]
	}
	if len(p.regions) == 0 {
		if count != len(info.Records) || total != info.Bytes {
			return bad("plan of %d ranges (%d bytes), journal holds %d (%d bytes)", count, total, len(info.Records), info.Bytes)
		}
		if !bytes.Equal(sum, p.sum.Sum(nil)) {
			return bad("plan checksum does not match the saved ranges")
		}
	}
	if p.version >= 3 {
		info.PlannedRanges, info.PlannedUnits, info.PlannedGroups = count, units, groups
	}
	info.State, info.Prepared = StateInterrupted, true
	p.marked, p.prepared, p.planMark = true, true, true
	return nil
}

// hashPayload feeds a 'W' payload to the plan hash.
func (p *parser) hashPayload(pos, plen int64) error {
	for done := int64(0); done < plen; {
		n := min(int64(len(p.buf)), plen-done)
		if _, err := p.r.ReadAt(p.buf[:n], pos+frameHead+done); err != nil {
			return &frameError{pos, "reading payload: " + err.Error()}
		}
		p.sum.Write(p.buf[:n])
		done += n
	}
	return nil
}

// damage records a damaged region [pos, end). torn says it looks like a
// torn append: a frame running past the end of the file, nothing but
// zeros from there on, or a frame failing its CRC with nothing but zeros
// after it (file systems may extend a file before a crash without writing
// all of its data).
func (p *parser) damage(info *Info, pos, end int64, err error, torn bool) {
	if info.Damage == nil {
		// Only a version 1 or 2 journal can be torn before its plan mark
		// by a crash; a version 3 one is named only once prepared.
		info.Damage, info.DamageAt, info.Torn = err, pos, torn && p.version < 3
		p.cut = torn
	}
	p.regions = append(p.regions, region{pos, end})
}

func (p *parser) zeroTail(pos int64) bool {
	for pos < p.size {
		n := min(int64(len(p.buf)), p.size-pos)
		if _, err := p.r.ReadAt(p.buf[:n], pos); err != nil && !(errors.Is(err, io.EOF) && pos+n == p.size) {
			return false
		}
		for _, c := range p.buf[:n] {
			if c != 0 {
				return false
			}
		}
		pos += n
	}
	return true
}

// finish works out units and groups, and turns damage into a
// *DamagedError saying what is still known.
func (p *parser) finish(info *Info) {
	if p.version >= 3 {
		if !p.planMark && info.Damage == nil {
			info.Damage = &frameError{info.End, "the journal ends before its plan mark"}
			info.DamageAt = info.End
			p.cut = true
			p.regions = append(p.regions, region{info.End, p.size})
		}
		p.groups3(info)
	} else {
		legacyGroups(info, info.Damage == nil || info.Torn)
	}
	if info.Damage == nil || info.Torn {
		return
	}
	kind := DamageFrames
	if p.cut && len(p.regions) == 1 {
		kind = DamageCut
	}
	de := &DamagedError{Kind: kind, At: info.DamageAt, Err: info.Damage, Version: p.version,
		PlannedUnits: info.PlannedUnits, Prepared: info.Prepared, Written: WrittenUnknown}
	de.Units = len(info.Units)
	for _, u := range info.Units {
		if info.Groups[groupIndex(info, u.Group)].Intact {
			de.UnitsIntact++
		}
	}
	if info.State == StateCommitted || info.State == StateUndone {
		de.Written = WrittenSome
	}
	info.Damage = de
}

// groupIndex returns the index in info.Groups of group id.
func groupIndex(info *Info, id int) int {
	return sort.Search(len(info.Groups), func(i int) bool { return info.Groups[i].ID >= id })
}

// groups3 builds units and groups from version 3 frames. A group is
// intact when every one of its ranges (the frames say how many) was read
// from a frame that verifies, and its frames agree with each other. A
// damaged frame can then belong to no intact group: ranges are numbered
// within their group, so a missing one shows.
func (p *parser) groups3(info *Info) {
	type gstate struct {
		count int
		seen  map[int]bool
		ok    bool
		units map[int]bool
		recs  []int
	}
	gs := map[int]*gstate{}
	unitGroup := map[int]int{}
	bad := map[int]bool{}
	for i := range info.Records {
		rec := &info.Records[i]
		g := gs[rec.Group]
		if g == nil {
			g = &gstate{count: rec.gcnt, seen: map[int]bool{}, ok: true, units: map[int]bool{}}
			gs[rec.Group] = g
		}
		if g.count != rec.gcnt || g.seen[rec.gidx] {
			g.ok = false
		}
		g.seen[rec.gidx] = true
		g.recs = append(g.recs, i)
		for _, u := range rec.Units {
			g.units[u] = true
			if og, ok := unitGroup[u]; ok && og != rec.Group {
				bad[og], bad[rec.Group] = true, true
			}
			unitGroup[u] = rec.Group
		}
	}
	for u := range p.badUnits {
		bad[unitGroup[u]] = true
	}
	ids := make([]int, 0, len(gs))
	for id := range gs {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	units := map[int]*UnitInfo{}
	for _, id := range ids {
		g := gs[id]
		gi := GroupInfo{ID: id, Ranges: g.recs, Intact: g.ok && !bad[id] && len(g.seen) == g.count}
		for u := range g.units {
			gi.Units = append(gi.Units, u)
			if units[u] == nil {
				units[u] = &UnitInfo{ID: u, Label: p.labels[u], Group: id}
			}
		}
		sort.Ints(gi.Units)
		info.Groups = append(info.Groups, gi)
	}
	for i := range info.Records {
		rec := &info.Records[i]
		for _, u := range rec.Units {
			units[u].Ranges = append(units[u].Ranges, i)
		}
		ls := make([]string, 0, len(rec.Units))
		for _, u := range rec.Units {
			ls = append(ls, p.labels[u])
		}
		rec.Label = joinLabels(ls)
	}
	for _, u := range units {
		info.Units = append(info.Units, *u)
	}
	sort.Slice(info.Units, func(a, b int) bool { return info.Units[a].ID < info.Units[b].ID })
}

// legacyGroups makes units and groups for a version 1 or 2 journal, which
// has none on disk: one unit per distinct label (a merged range's label
// lists every label merged into it, "a; b"; the parts of a large range
// carry " (part at +0x...)"), one per unlabelled range. Ranges of one
// unit, or sharing a 512-byte sector, are one group. A label saying "and
// N more" hides units: the whole journal is then one group. intact says
// whether the journal was read whole; if not, no group is intact (a lost
// range may belong to any unit).
func legacyGroups(info *Info, intact bool) {
	ids := map[string]int{}
	var labels []string
	whole := false
	for i := range info.Records {
		rec := &info.Records[i]
		rec.Units = nil
		for _, part := range splitLabels(rec.Label) {
			if k := strings.LastIndex(part, " (part at +0x"); k >= 0 && strings.HasSuffix(part, ")") {
				part = part[:k]
			}
			if strings.HasPrefix(part, "and ") && strings.HasSuffix(part, " more") {
				whole = true
				continue
			}
			id, ok := ids[part]
			if !ok {
				labels = append(labels, part)
				id = len(labels)
				ids[part] = id
			}
			rec.Units = append(rec.Units, id)
		}
		if len(rec.Units) == 0 {
			labels = append(labels, "")
			rec.Units = []int{len(labels)}
		}
		sort.Ints(rec.Units)
	}
	rs := make([]unitRange, len(info.Records))
	for i, rec := range info.Records {
		rs[i] = unitRange{off: rec.Off, end: rec.Off + rec.Len, units: rec.Units}
	}
	group := groupUnits(len(labels), rs, defaultBlock, whole)
	info.Units = make([]UnitInfo, len(labels))
	for u := range info.Units {
		info.Units[u] = UnitInfo{ID: u + 1, Label: labels[u], Group: group[u+1]}
	}
	ngroups := 0
	for _, g := range group {
		ngroups = max(ngroups, g+1)
	}
	info.Groups = make([]GroupInfo, ngroups)
	for g := range info.Groups {
		info.Groups[g] = GroupInfo{ID: g, Intact: intact}
	}
	for u := range info.Units {
		g := &info.Groups[info.Units[u].Group]
		g.Units = append(g.Units, u+1)
	}
	for i := range info.Records {
		rec := &info.Records[i]
		rec.Group = group[rec.Units[0]]
		info.Groups[rec.Group].Ranges = append(info.Groups[rec.Group].Ranges, i)
		for _, u := range rec.Units {
			info.Units[u-1].Ranges = append(info.Units[u-1].Ranges, i)
		}
	}
}

// splitLabels splits a merged range label into its parts.
func splitLabels(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "; ")
}
