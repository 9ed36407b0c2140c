package cache

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dunglas/httpsfv"
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

// targetedDirectives reads CDN-Cache-Control as RFC 9213 §2.1 defines it:
// a Dictionary Structured Field (RFC 9651). ok is false, and the field is
// to be ignored as if absent, when it does not parse, is empty, or a
// directive the cache obeys has a value of the wrong type (max-age="60",
// no-store=1, max-age=-1): RFC 9213 §2.1 tells caches not to consume such
// values, and falling back to Cache-Control is the safe reading.
func targetedDirectives(lines []string) (d directives, ok bool) {
	dict, err := httpsfv.UnmarshalDictionary(lines)
	if err != nil || len(dict.Names()) == 0 {
		return d, false
	}
	d = newDirectives()
	for _, name := range dict.Names() {
		m, _ := dict.Get(name)
		var v any
		if it, isItem := m.(httpsfv.Item); isItem {
			v = it.Value
		}
		switch name {
		case "max-age", "s-maxage", "stale-while-revalidate", "stale-if-error":
			n, isInt := v.(int64)
			if !isInt || n < 0 {
				return d, false
			}
			d.set(name, strconv.FormatInt(min(n, maxDelta), 10), false)
		case "no-store", "public", "must-revalidate", "proxy-revalidate", "must-understand":
			b, isBool := v.(bool)
			if !isBool {
				return d, false
			}
			if b {
				d.set(name, "", false)
			}
		case "no-cache", "private":
			switch v := v.(type) {
			case bool:
				if v {
					d.set(name, "", false)
				}
			case string: // qualified: the named fields are not stored
				d.set(name, v, true)
			default:
				return d, false
			}
		}
	}
	return d, true
}

// parseHTTPDate reads an HTTP-date (RFC 9110 §5.6.7) strictly: the
// IMF-fixdate, or one of the two obsolete forms recipients must accept
// (rfc850-date, asctime-date), with the exact spacing and digit counts
// of the grammar; names and GMT are compared without regard to case. A
// two-digit rfc850 year more than 50 years after now is in the past
// century. Anything else (extra spaces, a one-digit hour, another zone,
// dashes in an IMF-fixdate) is not a date: an Expires so written means
// already expired (RFC 9111 §5.3).
func parseHTTPDate(s string, now time.Time) (time.Time, bool) {
	switch {
	case len(s) == 29 && s[3] == ',': // Sun, 06 Nov 1994 08:49:37 GMT
		if !dayName(s[:3]) || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[25] != ' ' || !strings.EqualFold(s[26:], "GMT") {
			return time.Time{}, false
		}
		return dateOf(digits(s[12:16]), s[8:11], digits(s[5:7]), s[17:25])
	case len(s) == 24 && s[3] == ' ': // Sun Nov  6 08:49:37 1994
		if !dayName(s[:3]) || s[7] != ' ' || s[10] != ' ' || s[19] != ' ' {
			return time.Time{}, false
		}
		day := s[8:10]
		if day[0] == ' ' {
			day = day[1:]
		}
		return dateOf(digits(s[20:]), s[4:7], digits(day), s[11:19])
	}
	// Sunday, 06-Nov-94 08:49:37 GMT
	name, rest, found := strings.Cut(s, ", ")
	if !found || !longDayName(name) || len(rest) != 22 || rest[2] != '-' || rest[6] != '-' || rest[9] != ' ' ||
		rest[18] != ' ' || !strings.EqualFold(rest[19:], "GMT") {
		return time.Time{}, false
	}
	yy := digits(rest[7:9])
	if yy < 0 {
		return time.Time{}, false
	}
	year := now.Year()/100*100 + yy
	if year > now.Year()+50 {
		year -= 100
	}
	return dateOf(year, rest[3:6], digits(rest[:2]), rest[10:18])
}

var months = map[string]time.Month{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
	"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}

var dayNames = []string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}

func dayName(s string) bool {
	for _, n := range dayNames {
		if strings.EqualFold(s, n[:3]) {
			return true
		}
	}
	return false
}

func longDayName(s string) bool {
	for _, n := range dayNames {
		if strings.EqualFold(s, n) {
			return true
		}
	}
	return false
}

// dateOf builds the time from the parts of an HTTP-date: clock is
// hh:mm:ss; a negative number is a part that was not all digits. A date
// that does not exist (31 Feb, hour 24) is not one.
func dateOf(year int, month string, day int, clock string) (time.Time, bool) {
	m := months[strings.ToLower(month)]
	if clock[2] != ':' || clock[5] != ':' {
		return time.Time{}, false
	}
	hh, mm, ss := digits(clock[:2]), digits(clock[3:5]), digits(clock[6:])
	if year < 0 || m == 0 || day < 1 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60 {
		return time.Time{}, false
	}
	t := time.Date(year, m, day, 0, 0, 0, 0, time.UTC)
	if t.Day() != day { // normalised: the day does not exist
		return time.Time{}, false
	}
	return t.Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute + time.Duration(ss)*time.Second), true
}

// digits reads an unsigned decimal of a few digits, or -1.
func digits(s string) int {
	if s == "" {
		return -1
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -1
		}
		n = n*10 + int(s[i]-'0')
	}
	return n
}
