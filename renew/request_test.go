package renew

import "testing"

func TestUnorderable(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"shop.example", false},
		{"www.shop.example", false},
		{"edge.test", false}, // .test is Pebble's world in tests; public CAs refuse it themselves
		{"localhost", true},
		{"app.localhost", true},
		{"printer.local", true},
		{"x.invalid", true},
		{"db.internal", true},
		{"nas.home.arpa", true},
		{"intranet", true},
		{"192.0.2.1", true},
		{"2001:db8::1", true},
		{"local.example", false},
	} {
		if got := unorderable(tc.name) != ""; got != tc.want {
			t.Errorf("%s: unorderable %v (%q), want %v", tc.name, got, unorderable(tc.name), tc.want)
		}
	}
}
