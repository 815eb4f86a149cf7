package hive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	ftime "github.com/wuoffline/wuoffline/internal/filetime"
)

// Editor changes a hive in place: it creates and deletes keys and sets and
// deletes values, keeping every structure as Windows keeps it (sorted
// subkey lists with lh hashes or lf hints, leaves split into an ri past
// Windows' limits, parent counts and maximum lengths, sk reference counts
// and the sk list, free cells merged, big data in db records in 1.4+
// hives).
//
// Edits are planned in memory over the hive's bytes (the Hive's reader sees
// them at once); Flush writes them, all through the one io.WriterAt given
// to NewEditor, the base block last. Ranges lists the bytes Flush will
// write, for dry runs. A dirty hive is edited on its recovered state, and
// the first Flush writes that state too. If an edit fails after it has
// started changing structures, the editor refuses every later call: the
// plan is discarded, nothing is written.
//
// An Editor is not safe for concurrent use, and the Hive must not be used
// by anything else while it is being edited.
type Editor struct {
	h        *Hive
	w        io.WriterAt
	grow     func(newSize int64) error
	view     *edView
	alloc    edAlloc
	binsSize uint32
	fileSize int64  // the primary file's size
	seq      uint32 // sequence number of the next base block written
	// recPending: the hive was recovered from logs and the recovered
	// state has not been written yet.
	recPending bool
	err        error // sticky: an edit failed half-way
	now        func() time.Time
	// carried: findings ("code|key path") the touched structures had
	// before the edits and that do not make them unsafe to change.
	carried map[string]bool
}

// NewEditor returns an editor of h, which was opened over the file that w
// writes. grow, if not nil, is called by Flush with the new file size (a
// multiple of 4096 above the current one) before anything is written
// beyond the end of the file; without it an edit that needs a new bin
// fails with ErrNoGrow. logs are the hive's transaction logs: those given
// to Open for a dirty hive are taken into account already, and a clean
// hive's logs are read only for their sequence numbers, which the written
// base block must exceed.
//
// A dirty hive that was not recovered (no usable log) is refused.
func NewEditor(h *Hive, w io.WriterAt, grow func(newSize int64) error, logs ...Log) (*Editor, error) {
	if h.dirty && !h.recovered {
		return nil, fmt.Errorf("hive: editor: %w: the hive is dirty and was not recovered from its logs; refusing to edit", ErrDirty)
	}
	if h.bins.lenient {
		return nil, fmt.Errorf("hive: editor: %w: untrusted hive-bins size", ErrDirty)
	}
	e := &Editor{
		h:        h,
		w:        w,
		grow:     grow,
		binsSize: h.base.HiveBinsSize,
		fileSize: h.srcSize,
		alloc:    edAlloc{enlisted: map[uint32]bool{}},
		carried:  map[string]bool{},
		now:      time.Now,
	}
	seq := max(h.base.Sequence1, h.base.Sequence2)
	if h.rec != nil {
		e.fileSize = h.rec.primarySize
		e.recPending = true
		seq = max(seq, h.rec.maxLogSequence)
	} else if len(logs) > 0 {
		// A clean hive's logs are not applied, but their sequence numbers
		// must stay below the one written, or Windows could chain a stale
		// entry onto the edited hive after a later crash.
		if rc, err := recoverHive(h.src, h.srcSize, logs); err == nil {
			seq = max(seq, rc.maxLogSequence)
		}
	}
	if seq == math.MaxUint32 {
		// The written sequence must be above every sequence in the hive and
		// its logs; past 0xFFFFFFFF it would wrap to 0 and stale log entries
		// would look newer than the edit (formats.md, "What an offline
		// writer must do"). Windows itself never gets there: refuse.
		return nil, fmt.Errorf("hive: editor: sequence number 0xffffffff in the base block or a log: no higher one can be written; refusing to edit")
	}
	e.seq = seq + 1
	if need := BaseBlockSize + int64(e.binsSize); need > h.dataEnd {
		// Nothing backs the bins the base block declares past the data:
		// they read as zeros, and the allocator would append after them.
		return nil, &DamagedError{Offset: NoOffset, Where: "base block",
			What: fmt.Sprintf("declares 0x%x bytes of hive bins, the file holds 0x%x", e.binsSize, max(h.dataEnd-BaseBlockSize, 0)),
			Err:  ErrTruncated}
	}
	// Neighbouring cells share pages: read each page of the source once.
	e.view = newEdView(newCheckCache(h.src, h.srcSize, editCacheSlots), h.srcSize)
	e.view.size = max(h.srcSize, BaseBlockSize+int64(e.binsSize))
	h.mu.Lock()
	h.src = e.view
	h.srcSize = e.view.size
	h.strict = true
	h.touched = newTouchSet()
	h.mu.Unlock()
	return e, nil
}

