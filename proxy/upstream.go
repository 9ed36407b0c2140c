package proxy

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// forward is the upstream entry of a site, the handler the cache sits in
// front of: it sends r to one of the property's origins (retrying on
// another when that is safe, see mayRetry) and writes the response into
// w. A failure before the response started is answered with an error
// status; an origin that fails mid-body aborts the client's response
// (panic(http.ErrAbortHandler)), so nobody mistakes a truncated body for
// a whole one.
//
// It records the origin tried (and a mid-body failure) in the request
// state that is r's context, for the access log. Called with a context
// derived from it (a cache fill: context.WithoutCancel(r.Context()), run
// beside or after the client's exchange), it works on a state of its own
// that keeps the client's request id, so two goroutines never write the
// same one.
func (st *site) forward(w http.ResponseWriter, r *http.Request) {
	req, own := r.Context().(*request)
	if !own {
		req = &request{began: monoNow(), prop: st.prop} // the property, for its log lines
		if parent := requestOf(r.Context()); parent != nil {
			req.setID(parent.id)
			if bc, ok := st.s.cfg.Cache.(BackgroundCache); !ok || !bc.Background(r.Context()) {
				req.parent = parent // the client waits on this fill
			}
		} else {
			st.s.ids.next(req)
		}
		req.Context = r.Context()
		r = r.WithContext(req)
	}
	st.forwardReq(w, r, req, !own) // a cache fill's (not own): its response may be stored and served to others
}

// forwardReq is forward with the request state at hand: the path of a
// property without a cache calls it straight, r keeping the client's
// context (no r.WithContext: one allocation fewer per request).
func (st *site) forwardReq(w http.ResponseWriter, r *http.Request, req *request, fill bool) {
	upgrade := upgradeType(r.Header)
	st.budget.deposit()
	var tried uint64
	var lastErr error
	timeoutRetried := false
	for attempt := 0; attempt < maxAttempts; attempt++ {
		i := st.pick(tried)
		if i < 0 {
			break
		}
		o := st.origins[i]
		tried |= 1 << i
		req.origin = o.name
		if req.parent != nil {
			req.parent.fillOrigin.Store(&o.name)
		}
		var elapsed time.Duration
		var err error
		if o.sync.Load() {
			elapsed, err = st.syncAttempt(w, r, req, o, upgrade, fill)
		} else {
			elapsed, err = st.transportAttempt(w, r, req, o, upgrade)
		}
		if st.obs != nil {
			st.obs.OriginRequest(o.name, err, elapsed)
		} else if obs := st.s.cfg.Observer; obs != nil {
			obs.OriginRequest(st.prop.Name, o.name, err, elapsed)
		}
		if err == nil {
			return
		}
		lastErr = err
		if r.Context().Err() != nil {
			break // the client left; not the origin's fault
		}
		if req.body != nil && req.body.err != nil {
			break // the client's body broke: a 400, the origin did nothing wrong
		}
		o.failed(err)
		if !st.mayRetry(r, req, err, &timeoutRetried) {
			break
		}
		st.s.log.Debug("retrying on another origin", zap.String("property", st.prop.Name),
			zap.String("origin", o.name), zap.Error(err))
	}
	if lastErr == nil {
		lastErr = errNoOrigin
	}
	st.s.proxyError(w, r, req, lastErr)
}

var (
	errNoOrigin  = errors.New("no origin available")
	errNoUpgrade = errors.New("origin answered 101 without a connection to switch")
	// errStrayBytes: bytes followed a response to a cache fill on its
	// connection; the response is not stored (proxy/pool.go, fillMinIdle).
	errStrayBytes = errors.New("origin sent bytes after the end of the response")
)

