package node

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/h2srv"
	"golang.org/x/net/http2"
)

// TestH2InlineBigHitEvictedWhileQueued (attack: a hit answered inline is
// queued without a copy of the stored body, internal/h2srv's
// InlineHandler; if the cache ever reused or changed a body's memory once
// the object left it, a client that holds its answer unread would get
// the bytes of whatever took the place). A 100 KiB hit is answered inline
// to a client with no flow-control window, its object is then pushed out
// of a 2 MiB memory tier by 30 others of the same size, and then the
// window opens: the answer must be the stored bytes, whole.
func TestH2InlineBigHitEvictedWhileQueued(t *testing.T) {
	const size = 100 << 10
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seed, _ := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/o/"), 10, 64)
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(bigPattern(seed, size))
	}))
	t.Cleanup(origin.Close)
	n := runTestNode(t, "cache: {memory_size: 2MiB}\n", map[string]string{"e.yaml": fmt.Sprintf(
		"hostnames: [e.example]\norigins: [{url: %s}]\ntls: {certificate: e}\ncache: {enabled: true}\n", origin.URL)})
	h := dialH2(t, n.addrs.HTTPS, "e.example")
	h.fr.WriteWindowUpdate(0, 1<<30)
	if err := h.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if a := h.getAnswer("e.example", "/o/1"); len(a.body) != size { // stored
		t.Fatalf("fill: %s, %d bytes", a.status(), len(a.body))
	}
	if err := h.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
		t.Fatal(err)
	}
	before := h2srv.InlineAnswers()
	id := h.send("e.example", "GET", "/o/1", nil)
	h.fr.WritePing(false, [8]byte{7})
	for { // the answer is queued: its HEADERS came, then the PING's ACK
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := f.(*http2.DataFrame); ok && len(d.Data()) > 0 {
			t.Fatalf("DATA of stream %d with no window", d.StreamID)
		}
		if p, ok := f.(*http2.PingFrame); ok && p.IsAck() {
			break
		}
	}
	if h2srv.InlineAnswers() == before {
		t.Fatal("the hit was not answered inline")
	}
	// Other objects take the memory tier's room (another connection).
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "e.example", InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := 2; i < 32; i++ {
		for range 2 { // filled, then a hit (read back from memory)
			req, _ := http.NewRequest("GET", "https://"+n.addrs.HTTPS+"/o/"+strconv.Itoa(i), nil)
			req.Host = "e.example"
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.ProtoMajor != 2 || string(b) != string(bigPattern(int64(i), size)) {
				t.Fatalf("/o/%d: %s %v, %d bytes", i, resp.Proto, err, len(b))
			}
		}
	}
	h.c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := h.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	a := h.answer(id)
	if want := bigPattern(1, size); a.reset || string(a.body) != string(want) {
		diff := 0
		for diff < min(len(a.body), len(want)) && a.body[diff] == want[diff] {
			diff++
		}
		t.Errorf("queued answer: reset=%v, %d of %d bytes, first difference at %d", a.reset, len(a.body), size, diff)
	}
}
