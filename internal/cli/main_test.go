package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/node"
	"github.com/edge-cdn/edge/internal/testutil"
)

// testNode is an edge started through run, as the binary would be.
type testNode struct {
	t      *testing.T
	dir    string
	props  string
	addrs  node.Addrs
	cancel context.CancelFunc
	done   chan error
	log    *testutil.SyncBuffer
}

const baseConfig = `node: {name: test-node}
listen: {http: "127.0.0.1:0", https: "127.0.0.1:0", admin: "127.0.0.1:0"}
data_dir: ./data
properties_dir: ./props
log: {level: debug, format: json, access: true}
`

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		// Write then rename, as editors and config management do, so the
		// watcher never sees a half-written file.
		tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
}

// startNode runs a node with config (baseConfig plus extra) in a temp dir.
func startNode(t *testing.T, extra string, props map[string]string) *testNode {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"edge.yaml": baseConfig + extra})
	if err := os.MkdirAll(filepath.Join(dir, "props"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, filepath.Join(dir, "props"), props)
	return runNode(t, dir)
}

func runNode(t *testing.T, dir string) *testNode {
	t.Helper()
	n := &testNode{t: t, dir: dir, props: filepath.Join(dir, "props"), done: make(chan error, 1), log: &testutil.SyncBuffer{}}
	ready := make(chan node.Addrs, 1)
	ctx, cancel := context.WithCancel(node.WithReady(context.Background(), func(a node.Addrs) { ready <- a }))
	n.cancel = cancel
	go func() {
		n.done <- run(ctx, []string{"serve", "--config", filepath.Join(dir, "edge.yaml")}, io.Discard, n.log)
	}()
	select {
	case n.addrs = <-ready:
	case err := <-n.done:
		t.Fatalf("node exited at start: %v\n%s", err, n.log)
	case <-time.After(20 * time.Second):
		t.Fatalf("node not ready\n%s", n.log)
	}
	t.Cleanup(func() { n.stop() })
	return n
}

// stop shuts the node down and returns run's error.
func (n *testNode) stop() error {
	n.cancel()
	select {
	case err := <-n.done:
		n.done <- err
		return err
	case <-time.After(40 * time.Second):
		n.t.Fatalf("node did not stop\n%s", n.log)
		return nil
	}
}

// client returns an HTTP client that sends everything to the node's
// ports, whatever the URL's host, trusting any certificate (the test checks
// which one it got).
func (n *testNode) client() *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		target := n.addrs.HTTP
		if strings.HasSuffix(addr, ":443") {
			target = n.addrs.HTTPS
		}
		return (&net.Dialer{}).DialContext(ctx, network, target)
	}
	tr := &http.Transport{DialContext: dial, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (n *testNode) get(c *http.Client, url string, hdr ...string) (*http.Response, string) {
	n.t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		n.t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func namedOrigin(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s xfp=%s", name, r.Host, r.Header.Get("X-Forwarded-Proto"))
	}))
	t.Cleanup(s.Close)
	return s
}

