//go:build linux

package access

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// open opens a regular file or a block device. For Exclusive the order is:
// the lock (so a second wuoffline is told ErrLocked, not "in use"), then
// read-only detection, then the in-use search, then the read-write open
// (O_EXCL for a device, which closes the race with a mount in between).
func open(path string, mode Mode) (*File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, explain(path, err)
	}
	m := st.Mode()
	switch {
	case m.IsDir():
		return nil, fmt.Errorf("access: %s is a directory, not a disk image or block device", path)
	case m&fs.ModeCharDevice != 0:
		return nil, fmt.Errorf("access: %s is a character device, not a disk image or block device", path)
	case m&fs.ModeDevice == 0 && !m.IsRegular():
		return nil, fmt.Errorf("access: %s is not a regular file or block device (mode %v)", path, m)
	}
	device := m&fs.ModeDevice != 0
	if mode&Exclusive == 0 {
		f, err := os.Open(path)
		if err != nil {
			return nil, explain(path, err)
		}
		return finish(path, mode, f, device, nil)
	}
	if device {
		return openDeviceExclusive(path)
	}
	// Root opens any file for writing whatever its mode: a file nobody may
	// write is read-only by its owner's choice (as FILE_ATTRIBUTE_READONLY
	// is on Windows), so refuse it rather than rely on open(2).
	if m.Perm()&0o222 == 0 {
		return nil, fmt.Errorf("access: %s is read-only (mode %v): %w", path, m.Perm(), ErrReadOnly)
	}
	return openFileExclusive(path)
}

// openFileExclusive opens a regular file read-write under flock.
func openFileExclusive(path string) (*File, error) {
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err == nil && sfs.Flags&unix.ST_RDONLY != 0 {
		return nil, fmt.Errorf("access: %s is on a read-only mount: %w", path, ErrReadOnly)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		if isReadOnlyErrno(err) {
			// EPERM: an immutable file (chattr +i), which even root cannot open for writing.
			return nil, fmt.Errorf("access: %s cannot be opened for writing (%v): %w", path, errnoOf(err), ErrReadOnly)
		}
		return nil, explain(path, err)
	}
	if err := flock(f, path); err != nil {
		f.Close()
		return nil, err
	}
	if users, err := InUse(path); err != nil {
		f.Close()
		return nil, err
	} else if len(users) > 0 {
		f.Close()
		return nil, &InUseError{Path: path, Users: users}
	}
	return finish(path, Exclusive, f, false, nil)
}

// openDeviceExclusive opens a block device read-write with O_EXCL, holding
// flock on a second, read-only descriptor of the node: flock says "another
// wuoffline", O_EXCL says "the kernel or another program".
func openDeviceExclusive(path string) (*File, error) {
	lk, err := os.Open(path)
	if err != nil {
		return nil, explain(path, err)
	}
	fail := func(err error) (*File, error) {
		lk.Close()
		return nil, err
	}
	if err := flock(lk, path); err != nil {
		return fail(err)
	}
	// BLKROGET: the block layer's read-only flag, set by `losetup -r`,
	// `blockdev --setro` and by drivers of write-protected media.
	if ro, err := unix.IoctlGetInt(int(lk.Fd()), unix.BLKROGET); err != nil {
		return fail(fmt.Errorf("access: %s: BLKROGET: %w", path, err))
	} else if ro != 0 {
		return fail(fmt.Errorf("access: %s is a read-only device (BLKROGET): %w", path, ErrReadOnly))
	}
	users, err := InUse(path)
	if err != nil {
		return fail(err)
	}
	if len(users) > 0 {
		return fail(&InUseError{Path: path, Users: users})
	}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_EXCL, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.EBUSY):
			return fail(&InUseError{Path: path, Users: []string{"the kernel refuses an exclusive open (EBUSY): mounted, or claimed by a device-mapper, RAID, swap or another exclusive opener"}})
		case isReadOnlyErrno(err):
			return fail(fmt.Errorf("access: %s cannot be opened for writing (%v): %w", path, errnoOf(err), ErrReadOnly))
		}
		return fail(explain(path, err))
	}
	return finish(path, Exclusive, f, true, lk.Close)
}

