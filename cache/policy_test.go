package cache

import (
	"net/http"
	"testing"
	"time"
)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestDecide(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	date := now.Format(http.TimeFormat)
	lm := now.Add(-100 * time.Hour).Format(http.TimeFormat)
	pol := Policy{MaxObjectSize: 1 << 20}
	cases := []struct {
		name     string
		method   string
		path     string
		req      http.Header
		status   int
		resp     http.Header
		pol      Policy
		store    bool
		lifetime time.Duration
		reval    bool
		swr, sie time.Duration
	}{
		{name: "§4.2.1 max-age gives the lifetime", resp: hdr("Cache-Control", "max-age=60"), store: true, lifetime: time.Minute},
		{name: "§4.2.1 s-maxage wins over max-age in a shared cache", resp: hdr("Cache-Control", "max-age=60, s-maxage=10"), store: true, lifetime: 10 * time.Second, reval: true},
		{name: "§4.2.1 Expires minus Date", resp: hdr("Date", date, "Expires", now.Add(time.Hour).Format(http.TimeFormat)), store: true, lifetime: time.Hour},
		{name: "§5.3 an invalid Expires means already expired", resp: hdr("Date", date, "Expires", "0", "Etag", `"a"`), store: true, lifetime: 0},
		{name: "§5.3 Expires is ignored under max-age", resp: hdr("Cache-Control", "max-age=5", "Expires", "0"), store: true, lifetime: 5 * time.Second},
		{name: "§4.2.2 heuristic: 10% of the time since Last-Modified", resp: hdr("Date", date, "Last-Modified", lm), store: true, lifetime: 10 * time.Hour},
		{name: "§4.2.2 default_ttl replaces heuristics", resp: hdr("Date", date), pol: Policy{DefaultTTL: time.Minute}, store: true, lifetime: time.Minute},
		{name: "§4.2.2 no heuristic for a status not cacheable by default", status: 302, resp: hdr("Date", date, "Last-Modified", lm), store: false},
		{name: "§3 a 302 with max-age is stored", status: 302, resp: hdr("Cache-Control", "max-age=30"), store: true, lifetime: 30 * time.Second},
		{name: "§3 public makes a status cacheable by heuristics", status: 302, resp: hdr("Cache-Control", "public", "Date", date, "Last-Modified", lm), store: true, lifetime: 10 * time.Hour},
		{name: "§4.2.2 nothing to go on and no validator: not stored", resp: hdr("Date", date), store: false},
		{name: "§5.2.2.5 no-store", resp: hdr("Cache-Control", "max-age=60, no-store"), store: false},
		{name: "§5.2.2.7 private is not for a shared cache", resp: hdr("Cache-Control", "private, max-age=60"), store: false},
		{name: "§5.2.2.7 qualified private strips the field", resp: hdr("Cache-Control", `private="X-User", max-age=60`), store: true, lifetime: time.Minute},
		{name: "§5.2.2.4 no-cache is stored, revalidated each time", resp: hdr("Cache-Control", "no-cache", "Etag", `"x"`), store: true},
		{name: "§5.2.2.4 no-cache without a validator is not worth storing", resp: hdr("Cache-Control", "no-cache, max-age=60"), store: false},
		{name: "§3 an event stream is never stored", resp: hdr("Cache-Control", "max-age=60", "Content-Type", "text/event-stream"), store: false},
		{name: "§5.2.2.2 must-revalidate forbids stale", resp: hdr("Cache-Control", "max-age=1, must-revalidate"), store: true, lifetime: time.Second, reval: true},
		{name: "§5.2.2.8 proxy-revalidate forbids stale in a shared cache", resp: hdr("Cache-Control", "max-age=1, proxy-revalidate"), store: true, lifetime: time.Second, reval: true},
		{name: "§3.5 Authorization without public is not stored", req: hdr("Authorization", "Bearer x"), resp: hdr("Cache-Control", "max-age=60"), store: false},
		{name: "§3.5 Authorization with public is stored", req: hdr("Authorization", "Bearer x"), resp: hdr("Cache-Control", "public, max-age=60"), store: true, lifetime: time.Minute},
		{name: "§3.5 Authorization with s-maxage is stored", req: hdr("Authorization", "Bearer x"), resp: hdr("Cache-Control", "s-maxage=60"), store: true, lifetime: time.Minute, reval: true},
		{name: "§3.5 Authorization with must-revalidate is stored", req: hdr("Authorization", "Bearer x"), resp: hdr("Cache-Control", "max-age=60, must-revalidate"), store: true, lifetime: time.Minute, reval: true},
		{name: "§5.2.1.5 request no-store", req: hdr("Cache-Control", "no-store"), resp: hdr("Cache-Control", "max-age=60"), store: false},
		{name: "§4.1 Vary: * is never stored", resp: hdr("Cache-Control", "max-age=60", "Vary", "*"), store: false},
		{name: "§4.1 Vary on too many headers is not stored", resp: manyVary(40), store: false},
		{name: "§3 Set-Cookie responses are not stored (SPEC §11)", resp: hdr("Cache-Control", "max-age=60", "Set-Cookie", "a=b"), store: false},
		{name: "§3 only GET is stored", method: http.MethodPost, resp: hdr("Cache-Control", "max-age=60"), store: false},
		{name: "§3 206 is not stored", status: 206, resp: hdr("Cache-Control", "max-age=60"), store: false},
		{name: "§1.2.2 huge delta-seconds are capped", resp: hdr("Cache-Control", "max-age=99999999999999999999"), store: true, lifetime: maxDelta * time.Second},
		{name: "§4.2.1 a non-numeric max-age is stale", resp: hdr("Cache-Control", "max-age=abc", "Etag", `"e"`), store: true, lifetime: 0},
		{name: "§4.2.1 a negative max-age is stale", resp: hdr("Cache-Control", "max-age=-5", "Etag", `"e"`), store: true, lifetime: 0},
		{name: "§4.2.1 first of duplicate max-age", resp: hdr("Cache-Control", "max-age=10", "Cache-Control", "max-age=99"), store: true, lifetime: 10 * time.Second},
		{name: "RFC 9213 §2.1 CDN-Cache-Control overrides Cache-Control", resp: hdr("Cache-Control", "no-store", "Cdn-Cache-Control", "max-age=300"), store: true, lifetime: 5 * time.Minute},
		{name: "RFC 9213 §2.1 CDN-Cache-Control no-store wins", resp: hdr("Cache-Control", "max-age=60", "Cdn-Cache-Control", "no-store"), store: false},
		{name: "RFC 5861 §3 stale-while-revalidate from the origin", resp: hdr("Cache-Control", "max-age=1, stale-while-revalidate=30, stale-if-error=60"), store: true, lifetime: time.Second, swr: 30 * time.Second, sie: time.Minute},
		{name: "RFC 5861 §3 stale-while-revalidate with s-maxage is honoured", resp: hdr("Cache-Control", "s-maxage=60, stale-while-revalidate=30"), store: true, lifetime: time.Minute, swr: 30 * time.Second},
		{name: "RFC 5861 settings apply when the origin states none", resp: hdr("Cache-Control", "max-age=1"), pol: Policy{StaleWhileRevalidate: 5 * time.Second, StaleIfError: time.Hour}, store: true, lifetime: time.Second, swr: 5 * time.Second, sie: time.Hour},
		{name: "§5.2 unparseable Cache-Control is ignored", resp: hdr("Cache-Control", `=,,"max-age=10`, "Etag", `"e"`), store: true},
		{name: "RFC 9213 §2.1 a CDN-Cache-Control that is no Dictionary is ignored", resp: hdr("Cache-Control", "no-store", "Cdn-Cache-Control", "max-age=10000, &&&&&"), store: false},
		{name: "RFC 9213 §2.1 a CDN-Cache-Control max-age of the wrong type is ignored", resp: hdr("Cache-Control", "no-store", "Cdn-Cache-Control", `max-age="10000"`), store: false},
		{name: "RFC 9213 §2.1 CDN-Cache-Control private", resp: hdr("Cache-Control", "max-age=60", "Cdn-Cache-Control", "private"), store: false},
		{name: "RFC 9213 §2.1 CDN-Cache-Control qualified private strips", resp: hdr("Cdn-Cache-Control", `max-age=60, private="X-User"`), store: true, lifetime: time.Minute},
		{name: "§5.3 Expires with two spaces is invalid", resp: hdr("Date", date, "Expires", "Thu, 18  Aug  2050 02:01:18 GMT", "Etag", `"e"`), store: true, lifetime: 0},
		{name: "§5.3 Expires with a one-digit hour is invalid", resp: hdr("Date", date, "Expires", "Thu, 18 Aug 2050 2:01:18 GMT", "Etag", `"e"`), store: true, lifetime: 0},
		{name: "§5.3 two Expires lines are invalid", resp: hdr("Date", date, "Expires", now.Add(time.Hour).Format(http.TimeFormat), "Expires", now.Add(time.Hour).Format(http.TimeFormat), "Etag", `"e"`), store: true, lifetime: 0},
		{name: "RFC 9110 §5.6.7 an rfc850 Expires", resp: hdr("Date", date, "Expires", "Sunday, 01-Nov-26 13:00:00 GMT"), store: true, lifetime: time.Hour},
		{name: "RFC 9110 §5.6.7 an asctime Expires", resp: hdr("Date", date, "Expires", "Sun Nov  1 13:00:00 2026"), store: true, lifetime: time.Hour},

		// Cache deception: a credential makes only the origin's explicit word count.
		{name: "deception: Cookie and heuristic freshness", req: hdr("Cookie", "sid=a"), resp: hdr("Date", date, "Last-Modified", lm), store: false},
		{name: "deception: Cookie and default_ttl", req: hdr("Cookie", "sid=a"), resp: hdr("Date", date, "Etag", `"e"`), pol: Policy{DefaultTTL: time.Hour}, store: false},
		{name: "deception: Authorization, must-revalidate and heuristic freshness", req: hdr("Authorization", "Bearer x"), resp: hdr("Cache-Control", "must-revalidate", "Date", date, "Last-Modified", lm), store: false},
		{name: "deception: Cookie and public allow heuristics", req: hdr("Cookie", "sid=a"), resp: hdr("Cache-Control", "public", "Date", date, "Last-Modified", lm), store: true, lifetime: 10 * time.Hour},
		{name: "deception: Cookie and s-maxage", req: hdr("Cookie", "sid=a"), resp: hdr("Cache-Control", "s-maxage=60"), store: true, lifetime: time.Minute, reval: true},
		{name: "deception: Cookie and an explicit max-age", req: hdr("Cookie", "sid=a"), resp: hdr("Cache-Control", "max-age=60"), store: true, lifetime: time.Minute},
		{name: "deception: Cookie and Expires", req: hdr("Cookie", "sid=a"), resp: hdr("Date", date, "Expires", now.Add(time.Hour).Format(http.TimeFormat)), store: true, lifetime: time.Hour},
		{name: "deception: Cookie gets no stale defaults, and stale at once is never served stale", req: hdr("Cookie", "sid=a"), resp: hdr("Cache-Control", "max-age=0", "Etag", `"e"`), pol: Policy{StaleWhileRevalidate: time.Minute, StaleIfError: time.Hour}, store: true, lifetime: 0, reval: true},
		{name: "deception: Cookie and an invalid Expires is never served stale", req: hdr("Cookie", "sid=a"), resp: hdr("Date", date, "Expires", "0", "Etag", `"e"`), store: true, lifetime: 0, reval: true},
		{name: "deception: Cookie and public max-age=0 may be served stale", req: hdr("Cookie", "sid=a"), resp: hdr("Cache-Control", "public, max-age=0", "Etag", `"e"`), store: true, lifetime: 0},
		{name: "deception: Cookie and max-age=0 without a validator is not kept for the stale defaults", req: hdr("Cookie", "sid=a"), resp: hdr("Cache-Control", "max-age=0"), pol: Policy{StaleWhileRevalidate: time.Minute}, store: false},
		{name: "deception: the origin's own stale-while-revalidate still counts", req: hdr("Cookie", "sid=a"), resp: hdr("Cache-Control", "max-age=1, stale-while-revalidate=30"), pol: Policy{StaleIfError: time.Hour}, store: true, lifetime: time.Second, swr: 30 * time.Second},
		{name: "deception: a Cookie the property removes is no credential", req: hdr("Cookie", "sid=a"), resp: hdr("Date", date, "Etag", `"e"`), pol: Policy{DefaultTTL: time.Hour, CookieRuled: true}, store: true, lifetime: time.Hour},
		{name: "deception: an empty Cookie is no credential", req: hdr("Cookie", ""), resp: hdr("Date", date, "Last-Modified", lm), store: true, lifetime: 10 * time.Hour},

		// Cache deception armor: the extension and the Content-Type agree.
		{name: "armor: text/html at .css", path: "/account.php/x1.css", resp: hdr("Cache-Control", "max-age=60", "Content-Type", "text/html; charset=utf-8"), store: false},
		{name: "armor: applies to public responses too", path: "/account.php/x1.css", resp: hdr("Cache-Control", "public, s-maxage=60", "Content-Type", "text/html"), store: false},
		{name: "armor: application/json at .png", path: "/api/me/a.PNG", resp: hdr("Cache-Control", "max-age=60", "Content-Type", "Application/JSON"), store: false},
		{name: "armor: a path parameter", path: "/account;x.js", resp: hdr("Cache-Control", "max-age=60", "Content-Type", "text/html"), store: false},
		{name: "armor: an extension before a path parameter", path: "/account/x.css;v=1.2", resp: hdr("Cache-Control", "max-age=60", "Content-Type", "text/html"), store: false},
		{name: "armor: a trailing slash", path: "/account.php/x.css/", resp: hdr("Cache-Control", "max-age=60", "Content-Type", "text/html"), store: false},
		{name: "armor: a decoded NUL", path: "/account\x00.css", resp: hdr("Cache-Control", "max-age=60", "Content-Type", "text/html"), store: false},
		{name: "armor: text/css at .css", path: "/s/site.css", resp: hdr("Cache-Control", "max-age=60", "Content-Type", "text/css; charset=utf-8"), store: true, lifetime: time.Minute},
		{name: "armor: WebP at .jpg", path: "/i/p.jpg", resp: hdr("Cache-Control", "max-age=60", "Content-Type", "image/webp"), store: true, lifetime: time.Minute},
		{name: "armor: a font", path: "/f/a.woff2", resp: hdr("Cache-Control", "max-age=60", "Content-Type", "font/woff2"), store: true, lifetime: time.Minute},
		{name: "armor: application/octet-stream fits anything", path: "/s/site.css", resp: hdr("Cache-Control", "max-age=60", "Content-Type", "application/octet-stream"), store: true, lifetime: time.Minute},
		{name: "armor: no Content-Type is no contradiction", path: "/s/site.css", resp: hdr("Cache-Control", "max-age=60"), store: true, lifetime: time.Minute},
		{name: "armor: html is no static extension", path: "/docs/using.js.html", resp: hdr("Cache-Control", "max-age=60", "Content-Type", "text/html"), store: true, lifetime: time.Minute},
		{name: "armor: any of two Content-Type lines", path: "/s/x.css", resp: hdr("Cache-Control", "max-age=60", "Content-Type", "text/css", "Content-Type", "text/html"), store: false},
		{name: "armor: a list in one Content-Type line", path: "/s/x.css", resp: hdr("Cache-Control", "max-age=60", "Content-Type", "text/css, text/html"), store: false},
		{name: "armor: turned off", path: "/account.php/x1.css", resp: hdr("Cache-Control", "max-age=60", "Content-Type", "text/html"), pol: Policy{NoDeceptionArmor: true}, store: true, lifetime: time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.method == "" {
				tc.method = http.MethodGet
			}
			if tc.status == 0 {
				tc.status = 200
			}
			if tc.req == nil {
				tc.req = http.Header{}
			}
			if tc.path == "" {
				tc.path = "/a"
			}
			p := pol
			if tc.pol != (Policy{}) {
				p = tc.pol
			}
			d := Decide(tc.method, tc.path, tc.req, tc.status, tc.resp, now, p)
			if d.Store != tc.store {
				t.Fatalf("store = %v (%s), want %v", d.Store, d.Reason, tc.store)
			}
			if !tc.store {
				return
			}
			if d.Lifetime != tc.lifetime {
				t.Errorf("lifetime = %v, want %v", d.Lifetime, tc.lifetime)
			}
			if d.Revalidate != tc.reval {
				t.Errorf("revalidate = %v, want %v", d.Revalidate, tc.reval)
			}
			if d.SWR != tc.swr || d.SIE != tc.sie {
				t.Errorf("swr, sie = %v, %v, want %v, %v", d.SWR, d.SIE, tc.swr, tc.sie)
			}
		})
	}
}

