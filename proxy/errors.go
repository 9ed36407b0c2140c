package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"

	"go.uber.org/zap"
)

// StatusClientClosed is logged for a request whose client left before the
// answer (nginx's 499); nothing reaches the client.
const StatusClientClosed = 499

// statusFor maps a proxying error to the status answered: 400 when the
// client's own body was broken, 499 when the client left, 504 when the
// origin timed out, 502 for anything else the origin did wrong.
func statusFor(err error, clientGone bool, body *trackedBody) int {
	switch {
	case body != nil && body.err != nil:
		return http.StatusBadRequest
	case clientGone || errors.Is(err, context.Canceled):
		return StatusClientClosed
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// proxyError is the ReverseProxy error handler: one log line with the
// detail, a short body with the request id for the client.
func (s *Server) proxyError(w http.ResponseWriter, r *http.Request, req *request, err error) {
	var body *trackedBody
	id, prop, org := "", "", ""
	if req != nil {
		body, id, prop, org = req.body, req.id, req.propertyName(), req.origin
	}
	code := statusFor(err, r.Context().Err() != nil, body)
	if code == http.StatusBadRequest {
		w.Header().Set("Connection", "close")
		err = body.err
	}
	s.log.Warn("proxy error", zap.String("request_id", id), zap.String("property", prop),
		zap.String("origin", org), zap.Int("status", code), zap.Error(err))
	if code == StatusClientClosed {
		if rec, ok := w.(*recorder); ok {
			rec.status = code
		}
		return
	}
	plainError(w, code, id)
}

// plainError writes a short text error naming the request id.
func plainError(w http.ResponseWriter, code int, id string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(code)
	msg := http.StatusText(code)
	if code == http.StatusMisdirectedRequest {
		msg = "Misdirected Request: this edge does not serve that host"
	}
	_, _ = w.Write([]byte(msg + "\nrequest id: " + id + "\n"))
}