func TestServeHTTPAndHTTPS(t *testing.T) {
	t.Parallel()
	shop := namedOrigin(t, "shop")
	blog := namedOrigin(t, "blog")
	n := startNode(t, "", map[string]string{
		"shop.yaml":   fmt.Sprintf("hostnames: [shop.example, www.shop.example]\norigins: [{url: %s}]\ntls: {certificate: shop, hsts: max-age=600}\n", shop.URL),
		"assets.yaml": fmt.Sprintf("hostnames: [assets.shop.example]\norigins: [{url: %s}]\ntls: {certificate: shop}\n", shop.URL),
		"blog.yaml":   fmt.Sprintf("hostnames: [blog.example]\norigins: [{url: %s}]\ntls: {certificate: blog, redirect_http: true}\n", blog.URL),
	})
	c := n.client()
	if r, body := n.get(c, "http://shop.example/"); r.StatusCode != 200 || body != "shop shop.example xfp=http" {
		t.Errorf("http: %d %q", r.StatusCode, body)
	}
	r, body := n.get(c, "https://www.shop.example/")
	if r.StatusCode != 200 || body != "shop www.shop.example xfp=https" || r.ProtoMajor != 2 {
		t.Errorf("https: %d %s %q", r.StatusCode, r.Proto, body)
	}
	if r.Header.Get("Strict-Transport-Security") != "max-age=600" {
		t.Errorf("hsts: %q", r.Header.Get("Strict-Transport-Security"))
	}
	if leaf := r.TLS.PeerCertificates[0]; leaf.VerifyHostname("www.shop.example") != nil {
		t.Errorf("served certificate %v does not cover www.shop.example", leaf.DNSNames)
	}
	// Redirects carry the HTTPS port the node listens on.
	_, port, _ := net.SplitHostPort(n.addrs.HTTPS)
	if r, _ := n.get(c, "http://blog.example/x?y=1"); r.StatusCode != 308 || r.Header.Get("Location") != "https://blog.example:"+port+"/x?y=1" {
		t.Errorf("redirect: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	// Host of a property with another certificate than the SNI's: 421.
	// Same certificate (connection coalescing): served.
	if r, _ := n.get(c, "https://shop.example/", "Host", "blog.example"); r.StatusCode != 421 {
		t.Errorf("SNI shop, Host blog: %d, want 421", r.StatusCode)
	}
	if r, body := n.get(c, "https://shop.example/", "Host", "assets.shop.example"); r.StatusCode != 200 || !strings.HasPrefix(body, "shop assets") {
		t.Errorf("SNI shop, Host assets (same certificate): %d %q", r.StatusCode, body)
	}
	// Unknown SNI and no SNI fail the handshake with unrecognized_name.
	for _, sni := range []string{"unknown.example", ""} {
		_, err := tls.Dial("tcp", n.addrs.HTTPS, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err == nil || !strings.Contains(err.Error(), "unrecognized name") {
			t.Errorf("SNI %q: %v, want unrecognized_name", sni, err)
		}
	}
	// HTTP/1.1 by ALPN too.
	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return net.Dial("tcp", n.addrs.HTTPS) }}}
	if r, _ := n.get(h1, "https://shop.example/"); r.ProtoMajor != 1 || r.StatusCode != 200 {
		t.Errorf("HTTP/1.1 over TLS: %s %d", r.Proto, r.StatusCode)
	}
	// An access log line per request (buffered: written within a second),
	// and the bootstrap certificates made.
	testutil.WaitFor(t, "access lines in the log", func() bool { return strings.Contains(n.log.String(), `"msg":"request"`) }, n.log.String)
	if logs := n.log.String(); strings.Count(logs, "self-signed bootstrap certificate created") != 2 {
		t.Errorf("log lacks the bootstrap notes:\n%s", logs)
	}
}

func TestCertificatesSurviveRestart(t *testing.T) {
	t.Parallel()
	o := namedOrigin(t, "o")
	n := startNode(t, "", map[string]string{"a.yaml": fmt.Sprintf("hostnames: [a.example]\norigins: [{url: %s}]\ntls: {certificate: a}\n", o.URL)})
	r1, _ := n.get(n.client(), "https://a.example/")
	if err := n.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	n2 := runNode(t, n.dir)
	r2, _ := n2.get(n2.client(), "https://a.example/")
	if !r1.TLS.PeerCertificates[0].Equal(r2.TLS.PeerCertificates[0]) {
		t.Error("a restart replaced the stored certificate")
	}
	if strings.Contains(n2.log.String(), "bootstrap certificate created") {
		t.Error("bootstrap certificate made again after restart")
	}
	if st, _ := os.Stat(filepath.Join(n.dir, "data", "edge.db")); st.Mode().Perm() != 0o600 {
		t.Errorf("edge.db mode %v", st.Mode().Perm())
	}
}

