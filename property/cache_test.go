package property

import "testing"

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"0", 0, false}, {"512", 512, false}, {"100MiB", 100 << 20, false}, {"2 GiB", 2 << 30, false},
		{"64kb", 64 << 10, false}, {"1TiB", 1 << 40, false}, {"", 0, true}, {"MiB", 0, true},
		{"10 parsecs", 0, true}, {"-1MiB", 0, true}, {"99999999999999999999", 0, true}, {"9999999999TiB", 0, true},
	} {
		got, err := ParseSize(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}
