package cache

import (
	"net/http"
	"net/url"
	"time"

	"github.com/edge-cdn/edge/property"
)

// follow answers r from fill f: it waits for the head (bounded, unless r
// started the fill), then serves the object the fill settled on or streams
// the body as it arrives. pos is r's reader position in f.
func (c *Cache) follow(w http.ResponseWriter, r *http.Request, f *fill, pos *int64, initiator bool, upstream http.Handler, fwd string) {
	defer f.leave(pos)
	if !c.waitHead(w, r, f, initiator) {
		if r.Context().Err() == nil {
			c.passThrough(w, r, upstream, "Edge; fwd="+fwd+"; detail=wait-timeout")
		}
		return
	}
	if f.mode == modeObject {
		if !initiator && !f.shared {
			c.passThrough(w, r, upstream, "Edge; fwd="+fwd)
			return
		}
		if initiator && len(f.setCookie) > 0 {
			w.Header()["Set-Cookie"] = f.setCookie
		}
		c.serveObject(w, r, f.obj, c.now(), f.cstatus)
		return
	}
	if !initiator && (!f.shared || !sameVariant(f, r)) {
		c.passThrough(w, r, upstream, "Edge; fwd="+fwd)
		return
	}
	h := w.Header()
	for k, v := range f.header {
		h[k] = v
	}
	if !initiator {
		h["Cache-Status"] = []string{f.cstatus + "; collapsed"}
	} else {
		h["Cache-Status"] = []string{f.cstatus}
	}
	if len(h["Age"]) == 0 {
		h["Age"] = ageZero
	}
	if f.shared && f.status == http.StatusOK && notModified(r.Header, &object{Status: f.status, Header: f.header}) {
		writeNotModified(w, &object{Header: f.header})
		return
	}
	w.WriteHeader(f.status)
	if r.Method == http.MethodHead {
		return
	}
	c.stream(w, r, f, pos)
}

// waitHead waits until f has decided its mode; false when r's client left or
// (for a request that did not start the fill) the wait timed out. The
// request that started the fill gets the origin's informational responses
// (103 Early Hints) as they come, before the final head; collapsed waiters
// never do (their links would be another client's).
func (c *Cache) waitHead(w http.ResponseWriter, r *http.Request, f *fill, initiator bool) bool {
	var timeout <-chan time.Time
	var interim <-chan interimResponse
	if !initiator {
		t := time.NewTimer(c.cfg.WaitTimeout)
		defer t.Stop()
		timeout = t.C
	} else {
		interim = f.interim
	}
	for {
		select {
		case <-f.head:
			for initiator {
				select {
				case im := <-f.interim:
					relayInterim(w, im)
				default:
					return true
				}
			}
			return true
		case im := <-interim:
			relayInterim(w, im)
		case <-timeout:
			return false
		case <-r.Context().Done():
			return false
		}
	}
}

// interimResponse is a 1xx response of the origin (other than 100 and 101)
// met by a fill.
type interimResponse struct {
	code   int
	header http.Header
}

// relayInterim writes an informational response to w without leaving its
// fields in w's header for the final response.
func relayInterim(w http.ResponseWriter, im interimResponse) {
	h := w.Header()
	saved := h.Clone()
	for k, vv := range im.header {
		h[k] = vv
	}
	w.WriteHeader(im.code)
	clear(h)
	for k, vv := range saved {
		h[k] = vv
	}
}

// stream copies the fill's body to w as it grows; a body cut short aborts
// the client's response, so that it is never taken for a whole one.
func (c *Cache) stream(w http.ResponseWriter, r *http.Request, f *fill, pos *int64) {
	rc := http.NewResponseController(w)
	for {
		b, done, failed := f.read(r.Context(), pos)
		if done {
			if failed && r.Context().Err() == nil {
				panic(http.ErrAbortHandler)
			}
			return
		}
		n, err := w.Write(b)
		f.advance(pos, n)
		if err != nil {
			return
		}
		rc.Flush()
	}
}

// sameVariant tells whether r would get the same variant as the request
// that started f, given the Vary of f's response.
func sameVariant(f *fill, r *http.Request) bool {
	for _, n := range varyNames(f.header) {
		a, b := f.job.req.Header[n], r.Header[n]
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
	}
	return true
}

// serveUnsafe forwards a request with an unsafe method and, when the origin
// did not answer with an error, invalidates the URL and the same-origin
// Location and Content-Location of the response (RFC 9111 §4.4).
func (c *Cache) serveUnsafe(w http.ResponseWriter, r *http.Request, p *property.Property, upstream http.Handler, st *propStats) {
	st.bypass.Add(1)
	mw := &markWriter{ResponseWriter: w, status: "Edge; fwd=bypass; detail=method"}
	upstream.ServeHTTP(mw, r)
	switch r.Method {
	case http.MethodOptions, http.MethodTrace, "PROPFIND", "SEARCH", "REPORT":
		return // safe methods
	}
	if mw.code < 200 || mw.code >= 400 {
		return
	}
	c.invalidateURL(p, r.Host, r.URL)
	for _, k := range []string{"Location", "Content-Location"} {
		v := w.Header().Get(k)
		if v == "" {
			continue
		}
		u, err := r.URL.Parse(v)
		if err != nil {
			continue
		}
		host := r.Host
		if u.Host != "" {
			if string(appendHost(nil, u.Host)) != string(appendHost(nil, r.Host)) {
				continue // another origin's URL
			}
			host = u.Host
		}
		c.invalidateURL(p, host, u)
	}
}

// invalidateURL removes the objects (or variant markers) at the URL's
// keys, under every scheme; the variants of a removed marker are never
// found again.
func (c *Cache) invalidateURL(p *property.Property, host string, u *url.URL) {
	for _, key := range urlKeys(p, host, u) {
		c.remove(key)
	}
}
