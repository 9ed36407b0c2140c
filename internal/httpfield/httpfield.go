// Package httpfield holds the small HTTP/1.x field rules shared by Edge's
// own head parsers — the request's (internal/h1) and the origin
// response's (proxy) — each of which falls back to net/http for anything
// these do not take.
package httpfield

import (
	"bytes"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Line reads one field line of a head, given with its line end: the
// canonical name and the value without the blanks around it (through
// str). False for what the fast parsers leave to net/http: a bare LF, no
// colon or an empty name, a name Canonical does not take, a control byte
// other than HTAB in the value.
func Line(line []byte, str func([]byte) string) (key, value string, ok bool) {
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return "", "", false
	}
	line = line[:len(line)-2]
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return "", "", false
	}
	if key, ok = Canonical(line[:colon], str); !ok {
		return "", "", false
	}
	v := line[colon+1:]
	for _, b := range v {
		if b < ' ' && b != '\t' || b == 0x7f {
			return "", "", false
		}
	}
	if v = bytes.Trim(v, " \t"); len(v) > 0 {
		value = str(v)
	}
	return key, value, true
}

// Canonical returns the canonical form of a field name made of letters,
// digits and '-' (a common one without allocating, any other canonical
// one through str); false for a name holding any other byte.
func Canonical(name []byte, str func([]byte) string) (string, bool) {
	upper, canon := true, true
	for _, b := range name {
		switch {
		case 'a' <= b && b <= 'z':
			if upper {
				canon = false
			}
		case 'A' <= b && b <= 'Z':
			if !upper {
				canon = false
			}
		case '0' <= b && b <= '9':
		case b == '-':
		default:
			return "", false
		}
		upper = b == '-'
	}
	if k, ok := common[string(name)]; ok {
		return k, true
	}
	if canon {
		return str(name), true
	}
	return http.CanonicalHeaderKey(string(name)), true
}

// common maps the usual spellings (canonical and lower case) of common
// request and response field names to their canonical form.
var common = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		// requests
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language",
		"Authorization", "Cookie", "Host", "If-Match", "If-Modified-Since", "If-None-Match", "If-Range",
		"If-Unmodified-Since", "Origin", "Range", "Referer", "Te", "Upgrade", "User-Agent",
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Expect", "Sec-Websocket-Key",
		"Sec-Websocket-Version", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-Dest", "Dnt",
		"Upgrade-Insecure-Requests", "Priority",
		// responses
		"Age", "Content-Language", "Content-Range", "Date", "Etag", "Expires", "Last-Modified", "Location",
		"Server", "Set-Cookie", "Vary", "X-Cache", "X-Content-Type-Options", "X-Frame-Options",
		"Access-Control-Allow-Origin", "Strict-Transport-Security", "Alt-Svc", "Content-Disposition", "Link",
		// both
		"Accept-Ranges", "Cache-Control", "Connection", "Content-Encoding", "Content-Length", "Content-Type",
		"Keep-Alive", "Pragma", "Trailer", "Transfer-Encoding", "Via", "X-Request-Id",
	} {
		m[k] = k
		m[strings.ToLower(k)] = k
	}
	return m
}()

// ParseLength parses a Content-Length of 1 to 18 digits (no sign, no
// space: anything else is left to net/http's rules).
func ParseLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		b := v[i]
		if b < '0' || b > '9' {
			return 0, false
		}
		n = n*10 + int64(b-'0')
	}
	return n, true
}

// Close is net/http's rule for whether a message of HTTP/1.minor with
// these Connection values ends its connection: HTTP/1.0 unless it says
// keep-alive (and not close), HTTP/1.1 when it says close.
func Close(minor int, connection []string) bool {
	hasClose := httpguts.HeaderValuesContainsToken(connection, "close")
	if minor == 0 {
		return hasClose || !httpguts.HeaderValuesContainsToken(connection, "keep-alive")
	}
	return hasClose
}
