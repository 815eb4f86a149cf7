//go:build linux

package access

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Open opens the image file or block device at path. Exclusive checks, in
// this order and before anything is written: the target is not in use
// (InUse), not read-only (the device's read-only flag, the file's mode, the
// file system), and not held by another wuoffline (flock(LOCK_EX|LOCK_NB) on
// a file, O_EXCL on a block device, which the kernel also refuses while a
// file system on it is mounted).
func Open(path string, mode Mode) (*File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	device := st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0
	if !device && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("access: %s is not a regular file or block device", path)
	}
	if mode == Exclusive {
		users, err := InUse(path)
		if err != nil {
			return nil, err
		}
		if len(users) > 0 {
			return nil, &InUseError{Path: path, Users: users}
		}
	}
	af := &File{path: path, device: device, mode: mode}
	if mode != Exclusive {
		if af.f, err = os.Open(path); err != nil {
			return nil, err
		}
	} else if device {
		if err := deviceReadOnly(path); err != nil {
			return nil, err
		}
		af.f, err = os.OpenFile(path, os.O_RDWR|unix.O_EXCL, 0)
		switch {
		case errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
			return nil, fmt.Errorf("%w: %s: %v", ErrReadOnly, path, err)
		case errors.Is(err, syscall.EBUSY):
			// O_EXCL on a block device fails while another opener holds it
			// exclusively: a mount, device mapper, or another wuoffline.
			return nil, fmt.Errorf("%w (or by the system): %s: %v", ErrLocked, path, err)
		case err != nil:
			return nil, err
		}
	} else {
		if st.Mode().Perm()&0o222 == 0 {
			// root may open a 0444 file read-write; the user said read-only.
			return nil, fmt.Errorf("%w: %s has no write permission (mode %v)", ErrReadOnly, path, st.Mode().Perm())
		}
		af.f, err = os.OpenFile(path, os.O_RDWR, 0)
		switch {
		case errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
			return nil, fmt.Errorf("%w: %s: %v", ErrReadOnly, path, err)
		case err != nil:
			return nil, err
		}
		if err := unix.Flock(int(af.f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			af.f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("%w: %s", ErrLocked, path)
			}
			return nil, fmt.Errorf("access: locking %s: %w", path, err)
		}
	}
	if device {
		if af.size, err = af.f.Seek(0, io.SeekEnd); err != nil {
			af.Close()
			return nil, err
		}
		if ss, err := unix.IoctlGetInt(int(af.f.Fd()), unix.BLKSSZGET); err == nil && (ss == 512 || ss == 4096) {
			af.sector = ss
		}
	} else {
		fi, err := af.f.Stat()
		if err != nil {
			af.Close()
			return nil, err
		}
		af.size = fi.Size()
	}
	return af, nil
}

// deviceReadOnly reads a block device's read-only flag (BLKROGET), set by
// losetup -r, a write-protect switch or the kernel.
func deviceReadOnly(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	ro, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKROGET)
	if err != nil {
		return fmt.Errorf("access: %s: BLKROGET: %w", path, err)
	}
	if ro != 0 {
		return fmt.Errorf("%w: %s is a read-only block device", ErrReadOnly, path)
	}
	return nil
}

