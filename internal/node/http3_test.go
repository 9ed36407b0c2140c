package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/config"
	"github.com/edge-cdn/edge/internal/testutil"
	"github.com/edge-cdn/edge/internal/yamlfield"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// h3Client is quic-go's HTTP/3 client, its handshakes naming sni and
// trusting any certificate (the node's are self-signed).
func h3Client(t *testing.T, sni string) *http.Client {
	t.Helper()
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{ServerName: sni, InsecureSkipVerify: true},
		QUICConfig:      &quic.Config{HandshakeIdleTimeout: 5 * time.Second, MaxIdleTimeout: 10 * time.Second},
	}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// h3Get sends a GET with Host host over HTTP/3 to the node and returns
// the answer with its body read, or the error.
func (n *testNode) h3Get(c *http.Client, host, path string, hdr ...string) (*http.Response, string, error) {
	n.t.Helper()
	req, err := http.NewRequest("GET", "https://"+n.addrs.HTTP3+path, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func propFile(host, origin string, extra ...string) string {
	return fmt.Sprintf("hostnames: [%s]\norigins: [{url: %s}]\n%s\n", host, origin, strings.Join(extra, "\n"))
}

// tlsGet sends a GET over HTTPS (TCP) with SNI and Host host.
func (n *testNode) tlsGet(host, path string) *http.Response {
	n.t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: host, InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "https://"+n.addrs.HTTPS+path, nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestHTTP3ServesProperty: with the defaults, the node listens for QUIC on
// the UDP port of its HTTPS port (also when that was port 0), a property
// answers over HTTP/3 through the same handler (Via, access log
// "HTTP/3.0"), and its HTTPS answers offer h3 on that port in Alt-Svc
// while its plain HTTP ones never do.
func TestHTTP3ServesProperty(t *testing.T) {
	o := newRecordingOrigin(t)
	n := runTestNode(t, "", map[string]string{"a.yaml": propFile("a.example", o.URL, "tls: {certificate: a}")})
	_, tcpPort, _ := net.SplitHostPort(n.addrs.HTTPS)
	_, udpPort, _ := net.SplitHostPort(n.addrs.HTTP3)
	if n.addrs.HTTP3 == "" || udpPort != tcpPort {
		t.Fatalf("HTTP/3 on %q, want UDP port %s (listen.https's)", n.addrs.HTTP3, tcpPort)
	}
	resp, body, err := n.h3Get(h3Client(t, "a.example"), "a.example", "/page")
	if err != nil {
		t.Fatalf("HTTP/3 request: %v\n%s", err, n.log)
	}
	if resp.StatusCode != 200 || body != "origin" || resp.Proto != "HTTP/3.0" {
		t.Errorf("over HTTP/3: %d %s %q", resp.StatusCode, resp.Proto, body)
	}
	if via := o.lastHeader().Get("Via"); via != "3 test-node" {
		t.Errorf("origin saw Via %q, want \"3 test-node\"", via)
	}
	want := `h3=":` + tcpPort + `"; ma=86400`
	if got := resp.Header.Values("Alt-Svc"); len(got) != 1 || got[0] != want {
		t.Errorf("HTTP/3 answer: Alt-Svc %q, want %q", got, want)
	}
	if got := n.tlsGet("a.example", "/").Header.Values("Alt-Svc"); len(got) != 1 || got[0] != want {
		t.Errorf("HTTPS answer: Alt-Svc %q, want %q", got, want)
	}
	req, _ := http.NewRequest("GET", "http://"+n.addrs.HTTP+"/", nil)
	req.Host = "a.example"
	plain, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	if got := plain.Header.Values("Alt-Svc"); len(got) != 0 {
		t.Errorf("plain HTTP answer: Alt-Svc %q, want none", got)
	}
	if !n.log.Await(`"proto":"HTTP/3.0"`, 5*time.Second) {
		t.Errorf("no access line with proto HTTP/3.0:\n%s", n.log)
	}
	// Counted by protocol: one request over HTTP/3, one over HTTPS (Go's
	// client speaks HTTP/2 to it), one over plain HTTP/1.1.
	for _, want := range []string{`proto="HTTP/3.0"} 1`, `proto="HTTP/2.0"} 1`, `proto="HTTP/1.1"} 1`} {
		if got := n.metric("edge_http_requests_by_protocol_total"); !strings.Contains(got, want) {
			t.Errorf("metrics by protocol: %q, want a line ending %s", got, want)
		}
	}
}

// TestHTTP3UnknownSNIRefused: a QUIC handshake for a name no property
// serves, or for one whose property turned HTTP/3 off, gets no
// certificate; that property's HTTPS answers offer no h3.
func TestHTTP3UnknownSNIRefused(t *testing.T) {
	o := newRecordingOrigin(t)
	n := runTestNode(t, "", map[string]string{
		"a.yaml":   propFile("a.example", o.URL, "tls: {certificate: a}"),
		"off.yaml": propFile("off.example", o.URL, "tls: {certificate: off}", "http3: false"),
	})
	for _, sni := range []string{"unknown.example", "off.example"} {
		if resp, _, err := n.h3Get(h3Client(t, sni), sni, "/"); err == nil {
			t.Errorf("SNI %s: answered %d, want the handshake refused", sni, resp.StatusCode)
		}
	}
	if o.hits.Load() != 0 {
		t.Errorf("%d requests reached the origin", o.hits.Load())
	}
	if got := n.tlsGet("off.example", "/").Header.Values("Alt-Svc"); len(got) != 0 {
		t.Errorf("http3: false property: Alt-Svc %q over HTTPS, want none", got)
	}
}

// TestHTTP3HostSNIMismatch421: over HTTP/3 as over TLS, a request whose
// Host is another property than the handshake's name, served with another
// certificate, is answered 421 and not forwarded.
func TestHTTP3HostSNIMismatch421(t *testing.T) {
	o := newRecordingOrigin(t)
	n := runTestNode(t, "", map[string]string{
		"a.yaml": propFile("a.example", o.URL, "tls: {certificate: a}"),
		"b.yaml": propFile("b.example", o.URL, "tls: {certificate: b}"),
	})
	resp, _, err := n.h3Get(h3Client(t, "a.example"), "b.example", "/")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusMisdirectedRequest || o.hits.Load() != 0 {
		t.Errorf("Host b.example on a.example's connection: %d, origin hits %d; want 421, 0", resp.StatusCode, o.hits.Load())
	}
}

// TestHTTP3CacheHit: the shared cache answers over HTTP/3 too, with
// Cache-Status, and the edge's Alt-Svc (not stored) on the hit.
func TestHTTP3CacheHit(t *testing.T) {
	o := newRecordingOrigin(t)
	n := runTestNode(t, "", map[string]string{"c.yaml": propFile("c.example", o.URL, "tls: {certificate: c}",
		"cache: {enabled: true, default_ttl: 1m}")})
	c := h3Client(t, "c.example")
	var status []string
	for range 2 {
		resp, body, err := n.h3Get(c, "c.example", "/obj")
		if err != nil {
			t.Fatal(err)
		}
		if body != "origin" {
			t.Fatalf("body %q", body)
		}
		status = append(status, resp.Header.Get("Cache-Status"))
		if len(resp.Header.Values("Alt-Svc")) != 1 {
			t.Errorf("Alt-Svc %q, want the edge's one", resp.Header.Values("Alt-Svc"))
		}
	}
	if !strings.Contains(status[1], "hit") || o.hits.Load() != 1 {
		t.Errorf("Cache-Status %q, origin hits %d; want a hit the second time", status, o.hits.Load())
	}
}

// TestHTTP3OversizedHeadRefused: limits.max_header_bytes bounds the
// request head over QUIC too, on the decoded QPACK fields, and nothing
// over it is forwarded: a head a little over it (whose Huffman encoding is
// well under it) is answered 431 by the proxy, access-logged; one far over
// it is refused by quic-go before the handler (431 without a request id,
// or a reset stream); one under it passes.
func TestHTTP3OversizedHeadRefused(t *testing.T) {
	o := newRecordingOrigin(t)
	const limit = 16 << 10
	n := runTestNode(t, fmt.Sprintf("limits: {max_header_bytes: %d}\n", limit),
		map[string]string{"a.yaml": propFile("a.example", o.URL, "tls: {certificate: a}")})
	c := h3Client(t, "a.example")
	resp, _, err := n.h3Get(c, "a.example", "/little-over", "X-Pad", strings.Repeat("e", limit+200))
	if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("a head a little over the limit: %v %v; want the proxy's 431", resp, err)
	}
	resp, _, err = n.h3Get(c, "a.example", "/far-over", "X-Pad", strings.Repeat("~", 2*limit))
	if err == nil && (resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || resp.Header.Get("X-Request-Id") != "") {
		t.Errorf("a head twice the limit: %d %v; want quic-go's 431 or a reset", resp.StatusCode, resp.Header)
	}
	if o.hits.Load() != 0 {
		t.Errorf("%d oversized heads reached the origin", o.hits.Load())
	}
	if !n.log.Await(`"uri":"/little-over"`, 5*time.Second) {
		t.Errorf("no access line for the proxy's 431")
	}
	c = h3Client(t, "a.example")
	if resp, _, err := n.h3Get(c, "a.example", "/", "X-Pad", strings.Repeat("e", limit-1024)); err != nil || resp.StatusCode != 200 {
		t.Errorf("a head under the limit: %v %v", resp, err)
	}
}

// TestHTTP3UnderscoreHeaderDropped: a field whose name holds "_" (which an
// origin may read as its "-" twin) is dropped over HTTP/3 as over TCP.
func TestHTTP3UnderscoreHeaderDropped(t *testing.T) {
	o := newRecordingOrigin(t)
	n := runTestNode(t, "", map[string]string{"a.yaml": propFile("a.example", o.URL, "tls: {certificate: a}")})
	resp, _, err := n.h3Get(h3Client(t, "a.example"), "a.example", "/", "X_Forwarded_For", "6.6.6.6", "X-Fine", "yes")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	h := o.lastHeader()
	if h.Get("X_Forwarded_For") != "" || strings.Contains(h.Get("X-Forwarded-For"), "6.6.6.6") || h.Get("X-Fine") != "yes" {
		t.Errorf("origin saw %v", h)
	}
}

// TestHTTP3Off: listen.http3 "" binds no UDP socket and offers no h3.
func TestHTTP3Off(t *testing.T) {
	o := newRecordingOrigin(t)
	t.Setenv("EDGE_LISTEN_HTTP3", "127.0.0.1:0") // an address: kept as given
	on := runTestNode(t, "", nil)
	if _, port, _ := net.SplitHostPort(on.addrs.HTTP3); port == "" || port == "0" {
		t.Errorf("listen.http3 127.0.0.1:0 bound %q", on.addrs.HTTP3)
	}
	t.Setenv("EDGE_LISTEN_HTTP3", "")
	off := runTestNodeReady(t, "", map[string]string{"a.yaml": propFile("a.example", o.URL, "tls: {certificate: a}")}, nil,
		func(c *config.Config) { c.Listen.HTTP3 = "" })
	if off.addrs.HTTP3 != "" {
		t.Errorf("HTTP/3 listening on %s", off.addrs.HTTP3)
	}
	if got := off.tlsGet("a.example", "/").Header.Values("Alt-Svc"); len(got) != 0 {
		t.Errorf("Alt-Svc %q with HTTP/3 off", got)
	}
}

// TestHTTP3UDPBufferWarning: when the kernel caps UDP buffers below what
// QUIC needs, the start logs a warning naming the sysctl to raise.
func TestHTTP3UDPBufferWarning(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	uc := pc.(*net.UDPConn)
	_ = uc.SetReadBuffer(udpBufferWanted)
	capped := socketBuffer(uc, syscall.SO_RCVBUF) < udpBufferWanted
	n := runTestNode(t, "", nil)
	warned := n.log.Await("net.core.rmem_max", time.Second)
	if warned != capped {
		t.Errorf("buffers capped: %v; warning logged: %v\n%s", capped, warned, n.log)
	}
}

// TestHTTP3Chromium: a real browser, headless Chromium forced onto QUIC
// for the property's origin (trusting the node's self-signed leaf by its
// public key, as Chromium ignores --ignore-certificate-errors on QUIC),
// loads a page through the edge, and the access log says HTTP/3.0.
func TestHTTP3Chromium(t *testing.T) {
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("no Chromium installed (apt-get install chromium; .ci/run installs it): the real-browser HTTP/3 check did not run")
	}
	o := newRecordingOrigin(t)
	n := runTestNode(t, "", map[string]string{"a.yaml": propFile("a.example", o.URL, "tls: {certificate: a}")})
	_, port, _ := net.SplitHostPort(n.addrs.HTTP3)
	conn, err := tls.Dial("tcp", n.addrs.HTTPS, &tls.Config{ServerName: "a.example", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir="+t.TempDir(),
		"--enable-quic", "--origin-to-force-quic-on=a.example:"+port,
		"--host-resolver-rules=MAP a.example 127.0.0.1",
		"--ignore-certificate-errors-spki-list="+base64.StdEncoding.EncodeToString(spki[:]),
		"--dump-dom", "https://a.example:"+port+"/from-chromium")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "origin") {
		t.Errorf("the page Chromium loaded:\n%s", out)
	}
	if !n.log.Await(`"proto":"HTTP/3.0"`, 5*time.Second) || !strings.Contains(n.log.String(), `"uri":"/from-chromium"`) {
		t.Fatalf("no HTTP/3.0 access line for Chromium's request:\n%s", n.log)
	}
	for _, l := range strings.Split(n.log.String(), "\n") {
		if strings.Contains(l, `"uri":"/from-chromium"`) && !strings.Contains(l, `"proto":"HTTP/3.0"`) {
			t.Errorf("Chromium's request was not over HTTP/3: %s", l)
		}
	}
}

// TestHTTP3GracefulShutdown: stopping the node (SIGTERM) lets a request in
// flight over HTTP/3 finish, as over TCP (the connection gets GOAWAY),
// and then the QUIC listener takes no new connection.
func TestHTTP3GracefulShutdown(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	}))
	defer slow.Close()
	n := runTestNode(t, "", map[string]string{"s.yaml": propFile("s.example", slow.URL, "tls: {certificate: s}")})
	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		_, body, err := n.h3Get(h3Client(t, "s.example"), "s.example", "/")
		res <- result{body, err}
	}()
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- n.stop() }()
	if !n.log.Await(`"msg":"shutting down"`, 20*time.Second) {
		t.Fatal("no shutdown")
	}
	close(release) // the request is still in flight when shutdown begins
	if r := <-res; r.err != nil || r.body != "finished" {
		t.Errorf("in-flight HTTP/3 request: %+v, want finished", r)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v", err)
	}
	c := h3Client(t, "s.example")
	c.Timeout = 3 * time.Second
	if _, _, err := n.h3Get(c, "s.example", "/"); err == nil {
		t.Error("HTTP/3 still answering after shutdown")
	}
}