func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	v1 := namedOrigin(t, "v1")
	v2 := namedOrigin(t, "v2")
	good := func(o *httptest.Server) string {
		return fmt.Sprintf("hostnames: [r.example]\norigins: [{url: %s}]\ntls: {certificate: r}\n", o.URL)
	}
	n := startNode(t, "", map[string]string{"r.yaml": good(v1)})
	c := n.client()

	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	seen := map[string]int{}
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := "http://r.example/"
			if w%2 == 1 {
				url = "https://r.example/"
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(url)
				mu.Lock()
				if err != nil {
					failures = append(failures, err.Error())
				} else {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						failures = append(failures, fmt.Sprintf("%d %s", resp.StatusCode, b))
					} else {
						seen[strings.Fields(string(b))[0]]++
					}
				}
				mu.Unlock()
			}
		}()
	}
	waitLog := func(what string, count int) {
		t.Helper()
		testutil.WaitFor(t, fmt.Sprintf("%d× %q in the log", count, what), func() bool { return strings.Count(n.log.String(), what) >= count }, n.log.String)
	}
	// served waits until origin has answered 20 more requests: the load
	// runs across each step (no sleep to let it).
	served := func(origin string) {
		t.Helper()
		mu.Lock()
		want := seen[origin] + 20
		mu.Unlock()
		testutil.WaitFor(t, "20 more responses from "+origin, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return seen[origin] >= want || len(failures) > 0
		})
	}
	served("v1")
	writeFiles(t, n.props, map[string]string{"r.yaml": "hostnames: [r.example]\norigins: []\n"}) // bad
	waitLog(`"type":"property.rejected"`, 1)
	served("v1")                                                  // the last good version keeps serving
	writeFiles(t, n.props, map[string]string{"r.yaml": good(v2)}) // good again, new origin
	waitLog(`"msg":"properties loaded"`, 3)
	served("v2")
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d requests failed during reloads, first: %s", len(failures), failures[0])
	}
	if seen["v1"] == 0 || seen["v2"] == 0 {
		t.Errorf("responses by origin %v: want both versions served", seen)
	}
	if !strings.Contains(n.log.String(), "at least one origin is required") {
		t.Error("the rejection's reason is not in the log")
	}
}

func TestSIGHUPReloads(t *testing.T) {
	o := namedOrigin(t, "o")
	n := startNode(t, "", map[string]string{"a.yaml": fmt.Sprintf("hostnames: [a.example]\norigins: [{url: %s}]\n", o.URL)})
	before := strings.Count(n.log.String(), `"msg":"properties loaded"`)
	n.reloadSignal()
	testutil.WaitFor(t, "a reload after SIGHUP", func() bool { return strings.Count(n.log.String(), `"msg":"properties loaded"`) > before }, n.log.String)
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release // until the node is shutting down
		io.WriteString(w, "finished")
	}))
	defer slow.Close()
	n := startNode(t, "", map[string]string{"s.yaml": fmt.Sprintf("hostnames: [s.example]\norigins: [{url: %s}]\n", slow.URL)})
	c := n.client()
	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := c.Get("http://s.example/")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{code: resp.StatusCode, body: string(b)}
	}()
	<-started
	go func() {
		// The request is still in flight when shutdown begins.
		defer close(release)
		n.log.Await(`"msg":"shutting down"`, 20*time.Second)
	}()
	if err := n.stop(); err != nil {
		t.Fatalf("run returned %v, want nil after SIGTERM", err)
	}
	if r := <-res; r.err != nil || r.code != 200 || r.body != "finished" {
		t.Errorf("in-flight request: %+v, want 200 finished", r)
	}
	if _, err := net.DialTimeout("tcp", n.addrs.HTTP, time.Second); err == nil {
		t.Error("still accepting after shutdown")
	}
}

