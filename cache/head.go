package cache

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// onHead decides what a fill does with the response head upstream wrote:
// refresh the stored object (304), serve it stale (error within
// stale-if-error), or stream the response, kept for storing when the policy
// (planHead) allows and the fill budget admits it. It reports whether the
// body is to be kept.
func (c *Cache) onHead(f *fill, reqT time.Time, code int, h http.Header) bool {
	j := f.job
	now := c.now()
	if base := f.base; base != nil {
		if code == http.StatusNotModified {
			// The 304's Set-Cookie is the revalidating client's alone: it
			// is neither merged into the stored head nor shown to waiters.
			f.setCookie = h["Set-Cookie"]
			f.mode, f.cstatus = modeObject, "Edge; fwd=stale; fwd-status=304"
			f.obj, f.shared = c.revalidated(f, base, h, reqT, now)
			f.setMode()
			return false
		}
		if code >= 500 && c.staleIfError(f, base, now) {
			f.mode, f.obj, f.shared = modeObject, base, true
			f.cstatus = "Edge; hit; fwd=stale; fwd-status=" + strconv.Itoa(code) + "; detail=stale-if-error"
			f.setMode()
			return false
		}
	}
	plan := planHead(j.req, code, h, now, j.policy)
	if plan.badLength != "" {
		c.problem("origin sent a bad Content-Length", zap.String("property", j.prop), zap.String("value", plan.badLength))
	}
	if plan.varyNames > maxVary {
		c.problem("origin varies on too many headers", zap.String("property", j.prop), zap.Int("headers", plan.varyNames))
	}
	d := plan.d
	j.decision, j.reqTime, j.header = d, reqT, h.Clone()
	ch := h.Clone()
	stripCacheHeaders(ch)
	f.mu.Lock()
	if d.Store {
		d.Store, d.Reason = c.admit(f, plan.declared, d.Reason)
	}
	f.status, f.header, f.declared = code, ch, plan.declared
	// Waiters follow only a response the policy lets the cache store and
	// share. Anything else (an error, private, Set-Cookie, the answer to a
	// request with credentials) is the initiator's alone: each waiter asks
	// the origin. One that is shareable but not kept (too large, the fill
	// budget full) still carries its waiters, at the slowest one's pace.
	// A credentialed answer stale at once is stored for revalidation only
	// (OwnOnly): a waiter, or a request that joins the fill just before it
	// ends, would get it unchecked (whatever its max-stale), so it does not
	// follow either.
	f.shared, f.storing = plan.d.Store && !plan.d.OwnOnly, d.Store
	f.mu.Unlock()
	f.mode = modeStream
	if d.Store {
		f.cstatus = "Edge; fwd=" + j.fwd + "; stored; ttl=" + strconv.FormatInt(int64(d.Lifetime/time.Second), 10)
	} else {
		f.cstatus = "Edge; fwd=" + j.fwd + "; detail=" + strings.ReplaceAll(d.Reason, " ", "-")
		c.notStored(f, code, d.Reason)
	}
	f.setMode()
	return true
}

// headPlan is what the policy says of a fill's response head.
type headPlan struct {
	d         Decision
	declared  int64  // Content-Length, -1 if none (or bad)
	badLength string // a Content-Length that is not a length
	varyNames int    // the request headers it varies on
}

// planHead applies the policy to the head of the response a fill's
// request req got: RFC 9111 (Decide), then the framing and size rules of
// the cache. It is a function of its arguments alone.
func planHead(req *http.Request, code int, h http.Header, now time.Time, pol Policy) headPlan {
	pl := headPlan{d: Decide(http.MethodGet, req.URL.Path, req.Header, code, h, now, pol), declared: -1}
	if cl := h.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			pl.badLength = cl
			pl.d.Store, pl.d.Reason = false, "bad content-length"
		} else {
			pl.declared = n // a short or long body against it is never stored
		}
		if pl.d.Store && pol.MaxObjectSize > 0 && n > pol.MaxObjectSize {
			pl.d.Store, pl.d.Reason = false, "over max_object_size"
		}
	}
	if pl.d.Store && len(h["Vary"]) > 0 && varyProblem(h) != "" {
		pl.d.Store = false
	}
	pl.varyNames = len(varyNames(h))
	return pl
}

// notStored does what a response that will not be stored means for its
// key: remembered for a while (hit-for-pass) unless the request or the
// moment made it so, the fill let go of, and a stale copy the origin no
// longer lets be stored removed.
func (c *Cache) notStored(f *fill, code int, reason string) {
	transient := requestMadeIt(reason) || reason == reasonFillBudget
	if !transient && code < 500 {
		c.pass.set(f.key)
	}
	c.unregister(f)
	if f.base != nil && code < 500 && !transient {
		c.remove(f.base.Key) // the origin no longer lets it be stored
	}
}

// Reasons a storable response is streamed through instead (Cache-Status
// detail=too-large, detail=fill-budget-full).
const (
	reasonTooLarge   = "too large"
	reasonFillBudget = "fill budget full"
)

// admit decides whether a storable response's body can be kept: its
// declared length within the object bound, and that many bytes of the fill
// budget free (reserved now, so a fill that says "stored" is not turned
// away mid-body). A body without a length reserves as it grows (fill.grow).
// f.mu is held.
func (c *Cache) admit(f *fill, declared int64, reason string) (bool, string) {
	if declared > c.maxSize(f) {
		return false, reasonTooLarge // max_object_size was checked before
	}
	if declared > 0 {
		if !c.reserve(declared) {
			return false, reasonFillBudget
		}
		f.res = declared
	}
	return true, reason
}

