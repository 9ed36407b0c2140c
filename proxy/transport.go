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
	if st.prop.OriginHost != "" {
		out.Host = st.prop.OriginHost
	}
	if req.body != nil {
		// The transport closes the body it is given; trackedBody's Close
		// does nothing, so a retry after a dial error can send it again.
		out.Body = req.body
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
	_, berr := st.writeResponse(w, r, resp)
	resp.Body.Close()
	if berr != nil {
		st.abort(r, req, o, berr)
	}
	return elapsed, nil
}
