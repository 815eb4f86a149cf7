package image

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf16"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// vhdxFile is a VHDX held in memory for a test to damage or change, with
// the few places of it the tests need, found by the specification's layout
// (not by this package's parser).
type vhdxFile struct {
	b            []byte
	bat, meta    int // region offsets
	metaLen      int
	currentHead  int // offset of the header with the larger sequence number
	fileParamsAt int // offset of the File Parameters item
	diskSizeAt   int // offset of the Virtual Disk Size item
}

func loadVHDX(t *testing.T, p string) *vhdxFile {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	v := &vhdxFile{b: b, currentHead: vhdxHeader1}
	if le.Uint64(b[vhdxHeader2+8:]) > le.Uint64(b[vhdxHeader1+8:]) {
		v.currentHead = vhdxHeader2
	}
	n := int(le.Uint32(b[vhdxRegion1+8:]))
	for i := range n {
		e := b[vhdxRegion1+16+i*32:]
		var id guid
		copy(id[:], e)
		switch id {
		case vhdxRegionBAT:
			v.bat = int(le.Uint64(e[16:]))
		case vhdxRegionMetadata:
			v.meta, v.metaLen = int(le.Uint64(e[16:])), int(le.Uint32(e[24:]))
		}
	}
	m := b[v.meta:]
	for i := range int(le.Uint16(m[10:])) {
		e := m[32+i*32:]
		var id guid
		copy(id[:], e)
		switch id {
		case vhdxMetaFileParams:
			v.fileParamsAt = v.meta + int(le.Uint32(e[16:]))
		case vhdxMetaDiskSize:
			v.diskSizeAt = v.meta + int(le.Uint32(e[16:]))
		}
	}
	if v.bat == 0 || v.meta == 0 || v.fileParamsAt == 0 || v.diskSizeAt == 0 {
		t.Fatalf("%s: no BAT, metadata or metadata items", p)
	}
	return v
}

// setHeaders changes both headers with f and makes their checksums right.
func (v *vhdxFile) setHeaders(f func(h []byte)) {
	for _, off := range []int{vhdxHeader1, vhdxHeader2} {
		h := v.b[off : off+vhdxHeaderSize]
		f(h)
		binary.LittleEndian.PutUint32(h[4:], 0)
		binary.LittleEndian.PutUint32(h[4:], vhdxChecksum(h))
	}
}

