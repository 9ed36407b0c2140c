package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/etcdtest"
)

// TestSessionResumesAcrossTheFleet: two nodes sharing an etcd store share
// their session-ticket keys, so a client that got a ticket from one node
// resumes its TLS session on the other.
func TestSessionResumesAcrossTheFleet(t *testing.T) {
	e := etcdtest.Start(t)
	o := newRecordingOrigin(t)
	extra := fmt.Sprintf("store: {backend: etcd, etcd: {endpoints: [%s]}}\n", e.Endpoint)
	props := map[string]string{"a.yaml": fmt.Sprintf("hostnames: [a.example]\norigins: [{url: %s}]\ntls: {certificate: a}\n", o.URL)}
	n1 := runTestNode(t, extra, props)
	n2 := runTestNode(t, extra, props)
	cache := tls.NewLRUClientSessionCache(8)
	get := func(addr string) bool {
		tr := &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			},
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ClientSessionCache: cache}, ForceAttemptHTTP2: true,
		}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://a.example/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return resp.TLS.DidResume
	}
	if get(n1.addrs.HTTPS) {
		t.Fatal("the first connection resumed")
	}
	if !get(n2.addrs.HTTPS) {
		t.Error("a ticket from node 1 did not resume on node 2")
	}
}
