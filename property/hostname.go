package property

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"golang.org/x/net/idna"
)

// Normalize returns the canonical form of a hostname: IDNA A-labels, lower
// case, no trailing dot. It refuses ports, paths, IP addresses and anything
// else that is not a DNS name. A name already in canonical form is returned
// without allocating.
func Normalize(host string) (string, error) {
	if isCanonical(host) {
		return host, nil
	}
	h := strings.TrimSuffix(host, ".")
	if h == "" {
		return "", errors.New("empty hostname")
	}
	if strings.ContainsAny(h, ":/?#@[] \t") {
		return "", fmt.Errorf("hostname %q must be a bare name: no scheme, port, path or spaces", host)
	}
	a, err := idna.Lookup.ToASCII(h)
	if err != nil {
		return "", fmt.Errorf("hostname %q is not a valid DNS name: %v", host, err)
	}
	if !isCanonical(a) {
		return "", fmt.Errorf("hostname %q is not a valid DNS name", host)
	}
	return a, nil
}

// NormalizeWildcard is Normalize that also accepts a wildcard in the first
// label ("*.shop.example"), the only form TLS certificates allow.
func NormalizeWildcard(host string) (string, error) {
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		r, err := Normalize(rest)
		if err != nil {
			return "", err
		}
		if !strings.Contains(r, ".") {
			return "", fmt.Errorf("wildcard %q must cover a domain with at least two labels", host)
		}
		return "*." + r, nil
	}
	if strings.Contains(host, "*") {
		return "", fmt.Errorf("hostname %q: a wildcard is allowed only as the whole first label, as in *.shop.example", host)
	}
	return Normalize(host)
}

// HostOnly strips an optional port from a Host header value. It returns ""
// for an IP literal, which never names a property.
func HostOnly(hostport string) string {
	h := hostport
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	if strings.HasPrefix(h, "[") || net.ParseIP(h) != nil {
		return ""
	}
	return h
}

// isCanonical reports whether s is a lower-case LDH DNS name with no trailing
// dot and labels of 1 to 63 bytes, 253 bytes at most; an IPv4 literal is not.
func isCanonical(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	label, digitsOnly := 0, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
			digitsOnly = false
			label++
		case c >= '0' && c <= '9':
			label++
		case c == '-':
			if label == 0 || i+1 == len(s) || s[i+1] == '.' {
				return false
			}
			digitsOnly = false
			label++
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
		default:
			return false
		}
		if label > 63 {
			return false
		}
	}
	// The last label of a DNS name is never all digits; this keeps IPv4
	// literals such as 10.0.0.1 out.
	if digitsOnly || label == 0 {
		return false
	}
	last := s[strings.LastIndexByte(s, '.')+1:]
	return strings.IndexFunc(last, func(r rune) bool { return r < '0' || r > '9' }) >= 0
}
