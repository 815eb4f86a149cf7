package eventlog

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// variantText renders a typed value as the XML text Windows shows.
func variantText(typ byte, b []byte) string {
	le := binary.LittleEndian
	switch typ {
	case 0x00:
		return ""
	case 0x01:
		return strings.TrimRight(decodeUTF16(b), "\x00")
	case 0x02:
		return strings.TrimRight(string(b), "\x00")
	case 0x03:
		if len(b) >= 1 {
			return strconv.Itoa(int(int8(b[0])))
		}
	case 0x04:
		if len(b) >= 1 {
			return strconv.Itoa(int(b[0]))
		}
	case 0x05:
		if len(b) >= 2 {
			return strconv.Itoa(int(int16(le.Uint16(b))))
		}
	case 0x06:
		if len(b) >= 2 {
			return strconv.Itoa(int(le.Uint16(b)))
		}
	case 0x07:
		if len(b) >= 4 {
			return strconv.Itoa(int(int32(le.Uint32(b))))
		}
	case 0x08:
		if len(b) >= 4 {
			return strconv.FormatUint(uint64(le.Uint32(b)), 10)
		}
	case 0x09:
		if len(b) >= 8 {
			return strconv.FormatInt(int64(le.Uint64(b)), 10)
		}
	case 0x0a:
		if len(b) >= 8 {
			return strconv.FormatUint(le.Uint64(b), 10)
		}
	case 0x0b:
		if len(b) >= 4 {
			return strconv.FormatFloat(float64(math.Float32frombits(le.Uint32(b))), 'g', -1, 32)
		}
	case 0x0c:
		if len(b) >= 8 {
			return strconv.FormatFloat(math.Float64frombits(le.Uint64(b)), 'g', -1, 64)
		}
	case 0x0d:
		if len(b) >= 4 {
			if le.Uint32(b) != 0 {
				return "true"
			}
			return "false"
		}
	case 0x0f:
		if len(b) >= 16 {
			return fmt.Sprintf("{%08X-%04X-%04X-%X-%X}", le.Uint32(b), le.Uint16(b[4:]), le.Uint16(b[6:]), b[8:10], b[10:16])
		}
	case 0x10:
		switch len(b) {
		case 4:
			return fmt.Sprintf("0x%x", le.Uint32(b))
		case 8:
			return fmt.Sprintf("0x%x", le.Uint64(b))
		}
	case 0x11:
		if len(b) >= 8 {
			return filetimeText(le.Uint64(b))
		}
	case 0x13:
		return sidText(b)
	case 0x14:
		if len(b) >= 4 {
			return fmt.Sprintf("0x%08x", le.Uint32(b))
		}
	case 0x15:
		if len(b) >= 8 {
			return fmt.Sprintf("0x%016x", le.Uint64(b))
		}
	case 0x81: // array of UTF-16 strings, each NUL-terminated
		parts := strings.Split(decodeUTF16(b), "\x00")
		if len(parts) > 1 && parts[len(parts)-1] == "" {
			parts = parts[:len(parts)-1]
		}
		return strings.Join(parts, ", ")
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

// sidText renders a binary SID: revision, count, 6-byte big-endian
// authority, count little-endian sub-authorities.
func sidText(b []byte) string {
	if len(b) < 8 {
		return strings.ToUpper(hex.EncodeToString(b))
	}
	n := int(b[1])
	if len(b) < 8+4*n {
		return strings.ToUpper(hex.EncodeToString(b))
	}
	var auth uint64
	for _, c := range b[2:8] {
		auth = auth<<8 | uint64(c)
	}
	s := fmt.Sprintf("S-%d-%d", b[0], auth)
	for i := 0; i < n; i++ {
		s += "-" + strconv.FormatUint(uint64(binary.LittleEndian.Uint32(b[8+4*i:])), 10)
	}
	return s
}

func decodeUTF16(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// filetimeText renders a FILETIME (100 ns ticks since 1601-01-01 UTC) for
// every value, 0 included (1601-01-01 00:00:00.000000, as Windows shows it).
func filetimeText(v uint64) string {
	const unixEpoch = 11644473600 // seconds from 1601 to 1970
	t := time.Unix(int64(v/1e7)-unixEpoch, int64(v%1e7)*100).UTC()
	return t.Format("2006-01-02 15:04:05.000000")
}
