package image

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/gabriel-vasile/mimetype"
)

// Container formats that Identify reports.
const (
	FormatRaw             = "raw"              // raw disk or volume data
	FormatVHDFixed        = "vhd-fixed"        // fixed VHD: raw data, then a 512-byte "conectix" footer
	FormatVHDDynamic      = "vhd-dynamic"      // dynamic VHD: footer copy, dynamic header, BAT, blocks, footer
	FormatVHDDifferencing = "vhd-differencing" // differencing VHD: a dynamic VHD read through its parent
	FormatVHDX            = "vhdx"             // VHDX, fixed, dynamic or differencing
	FormatQCOW2           = "qcow2"            // QEMU copy-on-write, versions 2 and 3
	FormatVMDK            = "vmdk"             // not supported: convert it
	FormatWIM             = "wim"              // a Windows image archive, not a disk
	FormatRegf            = "regf"             // a registry hive on its own, not a disk
	FormatDirectory       = "directory"        // a mounted volume
)

// MIME types registered with mimetype for the formats it does not know.
const (
	MIMERegf      = "application/x-ms-regf"
	MIMEVHD       = "application/x-vhd" // a dynamic or differencing VHD: its footer copy is at 0
	MIMEVHDX      = "application/x-vhdx"
	MIMEQCOW2     = "application/x-qemu-disk"
	MIMEVMDK      = "application/x-vmdk"
	MIMEWIM       = "application/x-ms-wim"
	MIMENTFS      = "application/x-ntfs-volume"
	MIMEBitLocker = "application/x-bitlocker-volume"
)

// The signatures the detectors look for, each with the format fact it
// relies on.
var (
	sigRegf      = []byte("regf")                  // regf base block, offset 0
	sigVHD       = []byte("conectix")              // VHD footer cookie; dynamic disks copy the footer to offset 0
	sigVHDX      = []byte("vhdxfile")              // VHDX file type identifier, offset 0
	sigQCOW      = []byte("QFI\xfb")               // QCOW magic, offset 0, all versions
	sigVMDK      = []byte("KDMV")                  // VMDK hosted sparse extent header, offset 0
	sigVMDKCOWD  = []byte("COWD")                  // ESX sparse extent header, offset 0
	sigVMDKDesc  = []byte("# Disk DescriptorFile") // monolithic/split VMDK descriptor text
	sigWIM       = []byte("MSWIM\x00\x00\x00")     // WIM header ImageTag, offset 0
	sigNTFS      = []byte("NTFS    ")              // NTFS boot sector OEM ID, offset 3
	sigBitLocker = []byte("-FVE-FS-")              // BitLocker volume header signature, offset 3
	sigExFAT     = []byte("EXFAT   ")              // exFAT boot sector file system name, offset 3
)

func hasAt(b []byte, off int, sig []byte) bool {
	return off >= 0 && len(b) >= off+len(sig) && bytes.Equal(b[off:off+len(sig)], sig)
}

func detector(off int, sigs ...[]byte) func([]byte, uint32) bool {
	return func(raw []byte, _ uint32) bool {
		for _, s := range sigs {
			if hasAt(raw, off, s) {
				return true
			}
		}
		return false
	}
}

// init registers the detectors with mimetype. mimetype.Extend puts them in
// front of its own, so they are asked first; registering once at package
// initialisation keeps that tree free of duplicates.
func init() {
	mimetype.Extend(detector(0, sigRegf), MIMERegf, ".dat")
	mimetype.Extend(detector(0, sigVHD), MIMEVHD, ".vhd")
	mimetype.Extend(detector(0, sigVHDX), MIMEVHDX, ".vhdx")
	mimetype.Extend(detector(0, sigQCOW), MIMEQCOW2, ".qcow2")
	mimetype.Extend(detector(0, sigVMDK, sigVMDKCOWD, sigVMDKDesc), MIMEVMDK, ".vmdk")
	mimetype.Extend(detector(0, sigWIM), MIMEWIM, ".wim")
	mimetype.Extend(detector(3, sigNTFS), MIMENTFS, ".ntfs")
	mimetype.Extend(detector(3, sigBitLocker), MIMEBitLocker, ".bitlocker")
}

// Identification is what Identify found.
type Identification struct {
	Format string // one of the Format constants, or a MIME type mimetype found ("application/gzip")
	MIME   string // the MIME type of the head of the file
	// DataSize is the number of bytes of disk data: the size minus the
	// footer for a fixed VHD, the size otherwise (for a container such as
	// qcow2 the file's size: its virtual size is in its header).
	DataSize int64
	// Warning says what is odd about a format that can still be read,
	// e.g. a fixed VHD holding less data than its footer's disk size.
	Warning string
}

// headSize is how much of the start of a file identification looks at; it
// is mimetype's default read limit.
const headSize = 4096

// vhdFooterSize is the size of the VHD footer (Microsoft VHD specification,
// "Hard Disk Footer Format"): every VHD ends with it.
const vhdFooterSize = 512

