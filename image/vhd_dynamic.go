package image

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"
)

// vhdDynamicHeader is the dynamic disk header of a dynamic or differencing
// VHD (Microsoft "Virtual Hard Disk Image Format Specification", "Dynamic
// Disk Header Format"): 1024 big-endian bytes at the footer's data offset.
type vhdDynamicHeader struct {
	tableOffset     uint64   // 0x10: the block allocation table
	maxTableEntries uint32   // 0x1C
	blockSize       uint32   // 0x20
	parentUniqueID  [16]byte // 0x28
	parentName      string   // 0x40: 512 bytes of UTF-16 big-endian
	locators        []vhdLocator
}

// vhdLocator is one parent locator entry (0x240, eight of 24 bytes).
type vhdLocator struct {
	code   uint32 // platform code
	length uint32 // platform data length in bytes
	offset uint64 // absolute file offset of the platform data
}

// Parent locator platform codes.
const (
	vhdPlatW2ru = 0x57327275 // "W2ru": Windows relative path, UTF-16LE
	vhdPlatW2ku = 0x57326B75 // "W2ku": Windows absolute path, UTF-16LE
	vhdPlatMacX = 0x4D616358 // "MacX": file URL, UTF-8
)

const vhdDynHeaderSize = 1024

// vhdMaxBlockSize bounds the block size a header may declare (the
// specification's default is 2 MiB; qemu accepts up to 256 MiB): a block's
// copy-up is held in memory.
const vhdMaxBlockSize = 256 << 20

// parseVHDDynamicHeader checks the 1024 bytes of a dynamic disk header.
func parseVHDDynamicHeader(b []byte) (*vhdDynamicHeader, error) {
	if len(b) != vhdDynHeaderSize || !hasAt(b, 0, []byte("cxsparse")) {
		return nil, fmt.Errorf("VHD dynamic header: no cxsparse cookie")
	}
	if got, want := vhdChecksum(b, 0x24), binary.BigEndian.Uint32(b[0x24:]); got != want {
		return nil, fmt.Errorf("VHD dynamic header: checksum is %#08x, the header sums to %#08x: the header is damaged", want, got)
	}
	h := &vhdDynamicHeader{
		tableOffset:     binary.BigEndian.Uint64(b[0x10:]),
		maxTableEntries: binary.BigEndian.Uint32(b[0x1C:]),
		blockSize:       binary.BigEndian.Uint32(b[0x20:]),
	}
	copy(h.parentUniqueID[:], b[0x28:0x38])
	bs := h.blockSize
	if bs < 512 || bs > vhdMaxBlockSize || bs&(bs-1) != 0 {
		return nil, fmt.Errorf("VHD dynamic header: block size %d is not a power of two between 512 and %d", bs, vhdMaxBlockSize)
	}
	h.parentName = utf16String(b[0x40:0x240], binary.BigEndian)
	for i := range 8 {
		e := b[0x240+i*24:]
		l := vhdLocator{code: binary.BigEndian.Uint32(e), length: binary.BigEndian.Uint32(e[8:]), offset: binary.BigEndian.Uint64(e[16:])}
		if l.code != 0 {
			h.locators = append(h.locators, l)
		}
	}
	return h, nil
}

// utf16String decodes UTF-16 up to the first NUL.
func utf16String(b []byte, order binary.ByteOrder) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := order.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// parentPaths reads the parent locators' platform data (each at most 4 KiB,
// within the file) and returns the paths to try, relative ones first, then
// the parent's file name beside the child.
func (h *vhdDynamicHeader) parentPaths(f *containerFile) []string {
	var rel, abs []string
	for _, l := range h.locators {
		if l.length == 0 || l.length > 4096 {
			continue
		}
		b := make([]byte, l.length)
		if f.read(b, int64(l.offset), "parent locator") != nil {
			continue
		}
		switch l.code {
		case vhdPlatW2ru:
			rel = append(rel, windowsPath(utf16String(b, binary.LittleEndian)))
		case vhdPlatW2ku:
			p := windowsPath(utf16String(b, binary.LittleEndian))
			abs = append(abs, p, baseName(p))
		case vhdPlatMacX:
			abs = append(abs, strings.TrimPrefix(string(b), "file://"))
		}
	}
	out := append(rel, abs...)
	if h.parentName != "" {
		out = append(out, baseName(windowsPath(h.parentName)))
	}
	return out
}

// windowsPath turns a Windows path into one for this system: backslashes
// become slashes, a leading ".\" goes. A drive letter stays (the path then
// only exists on Windows).
func windowsPath(p string) string {
	p = strings.ReplaceAll(p, `\`, "/")
	return strings.TrimPrefix(p, "./")
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}
