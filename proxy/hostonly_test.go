package proxy

import (
	"testing"

	"github.com/edge-cdn/edge/property"
)

// TestHostOnlyMatchesProperty: the fast path answers as property.HostOnly
// does, for names, IP literals of both families, ports and malformed
// hosts.
func TestHostOnlyMatchesProperty(t *testing.T) {
	for _, in := range []string{
		"", "a", "shop.example", "shop.example:8443", "Shop.Example", "shop.example.", "shop.example.:80",
		"host1", "host1:80", "1.2.3.4", "1.2.3.4:80", "1.2.3.4a", "01.2.3.4", "[::1]", "[::1]:443", "::1",
		"::ffff:1.2.3.4", "fe80::1", "fe80::a", "[fe80::a]", "2001:db8::beef", "a:b:c", ":80", ":", "x:",
		"[", "]", "a]:80", "a[b", "256.1.1.1", "1.2.3", "example.com:", "exa mple.com", "ü.example",
	} {
		if got, want := hostOnly(in), property.HostOnly(in); got != want {
			t.Errorf("hostOnly(%q) = %q, property.HostOnly says %q", in, got, want)
		}
	}
}

// FuzzHostOnly: the fast path and property.HostOnly agree on any input.
func FuzzHostOnly(f *testing.F) {
	for _, s := range []string{"shop.example:443", "1.2.3.4", "[::1]:80", "fe80::a", "a:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if got, want := hostOnly(in), property.HostOnly(in); got != want {
			t.Errorf("hostOnly(%q) = %q, property.HostOnly says %q", in, got, want)
		}
	})
}
