package cache

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/property"
)

// FuzzDecide: no origin head makes the policy panic or give a negative
// lifetime, and a request with a cookie is never stored on default_ttl or
// heuristics unless the origin said public or s-maxage.
func FuzzDecide(f *testing.F) {
	for _, s := range []string{"max-age=60", `private="a,b", s-maxage=1`, `no-cache="`, "max-age=-1", "max-age=99999999999999999999", ",,=,"} {
		f.Add(s, "0", "Thu, 01 Jan 1970 00:00:00 GMT", "*")
	}
	f.Add("", "", "", "")
	f.Add("public", "1, 2", "Thu, 01 Jan 2070 00:00:00 GMT", "Cookie")
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, cc, age, expires, vary string) {
		h := http.Header{"Cache-Control": {cc}, "Age": {age}, "Expires": {expires}, "Vary": {vary}, "Cdn-Cache-Control": {cc},
			"Last-Modified": {"Thu, 01 Jan 2026 00:00:00 GMT"}}
		p := Policy{DefaultTTL: time.Hour, StaleWhileRevalidate: time.Minute}
		d := Decide(http.MethodGet, "/a.css", http.Header{"Cache-Control": {cc}}, 200, h, now, p)
		if d.Lifetime < 0 || d.SWR < 0 || d.SIE < 0 {
			t.Fatalf("negative durations: %+v", d)
		}
		parseAge([]string{age})
		varyNames(h)
		// With a cookie, the property's defaults change nothing (unless
		// public or s-maxage), and heuristics never store.
		cookie := http.Header{"Cookie": {"sid=a"}}
		dc, plain := Decide(http.MethodGet, "/a", cookie, 200, h, now, p), Decide(http.MethodGet, "/a", cookie, 200, h, now, Policy{})
		if cd := responseDirectives(h); !cd.public && cd.sMaxAge < 0 && (dc.Heuristic && dc.Store ||
			dc.Store != plain.Store || dc.Lifetime != plain.Lifetime || dc.SWR != plain.SWR || dc.SIE != plain.SIE) {
			t.Fatalf("a cookie's answer stored on the property's defaults: %+v, without them %+v (%q)", dc, plain, cc)
		}
	})
}

// FuzzParseDirectives: any Cache-Control (request or response) parses
// without panic into deltas that are absent (-1) or within 0..maxDelta.
func FuzzParseDirectives(f *testing.F) {
	for _, s := range []string{`Max-Age=10, no-cache="Set-Cookie, X-A", private, s-maxage="20"`, "max-stale", `"`, `=`,
		`max-age="`, `,,,`, "max-age=1e3", "\x00\x01", "max-age=99999999999999999999999", `no-cache="a\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		for _, d := range []directives{parseDirectives([]string{line}), requestDirectives(http.Header{"Cache-Control": {line}}),
			requestDirectives(http.Header{"Pragma": {line}})} {
			for _, v := range []int64{d.maxAge, d.sMaxAge, d.maxStale, d.minFresh, d.swr, d.sie} {
				if v < -1 || v > maxDelta {
					t.Fatalf("%q: delta %d out of range: %+v", line, v, d)
				}
			}
		}
	})
}

// FuzzTargetedDirectives: a CDN-Cache-Control either is refused (ok
// false: Cache-Control decides) or gives deltas within 0..maxDelta; the
// RFC 9213 forms the suite tests come out as the RFC says.
func FuzzTargetedDirectives(f *testing.F) {
	for _, s := range []string{"max-age=10000, &&&&&", `max-age="10000"`, "max-age=3600", "MaX-aGe=3600", "foobar, max-age=3600",
		"max-age =100", `private="X-A", no-store`, "no-store=?0", "max-age=-1", "max-age=2147483649", "none", "", "a=(1 2);p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		d, ok := targetedDirectives([]string{line})
		if !ok {
			return
		}
		for _, v := range []int64{d.maxAge, d.sMaxAge, d.swr, d.sie} {
			if v < -1 || v > maxDelta {
				t.Fatalf("%q: delta %d out of range", line, v)
			}
		}
		if strings.Contains(line, `max-age="`) && d.maxAge >= 0 {
			t.Fatalf("%q: a string max-age was taken", line)
		}
	})
}

// FuzzParseAge: Age is 0..maxDelta whatever the lines say, and a small
// first member is taken as it is.
func FuzzParseAge(f *testing.F) {
	for _, s := range []string{"0", "abc", "-7200", "7200.0", "0, 7200", "7200, 0", "2147483648", "7200;foo=bar", " 5 ", ""} {
		f.Add(s, "7200")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, lines := range [][]string{{a}, {a, b}} {
			n := parseAge(lines)
			if n < 0 || n > maxDelta {
				t.Fatalf("%q: %d", lines, n)
			}
			if v, err := strconv.ParseInt(a, 10, 64); err == nil && v >= 0 && v < maxDelta && a[0] != '+' && n != v {
				t.Fatalf("%q: %d, want %d", lines, n, v)
			}
		}
	})
}

// FuzzParseHTTPDate: an HTTP-date parses without panic; whatever parses
// is a real instant that reads back the same as an IMF-fixdate, and every
// IMF-fixdate net/http writes parses to its instant.
func FuzzParseHTTPDate(f *testing.F) {
	for _, s := range []string{"Thu, 18 Aug 2050 02:01:18 GMT", "Thursday, 18-Aug-50 02:01:18 GMT", "Thu Aug  8 02:01:18 2050",
		"THU, 18 AUG 2050 02:01:18 gMT", "Thu, 18  Aug  2050 02:01:18 GMT", "Thu, 18 Aug 2050 2:01:18 GMT", "Thu, 31 Feb 2050 02:01:18 GMT",
		"Thu, 18 Aug 2050 02:01:60 GMT", "0", ""} {
		f.Add(s, int64(2524608000))
	}
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string, unix int64) {
		if got, ok := parseHTTPDate(s, now); ok {
			back, ok2 := parseHTTPDate(got.Format(http.TimeFormat), now)
			if got.Year() >= 0 && got.Year() <= 9999 && (!ok2 || !back.Equal(got)) {
				t.Fatalf("%q: %v does not read back (%v %v)", s, got, back, ok2)
			}
		}
		if unix < 0 || unix > 253402300799 { // years 1970..9999
			return
		}
		want := time.Unix(unix, 0).UTC()
		if got, ok := parseHTTPDate(want.Format(http.TimeFormat), now); !ok || !got.Equal(want) {
			t.Fatalf("%s: %v %v", want.Format(http.TimeFormat), got, ok)
		}
	})
}

// FuzzDeceptionArmor: any path and Content-Type give an answer without
// panic; no type or a generic binary one never counts as a contradiction,
// and a path without a dot never does.
func FuzzDeceptionArmor(f *testing.F) {
	for _, s := range [][2]string{{"/account.php/x1.css", "text/html"}, {"/a;b.js", "text/html"}, {"/x.css;v=1.2", "Text/HTML"},
		{"/i.jpg", "image/webp"}, {"/", ""}, {"/a.css/", "application/octet-stream"}, {"\x00.css", "text/html;"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, path, ct string) {
		got := deceptionArmor(path, ct)
		if got && (!strings.Contains(path, ".") || strings.TrimSpace(ct) == "") {
			t.Fatalf("%q %q: a mismatch without an extension or a type", path, ct)
		}
		if deceptionArmor(path, "application/octet-stream") {
			t.Fatalf("%q: octet-stream counted as a mismatch", path)
		}
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
