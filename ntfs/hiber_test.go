package ntfs

import "testing"

func TestHiberState(t *testing.T) {
	page := func(sig string, n int) []byte { b := make([]byte, n); copy(b, sig); return b }
	tests := []struct {
		head []byte
		want string
	}{
		{page("hibr", 4096), "hibr"},
		{page("HIBR", 4096), "HIBR"},
		{page("wake", 4096), "wake"},
		{page("WAKE", 4096), "WAKE"},
		{page("", 4096), ""},
		{page("RSTR", 4096), ""},
		{page("hibr", 4095), "short"},
		{nil, "short"},
		{page("Hibr", 4096), ""}, // signatures are case-exact
	}
	for _, tt := range tests {
		if got := HiberState(tt.head); got != tt.want {
			t.Errorf("HiberState(%q..., %d bytes) = %q, want %q", tt.head[:min(4, len(tt.head))], len(tt.head), got, tt.want)
		}
	}
}
