package cache

import (
	"net/http"
	"testing"

	"github.com/edge-cdn/edge/property"
)

func TestPrimaryKey(t *testing.T) {
	cases := []struct {
		name   string
		mode   property.QueryMode
		params []string
		host   string
		target string
		want   string
	}{
		{"host lower-cased, port and trailing dot dropped", property.QueryAll, nil, "Shop.Example.:8443", "/a?x=1", "p\x00shop.example\x00/a?x=1"},
		{"IPv6 literal", property.QueryAll, nil, "[::1]:80", "/", "p\x00::1\x00/"},
		{"query all keeps order", property.QueryAll, nil, "h", "/a?b=2&a=1", "p\x00h\x00/a?b=2&a=1"},
		{"query none", property.QueryNone, nil, "h", "/a?b=2&a=1", "p\x00h\x00/a"},
		{"query sorted", property.QuerySorted, nil, "h", "/a?b=2&a=1", "p\x00h\x00/a?a=1&b=2"},
		{"query list keeps the listed", property.QueryList, []string{"id"}, "h", "/a?utm=x&id=7", "p\x00h\x00/a?id=7"},
		{"query list with none present", property.QueryList, []string{"id"}, "h", "/a?utm=x", "p\x00h\x00/a"},
		{"escaped path kept", property.QueryAll, nil, "h", "/a%2Fb", "p\x00h\x00/a%2Fb"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &property.Property{Name: "p", Cache: property.Cache{Query: tc.mode, QueryParams: tc.params}}
			r, _ := http.NewRequest("GET", "http://x"+tc.target, nil)
			r.Host = tc.host
			if got := string(primaryKey(nil, p, r)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSecondaryKeyNormalisesLists(t *testing.T) {
	a := secondaryKey(nil, 1, []string{"Accept-Language"}, hdr("Accept-Language", "en, fr;q=0.5"))
	b := secondaryKey(nil, 1, []string{"Accept-Language"}, hdr("Accept-Language", "FR;q=0.5,EN"))
	if string(a) != string(b) {
		t.Errorf("%q != %q", a, b)
	}
	absent := secondaryKey(nil, 1, []string{"X-A"}, http.Header{})
	empty := secondaryKey(nil, 1, []string{"X-A"}, hdr("X-A", ""))
	if string(absent) == string(empty) {
		t.Error("an absent header keys like an empty one")
	}
}