// Hive returns the hive being edited; its reader sees the planned edits.
func (e *Editor) Hive() *Hive { return e.h }

// SetClock sets the clock used for last-written times (time.Now by
// default), for reproducible output.
func (e *Editor) SetClock(now func() time.Time) { e.now = now }

// Sequence returns the sequence number the next Flush writes in both
// fields of the base block.
func (e *Editor) Sequence() uint32 { return e.seq }

// run runs one edit; a failure after the edit changed something poisons
// the editor.
func (e *Editor) run(op func() error) error {
	if e.err != nil {
		return fmt.Errorf("hive: editor: an earlier edit failed half-way: %w", e.err)
	}
	before := e.view.writes
	err := asDamaged(op())
	if err != nil && e.view.writes != before {
		e.err = err
	}
	return err
}

// splitPath splits a `\`-separated key path, ignoring empty components.
func splitPath(path string) []string {
	var out []string
	for _, n := range strings.Split(path, `\`) {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// Windows' limits on names (in UTF-16 code units).
const (
	maxKeyNameUnits   = 255
	maxValueNameUnits = 16383
)

// encodeName returns the stored form of a name: Latin-1 when every code
// unit is below 0x100 (then compressed is true), else UTF-16LE.
func encodeName(units []uint16) (b []byte, compressed bool) {
	compressed = true
	for _, u := range units {
		if u > 0xFF {
			compressed = false
			break
		}
	}
	if compressed {
		b = make([]byte, len(units))
		for i, u := range units {
			b[i] = byte(u)
		}
		return b, true
	}
	b = make([]byte, 2*len(units))
	for i, u := range units {
		binary.LittleEndian.PutUint16(b[2*i:], u)
	}
	return b, false
}

// CreateKey creates the key at path (below the root, `\`-separated) and
// every missing key above it, and returns it; an existing key is returned
// as it is. A new key has no class and shares its parent's security
// descriptor (whose reference count goes up).
func (e *Editor) CreateKey(path string) (*Key, error) {
	var k *Key
	err := e.run(func() error {
		var err error
		k, err = e.h.Root()
		if err != nil {
			return err
		}
		for _, name := range splitPath(path) {
			c, err := k.Subkey(name)
			if err == nil {
				k = c
				continue
			}
			if !errors.Is(err, ErrNotFound) {
				return err
			}
			if err := e.precheck(k); err != nil {
				return err
			}
			off, err := e.addSubkey(k, name)
			if err != nil {
				return err
			}
			if k, err = k.child(off); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// addSubkey creates the key node name under parent and links it.
func (e *Editor) addSubkey(parent *Key, name string) (uint32, error) {
	units := stringUnits(name)
	if len(units) == 0 || len(units) > maxKeyNameUnits || strings.ContainsRune(name, '\\') {
		return 0, parent.keyErr(fmt.Errorf("invalid key name %q (1 to %d characters, no backslash)", name, maxKeyNameUnits))
	}
	if parent.nk.flags&KeySymLink != 0 {
		return 0, parent.keyErr(fmt.Errorf("is a symbolic link; refusing to create %q under it", name))
	}
	// The parent's sk: checked before anything is written.
	skOff := parent.nk.security
	sk, err := e.h.readSK(skOff)
	if err != nil {
		return 0, parent.keyErr(err)
	}
	if err := e.checkSKLinks(skOff); err != nil {
		return 0, err
	}
	nameBytes, comp := encodeName(units)
	nk := make([]byte, nkFixedSize+len(nameBytes))
	copy(nk, "nk")
	le := binary.LittleEndian
	var flags uint16
	if comp {
		flags |= KeyCompName
	}
	now := ftime.FromTime(e.now())
	le.PutUint16(nk[nkOffFlags:], flags)
	le.PutUint64(nk[nkOffLastWrite:], now)
	le.PutUint32(nk[nkOffParent:], parent.off)
	le.PutUint32(nk[nkOffSubkeyList:], nilCell)
	le.PutUint32(nk[nkOffVolList:], nilCell)
	le.PutUint32(nk[nkOffValueList:], nilCell)
	le.PutUint32(nk[nkOffSecurity:], skOff)
	le.PutUint32(nk[nkOffClass:], nilCell)
	le.PutUint16(nk[nkOffNameLen:], uint16(len(nameBytes)))
	copy(nk[nkFixedSize:], nameBytes)
	off, err := e.allocCell(len(nk))
	if err != nil {
		return 0, err
	}
	if err := e.writeCell(off, nk); err != nil {
		return 0, err
	}
	if err := e.put32(skOff, skOffRefCount, sk.refCount+1); err != nil {
		return 0, err
	}
	e.h.touched.keys[off] = parent.childPath(name)
	e.h.touched.keys[parent.off] = parent.Path()
	e.h.touched.sks[skOff] = true
	list, err := e.listInsert(parent, off, units)
	if err != nil {
		return 0, parent.keyErr(err)
	}
	p := parent.off
	if err := e.put32(p, nkOffSubkeys, parent.nk.subkeyCount+1); err != nil {
		return 0, err
	}
	if err := e.put32(p, nkOffSubkeyList, list); err != nil {
		return 0, err
	}
	if l := uint32(len(units)) * 2; l > parent.nk.maxName&0xFFFF {
		// The high bits of this field carry flags (formats.md): keep them.
		if err := e.put32(p, nkOffMaxName, parent.nk.maxName&^0xFFFF|l); err != nil {
			return 0, err
		}
	}
	return off, e.touch(p)
}

// touch sets a key's last-written time.
func (e *Editor) touch(off uint32) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], ftime.FromTime(e.now()))
	return e.view.write(b[:], BaseBlockSize+int64(off)+cellSizeLen+nkOffLastWrite)
}

// DeleteKey deletes the key at path with its whole subtree: every cell of
// every key below it is freed, and the security descriptors they used lose
// a reference each (an sk no key uses any more is freed and unlinked from
// the sk list). The root cannot be deleted.
func (e *Editor) DeleteKey(path string) error {
	if len(splitPath(path)) == 0 {
		return fmt.Errorf("hive: editor: refusing to delete the root key")
	}
	k, err := e.h.OpenKey(path)
	if err != nil {
		return asDamaged(err)
	}
	return e.run(func() error {
		if k.off == e.h.base.RootCell || k.nk.flags&KeyHiveEntry != 0 {
			return k.keyErr(fmt.Errorf("is the root key; refusing to delete it"))
		}
		if k.nk.flags&KeyNoDelete != 0 {
			// Windows refuses too (KEY_NO_DELETE: STATUS_CANNOT_DELETE).
			return k.keyErr(fmt.Errorf("is flagged no-delete; refusing to delete it"))
		}
		parent, err := k.Parent()
		if err != nil {
			return err
		}
		if err := e.precheckTree(parent, k); err != nil {
			return err
		}
		e.h.touched.keys[parent.off] = parent.Path()
		list, err := e.listRemove(parent, k.off)
		if err != nil {
			return parent.keyErr(err)
		}
		if err := e.put32(parent.off, nkOffSubkeys, parent.nk.subkeyCount-1); err != nil {
			return err
		}
		if err := e.put32(parent.off, nkOffSubkeyList, list); err != nil {
			return err
		}
		if err := e.touch(parent.off); err != nil {
			return err
		}
		return e.freeTree(k, map[uint32]bool{}, 0)
	})
}

// freeTree frees key k and everything below it.
func (e *Editor) freeTree(k *Key, seen map[uint32]bool, depth int) error {
	if seen[k.off] {
		return k.keyErr(cellErr(k.off, "key node", ErrLoop, "key reached twice"))
	}
	seen[k.off] = true
	if depth > maxKeyDepth {
		return k.keyErr(cellErr(k.off, "key node", ErrLoop, "subkeys deeper than %d levels", maxKeyDepth))
	}
	if k.nk.subkeyCount > 0 {
		subs, err := k.Subkeys()
		if err != nil {
			return err
		}
		for _, c := range subs {
			if err := e.freeTree(c, seen, depth+1); err != nil {
				return err
			}
		}
		top, err := e.h.readList(k.nk.subkeyList)
		if err != nil {
			return k.keyErr(err)
		}
		if top.sig == "ri" {
			for _, l := range top.entries {
				if err := e.freeCell(l, "subkey list"); err != nil {
					return k.keyErr(err)
				}
			}
		}
		if err := e.freeCell(top.off, "subkey list"); err != nil {
			return k.keyErr(err)
		}
	}
	vals, err := k.Values()
	if err != nil {
		return err
	}
	for _, v := range vals {
		if err := e.freeValue(v); err != nil {
			return err
		}
	}
	if k.nk.valueCount > 0 {
		if err := e.freeCell(k.nk.valueList, "value list"); err != nil {
			return k.keyErr(err)
		}
	}
	if k.nk.classLen > 0 && k.nk.class != nilCell {
		if err := e.freeCell(k.nk.class, "class name"); err != nil {
			return k.keyErr(err)
		}
	}
	if err := e.releaseSK(k.nk.security); err != nil {
		return k.keyErr(err)
	}
	if err := e.freeCell(k.off, "key node"); err != nil {
		return k.keyErr(err)
	}
	return nil
}

// releaseSK drops one reference to the sk cell at off; at zero the cell is
// unlinked from the sk list and freed.
func (e *Editor) releaseSK(off uint32) error {
	sk, err := e.h.readSK(off)
	if err != nil {
		return err
	}
	e.h.touched.sks[off] = true
	if sk.refCount > 1 {
		return e.put32(off, skOffRefCount, sk.refCount-1)
	}
	if sk.flink == off || sk.blink == off {
		// The only sk of the hive: the root still uses it, so a count of
		// 1 here means the count was wrong; keep the cell.
		return e.put32(off, skOffRefCount, 0)
	}
	if _, err := e.h.readSK(sk.flink); err != nil {
		return err
	}
	if _, err := e.h.readSK(sk.blink); err != nil {
		return err
	}
	if err := e.put32(sk.blink, skOffFlink, sk.flink); err != nil {
		return err
	}
	if err := e.put32(sk.flink, skOffBlink, sk.blink); err != nil {
		return err
	}
	e.h.touched.sks[sk.blink] = true
	e.h.touched.sks[sk.flink] = true
	return e.freeCell(off, "security")
}

// findValue returns the index in the value list and the value called name.
func findValue(k *Key, name string) (int, *Value, []uint32, error) {
	offs, err := k.valueList()
	if err != nil {
		return 0, nil, nil, k.keyErr(err)
	}
	units := stringUnits(name)
	for i, off := range offs {
		v, err := k.readValue(off)
		if err != nil {
			return 0, nil, nil, k.keyErr(err)
		}
		if compareNames(v.vk.name, units) == 0 {
			return i, v, offs, nil
		}
	}
	return -1, nil, offs, nil
}

// SetValue sets value name ("" = the default value) of the key at keyPath
// to type t and data, creating the value if needed. The key must exist.
// The value's existing cells are reused when the new data fits them; data
// of up to 4 bytes is stored in the value node; data longer than 16344
// bytes goes into a db record in hives of version 1.4 and later.
func (e *Editor) SetValue(keyPath, name string, t ValueType, data []byte) error {
	units := stringUnits(name)
	if len(units) > maxValueNameUnits {
		return fmt.Errorf("hive: editor: value name of %d characters (at most %d)", len(units), maxValueNameUnits)
	}
	if uint64(len(data)) >= vkInlineBit {
		return fmt.Errorf("hive: editor: value data of %d bytes is too large", len(data))
	}
	k, err := e.h.OpenKey(keyPath)
	if err != nil {
		return asDamaged(err)
	}
	return e.run(func() error {
		if err := e.precheck(k); err != nil {
			return err
		}
		e.h.touched.keys[k.off] = k.Path()
		_, v, offs, err := findValue(k, name)
		if err != nil {
			return err
		}
		var old *vkRecord
		if v != nil {
			old = v.vk
		}
		dlen, doff, err := e.storeData(k, old, v, data)
		if err != nil {
			return err
		}
		if v != nil {
			if err := e.put32(v.off, vkOffDataLen, dlen); err != nil {
				return err
			}
			if err := e.put32(v.off, vkOffData, doff); err != nil {
				return err
			}
			if err := e.put32(v.off, vkOffType, uint32(t)); err != nil {
				return err
			}
		} else {
			nameBytes, comp := encodeName(units)
			vk := make([]byte, vkFixedSize+len(nameBytes))
			copy(vk, "vk")
			le := binary.LittleEndian
			le.PutUint16(vk[vkOffNameLen:], uint16(len(nameBytes)))
			le.PutUint32(vk[vkOffDataLen:], dlen)
			le.PutUint32(vk[vkOffData:], doff)
			le.PutUint32(vk[vkOffType:], uint32(t))
			if comp && len(units) > 0 {
				le.PutUint16(vk[vkOffFlags:], vkCompName)
			}
			copy(vk[vkFixedSize:], nameBytes)
			voff, err := e.allocCell(len(vk))
			if err != nil {
				return err
			}
			if err := e.writeCell(voff, vk); err != nil {
				return err
			}
			list := k.nk.valueList
			if len(offs) == 0 {
				list = nilCell
			}
			list, err = e.fitCell(list, 4*(len(offs)+1), "value list")
			if err != nil {
				return k.keyErr(err)
			}
			buf := make([]byte, 4*(len(offs)+1))
			for i, o := range append(offs, voff) {
				le.PutUint32(buf[4*i:], o)
			}
			if err := e.writeCell(list, buf); err != nil {
				return err
			}
			if err := e.put32(k.off, nkOffValues, uint32(len(offs)+1)); err != nil {
				return err
			}
			if err := e.put32(k.off, nkOffValueList, list); err != nil {
				return err
			}
			if l := uint32(len(units)) * 2; l > k.nk.maxValName {
				if err := e.put32(k.off, nkOffMaxValName, l); err != nil {
					return err
				}
			}
		}
		if l := uint32(len(data)); l > k.nk.maxValData {
			if err := e.put32(k.off, nkOffMaxValData, l); err != nil {
				return err
			}
		}
		return e.touch(k.off)
	})
}

// bigDataSlack is the spare room at the end of every big-data segment cell
// that Windows allocates (see storeData).
const bigDataSlack = 4

// dataCells describes where a value's data lives now.
type dataCells struct {
	cell  uint32   // single data cell, or the db cell; nilCell if inline/empty
	db    bool     // cell is a db record
	list  uint32   // db: segment list
	segs  []uint32 // db: segment cells
	total uint32
}

// valueCells returns the cells holding the data of value node vk (v).
func (e *Editor) valueCells(v *Value) (dataCells, error) {
	vk := v.vk
	dc := dataCells{cell: nilCell, list: nilCell}
	n := vk.length()
	if vk.isInline() || n == 0 {
		return dc, nil
	}
	d, err := e.h.cellData(vk.dataOff, "value data")
	if err != nil {
		return dc, v.err(err)
	}
	dc.cell = vk.dataOff
	if e.h.base.Minor >= 4 && n > bigDataSegment && len(d) >= 2 && d[0] == 'd' && d[1] == 'b' {
		segs, err := e.h.bigSegments(vk.dataOff, d, n)
		if err != nil {
			return dc, v.err(err)
		}
		dc.db, dc.list, dc.segs = true, leUint32(d[4:]), segs
	}
	return dc, nil
}

// freeData frees the cells of dc.
func (e *Editor) freeData(dc dataCells) error {
	if dc.cell == nilCell {
		return nil
	}
	if dc.db {
		for _, s := range dc.segs {
			if err := e.freeCell(s, "big data segment"); err != nil {
				return err
			}
		}
		if err := e.freeCell(dc.list, "big data segment list"); err != nil {
			return err
		}
	}
	return e.freeCell(dc.cell, "value data")
}

// freeValue frees a value node and its data.
func (e *Editor) freeValue(v *Value) error {
	dc, err := e.valueCells(v)
	if err != nil {
		return err
	}
	if err := e.freeData(dc); err != nil {
		return v.err(err)
	}
	if err := e.freeCell(v.off, "value"); err != nil {
		return v.err(err)
	}
	return nil
}

// storeData stores data for a value whose current node is old (nil for a
// new value) and returns the node's data-length and data-offset fields.
func (e *Editor) storeData(k *Key, old *vkRecord, v *Value, data []byte) (uint32, uint32, error) {
	dc := dataCells{cell: nilCell, list: nilCell}
	if old != nil {
		var err error
		if dc, err = e.valueCells(v); err != nil {
			return 0, 0, err
		}
	}
	n := len(data)
	if n <= 4 {
		// Inline (CM_KEY_VALUE_SMALL): the data in the offset field, the
		// length with the top bit set.
		if err := e.freeData(dc); err != nil {
			return 0, 0, err
		}
		var b [4]byte
		copy(b[:], data)
		return uint32(n) | vkInlineBit, binary.LittleEndian.Uint32(b[:]), nil
	}
	if e.h.base.Minor < 4 || n <= bigDataSegment {
		var off uint32
		var err error
		if dc.cell != nilCell && !dc.db {
			off, err = e.fitCell(dc.cell, n, "value data")
		} else {
			if err = e.freeData(dc); err == nil {
				off, err = e.allocCell(n)
			}
		}
		if err != nil {
			return 0, 0, err
		}
		return uint32(n), off, e.writeCell(off, data)
	}
	// Big data: a db record, a segment list and segments of 16344 bytes.
	count := (n + bigDataSegment - 1) / bigDataSegment
	if count > 0xFFFF {
		return 0, 0, fmt.Errorf("hive: editor: %d bytes need %d big-data segments (at most 65535)", n, count)
	}
	if dc.cell != nilCell && !dc.db {
		if err := e.freeCell(dc.cell, "value data"); err != nil {
			return 0, 0, err
		}
		dc = dataCells{cell: nilCell, list: nilCell}
	}
	segs := make([]uint32, count)
	for i := range segs {
		part := data[i*bigDataSegment : min(n, (i+1)*bigDataSegment)]
		cur := uint32(nilCell)
		if i < len(dc.segs) {
			cur = dc.segs[i]
		}
		// Every segment cell, the last one too, is allocated at full
		// size, 16344 bytes and 4 spare, as Windows does (its own big
		// data cells are all 16352 bytes); readers such as hivex count on
		// the 4 spare bytes.
		off, err := e.fitCell(cur, bigDataSegment+bigDataSlack, "big data segment")
		if err != nil {
			return 0, 0, err
		}
		if err := e.writeCell(off, part); err != nil {
			return 0, 0, err
		}
		segs[i] = off
	}
	for _, s := range dc.segs[min(len(dc.segs), count):] {
		if err := e.freeCell(s, "big data segment"); err != nil {
			return 0, 0, err
		}
	}
	list, err := e.fitCell(dc.list, 4*count, "big data segment list")
	if err != nil {
		return 0, 0, err
	}
	lb := make([]byte, 4*count)
	for i, s := range segs {
		binary.LittleEndian.PutUint32(lb[4*i:], s)
	}
	if err := e.writeCell(list, lb); err != nil {
		return 0, 0, err
	}
	db, err := e.fitCell(dc.cell, dbHeaderSize, "big data")
	if err != nil {
		return 0, 0, err
	}
	var hdr [dbHeaderSize]byte
	copy(hdr[:], "db")
	binary.LittleEndian.PutUint16(hdr[2:], uint16(count))
	binary.LittleEndian.PutUint32(hdr[4:], list)
	return uint32(n), db, e.writeCell(db, hdr[:])
}

// DeleteValue deletes value name ("" = the default value) of the key at
// keyPath; a missing value is an error wrapping ErrNotFound.
func (e *Editor) DeleteValue(keyPath, name string) error {
	k, err := e.h.OpenKey(keyPath)
	if err != nil {
		return asDamaged(err)
	}
	return e.run(func() error {
		if err := e.precheck(k); err != nil {
			return err
		}
		e.h.touched.keys[k.off] = k.Path()
		i, v, offs, err := findValue(k, name)
		if err != nil {
			return err
		}
		if v == nil {
			return &KeyError{Path: k.Path(), Value: name, Err: ErrNotFound}
		}
		if err := e.freeValue(v); err != nil {
			return err
		}
		offs = append(offs[:i], offs[i+1:]...)
		list := k.nk.valueList
		if len(offs) == 0 {
			if err := e.freeCell(list, "value list"); err != nil {
				return k.keyErr(err)
			}
			list = nilCell
		} else {
			buf := make([]byte, 4*len(offs))
			for j, o := range offs {
				binary.LittleEndian.PutUint32(buf[4*j:], o)
			}
			if err := e.writeCell(list, buf); err != nil {
				return err
			}
		}
		if err := e.put32(k.off, nkOffValues, uint32(len(offs))); err != nil {
			return err
		}
		if err := e.put32(k.off, nkOffValueList, list); err != nil {
			return err
		}
		return e.touch(k.off)
	})
}
