package offline

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// DirFS is a read-only, case-insensitive view of a directory where a
// Windows volume is mounted (ntfs-3g, a WinPE drive letter, an extracted
// tree). Windows paths are case-insensitive, but a Linux mount of the same
// volume, or a copied tree, may spell a name differently from the way
// Windows code asks for it ("System32" vs "system32"), so each path element
// is matched exactly first and otherwise by case-folded comparison with the
// directory's entries.
//
// It is built on os.Root, so symbolic links cannot lead outside the
// directory. Opened regular files are *os.File and so implement io.ReaderAt.
type DirFS struct {
	root *os.Root
}

// OpenDirFS opens dir as a DirFS. Close releases it.
func OpenDirFS(dir string) (*DirFS, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &DirFS{root: r}, nil
}

// Close releases the directory handle.
func (d *DirFS) Close() error { return d.root.Close() }

// resolve maps a valid fs path to the path as the directory spells it.
func (d *DirFS) resolve(op, name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return ".", nil
	}
	// Fast path: the exact spelling exists.
	if _, err := d.root.Lstat(name); err == nil {
		return name, nil
	}
	cur := "."
	for _, elem := range strings.Split(name, "/") {
		next := path.Join(cur, elem)
		if _, err := d.root.Lstat(next); err == nil {
			cur = next
			continue
		}
		f, err := d.root.Open(cur)
		if err != nil {
			return "", &fs.PathError{Op: op, Path: name, Err: err}
		}
		// A directory of a Windows volume can be large (WinSxS holds tens of
		// thousands of entries); read it in batches and stop at the match.
		found := ""
		for found == "" {
			ents, err := f.ReadDir(1024)
			for _, e := range ents {
				if strings.EqualFold(e.Name(), elem) {
					found = e.Name()
					break
				}
			}
			if err != nil || len(ents) == 0 {
				break
			}
		}
		f.Close()
		if found == "" {
			return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		cur = path.Join(cur, found)
	}
	return cur, nil
}

// Open implements fs.FS.
func (d *DirFS) Open(name string) (fs.File, error) {
	p, err := d.resolve("open", name)
	if err != nil {
		return nil, err
	}
	f, err := d.root.Open(p)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Stat implements fs.StatFS.
func (d *DirFS) Stat(name string) (fs.FileInfo, error) {
	p, err := d.resolve("stat", name)
	if err != nil {
		return nil, err
	}
	return d.root.Stat(p)
}

// ReadDir implements fs.ReadDirFS; entries are sorted by name.
func (d *DirFS) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := d.resolve("readdir", name)
	if err != nil {
		return nil, err
	}
	f, err := d.root.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return ents, err
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, nil
}
