// Package access opens the bytes of a TARGET (a disk or volume image file, a
// block device, or on Windows a volume named by its drive letter) and, for a
// change, makes sure nobody else is using them.
//
// Read opens shared and read-only. Exclusive opens read-write and refuses,
// before anything is written, what would make a write unsafe:
//
//   - a read-only device or file (ErrReadOnly): a write-protected disk, a
//     loop device attached with `losetup -r`, a file without write
//     permission, on a read-only mount or immutable;
//   - a target in use (*InUseError): mounted, or reached through another
//     path that is in use. On Linux this is decided by device number and
//     inode, never by comparing path strings: a hard link to a mounted image,
//     a loop device over the same file, a partition of the disk or the disk
//     holding the partition, and a device-mapper or RAID holder all count;
//   - another wuoffline holding it (ErrLocked).
//
// On Linux a block device is opened with O_EXCL (the kernel then refuses
// the open while anything has it mounted or claimed, and refuses any mount
// while we hold it) and locked with flock on its node; an image file is
// locked with flock. On Windows a volume is locked with FSCTL_LOCK_VOLUME and
// dismounted with FSCTL_DISMOUNT_VOLUME; an image file is opened without
// sharing write access. Every lock is held until Close (and the kernel drops
// it when the process dies), so every exit path releases it.
package access

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Mode says how Open opens a target.
type Mode int

// The modes. Read|Exclusive is the same as Exclusive.
const (
	// Read opens for reading only, sharing the target with everybody.
	Read Mode = 0
	// Exclusive opens for reading and writing, with every refusal of the
	// package checked and the target locked until Close.
	Exclusive Mode = 1
)

// ErrReadOnly is returned (wrapped, with the reason) by an Exclusive open of
// a target that cannot be written.
var ErrReadOnly = errors.New("read-only")

// ErrLocked is returned (wrapped) by an Exclusive open of a target another
// wuoffline (or any program using the same lock) holds.
var ErrLocked = errors.New("locked by another wuoffline")

// InUseError is returned by an Exclusive open of a target that something else
// uses: Users says what, one entry each ("/dev/loop1p2 mounted on /mnt").
type InUseError struct {
	Path  string
	Users []string
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("access: %s is in use: %s; %s", e.Path, strings.Join(e.Users, "; "), e.Advice())
}

// Advice says what the user can do about it, for this platform: unmount or
// detach on Linux; on Windows close what has files open on the volume, or
// repair it through the mounted file system.
func (e *InUseError) Advice() string { return inUseAdvice(e.Path) }

// File is an opened target. Reads and writes of a device are sector-aligned
// underneath when the platform requires it; callers use any offset and
// length.
type File struct {
	path   string
	mode   Mode
	f      *os.File // the handle
	rw     handle   // f, or f behind an alignedFile
	size   int64
	sector int
	device bool
	unlock func() error // releases what the platform locked besides f; nil when nothing
	closed bool
}

// handle is what File needs of its (possibly aligned) handle.
type handle interface {
	io.ReaderAt
	io.WriterAt
}

// Open opens the target at path with the given mode. See the package
// documentation for what Exclusive refuses.
func Open(path string, mode Mode) (*File, error) {
	if path == "" {
		return nil, errors.New("access: no target given")
	}
	return open(path, mode)
}

// ReadAt reads len(p) bytes at off.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, fmt.Errorf("access: %s: read after close", f.path)
	}
	return f.rw.ReadAt(p, off)
}

// WriteAt writes p at off. It fails unless the File was opened Exclusive. A
// device cannot grow: a write past its end is refused whole.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	switch {
	case f.closed:
		return 0, fmt.Errorf("access: %s: write after close", f.path)
	case f.mode&Exclusive == 0:
		return 0, fmt.Errorf("access: %s was opened read-only", f.path)
	case off < 0:
		return 0, fmt.Errorf("access: %s: write at negative offset %d", f.path, off)
	case f.device && (off > f.size || int64(len(p)) > f.size-off):
		return 0, fmt.Errorf("access: %s: write of %d bytes at %d is past the device's end (%d bytes); nothing written", f.path, len(p), off, f.size)
	}
	n, err := f.rw.WriteAt(p, off)
	if !f.device && off+int64(n) > f.size {
		f.size = off + int64(n)
	}
	return n, err
}

// Size returns the target's size in bytes (a regular file's current size,
// including what WriteAt and Truncate changed).
func (f *File) Size() int64 { return f.size }

// SectorSize returns the device's logical sector size, or 0 when unknown
// (and for regular files).
func (f *File) SectorSize() int { return f.sector }

// Device reports whether the target is a device (a block device, a Windows
// disk or volume), not a regular file.
func (f *File) Device() bool { return f.device }

// Path returns the path given to Open.
func (f *File) Path() string { return f.path }

// Sync flushes written data to the medium.
func (f *File) Sync() error {
	if f.closed {
		return fmt.Errorf("access: %s: sync after close", f.path)
	}
	if err := f.f.Sync(); err != nil {
		return fmt.Errorf("access: %s: flushing writes: %w", f.path, err)
	}
	return nil
}

// DropCache flushes written data and drops the operating system's cached
// copy of the target, so that the next read comes from the medium (what a
// verification after a write needs).
func (f *File) DropCache() error {
	if err := f.Sync(); err != nil {
		return err
	}
	if err := dropCache(f.f, f.device); err != nil {
		return fmt.Errorf("access: %s: dropping the cache: %w", f.path, err)
	}
	return nil
}

// Truncate changes a regular file's size (a container that grew during a
// change is cut back by undo). It fails on devices and on a File not opened
// Exclusive.
func (f *File) Truncate(size int64) error {
	switch {
	case f.closed:
		return fmt.Errorf("access: %s: truncate after close", f.path)
	case f.device:
		return fmt.Errorf("access: %s is a device: its size cannot change", f.path)
	case f.mode&Exclusive == 0:
		return fmt.Errorf("access: %s was opened read-only", f.path)
	case size < 0:
		return fmt.Errorf("access: %s: truncate to negative size %d", f.path, size)
	}
	if err := f.f.Truncate(size); err != nil {
		return fmt.Errorf("access: %s: truncating to %d bytes: %w", f.path, size, err)
	}
	f.size = size
	return nil
}

// Close releases the locks and closes the target. It is safe to call more
// than once.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	var errs []error
	if f.unlock != nil {
		errs = append(errs, f.unlock())
	}
	errs = append(errs, f.f.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("access: closing %s: %w", f.path, err)
	}
	return nil
}

// knownSector keeps the logical sector sizes disks have (512 and 4096;
// 1024 and 2048 exist only on optical media) and says 0 for anything else.
func knownSector(ss int) int {
	if ss == 512 || ss == 4096 {
		return ss
	}
	return 0
}

// lockKey names a target's lock file in a journal directory: the first 16
// hex digits of the SHA-256 of its absolute, cleaned path (a target is
// locked by its own identity too, so two names of one target are still
// exclusive; this lock only orders the journals written under one name).
func lockKey(target string) string {
	if abs, err := filepath.Abs(target); err == nil {
		target = abs
	}
	sum := sha256.Sum256([]byte(filepath.Clean(target)))
	return hex.EncodeToString(sum[:8])
}
