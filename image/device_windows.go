//go:build windows

package image

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/windows"
)

// charDeviceOK is irrelevant on Windows: devices are recognised by name.
const charDeviceOK = false

// Device I/O control codes (winioctl.h).
const (
	ioctlDiskGetLengthInfo    = 0x0007405C // IOCTL_DISK_GET_LENGTH_INFO: GET_LENGTH_INFORMATION{Length int64}
	ioctlDiskGetDriveGeometry = 0x00070000 // IOCTL_DISK_GET_DRIVE_GEOMETRY: DISK_GEOMETRY, BytesPerSector at 20
	fsctlLockVolume           = 0x00090018 // FSCTL_LOCK_VOLUME
	fsctlDismountVolume       = 0x00090020 // FSCTL_DISMOUNT_VOLUME
)

// devicePath maps a drive letter ("D:", "D:\") to its volume device
// \\.\D:, and recognises \\.\ device paths (\\.\PhysicalDrive0,
// \\.\HarddiskVolume3); os.Stat cannot describe those.
func devicePath(path string) (string, bool) {
	p := strings.TrimRight(path, `\/`)
	if len(p) == 2 && p[1] == ':' && ('A' <= p[0] && p[0] <= 'Z' || 'a' <= p[0] && p[0] <= 'z') {
		return `\\.\` + strings.ToUpper(p[:1]) + ":", true
	}
	if strings.HasPrefix(path, `\\.\`) || strings.HasPrefix(path, `//./`) {
		return path, true
	}
	return path, false
}

// openFile opens read-only unless writable. os.OpenFile shares read and
// write access, which a volume in use by the system needs.
func openFile(path string, writable bool) (*os.File, error) {
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR
	}
	return os.OpenFile(path, flag, 0)
}

// deviceGeometry asks the disk driver for the length and the logical
// sector size: seeking to the end of a disk or volume handle gives no
// size on Windows.
func deviceGeometry(f *os.File) (int64, int, error) {
	h := windows.Handle(f.Fd())
	var n uint32
	length := make([]byte, 8)
	if err := windows.DeviceIoControl(h, ioctlDiskGetLengthInfo, nil, 0, &length[0], uint32(len(length)), &n, nil); err != nil {
		return 0, 0, fmt.Errorf("IOCTL_DISK_GET_LENGTH_INFO: %w", err)
	}
	geo := make([]byte, 24)
	if err := windows.DeviceIoControl(h, ioctlDiskGetDriveGeometry, nil, 0, &geo[0], uint32(len(geo)), &n, nil); err != nil {
		return 0, 0, fmt.Errorf("IOCTL_DISK_GET_DRIVE_GEOMETRY: %w", err)
	}
	ss := int(binary.LittleEndian.Uint32(geo[20:]))
	if ss != 512 && ss != 4096 {
		ss = 512
	}
	return int64(binary.LittleEndian.Uint64(length)), ss, nil
}

// wrapDevice makes every I/O sector-aligned: Windows refuses reads and
// writes of disk and volume handles that do not start and end on a sector
// boundary.
func wrapDevice(f *os.File, sector int) file {
	if sector == 0 {
		sector = 512
	}
	return newAlignedFile(f, sector)
}

// lockVolume locks and dismounts a volume opened for writing: Windows
// refuses raw writes into a mounted file system's clusters.
func lockVolume(f *os.File, path string) error {
	h := windows.Handle(f.Fd())
	var n uint32
	if err := windows.DeviceIoControl(h, fsctlLockVolume, nil, 0, nil, 0, &n, nil); err != nil {
		return fmt.Errorf("image: %s is in use (FSCTL_LOCK_VOLUME: %v): close every program and window using it, or repair it from WinPE", path, err)
	}
	if err := windows.DeviceIoControl(h, fsctlDismountVolume, nil, 0, nil, 0, &n, nil); err != nil {
		return fmt.Errorf("image: %s: dismounting the volume: %w", path, err)
	}
	return nil
}
