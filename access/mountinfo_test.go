//go:build linux

package access

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountinfo(t *testing.T) {
	in := "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n" +
		"garbage line\n" +
		"40 1 0:52 / /media/win rw,relatime shared:3 - fuseblk /tmp/disk.img rw,user_id=0\n"
	got := parseMountinfo([]byte(in))
	want := []mount{
		{dev: unix.Mkdev(98, 0), source: "/dev/root", point: "/mnt/with space", fstype: "ext3"},
		{dev: unix.Mkdev(0, 52), source: "/tmp/disk.img", point: "/media/win", fstype: "fuseblk"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// FuzzParseMountinfo: any text parses without a panic.
func FuzzParseMountinfo(f *testing.F) {
	f.Add([]byte("36 35 98:0 /mnt1 /mnt2 rw - ext3 /dev/root rw\n"))
	f.Add([]byte("1 2 3:4 / /a\\04 - x \\1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range parseMountinfo(b) {
			_ = m.source + m.point
		}
	})
}
