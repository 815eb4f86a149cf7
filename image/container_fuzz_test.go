package image

import (
	"encoding/binary"
	"io"
	"testing"
)

// memFile is a container file in memory: a base image shared by every
// fuzz run and the pages written over it, growing as writes go past the
// end (at most maxGrow bytes, so that a hostile header cannot make a fuzz
// run allocate without bound through the writer either).
type memFile struct {
	base    []byte
	pages   map[int64][]byte // 4 KiB pages written
	size    int64
	maxGrow int64
}

const memPage = 4096
const maxGrow = 64 << 20

func newMemFile(base []byte) *memFile {
	return &memFile{base: base, pages: map[int64][]byte{}, size: int64(len(base)), maxGrow: maxGrow}
}

func (m *memFile) Size() int64 { return m.size }

func (m *memFile) page(i int64, create bool) []byte {
	if p, ok := m.pages[i]; ok {
		return p
	}
	if !create {
		return nil
	}
	p := make([]byte, memPage)
	if s := i * memPage; s < int64(len(m.base)) {
		copy(p, m.base[s:])
	}
	m.pages[i] = p
	return p
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= m.size {
			return n, io.EOF
		}
		i, in := pos/memPage, pos%memPage
		k := int(min(int64(len(p)-n), memPage-in, m.size-pos))
		if pg := m.page(i, false); pg != nil {
			copy(p[n:n+k], pg[in:])
		} else if pos < int64(len(m.base)) {
			c := copy(p[n:n+k], m.base[pos:])
			clear(p[n+c : n+k])
		} else {
			clear(p[n : n+k])
		}
		n += k
	}
	return n, nil
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m.base))+m.maxGrow {
		return 0, io.ErrShortWrite
	}
	for n := 0; n < len(p); {
		pos := off + int64(n)
		i, in := pos/memPage, pos%memPage
		k := int(min(int64(len(p)-n), memPage-in))
		copy(m.page(i, true)[in:], p[n:n+k])
		n += k
	}
	m.size = max(m.size, off+int64(len(p)))
	return len(p), nil
}

// readContainerSeed reads a gzipped container seed (at most 16 MiB).
func readContainerSeed(t testing.TB, name string) []byte { return readSeedLimit(t, name, 16<<20) }

// applyPatches damages a copy of base as script says: records of a 4-byte
// offset (taken modulo the file size plus 1 MiB, so that the file can also
// be lengthened), a length byte and that many bytes.
func applyPatches(m *memFile, script []byte) {
	for len(script) >= 5 {
		off := int64(binary.LittleEndian.Uint32(script)) % (int64(len(m.base)) + 1<<20)
		n := int(script[4])
		script = script[5:]
		n = min(n, len(script))
		m.WriteAt(script[:n], off)
		script = script[n:]
	}
}

// fuzzContainer opens the patched seed as a container, reads some of it,
// and writes a little through it: no panic, no hang, and what was written
// reads back.
//
// When where has bit 2 set, the checksums of the patched structures are
// made right again, so that the fuzzer reaches past them.
func fuzzContainer(t *testing.T, base []byte, script []byte, where uint32, open func(*containerFile) (layer, error)) {
	m := newMemFile(base)
	applyPatches(m, script)
	if where&4 != 0 {
		fixChecksums(m)
	}
	l, err := open(&containerFile{r: m, w: m, size: m.size, name: "fuzz"})
	if err != nil {
		return
	}
	size := l.virtualSize()
	if size < 0 {
		t.Fatalf("virtual size %d", size)
	}
	if size == 0 {
		return
	}
	buf := make([]byte, 8192)
	off := int64(where) % size
	l.ReadAt(buf, off)
	l.ReadAt(buf, 0)
	l.ReadAt(buf, max(0, size-int64(len(buf))))
	data := []byte("wuoffline fuzz write")
	wo := min(off, size-int64(len(data)))
	if wo < 0 {
		return
	}
	if _, err := l.WriteAt(data, wo); err != nil {
		return
	}
	got := make([]byte, len(data))
	if _, err := l.ReadAt(got, wo); err != nil {
		t.Fatalf("reading back a write at %d: %v", wo, err)
	}
	if string(got) != string(data) {
		t.Fatalf("a write at %d reads back %q", wo, got)
	}
}

// containerSeeds adds each seed image undamaged and with a few typical
// damages (header fields zeroed or set to all ones).
func containerSeeds(f *testing.F, offsets []uint32) {
	f.Add([]byte{}, uint32(0))
	f.Add([]byte{}, uint32(5<<20+100))
	for _, o := range offsets {
		for _, v := range [][]byte{{0, 0, 0, 0, 0, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0, 0, 0, 0, 0, 0, 0, 1}} {
			f.Add(append(binary.LittleEndian.AppendUint32(nil, o), append([]byte{byte(len(v))}, v...)...), uint32(100))
			f.Add(append(binary.LittleEndian.AppendUint32(nil, o), append([]byte{byte(len(v))}, v...)...), uint32(4))
		}
	}
}