// Identify says what the size bytes of r are. A format this package cannot
// open as a disk or volume (VMDK, WIM, a hive, an archive) yields an
// *UnsupportedError (with a generic file name in its hint); anything not
// recognised is FormatRaw.
func Identify(r io.ReaderAt, size int64) (Identification, error) {
	if size < 0 {
		return Identification{}, fmt.Errorf("identify: negative size %d", size)
	}
	head := make([]byte, min(size, headSize))
	if err := readFull(r, head, 0); err != nil {
		return Identification{}, fmt.Errorf("identify: reading the first %d bytes: %w", len(head), err)
	}
	m := mimetype.Detect(head)
	id := Identification{Format: FormatRaw, MIME: m.String(), DataSize: size}

	// A fixed VHD is raw disk data with the footer at the end, so its head
	// says nothing: mimetype never sees the footer. Read it here.
	if size >= 2*vhdFooterSize {
		foot := make([]byte, vhdFooterSize)
		if err := readFull(r, foot, size-vhdFooterSize); err != nil {
			return id, fmt.Errorf("identify: reading the VHD footer position at %d: %w", size-vhdFooterSize, err)
		}
		if hasAt(foot, 0, sigVHD) {
			f, err := parseVHDFooter(foot)
			if err != nil {
				return id, fmt.Errorf("identify: VHD footer at %d: %w", size-vhdFooterSize, err)
			}
			switch f.diskType {
			case vhdTypeFixed:
				id.Format = FormatVHDFixed
				id.DataSize = size - vhdFooterSize
				if f.currentSize != uint64(id.DataSize) {
					// The data is what the file holds before the
					// footer; a different disk size in the footer means
					// the file was cut or padded after it was made.
					id.Warning = fmt.Sprintf("the VHD footer gives a disk size of %d bytes but the file holds %d bytes of data: it was truncated or padded", f.currentSize, id.DataSize)
				}
				return id, nil
			case vhdTypeDynamic:
				id.Format = FormatVHDDynamic
				return id, nil
			case vhdTypeDifferencing:
				id.Format = FormatVHDDifferencing
				return id, nil
			default:
				return id, fmt.Errorf("identify: VHD footer at %d has unknown disk type %d", size-vhdFooterSize, f.diskType)
			}
		}
	}

	switch {
	case m.Is(MIMEVHD):
		// The footer copy at 0 without a footer at the end: a dynamic VHD
		// cut short, or one with a damaged footer.
		return id, fmt.Errorf("identify: a dynamic VHD (footer copy at 0) without a valid footer at its end: the file is cut short or its footer is damaged")
	case m.Is(MIMEVHDX):
		id.Format = FormatVHDX
		return id, nil
	case m.Is(MIMEQCOW2):
		id.Format = FormatQCOW2
		return id, nil
	case m.Is(MIMEVMDK):
		return id, unsupported(FormatVMDK, "")
	case m.Is(MIMEWIM):
		return id, unsupported(FormatWIM, "")
	case m.Is(MIMERegf):
		return id, unsupported(FormatRegf, "")
	}
	for _, c := range notDisks {
		if m.Is(c.mime) {
			return id, unsupported(c.mime, "")
		}
	}
	return id, nil
}

// notDisks are types mimetype knows that a user may point at by mistake: a
// compressed or archived image, or installation media. Other MIME types are
// not trusted to mean "not a disk": the boot code of an MBR can look like
// anything.
var notDisks = []struct{ mime, hint string }{
	{"application/gzip", "it is gzip-compressed: decompress it first (gunzip -k FILE)"},
	{"application/x-xz", "it is xz-compressed: decompress it first (xz -dk FILE)"},
	{"application/x-bzip2", "it is bzip2-compressed: decompress it first (bunzip2 -k FILE)"},
	{"application/zstd", "it is zstd-compressed: decompress it first (zstd -d FILE)"},
	{"application/zip", "it is a zip archive: extract the disk image from it first"},
	{"application/x-7z-compressed", "it is a 7-Zip archive: extract the disk image from it first"},
	{"application/x-rar-compressed", "it is a RAR archive: extract the disk image from it first"},
	{"application/x-tar", "it is a tar archive: extract the disk image from it first"},
	{"application/x-iso9660-image", "it is an ISO image (installation media), not an installed Windows disk: point at the disk Windows is installed on"},
}

// unsupported builds the error for a container format not read here, with
// the command that converts path (a placeholder when path is "").
func unsupported(format, path string) *UnsupportedError {
	return &UnsupportedError{Format: format, Hint: fillHint(hintFor(format), path)}
}

// hintFor gives the advice for a format; IN and OUT are filled by fillHint.
func hintFor(format string) string {
	switch format {
	case FormatRegf:
		return "a registry hive is not a disk: inspect or edit it with `wuoffline reg`, or point at the disk or volume that holds it"
	case FormatWIM:
		return "a WIM is not a disk; apply it or point at the installed disk"
	case FormatVMDK:
		return "VMDK is not read: convert it to a raw image (qemu-img convert -O raw IN OUT), or to qcow2 or VHDX, which are fixed in place; convert it back with qemu-img convert -O vmdk if the hypervisor needs VMDK"
	}
	for _, c := range notDisks {
		if c.mime == format {
			return c.hint
		}
	}
	return "convert it to a raw image: qemu-img convert -O raw IN OUT"
}

// fillHint puts the file name and a suggested output name into a hint.
func fillHint(hint, path string) string {
	if path == "" {
		return strings.NewReplacer("IN OUT", "INPUT OUTPUT.img").Replace(hint)
	}
	out := strings.TrimSuffix(path, filepath.Ext(path)) + ".img"
	if out == path {
		out = path + ".raw.img"
	}
	return strings.NewReplacer("IN OUT", quoteArg(path)+" "+quoteArg(out), "FILE", quoteArg(path)).Replace(hint)
}

// quoteArg quotes a path for a shell command line when it needs it.
func quoteArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]#~!&;|<>(){}") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// readFull reads len(p) bytes at off, treating a short read as an error.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}