// flock takes the non-blocking exclusive lock every wuoffline takes on a
// target it changes.
func flock(f *os.File, path string) error {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("access: %s: %w (wait for it to finish)", path, ErrLocked)
		}
		return fmt.Errorf("access: %s: flock: %w", path, err)
	}
	return nil
}

// finish measures the opened target and returns the File.
func finish(path string, mode Mode, f *os.File, device bool, unlock func() error) (*File, error) {
	fail := func(err error) (*File, error) {
		f.Close()
		if unlock != nil {
			unlock()
		}
		return nil, err
	}
	var size int64
	sector := 0
	if device {
		// Seeking to the end of a block device gives its size on Linux.
		n, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return fail(fmt.Errorf("access: %s: reading the device size: %w", path, err))
		}
		size = n
		ss, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET)
		if err != nil {
			return fail(fmt.Errorf("access: %s: BLKSSZGET: %w", path, err))
		}
		sector = knownSector(ss)
	} else {
		st, err := f.Stat()
		if err != nil {
			return fail(fmt.Errorf("access: %s: %w", path, err))
		}
		size = st.Size()
	}
	// Linux block devices opened without O_DIRECT go through the page cache
	// and take I/O at any offset and length: no alignment layer.
	return &File{path: path, mode: mode, f: f, rw: f, size: size, sector: sector, device: device, unlock: unlock}, nil
}

// dropCache drops the page cache of the target: POSIX_FADV_DONTNEED works on
// files and block devices alike once the data is clean (Sync ran before),
// and BLKFLSBUF also drops a block device's buffer cache.
func dropCache(f *os.File, device bool) error {
	if device {
		if err := unix.IoctlSetInt(int(f.Fd()), unix.BLKFLSBUF, 0); err != nil {
			return fmt.Errorf("BLKFLSBUF: %w", err)
		}
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("posix_fadvise(DONTNEED): %w", err)
	}
	return nil
}

// isReadOnlyErrno: the errors an open for writing gets from a target that
// cannot be written.
func isReadOnlyErrno(err error) bool {
	return errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)
}

// errnoOf returns the errno inside err (or err itself) for short messages.
func errnoOf(err error) error {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return err
}

// explain turns an os error into one that says what to do.
func explain(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("access: %s does not exist: name an existing disk image, block device (e.g. /dev/sda, /dev/nvme0n1p3, see lsblk) or mounted directory: %w", path, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("access: %s: permission denied: run as root, or check the file's permissions: %w", path, err)
	}
	return fmt.Errorf("access: opening %s: %w", path, err)
}

// inUseAdvice says what to do about a target in use.
func inUseAdvice(string) string {
	return "unmount it (umount, fusermount -u), detach the loop device (losetup -d) or stop the program first"
}

// LockDir locks the journals of one target in a journal directory
// against a second wuoffline working on the same target by another name:
// flock of a lock file named for the directory and the target (lockKey) in
// the system's temporary directory, so the journal directory, often beside
// the user's image files, gets nothing of ours but journals. flock is a
// lock between processes of this machine, which is what it guards: a
// journal directory shared over a network is not supported. Targets
// sharing one directory (a fleet of disks, one --journal DIR) do not lock
// each other out. release unlocks it.
func LockDir(dir, target string) (release func() error, err error) {
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return nil, fmt.Errorf("access: locking journal directory: %s is not a directory", dir)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	p := filepath.Join(os.TempDir(), "wuoffline-"+lockKey(dir+"\x00"+target)+".lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("access: locking journal directory %s: %w", dir, err)
	}
	if err := flock(f, dir); err != nil {
		f.Close()
		return nil, err
	}
	return f.Close, nil
}

// VolumePath returns path and false: on Linux a device is named by its node
// (/dev/sda, /dev/nvme0n1p3) and recognised by stat.
func VolumePath(path string) (string, bool) { return path, false }

// FixedVolumes returns nothing: drive letters exist on Windows only.
func FixedVolumes() ([]string, error) { return nil, nil }
