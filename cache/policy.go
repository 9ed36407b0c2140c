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
	// NoDeceptionArmor turns off the check that a response's Content-Type
	// agrees with the extension of the request path (cache.deception_armor:
	// false); the zero Policy has the armor on.
	NoDeceptionArmor bool
	// CookieRuled and AuthorizationRuled tell that the property's request
	// header rules set or remove Cookie or Authorization: the client's value
	// then never reaches the origin and is no credential the answer can
	// depend on.
	CookieRuled, AuthorizationRuled bool
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
	// OwnOnly: stored for revalidation only (a credentialed answer stale
	// at once): never handed as it is to a request other than the one it
	// answered, not even one collapsed onto its fill.
	OwnOnly bool
}

// responseDirectives picks what the cache obeys: CDN-Cache-Control when the
// origin sent a valid one (RFC 9213 §2.1), otherwise Cache-Control.
func responseDirectives(h http.Header) directives {
	if v := h["Cdn-Cache-Control"]; len(v) > 0 {
		if d, ok := targetedDirectives(v); ok {
			return d
		}
	}
	return parseDirectives(h["Cache-Control"])
}

// credential names the client credential a request carries to the origin
// (Cookie or Authorization, unless the property's header rules replace or
// drop it), or "".
func credential(rh http.Header, p Policy) string {
	switch {
	case !p.AuthorizationRuled && rh.Get("Authorization") != "":
		return "authorization"
	case !p.CookieRuled && rh.Get("Cookie") != "":
		return "cookie"
	}
	return ""
}

