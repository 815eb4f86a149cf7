//go:build linux

package access

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// InUse lists what uses the target at path besides this process: mounts of
// it (or of a partition of it, or of the disk it is a partition of), devices
// stacked on it (device-mapper, RAID), loop devices over the same file and
// what uses those, and other processes that have it open for writing. Every
// comparison is by device number and inode: a hard link to a mounted image,
// a second loop device over it or another name of the same device node are
// all found. An empty list means nothing was found.
func InUse(path string) ([]string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, fmt.Errorf("access: %s: %w", path, err)
	}
	s := &scan{mounts: readMountinfo(), loops: readLoops()}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		s.blockDevice(st.Rdev)
	case unix.S_IFREG:
		s.backingFile(fileID{uint64(st.Dev), st.Ino})
	default:
		return nil, nil
	}
	s.writers()
	return s.users, nil
}

// fileID names a file by what the kernel names it by.
type fileID struct{ dev, ino uint64 }

// scan collects the users of one target.
type scan struct {
	mounts []mount
	loops  []loopDev
	users  []string
	seen   map[string]bool
	devs   map[uint64]bool // block devices that are the target's bytes (or contain or are contained in them)
	files  map[fileID]bool // regular files that are the target's bytes
}

func (s *scan) add(format string, args ...any) {
	u := fmt.Sprintf(format, args...)
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	if !s.seen[u] {
		s.seen[u] = true
		s.users = append(s.users, u)
	}
}

// blockDevice collects the users of a block device: its own mounts and
// holders, those of its partitions (a whole disk) or of its disk (a
// partition), and, for a loop device, everything using its backing file.
func (s *scan) blockDevice(rdev uint64) {
	disk := rdev
	if p, ok := parentDisk(rdev); ok {
		disk = p
	}
	s.device(rdev)
	if disk != rdev {
		// The disk this partition is on: mounted as a whole, or stacked on.
		s.deviceOnly(disk)
	}
	if b, ok := s.loopBacking(disk); ok {
		s.backingFile(b, disk)
	}
}

// device adds the users of a block device and of its partitions.
func (s *scan) device(rdev uint64) {
	s.deviceOnly(rdev)
	for _, p := range partitions(rdev) {
		s.deviceOnly(p)
	}
}

// deviceOnly adds the mounts and holders of one block device.
func (s *scan) deviceOnly(rdev uint64) {
	if s.devs == nil {
		s.devs = map[uint64]bool{}
	}
	s.devs[rdev] = true
	name := devName(rdev)
	for _, m := range s.mounts {
		if m.dev == rdev || m.srcRdev == rdev {
			s.add("%s mounted on %s (%s)", name, m.point, m.fstype)
		}
	}
	for _, h := range holders(rdev) {
		s.add("%s held by %s", name, h)
	}
}

// backingFile adds everything that uses the regular file f: loop devices
// over it (except skip, the target itself) with their users, and mounts of
// the file itself (ntfs-3g and fuse mount files directly).
func (s *scan) backingFile(f fileID, skip ...uint64) {
	if s.files == nil {
		s.files = map[fileID]bool{}
	}
	s.files[f] = true
	for _, l := range s.loops {
		if l.backing != f || (len(skip) > 0 && l.rdev == skip[0]) {
			continue
		}
		s.add("/dev/%s is a loop device over the same file (%s)", l.name, l.file)
		s.device(l.rdev)
	}
	for _, m := range s.mounts {
		if m.srcFile == f {
			s.add("%s (the same file) mounted on %s (%s)", m.source, m.point, m.fstype)
		}
	}
}

// loopBacking returns the backing file of a loop device.
func (s *scan) loopBacking(rdev uint64) (fileID, bool) {
	for _, l := range s.loops {
		if l.rdev == rdev {
			return l.backing, l.backing != fileID{}
		}
	}
	return fileID{}, false
}

// writers adds every other process holding one of the target's files or
// devices open for writing (a running VM, dd, a hex editor). Readers are
// not counted: udev and blkid open new devices read-only for a moment.
func (s *scan) writers() {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	self := strconv.Itoa(os.Getpid())
	for _, p := range procs {
		pid := filepath.Base(p)
		if pid == self {
			continue
		}
		fds, _ := os.ReadDir(p + "/fd")
		for _, fd := range fds {
			var st unix.Stat_t
			if unix.Stat(p+"/fd/"+fd.Name(), &st) != nil {
				continue
			}
			ours := false
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFBLK:
				ours = s.devs[st.Rdev]
			case unix.S_IFREG:
				ours = s.files[fileID{uint64(st.Dev), st.Ino}]
			}
			if !ours || !openForWriting(p+"/fdinfo/"+fd.Name()) {
				continue
			}
			comm, _ := os.ReadFile(p + "/comm")
			s.add("process %s (%s) has it open for writing", pid, strings.TrimSpace(string(comm)))
		}
	}
}

// openForWriting reads the flags line of /proc/PID/fdinfo/FD (octal open
// flags).
func openForWriting(fdinfo string) bool {
	b, err := os.ReadFile(fdinfo)
	if err != nil {
		return false
	}
	for _, ln := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(ln, "flags:"); ok {
			fl, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
			return err == nil && fl&unix.O_ACCMODE != unix.O_RDONLY
		}
	}
	return false
}

// mount is one line of /proc/self/mountinfo, with its source resolved to
// what it names (a block device or a regular file) when it is a path.
type mount struct {
	dev     uint64 // st_dev of the mounted file system (major:minor field)
	point   string
	fstype  string
	source  string
	srcRdev uint64 // the source's device number, when it is a block device
	srcFile fileID // the source's identity, when it is a regular file
}

