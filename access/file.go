package access

import (
	"fmt"
	"os"
)

// File is an opened target. Reads and writes are at file (or device)
// offsets.
type File struct {
	f      *os.File
	path   string
	size   int64
	sector int
	device bool
	mode   Mode
	unlock func()
}

// ReadAt implements io.ReaderAt.
func (f *File) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }

// WriteAt implements io.WriterAt; it fails unless opened Exclusive.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	if f.mode != Exclusive {
		return 0, fmt.Errorf("access: %s was opened read-only", f.path)
	}
	return f.f.WriteAt(p, off)
}

// Size is the file's size, or the device's, when it was opened.
func (f *File) Size() int64 { return f.size }

// SectorSize is a block device's logical sector size (0: unknown, a file).
func (f *File) SectorSize() int { return f.sector }

// Device reports whether the target is a block device.
func (f *File) Device() bool { return f.device }

// Path is the path given to Open.
func (f *File) Path() string { return f.path }

// Sync flushes writes to stable storage.
func (f *File) Sync() error {
	if f.mode != Exclusive {
		return nil
	}
	if err := f.f.Sync(); err != nil {
		return fmt.Errorf("access: %s: flushing writes: %w", f.path, err)
	}
	return nil
}

// Truncate changes a regular file's size (a container that grew, undone).
func (f *File) Truncate(n int64) error {
	if f.device {
		return fmt.Errorf("access: %s is a device: it cannot be truncated", f.path)
	}
	if f.mode != Exclusive {
		return fmt.Errorf("access: %s was opened read-only", f.path)
	}
	if err := f.f.Truncate(n); err != nil {
		return err
	}
	f.size = n
	return nil
}

// Close releases the lock and closes the file.
func (f *File) Close() error {
	if f.f == nil {
		return nil
	}
	if f.unlock != nil {
		f.unlock()
		f.unlock = nil
	}
	err := f.f.Close()
	f.f = nil
	return err
}