func (v *vhdxFile) save(t *testing.T, p string) {
	t.Helper()
	if err := os.WriteFile(p, v.b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// guidText is the text form of a GUID stored in VHDX's mixed-endian form.
func guidText(g []byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("{%08X-%04X-%04X-%X-%X}", le.Uint32(g), le.Uint16(g[4:]), le.Uint16(g[6:]), g[8:10], g[10:16])
}

// makeDifferencingVHDX turns an empty dynamic VHDX made by qemu-img into a
// differencing child of parent: the HasParent flag in File Parameters and
// a parent locator item ([MS-VHDX] 2.6.2.6: parent_linkage = the parent's
// DataWriteGuid, relative_path) added to the metadata table.
func makeDifferencingVHDX(t *testing.T, parent, child string) {
	t.Helper()
	p := loadVHDX(t, parent)
	c := loadVHDX(t, child)
	le := binary.LittleEndian
	le.PutUint32(c.b[c.fileParamsAt+4:], le.Uint32(c.b[c.fileParamsAt+4:])|2)
	// qemu-img marks a new disk's blocks ZERO, which in a differencing
	// disk reads as zeros; a new child's blocks are NOT_PRESENT (read
	// from the parent), as Hyper-V makes them.
	clear(c.b[c.bat : c.bat+8*4096])
	// The item: type GUID, reserved, count, entries, then the strings.
	str := func(s string) []byte {
		var b []byte
		for _, u := range utf16.Encode([]rune(s)) {
			b = le.AppendUint16(b, u)
		}
		return b
	}
	kv := [][2][]byte{
		{str("parent_linkage"), str(guidText(p.b[p.currentHead+32 : p.currentHead+48]))},
		{str("relative_path"), str(`.\` + filepath.Base(parent))},
	}
	item := append([]byte(nil), vhdxParentLocatorVHDX[:]...)
	item = le.AppendUint16(item, 0)
	item = le.AppendUint16(item, uint16(len(kv)))
	strOff := 20 + 12*len(kv)
	var strs []byte
	for _, e := range kv {
		item = le.AppendUint32(item, uint32(strOff+len(strs)))
		item = le.AppendUint32(item, uint32(strOff+len(strs)+len(e[0])))
		item = le.AppendUint16(item, uint16(len(e[0])))
		item = le.AppendUint16(item, uint16(len(e[1])))
		strs = append(append(strs, e[0]...), e[1]...)
	}
	item = append(item, strs...)
	// Put it 512 KiB into the metadata region, past qemu's items, and add
	// its table entry (IsRequired, IsVirtualDisk).
	at := 512 << 10
	copy(c.b[c.meta+at:], item)
	m := c.b[c.meta:]
	n := int(le.Uint16(m[10:]))
	e := m[32+n*32:]
	copy(e, vhdxMetaParent[:])
	le.PutUint32(e[16:], uint32(at))
	le.PutUint32(e[20:], uint32(len(item)))
	le.PutUint32(e[24:], 2|4)
	le.PutUint16(m[10:], uint16(n+1))
	c.save(t, child)
}

// TestVHDXDifferencing reads a differencing VHDX through its parent,
// writes random ranges into the child only, and checks the child's own
// blocks with qemu-img (which does not follow VHDX parents: with the
// HasParent flag cleared it reads the child's blocks and zeros).
func TestVHDXDifferencing(t *testing.T) {
	raw := brokenRaw(t)
	dir := t.TempDir()
	parent := filepath.Join(dir, "parent.vhdx")
	qemuImg(t, "convert", "-q", "-f", "raw", "-O", "vhdx", "-o", "block_size=2M", raw, parent)
	st, err := os.Stat(raw)
	if err != nil {
		t.Fatal(err)
	}
	child := filepath.Join(dir, "child.vhdx")
	qemuImg(t, "create", "-q", "-f", "vhdx", "-o", "block_size=2M", child, fmt.Sprint(st.Size()))
	makeDifferencingVHDX(t, parent, child)
	// qemu-img does not follow VHDX parents: with the HasParent flag and
	// the locator removed it reads the child's own blocks, zeros
	// elsewhere.
	alone := func() string {
		c := loadVHDX(t, child)
		le := binary.LittleEndian
		le.PutUint32(c.b[c.fileParamsAt+4:], le.Uint32(c.b[c.fileParamsAt+4:])&^2)
		m := c.b[c.meta:]
		le.PutUint16(m[10:], le.Uint16(m[10:])-1) // the parent locator was added last
		p := filepath.Join(dir, "alone.vhdx")
		c.save(t, p)
		checkContainer(t, testutil.RequireTool(t, "qemu-img"), p, container{name: "alone", args: []string{"-O", "vhdx"}})
		return p
	}
	checkDifferencing(t, raw, parent, child, FormatVHDX, 13, alone, "vhdx")
}

// TestVHDXWriteGUIDs: the first write gives both headers new FileWriteGuid
// and DataWriteGuid values with higher sequence numbers; later writes do
// not change them again.
func TestVHDXWriteGUIDs(t *testing.T) {
	p := filepath.Join(t.TempDir(), "g.vhdx")
	qemuImg(t, "create", "-q", "-f", "vhdx", p, "64M")
	before := loadVHDX(t, p)
	o, err := overFile(t, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.w.WriteAt([]byte("one"), 1000); err != nil {
		t.Fatal(err)
	}
	after := loadVHDX(t, p)
	le := binary.LittleEndian
	oldSeq := le.Uint64(before.b[before.currentHead+8:])
	for _, off := range []int{vhdxHeader1, vhdxHeader2} {
		h := after.b[off : off+vhdxHeaderSize]
		if _, err := parseVHDXHeader(bytes.Clone(h), int64(len(after.b))); err != nil {
			t.Errorf("header at %d: %v", off, err)
		}
		if le.Uint64(h[8:]) <= oldSeq {
			t.Errorf("header at %d: sequence %d, not above %d", off, le.Uint64(h[8:]), oldSeq)
		}
		for _, f := range []int{16, 32} {
			if bytes.Equal(h[f:f+16], before.b[before.currentHead+f:before.currentHead+f+16]) {
				t.Errorf("header at %d: GUID at %d unchanged", off, f)
			}
		}
	}
	mid := testutil.SHA256File(t, p)
	headers := bytes.Clone(after.b[vhdxHeader1 : vhdxHeader2+vhdxHeaderSize])
	if _, err := o.w.WriteAt([]byte("two"), 1000); err != nil {
		t.Fatal(err)
	}
	again := loadVHDX(t, p)
	if !bytes.Equal(headers, again.b[vhdxHeader1:vhdxHeader2+vhdxHeaderSize]) {
		t.Error("a second write changed the headers again")
	}
	if testutil.SHA256File(t, p) == mid {
		t.Error("the second write changed nothing")
	}
	checkContainer(t, testutil.RequireTool(t, "qemu-img"), p, container{name: "g", args: []string{"-O", "vhdx"}})
}

// TestVHDXHostile: a log that is not empty, BAT entries pointing past the
// end or at the headers, a huge declared disk size.
func TestVHDXHostile(t *testing.T) {
	le := binary.LittleEndian
	cases := []struct {
		name   string
		damage func(v *vhdxFile)
		why    string
	}{
		{"log not empty", func(v *vhdxFile) {
			v.setHeaders(func(h []byte) { copy(h[48:], "log-guid-is-set!") })
		}, "log"},
		{"BAT entry past the end", func(v *vhdxFile) {
			le.PutUint64(v.b[v.bat:], 1<<40|vhdxFullyPresent)
		}, "not a whole block within the file"},
		{"BAT entry at the headers", func(v *vhdxFile) {
			le.PutUint64(v.b[v.bat:], 0|vhdxFullyPresent)
		}, "not a whole block within the file"},
		{"BAT entry at the BAT", func(v *vhdxFile) {
			le.PutUint64(v.b[v.bat:], uint64(v.bat)|vhdxFullyPresent)
		}, "BAT or metadata"},
		{"huge disk size", func(v *vhdxFile) {
			le.PutUint64(v.b[v.diskSizeAt:], 1<<60)
		}, "virtual disk size"},
		{"unknown BAT state", func(v *vhdxFile) {
			le.PutUint64(v.b[v.bat:], 5)
		}, "unknown state"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "h.vhdx")
			qemuImg(t, "create", "-q", "-f", "vhdx", "-o", "block_size=1M", p, "64M")
			qemuIO(t, p, "write -P 0x11 0 64k")
			v := loadVHDX(t, p)
			tc.damage(v)
			v.save(t, p)
			before := testutil.SHA256File(t, p)
			_, err := Open(p, Options{})
			wantRefusal(t, err, tc.why, p, before)
			bk := openBacking(t, p)
			if l, err := openVHDX(&containerFile{r: bk, w: bk, size: bk.size, name: p}, p, newChain(p)); err == nil {
				_, err = l.WriteAt([]byte("data"), 100)
				wantRefusal(t, err, tc.why, p, before)
			}
		})
	}
}