// readMountinfo reads /proc/self/mountinfo and resolves each mount's
// source: FUSE mounts (ntfs-3g) carry an anonymous major:minor, so their
// source path is stat'ed to find the device or file behind them.
func readMountinfo() []mount {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	ms := parseMountinfo(b)
	for i := range ms {
		m := &ms[i]
		if !strings.HasPrefix(m.source, "/") {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(m.source, &st) == nil {
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFBLK:
				m.srcRdev = st.Rdev
			case unix.S_IFREG:
				m.srcFile = fileID{uint64(st.Dev), st.Ino}
			}
		}
	}
	return ms
}

// parseMountinfo parses mountinfo text: "ID PARENT MAJ:MIN ROOT POINT
// OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS" (proc(5)). Lines that do
// not have that shape are skipped.
func parseMountinfo(b []byte) []mount {
	var out []mount
	for _, line := range strings.Split(string(b), "\n") {
		fs := strings.Fields(line)
		sep := -1
		for i := 6; i < len(fs); i++ {
			if fs[i] == "-" {
				sep = i
				break
			}
		}
		if len(fs) < 5 || sep < 0 || sep+2 >= len(fs) {
			continue
		}
		m := mount{point: unescape(fs[4]), fstype: fs[sep+1], source: unescape(fs[sep+2])}
		if d, ok := parseMajMin(fs[2]); ok {
			m.dev = d
		}
		out = append(out, m)
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
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseMajMin parses "MAJ:MIN".
func parseMajMin(s string) (uint64, bool) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return 0, false
	}
	ma, err1 := strconv.ParseUint(a, 10, 32)
	mi, err2 := strconv.ParseUint(b, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return unix.Mkdev(uint32(ma), uint32(mi)), true
}

// sysDir returns the sysfs directory of a block device.
func sysDir(rdev uint64) string {
	return fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(rdev), unix.Minor(rdev))
}

// devName names a block device by its kernel name (/dev/loop0p1).
func devName(rdev uint64) string {
	if real, err := filepath.EvalSymlinks(sysDir(rdev)); err == nil {
		return "/dev/" + filepath.Base(real)
	}
	return fmt.Sprintf("block device %d:%d", unix.Major(rdev), unix.Minor(rdev))
}

// parentDisk returns the disk a partition is on (sysfs: a partition's
// directory has a "partition" file and sits inside its disk's).
func parentDisk(rdev uint64) (uint64, bool) {
	dir, err := filepath.EvalSymlinks(sysDir(rdev))
	if err != nil {
		return 0, false
	}
	if _, err := os.Stat(filepath.Join(dir, "partition")); err != nil {
		return 0, false
	}
	return readDev(filepath.Join(filepath.Dir(dir), "dev"))
}

// partitions returns the partitions of a disk.
func partitions(rdev uint64) []uint64 {
	dir, err := filepath.EvalSymlinks(sysDir(rdev))
	if err != nil {
		return nil
	}
	ents, _ := os.ReadDir(dir)
	var out []uint64
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "partition")); err != nil {
			continue
		}
		if d, ok := readDev(filepath.Join(dir, e.Name(), "dev")); ok {
			out = append(out, d)
		}
	}
	return out
}

// holders names the devices stacked on a block device (sysfs holders/).
func holders(rdev uint64) []string {
	ents, _ := os.ReadDir(sysDir(rdev) + "/holders")
	var out []string
	for _, e := range ents {
		h := "/dev/" + e.Name()
		if dm, err := os.ReadFile(filepath.Join(sysDir(rdev), "holders", e.Name(), "dm", "name")); err == nil {
			h += " (device-mapper " + strings.TrimSpace(string(dm)) + ")"
		}
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

// readDev reads a sysfs "dev" file ("MAJ:MIN").
func readDev(p string) (uint64, bool) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, false
	}
	return parseMajMin(string(b))
}

// loopDev is an attached loop device and the file behind it.
type loopDev struct {
	name    string // loop0
	rdev    uint64
	file    string // backing_file as sysfs shows it (a path, possibly stale)
	backing fileID // the backing file's device and inode
}

// readLoops lists the attached loop devices. The backing file's identity
// comes from LOOP_GET_STATUS64 (lo_device, lo_inode): the kernel's own
// record, right even when the file was renamed or the path is a hard link.
// Without permission to open the device, the backing_file path is stat'ed.
func readLoops() []loopDev {
	dirs, _ := filepath.Glob("/sys/block/loop*")
	var out []loopDev
	for _, d := range dirs {
		bf, err := os.ReadFile(d + "/loop/backing_file")
		if err != nil {
			continue // not attached
		}
		rdev, ok := readDev(d + "/dev")
		if !ok {
			continue
		}
		l := loopDev{name: filepath.Base(d), rdev: rdev, file: strings.TrimSpace(string(bf))}
		if fd, err := unix.Open("/dev/"+l.name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0); err == nil {
			if info, err := unix.IoctlLoopGetStatus64(fd); err == nil {
				l.backing = fileID{info.Device, info.Inode}
			}
			unix.Close(fd)
		}
		if l.backing == (fileID{}) {
			var st unix.Stat_t
			if unix.Stat(strings.TrimSuffix(l.file, " (deleted)"), &st) == nil {
				l.backing = fileID{uint64(st.Dev), st.Ino}
			}
		}
		out = append(out, l)
	}
	return out
}