func TestServerLimits(t *testing.T) {
	t.Parallel()
	o := namedOrigin(t, "o")
	n := startNode(t, "limits: {read_header_timeout: 300ms, idle_timeout: 300ms, max_header_bytes: 8192}\n",
		map[string]string{"a.yaml": fmt.Sprintf("hostnames: [a.example]\norigins: [{url: %s}]\n", o.URL)})
	closedWithin := func(c net.Conn, d time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(d))
		_, err := io.ReadAll(c)
		var ne net.Error
		return err == nil || !(errors.As(err, &ne) && ne.Timeout())
	}
	// A client that never finishes its request head is cut off.
	slow, _ := net.Dial("tcp", n.addrs.HTTP)
	defer slow.Close()
	io.WriteString(slow, "GET / HTTP/1.1\r\nHost: a.example\r\n")
	if !closedWithin(slow, 3*time.Second) {
		t.Error("slow header client not cut off")
	}
	// An idle keep-alive connection is closed.
	idle, _ := net.Dial("tcp", n.addrs.HTTP)
	defer idle.Close()
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
	buf := make([]byte, 4096)
	idle.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := idle.Read(buf); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(idle, 3*time.Second) {
		t.Error("idle connection not closed")
	}
	// Request heads over max_header_bytes: 431.
	big := strings.Repeat("x", 20000)
	r, _ := n.get(n.client(), "http://a.example/", "X-Big", big)
	if r.StatusCode != 431 {
		t.Errorf("big header: %d, want 431", r.StatusCode)
	}
}

func TestBusyPortFailsAtOnce(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"edge.yaml": strings.Replace(baseConfig, `http: "127.0.0.1:0"`, `http: "`+ln.Addr().String()+`"`, 1)})
	os.Mkdir(filepath.Join(dir, "props"), 0o755)
	err = run(context.Background(), []string{"serve", "--config", filepath.Join(dir, "edge.yaml")}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "listen.http") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("run: %v, want a listen.http address-in-use error", err)
	}
}

func TestValidateCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"edge.yaml":       baseConfig,
		"props/ok.yaml":   "hostnames: [ok.example]\norigins: [{url: http://127.0.0.1:1}]\n",
		"props/bad1.yaml": "hostnames: [ok.example]\norigins: [{url: http://127.0.0.1:1}]\n",
		"props/bad2.yaml": "hostnames: ['*.w.example']\norigins: [{url: gopher://x}]\ntls: {certificate: w, renew_automation: true}\nextra: 1\n",
		"props/notes.txt": "not a property",
		"props/.swp.yaml": "editor junk",
	})
	var out bytes.Buffer
	err := run(context.Background(), []string{"validate", "--config", filepath.Join(dir, "edge.yaml")}, &out, io.Discard)
	if code := exitCode(err, io.Discard); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		// With no state before, files merge in name order: the later one
		// of a duplicate is rejected, and the error names both.
		"ok.yaml:1: hostnames[0]: hostname \"ok.example\" is already used by property \"bad1\" in " + filepath.Join(dir, "props", "bad1.yaml"),
		"bad2.yaml:1: hostnames[0]: wildcard \"*.w.example\" cannot be used with tls.renew_automation",
		"bad2.yaml:2: origins[0].url: scheme \"gopher\" is not supported",
		"bad2.yaml:4: extra: unknown key",
		"4 problem(s)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("validate output lacks %q:\n%s", want, out.String())
		}
	}
	os.Remove(filepath.Join(dir, "props", "bad1.yaml"))
	os.Remove(filepath.Join(dir, "props", "bad2.yaml"))
	out.Reset()
	if err := run(context.Background(), []string{"validate", "--config", filepath.Join(dir, "edge.yaml")}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "ok:") {
		t.Errorf("valid config: %v %q", err, out.String())
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"validate", "--config", "../../config.example.yaml"}, &out, io.Discard); err != nil {
		t.Fatalf("config.example.yaml: %v\n%s", err, out.String())
	}
}

func TestUsageAndVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "edge ") {
		t.Errorf("version: %v %q", err, out.String())
	}
	for _, args := range [][]string{nil, {"frobnicate"}, {"serve", "--nope"}, {"validate", "extra-arg"}} {
		if code := exitCode(run(context.Background(), args, io.Discard, io.Discard), io.Discard); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	t.Setenv("EDGE_CONFIG", "/nonexistent/edge.yaml")
	if code := exitCode(run(context.Background(), []string{"validate"}, io.Discard, io.Discard), io.Discard); code != 1 {
		t.Errorf("missing config: exit %d, want 1", code)
	}
}