func manyVary(n int) http.Header {
	h := hdr("Cache-Control", "max-age=60")
	for i := range n {
		h.Add("Vary", "X-H"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	return h
}

func TestUsable(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	stored := func(age, lifetime time.Duration, mod func(o *object)) *object {
		at := now.Add(-age)
		o := &object{RequestTime: at.UnixNano(), ResponseTime: at.UnixNano(), Date: at.UnixNano(), Lifetime: lifetime}
		if mod != nil {
			mod(o)
		}
		return o
	}
	cases := []struct {
		name string
		o    *object
		req  string
		want use
	}{
		{"§4.2 fresh", stored(10*time.Second, time.Minute, nil), "", useFresh},
		{"§4.2 stale", stored(2*time.Minute, time.Minute, nil), "", useRevalidate},
		{"§5.2.1.1 request max-age under the age", stored(10*time.Second, time.Minute, nil), "max-age=5", useRevalidate},
		{"§5.2.1.1 request max-age over the age", stored(10*time.Second, time.Minute, nil), "max-age=20", useFresh},
		{"§5.2.1.3 min-fresh beyond the ttl", stored(50*time.Second, time.Minute, nil), "min-fresh=30", useRevalidate},
		{"§5.2.1.2 max-stale allows stale", stored(70*time.Second, time.Minute, nil), "max-stale=30", useStale},
		{"§5.2.1.2 max-stale too short", stored(2*time.Minute, time.Minute, nil), "max-stale=30", useRevalidate},
		{"§5.2.1.2 max-stale without a value", stored(time.Hour, time.Minute, nil), "max-stale", useStale},
		{"§5.2.2.2 must-revalidate beats max-stale", stored(70*time.Second, time.Minute, func(o *object) { o.Revalidate = true }), "max-stale", useRevalidate},
		{"§5.2.1.4 request no-cache", stored(time.Second, time.Minute, nil), "no-cache", useRevalidate},
		{"§5.2.2.4 response no-cache", stored(time.Second, time.Minute, func(o *object) { o.NoCache = true }), "", useRevalidate},
		{"RFC 5861 §3 within stale-while-revalidate", stored(70*time.Second, time.Minute, func(o *object) { o.SWR = 30 * time.Second }), "", useStaleRefresh},
		{"RFC 5861 §3 past stale-while-revalidate", stored(2*time.Minute, time.Minute, func(o *object) { o.SWR = 30 * time.Second }), "", useRevalidate},
		{"soft purge makes a fresh object stale", stored(time.Second, time.Minute, func(o *object) { o.softPurged.Store(true); o.SWR = time.Minute }), "", useStaleRefresh},
	}
	c := &Cache{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rd := requestDirectives(hdr("Cache-Control", tc.req))
			if tc.req == "" {
				rd = requestDirectives(http.Header{})
			}
			if got := c.usable(tc.o, &rd, now); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCurrentAge(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	// §4.2.3: Date 10s before the response, Age 5, 2s in flight, 3s stored.
	got := currentAge(t0.Add(-10*time.Second), 5, t0.Add(-2*time.Second), t0, t0.Add(3*time.Second))
	if want := 13 * time.Second; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	// A Date in the future does not make the age negative.
	if got := currentAge(t0.Add(time.Hour), 0, t0, t0, t0); got != 0 {
		t.Errorf("future Date: got %v, want 0", got)
	}
}

func TestParseAge(t *testing.T) {
	for _, tc := range []struct {
		lines []string
		want  int64
	}{
		// RFC 9111 §5.1: the first member counts; an invalid one is ignored.
		{nil, 0}, {[]string{"30"}, 30}, {[]string{"abc"}, 0}, {[]string{"-5"}, 0},
		{[]string{"1.5"}, 0}, {[]string{"0", "0"}, 0}, {[]string{"99999999999999"}, maxDelta},
		{[]string{"0, 7200"}, 0}, {[]string{"7200, 0"}, 7200}, {[]string{"7200", "0"}, 7200}, {[]string{"0", "7200"}, 0},
		{[]string{""}, 0}, {[]string{"2147483648"}, maxDelta},
	} {
		if got := parseAge(tc.lines); got != tc.want {
			t.Errorf("parseAge(%q) = %d, want %d", tc.lines, got, tc.want)
		}
	}
}

func TestParseDirectives(t *testing.T) {
	d := parseDirectives([]string{`Max-Age=10, no-cache="Set-Cookie, X-A", private, s-maxage="20"`, "max-stale"})
	if d.maxAge != 10 || d.sMaxAge != 20 || !d.private || !d.maxStaleAny || d.noCache {
		t.Errorf("got %+v", d)
	}
	if len(d.strip) != 2 || d.strip[0] != "Set-Cookie" || d.strip[1] != "X-A" {
		t.Errorf("strip = %q", d.strip)
	}
	for _, bad := range []string{`"`, `=`, `max-age="`, `,,,`, "max-age=1e3", "\x00\x01"} {
		parseDirectives([]string{bad}) // must not panic
	}
}
