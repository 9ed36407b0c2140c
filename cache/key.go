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
//	property \x00 host \x00 path [? query]
//
// with the host lower-cased, without port or trailing dot, and the query as
// the property's cache.query says. A response that varies is stored under a
// secondary key, the primary key followed by \x01, the generation of the
// variant marker stored at the primary key, \x01, and name=value\x02 for each
// header it varies on; a new marker (a new set of Vary names, or a URL purge)
// has a new generation, so variants of an old one are never found again.
// One property's keys never collide with another's: names hold no \x00.

const (
	sepField   = "\x00"
	sepVariant = "\x01"
)

// primaryKey appends the primary key of r for property p to b.
func primaryKey(b []byte, p *property.Property, r *http.Request) []byte {
	b = append(b, p.Name...)
	b = append(b, sepField...)
	b = appendHost(b, r.Host)
	b = append(b, sepField...)
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	b = append(b, path...)
	return appendQuery(b, r.URL.RawQuery, p.Cache)
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
