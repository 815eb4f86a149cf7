package ntfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"
	"unicode/utf16"

	ftime "wuoffline/internal/filetime"
)

// FS returns a read-only io/fs view of the volume. Paths are fs.ValidPath
// ("Windows/System32/config/SYSTEM"), matched case-insensitively with the
// volume's $UpCase table by descending the directories' $I30 B-trees, so a
// lookup reads only the index blocks on its path. DOS (8.3) names match
// too, as on Windows. The result implements fs.StatFS and fs.ReadDirFS;
// opened regular files implement io.ReaderAt and io.Seeker.
//
// ReadDir lists every Win32 and POSIX name in the index, sorted by name as
// io/fs requires; it hides the separate DOS entry of a Win32+DOS pair, entries whose MFT
// record was reused (sequence mismatch) or is unreadable, and names that
// cannot be fs path elements ('/' or NUL inside, ".", "..", invalid
// UTF-16: see Volume.SkippedNames). The metadata files ($MFT, $Extend,
// ...) are listed like any other file. Reparse points (junctions,
// symbolic links) are reported with fs.ModeSymlink and are not followed.
func (v *Volume) FS() fs.FS { return &rdFS{v: v} }

// FileStat is what FileInfo.Sys returns for files of an NTFS volume.
type FileStat struct {
	Record     uint64 // MFT record number
	Sequence   uint16 // its sequence number
	Attributes uint32 // $STANDARD_INFORMATION file attributes (FILE_ATTRIBUTE_*)
	ShortName  string // the DOS 8.3 name in the same directory, if separate (ReadDir only)
	ReparseTag uint32 // reparse point tag, 0 if none
}

// File-name namespaces ($FILE_NAME @0x41).
const (
	rdNsPOSIX    = 0
	rdNsWin32    = 1
	rdNsDOS      = 2
	rdNsWin32DOS = 3
)

// rdMaxDepth bounds B-tree descent and directory nesting walked in one
// lookup: real B-trees of file names are a few levels deep; more means a
// loop or damage.
const rdMaxDepth = 64

type rdFS struct{ v *Volume }

// rdEntry is one $I30 index entry.
type rdEntry struct {
	ref   uint64 // MFT record number (48 bits)
	seq   uint16 // sequence number of the reference
	child int64  // VCN of the child node, -1 if none
	last  bool   // the END entry (no key)
	ns    byte
	name  []uint16
}

// rdIndex is a directory's $I30 index, ready to read nodes.
type rdIndex struct {
	v         *Volume
	rec       *rdRecord
	root      []rdEntry
	blockSize uint32
	alloc     *rdStream // nil when the index has no $INDEX_ALLOCATION
	vcnUnit   int64
}

func (v *Volume) openIndex(rec *rdRecord) (*rdIndex, error) {
	where := fmt.Sprintf("directory (MFT record %d): $I30", rec.num)
	a := rec.find(rdAttrTypeIndexRoot, "$I30")
	if a == nil {
		return nil, fmt.Errorf("ntfs: %s: no $INDEX_ROOT", where)
	}
	b, err := v.attrBytes(rec, a, rdMaxResident)
	if err != nil {
		return nil, err
	}
	// $INDEX_ROOT: indexed attribute type @0, collation rule @4, index
	// block size @8, clusters per block @12, node header @16.
	if len(b) < 32 {
		return nil, fmt.Errorf("ntfs: %s: $INDEX_ROOT of %d bytes is too short", where, len(b))
	}
	if t := le32(b); t != rdAttrTypeFileName {
		return nil, fmt.Errorf("ntfs: %s: $INDEX_ROOT indexes attribute 0x%x, not $FILE_NAME", where, t)
	}
	if c := le32(b[4:]); c != 1 {
		return nil, fmt.Errorf("ntfs: %s: collation rule %d, want 1 (file name)", where, c)
	}
	ix := &rdIndex{v: v, rec: rec, blockSize: le32(b[8:])}
	if ix.root, err = rdParseIndexNode(b[16:], 0, len(b)-16); err != nil {
		return nil, fmt.Errorf("ntfs: %s: $INDEX_ROOT: %w", where, err)
	}
	if aa := rec.find(rdAttrTypeIndexAlloc, "$I30"); aa != nil {
		if ix.blockSize < 512 || ix.blockSize > 65536 || !isPow2(ix.blockSize) {
			return nil, fmt.Errorf("ntfs: %s: index block size %d is not a power of two from 512 to 64 KiB", where, ix.blockSize)
		}
		if ix.alloc, err = v.stream(rec, aa); err != nil {
			return nil, err
		}
		// VCNs count clusters when a cluster is no larger than an index
		// block, else 512-byte units (formats.md, "INDX blocks").
		ix.vcnUnit = int64(v.boot.ClusterSize)
		if v.boot.ClusterSize > ix.blockSize {
			ix.vcnUnit = 512
		}
	}
	return ix, nil
}