// TestHTTP3HandshakeFloodRetry: once new QUIC connections come faster
// than h3RetryAbove a second (a handshake flood, maybe from spoofed
// addresses), each must first prove its address with a Retry; a real
// client does so and is served.
func TestHTTP3HandshakeFloodRetry(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"a.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	logs := &testutil.SyncBuffer{}
	limits := config.LimitsConfig{ReadHeaderTimeout: yamlfield.Duration(5 * time.Second), IdleTimeout: yamlfield.Duration(10 * time.Second), MaxHeaderBytes: 8192}
	s, err := newHTTP3Server(pc, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }), limits,
		zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(logs), zap.DebugLevel)))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.serve() }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.shutdown(ctx)
		<-served
	}()
	get := func() {
		t.Helper()
		c := h3Client(t, "a.example")
		resp, err := c.Get("https://" + pc.LocalAddr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get()
	if n := s.retries.Load(); n != 0 {
		t.Errorf("%d Retries for one connection", n)
	}
	// A flood uses up the budget faster than it refills.
	s.retry.SetLimit(0)
	s.retry.SetBurst(0)
	get()
	// At least one: a client that resends its first packet before the
	// Retry arrives is asked again.
	if n := s.retries.Load(); n < 1 {
		t.Errorf("%d Retries during a flood, want one", n)
	}
	if !logs.Await("clients must prove their address (Retry)", time.Second) {
		t.Errorf("no warning about the flood: %s", logs)
	}
}
