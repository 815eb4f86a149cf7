package filetime

import (
	"math"
	"testing"
	"time"
)

func TestToTime(t *testing.T) {
	tests := []struct {
		name string
		ft   uint64
		want time.Time
	}{
		{"unset", 0, time.Time{}},
		{"first tick", 1, time.Date(1601, 1, 1, 0, 0, 0, 100, time.UTC)},
		{"one second", ticksPerSecond, time.Date(1601, 1, 1, 0, 0, 1, 0, time.UTC)},
		{"unix epoch", unixDelta * ticksPerSecond, time.Unix(0, 0).UTC()},
		// 0x01D9_xxxx values are typical of Windows 11 era volumes;
		// 133_000_000_000_000_000 is 2022-06-18 04:26:40 UTC (date -u -d @1655526400).
		{"2022", 133_000_000_000_000_000, time.Date(2022, 6, 18, 4, 26, 40, 0, time.UTC)},
		{"max", math.MaxUint64, time.Date(60056, 5, 28, 5, 36, 10, 955161500, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ToTime(tt.ft)
			if !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("ToTime(%d) = %v, want %v (UTC)", tt.ft, got, tt.want)
			}
		})
	}
}

func TestFromTime(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
		want uint64
	}{
		{"zero", time.Time{}, 0},
		{"before 1601", time.Date(1600, 12, 31, 23, 59, 59, 0, time.UTC), 0},
		{"1601", time.Date(1601, 1, 1, 0, 0, 0, 100, time.UTC), 1},
		{"truncates below 100 ns", time.Date(1601, 1, 1, 0, 0, 0, 199, time.UTC), 1},
		{"unix epoch", time.Unix(0, 0), unixDelta * ticksPerSecond},
		{"other zone", time.Date(2022, 6, 18, 6, 26, 40, 0, time.FixedZone("CEST", 2*3600)), 133_000_000_000_000_000},
		{"past 2262 (UnixNano overflows)", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), uint64(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()+unixDelta) * ticksPerSecond},
		{"past the largest FILETIME", time.Date(70000, 1, 1, 0, 0, 0, 0, time.UTC), math.MaxUint64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FromTime(tt.t); got != tt.want {
				t.Errorf("FromTime(%v) = %d, want %d", tt.t, got, tt.want)
			}
		})
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, ft := range []uint64{0, 1, unixDelta * ticksPerSecond, 133_000_000_000_000_000, math.MaxUint64} {
		f.Add(ft)
	}
	f.Fuzz(func(t *testing.T, ft uint64) {
		if got := FromTime(ToTime(ft)); got != ft {
			t.Fatalf("FromTime(ToTime(%d)) = %d (%v)", ft, got, ToTime(ft))
		}
	})
}
