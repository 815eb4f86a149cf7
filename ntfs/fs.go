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

	ftime "github.com/wuoffline/wuoffline/internal/filetime"
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

// rdMaxDepth bounds B-tree descent and directory nesting walked in one
// lookup: real B-trees of file names are a few levels deep; more means a
// loop or damage.
const rdMaxDepth = 64

type rdFS struct{ v *Volume }

// rdIndex is a directory's $I30 index, ready to read nodes. Its nodes are
// parsed by the writer's parsers (parseIndexRoot, parseIndx): one parser
// for the index on both sides.
type rdIndex struct {
	v         *Volume
	rec       *rdRecord
	root      []*ixEntry
	blockSize uint32
	alloc     *rdStream // nil when the index has no $INDEX_ALLOCATION
	vcnUnit   int64
}

func (v *Volume) openIndex(rec *rdRecord) (*rdIndex, error) {
	where := fmt.Sprintf("directory (MFT record %d): $I30", rec.num)
	a := rec.find(AttrIndexRoot, i30)
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
	if t := le32(b); t != AttrFileName {
		return nil, fmt.Errorf("ntfs: %s: $INDEX_ROOT indexes attribute 0x%x, not $FILE_NAME", where, t)
	}
	if c := le32(b[4:]); c != 1 {
		return nil, fmt.Errorf("ntfs: %s: collation rule %d, want 1 (file name)", where, c)
	}
	ix := &rdIndex{v: v, rec: rec, blockSize: le32(b[8:])}
	if ix.root, _, err = parseIndexRoot(b); err != nil {
		return nil, fmt.Errorf("ntfs: %s: %w", where, err)
	}
	if aa := rec.find(AttrIndexAllocation, i30); aa != nil {
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
func (ix *rdIndex) node(vcn int64) ([]*ixEntry, error) {
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
	n, err := parseIndx(b, vcn)
	if err != nil {
		return nil, fmt.Errorf("ntfs: %s: %w", where, err)
	}
	return n.entries, nil
}

// entryNS is an index entry's name space (its key is a $FILE_NAME value,
// which parseEntries checked holds at least the 0x42-byte header).
func entryNS(e *ixEntry) byte { return e.key[0x41] }

// find descends the B-tree to the entry named name (compared with $UpCase,
// ignoring case). It returns nil when there is none.
func (ix *rdIndex) find(name []uint16) (*ixEntry, error) {
	up := ix.v.upcase
	entries := ix.root
	seen := map[int64]bool{}
	for depth := 0; ; depth++ {
		var next int64 = -1
		for _, e := range entries {
			if !e.end {
				c := up.CompareFold(name, e.name)
				if c == 0 {
					return e, nil
				}
				if c > 0 {
					continue
				}
			}
			next = e.childVCN
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
func (ix *rdIndex) all() ([]*ixEntry, error) {
	var out []*ixEntry
	seen := map[int64]bool{}
	var walk func(entries []*ixEntry, depth int) error
	walk = func(entries []*ixEntry, depth int) error {
		for _, e := range entries {
			if e.childVCN >= 0 {
				if seen[e.childVCN] || depth >= rdMaxDepth {
					return fmt.Errorf("ntfs: directory (MFT record %d): $I30 B-tree loops at VCN %d", ix.rec.num, e.childVCN)
				}
				seen[e.childVCN] = true
				sub, err := ix.node(e.childVCN)
				if err != nil {
					return err
				}
				if err := walk(sub, depth+1); err != nil {
					return err
				}
			}
			if !e.end {
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

// fsValidName reports whether an on-disk name can be an fs path element.
func fsValidName(u []uint16) (string, bool) {
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
	rec, err := v.record(mftRecRoot, 0)
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
		if rec, err = v.record(RefNum(e.ref), RefSeq(e.ref)); err != nil {
			return nil, "", &fs.PathError{Op: op, Path: name, Err: err}
		}
		base = string(utf16.Decode(e.name))
		if entryNS(e) == NamespaceDOS {
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
		if RefNum(fn.parent) == parent && fn.ns != NamespaceDOS {
			if s, ok := fsValidName(fn.name); ok {
				return s, true
			}
		}
	}
	return "", false
}

// fileNames decodes rec's $FILE_NAME attributes with the writer's parser
// (parseFileName), skipping damaged ones.
func (v *Volume) fileNames(rec *rdRecord) []fileName {
	var out []fileName
	for i := range rec.attrs {
		a := &rec.attrs[i]
		if a.typ != AttrFileName || !a.resident {
			continue
		}
		b, err := v.attrBytes(rec, a, fnMinLen+2*255)
		if err != nil {
			continue
		}
		if fn, err := parseFileName(b); err == nil {
			out = append(out, fn)
		}
	}
	return out
}

// onlyParent reports whether every name in fns is in directory parent
// (and there is at least one).
func onlyParent(fns []fileName, parent uint64) bool {
	for _, fn := range fns {
		if RefNum(fn.parent) != parent {
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
	// rdReparseTagNameSurrogate marks reparse tags that name another file
	// (junctions 0xA0000003, symbolic links 0xA000000C), unlike e.g. WOF
	// compression (0x80000017) whose file is still a regular file.
	rdReparseTagNameSurrogate = 0x20000000
	rdReparseTagWOF           = 0x80000017
)

// info builds the FileInfo of a record.
func (v *Volume) info(rec *rdRecord, name string) *rdInfo {
	fi := &rdInfo{name: name, stat: &FileStat{Record: rec.num, Sequence: rec.seq}}
	if a := rec.find(AttrStandardInformation, ""); a != nil {
		// $STANDARD_INFORMATION: times @0 (created), @8 (modified),
		// file attributes @0x20.
		if b, err := v.attrBytes(rec, a, 72); err == nil && len(b) >= 0x24 {
			fi.mtime = ftime.ToTime(le64(b[8:]))
			fi.stat.Attributes = le32(b[0x20:])
		}
	}
	if a := rec.find(AttrReparsePoint, ""); a != nil && a.resident && a.size >= 4 {
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
		if a := rec.find(AttrData, ""); a != nil {
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
		if a := rec.find(AttrData, ""); a != nil {
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
		if entryNS(e) == NamespaceDOS {
			continue
		}
		name, ok := fsValidName(e.name)
		if !ok {
			if !(len(e.name) == 1 && e.name[0] == '.' && RefNum(e.ref) == rec.num) { // the root's "." entry is expected
				v.noteSkipped(path, e.name)
			}
			continue
		}
		sub, err := v.record(RefNum(e.ref), RefSeq(e.ref))
		if err != nil || sub.num == rec.num {
			v.noteSkipped(path, e.name)
			continue
		}
		fns := v.fileNames(sub)
		if sub.isDir() && !onlyParent(fns, rec.num) {
			// NTFS has no hard links to directories: a directory listed
			// here whose $FILE_NAME names another parent is damage, and
			// following it could make a walk loop forever.
			v.noteSkipped(path, e.name)
			continue
		}
		fi := v.info(sub, name)
		for _, fn := range fns {
			if RefNum(fn.parent) == rec.num && fn.ns == NamespaceDOS {
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
