package cache

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/edge-cdn/edge/property"
)

// Keys. The primary key of a request is
//
//	property \x00 scheme \x00 host \x00 path [? query] [\x04 name=value ...]
//
// with the scheme "http" or "https" (or "*" under cache.schemes: shared),
// the host lower-cased, without port or trailing dot, the query as the
// property's cache.query says, and, for each override header the property
// allows (headers.allow_overrides) that the request carries, \x04, its
// name, '=' and its values: whatever the origin sees of the request's
// URL, host and scheme is in the key. A response that varies is stored
// under a secondary key, the primary key followed by \x01, the generation
// of the variant marker stored at the primary key, \x01, and
// name=value\x02 for each header it varies on; a new marker (a new set of
// Vary names, or a URL purge) has a new generation, so variants of an old
// one are never found again. One property's keys never collide with
// another's: names hold no \x00. Keys of the format before the scheme was
// in them are told by currentKey and dropped from the disk tier at start.

const (
	sepField    = "\x00"
	sepVariant  = "\x01"
	sepOverride = "\x04"
)

// The scheme field of a key.
const (
	schemeHTTP   = "http"
	schemeHTTPS  = "https"
	schemeShared = "*"
)

// keySchemes are every scheme field a key can have: a URL purge removes
// each (a property may have switched cache.schemes since it stored).
var keySchemes = [...]string{schemeHTTP, schemeHTTPS, schemeShared}

// primaryKey appends the primary key of r for property p to b.
func primaryKey(b []byte, p *property.Property, r *http.Request) []byte {
	scheme := schemeHTTP
	switch {
	case p.Cache.SharedSchemes:
		scheme = schemeShared
	case r.TLS != nil:
		scheme = schemeHTTPS
	}
	b = appendURLKey(b, p, scheme, r.Host, r.URL)
	for _, name := range p.Headers.AllowOverrides {
		vals, ok := r.Header[name]
		if !ok {
			continue
		}
		b = append(b, sepOverride...)
		b = append(b, name...)
		b = append(b, '=')
		for i, v := range vals {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, v...)
		}
	}
	return b
}

// appendURLKey appends the key of URL u on host under scheme, without the
// request's override headers.
func appendURLKey(b []byte, p *property.Property, scheme, host string, u *url.URL) []byte {
	b = append(b, p.Name...)
	b = append(b, sepField...)
	b = append(b, scheme...)
	b = append(b, sepField...)
	b = appendHost(b, host)
	b = append(b, sepField...)
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	b = append(b, path...)
	return appendQuery(b, u.RawQuery, p.Cache)
}

// urlKeys returns the keys of URL u on host under every scheme, without
// override headers: the keys a URL purge or an invalidation removes.
func urlKeys(p *property.Property, host string, u *url.URL) [len(keySchemes)]string {
	var out [len(keySchemes)]string
	for i, s := range keySchemes {
		out[i] = string(appendURLKey(nil, p, s, host, u))
	}
	return out
}

// currentKey reports whether key has the current format: a primary part of
// property, scheme, host and path (older keys had no scheme).
func currentKey(key string) bool {
	prim := primaryOf(key)
	if i := strings.Index(prim, sepOverride); i >= 0 {
		prim = prim[:i]
	}
	if strings.Count(prim, sepField) != 3 {
		return false
	}
	_, rest, _ := strings.Cut(prim, sepField)
	scheme, _, _ := strings.Cut(rest, sepField)
	return slices.Contains(keySchemes[:], scheme)
}

