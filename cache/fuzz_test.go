package cache

import (
	"net/http"
	"testing"
	"time"
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
		d := Decide(http.MethodGet, "/a.css", http.Header{"Cache-Control": {cc}}, 200, h, now, Policy{})
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
