package cache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// serveObject writes a stored object as the answer to r: a 304 when the
// client's validators match, a 206 or 416 for a Range, else the object.
// status overrides the Cache-Status value ("" for a hit).
func (c *Cache) serveObject(w http.ResponseWriter, r *http.Request, o *object, now time.Time, status string) {
	h := w.Header()
	s := o.stampAt(now)
	setStamp := func() {
		if status == "" {
			h["Cache-Status"] = s.status
		} else {
			h["Cache-Status"] = []string{status}
		}
		h["Age"] = s.age
	}
	if notModified(r.Header, o) {
		setStamp()
		writeNotModified(w, o)
		return
	}
	for k, v := range o.Header {
		h[k] = v
	}
	setStamp()
	if o.Status == http.StatusOK && r.Method == http.MethodGet && len(r.Header["Range"]) > 0 && ifRangeMatches(r.Header, o) {
		if serveRange(w, r.Header.Get("Range"), o) {
			return
		}
	}
	h["Content-Length"] = o.clen
	if o.Status == http.StatusNoContent || o.Status == http.StatusNotModified {
		delete(h, "Content-Length")
	}
	w.WriteHeader(o.Status)
	if r.Method != http.MethodHead {
		w.Write(o.body)
	}
}

// stampAt returns the Age and Cache-Status values for a hit at now, built
// once per second per object.
func (o *object) stampAt(now time.Time) *stamp {
	sec := now.Unix()
	if s := o.stamp.Load(); s != nil && s.sec == sec {
		return s
	}
	age := o.age(now)
	ttl := o.ttl(now)
	s := &stamp{sec: sec, age: []string{strconv.FormatInt(int64(age/time.Second), 10)},
		status: []string{"Edge; hit; ttl=" + strconv.FormatInt(int64(ttl/time.Second), 10)}}
	if ttl <= 0 {
		s.status = []string{"Edge; hit; fwd=stale; ttl=" + strconv.FormatInt(int64(ttl/time.Second), 10)}
	}
	o.stamp.Store(s)
	return s
}

// notModified evaluates If-None-Match, then If-Modified-Since, of a GET or
// HEAD against a stored 200 (RFC 9110 §13.2.2).
func notModified(rh http.Header, o *object) bool {
	if o.Status != http.StatusOK {
		return false
	}
	if inm := rh["If-None-Match"]; len(inm) > 0 {
		etag := o.etag()
		if etag == "" {
			return false
		}
		for _, line := range inm {
			for _, t := range strings.Split(line, ",") {
				t = strings.TrimSpace(t)
				if t == "*" || weakMatch(t, etag) {
					return true
				}
			}
		}
		return false
	}
	ims := rh.Get("If-Modified-Since")
	if ims == "" {
		return false
	}
	since, err := http.ParseTime(ims)
	if err != nil {
		return false
	}
	lm, err := http.ParseTime(o.lastModified())
	if err != nil {
		lm, err = http.ParseTime(headerValue(o.Header, "Date"))
		if err != nil {
			return false
		}
	}
	return !lm.After(since)
}

func weakMatch(a, b string) bool {
	return strings.TrimPrefix(a, "W/") == strings.TrimPrefix(b, "W/")
}

// writeNotModified writes a 304 with the fields RFC 9110 §15.4.5 keeps.
func writeNotModified(w http.ResponseWriter, o *object) {
	h := w.Header()
	for _, k := range []string{"Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Vary", "Last-Modified"} {
		if v, ok := o.Header[k]; ok {
			h[k] = v
		}
	}
	w.WriteHeader(http.StatusNotModified)
}

// ifRangeMatches evaluates If-Range (RFC 9110 §13.1.5): a strong ETag or a
// date equal to Last-Modified.
func ifRangeMatches(rh http.Header, o *object) bool {
	ir := rh.Get("If-Range")
	if ir == "" {
		return true
	}
	if strings.HasPrefix(ir, `"`) {
		return ir == o.etag()
	}
	return ir == o.lastModified() && ir != ""
}

// serveRange answers a single byte range; multiple ranges get the whole
// object (false), unsatisfiable ones a 416.
func serveRange(w http.ResponseWriter, spec string, o *object) bool {
	size := int64(len(o.body))
	start, end, ok, multi := parseRange(spec, size)
	if multi {
		return false
	}
	h := w.Header()
	if !ok {
		h["Content-Range"] = []string{"bytes */" + strconv.FormatInt(size, 10)}
		h["Content-Length"] = []string{"0"}
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		return true
	}
	h["Content-Range"] = []string{"bytes " + strconv.FormatInt(start, 10) + "-" + strconv.FormatInt(end, 10) + "/" + strconv.FormatInt(size, 10)}
	h["Content-Length"] = []string{strconv.FormatInt(end-start+1, 10)}
	w.WriteHeader(http.StatusPartialContent)
	w.Write(o.body[start : end+1])
	return true
}

// parseRange reads "bytes=a-b", "bytes=a-" or "bytes=-n" against size. ok is
// false for an unsatisfiable range; multi is true for a list (or a syntax
// the cache leaves to the full response).
func parseRange(spec string, size int64) (start, end int64, ok, multi bool) {
	spec = strings.TrimSpace(spec)
	if !strings.HasPrefix(spec, "bytes=") || strings.Contains(spec, ",") {
		return 0, 0, false, true
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec[len("bytes="):]), "-")
	if !found {
		return 0, 0, false, true
	}
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, false, true
		}
		if n == 0 || size == 0 {
			return 0, 0, false, false
		}
		return max(0, size-n), size - 1, true, false
	}
	s, err := strconv.ParseInt(a, 10, 64)
	if err != nil || s < 0 {
		return 0, 0, false, true
	}
	e := size - 1
	if b != "" {
		if e, err = strconv.ParseInt(b, 10, 64); err != nil || e < s {
			return 0, 0, false, true
		}
		e = min(e, size-1)
	}
	if s >= size {
		return 0, 0, false, false
	}
	return s, e, true, false
}
