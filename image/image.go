// Package image turns a TARGET named on the command line into the volumes it
// holds: a raw disk image or block device with an MBR or GPT partition table
// (512-byte or 4096-byte logical sectors), a single partition or bare
// volume, a VM disk container (fixed, dynamic or differencing VHD, VHDX,
// qcow2 versions 2 and 3, read through their parents), or a directory
// where a volume is already mounted.
//
// Nothing is trusted before it is checked: the container format is
// identified first (formats that are not read, such as VMDK, get an
// *UnsupportedError that says how to convert them), every container table
// is checked against the file before it is followed, the partition table
// is read with go-diskfs after its header has been validated here, and
// every partition is checked against the disk and against the others.
// Readers and writers handed out are bounded to one volume.
//
// A Target is opened read-only unless Options.Writable is set; a read-only
// Target never writes a byte. A container is written only through
// Target.Over, which runs the container's logic over the caller's reader
// and writer of the whole file, so that a journal records every byte of
// the file that changes, container metadata included.
package image

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/wuoffline/wuoffline/access"
)

// Options controls how Open opens a target.
type Options struct {
	// Writable opens the file or device read-write with exclusive access
	// (access.Exclusive: refused with access.ErrReadOnly, *access.InUseError
	// or access.ErrLocked). Without it the target is opened read-only and
	// WriterAt always fails.
	Writable bool
}

// Kind says what a target is.
type Kind string

// The kinds of target.
const (
	KindDirectory Kind = "directory" // a directory: a volume mounted by the OS
	KindDisk      Kind = "disk"      // a partitioned disk (MBR or GPT)
	KindVolume    Kind = "volume"    // a bare volume: a partition on its own, or a file system image
)

// Target is an opened TARGET: where its data is and which volumes it holds.
type Target struct {
	Path       string // as given to Open
	Kind       Kind
	Format     string // container format: FormatRaw, FormatVHDFixed, FormatVHDDynamic, FormatVHDDifferencing, FormatVHDX, FormatQCOW2 or FormatDirectory
	Device     bool   // a block device (or a Windows disk or volume device), not a file
	SectorSize int    // logical sector size used for the partition table (512 or 4096); 0 for a bare volume or directory
	Table      string // "gpt", "mbr", or "" (bare volume, directory)
	DiskID     string // GPT disk GUID, or the MBR disk signature as 8 hex digits; "" otherwise
	Size       int64  // bytes of disk or volume data: the virtual disk of a container (a VHD footer excluded)
	Volumes    []Volume
	// Warnings lists what was odd but did not stop the target from being
	// read, e.g. a GPT read from its backup copy because the primary is
	// damaged. Damaged partitions are reported in Volume.Damaged instead.
	Warnings []string

	f   file        // the opened file or device; nil for a directory
	r   io.ReaderAt // reads of the data area, [0, Size)
	w   io.WriterAt // writes of the data area; nil unless Writable
	dir string      // the directory, for KindDirectory

	fileSize int64  // bytes of the file or device (container metadata included)
	lay      layer  // the container logic (qcow2, VHDX, dynamic VHD); nil for raw data
	chain    *chain // the parents a differencing disk opened; nil otherwise
	over     bool   // made by Over: writes go through the container logic
}

// Volume is one partition of a disk, or the whole of a bare volume.
type Volume struct {
	Index   int    // partition number as the table numbers it (1-based; MBR logical partitions from 5); 0 for a bare volume
	Offset  int64  // bytes from the start of the disk data
	Size    int64  // bytes
	Type    string // human partition type: "EFI System", "Microsoft reserved", "Basic data", "Windows Recovery", "NTFS/exFAT/HPFS (0x07)", ...
	TypeID  string // the raw type: GPT type GUID (upper case) or MBR type byte as "0x07"; "" for a bare volume
	GUID    string // GPT unique partition GUID (upper case); "" otherwise
	Name    string // GPT partition name ("" for MBR)
	Content string // what its first bytes say: ContentNTFS, ContentBitLocker, ContentFAT, ContentExFAT, ContentEmpty, ContentUnknown
	// Damaged says why the table entry cannot be trusted (it extends beyond
	// the disk, overlaps another partition or the table itself); "" when the
	// entry is sound. A damaged volume can be read (clipped to the disk) but
	// WriterAt refuses it.
	Damaged string
}

// What a volume's first bytes say it holds.
const (
	ContentNTFS      = "ntfs"
	ContentBitLocker = "bitlocker"
	ContentFAT       = "fat"
	ContentExFAT     = "exfat"
	ContentEmpty     = "empty" // the first 4 KiB are all zero
	ContentUnknown   = "unknown"
)

// UnsupportedError reports a target in a format this program does not read
// (yet), with what to do about it.
type UnsupportedError struct {
	Format string // e.g. "qcow2", "vhdx", "vhd-dynamic", "regf"
	Hint   string // e.g. "convert it: qemu-img convert -O raw disk.qcow2 disk.img"
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("image: %s is not supported: %s", e.Format, e.Hint)
}

// file is what Open needs of an opened file or device.
type file interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	Sync() error
}

