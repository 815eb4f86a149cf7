// Package bytesize renders byte counts for people, in binary units
// (KiB = 1024 bytes), the units Windows Explorer shows (as "KB").
package bytesize

import "fmt"

// Format renders n with one decimal in the largest binary unit (KiB, MiB,
// GiB) it reaches, or as a plain count of bytes below 1 KiB.
func Format(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
