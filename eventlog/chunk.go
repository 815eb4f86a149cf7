package eventlog

import (
	"encoding/binary"

	"github.com/wuoffline/wuoffline/internal/filetime"
)

// chunk is one 64 KiB chunk: a 512-byte header ("ElfChnk\0", ..., u32
// free-space offset at 48) and records from offset 512.
type chunk []byte

// recordHeaderSize: u32 signature 0x2a2a, u32 size, u64 id, u64 FILETIME.
const recordHeaderSize = 24

func (c chunk) valid() bool { return string(c[:8]) == "ElfChnk\x00" }

// end is where the chunk's records end (the free-space offset, clamped).
func (c chunk) end() int {
	end := int(binary.LittleEndian.Uint32(c[48:]))
	if end > len(c) || end < chunkHeaderSize {
		end = len(c)
	}
	return end
}

// records walks the records of the chunk, counting into st. It returns
// true when the walk must stop (fn said so or a limit was reached).
func (c chunk) records(st *Stats, lim Limits, fn func(*Event) bool) bool {
	end := c.end()
	for off := chunkHeaderSize; off+recordHeaderSize+4 <= end; {
		if binary.LittleEndian.Uint32(c[off:]) != 0x00002a2a {
			break
		}
		sz := int(binary.LittleEndian.Uint32(c[off+4:]))
		if sz < recordHeaderSize+4 || sz > end-off {
			st.Skipped++
			break
		}
		if st.Records >= lim.MaxRecords {
			st.Truncated = true
			return true
		}
		ev := &Event{
			RecordID: binary.LittleEndian.Uint64(c[off+8:]),
			Written:  filetime.ToTime(binary.LittleEndian.Uint64(c[off+16:])),
		}
		p := &bxParser{chunk: c}
		root := &xnode{}
		if _, err := p.fragment(off+recordHeaderSize, root, nil, 0); err != nil {
			st.Skipped++
		} else {
			ev.fill(root)
			st.Records++
			if !fn(ev) {
				return true
			}
		}
		off += sz
	}
	return false
}
