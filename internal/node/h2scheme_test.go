package node

// A request on an HTTPS connection that says :scheme http is the HTTPS
// request it is on both paths (inline and goroutine), and an inline answer
// pending at shutdown reaches its client whole.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/h2srv"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// sendScheme is h2Conn.send with the :scheme the test picks.
func (h *h2Conn) sendScheme(scheme, authority, method, path string) uint32 {
	h.t.Helper()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", method}, {":scheme", scheme}, {":authority", authority}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	id := h.next
	h.next += 2
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: buf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		h.t.Fatal(err)
	}
	return id
}

// TestH2SchemeHTTPOnTLSStillChecksSNI: a request on an HTTPS connection
// whose SNI names property A, for Host B (another certificate), is
// refused with 421 (sameCertificate). Sent with ":scheme: http", x/net
// leaves r.TLS nil; net/http's initALPNRequest fills it in before the
// handler on the goroutine path, but ServeInline is called without it,
// so the inline path skips the SNI check and answers B's cached object.
func TestH2SchemeHTTPOnTLSStillChecksSNI(t *testing.T) {
	var hits atomic.Int64
	origin := inlineOrigin(t, &hits)
	props := map[string]string{
		"a.yaml": fmt.Sprintf("hostnames: [a.example]\norigins: [{url: %s}]\ntls: {certificate: a}\ncache: {enabled: true}\n", origin.URL),
		"b.yaml": fmt.Sprintf("hostnames: [b.example]\norigins: [{url: %s}]\ntls: {certificate: b}\ncache: {enabled: true, schemes: shared}\n", origin.URL),
	}
	for _, c := range []struct {
		name string
		opts Options
	}{{"goroutine", Options{h2NoInline: true}}, {"inline", Options{}}} {
		t.Run(c.name, func(t *testing.T) {
			n := runTestNodeOpts(t, "", props, nil, c.opts)
			// b's object is stored, by a client of b.
			hb := dialH2(t, n.addrs.HTTPS, "b.example")
			if a := hb.getAnswer("b.example", "/fronted"); a.status() != "200" {
				t.Fatalf("fill: %v", a.fields)
			}
			if a := hb.getAnswer("b.example", "/fronted"); a.status() != "200" {
				t.Fatalf("hit: %v", a.fields)
			}
			ha := dialH2(t, n.addrs.HTTPS, "a.example")
			// Control: :scheme https is refused on both paths.
			if a := ha.answer(ha.sendScheme("https", "b.example", "GET", "/fronted")); a.status() != "421" {
				t.Errorf(":scheme https, SNI a, Host b: %s, want 421", a.status())
			}
			before := h2srv.InlineAnswers()
			a := ha.answer(ha.sendScheme("http", "b.example", "GET", "/fronted"))
			if a.status() != "421" {
				t.Errorf(":scheme http, SNI a, Host b: %s (%d bytes of b's body, %d inline), want 421",
					a.status(), len(a.body), h2srv.InlineAnswers()-before)
			}
		})
	}
}

// TestH2SchemeHTTPOnTLSNotPlainHTTPCacheKey: the same r.TLS == nil
// makes the inline path look the object up under the http:// key
// (cache/key.go) on an HTTPS connection: it answers with what the origin
// made for a plain-HTTP request (X-Forwarded-Proto: http), where the
// goroutine path answers the https:// object.
func TestH2SchemeHTTPOnTLSNotPlainHTTPCacheKey(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "proto="+r.Header.Get("X-Forwarded-Proto"))
	}))
	t.Cleanup(origin.Close)
	props := map[string]string{"b.yaml": fmt.Sprintf(
		"hostnames: [b.example]\norigins: [{url: %s}]\ntls: {certificate: b}\ncache: {enabled: true}\n", origin.URL)}
	for _, c := range []struct {
		name string
		opts Options
	}{{"goroutine", Options{h2NoInline: true}}, {"inline", Options{}}} {
		t.Run(c.name, func(t *testing.T) {
			n := runTestNodeOpts(t, "", props, nil, c.opts)
			req, _ := http.NewRequest("GET", "http://"+n.addrs.HTTP+"/k", nil)
			req.Host = "b.example"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "proto=http" {
				t.Fatalf("plain HTTP fill: %q", b)
			}
			h := dialH2(t, n.addrs.HTTPS, "b.example")
			if a := h.getAnswer("b.example", "/k"); string(a.body) != "proto=https" {
				t.Fatalf("https fill: %q", a.body)
			}
			a := h.answer(h.sendScheme("http", "b.example", "GET", "/k"))
			if string(a.body) != "proto=https" {
				t.Errorf("HTTPS connection, :scheme http: %q, want the https object", a.body)
			}
		})
	}
}

// TestH2InlineAnswerPendingAtShutdown: an inline answer waiting for the
// client's window when the node stops: the client gets GOAWAY, and once
// it opens the window, the whole answer, before the connection ends.
func TestH2InlineAnswerPendingAtShutdown(t *testing.T) {
	var hits atomic.Int64
	origin := inlineOrigin(t, &hits)
	n := inlineNode(t, origin.URL, Options{})
	h := dialH2(t, n.addrs.HTTPS, "i.example")
	h.getAnswer("i.example", "/bye") // stored
	if err := h.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
		t.Fatal(err)
	}
	before := h2srv.InlineAnswers()
	id := h.send("i.example", "GET", "/bye", nil)
	h.fr.WritePing(false, [8]byte{9})
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := f.(*http2.PingFrame); ok && p.IsAck() {
			break
		}
	}
	if h2srv.InlineAnswers()-before != 1 {
		t.Fatal("not answered inline")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- n.stop() }()
	var body []byte
	gotAway, opened := false, false
	h.c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after GOAWAY=%v: %v with %d bytes", gotAway, err, len(body))
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			gotAway = true
			if !opened {
				opened = true
				h.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				h.fr.WriteSettingsAck()
			}
		case *http2.DataFrame:
			if f.StreamID == id {
				body = append(body, f.Data()...)
				if f.StreamEnded() {
					if len(body) != 100 {
						t.Errorf("answer: %d bytes", len(body))
					}
					if err := <-stopped; err != nil {
						t.Errorf("stop: %v", err)
					}
					return
				}
			}
		}
	}
}
