package cache

import (
	"crypto/tls"
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
		{"host lower-cased, port and trailing dot dropped", property.QueryAll, nil, "Shop.Example.:8443", "/a?x=1", "p\x00http\x00shop.example\x00/a?x=1"},
		{"IPv6 literal", property.QueryAll, nil, "[::1]:80", "/", "p\x00http\x00::1\x00/"},
		{"query all keeps order", property.QueryAll, nil, "h", "/a?b=2&a=1", "p\x00http\x00h\x00/a?b=2&a=1"},
		{"query none", property.QueryNone, nil, "h", "/a?b=2&a=1", "p\x00http\x00h\x00/a"},
		{"query sorted", property.QuerySorted, nil, "h", "/a?b=2&a=1", "p\x00http\x00h\x00/a?a=1&b=2"},
		{"query list keeps the listed", property.QueryList, []string{"id"}, "h", "/a?utm=x&id=7", "p\x00http\x00h\x00/a?id=7"},
		{"query list with none present", property.QueryList, []string{"id"}, "h", "/a?utm=x", "p\x00http\x00h\x00/a"},
		{"escaped path kept", property.QueryAll, nil, "h", "/a%2Fb", "p\x00http\x00h\x00/a%2Fb"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &property.Property{Name: "p", Cache: property.Cache{Query: tc.mode, QueryParams: tc.params}}
			if !currentKey(tc.want) {
				t.Errorf("currentKey(%q) is false", tc.want)
			}
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

// TestKeySchemesAndOverrides: the scheme is in the key unless the property
// shares one key for both; an allowed override header the request carries
// joins the key; a purge's host-path part of a key ignores both.
func TestKeySchemesAndOverrides(t *testing.T) {
	p := &property.Property{Name: "p", Headers: property.Headers{AllowOverrides: []string{"X-Forwarded-Prefix"}}}
	r, _ := http.NewRequest("GET", "http://h/a?x=1", nil)
	plain := string(primaryKey(nil, p, r))
	r.TLS = &tls.ConnectionState{}
	secure := string(primaryKey(nil, p, r))
	r.Header.Set("X-Forwarded-Prefix", "/evil")
	r.Header.Set("X-Http-Method-Override", "POST") // not allowed: dropped, so not keyed
	prefixed := string(primaryKey(nil, p, r))
	shared := *p
	shared.Cache.SharedSchemes = true
	both := string(primaryKey(nil, &shared, r))
	for k, want := range map[string]string{
		plain:    "p\x00http\x00h\x00/a?x=1",
		secure:   "p\x00https\x00h\x00/a?x=1",
		prefixed: "p\x00https\x00h\x00/a?x=1\x04X-Forwarded-Prefix=/evil",
		both:     "p\x00*\x00h\x00/a?x=1\x04X-Forwarded-Prefix=/evil",
	} {
		if k != want {
			t.Errorf("got %q, want %q", k, want)
		}
		if !currentKey(k) || hostPathOf(k) != "h\x00/a?x=1" {
			t.Errorf("%q: current %v, host-path %q", k, currentKey(k), hostPathOf(k))
		}
	}
	for _, old := range []string{"p\x00h\x00/a", "p\x00h\x00/a\x01" + "1\x01Accept=x\x02", "p\x00ftp\x00h\x00/a", ""} {
		if currentKey(old) {
			t.Errorf("currentKey(%q) is true for a key of the old format", old)
		}
	}
}
