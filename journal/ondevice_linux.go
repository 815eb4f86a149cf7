package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// onDevice compares the device number of the file system holding dir with
// the device's own number, and with that of the whole disk holding that
// file system (sysfs: /sys/dev/block/MAJ:MIN of a partition resolves into
// its disk's directory, whose "dev" file holds the disk's MAJ:MIN).
func onDevice(dir, device string) (bool, error) {
	var ds, dv syscall.Stat_t
	if err := syscall.Stat(dir, &ds); err != nil {
		return false, fmt.Errorf("journal directory %s: %w", dir, err)
	}
	if err := syscall.Stat(device, &dv); err != nil {
		return false, fmt.Errorf("target %s: %w", device, err)
	}
	if dv.Mode&syscall.S_IFMT != syscall.S_IFBLK {
		return false, nil
	}
	if uint64(ds.Dev) == uint64(dv.Rdev) {
		return true, nil
	}
	part, err := filepath.EvalSymlinks(fmt.Sprintf("/sys/dev/block/%s", majMin(uint64(ds.Dev))))
	if err != nil {
		return false, nil // not a block device (tmpfs, overlay, network)
	}
	if _, err := os.Stat(filepath.Join(part, "partition")); err != nil {
		return false, nil // a whole device, already compared
	}
	disk, err := os.ReadFile(filepath.Join(filepath.Dir(part), "dev"))
	if err != nil {
		return false, nil
	}
	return strings.TrimSpace(string(disk)) == majMin(uint64(dv.Rdev)), nil
}

// majMin formats a Linux dev_t as "MAJ:MIN" (the glibc encoding: major in
// bits 8-19 and 32-43, minor in bits 0-7 and 20-31).
func majMin(dev uint64) string {
	major := (dev>>8)&0xfff | (dev>>32)&^uint64(0xfff)
	minor := dev&0xff | (dev>>12)&^uint64(0xff)
	return fmt.Sprintf("%d:%d", major, minor)
}
