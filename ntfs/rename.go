package ntfs

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"unicode/utf16"

	ftime "github.com/wuoffline/wuoffline/internal/filetime"
)

// File name namespaces ($FILE_NAME byte 0x41).
const (
	NamespacePOSIX    = 0
	NamespaceWin32    = 1
	NamespaceDOS      = 2
	NamespaceWin32DOS = 3
)

// fileAttrDirIndex is the $FILE_NAME/$STANDARD_INFORMATION flag Windows
// sets on directories: "has an $I30 index".
const fileAttrDirIndex = 0x10000000

// ErrExist is returned when the target name of a rename already exists.
var ErrExist = fs.ErrExist

// fileName is a decoded $FILE_NAME value.
type fileName struct {
	parent uint64
	ns     byte
	name   []uint16
	raw    []byte
	off    int    // attribute offset in its record
	in     uint64 // the record holding it (base or extension)
}

func parseFileName(v []byte) (fileName, error) {
	if len(v) < fnMinLen {
		return fileName{}, fmt.Errorf("$FILE_NAME of %d bytes", len(v))
	}
	n := int(v[0x40])
	if n == 0 || fnMinLen+2*n > len(v) {
		return fileName{}, fmt.Errorf("$FILE_NAME name of %d characters in %d bytes", n, len(v))
	}
	return fileName{parent: le64(v), ns: v[0x41], name: bytesToUTF16(v[fnMinLen : fnMinLen+2*n]), raw: append([]byte(nil), v[:fnMinLen+2*n]...)}, nil
}

// fileNames lists the record's $FILE_NAME attributes.
func (r *Record) fileNames() ([]fileName, error) {
	as, err := r.Attrs()
	if err != nil {
		return nil, err
	}
	var out []fileName
	for _, a := range as {
		if a.Type != AttrFileName {
			continue
		}
		if a.NonResident {
			return nil, fmt.Errorf("ntfs: MFT record %d: non-resident $FILE_NAME", r.Num)
		}
		fn, err := parseFileName(a.Value())
		if err != nil {
			return nil, fmt.Errorf("ntfs: MFT record %d: %w", r.Num, err)
		}
		fn.off, fn.in = a.Off, r.Num
		out = append(out, fn)
	}
	return out, nil
}

func encodeName(s string) []uint16 { return utf16.Encode([]rune(s)) }

// validWin32Name reports why a name cannot be a Win32 file name, or "".
func validWin32Name(u []uint16) string {
	if len(u) == 0 || len(u) > 255 {
		return "a name must have 1 to 255 UTF-16 code units"
	}
	s := string16(u)
	if s == "." || s == ".." {
		return "\".\" and \"..\" are not names"
	}
	for _, c := range u {
		if c < 0x20 || c == '"' || c == '*' || c == '/' || c == ':' || c == '<' || c == '>' || c == '?' || c == '\\' || c == '|' {
			return fmt.Sprintf("character U+%04X is not allowed in a Windows name", c)
		}
	}
	if last := u[len(u)-1]; last == '.' || last == ' ' {
		return "a Windows name cannot end with a dot or a space"
	}
	return ""
}

// dosChar reports whether c may appear in an 8.3 name as Windows writes
// them (upper case letters, digits and the DOS punctuation).
func dosChar(c uint16) bool {
	switch {
	case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '(', ')', '-', '@', '^', '_', '`', '{', '}', '~':
		return true
	}
	return false
}

// fits83 reports whether the name is already a valid upper-case 8.3 name,
// which Windows stores once in the Win32+DOS namespace.
func fits83(u []uint16) bool {
	dot := -1
	for i, c := range u {
		if c == '.' {
			if dot >= 0 {
				return false
			}
			dot = i
			continue
		}
		if !dosChar(c) {
			return false
		}
	}
	base, ext := len(u), 0
	if dot >= 0 {
		base, ext = dot, len(u)-dot-1
		if ext == 0 {
			return false
		}
	}
	return base >= 1 && base <= 8 && ext <= 3
}

