package httpfield

import (
	"net/http"
	"strings"
	"testing"
)

// TestCanonicalIsGos: every name Canonical takes comes out as
// http.CanonicalHeaderKey writes it, common or not, in any case.
func TestCanonicalIsGos(t *testing.T) {
	names := []string{"x-custom-field", "X-CUSTOM", "a", "A-", "-a", "x--y", "Www-Authenticate", "content-md5"}
	for k := range common {
		names = append(names, k, strings.ToUpper(k))
	}
	for _, n := range names {
		got, ok := Canonical([]byte(n), func(b []byte) string { return string(b) })
		if !ok || got != http.CanonicalHeaderKey(n) {
			t.Errorf("%q: %q, %v; want %q", n, got, ok, http.CanonicalHeaderKey(n))
		}
	}
	for _, n := range []string{"a b", "a_b", "a:b", "é", ""} {
		if _, ok := Canonical([]byte(n), func(b []byte) string { return string(b) }); ok && n != "" {
			t.Errorf("%q taken", n)
		}
	}
}

// TestParseLength: digits only, 1 to 18 of them.
func TestParseLength(t *testing.T) {
	for v, want := range map[string]int64{"0": 0, "42": 42, "000000000000000001": 1} {
		if n, ok := ParseLength(v); !ok || n != want {
			t.Errorf("%q: %d, %v", v, n, ok)
		}
	}
	for _, v := range []string{"", "+1", "-1", " 1", "1 ", "0x1", "1234567890123456789"} {
		if _, ok := ParseLength(v); ok {
			t.Errorf("%q taken", v)
		}
	}
}

// TestClose: net/http's keep-alive rules for HTTP/1.0 and 1.1.
func TestClose(t *testing.T) {
	for _, tc := range []struct {
		minor int
		conn  []string
		want  bool
	}{
		{0, nil, true}, {0, []string{"keep-alive"}, false}, {0, []string{"keep-alive, close"}, true},
		{1, nil, false}, {1, []string{"close"}, true}, {1, []string{"Upgrade", "x, Close"}, true},
	} {
		if got := Close(tc.minor, tc.conn); got != tc.want {
			t.Errorf("HTTP/1.%d %q: %v, want %v", tc.minor, tc.conn, got, tc.want)
		}
	}
}

// TestLine: what a field line gives both fast parsers, and what it leaves
// to net/http.
func TestLine(t *testing.T) {
	str := func(b []byte) string { return string(b) }
	for _, tc := range []struct {
		in, key, value string
		ok             bool
	}{
		{"content-length: 5\r\n", "Content-Length", "5", true},
		{"X-A:\t a b \t\r\n", "X-A", "a b", true},
		{"X-Empty:\r\n", "X-Empty", "", true},
		{"X-A: 1\n", "", "", false},       // bare LF
		{": 1\r\n", "", "", false},        // empty name
		{"X A: 1\r\n", "", "", false},     // a name Canonical does not take
		{"X-A: 1\x00\r\n", "", "", false}, // a control byte in the value
		{"X-A: \x7f\r\n", "", "", false},
		{"NoColon\r\n", "", "", false},
	} {
		key, value, ok := Line([]byte(tc.in), str)
		if key != tc.key || value != tc.value || ok != tc.ok {
			t.Errorf("Line(%q) = %q, %q, %v; want %q, %q, %v", tc.in, key, value, ok, tc.key, tc.value, tc.ok)
		}
	}
}
