//go:build !linux

package access

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Open opens the image file or device at path. Outside Linux this minimal
// version refuses read-only files and nothing else: no lock is taken.
func Open(path string, mode Mode) (*File, error) {
	flag := os.O_RDONLY
	if mode == Exclusive {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		if mode == Exclusive && errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("%w: %s: %v", ErrReadOnly, path, err)
		}
		return nil, err
	}
	af := &File{f: f, path: path, mode: mode}
	st, err := f.Stat()
	if err == nil && st.Mode().IsRegular() {
		af.size = st.Size()
	} else {
		af.device = true
		if af.size, err = f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return nil, err
		}
	}
	return af, nil
}

// DropCache does nothing here: the re-read uses new objects, so no cache
// of the program's own survives.
func (f *File) DropCache() error { return nil }

// LockDir makes sure the directory exists; no lock is taken here.
func LockDir(dir string) (func(), error) {
	if _, err := os.Stat(filepath.Clean(dir)); err != nil {
		return nil, err
	}
	return func() {}, nil
}

// InUse finds nothing outside Linux.
func InUse(path string) ([]string, error) { return nil, nil }