// hostPathOf returns the host \x00 path?query part of a key: what a URL
// or prefix purge matches, whatever the scheme and override headers.
func hostPathOf(key string) string {
	_, rest, _ := strings.Cut(primaryOf(key), sepField)
	_, rest, _ = strings.Cut(rest, sepField)
	if i := strings.Index(rest, sepOverride); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// appendHost appends host lower-cased, without port or trailing dot.
func appendHost(b []byte, host string) []byte {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && i > strings.LastIndexByte(host, ']') {
		host = host[:i]
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

func appendQuery(b []byte, raw string, s property.Cache) []byte {
	switch s.Query {
	case property.QueryNone:
		return b
	case property.QueryAll, "":
		if raw != "" {
			b = append(b, '?')
			b = append(b, raw...)
		}
		return b
	}
	parts := strings.Split(raw, "&")
	kept := parts[:0]
	for _, p := range parts {
		if p == "" {
			continue
		}
		if s.Query == property.QueryList {
			name, _, _ := strings.Cut(p, "=")
			if n, err := url.QueryUnescape(name); err != nil || !slices.Contains(s.QueryParams, n) {
				continue
			}
		}
		kept = append(kept, p)
	}
	if len(kept) == 0 {
		return b
	}
	slices.Sort(kept)
	b = append(b, '?')
	return append(b, strings.Join(kept, "&")...)
}

// varyNames lists the canonical header names of the Vary lines of h.
func varyNames(h http.Header) []string {
	var out []string
	for _, line := range h["Vary"] {
		for _, f := range fieldList(line) {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	slices.Sort(out)
	return out
}

// secondaryKey appends the variant part of the key for a request with header
// rh to primary, under marker generation gen.
func secondaryKey(b []byte, gen uint64, names []string, rh http.Header) []byte {
	b = append(b, sepVariant...)
	b = strconv.AppendUint(b, gen, 16)
	b = append(b, sepVariant...)
	for _, n := range names {
		b = append(b, n...)
		b = append(b, '=')
		vals, ok := rh[n]
		if !ok {
			b = append(b, '\x03')
		}
		if listHeaders[n] {
			b = appendNormalList(b, vals)
		} else {
			for i, v := range vals {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendTrimmedList(b, v)
			}
		}
		b = append(b, '\x02')
	}
	return b
}

// primaryOf returns the primary part of a key.
func primaryOf(key string) string {
	if i := strings.IndexByte(key, sepVariant[0]); i >= 0 {
		return key[:i]
	}
	return key
}

// propertyOf returns the property part of a key.
func propertyOf(key string) string {
	name, _, _ := strings.Cut(key, sepField)
	return name
}

// listHeaders are request headers whose value is a case-insensitive list
// where order and spaces carry no meaning (the q-values carry preference),
// normalised in keys so that equivalent requests share a variant.
var listHeaders = map[string]bool{"Accept": true, "Accept-Encoding": true, "Accept-Language": true, "Accept-Charset": true}

func appendNormalList(b []byte, vals []string) []byte {
	var items []string
	for _, v := range vals {
		for _, it := range strings.Split(v, ",") {
			it = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(it), " ", ""))
			if it != "" {
				items = append(items, it)
			}
		}
	}
	slices.Sort(items)
	return append(b, strings.Join(items, ",")...)
}

// appendTrimmedList appends v without the optional white space around its
// commas (RFC 9110 §5.6.1), which does not change a list's meaning.
func appendTrimmedList(b []byte, v string) []byte {
	for i, it := range strings.Split(v, ",") {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, strings.TrimSpace(it)...)
	}
	return b
}

// withKeyedQuery returns r with the query the key holds (cache.query none,
// sorted or a list), so that what the origin sees of the query agrees with
// the key: a parameter the key ignores could otherwise vary the origin's
// answer (a reflected utm_content, say) and poison the copy every client
// gets. r itself is returned when nothing changes.
func withKeyedQuery(r *http.Request, p *property.Property) *http.Request {
	if p.Cache.Query == property.QueryAll || p.Cache.Query == "" || r.URL.RawQuery == "" {
		return r
	}
	q := strings.TrimPrefix(string(appendQuery(nil, r.URL.RawQuery, p.Cache)), "?")
	if q == r.URL.RawQuery {
		return r
	}
	u := *r.URL
	u.RawQuery, u.ForceQuery = q, false
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = &u
	return r2
}
