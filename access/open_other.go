//go:build !linux && !windows

package access

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
)

// open opens read-only. Exclusive is refused: this system has no tested
// way here to tell a mounted or busy disk, and a write under a mounted file
// system destroys it.
func open(path string, mode Mode) (*File, error) {
	if mode&Exclusive != 0 {
		return nil, fmt.Errorf("access: %s: changing a target is supported on Linux and Windows only, not %s", path, runtime.GOOS)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("access: %s: %w", path, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("access: %s is a directory, not a disk image or device", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("access: opening %s: %w", path, err)
	}
	if st.Mode()&fs.ModeDevice == 0 {
		return &File{path: path, mode: mode, f: f, rw: f, size: st.Size()}, nil
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("access: %s: reading the device size: %w", path, err)
	}
	// Raw (character) devices on the BSDs and macOS refuse unaligned I/O;
	// the sector size is not known here, 512 is the common one.
	return &File{path: path, mode: mode, f: f, rw: newAlignedFile(f, 512), size: size, device: true}, nil
}

// InUse finds nothing here.
func InUse(string) ([]string, error) { return nil, nil }

func inUseAdvice(string) string { return "unmount it first" }

func dropCache(*os.File, bool) error { return nil }

// LockDir is not supported here (nothing is changed on this system).
func LockDir(dir, target string) (func() error, error) {
	return nil, errors.New("access: locking a journal directory is supported on Linux and Windows only")
}

// VolumePath returns path and false: devices are named by their nodes.
func VolumePath(path string) (string, bool) { return path, false }

// FixedVolumes returns nothing: drive letters exist on Windows only.
func FixedVolumes() ([]string, error) { return nil, nil }
