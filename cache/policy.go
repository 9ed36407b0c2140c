package cache

import (
	"net/http"
	"strings"
	"time"
)

// Policy is the part of a property's cache settings that decides what is
// stored and for how long.
type Policy struct {
	// DefaultTTL is the freshness of a storable response that states none;
	// 0 uses the heuristics of RFC 9111 §4.2.2.
	DefaultTTL time.Duration
	// MaxObjectSize bounds a stored body; 0 means no bound.
	MaxObjectSize int64
	// StaleWhileRevalidate and StaleIfError apply when the origin states none.
	StaleWhileRevalidate, StaleIfError time.Duration
}

// maxVary bounds the request headers one response may vary on; more make the
// response uncacheable (a key on hundreds of headers is an attack, not a
// variant).
const maxVary = 16

// maxHeuristic caps heuristic freshness (10% of the time since Last-Modified).
const maxHeuristic = 7 * 24 * time.Hour

// heuristicStatus lists the status codes cacheable by default (RFC 9110 §15.1).
var heuristicStatus = map[int]bool{200: true, 203: true, 204: true, 206: true, 300: true, 301: true,
	308: true, 404: true, 405: true, 410: true, 414: true, 501: true}

// Decision is what the policy says about one response.
type Decision struct {
	Store  bool
	Reason string // why not, when Store is false
	// Lifetime is the freshness lifetime (RFC 9111 §4.2.1); Heuristic tells
	// that it was guessed.
	Lifetime  time.Duration
	Heuristic bool
	// SWR and SIE are the stale-while-revalidate and stale-if-error windows.
	SWR, SIE time.Duration
	// Revalidate: never serve stale (must-revalidate, proxy-revalidate,
	// s-maxage); NoCache: revalidate before every reuse.
	Revalidate, NoCache bool
	// Strip lists header fields not to store (qualified no-cache/private).
	Strip []string
}

// responseDirectives picks what the cache obeys: CDN-Cache-Control when the
// origin sent one (RFC 9213 §2.1), otherwise Cache-Control.
func responseDirectives(h http.Header) directives {
	if v := h["Cdn-Cache-Control"]; len(v) > 0 {
		d := parseDirectives(v)
		if !d.invalid {
			return d
		}
	}
	return parseDirectives(h["Cache-Control"])
}

// Decide applies RFC 9111 §3 (storing) and §4.2 (freshness) to a response
// with status and header h, answering a request with method and request
// header rh, received at responseTime.
func Decide(method string, rh http.Header, status int, h http.Header, responseTime time.Time, p Policy) Decision {
	rd := requestDirectives(rh)
	cc := responseDirectives(h)
	d := Decision{}
	switch {
	case method != http.MethodGet:
		d.Reason = "method"
	case status < 200 || status == 206 || status == 304:
		d.Reason = "status"
	case rd.noStore:
		d.Reason = "request no-store"
	case cc.noStore:
		d.Reason = "no-store"
	case cc.private:
		d.Reason = "private"
	case rh.Get("Authorization") != "" && !cc.public && cc.sMaxAge < 0 && !cc.mustRevalidate:
		d.Reason = "authorization"
	case len(h["Set-Cookie"]) > 0:
		d.Reason = "set-cookie"
	case cc.mustUnderstand && !heuristicStatus[status] && status != 302 && status != 307:
		d.Reason = "must-understand"
	case strings.HasPrefix(h.Get("Content-Type"), "text/event-stream"):
		d.Reason = "event stream" // a live stream per client, never one to share
	case cc.noCache && h.Get("Etag") == "" && h.Get("Last-Modified") == "":
		d.Reason = "no-cache without a validator" // every reuse would be a full fetch
	}
	if d.Reason != "" {
		return d
	}
	if reason := varyProblem(h); reason != "" {
		d.Reason = reason
		return d
	}
	d.fresh(status, h, cc, responseTime, p)
	if !d.Store {
		d.Reason = "not cacheable"
	}
	return d
}