// Decide applies RFC 9111 §3 (storing) and §4.2 (freshness) to a response
// with status and header h, answering a request with method, path (the
// decoded URL path) and request header rh, received at responseTime.
//
// Beyond the RFC, it keeps one client's answer from reaching another:
//   - a response to a request with a credential (Cookie, Authorization) is
//     stored on the origin's explicit freshness only (max-age, s-maxage,
//     Expires): default_ttl and heuristic freshness (RFC 9111 §4.2.2), and
//     the property's stale_while_revalidate and stale_if_error, apply to it
//     only when the origin marked it public or gave s-maxage (cache
//     deception: /account.php/x.css with the victim's cookie);
//   - such an answer that is stale at once (max-age=0 with a validator) is
//     never served stale, whatever a later client's max-stale says;
//   - unless p.NoDeceptionArmor, a response whose Content-Type contradicts
//     the extension of the path (text/html for .css) is never stored,
//     whatever its directives (deceptionArmor).
func Decide(method, path string, rh http.Header, status int, h http.Header, responseTime time.Time, p Policy) Decision {
	rd := requestDirectives(rh)
	cc := responseDirectives(h)
	cred := credential(rh, p)
	d := Decision{}
	switch {
	case method != http.MethodGet:
		d.Reason = "method"
	case status < 200 || status == 206 || status == 304:
		d.Reason = "status"
	case rd.noStore:
		d.Reason = reasonRequestNoStore
	case cc.noStore:
		d.Reason = "no-store"
	case cc.private:
		d.Reason = "private"
	case cred == "authorization" && !cc.public && cc.sMaxAge < 0 && !cc.mustRevalidate:
		d.Reason = reasonAuthorization // RFC 9111 §3.5
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
	if !p.NoDeceptionArmor && armored(path, h["Content-Type"]) {
		d.Reason = reasonArmor
		return d
	}
	if cred != "" && !cc.public && cc.sMaxAge < 0 {
		// Only what the origin states applies to a credentialed answer.
		p.DefaultTTL, p.StaleWhileRevalidate, p.StaleIfError = 0, 0, 0
	}
	d.fresh(status, h, cc, responseTime, p, cred)
	if !d.Store && d.Reason == "" {
		d.Reason = reasonNotCacheable
	}
	return d
}

// Reasons for not storing (Cache-Status detail, with dashes for spaces).
const (
	reasonArmor            = "deception armor"
	reasonCookieImplicit   = "cookie without explicit freshness"
	reasonAuthImplicit     = "authorization without explicit freshness"
	reasonRequestNoStore   = "request no-store"
	reasonAuthorization    = "authorization"
	reasonNotCacheable     = "not cacheable"
	reasonNoValidatorStale = "stale at once and no validator"
)

// fresh fills in the lifetime and decides Store for an otherwise storable
// response (RFC 9111 §3, last rule; §4.2.1; §4.2.2). cred is the credential
// the request carried: with one, heuristic freshness never applies (Decide
// has already zeroed the property's defaults unless the origin said public
// or s-maxage).
func (d *Decision) fresh(status int, h http.Header, cc directives, responseTime time.Time, p Policy, cred string) {
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
		// An invalid, repeated or past Expires means already expired (§5.3).
		if v := h["Expires"]; len(v) == 1 {
			if exp, ok := parseHTTPDate(v[0], responseTime); ok && exp.After(date) {
				d.Lifetime = exp.Sub(date)
			}
		}
	default:
		explicit = false
	}
	heuristicOK := heuristicStatus[status] || cc.public
	switch {
	case explicit:
		d.Store = true
	case heuristicOK && cred != "" && !cc.public:
		// default_ttl or heuristics would decide: not for a credential.
		d.Reason = reasonCookieImplicit
		if cred == "authorization" {
			d.Reason = reasonAuthImplicit
		}
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
		d.Store, d.Reason = false, reasonNoValidatorStale
		return
	}
	d.NoCache = cc.noCache
	d.Revalidate = d.Revalidate || cc.mustRevalidate || cc.proxyRevalidate
	if cred != "" && !cc.public && d.Lifetime == 0 && cc.swr < 0 && cc.sie < 0 {
		// A credentialed answer stale at once was never shareable without
		// asking the origin: no client's max-stale or stale-if-error may
		// have it unchecked.
		d.Revalidate, d.OwnOnly = true, true
	}
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

// parseAge reads the Age field lines as RFC 9111 §5.1 asks: a list (one
// line "0, 7200" or several lines) counts by its first member; a first
// member that is not delta-seconds (abc, -5, 1.5) is ignored, as if the
// field were absent. Values past maxDelta are maxDelta.
func parseAge(lines []string) int64 {
	if len(lines) == 0 {
		return 0
	}
	first, _, _ := strings.Cut(lines[0], ",")
	n, ok := parseDelta(strings.Trim(first, " \t"))
	if !ok {
		return 0
	}
	return n
}

// Media type families a path extension promises, for the deception armor.
const (
	famCSS = iota + 1
	famJS
	famJSON
	famXML
	famText
	famImage
	famFont
	famVideo
	famAudio
	famPDF
	famWasm
	famZip
)

// armorExtensions are the extensions of static files, as caches that cache
// by extension list them (Cloudflare's default set, less html and the
// archive and office formats), with the family of types that may answer
// them.
var armorExtensions = map[string]int{
	"css": famCSS, "js": famJS, "mjs": famJS, "json": famJSON, "map": famJSON, "webmanifest": famJSON,
	"xml": famXML, "txt": famText, "csv": famText,
	"png": famImage, "apng": famImage, "jpg": famImage, "jpeg": famImage, "jfif": famImage, "pjpeg": famImage,
	"gif": famImage, "webp": famImage, "avif": famImage, "svg": famImage, "svgz": famImage, "ico": famImage,
	"bmp": famImage, "tif": famImage, "tiff": famImage, "heic": famImage, "jxl": famImage,
	"woff": famFont, "woff2": famFont, "ttf": famFont, "otf": famFont, "eot": famFont,
	"mp4": famVideo, "m4v": famVideo, "webm": famVideo, "ogv": famVideo, "mov": famVideo,
	"mp3": famAudio, "m4a": famAudio, "ogg": famAudio, "oga": famAudio, "opus": famAudio, "wav": famAudio,
	"flac": famAudio, "aac": famAudio,
	"pdf": famPDF, "wasm": famWasm, "zip": famZip,
}

// typeFits tells whether media type mt (lower case, no parameters) may
// answer a path of family fam.
func typeFits(fam int, mt string) bool {
	main, sub, _ := strings.Cut(mt, "/")
	switch fam {
	case famCSS:
		return mt == "text/css"
	case famJS:
		return mt == "text/javascript" || mt == "application/javascript" || mt == "application/x-javascript" ||
			mt == "application/ecmascript" || mt == "text/ecmascript"
	case famJSON:
		return mt == "application/json" || mt == "text/json" || (main == "application" && strings.HasSuffix(sub, "+json"))
	case famXML:
		return mt == "application/xml" || mt == "text/xml" || (main == "application" && strings.HasSuffix(sub, "+xml"))
	case famText:
		return mt == "text/plain" || mt == "text/csv"
	case famImage:
		// Image services answer .jpg with WebP or AVIF, .gif with a video.
		return main == "image" || main == "video"
	case famFont:
		return main == "font" || strings.HasPrefix(mt, "application/font-") || strings.HasPrefix(mt, "application/x-font") ||
			mt == "application/vnd.ms-fontobject"
	case famVideo:
		return main == "video" || main == "audio" || mt == "application/ogg"
	case famAudio:
		return main == "audio" || main == "video" || mt == "application/ogg"
	case famPDF:
		return mt == "application/pdf"
	case famWasm:
		return mt == "application/wasm"
	case famZip:
		return mt == "application/zip" || mt == "application/x-zip-compressed"
	}
	return true
}

// armored applies deceptionArmor to every Content-Type line: browsers
// differ in which of several they follow.
func armored(path string, types []string) bool {
	for _, ct := range types {
		if deceptionArmor(path, ct) {
			return true
		}
	}
	return false
}

// deceptionArmor tells whether a response of Content-Type ct contradicts
// the extension of path: a page at a URL that looks like a static file,
// which an origin that ignores what follows a script's path
// (/account.php/x.css, /account;x.css, /account%2Fx.css) answers with a
// user's page. Every extension of the last path segment counts, the
// segment cut at any character that is not a letter, digit, '.', '-' or
// '_' (so x.css;v=1.2 is a .css). No Content-Type, or a generic binary one
// (application/octet-stream, which browsers save rather than show), is no
// contradiction, as in Cloudflare's Cache Deception Armor.
func deceptionArmor(path, ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt == "" || mt == "application/octet-stream" || mt == "binary/octet-stream" {
		return false
	}
	seg := strings.TrimRight(path, "/")
	seg = seg[strings.LastIndexByte(seg, '/')+1:]
	for len(seg) > 0 {
		i := 0
		for i < len(seg) && (seg[i] == '.' || seg[i] == '-' || seg[i] == '_' || seg[i] >= '0' && seg[i] <= '9' ||
			seg[i]|0x20 >= 'a' && seg[i]|0x20 <= 'z') {
			i++
		}
		part := strings.TrimRight(seg[:i], ".")
		if dot := strings.LastIndexByte(part, '.'); dot >= 0 {
			if fam := armorExtensions[strings.ToLower(part[dot+1:])]; fam != 0 && !typeFits(fam, mt) {
				return true
			}
		}
		if i < len(seg) {
			i++
		}
		seg = seg[i:]
	}
	return false
}