// shortName generates a DOS name for long the way Windows NTFS does when
// it must make one (RtlGenerate8dot3Name): the characters of the base
// before the last dot and of the extension after it are kept when they
// are printable ASCII other than space and dot, upper-cased, with the
// characters DOS forbids turned into '_'; the first four candidates are
// the first six base characters with ~1 to ~4; from the fifth on, the
// first two base characters, four hexadecimal digits of a checksum of the
// long name and ~1, ~2, ... (a base of two characters or fewer gets the
// checksum at once). The index grows as far as it must, the base giving
// up characters so that the name stays within eight; the extension keeps
// its first three characters. taken tells whether a candidate exists in
// the directory already (compared case-insensitively by the caller).
func shortName(long []uint16, up *UpCase, taken func([]uint16) (bool, error)) ([]uint16, error) {
	whole := long // the checksum covers the whole name
	// The extension follows the last dot, unless that dot is the first
	// character (".hidden file" has none) or the last.
	lastDot := len(long)
	for i, c := range long {
		if c == '.' && i > 0 && i < len(long)-1 {
			lastDot = i
		}
	}
	keep := func(part []uint16, max int) []uint16 {
		var out []uint16
		for _, c := range part {
			if len(out) == max {
				break
			}
			if c <= ' ' || c == '.' || c >= 127 {
				continue
			}
			if c = up.Upper(c); !dosChar(c) {
				c = '_'
			}
			out = append(out, c)
		}
		return out
	}
	base := keep(long[:lastDot], 6)
	var ext []uint16
	if lastDot < len(long) {
		ext = keep(long[lastDot+1:], 3)
	}
	hashed := false
	if len(base) <= 2 {
		base = append(base, shortNameHash(whole)...)
		hashed = true
	}
	k := 0
	for tries := 0; tries < 1000000; tries++ {
		k++
		if k == 5 && !hashed {
			// Four plain candidates taken: the hashed form, from ~1 again.
			base = append(base[:2:2], shortNameHash(whole)...)
			hashed, k = true, 1
		}
		suffix := encodeName("~" + strconv.Itoa(k))
		cand := append(append([]uint16(nil), base[:min(len(base), 8-len(suffix))]...), suffix...)
		if len(ext) > 0 {
			cand = append(append(cand, '.'), ext...)
		}
		t, err := taken(cand)
		if err != nil {
			return nil, err
		}
		if !t {
			return cand, nil
		}
	}
	return nil, errors.New("ntfs: no free short name")
}

// shortNameHash is the four hexadecimal digits, low nibble first, of the
// checksum Windows (7 and later) puts into hashed short names
// (RtlComputeLfnChecksum): a 16-bit polynomial hash of the long name's
// UTF-16 code units, base 37, scrambled as a signed 32-bit product with
// 314159269, made positive and taken modulo 1000000007.
func shortNameHash(name []uint16) []uint16 {
	var sum uint16
	for _, c := range name {
		sum = sum*37 + c
	}
	p := int32(uint32(sum) * 314159269) // wraps as the 32-bit product does
	if p < 0 {
		p = -p // -MinInt32 stays MinInt32, as abs does in 32 bits
	}
	h := uint16(p % 1000000007)
	out := make([]uint16, 4)
	for i := range out {
		d := h & 0xF
		if d > 9 {
			out[i] = 'A' + d - 10
		} else {
			out[i] = '0' + d
		}
		h >>= 4
	}
	return out
}

// buildFileName makes a $FILE_NAME value from a template with a new parent,
// name and namespace.
func buildFileName(tmpl []byte, parent uint64, name []uint16, ns byte) []byte {
	v := make([]byte, fnMinLen+2*len(name))
	copy(v, tmpl[:fnMinLen])
	putLE64(v, parent)
	v[0x40] = byte(len(name))
	v[0x41] = ns
	copy(v[fnMinLen:], utf16ToBytes(name))
	return v
}

// PlanRename returns the byte ranges Rename would write, writing nothing.
func (w *Writer) PlanRename(oldPath, newPath string) ([]Range, error) {
	t := w.begin()
	if err := t.rename(oldPath, newPath); err != nil {
		return nil, err
	}
	if err := t.flush(); err != nil {
		return nil, err
	}
	return t.o.ranges(), nil
}

// Rename renames or moves a file or directory within the volume, the way
// ntfs-3g and Windows do: every old name (the Win32 name with its DOS
// partner, or the single name) and its index entry is removed, the new
// name is added as a Win32 name (with a generated DOS name when the file
// had one and the new name is not 8.3, or as one Win32+DOS name when it
// is), link count, parent reference and the duplicated information in the
// index entry are updated, and the parents' times are set. Paths are
// relative to the volume root, with `\` or `/`. It returns the ranges
// written.
func (w *Writer) Rename(oldPath, newPath string) ([]Range, error) {
	t := w.begin()
	if err := t.rename(oldPath, newPath); err != nil {
		return nil, err
	}
	if err := t.flush(); err != nil {
		return nil, err
	}
	rs := t.o.ranges()
	return rs, w.commit(t)
}