// syncAttempt runs one exchange with o over a pooled connection. It
// returns an error only when nothing was written to w. A fill (a cache
// fill's request) takes a connection idle for fillMinIdle or a new one, and
// a fill's response followed by stray bytes is aborted (never stored). A reused
// connection that the origin had closed while idle is replaced by a new
// one once, when the request can go again (nothing of it consumed).
func (st *site) syncAttempt(w http.ResponseWriter, r *http.Request, req *request, o *origin, upgrade string, fill bool) (time.Duration, error) {
	ctx := r.Context()
	fresh, idleClosed := false, 0
	for {
		var c *upConn
		var err error
		switch {
		case fresh:
			c, err = o.pool.dialConn(ctx)
		case fill:
			c, err = o.pool.getSettled(ctx, fillMinIdle, !hasBody(r))
		default:
			c, err = o.pool.get(ctx, !hasBody(r))
		}
		if err != nil {
			return 0, &attemptError{err: err, dial: true}
		}
		o.pool.requests.Add(1)
		x := exchange{st: st, o: o, c: c, w: w, r: r, req: req, upgrade: upgrade, hasBody: hasBody(r)}
		start := time.Now()
		// The client leaving unblocks the exchange at once (without it a
		// stalled origin holds this goroutine until a timeout).
		watch := watchClient(ctx, w, c.abortFn)
		resp, err := x.roundTrip(start)
		elapsed := time.Since(start)
		if err != nil {
			watch.end()
			c.nc.Close()
			if err == errIdleClosed && ctx.Err() == nil {
				// Found closed before anything was sent: any request may
				// go on another connection (a few idle ones, then a new one).
				idleClosed++
				fresh = idleClosed > maxIdleClosed
				continue
			}
			var nr *noResponse
			if !fresh && c.reused && errors.As(err, &nr) && !isTimeout(err) && ctx.Err() == nil &&
				(!x.wroteAny || x.writeError || !x.hasBody) && idempotent(r.Method) && bodyUntouched(req) {
				fresh = true
				continue // the origin closed it while idle: once more, on a new connection
			}
			return elapsed, classify(err, &x)
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			watch.end()
			err := st.switchProtocols(w, r, resp, upgrade, upConnRWC{c})
			return elapsed, err
		}
		clean, berr := st.writeResponse(w, r, resp, c)
		fired := !watch.end()
		stray := false
		if clean && !fired && fill {
			// A fill's response followed by bytes nobody asked for ended
			// early, or was not the answer to this request: never stored.
			stray = c.strayBytes()
		}
		reuse := clean && !fired && !stray && x.reusable(resp)
		c.dropResponse() // resp may be c's own: the pool must not keep it
		if reuse {
			o.pool.put(c)
		} else {
			c.nc.Close()
		}
		if berr == nil && stray {
			berr = errStrayBytes
		}
		if berr != nil {
			st.abort(r, req, o, berr)
		}
		return elapsed, nil
	}
}

// maxIdleClosed bounds the pooled connections one attempt takes and finds
// closed before it dials a new one (the pool drops each it finds so).
const maxIdleClosed = 4

// goneHooker is the client-gone hook of Edge's HTTP/1.x front (the
// ResponseWriter of internal/h1) and of its HTTP/2 server (internal/h2srv):
// context.AfterFunc on the request's own context, without allocating.
type goneHooker interface {
	SetClientGone(ctx context.Context, f func()) bool
	ClearClientGone() (fired bool)
}

// clientWatch calls f when ctx ends during an exchange (the client left).
type clientWatch struct {
	hk   goneHooker
	stop func() bool
}

// watchClient starts a watch: through the front's hook when w (or a
// writer it wraps) offers one for ctx — the client request's own context,
// or the request state over it — else with context.AfterFunc, which
// allocates its registration (two allocations, and on Go's server a
// children map and two locks).
func watchClient(ctx context.Context, w http.ResponseWriter, f func()) clientWatch {
	base := ctx
	if rq, ok := ctx.(*request); ok {
		base = rq.Context // its cancellation is its Context's
	}
	for w != nil {
		if hk, ok := w.(goneHooker); ok {
			if hk.SetClientGone(base, f) {
				return clientWatch{hk: hk}
			}
			break
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		w = u.Unwrap()
	}
	return clientWatch{stop: context.AfterFunc(ctx, f)}
}

// end stops the watch; false: f was called (or is being called).
func (cw clientWatch) end() bool {
	if cw.hk != nil {
		return !cw.hk.ClearClientGone()
	}
	return cw.stop()
}

// abort ends a response whose origin failed mid-body: logged once, then
// the client's connection is cut (http.ErrAbortHandler) so that a
// truncated body is never taken for a whole one.
func (st *site) abort(r *http.Request, req *request, o *origin, err error) {
	if r.Context().Err() == nil {
		req.err = err
		o.failed(err)
	}
	panic(http.ErrAbortHandler)
}

// hasBody reports whether a request has a body to send. An HTTP/2
// request always has a Body; one whose stream ended with its headers has
// ContentLength 0, and no body.
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

func bodyUntouched(req *request) bool { return req.body == nil || req.body.n == 0 }

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// forwardInfo passes a 1xx response (103 Early Hints) to the client.
func forwardInfo(w http.ResponseWriter, resp *http.Response) {
	h := w.Header()
	saved := h.Clone()
	for k, vv := range resp.Header {
		if !hopByHop(k) {
			h[k] = vv
		}
	}
	w.WriteHeader(resp.StatusCode)
	clear(h)
	for k, vv := range saved {
		h[k] = vv
	}
}
