//go:build linux && (amd64 || arm64)

package offline

import (
	"os"
	"syscall"
)

// dropCache asks the kernel to drop its cached pages of an image file or
// device (posix_fadvise POSIX_FADV_DONTNEED, after the fix's fsync), so that
// verification reads what is really on the device, not what we just wrote.
func dropCache(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	const fadvDontNeed = 4
	syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, fadvDontNeed, 0, 0)
}
