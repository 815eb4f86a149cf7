//go:build linux

package image

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// charDeviceOK: Linux disks are block devices; a character device is not a
// disk.
const charDeviceOK = false

// devicePath returns path unchanged: on Linux a device is named by its node
// (/dev/sda, /dev/nvme0n1p3) and recognised by os.Stat.
func devicePath(path string) (string, bool) { return path, false }

// openFile opens read-only unless writable.
func openFile(path string, writable bool) (*os.File, error) {
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR
	}
	return os.OpenFile(path, flag, 0)
}

// deviceGeometry returns a block device's size (seeking to the end works
// for block devices on Linux) and its logical sector size (BLKSSZGET).
func deviceGeometry(f *os.File) (int64, int, error) {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, 0, err
	}
	ss, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET)
	if err != nil {
		return 0, 0, fmt.Errorf("BLKSSZGET: %w", err)
	}
	if ss != 512 && ss != 4096 {
		// 1024 and 2048-byte logical sectors exist only on optical media.
		ss = 0
	}
	return size, ss, nil
}

// wrapDevice returns f itself: Linux block devices opened without O_DIRECT
// go through the page cache and accept I/O at any offset and length.
func wrapDevice(f *os.File, sector int) file { return f }

// lockVolume does nothing on Linux: the user unmounts the volume first, and
// the kernel refuses nothing a mount would need.
func lockVolume(f *os.File, path string) error { return nil }