// node reads the INDX block at vcn and returns its entries.
func (ix *rdIndex) node(vcn int64) ([]rdEntry, error) {
	where := fmt.Sprintf("directory (MFT record %d): $I30 block at VCN %d", ix.rec.num, vcn)
	if ix.alloc == nil {
		return nil, fmt.Errorf("ntfs: %s: entry has a child but there is no $INDEX_ALLOCATION", where)
	}
	if vcn < 0 || vcn > ix.alloc.size/ix.vcnUnit {
		return nil, fmt.Errorf("ntfs: %s: outside the allocation (%d bytes)", where, ix.alloc.size)
	}
	off := vcn * ix.vcnUnit
	if off+int64(ix.blockSize) > ix.alloc.size {
		return nil, fmt.Errorf("ntfs: %s: block at 0x%x runs past the allocation (%d bytes)", where, off, ix.alloc.size)
	}
	b := make([]byte, ix.blockSize)
	if _, err := ix.alloc.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("ntfs: %s: %w", where, err)
	}
	// INDX header: magic, USA offset @4 and count @6, LSN @8, own VCN
	// @16, node header @24.
	if string(b[:4]) != "INDX" {
		return nil, fmt.Errorf("ntfs: %s: no INDX signature", where)
	}
	usaOfs, usaCount := int(le16(b[4:])), int(le16(b[6:]))
	if usaCount != int(ix.blockSize)/rdLogBlockSize+1 || usaOfs < 0x28 || usaOfs+2*usaCount > rdLogBlockSize {
		return nil, fmt.Errorf("ntfs: %s: bad update sequence array (offset 0x%x, count %d)", where, usaOfs, usaCount)
	}
	if err := rdApplyFixups(b, usaOfs, usaCount); err != nil {
		return nil, fmt.Errorf("ntfs: %s: %w", where, err)
	}
	if own := int64(le64(b[16:])); own != vcn {
		return nil, fmt.Errorf("ntfs: %s: block says it is VCN %d", where, own)
	}
	entries, err := rdParseIndexNode(b[24:], 24, len(b)-24)
	if err != nil {
		return nil, fmt.Errorf("ntfs: %s: %w", where, err)
	}
	return entries, nil
}

// rdParseIndexNode decodes the entries of an index node whose header starts
// b (entries offset @0, used size @4, allocated size @8, flags @12, all
// relative to the header). base is only for error offsets; limit caps the
// used size.
func rdParseIndexNode(b []byte, base, limit int) ([]rdEntry, error) {
	if len(b) < 16 {
		return nil, fmt.Errorf("node header at 0x%x truncated", base)
	}
	start, used := int(le32(b)), int(le32(b[4:]))
	if start < 16 || start > used || used > limit || used > len(b) || start&7 != 0 {
		return nil, fmt.Errorf("node header at 0x%x: entries 0x%x..0x%x do not fit %d bytes", base, start, used, limit)
	}
	var out []rdEntry
	for off := start; ; {
		if off+16 > used {
			return nil, fmt.Errorf("entry at 0x%x: no END entry before 0x%x", base+off, base+used)
		}
		e := b[off:used]
		eLen, kLen, flags := int(le16(e[8:])), int(le16(e[10:])), le16(e[12:])
		if eLen < 16 || eLen&7 != 0 || eLen > len(e) {
			return nil, fmt.Errorf("entry at 0x%x: length %d invalid", base+off, eLen)
		}
		ent := rdEntry{child: -1, last: flags&2 != 0}
		if flags&1 != 0 {
			if eLen < 24 || 16+kLen > eLen-8 {
				return nil, fmt.Errorf("entry at 0x%x: no room for the child VCN", base+off)
			}
			ent.child = int64(le64(e[eLen-8:]))
			if ent.child < 0 {
				return nil, fmt.Errorf("entry at 0x%x: child VCN %d invalid", base+off, ent.child)
			}
		}
		if !ent.last {
			// The key is a $FILE_NAME value: name length @0x40, namespace
			// @0x41, UTF-16 name @0x42.
			if kLen < 0x42 || 16+kLen > eLen {
				return nil, fmt.Errorf("entry at 0x%x: key of %d bytes cannot hold a file name", base+off, kLen)
			}
			k := e[16 : 16+kLen]
			n := int(k[0x40])
			if 0x42+2*n > kLen {
				return nil, fmt.Errorf("entry at 0x%x: name of %d characters overflows its key", base+off, n)
			}
			ref := le64(e)
			ent.ref, ent.seq = ref&(1<<48-1), uint16(ref>>48)
			ent.ns = k[0x41]
			ent.name = make([]uint16, n)
			for i := range ent.name {
				ent.name[i] = le16(k[0x42+2*i:])
			}
		}
		out = append(out, ent)
		if ent.last {
			return out, nil
		}
		off += eLen
	}
}

