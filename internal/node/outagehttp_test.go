package node

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/etcdtest"
	"github.com/edge-cdn/edge/internal/testutil"
)

// TestOutageNewPropertyServesHTTP: with the store down, a reload adding a
// property waited for the store (listing certificates, creating its
// bootstrap certificate: one op_timeout each) before the proxy took the
// new table, and the new host answered 421 on plain HTTP meanwhile. Its
// HTTP routes are applied at once; its HTTPS waits for its certificate,
// made when the store answers again.
func TestOutageNewPropertyServesHTTP(t *testing.T) {
	const opTimeout = 10 * time.Second
	etcd := etcdtest.Start(t)
	n := runTestNode(t, fmt.Sprintf("store:\n  backend: etcd\n  etcd: {endpoints: [%s], prefix: /oh/, op_timeout: %s, dial_timeout: 2s}\n", etcd.Endpoint, opTimeout),
		map[string]string{"a.yaml": "hostnames: [a.example]\norigins: [{url: " + namedOrigin(t, "a") + "}]\ntls: {certificate: a}\n"})
	etcd.Stop()
	testutil.WaitForWithin(t, 20*time.Second, "the node to see the store down", func() bool {
		return strings.Contains(n.log.String(), "store unreachable")
	})
	body := "hostnames: [b.example]\norigins: [{url: " + namedOrigin(t, "b") + "}]\ntls: {certificate: b}\n"
	if err := os.WriteFile(filepath.Join(n.dir, "props", "b.yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	testutil.WaitForWithin(t, opTimeout/2, "b.example on plain HTTP", func() bool {
		return servedBy(t, n.addrs.HTTP, "b.example") == "b"
	}, n.log.String)
	t.Logf("b.example served on HTTP %v after its file was written", time.Since(start).Round(time.Millisecond))
	if names := handshakeNames(n.addrs.HTTPS, "b.example"); slices.Contains(names, "b.example") {
		t.Errorf("a certificate for b.example during the outage: %v", names)
	}

	etcd.Restart()
	testutil.WaitForWithin(t, 30*time.Second, "b.example's certificate after the store's return", func() bool {
		return slices.Contains(handshakeNames(n.addrs.HTTPS, "b.example"), "b.example")
	}, n.log.String)
}

// handshakeNames returns the DNS names of the certificate served for sni;
// nil when the handshake fails.
func handshakeNames(addr, sni string) []string {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		return nil
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].DNSNames
}
