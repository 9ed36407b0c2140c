package proxy

import (
	"net/http"
	"strings"
)

// hasDotSegment reports whether a request path, already percent-decoded
// (url.URL.Path), has a "." or ".." segment. Such a request is refused
// (400), not normalised: joined under an origin's path, "/../b" would
// leave it ("/a/../b"), and an origin may read the segments differently
// from any normalisation of ours. Segments are split at "/" and "\\" (a
// separator on some origins); a segment counts as dots when, after
// cutting at ";" (path parameters, which some servers strip), it is made
// of one or two "." or "%2e" (a second, double-encoded decoding), so
// "%2e%2e", "..%2f", "..\\", ".%2e" and "..;x" are all refused.
func hasDotSegment(p string) bool {
	for {
		i := indexSlash(p)
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		if isDots(seg) {
			return true
		}
		if i < 0 {
			return false
		}
		p = p[i+1:]
	}
}

// indexSlash is strings.IndexAny(p, "/\\") without the byte set that
// IndexAny builds on each call.
func indexSlash(p string) int {
	for i := 0; i < len(p); i++ {
		if p[i] == '/' || p[i] == '\\' {
			return i
		}
	}
	return -1
}

func isDots(seg string) bool {
	seg, _, _ = strings.Cut(seg, ";")
	dots := 0
	for len(seg) > 0 {
		switch {
		case seg[0] == '.':
			seg = seg[1:]
		case len(seg) >= 3 && seg[0] == '%' && seg[1] == '2' && (seg[2] == 'e' || seg[2] == 'E'):
			seg = seg[3:]
		default:
			return false
		}
		dots++
	}
	return dots == 1 || dots == 2
}

// badTarget reports whether a request's query holds bytes that HTTP/1.1
// forbids in a request target and that would change the origin's request
// line if written as they are: space, control characters and DEL (Go's
// HTTP/2 server takes ":path: /a?x HTTP/1.0 y"; written raw that would be
// another request line than the one the cache keys). The path needs no
// check: it is written escaped (URL.EscapedPath). Bytes above 0x7f, which
// break no framing and are keyed as sent, pass, as nginx lets them.
func badTarget(r *http.Request) bool {
	q := r.URL.RawQuery
	for i := 0; i < len(q); i++ {
		if c := q[i]; c <= ' ' || c == 0x7f {
			return true
		}
	}
	return false
}
