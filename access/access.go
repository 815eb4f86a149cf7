// Package access opens a TARGET's bytes (an image file or a block device)
// for reading, or with exclusive access for writing.
//
// Exclusive access refuses, before anything is created or written: a
// read-only device or file (ErrReadOnly), a target in use (*InUseError:
// mounted, or attached to a loop device, found by device number and inode
// rather than by path string), and another wuoffline holding it (ErrLocked:
// flock on image files, O_EXCL on Linux block devices).
package access

import (
	"errors"
	"fmt"
	"strings"
)

// Mode says how Open opens a target.
type Mode int

const (
	// Read opens read-only; nothing is locked.
	Read Mode = iota
	// Exclusive opens read-write with every refusal checked first.
	Exclusive
)

// ErrReadOnly is returned by Open(Exclusive) for a target that cannot be
// written: a read-only block device (losetup -r, a write-protected stick),
// a file without write permission, or a read-only file system.
var ErrReadOnly = errors.New("access: the target is read-only")

// ErrLocked is returned by Open(Exclusive) when another wuoffline holds the
// target (or a journal directory, from LockDir).
var ErrLocked = errors.New("access: in use by another wuoffline")

// InUseError says a target is in use by the system: mounted, or a loop
// device over it (or over the same file) exists.
type InUseError struct {
	Path  string
	Users []string // e.g. "mounted on /mnt (/dev/loop0p1)", "attached to /dev/loop3"
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("access: %s is in use: %s", e.Path, strings.Join(e.Users, "; "))
}
