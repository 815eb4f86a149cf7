package image

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gabriel-vasile/mimetype"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// TestUnsupportedFormats makes each format with its own tool (qemu-img)
// or, for the formats no installed tool writes, with its documented header
// bytes, and checks that Open names the format and says how to convert it.
// (qcow2, VHDX and dynamic VHD are read: container_test.go.)
func TestUnsupportedFormats(t *testing.T) {
	dir := t.TempDir()
	qemu := func(format string, opts ...string) func(t *testing.T) string {
		return func(t *testing.T) string {
			q := testutil.RequireTool(t, "qemu-img")
			p := filepath.Join(dir, "disk."+format)
			args := append([]string{"create", "-q", "-f", format}, opts...)
			testutil.Run(t, q, append(args, p, "64M")...)
			return p
		}
	}
	header := func(name string, head []byte) func(t *testing.T) string {
		return func(t *testing.T) string {
			b := make([]byte, 64<<10)
			copy(b, head)
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}
	}
	gz := func(t *testing.T) string {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(make([]byte, 1<<20))
		zw.Close()
		p := filepath.Join(dir, "disk.img.gz")
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	convert := "qemu-img convert -O raw "
	tests := []struct {
		name   string
		make   func(t *testing.T) string
		format string
		hint   []string // substrings of the hint
	}{
		{"vmdk", qemu("vmdk"), FormatVMDK, []string{convert, "disk.vmdk"}},
		{"vmdk descriptor", qemu("vmdk", "-o", "subformat=monolithicFlat"), FormatVMDK, []string{convert}},
		{"wim", header("install.wim", []byte("MSWIM\x00\x00\x00\xd0\x00\x00\x00")), FormatWIM, []string{"a WIM is not a disk; apply it or point at the installed disk"}},
		{"regf", header("SYSTEM", []byte("regf\x01\x00\x00\x00\x01\x00\x00\x00")), FormatRegf, []string{"wuoffline reg"}},
		{"gzip", gz, "application/gzip", []string{"gunzip -k ", "disk.img.gz"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.make(t)
			before := testutil.SHA256File(t, p)
			tg, err := Open(p, Options{})
			if err == nil {
				tg.Close()
				t.Fatalf("Open succeeded: %+v", tg)
			}
			var ue *UnsupportedError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v is not an *UnsupportedError", err)
			}
			if ue.Format != tc.format {
				t.Errorf("Format %q, want %q", ue.Format, tc.format)
			}
			for _, h := range tc.hint {
				if !strings.Contains(ue.Hint, h) {
					t.Errorf("hint %q lacks %q", ue.Hint, h)
				}
			}
			if !strings.Contains(err.Error(), tc.format) {
				t.Errorf("message %q does not name %s", err, tc.format)
			}
			if testutil.SHA256File(t, p) != before {
				t.Error("the file changed")
			}
		})
	}
}

// TestMimetypeDetectors checks the detectors registered with mimetype on
// the documented signatures, and that they do not fire one byte off.
func TestMimetypeDetectors(t *testing.T) {
	at := func(off int, sig string) []byte {
		b := make([]byte, 1024)
		copy(b[off:], sig)
		return b
	}
	tests := []struct {
		name string
		in   []byte
		mime string
	}{
		{"regf", at(0, "regf"), MIMERegf},
		{"vhd dynamic", at(0, "conectix"), MIMEVHD},
		{"vhdx", at(0, "vhdxfile"), MIMEVHDX},
		{"qcow2", at(0, "QFI\xfb\x00\x00\x00\x03"), MIMEQCOW2},
		{"vmdk sparse", at(0, "KDMV"), MIMEVMDK},
		{"vmdk descriptor", []byte("# Disk DescriptorFile\nversion=1\n"), MIMEVMDK},
		{"wim", at(0, "MSWIM\x00\x00\x00"), MIMEWIM},
		{"ntfs", at(3, "NTFS    "), MIMENTFS},
		{"bitlocker", at(3, "-FVE-FS-"), MIMEBitLocker},
		{"ntfs off by one", at(4, "NTFS    "), "application/octet-stream"},
		{"regf off by one", at(1, "regf"), "application/octet-stream"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mimetype.Detect(tc.in); !got.Is(tc.mime) {
				t.Errorf("mimetype.Detect = %s, want %s", got, tc.mime)
			}
		})
	}
}

func TestIdentifyVHDFooter(t *testing.T) {
	// A fixed VHD made by qemu-img is recognised from its footer alone.
	raw := sparseFile(t, "r.img", 4<<20)
	vhd := toFixedVHD(t, raw)
	b, err := os.ReadFile(vhd)
	if err != nil {
		t.Fatal(err)
	}
	id, err := Identify(bytes.NewReader(b), int64(len(b)))
	if err != nil || id.Format != FormatVHDFixed || id.DataSize != 4<<20 {
		t.Fatalf("Identify = %+v, %v", id, err)
	}
	// A damaged footer (checksum no longer matching) is an error, not a
	// raw disk that happens to end in "conectix".
	b[len(b)-512+0x30] ^= 1
	if _, err := Identify(bytes.NewReader(b), int64(len(b))); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("damaged footer: %v", err)
	}
}
