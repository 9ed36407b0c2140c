package node

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestH2ClientResetAbortsStalledOrigin (attack: HTTP/2 clients that
// reset their streams while a stalled origin has not answered, each
// leaving a handler goroutine and an origin connection held until the
// response-header timeout): through the whole node on TLS, the stream's
// reset ends the exchange at once — the origin's connection is closed,
// long before the 60 s timeout. The proxy watches the request's context
// through h2srv's client-gone hook (SetClientGone), not context.AfterFunc.
func TestH2ClientResetAbortsStalledOrigin(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got, closed := make(chan struct{}, 1), make(chan struct{}, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		got <- struct{}{}
		io.Copy(io.Discard, br) // until the edge closes it
		closed <- struct{}{}
	}()
	t.Cleanup(func() { ln.Close() })
	n := runTestNode(t, "", map[string]string{"g.yaml": fmt.Sprintf(
		"hostnames: [g.example]\norigins: [{url: http://%s}]\ntls: {certificate: g}\ntimeouts: {response_header: 60s}\n", ln.Addr())})
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "g.example", InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+n.addrs.HTTPS+"/slow", nil)
	req.Host = "g.example"
	errc := make(chan error, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("answered: %s %d", resp.Proto, resp.StatusCode)
		}
		errc <- err
	}()
	select {
	case <-got:
	case err := <-errc:
		t.Fatalf("before the origin had the request: %v", err)
	}
	start := time.Now()
	cancel() // the client's transport resets the stream
	<-errc
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("origin connection still open 10 s after the client reset its stream")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("origin connection closed %v after the client reset its stream", d)
	}
}
