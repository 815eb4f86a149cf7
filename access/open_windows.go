//go:build windows

package access

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/windows"
)

// Device I/O control codes (winioctl.h; CTL_CODE(type, function, method,
// access)).
const (
	ioctlDiskGetDriveGeometry   = 0x00070000 // DISK_GEOMETRY; BytesPerSector at 20
	ioctlDiskIsWritable         = 0x00070024 // fails with ERROR_WRITE_PROTECT on protected media
	ioctlDiskGetPartitionInfoEx = 0x00070048 // PARTITION_INFORMATION_EX; PartitionLength at 16
	ioctlDiskGetDriveGeometryEx = 0x000700A0 // DISK_GEOMETRY_EX; DiskSize at 24
	ioctlDiskGetLengthInfo      = 0x0007405C // GET_LENGTH_INFORMATION{Length int64}
	fsctlLockVolume             = 0x00090018
	fsctlUnlockVolume           = 0x0009001C
	fsctlDismountVolume         = 0x00090020
)

// VolumePath returns the device path of a drive letter ("D:", "D:\\",
// "d:/" and "\\.\D:" all give \\.\D:) and true, path and true for another
// device path (\\.\PhysicalDrive1, \\.\HarddiskVolume3, \\?\Volume{GUID}),
// and path and false for anything else ("D:\\." is the mounted directory).
func VolumePath(path string) (string, bool) { return windowsDevicePath(path) }