// Open opens the TARGET at path: an image file, a block device, a directory
// (a mounted volume) or, on Windows, a drive letter ("D:", opened as the
// volume \\.\D:) or \\.\PhysicalDriveN. The bytes are opened by package
// access: with Options.Writable, exclusively (refused when read-only, in use
// or locked by another wuoffline). It identifies the container
// format, reads the partition table if there is one and reports every
// volume it finds.
//
// Open fails with *UnsupportedError for formats not read yet (dynamic VHD,
// VHDX, qcow2, VMDK, WIM, a registry hive, a compressed file), and with an
// error saying what to do when the path is missing or not readable.
func Open(path string, opts Options) (*Target, error) {
	if path == "" {
		return nil, errors.New("image: no target given: name a disk image, a block device or a mounted directory")
	}
	if _, isVolume := access.VolumePath(path); !isVolume {
		// A directory is a mounted volume; anything else (a missing path
		// included) is for access.Open to open or explain.
		if st, err := os.Stat(path); err == nil && st.IsDir() {
			return &Target{Path: path, Kind: KindDirectory, Format: FormatDirectory, dir: path}, nil
		}
	}
	mode := access.Read
	if opts.Writable {
		mode = access.Exclusive
	}
	f, err := access.Open(path, mode)
	if err != nil {
		return nil, err
	}
	t, err := openOn(path, f, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	return t, nil
}

// openOn finishes Open once the file or device is open.
func openOn(path string, f *access.File, opts Options) (*Target, error) {
	t, err := probeNamed(path, f, f.Size(), f.SectorSize())
	if err != nil {
		return nil, err
	}
	t.Path = path
	t.Device = f.Device()
	t.f = f
	// A container (qcow2, VHD, VHDX) is written only through Over, where its
	// metadata writes are journaled with the data.
	if opts.Writable && t.lay == nil {
		t.w = f
	}
	return t, nil
}

// Dir returns the directory of a KindDirectory target ("" otherwise).
func (t *Target) Dir() string { return t.dir }

// ReaderAt returns a bounds-checked view of the bytes of v: reads before
// its start or past its end (or past the end of the disk data, for a
// damaged entry) are not possible. A volume that is not within the target
// at all yields an empty reader.
func (t *Target) ReaderAt(v Volume) *io.SectionReader {
	off, n := clip(v.Offset, v.Size, t.Size)
	if t.r == nil {
		return io.NewSectionReader(emptyReader{}, 0, 0)
	}
	return io.NewSectionReader(t.r, off, n)
}

// WriterAt returns a writer of the bytes of v, bounds-checked: a write that
// would cross the volume's end (or start before it) fails whole, with
// nothing written. It fails unless the target was opened Writable, v is one
// of t.Volumes, and v is not damaged.
func (t *Target) WriterAt(v Volume) (io.WriterAt, error) {
	if t.w == nil {
		if t.Kind == KindDirectory {
			return nil, fmt.Errorf("image: %s is a directory: it has no volume to write to", t.Path)
		}
		if t.lay != nil && !t.over {
			return nil, fmt.Errorf("image: %s is a %s container: it is written only through Target.Over (a planned, journaled change)", t.Path, t.Format)
		}
		return nil, fmt.Errorf("image: %s was opened read-only", t.Path)
	}
	found := false
	for _, tv := range t.Volumes {
		if tv.Index == v.Index && tv.Offset == v.Offset && tv.Size == v.Size {
			found = true
			v = tv
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("image: %s: volume %d at offset %d (%d bytes) is not one of this target's volumes", t.Path, v.Index, v.Offset, v.Size)
	}
	if v.Damaged != "" {
		return nil, fmt.Errorf("image: %s: refusing to write partition %d: %s", t.Path, v.Index, v.Damaged)
	}
	if v.Offset < 0 || v.Size < 0 || v.Offset > t.Size || v.Size > t.Size-v.Offset {
		return nil, fmt.Errorf("image: %s: partition %d is not within the disk", t.Path, v.Index)
	}
	return &boundedWriter{w: t.w, off: v.Offset, size: v.Size, what: fmt.Sprintf("%s volume %d", t.Path, v.Index)}, nil
}

// Sync flushes writes to stable storage. It does nothing for a read-only
// target.
func (t *Target) Sync() error {
	if t.w == nil || t.f == nil {
		return nil
	}
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("image: %s: flushing writes: %w", t.Path, err)
	}
	return nil
}

// Close closes the file or device, and the parents of a differencing disk
// that Open or New opened. It is safe to call more than once. A Target
// made by Over closes nothing: its bytes and parents belong to the Target
// it was made from.
func (t *Target) Close() error {
	var cerr error
	if t.chain != nil && !t.over {
		cerr = t.chain.close()
	}
	if t.f == nil {
		if cerr != nil {
			return fmt.Errorf("image: closing the parents of %s: %w", t.Path, cerr)
		}
		return nil
	}
	err := errors.Join(t.f.Close(), cerr)
	t.f, t.r, t.w = nil, nil, nil
	if err != nil {
		return fmt.Errorf("image: closing %s: %w", t.Path, err)
	}
	return nil
}

// clip bounds [off, off+n) to [0, limit), returning an empty range at 0
// when nothing of it is inside.
func clip(off, n, limit int64) (int64, int64) {
	if off < 0 || n <= 0 || limit <= 0 || off >= limit {
		return 0, 0
	}
	if n > limit-off {
		n = limit - off
	}
	return off, n
}

// boundedWriter writes into [off, off+size) of w and nothing else.
type boundedWriter struct {
	w         io.WriterAt
	off, size int64
	what      string
}

// WriteAt writes p at off within the volume. A write that does not fit
// whole is refused before any byte is written.
func (b *boundedWriter) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > b.size || int64(len(p)) > b.size-off {
		return 0, fmt.Errorf("image: %s: write of %d bytes at offset %d crosses the volume's bounds (%d bytes); nothing written", b.what, len(p), off, b.size)
	}
	return b.w.WriteAt(p, b.off+off)
}

// emptyReader reads nothing.
type emptyReader struct{}

func (emptyReader) ReadAt(p []byte, off int64) (int, error) { return 0, io.EOF }
