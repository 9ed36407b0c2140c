package cache

import (
	"net/http"
	"strconv"
	"strings"
)

// maxDelta is the delta-seconds value used for larger ones (RFC 9111 §1.2.2).
const maxDelta = 2147483648

// directives are the parsed Cache-Control (or CDN-Cache-Control) directives
// of one message. A delta-seconds value of -1 means absent.
type directives struct {
	maxAge, sMaxAge, maxStale, minFresh int64
	swr, sie                            int64
	maxStaleAny                         bool
	noStore, noCache, private, public   bool
	mustRevalidate, proxyRevalidate     bool
	onlyIfCached, mustUnderstand        bool
	// invalid is set when a freshness directive had a value that does not
	// parse (RFC 9111 §4.2.1: such a response is best considered stale).
	invalid bool
	// fields named by qualified no-cache="..." and private="...": a shared
	// cache must not reuse them without revalidation; they are not stored.
	strip []string
}

func newDirectives() directives {
	return directives{maxAge: -1, sMaxAge: -1, maxStale: -1, minFresh: -1, swr: -1, sie: -1}
}

// parseDirectives reads every field line of h[name]. Unknown directives are
// ignored; for a repeated directive the first one counts.
func parseDirectives(lines []string) directives {
	d := newDirectives()
	for _, line := range lines {
		for len(line) > 0 {
			var name, val string
			var quoted bool
			name, val, quoted, line = nextDirective(line)
			if name != "" {
				d.set(name, val, quoted)
			}
		}
	}
	return d
}

// nextDirective splits the first directive off s.
func nextDirective(s string) (name, val string, quoted bool, rest string) {
	s = strings.TrimLeft(s, " \t,")
	i := 0
	for i < len(s) && s[i] != '=' && s[i] != ',' {
		i++
	}
	name = strings.ToLower(strings.TrimSpace(s[:i]))
	if i >= len(s) || s[i] == ',' {
		return name, "", false, s[i:]
	}
	s = strings.TrimLeft(s[i+1:], " \t")
	if strings.HasPrefix(s, `"`) {
		var b strings.Builder
		j := 1
		for ; j < len(s) && s[j] != '"'; j++ {
			if s[j] == '\\' && j+1 < len(s) {
				j++
			}
			b.WriteByte(s[j])
		}
		if j < len(s) {
			j++
		}
		k := strings.IndexByte(s[j:], ',')
		if k < 0 {
			return name, b.String(), true, ""
		}
		return name, b.String(), true, s[j+k:]
	}
	k := strings.IndexByte(s, ',')
	if k < 0 {
		return name, strings.TrimSpace(s), false, ""
	}
	return name, strings.TrimSpace(s[:k]), false, s[k:]
}

func (d *directives) set(name, val string, quoted bool) {
	switch name {
	case "max-age":
		d.delta(&d.maxAge, val, true)
	case "s-maxage":
		d.delta(&d.sMaxAge, val, true)
	case "stale-while-revalidate":
		d.delta(&d.swr, val, false)
	case "stale-if-error":
		d.delta(&d.sie, val, false)
	case "min-fresh":
		d.delta(&d.minFresh, val, false)
	case "max-stale":
		if val == "" {
			d.maxStaleAny = true
		} else {
			d.delta(&d.maxStale, val, false)
		}
	case "no-store":
		d.noStore = true
	case "no-cache":
		if val != "" && quoted {
			d.strip = append(d.strip, fieldList(val)...)
		} else {
			d.noCache = true
		}
	case "private":
		if val != "" && quoted {
			d.strip = append(d.strip, fieldList(val)...)
		} else {
			d.private = true
		}
	case "public":
		d.public = true
	case "must-revalidate":
		d.mustRevalidate = true
	case "proxy-revalidate":
		d.proxyRevalidate = true
	case "only-if-cached":
		d.onlyIfCached = true
	case "must-understand":
		d.mustUnderstand = true
	}
}

// delta parses delta-seconds into *dst unless it is already set. A value
// that does not parse marks freshness invalid when fresh is true.
func (d *directives) delta(dst *int64, val string, fresh bool) {
	if *dst >= 0 {
		return
	}
	n, ok := parseDelta(val)
	if !ok {
		if fresh {
			d.invalid = true
		}
		return
	}
	*dst = n
}

// parseDelta parses 1*DIGIT; values past maxDelta are maxDelta.
func parseDelta(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxDelta {
		return maxDelta, true
	}
	return n, true
}

func fieldList(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, http.CanonicalHeaderKey(f))
		}
	}
	return out
}