func open(path string, mode Mode) (*File, error) {
	dev, isDev := VolumePath(path)
	if !isDev {
		return openRegular(path, mode)
	}
	if mode&Exclusive != 0 {
		if !isVolume(dev) {
			// Windows lets nobody write a mounted volume's sectors through
			// the disk, and a whole disk has no lock of its own: only its
			// volumes can be locked, one by one.
			return nil, fmt.Errorf("access: %s is a whole disk, which cannot be locked for writing: name the Windows volume by its drive letter instead (diskpart: list volume; select volume N; assign letter=W)", path)
		}
		if sys := systemDrive(); sys != "" && strings.EqualFold(dev, `\\.\`+sys) {
			return nil, &InUseError{Path: path, Users: []string{"it is the running Windows' own drive (" + sys + `\Windows): boot WinPE or another Windows and repair it from there`}}
		}
	}
	acc := uint32(windows.GENERIC_READ)
	if mode&Exclusive != 0 {
		acc |= windows.GENERIC_WRITE
	}
	p16, err := windows.UTF16PtrFromString(dev)
	if err != nil {
		return nil, fmt.Errorf("access: %s: %w", path, err)
	}
	// A volume handle must share read and write access (the file system and
	// other programs hold it open); exclusivity comes from FSCTL_LOCK_VOLUME.
	h, err := windows.CreateFile(p16, acc, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, nil, windows.OPEN_EXISTING, 0, 0)
	if err != nil {
		switch {
		case errors.Is(err, windows.ERROR_WRITE_PROTECT):
			return nil, fmt.Errorf("access: %s is write-protected: %w", path, ErrReadOnly)
		case errors.Is(err, windows.ERROR_ACCESS_DENIED):
			return nil, fmt.Errorf("access: %s: access denied: run as Administrator (WinPE's prompt already is): %w", path, err)
		case errors.Is(err, windows.ERROR_FILE_NOT_FOUND), errors.Is(err, windows.ERROR_PATH_NOT_FOUND):
			return nil, fmt.Errorf("access: %s does not exist: list the volumes with `diskpart` then `list volume`: %w", path, err)
		}
		return nil, fmt.Errorf("access: opening %s: %w", path, err)
	}
	f := &File{path: path, mode: mode, f: os.NewFile(uintptr(h), dev), device: true}
	fail := func(err error) (*File, error) {
		f.Close()
		return nil, err
	}
	if mode&Exclusive != 0 {
		var n uint32
		if err := windows.DeviceIoControl(h, ioctlDiskIsWritable, nil, 0, nil, 0, &n, nil); errors.Is(err, windows.ERROR_WRITE_PROTECT) {
			return fail(fmt.Errorf("access: %s is write-protected (IOCTL_DISK_IS_WRITABLE): %w", path, ErrReadOnly))
		}
		if err := lockVolume(h); err != nil {
			return fail(&InUseError{Path: path, Users: []string{fmt.Sprintf("programs or Windows itself have files open on it (FSCTL_LOCK_VOLUME: %v)", err)}})
		}
		f.unlock = func() error {
			var n uint32
			return windows.DeviceIoControl(h, fsctlUnlockVolume, nil, 0, nil, 0, &n, nil)
		}
		// Dismounting makes the file system forget its cached view:
		// after the change it mounts again and reads what is on disk.
		if err := windows.DeviceIoControl(h, fsctlDismountVolume, nil, 0, nil, 0, &n, nil); err != nil {
			return fail(fmt.Errorf("access: %s: dismounting the volume (FSCTL_DISMOUNT_VOLUME): %w", path, err))
		}
	}
	size, sector, err := geometry(h, f.f)
	if err != nil {
		return fail(fmt.Errorf("access: %s: %w", path, err))
	}
	f.size, f.sector = size, sector
	if sector == 0 {
		sector = 512
	}
	// Windows refuses reads and writes of disk and volume handles that do
	// not start and end on a sector boundary.
	f.rw = newAlignedFile(f.f, sector)
	return f, nil
}

// lockVolume takes the volume lock, trying a few times over two seconds: an
// indexer or antivirus scan holds files open for a moment, and Microsoft's
// own tools retry FSCTL_LOCK_VOLUME the same way.
func lockVolume(h windows.Handle) error {
	var err error
	for try := 0; try < 10; try++ {
		if try > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		var n uint32
		if err = windows.DeviceIoControl(h, fsctlLockVolume, nil, 0, nil, 0, &n, nil); err == nil {
			return nil
		}
		if !errors.Is(err, windows.ERROR_ACCESS_DENIED) && !errors.Is(err, windows.ERROR_SHARING_VIOLATION) {
			return err
		}
	}
	return err
}

// isVolume: a volume (drive letter, HarddiskVolumeN, Volume{GUID}), not a
// whole disk, which has no file system to lock.
func isVolume(dev string) bool {
	u := strings.ToUpper(dev)
	return !strings.Contains(u, `PHYSICALDRIVE`)
}

// geometry returns a disk or volume's size and logical sector size, asking
// in turn the length ioctl, the extended geometry, the partition info, and
// finally the NTFS boot sector (Wine answers none of the ioctls for a
// volume mapped to a Unix block device).
func geometry(h windows.Handle, f *os.File) (int64, int, error) {
	var n uint32
	sector := 0
	geo := make([]byte, 24)
	if windows.DeviceIoControl(h, ioctlDiskGetDriveGeometry, nil, 0, &geo[0], uint32(len(geo)), &n, nil) == nil && n >= 24 {
		sector = knownSector(int(binary.LittleEndian.Uint32(geo[20:])))
	}
	var errs []string
	buf := make([]byte, 256)
	if err := windows.DeviceIoControl(h, ioctlDiskGetLengthInfo, nil, 0, &buf[0], 8, &n, nil); err == nil && n >= 8 {
		if size := int64(binary.LittleEndian.Uint64(buf)); size > 0 {
			return size, sector, nil
		}
	} else {
		errs = append(errs, fmt.Sprintf("IOCTL_DISK_GET_LENGTH_INFO: %v", err))
	}
	if err := windows.DeviceIoControl(h, ioctlDiskGetDriveGeometryEx, nil, 0, &buf[0], uint32(len(buf)), &n, nil); err == nil && n >= 32 {
		if sector == 0 {
			sector = knownSector(int(binary.LittleEndian.Uint32(buf[20:])))
		}
		if size := int64(binary.LittleEndian.Uint64(buf[24:])); size > 0 {
			return size, sector, nil
		}
	} else {
		errs = append(errs, fmt.Sprintf("IOCTL_DISK_GET_DRIVE_GEOMETRY_EX: %v", err))
	}
	if err := windows.DeviceIoControl(h, ioctlDiskGetPartitionInfoEx, nil, 0, &buf[0], uint32(len(buf)), &n, nil); err == nil && n >= 24 {
		if size := int64(binary.LittleEndian.Uint64(buf[16:])); size > 0 {
			return size, sector, nil
		}
	} else {
		errs = append(errs, fmt.Sprintf("IOCTL_DISK_GET_PARTITION_INFO_EX: %v", err))
	}
	size, ss, err := ntfsSize(f, sector)
	if err != nil {
		errs = append(errs, err.Error())
		return 0, 0, fmt.Errorf("cannot tell the size: %s", strings.Join(errs, "; "))
	}
	if sector == 0 {
		sector = ss
	}
	return size, sector, nil
}

// ntfsSize reads an NTFS boot sector: bytes per sector (u16 at 0x0B) and the
// volume's sector count (u64 at 0x28), which leaves out the last sector of
// the partition where the backup boot sector lives. That sector is counted
// when it can be read.
func ntfsSize(f *os.File, sector int) (int64, int, error) {
	rs := sector
	if rs == 0 {
		rs = 512
	}
	b := make([]byte, 4096)
	if n, err := f.ReadAt(b[:rs], 0); n < rs {
		return 0, 0, fmt.Errorf("reading the boot sector: %v", err)
	}
	if string(b[3:11]) != "NTFS    " {
		return 0, 0, errors.New("no NTFS boot sector to read the size from")
	}
	bps := int(binary.LittleEndian.Uint16(b[0x0B:]))
	total := binary.LittleEndian.Uint64(b[0x28:])
	if knownSector(bps) == 0 || total == 0 || total > 1<<47/uint64(bps) {
		return 0, 0, fmt.Errorf("NTFS boot sector: implausible geometry (%d-byte sectors, %d sectors)", bps, total)
	}
	size := int64(total) * int64(bps)
	if n, _ := f.ReadAt(b[:bps], size); n == bps {
		size += int64(bps)
	}
	return size, bps, nil
}

// openRegular opens an image file. Exclusive shares only read access: a
// second writer (another wuoffline, a running Hyper-V VM) cannot open it
// and we cannot open it while one has it.
func openRegular(path string, mode Mode) (*File, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("access: %s does not exist: name an existing disk image, a drive letter (D:, see `diskpart` `list volume`) or a mounted directory: %w", path, err)
	} else if err != nil {
		return nil, fmt.Errorf("access: %s: %w", path, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("access: %s is a directory, not a disk image or drive letter", path)
	}
	if mode&Exclusive == 0 {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("access: opening %s: %w", path, err)
		}
		return &File{path: path, mode: mode, f: f, rw: f, size: st.Size()}, nil
	}
	if st.Mode().Perm()&0o200 == 0 {
		return nil, fmt.Errorf("access: %s has the read-only attribute: %w", path, ErrReadOnly)
	}
	p16, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, fmt.Errorf("access: %s: %w", path, err)
	}
	h, err := windows.CreateFile(p16, windows.GENERIC_READ|windows.GENERIC_WRITE, windows.FILE_SHARE_READ, nil, windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		switch {
		case errors.Is(err, windows.ERROR_SHARING_VIOLATION), errors.Is(err, windows.ERROR_LOCK_VIOLATION):
			return nil, &InUseError{Path: path, Users: []string{"another program (or another wuoffline) has it open for writing"}}
		case errors.Is(err, windows.ERROR_WRITE_PROTECT), errors.Is(err, windows.ERROR_ACCESS_DENIED):
			return nil, fmt.Errorf("access: %s cannot be opened for writing (%v): %w", path, err, ErrReadOnly)
		}
		return nil, fmt.Errorf("access: opening %s: %w", path, err)
	}
	f := os.NewFile(uintptr(h), path)
	return &File{path: path, mode: mode, f: f, rw: f, size: st.Size()}, nil
}

// systemDrive returns the running Windows' drive ("C:"), or "" when it
// cannot be told.
func systemDrive() string {
	d, err := windows.GetWindowsDirectory()
	if err != nil || len(d) < 2 || d[1] != ':' {
		return ""
	}
	return strings.ToUpper(d[:2])
}

// InUse lists what uses the target, as far as can be told without locking
// it: the running Windows' own drive. Programs with files open on a volume
// show only when Exclusive's FSCTL_LOCK_VOLUME fails.
func InUse(path string) ([]string, error) {
	dev, isDev := VolumePath(path)
	if sys := systemDrive(); isDev && sys != "" && strings.EqualFold(dev, `\\.\`+sys) {
		return []string{"it is the running Windows' own drive (" + sys + `\Windows)`}, nil
	}
	return nil, nil
}

// inUseAdvice says what to do about a target in use: a volume's lock fails
// while any program (Explorer, an antivirus, a command prompt whose current
// directory is on it) has a file open there.
func inUseAdvice(path string) string {
	if dev, ok := VolumePath(path); ok && isVolume(dev) {
		letter := strings.TrimPrefix(dev, `\\.\`)
		return fmt.Sprintf("close every program and window using %s (including a prompt whose current directory is on it) and try again; or repair it through the mounted file system with `wuoffline fix %s\\.` (the directory: the operating system's own renames and edits, no lock needed)", letter, letter)
	}
	return "close the program using it and try again"
}

// dropCache: volume and disk handles are not cached by Windows once the
// file system is dismounted; flushing (Sync, already done) is all there is.
func dropCache(*os.File, bool) error { return nil }

// LockDir locks a journal directory against a second wuoffline: a lock file
// opened without sharing and deleted on close (also when the process dies).
func LockDir(dir, target string) (release func() error, err error) {
	p := dir + `\wuoffline-` + lockKey(target) + `.lock`
	p16, err := windows.UTF16PtrFromString(p)
	if err != nil {
		return nil, fmt.Errorf("access: locking journal directory: %w", err)
	}
	h, err := windows.CreateFile(p16, windows.GENERIC_READ|windows.GENERIC_WRITE, 0, nil, windows.OPEN_ALWAYS, windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_DELETE_ON_CLOSE, 0)
	if err != nil {
		if errors.Is(err, windows.ERROR_SHARING_VIOLATION) {
			return nil, fmt.Errorf("access: %s: %w (wait for it to finish)", dir, ErrLocked)
		}
		return nil, fmt.Errorf("access: locking journal directory %s: %w", dir, err)
	}
	return func() error { return windows.CloseHandle(h) }, nil
}

// FixedVolumes lists the drive letters of the fixed (non-removable, local)
// volumes, "C:" first: what to diagnose when no TARGET is named in WinPE.
func FixedVolumes() ([]string, error) {
	mask, err := windows.GetLogicalDrives()
	if err != nil {
		return nil, fmt.Errorf("access: GetLogicalDrives: %w", err)
	}
	var out []string
	for i := 0; i < 26; i++ {
		if mask&(1<<i) == 0 {
			continue
		}
		letter := string(rune('A'+i)) + ":"
		root, _ := windows.UTF16PtrFromString(letter + `\`)
		if windows.GetDriveType(root) == windows.DRIVE_FIXED {
			out = append(out, letter)
		}
	}
	return out, nil
}