// fresh fills in the lifetime and decides Store for an otherwise storable
// response (RFC 9111 §3, last rule; §4.2.1; §4.2.2).
func (d *Decision) fresh(status int, h http.Header, cc directives, responseTime time.Time, p Policy) {
	date := parseDate(h.Get("Date"), responseTime)
	explicit := true
	switch {
	case cc.invalid:
		d.Lifetime = 0
	case cc.sMaxAge >= 0:
		d.Lifetime = seconds(cc.sMaxAge)
		// s-maxage implies proxy-revalidate (§5.2.2.10), unless the origin
		// allowed stale explicitly with RFC 5861 directives, as CDNs read
		// "s-maxage=60, stale-while-revalidate=30".
		d.Revalidate = cc.swr < 0 && cc.sie < 0
	case cc.maxAge >= 0:
		d.Lifetime = seconds(cc.maxAge)
	case len(h["Expires"]) > 0:
		exp, err := http.ParseTime(h.Get("Expires"))
		if err == nil && exp.After(date) {
			d.Lifetime = exp.Sub(date)
		} // an invalid or past Expires means already expired (§5.3)
	default:
		explicit = false
	}
	heuristicOK := heuristicStatus[status] || cc.public
	switch {
	case explicit:
		d.Store = true
	case p.DefaultTTL > 0 && heuristicOK:
		d.Store, d.Lifetime = true, p.DefaultTTL
	case heuristicOK:
		d.Store, d.Heuristic = true, true
		if lm, err := http.ParseTime(h.Get("Last-Modified")); err == nil && date.After(lm) {
			d.Lifetime = min(date.Sub(lm)/10, maxHeuristic)
		}
	}
	if d.Store && d.Lifetime == 0 && !cc.noCache && h.Get("Etag") == "" && h.Get("Last-Modified") == "" &&
		cc.swr < 0 && cc.sie < 0 && p.StaleIfError == 0 && p.StaleWhileRevalidate == 0 {
		d.Store, d.Reason = false, "stale at once and no validator"
		return
	}
	d.NoCache = cc.noCache
	d.Revalidate = d.Revalidate || cc.mustRevalidate || cc.proxyRevalidate
	d.SWR, d.SIE = p.StaleWhileRevalidate, p.StaleIfError
	if cc.swr >= 0 {
		d.SWR = seconds(cc.swr)
	}
	if cc.sie >= 0 {
		d.SIE = seconds(cc.sie)
	}
	d.Strip = cc.strip
}

// varyProblem says why the Vary of h makes a response unstorable, or "".
func varyProblem(h http.Header) string {
	n := 0
	for _, line := range h["Vary"] {
		for _, f := range fieldList(line) {
			if f == "*" {
				return "vary *"
			}
			n++
		}
	}
	if n > maxVary {
		return "vary on too many headers"
	}
	return ""
}

func requestDirectives(rh http.Header) directives {
	d := parseDirectives(rh["Cache-Control"])
	if len(rh["Cache-Control"]) == 0 {
		for _, p := range rh["Pragma"] {
			if p == "no-cache" {
				d.noCache = true // RFC 9111 §5.4
			}
		}
	}
	return d
}

// ignoreClient drops the request directives that would make the cache go
// to the origin for what it holds or could store (no-cache, Pragma:
// no-cache, max-age, min-fresh, no-store): with cache.client_directives:
// ignore, the default, as Varnish, Fastly and Cloudflare do, no client can
// force origin traffic for every URL. max-stale and only-if-cached, which
// only ever spare the origin, still count.
func (d *directives) ignoreClient() {
	d.noCache, d.noStore = false, false
	d.maxAge, d.minFresh = -1, -1
}

// clientCacheHeaders are the request headers that carry a client's cache
// directives: not sent to the origin on a fill when they are ignored.
var clientCacheHeaders = []string{"Cache-Control", "Pragma"}

func seconds(n int64) time.Duration { return time.Duration(n) * time.Second }

// parseDate reads a Date; a missing or bad one is the time the response was
// received (RFC 9110 §6.6.1).
func parseDate(v string, def time.Time) time.Time {
	if v == "" {
		return def
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return def
	}
	return t
}

// currentAge is RFC 9111 §4.2.3 for a response received between reqTime and
// respTime, with the given Date and Age values, seen at now.
func currentAge(date time.Time, ageValue int64, reqTime, respTime, now time.Time) time.Duration {
	apparent := max(0, respTime.Sub(date))
	corrected := seconds(ageValue) + respTime.Sub(reqTime)
	initial := max(apparent, corrected)
	return initial + now.Sub(respTime)
}

// parseAge reads the Age field lines: anything but one valid delta-seconds
// makes the response count as stale from the start.
func parseAge(lines []string) int64 {
	if len(lines) == 0 {
		return 0
	}
	if len(lines) > 1 {
		return maxDelta
	}
	n, ok := parseDelta(strings.TrimSpace(lines[0]))
	if !ok {
		return maxDelta
	}
	return n
}