// staleIfError tells whether base may answer for an origin error (RFC 5861
// §4): within its stale-if-error window, or the request's, and not under
// must-revalidate.
func (c *Cache) staleIfError(f *fill, base *object, now time.Time) bool {
	if base.Revalidate {
		return false
	}
	window := base.SIE
	if rd := requestDirectives(f.job.req.Header); rd.sie >= 0 {
		window = max(window, seconds(rd.sie))
	}
	return window > 0 && -base.ttl(now) <= window
}

// revalidated builds the object a 304 refreshes (RFC 9111 §4.3.4): the
// stored head updated with the 304's fields, the same body; it is stored,
// and may be shared with the fill's waiters, when the updated head still
// allows it. A Set-Cookie of the 304 is never merged: it belongs to the
// client whose request was revalidated (the fill adds it to that answer).
func (c *Cache) revalidated(f *fill, base *object, h http.Header, reqT, now time.Time) (*object, bool) {
	merged := base.Header.Clone()
	for k, v := range h {
		switch k {
		case "Content-Length", "Content-Encoding", "Transfer-Encoding", "Content-Range", "Connection", "Keep-Alive",
			"Set-Cookie", "Set-Cookie2", "Etag", "Content-Md5", "Te", "Upgrade", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authentication-Info", "Proxy-Authorization":
			continue
		}
		merged[k] = v
	}
	for _, k := range cacheOnlyHeaders {
		delete(merged, k)
	}
	tags := base.Tags
	if t := parseTags(h); t != nil {
		tags = t
	}
	d := Decide(http.MethodGet, f.job.req.URL.Path, f.job.req.Header, base.Status, mergedWithCacheHeaders(merged, h), now, f.job.policy)
	o := c.newObject(base.Key, base.Status, merged, base.body, reqT, now, d, tags)
	o.seal()
	if d.Store {
		c.put(o)
	} else if !requestMadeIt(d.Reason) {
		c.remove(base.Key) // a credential of this request says nothing of the stored copy
	}
	return o, d.Store && !d.OwnOnly // see the OwnOnly note in the fill's head
}

// mergedWithCacheHeaders puts the cache-only fields of h back for the
// policy (CDN-Cache-Control decides; it is not stored).
func mergedWithCacheHeaders(merged, h http.Header) http.Header {
	if v, ok := h["Cdn-Cache-Control"]; ok {
		m := merged.Clone()
		m["Cdn-Cache-Control"] = v
		return m
	}
	return merged
}

// newObject builds an object from a response head and body.
func (c *Cache) newObject(key string, status int, h http.Header, body []byte, reqT, respT time.Time, d Decision, tags []string) *object {
	for k, v := range h {
		h[k] = slices.Clip(v) // an Add by a later writer must copy, never write into the stored array
	}
	return &object{Key: key, Status: status, Header: h, body: body,
		RequestTime: reqT.UnixNano(), ResponseTime: respT.UnixNano(),
		Date:     parseDate(h.Get("Date"), respT).UnixNano(),
		AgeValue: parseAge(h["Age"]),
		Lifetime: d.Lifetime, SWR: d.SWR, SIE: d.SIE, Revalidate: d.Revalidate, NoCache: d.NoCache, Tags: tags}
}

// store keeps a complete fill under its key (a variant key when the
// response varies, with the marker at the primary key).
func (c *Cache) store(f *fill, body []byte) {
	j := f.job
	h := j.header
	tags := parseTags(h)
	for _, k := range append(slices.Clone(cacheOnlyHeaders), j.decision.Strip...) {
		delete(h, k)
	}
	for _, k := range []string{"Connection", "Keep-Alive", "Transfer-Encoding", "Proxy-Connection", "Te", "Trailer", "Upgrade"} {
		delete(h, k)
	}
	key := j.primary
	if names := varyNames(j.header); len(names) > 0 {
		m := c.get(j.primary)
		if m == nil || !m.Marker || !slices.Equal(m.Vary, names) {
			m = &object{Key: j.primary, Marker: true, Vary: names, Gen: c.gen.Add(1), ResponseTime: c.now().UnixNano()}
			c.put(m)
		}
		key = string(secondaryKey([]byte(j.primary), m.Gen, names, j.req.Header))
	}
	if cap(body)-len(body) > len(body)/8 {
		body = bytes.Clone(body) // the slack of a grown buffer would be held but not weighed
	}
	o := c.newObject(key, f.status, h, body, j.reqTime, c.now(), j.decision, tags)
	c.pass.drop(f.key)
	c.put(o)
}

// parseTags reads Surrogate-Key and Cache-Tag (space or comma separated).
func parseTags(h http.Header) []string {
	var out []string
	for _, k := range []string{"Surrogate-Key", "Cache-Tag"} {
		for _, line := range h[k] {
			for _, t := range strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
				if !slices.Contains(out, t) {
					out = append(out, t)
				}
			}
		}
	}
	return out
}

// requestMadeIt tells reasons that come from the request, not the
// response: they say nothing about the next request for the key.
func requestMadeIt(reason string) bool {
	switch reason {
	case reasonRequestNoStore, reasonAuthorization, reasonCookieImplicit, reasonAuthImplicit:
		return true
	}
	return false
}
