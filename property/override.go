package property

import (
	"net/http"
	"slices"
)

// overrideHeaders are the request headers that frameworks read as the URL,
// method, host, scheme or port of the request in place of the real ones:
// what the web-cache-poisoning research (PortSwigger's "Practical Web Cache
// Poisoning" and "Web Cache Entanglement", Param Miner's header list, the
// CPDoS paper's HTTP Method Override attack) found origins to honour. A
// cache that forwards them without keying them stores one client's
// rewritten answer for everyone, so the proxy drops them unless a property
// allows them by name (headers.allow_overrides), and then they join the
// cache key. Names are lower case; a header matches whatever its case and
// with '_' for '-' (CGI and PHP read both as the same variable).
var overrideHeaders = map[string]string{
	// the URL or path
	"x-original-url":        "X-Original-Url", // Symfony, Zend, IIS URL Rewrite
	"x-rewrite-url":         "X-Rewrite-Url",  // Symfony, Zend, IIS
	"x-original-uri":        "X-Original-Uri",
	"x-forwarded-uri":       "X-Forwarded-Uri", // Traefik forward auth
	"x-forwarded-path":      "X-Forwarded-Path",
	"x-forwarded-prefix":    "X-Forwarded-Prefix", // Spring, ASP.NET, Traefik
	"x-envoy-original-path": "X-Envoy-Original-Path",
	// the method
	"x-http-method-override": "X-Http-Method-Override",
	"x-http-method":          "X-Http-Method",
	"x-method-override":      "X-Method-Override",
	"x-original-method":      "X-Original-Method",
	// the host
	"x-host":               "X-Host",
	"x-forwarded-server":   "X-Forwarded-Server",
	"x-original-host":      "X-Original-Host",
	"x-http-host-override": "X-Http-Host-Override",
	"x-host-override":      "X-Host-Override",
	// the scheme and port
	"x-forwarded-scheme":   "X-Forwarded-Scheme", // Rack, Rails
	"x-forwarded-protocol": "X-Forwarded-Protocol",
	"x-forwarded-ssl":      "X-Forwarded-Ssl", // Rack
	"front-end-https":      "Front-End-Https", // Microsoft
	"x-url-scheme":         "X-Url-Scheme",    // Rack
	"x-scheme":             "X-Scheme",
	"x-original-scheme":    "X-Original-Scheme",
	"x-forwarded-port":     "X-Forwarded-Port",
}

// maxOverrideName is the length of the longest name in overrideHeaders.
const maxOverrideName = len("x-forwarded-protocol") + 2

// OverrideHeader reports whether a request header name is an override
// header that the proxy drops unless allowed, and returns its canonical
// spelling (X-Http-Method-Override for x_http_method_override). It does
// not allocate.
func OverrideHeader(name string) (string, bool) {
	if len(name) < 6 || len(name) > maxOverrideName {
		return "", false
	}
	switch name[0] {
	case 'X', 'x', 'F', 'f':
	default:
		return "", false
	}
	var buf [maxOverrideName]byte
	canon, ok := overrideHeaders[string(FoldHeaderName(buf[:0], name))]
	return canon, ok
}

// FoldHeaderName appends name to dst in lower case with '_' read as '-',
// the way CGI and PHP fold a header name (X_Original_URL is
// x-original-url), for comparing names whatever their spelling. With a dst
// of enough capacity it does not allocate.
func FoldHeaderName(dst []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		dst = append(dst, c)
	}
	return dst
}

// OverrideHeaders lists the canonical names of the override headers,
// sorted (for documentation and error messages).
func OverrideHeaders() []string {
	out := make([]string, 0, len(overrideHeaders))
	for _, v := range overrideHeaders {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

func (v *validator) allowOverrides(names []string) []string {
	var out []string
	for i, n := range names {
		canon, ok := OverrideHeader(n)
		if !ok || canon != http.CanonicalHeaderKey(n) {
			v.fail(at("headers", "allow_overrides", i), "%q is not one of the override headers the proxy drops (X-Original-Url, X-Http-Method-Override, X-Forwarded-Prefix and the like, listed in the README); other headers are forwarded anyway", n)
			continue
		}
		if slices.Contains(out, canon) {
			v.fail(at("headers", "allow_overrides", i), "%s is listed twice", canon)
			continue
		}
		out = append(out, canon)
	}
	slices.Sort(out)
	return out
}