// FuzzQCOW2 opens damaged qcow2 images (version 2 with 64 KiB clusters,
// version 3 with 4 KiB clusters), reads and writes through them.
func FuzzQCOW2(f *testing.F) {
	bases := [][]byte{readContainerSeed(f, "qcow2-v2.gz"), readContainerSeed(f, "qcow2-v3-4k.gz")}
	// Header fields: version, backing name, cluster bits, size, L1 size
	// and offset, refcount table, features, refcount order; then the
	// first L1 entry and the start of the first L2 table and refcount
	// block of the v2 seed.
	containerSeeds(f, []uint32{4, 8, 20, 24, 36, 40, 48, 56, 72, 96, 0x30000, 0x40000, 0x10000, 0x20000})
	f.Fuzz(func(t *testing.T, script []byte, where uint32) {
		base := bases[where%2]
		fuzzContainer(t, base, script, where, func(cf *containerFile) (layer, error) {
			return openQCOW2(cf, "", newChain(""))
		})
	})
}

// FuzzVHD opens damaged dynamic VHDs, reads and writes through them.
func FuzzVHD(f *testing.F) {
	base := readContainerSeed(f, "vhd-dynamic.gz")
	n := uint32(len(base))
	// The footer copy, the dynamic header (table offset, entries, block
	// size, locators), the BAT, the first block's bitmap, the footer.
	containerSeeds(f, []uint32{0x10, 0x30, 0x3c, 0x200 + 0x10, 0x200 + 0x1c, 0x200 + 0x20, 0x200 + 0x240, 0x600, 0x800, n - 512 + 0x10, n - 512 + 0x30})
	f.Fuzz(func(t *testing.T, script []byte, where uint32) {
		fuzzContainer(t, base, script, where, func(cf *containerFile) (layer, error) {
			return openVHD(cf, "", newChain(""))
		})
	})
}

// FuzzVHDX opens damaged VHDX files, reads and writes through them.
func FuzzVHDX(f *testing.F) {
	base := readContainerSeed(f, "vhdx-dynamic.gz")
	containerSeeds(f, []uint32{vhdxHeader1 + 48, vhdxHeader1 + 72, vhdxHeader2 + 8, vhdxRegion1 + 8, vhdxRegion1 + 16 + 16, 1 << 20, 2 << 20, 3 << 20})
	f.Fuzz(func(t *testing.T, script []byte, where uint32) {
		fuzzContainer(t, base, script, where, func(cf *containerFile) (layer, error) {
			return openVHDX(cf, "", newChain(""))
		})
	})
}

// fixChecksums recomputes the checksums of the VHD footer and its copy,
// the VHD dynamic header, and the VHDX headers and region tables.
func fixChecksums(m *memFile) {
	sum := func(off int64, n int, at int, calc func([]byte) uint32, order binary.ByteOrder) {
		if off < 0 || off+int64(n) > m.size {
			return
		}
		b := make([]byte, n)
		m.ReadAt(b, off)
		order.PutUint32(b[at:], calc(b))
		m.WriteAt(b[at:at+4], off+int64(at))
	}
	vhd := func(at int) func([]byte) uint32 { return func(b []byte) uint32 { return vhdChecksum(b, at) } }
	head := make([]byte, 8)
	m.ReadAt(head, 0)
	switch string(head) {
	case "conectix":
		sum(0, 512, 0x40, vhd(0x40), binary.BigEndian)
		sum(m.size-512, 512, 0x40, vhd(0x40), binary.BigEndian)
		var d [8]byte
		m.ReadAt(d[:], 0x10)
		if off := int64(binary.BigEndian.Uint64(d[:])); off > 0 && off < 1<<40 {
			sum(off, 1024, 0x24, vhd(0x24), binary.BigEndian)
		}
	case "vhdxfile":
		zero := func(b []byte) uint32 { b[4], b[5], b[6], b[7] = 0, 0, 0, 0; return vhdxChecksum(b) }
		sum(vhdxHeader1, vhdxHeaderSize, 4, zero, binary.LittleEndian)
		sum(vhdxHeader2, vhdxHeaderSize, 4, zero, binary.LittleEndian)
		sum(vhdxRegion1, vhdxRegionSize, 4, zero, binary.LittleEndian)
		sum(vhdxRegion2, vhdxRegionSize, 4, zero, binary.LittleEndian)
	}
}
