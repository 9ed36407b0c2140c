package node

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/config"
	"github.com/edge-cdn/edge/internal/testutil"
	"golang.org/x/net/http2"
)

// rawStatus writes a raw request head on a new connection (TLS when sni
// is set) and returns the answer's status line.
func rawStatus(t *testing.T, addr, sni, head string) string {
	t.Helper()
	var c net.Conn
	var err error
	if sni != "" {
		c, err = tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go c.Write([]byte(head)) // the server may answer before it read it all
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return strings.TrimSpace(line)
}

// head builds a request head of exactly size bytes (when size > 0) by
// padding an X-Pad field.
func head(uri string, size int, fields ...string) string {
	h := "GET " + uri + " HTTP/1.1\r\nHost: a.example\r\n" + strings.Join(fields, "")
	if size > 0 {
		pad := size - len(h) - len("X-Pad: \r\n\r\n")
		h += "X-Pad: " + strings.Repeat("p", pad) + "\r\n"
	}
	return h + "\r\n"
}

// TestHeadLimitsAreReal: limits.max_header_bytes bounds the request head on
// HTTP/1.1 (plain and TLS) and HTTP/2, and limits.max_uri_bytes the
// request target; nothing over them reaches the origin.
func TestHeadLimitsAreReal(t *testing.T) {
	o := newRecordingOrigin(t)
	n := runTestNode(t, "", map[string]string{"a.yaml": fmt.Sprintf("hostnames: [a.example]\norigins: [{url: %s}]\ntls: {certificate: a}\n", o.URL)})
	const limit = 64 << 10 // the defaults
	for _, tc := range []struct {
		name, head string
		want       string
	}{
		{"head at the limit", head("/", limit), "200"},
		{"head one byte over", head("/", limit+1), "431"},
		{"one 64 KiB field", head("/", 0, "X-Big: "+strings.Repeat("b", 64<<10)+"\r\n"), "431"},
		{"URI at its limit", head("/"+strings.Repeat("u", 8<<10-1), 0), "200"},
		{"URI over its limit", head("/"+strings.Repeat("u", 8<<10), 0), "414"},
		{"64 KiB URI", head("/"+strings.Repeat("u", 64<<10-200), 0), "414"},
	} {
		for _, sni := range []string{"", "a.example"} {
			before := o.hits.Load()
			got := rawStatus(t, map[bool]string{true: n.addrs.HTTPS, false: n.addrs.HTTP}[sni != ""], sni, tc.head)
			if !strings.HasPrefix(got, "HTTP/1.1 "+tc.want) {
				t.Errorf("%s (tls %v, %d bytes): %q, want %s", tc.name, sni != "", len(tc.head), got, tc.want)
			}
			if forwarded := o.hits.Load() > before; forwarded != (tc.want == "200") {
				t.Errorf("%s (tls %v): forwarded %v", tc.name, sni != "", forwarded)
			}
		}
	}
	// HTTP/2: the server advertises the limit as MAX_HEADER_LIST_SIZE and
	// holds to it whatever the client does.
	h := dialH2(t, n.addrs.HTTPS, "a.example")
	if got := h.settings[http2.SettingMaxHeaderListSize]; got != limit {
		t.Errorf("MAX_HEADER_LIST_SIZE %d, want %d", got, limit)
	}
	before := o.hits.Load()
	if code, _ := h.get("a.example", "/", "x-big", strings.Repeat("b", 64<<10)); code != 431 {
		t.Errorf("HTTP/2, one 64 KiB field: %d, want 431", code)
	}
	if code, _ := h.get("a.example", "/"+strings.Repeat("u", 8<<10)); code != 414 {
		t.Errorf("HTTP/2, URI over its limit: %d, want 414", code)
	}
	if code, _ := h.get("a.example", "/", "x-fine", strings.Repeat("f", 32<<10)); code != 200 {
		t.Errorf("HTTP/2, a 32 KiB field: %d, want 200", code)
	}
	if got := o.hits.Load() - before; got != 1 {
		t.Errorf("HTTP/2: %d requests reached the origin, want 1", got)
	}
}

// TestUnderscoreHeadersDropped: fields whose name holds "_" never reach the
// origin, on HTTP/1.1 and HTTP/2, and are counted.
func TestUnderscoreHeadersDropped(t *testing.T) {
	o := newRecordingOrigin(t)
	n := runTestNode(t, "", map[string]string{"a.yaml": fmt.Sprintf("hostnames: [a.example]\norigins: [{url: %s}]\ntls: {certificate: a}\n", o.URL)})
	fields := "Content_length: -1\r\nTransfer_encoding: chunked\r\nX_foo: spoof\r\nX-Fine: yes\r\n"
	if got := rawStatus(t, n.addrs.HTTP, "", head("/", 0, fields)); !strings.HasPrefix(got, "HTTP/1.1 200") {
		t.Fatalf("HTTP/1.1: %q", got)
	}
	check := func(proto string) {
		hdr := o.lastHeader()
		for name := range hdr {
			if strings.Contains(name, "_") {
				t.Errorf("%s: %s reached the origin", proto, name)
			}
		}
		if hdr.Get("X-Fine") != "yes" {
			t.Errorf("%s: X-Fine lost: %v", proto, hdr)
		}
	}
	check("HTTP/1.1")
	h := dialH2(t, n.addrs.HTTPS, "a.example")
	if code, _ := h.get("a.example", "/", "content_length", "-1", "x_forwarded_for", "10.0.0.1", "x-fine", "yes"); code != 200 {
		t.Fatalf("HTTP/2: %d", code)
	}
	check("HTTP/2")
	testutil.WaitFor(t, "the dropped-header counter", func() bool {
		return n.metric(`edge_http_dropped_headers_total{property="a"}`) == `edge_http_dropped_headers_total{property="a"} 5`
	})
}

// TestHTTP2Settings: a 16 KiB MAX_FRAME_SIZE is advertised, and Go's 400
// for connection-specific fields stays.
func TestHTTP2Settings(t *testing.T) {
	o := newRecordingOrigin(t)
	n := runTestNode(t, "", map[string]string{"a.yaml": fmt.Sprintf("hostnames: [a.example]\norigins: [{url: %s}]\ntls: {certificate: a}\n", o.URL)})
	h := dialH2(t, n.addrs.HTTPS, "a.example")
	if got := h.settings[http2.SettingMaxFrameSize]; got != 16<<10 {
		t.Errorf("MAX_FRAME_SIZE %d, want 16384", got)
	}
	for _, f := range [][2]string{{"connection", "keep-alive"}, {"te", "gzip"}} {
		if code, _ := h.get("a.example", "/", f[0], f[1]); code != http.StatusBadRequest {
			t.Errorf("%s: %s: %d, want 400", f[0], f[1], code)
		}
	}
	if o.hits.Load() != 0 {
		t.Error("a request with a connection-specific field reached the origin")
	}
	// A protocol error Go's HTTP/2 server answers with RST_STREAM is counted.
	if code, errCode := h.get("a.example", ""); code != 0 || errCode != http2.ErrCodeProtocol {
		t.Errorf("empty :path: status %d, reset %v; want a PROTOCOL_ERROR reset", code, errCode)
	}
	want := `edge_http_server_rejected_total{proto="HTTP/2.0",reason="stream_PROTOCOL_ERROR_bad_path_method"} 1`
	testutil.WaitFor(t, want, func() bool { return strings.Contains(n.metric("edge_http_server_rejected_total"), want) })
}

// TestGoAnswersVisible: the answers the server writes itself (400 for a
// malformed Host, 431 past the raw head limit) are counted and logged,
// with Edge's HTTP/1.x front (listen.http1_server: edge) and Go's.
func TestGoAnswersVisible(t *testing.T) {
	for _, front := range []struct {
		name string
		edit func(*config.Config)
		// what an HTTPS refusal is counted as: Edge's front writes it in
		// plaintext below TLS, so its status is exact.
		https string
	}{
		{"edge", func(*config.Config) {}, "400"},
		{"go", func(c *config.Config) { c.Listen.HTTP1Server = config.HTTP1ServerGo }, "unparsed"},
	} {
		t.Run(front.name, func(t *testing.T) {
			t.Parallel()
			o := newRecordingOrigin(t)
			n := runTestNodeReady(t, "", map[string]string{"a.yaml": fmt.Sprintf("hostnames: [a.example]\norigins: [{url: %s}]\ntls: {certificate: a}\n", o.URL)}, nil, front.edit)
			if got := rawStatus(t, n.addrs.HTTP, "", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 400") {
				t.Fatalf("bad Host: %q", got)
			}
			if got := rawStatus(t, n.addrs.HTTP, "", head("/", 80<<10)); !strings.HasPrefix(got, "HTTP/1.1 431") {
				t.Fatalf("oversized head: %q", got)
			}
			if got := rawStatus(t, n.addrs.HTTPS, "a.example", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 400") {
				t.Fatalf("bad Host over TLS: %q", got)
			}
			want := []string{
				`edge_http_server_rejected_total{proto="HTTP/1.1",reason="400"} 1`,
				`edge_http_server_rejected_total{proto="HTTP/1.1",reason="431"} 1`,
				`edge_http_server_rejected_total{proto="HTTP/1.1",reason="unparsed"} 1`,
			}
			if front.https == "400" {
				want = []string{
					`edge_http_server_rejected_total{proto="HTTP/1.1",reason="400"} 2`,
					`edge_http_server_rejected_total{proto="HTTP/1.1",reason="431"} 1`,
				}
			}
			for _, w := range want {
				testutil.WaitFor(t, w, func() bool { return strings.Contains(n.metric("edge_http_server_rejected_total"), w) })
			}
			testutil.WaitFor(t, "access lines for the server's answers", func() bool {
				found := 0
				for _, l := range strings.Split(n.log.String(), "\n") {
					if strings.Contains(l, `"logger":"access","msg":"request refused by the server"`) &&
						(strings.Contains(l, `"port":"http","proto":"HTTP/1.1","reason":"400"`) ||
							strings.Contains(l, `"port":"http","proto":"HTTP/1.1","reason":"431"`) ||
							strings.Contains(l, `"port":"https","proto":"HTTP/1.1","reason":"`+front.https+`"`)) {
						found++
					}
				}
				return found == 3
			})
		})
	}
}
