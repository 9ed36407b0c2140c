package property

import (
	"strings"
	"testing"
)

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

func TestBodyIdleTimeout(t *testing.T) {
	base := "hostnames: [a.test]\norigins: [{url: http://127.0.0.1:1}]\n"
	p, errs := Parse("a.yaml", []byte(base))
	if len(errs) > 0 || p.Timeouts.BodyIdle != DefaultBodyIdleTimeout {
		t.Fatalf("default: %v, %v", p.Timeouts.BodyIdle, errs)
	}
	p, errs = Parse("a.yaml", []byte(base+"timeouts: {body_idle: 250ms}\n"))
	if len(errs) > 0 || p.Timeouts.BodyIdle.Milliseconds() != 250 {
		t.Fatalf("250ms: %v, %v", p.Timeouts.BodyIdle, errs)
	}
	for _, bad := range []string{"soon", "0.1ms", "2d"} {
		_, errs = Parse("a.yaml", []byte(base+"timeouts: {body_idle: "+bad+"}\n"))
		if len(errs) == 0 || !strings.Contains(errs[0].Error(), "a.yaml:3: timeouts.body_idle") {
			t.Errorf("body_idle %s: %v; want an error at a.yaml:3 timeouts.body_idle", bad, errs)
		}
	}
}
