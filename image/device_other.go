//go:build !linux && !windows

package image

import (
	"io"
	"os"
)

// charDeviceOK: on the BSDs and macOS disks are also reachable as
// character (raw) devices.
const charDeviceOK = true

// devicePath returns path unchanged.
func devicePath(path string) (string, bool) { return path, false }

// openFile opens read-only unless writable.
func openFile(path string, writable bool) (*os.File, error) {
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR
	}
	return os.OpenFile(path, flag, 0)
}

// deviceGeometry returns the size by seeking to the end; the sector size
// is not known here (0: detected from the partition table).
func deviceGeometry(f *os.File) (int64, int, error) {
	size, err := f.Seek(0, io.SeekEnd)
	return size, 0, err
}

// wrapDevice makes I/O sector-aligned when the sector size is known: raw
// devices on these systems refuse unaligned I/O.
func wrapDevice(f *os.File, sector int) file {
	if sector == 0 {
		sector = 512
	}
	return newAlignedFile(f, sector)
}

// lockVolume does nothing here.
func lockVolume(f *os.File, path string) error { return nil }