func (t *tx) rename(oldPath, newPath string) error {
	where := fmt.Sprintf("ntfs: rename %q to %q", oldPath, newPath)
	oldNums, err := t.resolve(oldPath)
	if err != nil {
		return t.pathDamage(oldPath, err)
	}
	if len(oldNums) < 2 {
		return fmt.Errorf("%s: cannot rename the root directory", where)
	}
	child, oldParent := oldNums[len(oldNums)-1], oldNums[len(oldNums)-2]
	if child < 24 {
		return fmt.Errorf("%s: record %d is a file system metadata file", where, child)
	}
	oldParts := splitPath(oldPath)
	oldName := encodeName(oldParts[len(oldParts)-1])
	newParts := splitPath(newPath)
	if len(newParts) == 0 {
		return fmt.Errorf("%s: empty target", where)
	}
	newName := encodeName(newParts[len(newParts)-1])
	if why := validWin32Name(newName); why != "" {
		return fmt.Errorf("%s: %s", where, why)
	}
	parentNums := []uint64{mftRecRoot}
	if len(newParts) > 1 {
		if parentNums, err = t.resolve(joinParts(newParts[:len(newParts)-1])); err != nil {
			return t.pathDamage(newPath, err)
		}
	}
	newParent := parentNums[len(parentNums)-1]
	for _, n := range parentNums {
		if n == child {
			return fmt.Errorf("%s: cannot move a directory into itself", where)
		}
	}
	np, err := t.record(newParent)
	if err != nil {
		return err
	}
	if !np.IsDir() {
		return fmt.Errorf("%s: target parent is not a directory", where)
	}
	rec, err := t.record(child)
	if err != nil {
		return err
	}
	al, err := t.attrList(rec)
	if err != nil {
		return err
	}
	ntree, err := t.tree(newParent)
	if err != nil {
		return err
	}
	if e, err := ntree.lookup(newName); err != nil {
		return t.indexDamage(newParent, err)
	} else if e != nil && (RefNum(e.ref) != child || newParent != oldParent) {
		return fmt.Errorf("%s: %q already exists: %w", where, string16(newName), ErrExist)
	}

	// The names to remove: the one the path named and its partner, in the
	// base record or in extension records (a file with many hard links
	// keeps names there).
	recs, err := t.fileRecords(rec)
	if err != nil {
		return err
	}
	var fns []fileName
	for _, fr := range recs {
		x, err := fr.fileNames()
		if err != nil {
			return err
		}
		fns = append(fns, x...)
	}
	match := -1
	for i, fn := range fns {
		if RefNum(fn.parent) != oldParent {
			continue
		}
		if t.up.Compare(fn.name, oldName) == 0 {
			match = i
			break
		}
		if match < 0 && t.up.EqualFold(fn.name, oldName) {
			match = i
		}
	}
	if match < 0 {
		return fmt.Errorf("%s: record %d has no $FILE_NAME %q in directory %d", where, child, string16(oldName), oldParent)
	}
	remove := []fileName{fns[match]}
	var partner byte = 0xFF
	switch fns[match].ns {
	case NamespaceWin32:
		partner = NamespaceDOS
	case NamespaceDOS:
		partner = NamespaceWin32
	}
	for i, fn := range fns {
		if i != match && fn.ns == partner && RefNum(fn.parent) == oldParent {
			remove = append(remove, fn)
		}
	}
	tmpl := remove[0]
	hadDOS := false
	for _, fn := range remove {
		if fn.ns == NamespaceWin32 || fn.ns == NamespaceWin32DOS {
			tmpl = fn
		}
		if fn.ns == NamespaceDOS || fn.ns == NamespaceWin32DOS {
			hadDOS = true
		}
	}
	otree, err := t.tree(oldParent)
	if err != nil {
		return err
	}
	for _, fn := range remove {
		if err := otree.remove(fn.name, rec.Ref()); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	drop := map[alKey]bool{}
	for _, fn := range remove {
		fr, err := t.record(fn.in)
		if err != nil {
			return err
		}
		drop[alKey{fn.in, le16(fr.Data[fn.off+0xE:])}] = true
	}
	// Remove the attributes from the highest offset down so that the
	// offsets of the others in the same record stay valid.
	sort.Slice(remove, func(i, j int) bool {
		if remove[i].in != remove[j].in {
			return remove[i].in < remove[j].in
		}
		return remove[i].off > remove[j].off
	})
	for _, fn := range remove {
		fr, err := t.record(fn.in)
		if err != nil {
			return err
		}
		if err := fr.RemoveAttr(fn.off); err != nil {
			return err
		}
		t.dirty(fr)
		if fr.Num != rec.Num {
			if left, err := fr.Attrs(); err == nil && len(left) == 0 {
				if err := t.freeExtensionRecord(fr); err != nil {
					return err
				}
			}
		}
	}

	now := ftime.FromTime(t.w.now())
	tmplRaw := t.refreshDupInfo(rec, tmpl.raw, now)
	parentRef := MakeRef(newParent, np.Seq())
	type add struct {
		name []uint16
		ns   byte
	}
	var adds []add
	switch {
	case !hadDOS:
		adds = []add{{newName, NamespaceWin32}}
	case fits83(newName):
		adds = []add{{newName, NamespaceWin32DOS}}
	case fits83(upcaseAll(t.up, newName)):
		// A valid 8.3 name in lower or mixed case needs no short name:
		// Windows stores it once, as a Win32 name (dir /x shows none).
		adds = []add{{newName, NamespaceWin32}}
	default:
		short, err := shortName(newName, t.up, func(c []uint16) (bool, error) {
			e, err := ntree.lookup(c)
			return e != nil, err
		})
		if err != nil {
			return err
		}
		adds = []add{{newName, NamespaceWin32}, {short, NamespaceDOS}}
	}
	var added []uint16
	for _, a := range adds {
		v := buildFileName(tmplRaw, parentRef, a.name, a.ns)
		off, err := rec.InsertResident(AttrFileName, "", v, true)
		if errors.Is(err, ErrNeedsAttributeList) {
			// The record is full: other attributes move to an extension
			// record, as Windows moves them, and the name goes in.
			if err = t.makeRoom(rec, align8(0x18+len(v))); err == nil {
				off, err = rec.InsertResident(AttrFileName, "", v, true)
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		added = append(added, le16(rec.Data[off+0xE:]))
		if err := ntree.insert(rec.Ref(), v); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	if _, hasAL, _ := rec.FindAttr(AttrAttributeList, ""); al != nil || hasAL {
		as, err := rec.Attrs()
		if err != nil {
			return err
		}
		var newAttrs []Attr
		for _, a := range as {
			for _, id := range added {
				if a.Type == AttrFileName && a.ID == id {
					newAttrs = append(newAttrs, a)
				}
			}
		}
		if err := t.syncAttrList(rec, drop, newAttrs); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	links := int(rec.LinkCount()) - len(remove) + len(adds)
	if links < 1 {
		links = len(adds)
	}
	rec.SetLinkCount(uint16(links))
	t.setChangeTime(rec, now, false)
	t.dirty(rec)
	for _, d := range []uint64{oldParent, newParent} {
		pr, err := t.record(d)
		if err != nil {
			return err
		}
		t.setChangeTime(pr, now, true)
		t.dirty(pr)
	}
	return nil
}

func joinParts(p []string) string {
	s := ""
	for i, x := range p {
		if i > 0 {
			s += "/"
		}
		s += x
	}
	return s
}

// setChangeTime sets $STANDARD_INFORMATION's MFT change time (0x10), and
// for a directory whose contents changed also its modification time (0x08).
func (t *tx) setChangeTime(rec *Record, ft uint64, modified bool) {
	a, ok, err := rec.FindAttr(AttrStandardInformation, "")
	if err != nil || !ok || a.NonResident {
		return
	}
	v := a.Value()
	if len(v) < 0x20 {
		return
	}
	putLE64(v[0x10:], ft)
	if modified {
		putLE64(v[0x08:], ft)
	}
}

// refreshDupInfo returns the $FILE_NAME template with the duplicated
// information brought up to date from the record: the four times and the
// file attributes from $STANDARD_INFORMATION (with the new MFT change
// time), and for files the sizes of the unnamed $DATA.
func (t *tx) refreshDupInfo(rec *Record, tmpl []byte, now uint64) []byte {
	v := append([]byte(nil), tmpl...)
	if a, ok, err := rec.FindAttr(AttrStandardInformation, ""); err == nil && ok && !a.NonResident && len(a.Value()) >= 0x24 {
		si := a.Value()
		copy(v[0x08:0x28], si[0x00:0x20])
		putLE64(v[0x18:], now)
		fa := le32(si[0x20:])
		if rec.IsDir() {
			fa |= fileAttrDirIndex
		}
		putLE32(v[0x38:], fa)
	}
	if !rec.IsDir() {
		// With an $ATTRIBUTE_LIST the sizes are in the extent of lowest
		// VCN 0, which may be in an extension record.
		if dr, a, n, err := t.findAttrAny(rec, AttrData, ""); err == nil && n > 0 && dr != nil {
			if a.NonResident {
				alloc := a.AllocSize()
				if a.Flags&(AttrFlagCompressed|AttrFlagSparse) != 0 && a.Len >= 0x48 {
					alloc = int64(le64(dr.Data[a.Off+0x40:]))
				}
				putLE64(v[0x28:], uint64(alloc))
				putLE64(v[0x30:], uint64(a.DataSize()))
			} else {
				putLE64(v[0x28:], uint64(align8(int(a.Size()))))
				putLE64(v[0x30:], uint64(a.Size()))
			}
		}
	}
	return v
}

func upcaseAll(up *UpCase, u []uint16) []uint16 {
	out := make([]uint16, len(u))
	for i, c := range u {
		out[i] = up.Upper(c)
	}
	return out
}