// DropCache writes back and drops the kernel's cached pages of the target
// (POSIX_FADV_DONTNEED, and BLKFLSBUF for a block device), so that a re-read
// comes from the medium rather than from what was just written.
func (f *File) DropCache() error {
	if f.mode == Exclusive {
		if err := f.f.Sync(); err != nil {
			return err
		}
	}
	if f.device {
		// Best effort: BLKFLSBUF needs CAP_SYS_ADMIN.
		unix.IoctlSetInt(int(f.f.Fd()), unix.BLKFLSBUF, 0)
	}
	return unix.Fadvise(int(f.f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// LockDir takes an exclusive lock on a journal directory (a lock file in
// it), so two wuoffline never write journals for one target at once. It
// fails with ErrLocked when another holds it.
func LockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".wuoffline.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("access: locking %s: %w", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: journal directory %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("access: locking %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// InUse lists what uses the target at path: mounts of it (a file mounted
// directly by ntfs-3g, a device, one of its partitions, the whole disk it
// is a partition of) and loop devices over the same file (by device and
// inode, so a hard link or another path to the file is found too), with
// what is mounted from them.
func InUse(path string) ([]string, error) {
	st, err := statT(path)
	if err != nil {
		return nil, err
	}
	mounts := readMounts()
	var users []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			users = append(users, s)
		}
	}
	// The block devices that share the target's bytes: the device itself,
	// its partitions and its whole disk; for a file (or a loop device), every
	// loop device over the same file and their partitions.
	devs := map[uint64]string{}
	var file *unix.Stat_t
	self := ""
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		self = sysName(st.Rdev)
		for d, n := range related(st.Rdev) {
			devs[d] = n
		}
		if bf := backingFile(self); bf != "" {
			if fst, err := statT(bf); err == nil {
				file = fst
			}
		}
	} else {
		file = st
	}
	if file != nil {
		for _, loop := range loops() {
			bst, err := statT(backingFile(loop))
			if err != nil || bst.Dev != file.Dev || bst.Ino != file.Ino || loop == self {
				continue
			}
			ld, err := devOf(loop)
			if err != nil {
				continue
			}
			add("attached to /dev/" + loop)
			for d, n := range related(ld) {
				devs[d] = n
			}
		}
	}
	for _, m := range mounts {
		if n, ok := devs[m.dev]; ok {
			add(fmt.Sprintf("/dev/%s mounted on %s", n, m.dir))
			continue
		}
		// FUSE mounts (ntfs-3g) carry an anonymous device number: compare
		// the source they were given, by device and inode.
		if !strings.HasPrefix(m.src, "/") {
			continue
		}
		sst, err := statT(m.src)
		if err != nil {
			continue
		}
		switch {
		case file != nil && sst.Mode&unix.S_IFMT == unix.S_IFREG && sst.Dev == file.Dev && sst.Ino == file.Ino:
			add(fmt.Sprintf("%s mounted on %s", m.src, m.dir))
		case sst.Mode&unix.S_IFMT == unix.S_IFBLK:
			if _, ok := devs[sst.Rdev]; ok {
				add(fmt.Sprintf("%s mounted on %s", m.src, m.dir))
			}
		}
	}
	return users, nil
}

func statT(p string) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	return &st, nil
}

type mount struct {
	dev      uint64
	src, dir string
}

// readMounts parses /proc/self/mountinfo: field 3 is MAJOR:MINOR, field 5
// the mount point, and after the " - " separator the type and the source.
func readMounts() []mount {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	return parseMountinfo(b)
}

// parseMountinfo parses the text of /proc/self/mountinfo; lines it cannot
// read are skipped.
func parseMountinfo(b []byte) []mount {
	var out []mount
	for _, ln := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(ln, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 2 {
			continue
		}
		var maj, min uint32
		if _, err := fmt.Sscanf(f[2], "%d:%d", &maj, &min); err != nil {
			continue
		}
		out = append(out, mount{dev: unix.Mkdev(maj, min), src: unescape(g[1]), dir: unescape(f[4])})
	}
	return out
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(byte(c))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// sysName is a block device's kernel name ("sda1", "loop0p1").
func sysName(dev uint64) string {
	l, err := os.Readlink(fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(dev), unix.Minor(dev)))
	if err != nil {
		return ""
	}
	return filepath.Base(l)
}

// related returns the block devices that share a device's bytes, by device
// number: for a whole disk, the disk and its partitions; for a partition,
// the partition and its whole disk (not its sibling partitions: another
// partition of the same disk mounted, the rescue system's own, does not
// make this one busy).
func related(dev uint64) map[uint64]string {
	out := map[uint64]string{dev: sysName(dev)}
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(dev), unix.Minor(dev))
	real, err := filepath.EvalSymlinks(sys)
	if err != nil {
		return out
	}
	add := func(dir string) {
		b, err := os.ReadFile(filepath.Join(dir, "dev"))
		if err != nil {
			return
		}
		var maj, min uint32
		if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &maj, &min); err == nil {
			out[unix.Mkdev(maj, min)] = filepath.Base(dir)
		}
	}
	if _, err := os.Stat(filepath.Join(real, "partition")); err == nil {
		add(filepath.Dir(real)) // the whole disk
		return out
	}
	ents, _ := os.ReadDir(real)
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(real, e.Name(), "partition")); err == nil {
			add(filepath.Join(real, e.Name()))
		}
	}
	return out
}

// loops lists the attached loop devices ("loop0").
func loops() []string {
	ms, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, filepath.Base(filepath.Dir(filepath.Dir(m))))
	}
	return out
}

// backingFile is the file a loop device reads ("" when it is not one).
func backingFile(name string) string {
	if name == "" {
		return ""
	}
	b, err := os.ReadFile("/sys/block/" + name + "/loop/backing_file")
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
}

func devOf(name string) (uint64, error) {
	b, err := os.ReadFile("/sys/block/" + name + "/dev")
	if err != nil {
		return 0, err
	}
	var maj, min uint32
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &maj, &min); err != nil {
		return 0, err
	}
	return unix.Mkdev(maj, min), nil
}
