package access

import "testing"

// TestWindowsDevicePath: the names a WinPE user types for a volume.
func TestWindowsDevicePath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		device   bool
	}{
		{`D:`, `\\.\D:`, true},
		{`d:`, `\\.\D:`, true},
		{`D:\`, `\\.\D:`, true},
		{`D:/`, `\\.\D:`, true},
		{`\\.\D:`, `\\.\D:`, true},
		{`\\.\d:\`, `\\.\D:`, true},
		{`//./E:`, `\\.\E:`, true},
		{`\\.\PhysicalDrive1`, `\\.\PhysicalDrive1`, true},
		{`\\.\HarddiskVolume3`, `\\.\HarddiskVolume3`, true},
		{`\\?\Volume{0b1c2d3e-0000-0000-0000-100000000000}\`, `\\?\Volume{0b1c2d3e-0000-0000-0000-100000000000}`, true},
		{`D:\.`, `D:\.`, false}, // the mounted directory
		{`D:\Windows`, `D:\Windows`, false},
		{`disk.img`, `disk.img`, false},
		{`C:\images\disk.vhd`, `C:\images\disk.vhd`, false},
		{`1:`, `1:`, false},
		{``, ``, false},
	} {
		got, dev := windowsDevicePath(tc.in)
		if got != tc.want || dev != tc.device {
			t.Errorf("windowsDevicePath(%q) = %q, %v; want %q, %v", tc.in, got, dev, tc.want, tc.device)
		}
	}
}
