package image

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"
)

// Metadata items ([MS-VHDX] 2.6.2).
var (
	vhdxMetaFileParams    = mustGUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	vhdxMetaDiskSize      = mustGUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	vhdxMetaPage83        = mustGUID("BECA12AB-B2E6-4523-93EF-C309E000C746")
	vhdxMetaLogicalSect   = mustGUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
	vhdxMetaPhysicalSect  = mustGUID("CDA348C7-445D-4471-9CC9-E9885251C556")
	vhdxMetaParent        = mustGUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
	vhdxParentLocatorVHDX = mustGUID("B04AEFB7-D19E-4A81-B789-25B8E9445913")
)

// vhdxMetadata is what the metadata region says about the virtual disk.
type vhdxMetadata struct {
	blockSize   uint32 // File Parameters: payload block size
	hasParent   bool   // File Parameters flag bit 1: a differencing disk
	diskSize    uint64 // Virtual Disk Size
	logicalSect uint32 // Logical Sector Size: 512 or 4096
	parent      map[string]string
}

// parseVHDXMetadata reads the metadata table at the start of the region
// (signature "metadata", at most 2047 entries of 32 bytes) and the items
// it names, each within the region and past the table's 64 KiB.
func parseVHDXMetadata(region []byte) (*vhdxMetadata, error) {
	if len(region) < 64<<10 || !hasAt(region, 0, []byte("metadata")) {
		return nil, fmt.Errorf("metadata table: no \"metadata\" signature")
	}
	le := binary.LittleEndian
	n := int(le.Uint16(region[10:]))
	if n > vhdxMaxEntries {
		return nil, fmt.Errorf("metadata table: %d entries, more than %d", n, vhdxMaxEntries)
	}
	m := &vhdxMetadata{}
	found := map[guid][]byte{}
	for i := range n {
		e := region[32+i*32:]
		var id guid
		copy(id[:], e[:16])
		off, l, flags := le.Uint32(e[16:]), le.Uint32(e[20:]), le.Uint32(e[24:])
		required := flags&4 != 0
		switch id {
		case vhdxMetaFileParams, vhdxMetaDiskSize, vhdxMetaPage83, vhdxMetaLogicalSect, vhdxMetaPhysicalSect, vhdxMetaParent:
		default:
			if required {
				return nil, fmt.Errorf("metadata item %d is required but of a kind this program does not know", i)
			}
			continue
		}
		if l == 0 {
			continue
		}
		if off < 64<<10 || uint64(off)+uint64(l) > uint64(len(region)) {
			return nil, fmt.Errorf("metadata item %d (%d bytes at %d) is not within the metadata region", i, l, off)
		}
		found[id] = region[off : off+l]
	}
	fp, ds, ls := found[vhdxMetaFileParams], found[vhdxMetaDiskSize], found[vhdxMetaLogicalSect]
	if len(fp) < 8 || len(ds) < 8 || len(ls) < 4 {
		return nil, fmt.Errorf("metadata: the file parameters, virtual disk size or logical sector size item is missing or short")
	}
	m.blockSize = le.Uint32(fp)
	m.hasParent = le.Uint32(fp[4:])&2 != 0
	m.diskSize = le.Uint64(ds)
	m.logicalSect = le.Uint32(ls)
	if bs := m.blockSize; bs < 1<<20 || bs > 256<<20 || bs&(bs-1) != 0 {
		return nil, fmt.Errorf("metadata: block size %d is not a power of two between 1 MiB and 256 MiB", bs)
	}
	if m.logicalSect != 512 && m.logicalSect != 4096 {
		return nil, fmt.Errorf("metadata: logical sector size %d is not 512 or 4096", m.logicalSect)
	}
	if m.diskSize == 0 || m.diskSize > maxVirtualSize || m.diskSize%uint64(m.logicalSect) != 0 {
		return nil, fmt.Errorf("metadata: virtual disk size %d is 0, above 64 TiB or not a whole number of sectors", m.diskSize)
	}
	if m.hasParent {
		p, err := parseVHDXParentLocator(found[vhdxMetaParent])
		if err != nil {
			return nil, err
		}
		m.parent = p
	}
	return m, nil
}

// parseVHDXParentLocator reads the parent locator item ([MS-VHDX]
// 2.6.2.6): a locator type GUID, a key-value count, then entries of key
// and value offsets (from the item's start) and lengths, UTF-16LE.
func parseVHDXParentLocator(b []byte) (map[string]string, error) {
	if len(b) < 20 {
		return nil, fmt.Errorf("metadata: a differencing disk without a parent locator")
	}
	var typ guid
	copy(typ[:], b[:16])
	if typ != vhdxParentLocatorVHDX {
		return nil, fmt.Errorf("metadata: the parent locator is of a type this program does not know")
	}
	n := int(binary.LittleEndian.Uint16(b[18:]))
	if 20+n*12 > len(b) {
		return nil, fmt.Errorf("metadata: the parent locator's %d entries do not fit in it", n)
	}
	out := map[string]string{}
	str := func(off uint32, l uint16) (string, error) {
		if uint64(off)+uint64(l) > uint64(len(b)) || l%2 != 0 {
			return "", fmt.Errorf("metadata: a parent locator string (%d bytes at %d) is outside the item", l, off)
		}
		u := make([]uint16, l/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(b[int(off)+2*i:])
		}
		return string(utf16.Decode(u)), nil
	}
	for i := range n {
		e := b[20+i*12:]
		k, err := str(binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint16(e[8:]))
		if err != nil {
			return nil, err
		}
		v, err := str(binary.LittleEndian.Uint32(e[4:]), binary.LittleEndian.Uint16(e[10:]))
		if err != nil {
			return nil, err
		}
		out[strings.ToLower(k)] = v
	}
	return out, nil
}

// parentPaths are the paths to try for a differencing VHDX's parent:
// relative first, then absolute, then the file name beside the child.
func (m *vhdxMetadata) parentPaths() []string {
	var out []string
	for _, k := range []string{"relative_path", "absolute_win32_path", "volume_path"} {
		if p := m.parent[k]; p != "" {
			out = append(out, windowsPath(p))
		}
	}
	for _, k := range []string{"relative_path", "absolute_win32_path"} {
		if p := m.parent[k]; p != "" {
			out = append(out, baseName(windowsPath(p)))
		}
	}
	return out
}
