// Package filetime converts Windows FILETIME values to and from time.Time.
//
// A FILETIME is an unsigned 64-bit count of 100-nanosecond intervals since
// 1601-01-01 00:00:00 UTC (the start of the Gregorian 400-year cycle Windows
// counts from). NTFS timestamps ($STANDARD_INFORMATION, $FILE_NAME, index
// entries), registry key last-written times and EVTX record times all use it,
// stored little-endian. By convention 0 means "not set".
package filetime

import (
	"math"
	"time"
)

const (
	// ticksPerSecond is the number of 100 ns intervals in one second.
	ticksPerSecond = 10_000_000
	// unixDelta is the number of seconds from 1601-01-01 to 1970-01-01
	// (369 years, 89 of them leap years: 134774 days).
	unixDelta = 11_644_473_600
)

// ToTime converts a FILETIME to a UTC time. 0 becomes the zero time.Time
// (IsZero reports true), since Windows writes 0 for "never". Every other
// value is representable: the largest, 2^64-1 ticks, is in the year 60056,
// and the arithmetic is done in seconds so that nothing overflows int64.
func ToTime(ft uint64) time.Time {
	if ft == 0 {
		return time.Time{}
	}
	sec := int64(ft/ticksPerSecond) - unixDelta
	nsec := int64(ft%ticksPerSecond) * 100
	return time.Unix(sec, nsec).UTC()
}

// FromTime converts t to a FILETIME, truncating to 100 ns. The zero
// time.Time, and any time before 1601-01-01 UTC (which a FILETIME cannot
// hold), become 0; a time past the largest FILETIME becomes math.MaxUint64.
// It does not go through t.UnixNano, which overflows outside 1678..2262.
func FromTime(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	sec := t.Unix() + unixDelta // cannot overflow: t.Unix() fits well within ±2^62
	if sec < 0 {
		return 0
	}
	if uint64(sec) > math.MaxUint64/ticksPerSecond {
		return math.MaxUint64
	}
	ticks, frac := uint64(sec)*ticksPerSecond, uint64(t.Nanosecond()/100)
	if ticks > math.MaxUint64-frac {
		return math.MaxUint64
	}
	return ticks + frac
}