// find descends the B-tree to the entry named name (compared with $UpCase,
// ignoring case). It returns nil when there is none.
func (ix *rdIndex) find(name []uint16) (*rdEntry, error) {
	up := ix.v.upcase
	entries := ix.root
	seen := map[int64]bool{}
	for depth := 0; ; depth++ {
		var next int64 = -1
		for i := range entries {
			e := &entries[i]
			if !e.last {
				c := up.CompareFold(name, e.name)
				if c == 0 {
					return e, nil
				}
				if c > 0 {
					continue
				}
			}
			next = e.child
			break
		}
		if next < 0 {
			return nil, nil
		}
		if seen[next] || depth >= rdMaxDepth {
			return nil, fmt.Errorf("ntfs: directory (MFT record %d): $I30 B-tree loops at VCN %d", ix.rec.num, next)
		}
		seen[next] = true
		var err error
		if entries, err = ix.node(next); err != nil {
			return nil, err
		}
	}
}

// all returns every entry of the index in B-tree (collation) order.
func (ix *rdIndex) all() ([]rdEntry, error) {
	var out []rdEntry
	seen := map[int64]bool{}
	var walk func(entries []rdEntry, depth int) error
	walk = func(entries []rdEntry, depth int) error {
		for _, e := range entries {
			if e.child >= 0 {
				if seen[e.child] || depth >= rdMaxDepth {
					return fmt.Errorf("ntfs: directory (MFT record %d): $I30 B-tree loops at VCN %d", ix.rec.num, e.child)
				}
				seen[e.child] = true
				sub, err := ix.node(e.child)
				if err != nil {
					return err
				}
				if err := walk(sub, depth+1); err != nil {
					return err
				}
			}
			if !e.last {
				out = append(out, e)
			}
		}
		return nil
	}
	if err := walk(ix.root, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// rdValidName reports whether an on-disk name can be an fs path element.
func rdValidName(u []uint16) (string, bool) {
	if len(u) == 0 || slices.Contains(u, 0) || slices.Contains(u, '/') {
		return "", false
	}
	s := string(utf16.Decode(u))
	if s == "." || s == ".." || !slices.Equal(utf16.Encode([]rune(s)), u) {
		return "", false
	}
	return s, true
}

// lookup resolves a valid path to its record and the name it has in its
// directory (the Win32/POSIX name even when a DOS name matched).
func (v *Volume) lookup(op, name string) (*rdRecord, string, error) {
	if !fs.ValidPath(name) {
		return nil, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	rec, err := v.record(rdRecordRoot, 0)
	if err != nil {
		return nil, "", &fs.PathError{Op: op, Path: name, Err: err}
	}
	if name == "." {
		return rec, ".", nil
	}
	base := ""
	for _, comp := range strings.Split(name, "/") {
		if !rec.isDir() {
			return nil, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		ix, err := v.openIndex(rec)
		if err != nil {
			return nil, "", &fs.PathError{Op: op, Path: name, Err: err}
		}
		e, err := ix.find(utf16.Encode([]rune(comp)))
		if err != nil {
			return nil, "", &fs.PathError{Op: op, Path: name, Err: err}
		}
		if e == nil {
			return nil, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		parent := rec.num
		if rec, err = v.record(e.ref, e.seq); err != nil {
			return nil, "", &fs.PathError{Op: op, Path: name, Err: err}
		}
		base = string(utf16.Decode(e.name))
		if e.ns == rdNsDOS {
			if long, ok := v.longName(rec, parent); ok {
				base = long
			}
		}
	}
	return rec, base, nil
}

// longName returns rec's Win32 or POSIX name in directory parent.
func (v *Volume) longName(rec *rdRecord, parent uint64) (string, bool) {
	for _, fn := range v.fileNames(rec) {
		if fn.parent == parent && fn.ns != rdNsDOS {
			if s, ok := rdValidName(fn.name); ok {
				return s, true
			}
		}
	}
	return "", false
}

type rdFileName struct {
	parent uint64
	ns     byte
	name   []uint16
}

// fileNames decodes rec's $FILE_NAME attributes, skipping damaged ones.
func (v *Volume) fileNames(rec *rdRecord) []rdFileName {
	var out []rdFileName
	for i := range rec.attrs {
		a := &rec.attrs[i]
		if a.typ != rdAttrTypeFileName || !a.resident {
			continue
		}
		b, err := v.attrBytes(rec, a, 0x42+2*255)
		if err != nil || len(b) < 0x42 || 0x42+2*int(b[0x40]) > len(b) {
			continue
		}
		fn := rdFileName{parent: le64(b) & (1<<48 - 1), ns: b[0x41], name: make([]uint16, b[0x40])}
		for j := range fn.name {
			fn.name[j] = le16(b[0x42+2*j:])
		}
		out = append(out, fn)
	}
	return out
}

// rdOnlyParent reports whether every name in fns is in directory parent
// (and there is at least one).
func rdOnlyParent(fns []rdFileName, parent uint64) bool {
	for _, fn := range fns {
		if fn.parent != parent {
			return false
		}
	}
	return len(fns) > 0
}

// rdInfo implements fs.FileInfo and fs.DirEntry.
type rdInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
	stat  *FileStat
}

func (i *rdInfo) Name() string               { return i.name }
func (i *rdInfo) Size() int64                { return i.size }
func (i *rdInfo) Mode() fs.FileMode          { return i.mode }
func (i *rdInfo) ModTime() time.Time         { return i.mtime }
func (i *rdInfo) IsDir() bool                { return i.mode.IsDir() }
func (i *rdInfo) Sys() any                   { return i.stat }
func (i *rdInfo) Type() fs.FileMode          { return i.mode.Type() }
func (i *rdInfo) Info() (fs.FileInfo, error) { return i, nil }
func (i *rdInfo) String() string             { return fs.FormatFileInfo(i) }

const (
	rdAttrTypeReparse = 0xC0
	// rdReparseTagNameSurrogate marks reparse tags that name another file
	// (junctions 0xA0000003, symbolic links 0xA000000C), unlike e.g. WOF
	// compression (0x80000017) whose file is still a regular file.
	rdReparseTagNameSurrogate = 0x20000000
	rdReparseTagWOF           = 0x80000017
)

// info builds the FileInfo of a record.
func (v *Volume) info(rec *rdRecord, name string) *rdInfo {
	fi := &rdInfo{name: name, stat: &FileStat{Record: rec.num, Sequence: rec.seq}}
	if a := rec.find(rdAttrTypeStandardInfo, ""); a != nil {
		// $STANDARD_INFORMATION: times @0 (created), @8 (modified),
		// file attributes @0x20.
		if b, err := v.attrBytes(rec, a, 72); err == nil && len(b) >= 0x24 {
			fi.mtime = ftime.ToTime(le64(b[8:]))
			fi.stat.Attributes = le32(b[0x20:])
		}
	}
	if a := rec.find(rdAttrTypeReparse, ""); a != nil && a.resident && a.size >= 4 {
		// $REPARSE_POINT: reparse tag @0.
		if b, err := v.attrBytes(rec, a, rdMaxResident); err == nil {
			fi.stat.ReparseTag = le32(b)
		}
	}
	switch {
	case fi.stat.ReparseTag&rdReparseTagNameSurrogate != 0:
		// Junctions and symbolic links name another file: not followed.
		fi.mode = fs.ModeSymlink | 0o444
	case rec.isDir():
		fi.mode = fs.ModeDir | 0o555
	default:
		fi.mode = 0o444
		if a := rec.find(rdAttrTypeData, ""); a != nil {
			fi.size = a.size
		}
	}
	return fi
}

// Open implements fs.FS.
func (f *rdFS) Open(name string) (fs.File, error) {
	rec, base, err := f.v.lookup("open", name)
	if err != nil {
		return nil, err
	}
	file := &rdFile{v: f.v, path: name, rec: rec, info: f.v.info(rec, base)}
	if file.info.stat.ReparseTag == rdReparseTagWOF {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("WOF-compressed (Compact OS) file: its data is in the WofCompressedData stream, which this reader does not decode")}
	}
	if !rec.isDir() {
		if a := rec.find(rdAttrTypeData, ""); a != nil {
			if file.data, err = f.v.stream(rec, a); err != nil {
				return nil, &fs.PathError{Op: "open", Path: name, Err: err}
			}
		}
	}
	return file, nil
}

// Stat implements fs.StatFS.
func (f *rdFS) Stat(name string) (fs.FileInfo, error) {
	rec, base, err := f.v.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	return f.v.info(rec, base), nil
}

// ReadDir implements fs.ReadDirFS.
func (f *rdFS) ReadDir(name string) ([]fs.DirEntry, error) {
	rec, _, err := f.v.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	list, err := f.v.readDir(name, rec)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return list, nil
}

// readDir lists a directory record (see FS for what is left out).
func (v *Volume) readDir(path string, rec *rdRecord) ([]fs.DirEntry, error) {
	if !rec.isDir() {
		return nil, errors.New("not a directory")
	}
	ix, err := v.openIndex(rec)
	if err != nil {
		return nil, err
	}
	entries, err := ix.all()
	if err != nil {
		return nil, err
	}
	var out []fs.DirEntry
	for _, e := range entries {
		if e.ns == rdNsDOS {
			continue
		}
		name, ok := rdValidName(e.name)
		if !ok {
			if !(len(e.name) == 1 && e.name[0] == '.' && e.ref == rec.num) { // the root's "." entry is expected
				v.noteSkipped(path, e.name)
			}
			continue
		}
		sub, err := v.record(e.ref, e.seq)
		if err != nil || sub.num == rec.num {
			v.noteSkipped(path, e.name)
			continue
		}
		fns := v.fileNames(sub)
		if sub.isDir() && !rdOnlyParent(fns, rec.num) {
			// NTFS has no hard links to directories: a directory listed
			// here whose $FILE_NAME names another parent is damage, and
			// following it could make a walk loop forever.
			v.noteSkipped(path, e.name)
			continue
		}
		fi := v.info(sub, name)
		for _, fn := range fns {
			if fn.parent == rec.num && fn.ns == rdNsDOS {
				fi.stat.ShortName = string(utf16.Decode(fn.name))
			}
		}
		out = append(out, fi)
	}
	// io/fs wants names in Go string order, not $UpCase collation order.
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// rdFile is an open file or directory.
type rdFile struct {
	v      *Volume
	path   string
	rec    *rdRecord
	info   *rdInfo
	data   *rdStream
	off    int64
	dir    []fs.DirEntry
	dirPos int
	dirErr error
	listed bool
	closed bool
}

var rdErrDirRead = errors.New("is a directory")

func (f *rdFile) Stat() (fs.FileInfo, error) { return f.info, nil }

func (f *rdFile) Close() error {
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.path, Err: fs.ErrClosed}
	}
	f.closed = true
	return nil
}

// ReadAt implements io.ReaderAt over the file's unnamed $DATA.
func (f *rdFile) ReadAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, &fs.PathError{Op: "read", Path: f.path, Err: fs.ErrClosed}
	}
	if f.info.IsDir() {
		return 0, &fs.PathError{Op: "read", Path: f.path, Err: rdErrDirRead}
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.path, Err: fs.ErrInvalid}
	}
	if f.data == nil || off >= f.data.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n, err := f.data.ReadAt(p, off)
	if err != nil && err != io.EOF {
		err = &fs.PathError{Op: "read", Path: f.path, Err: err}
	}
	return n, err
}

