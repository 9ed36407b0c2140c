package h1_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/edge-cdn/edge/internal/h1"
)

// TestServeTLS: over TLS (a tls.NewListener, whose handshake the front
// does), requests carry the connection's TLS state.
func TestServeTLS(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	defer ts.Close()
	s := &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || !r.TLS.HandshakeComplete {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		io.WriteString(w, r.TLS.ServerName+" "+r.Proto)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(tls.NewListener(ln, ts.TLS)) }()
	client := ts.Client()
	client.Transport.(*http.Transport).TLSClientConfig.ServerName = "example.com"
	resp, err := client.Get("https://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "example.com HTTP/1.1" {
		t.Errorf("%d %q", resp.StatusCode, b)
	}
	client.CloseIdleConnections()
	s.Close()
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}
