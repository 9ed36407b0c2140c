package proxy

import (
	"net/http"
	"strings"
)

// Limits bound a request's head as the proxy sees it, on every protocol.
// Zero values check nothing.
type Limits struct {
	// MaxHeaderBytes bounds the request head in its HTTP/1.1 form: the
	// request line, each field as "Name: value\r\n" (Host included), and
	// the blank line. Over it: 431. The node also caps what Go's server
	// reads before it gives up (see internal/node), so on HTTP/1.1 the raw
	// head is bounded too.
	MaxHeaderBytes int
	// MaxURIBytes bounds the request target (path and query as sent).
	// Over it: 414.
	MaxURIBytes int
}

// HeaderObserver, when the Config's Observer implements it, is told about
// every request field dropped because its name holds an underscore.
type HeaderObserver interface {
	DroppedHeader(property string)
}

// screen enforces the head limits and drops the fields whose name holds
// "_" (origins that fold "_" into "-" would read "Content_Length" or
// "X_Forwarded_For" as framing or as a spoofed header; nginx and Caddy drop
// them too). It answers a request over a limit itself and reports true.
func (s *Server) screen(w http.ResponseWriter, r *http.Request, req *request) bool {
	if code := s.screenHead(r, req.propertyName()); code != 0 {
		plainError(w, code, req.id)
		return true
	}
	return false
}

func (s *Server) screenHead(r *http.Request, p string) int {
	l := s.cfg.Limits
	if l.MaxURIBytes > 0 && len(r.RequestURI) > l.MaxURIBytes {
		return http.StatusRequestURITooLong
	}
	size := len(r.Method) + 1 + len(r.RequestURI) + 1 + len("HTTP/1.1") + 2 +
		len("Host: ") + len(r.Host) + 2 + 2
	dropped := 0
	for name, vs := range r.Header {
		for _, v := range vs {
			size += len(name) + 2 + len(v) + 2
		}
		if strings.IndexByte(name, '_') >= 0 {
			delete(r.Header, name)
			dropped++
		}
	}
	if dropped > 0 {
		if o, ok := s.cfg.Observer.(HeaderObserver); ok {
			for range dropped {
				o.DroppedHeader(p)
			}
		}
	}
	if l.MaxHeaderBytes > 0 && size > l.MaxHeaderBytes {
		return http.StatusRequestHeaderFieldsTooLarge
	}
	return 0
}