// Read implements io.Reader.
func (f *rdFile) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.off)
	f.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek implements io.Seeker.
func (f *rdFile) Seek(offset int64, whence int) (int64, error) {
	if f.closed {
		return 0, &fs.PathError{Op: "seek", Path: f.path, Err: fs.ErrClosed}
	}
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = f.off
	case io.SeekEnd:
		base = f.info.size
	default:
		return 0, &fs.PathError{Op: "seek", Path: f.path, Err: fs.ErrInvalid}
	}
	if base+offset < 0 {
		return 0, &fs.PathError{Op: "seek", Path: f.path, Err: fs.ErrInvalid}
	}
	f.off = base + offset
	return f.off, nil
}

// ReadDir implements fs.ReadDirFile.
func (f *rdFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if f.closed {
		return nil, &fs.PathError{Op: "readdir", Path: f.path, Err: fs.ErrClosed}
	}
	if !f.rec.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: f.path, Err: errors.New("not a directory")}
	}
	if !f.listed {
		f.listed = true
		f.dir, f.dirErr = f.v.readDir(f.path, f.rec)
		if f.dirErr != nil {
			f.dirErr = &fs.PathError{Op: "readdir", Path: f.path, Err: f.dirErr}
		}
	}
	if f.dirErr != nil {
		return nil, f.dirErr
	}
	rest := f.dir[f.dirPos:]
	if n <= 0 {
		f.dirPos = len(f.dir)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	f.dirPos += n
	return rest[:n], nil
}
