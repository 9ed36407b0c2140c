package proxy

import (
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"time"
)

// transportAttempt sends r to an origin through its http.Transport: the
// path of https origins, which may speak HTTP/2 (one connection carries
// many client requests; the Transport's goroutines pay for themselves
// there). Headers are filtered as on the synchronous path.
func (st *site) transportAttempt(w http.ResponseWriter, r *http.Request, req *request, o *origin, upgrade string) (time.Duration, error) {
	ctx := r.Context()
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, hdr textproto.MIMEHeader) error {
		if code == http.StatusContinue || code == http.StatusSwitchingProtocols {
			return nil
		}
		forwardInfo(w, &http.Response{StatusCode: code, Header: http.Header(hdr)})
		return nil
	}}
	out := r.WithContext(httptrace.WithClientTrace(ctx, trace))
	u := *r.URL
	o.target(&u)
	out.URL = &u
	out.RequestURI = ""
	out.Close = false
	out.Header = make(http.Header, len(r.Header)+6)
	st.outHeaders(r, req, upgrade, mapSink(out.Header))
	out.Host = st.originHost(r)
	if req.body != nil {
		// The transport closes the body it is given; trackedBody's Close
		// does nothing, so a retry after a dial error can send it again.
		out.Body = req.body
	}
	out.Trailer = nil
	if len(r.Trailer) > 0 && req.body != nil {
		// Only the trailer fields forwardTrailer allows, copied from the
		// client's once its body has ended (the server fills them then).
		var tr http.Header
		for k := range r.Trailer {
			if st.forwardTrailer(k) {
				if tr == nil {
					tr = http.Header{}
				}
				tr[k] = nil
			}
		}
		if tr != nil {
			out.Trailer = tr
			out.Body = &trailerBody{rc: req.body, from: r.Trailer, to: tr}
		}
	}
	start := time.Now()
	resp, err := o.rt.RoundTrip(out)
	elapsed := time.Since(start)
	if err != nil {
		return elapsed, classifyTransport(err)
	}
	if resp.ProtoMajor == 1 && o.url.Scheme == "https" && !o.sync.Load() {
		// The origin did not take h2: HTTP/1.1 from now on, on the
		// synchronous path (until a reload makes the origin anew).
		o.sync.Store(true)
		o.log.Debug("https origin speaks HTTP/1.1: synchronous path")
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		back, ok := resp.Body.(io.ReadWriteCloser)
		if !ok {
			resp.Body.Close()
			return elapsed, &attemptError{err: errNoUpgrade}
		}
		return elapsed, st.switchProtocols(w, r, resp, upgrade, back)
	}
	_, berr := st.writeResponse(w, r, resp, nil)
	resp.Body.Close()
	if berr != nil {
		st.abort(r, req, o, berr)
	}
	return elapsed, nil
}

// trailerBody copies the allowed trailer fields of the client's request
// into the one sent, when the body ends.
type trailerBody struct {
	rc       io.ReadCloser
	from, to http.Header
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		for k := range b.to {
			b.to[k] = b.from[k]
		}
	}
	return n, err
}

// Close does nothing, as trackedBody's.
func (b *trailerBody) Close() error { return nil }
