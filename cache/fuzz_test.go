package cache

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/edge-cdn/edge/property"
)

// FuzzDecide: no origin head makes the policy panic or give a negative
// lifetime.
func FuzzDecide(f *testing.F) {
	for _, s := range []string{"max-age=60", `private="a,b", s-maxage=1`, `no-cache="`, "max-age=-1", "max-age=99999999999999999999", ",,=,"} {
		f.Add(s, "0", "Thu, 01 Jan 1970 00:00:00 GMT", "*")
	}
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, cc, age, expires, vary string) {
		h := http.Header{"Cache-Control": {cc}, "Age": {age}, "Expires": {expires}, "Vary": {vary}, "Cdn-Cache-Control": {cc}}
		d := Decide(http.MethodGet, http.Header{"Cache-Control": {cc}}, 200, h, now, Policy{})
		if d.Lifetime < 0 || d.SWR < 0 || d.SIE < 0 {
			t.Fatalf("negative durations: %+v", d)
		}
		parseAge([]string{age})
		varyNames(h)
	})
}

// FuzzParseRange: any Range value gives a range inside the body or none.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-1", "bytes=-5", "bytes=5-", "bytes=9-1", "bytes=a-b", "bytes=-0", "bytes=1-2,3-4"} {
		f.Add(s, int64(10))
	}
	f.Fuzz(func(t *testing.T, spec string, size int64) {
		if size < 0 || size > 1<<40 {
			return
		}
		start, end, ok, multi := parseRange(spec, size)
		if ok && !multi && (start < 0 || end >= size || start > end) {
			t.Fatalf("%q over %d: %d-%d", spec, size, start, end)
		}
	})
}

// FuzzKey: no host, URL or override header makes the key builder panic;
// every key it builds has the current format (so the disk tier keeps it at
// start) and names its property, scheme and host-path; two properties'
// keys never collide, whatever their settings.
func FuzzKey(f *testing.F) {
	for _, s := range []string{"Shop.Example.:8443", "[::1]:80", "a:b:c", "]", "[", ":", "", "h\u00e9"} {
		f.Add(s, "/a%2Fb", "b=2&a=1&&id=7", "/p", "p", "q", true, uint8(0))
	}
	modes := []property.QueryMode{property.QueryAll, property.QueryNone, property.QuerySorted, property.QueryList, ""}
	f.Fuzz(func(t *testing.T, host, path, query, override, name1, name2 string, secure bool, mode uint8) {
		// What net/http hands the cache: no control bytes in the host,
		// query or header values (they are refused before), property names
		// as property.NamePattern allows.
		for _, s := range []string{host, query, override} {
			for i := 0; i < len(s); i++ {
				if s[i] < 0x20 || s[i] == 0x7f {
					return
				}
			}
		}
		if !property.NamePattern.MatchString(name1) || !property.NamePattern.MatchString(name2) || name1 == name2 {
			return
		}
		u := &url.URL{Path: path, RawQuery: query}
		r := &http.Request{Host: host, URL: u, Header: http.Header{"X-Forwarded-Prefix": {override}}}
		if secure {
			r.TLS = &tls.ConnectionState{}
		}
		m := modes[int(mode)%len(modes)]
		p1 := &property.Property{Name: name1, Cache: property.Cache{Query: m, QueryParams: []string{"id"}, SharedSchemes: mode&8 != 0}}
		p2 := &property.Property{Name: name2, Cache: property.Cache{Query: m, QueryParams: []string{"id"}},
			Headers: property.Headers{AllowOverrides: []string{"X-Forwarded-Prefix"}}}
		k1, k2 := string(primaryKey(nil, p1, r)), string(primaryKey(nil, p2, r))
		if k1 == k2 {
			t.Fatalf("properties %q and %q share key %q", name1, name2, k1)
		}
		for _, k := range []string{k1, k2} {
			if !currentKey(k) {
				t.Fatalf("key %q is not of the current format", k)
			}
			v := string(secondaryKey([]byte(k), 7, []string{"Accept", "X-Forwarded-Prefix"}, r.Header))
			if primaryOf(v) != k || !currentKey(v) || hostPathOf(v) != hostPathOf(k) {
				t.Fatalf("variant key %q of %q: primary %q", v, k, primaryOf(v))
			}
		}
		if propertyOf(k1) != name1 || propertyOf(k2) != name2 {
			t.Fatalf("keys %q, %q name properties %q, %q", k1, k2, propertyOf(k1), propertyOf(k2))
		}
		// The URL keys a purge removes include the request's own key (p1
		// keys no override header).
		found := false
		for _, k := range urlKeys(p1, host, u) {
			found = found || k == k1
		}
		if !found {
			t.Fatalf("no purge key of %q matches %q", u, k1)
		}
		appendHost(nil, host)
		appendQuery(nil, query, p1.Cache)
	})
}
