package journal

import (
	"fmt"
	"path/filepath"
	"strings"
)

// OnDevice reports whether directory dir lives on device, the volume or
// disk about to be repaired, where a journal must never be: a Linux block
// device (/dev/sdb3, or the whole disk /dev/sdb holding it) or a Windows
// drive letter ("D:", `\\.\D:`). An image file or anything else that is
// not a device gives false: a journal beside an image is the default.
// Stacked devices (device mapper, LVM, a loop device over a file on the
// device) are not followed; a caller that wants certainty names the
// journal directory on another stick.
func OnDevice(dir, device string) (bool, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false, fmt.Errorf("journal directory %s: %w", dir, err)
	}
	if l := driveLetter(device); l != "" {
		return strings.EqualFold(filepath.VolumeName(abs), l), nil
	}
	return onDevice(abs, device)
}

// driveLetter returns "D:" for "D:", `D:\`, `\\.\D:` and `\\?\D:`, else "".
func driveLetter(s string) string {
	for _, p := range []string{`\\.\`, `\\?\`, `//./`} {
		s = strings.TrimPrefix(s, p)
	}
	s = strings.TrimRight(s, `\/`)
	if len(s) == 2 && s[1] == ':' && (s[0]|0x20) >= 'a' && (s[0]|0x20) <= 'z' {
		return strings.ToUpper(s)
	}
	return ""
}
