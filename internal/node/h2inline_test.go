package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/h2srv"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// These tests pin the HTTP/2 server's inline path (internal/h2srv's
// InlineHandler: a small hit from memory answered on the connection's
// goroutine). They are not parallel: h2srv.InlineAnswers counts for the
// whole process, and no parallel test runs beside a sequential one.

// h2Answer is what a stream got: its header fields in order, its body,
// and the RST_STREAM code if it was reset.
type h2Answer struct {
	fields []hpack.HeaderField
	body   []byte
	rst    http2.ErrCode
	reset  bool
}

func (a h2Answer) status() string {
	for _, f := range a.fields {
		if f.Name == ":status" {
			return f.Value
		}
	}
	return ""
}

// send writes a request's HEADERS (and DATA, if body is not nil) on a new
// stream and returns its id.
func (h *h2Conn) send(authority, method, path string, body []byte, fields ...string) uint32 {
	h.t.Helper()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", method}, {":scheme", "https"}, {":authority", authority}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for i := 0; i+1 < len(fields); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	id := h.next
	h.next += 2
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: buf.Bytes(), EndStream: body == nil, EndHeaders: true}); err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		if err := h.fr.WriteData(id, true, body); err != nil {
			h.t.Fatal(err)
		}
	}
	return id
}

// answer reads frames until stream id ends (or is reset) and returns
// what it got; frames of other streams are dropped.
func (h *h2Conn) answer(id uint32) h2Answer {
	h.t.Helper()
	var a h2Answer
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			h.t.Fatalf("stream %d: %v", id, err)
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				a.fields = append(a.fields, f.Fields...)
				if f.StreamEnded() {
					return a
				}
			}
		case *http2.DataFrame:
			if f.StreamID == id {
				a.body = append(a.body, f.Data()...)
				if f.StreamEnded() {
					return a
				}
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				a.rst, a.reset = f.ErrCode, true
				return a
			}
		case *http2.GoAwayFrame:
			h.t.Fatalf("stream %d: GOAWAY %v", id, f.ErrCode)
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = h.fr.WriteSettingsAck()
			}
		}
	}
}

// get sends a GET and returns its answer.
func (h *h2Conn) getAnswer(authority, path string, fields ...string) h2Answer {
	h.t.Helper()
	return h.answer(h.send(authority, "GET", path, nil, fields...))
}

// inlineOrigin is an origin whose answers the cache keeps for a minute
// (unless the request carries a credential: see cache/policy.go).
func inlineOrigin(t *testing.T, hits *atomic.Int64) *httptest.Server {
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Origin", "yes")
		io.Copy(io.Discard, r.Body)
		n := 100
		if strings.HasPrefix(r.URL.Path, "/big") {
			n = 12 << 10
		}
		io.WriteString(w, strings.Repeat("h", n))
	}))
	t.Cleanup(o.Close)
	return o
}

func inlineNode(t *testing.T, origin string, opts Options) *testNode {
	return runTestNodeOpts(t, "", map[string]string{"i.yaml": fmt.Sprintf(
		"hostnames: [i.example]\norigins: [{url: %s}]\ntls: {certificate: i}\ncache: {enabled: true}\n", origin)}, nil, opts)
}

// accessLine returns the node's access-log line for uri (the last one),
// without the fields that differ from one request to the next.
func accessLineOf(t *testing.T, n *testNode, uri string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var found map[string]any
		for _, l := range strings.Split(n.log.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) != nil || m["uri"] != uri || m["msg"] != "request" {
				continue
			}
			for _, k := range []string{"ts", "time", "request_id", "duration", "remote"} {
				delete(m, k)
			}
			found = m
		}
		if found != nil {
			return found
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access line for %s in\n%s", uri, n.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sameFields blanks the header fields whose values differ between any
// two answers (date, request id, age).
func sameFields(fs []hpack.HeaderField) []hpack.HeaderField {
	var out []hpack.HeaderField
	for _, f := range fs {
		switch f.Name {
		case "date", "x-request-id", "age", "alt-svc": // alt-svc: each node its own HTTP/3 port
			f.Value = "…"
		}
		f.Sensitive = false
		out = append(out, f)
	}
	return out
}

// TestH2InlineHitSameAsGoroutinePath: a hit answered inline is the answer
// the goroutine path gives — status, header fields in order, body and
// access-log line — and the inline path really served it.
func TestH2InlineHitSameAsGoroutinePath(t *testing.T) {
	var hits atomic.Int64
	origin := inlineOrigin(t, &hits)
	type result struct {
		miss, hit, head h2Answer
		log, headLog    map[string]any
		inline          uint64
	}
	run := func(opts Options) result {
		n := inlineNode(t, origin.URL, opts)
		h := dialH2(t, n.addrs.HTTPS, "i.example")
		var r result
		r.miss = h.getAnswer("i.example", "/same")
		before := h2srv.InlineAnswers()
		r.hit = h.getAnswer("i.example", "/same")
		r.head = h.answer(h.send("i.example", "HEAD", "/same?head", nil))
		r.inline = h2srv.InlineAnswers() - before
		r.log = accessLineOf(t, n, "/same")
		r.headLog = accessLineOf(t, n, "/same?head")
		return r
	}
	goroutine := run(Options{h2NoInline: true})
	inline := run(Options{})
	if goroutine.inline != 0 || inline.inline != 1 {
		// The HEAD of another key is a miss: only the GET is inline.
		t.Fatalf("inline answers: %d with the inline path off, %d on; want 0 and 1", goroutine.inline, inline.inline)
	}
	if inline.hit.status() != "200" || len(inline.hit.body) != 100 {
		t.Fatalf("inline hit: %v, %d bytes", inline.hit.fields, len(inline.hit.body))
	}
	if !slices.Equal(sameFields(inline.hit.fields), sameFields(goroutine.hit.fields)) || !bytes.Equal(inline.hit.body, goroutine.hit.body) {
		t.Errorf("hit answers differ:\ninline    %v\ngoroutine %v", sameFields(inline.hit.fields), sameFields(goroutine.hit.fields))
	}
	if !slices.Equal(sameFields(inline.head.fields), sameFields(goroutine.head.fields)) {
		t.Errorf("HEAD answers differ:\ninline    %v\ngoroutine %v", sameFields(inline.head.fields), sameFields(goroutine.head.fields))
	}
	for _, p := range [][2]map[string]any{{inline.log, goroutine.log}, {inline.headLog, goroutine.headLog}} {
		a, _ := json.Marshal(p[0])
		b, _ := json.Marshal(p[1])
		if !bytes.Equal(a, b) {
			t.Errorf("access lines differ:\ninline    %s\ngoroutine %s", a, b)
		}
	}
	if cs := fmt.Sprint(inline.hit.fields); !strings.Contains(cs, "hit") {
		t.Errorf("the inline answer is no cache hit: %v", inline.hit.fields)
	}
}

// TestH2InlineNotForRequestBody: a request with a body (HEADERS without
// END_STREAM) for a cached URL is never answered inline.
func TestH2InlineNotForRequestBody(t *testing.T) {
	var hits atomic.Int64
	origin := inlineOrigin(t, &hits)
	n := inlineNode(t, origin.URL, Options{})
	h := dialH2(t, n.addrs.HTTPS, "i.example")
	h.getAnswer("i.example", "/body") // stored
	before := h2srv.InlineAnswers()
	a := h.answer(h.send("i.example", "GET", "/body", []byte("a body")))
	p := h.answer(h.send("i.example", "POST", "/body", []byte("a body")))
	if got := h2srv.InlineAnswers() - before; got != 0 {
		t.Errorf("%d requests with a body answered inline", got)
	}
	if a.status() != "200" || p.status() != "200" {
		t.Errorf("GET with a body: %s, POST: %s", a.status(), p.status())
	}
}

// TestH2InlineNotForCredentials: requests with Authorization or a Cookie
// whose answers the cache rules keep from being shared reach the origin
// every time; nothing is answered inline.
func TestH2InlineNotForCredentials(t *testing.T) {
	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/auth" {
			w.Header().Set("Cache-Control", "max-age=60") // not public: not stored for Authorization
		} else {
			w.Header().Set("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT") // heuristic only: not for a Cookie
		}
		fmt.Fprintf(w, "for %s%s", r.Header.Get("Authorization"), r.Header.Get("Cookie"))
	}))
	t.Cleanup(origin.Close)
	n := inlineNode(t, origin.URL, Options{})
	h := dialH2(t, n.addrs.HTTPS, "i.example")
	before := h2srv.InlineAnswers()
	for i, c := range []struct{ path, name, v1, v2 string }{
		{"/auth", "authorization", "Bearer alice", "Bearer mallory"},
		{"/cookie", "cookie", "s=alice", "s=mallory"},
	} {
		first := h.getAnswer("i.example", c.path, c.name, c.v1)
		second := h.getAnswer("i.example", c.path, c.name, c.v2)
		if string(first.body) != "for "+c.v1 || string(second.body) != "for "+c.v2 {
			t.Errorf("%s: answers %q then %q", c.path, first.body, second.body)
		}
		if got := hits.Load(); got != int64(2*(i+1)) {
			t.Errorf("%s: origin saw %d requests, want %d", c.path, got, 2*(i+1))
		}
	}
	if got := h2srv.InlineAnswers() - before; got != 0 {
		t.Errorf("%d requests with credentials answered inline", got)
	}
}

// TestH2InlineResetStreamGetsNothing: an inline answer that waits for flow
// control dies with its stream: the client resets the stream, opens the
// window, and gets no DATA for it.
func TestH2InlineResetStreamGetsNothing(t *testing.T) {
	var hits atomic.Int64
	origin := inlineOrigin(t, &hits)
	n := inlineNode(t, origin.URL, Options{})
	h := dialH2(t, n.addrs.HTTPS, "i.example")
	h.getAnswer("i.example", "/reset") // stored
	// A window of 0: answers' DATA waits.
	if err := h.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
		t.Fatal(err)
	}
	before := h2srv.InlineAnswers()
	id := h.send("i.example", "GET", "/reset", nil)
	if err := h.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	if err := h.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535}); err != nil {
		t.Fatal(err)
	}
	if err := h.fr.WritePing(false, [8]byte{1}); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := f.(*http2.DataFrame); ok && d.StreamID == id && len(d.Data()) > 0 {
			t.Fatalf("DATA for the reset stream: %d bytes", len(d.Data()))
		}
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			h.fr.WriteSettingsAck()
		}
		if p, ok := f.(*http2.PingFrame); ok && p.IsAck() {
			break
		}
	}
	if got := h2srv.InlineAnswers() - before; got != 1 {
		t.Fatalf("inline answers: %d, want 1 (the test must reach the inline path)", got)
	}
	// The connection goes on.
	if a := h.getAnswer("i.example", "/reset"); a.status() != "200" || len(a.body) != 100 {
		t.Errorf("after the reset: %s, %d bytes", a.status(), len(a.body))
	}
}

// TestH2InlineRapidResetBounded: HEADERS and RST_STREAM in a loop (the
// rapid reset attack) for a cached URL: each is answered (or dropped) on
// the connection's goroutine, no goroutine piles up, and the connection
// still answers afterwards.
func TestH2InlineRapidResetBounded(t *testing.T) {
	var hits atomic.Int64
	origin := inlineOrigin(t, &hits)
	n := inlineNode(t, origin.URL, Options{})
	h := dialH2(t, n.addrs.HTTPS, "i.example")
	h.getAnswer("i.example", "/rapid") // stored
	goroutines := runtime.NumGoroutine()
	before := h2srv.InlineAnswers()
	// The client does not read meanwhile: a reader goroutine drains.
	done := make(chan error, 1)
	var answers atomic.Int64
	h.c.SetDeadline(time.Now().Add(30 * time.Second))
	go func() {
		for {
			f, err := h.fr.ReadFrame()
			if err != nil {
				done <- err
				return
			}
			if p, ok := f.(*http2.PingFrame); ok && p.IsAck() {
				done <- nil
				return
			}
			if _, ok := f.(*http2.MetaHeadersFrame); ok {
				answers.Add(1)
			}
			if g, ok := f.(*http2.GoAwayFrame); ok {
				done <- fmt.Errorf("GOAWAY %v", g.ErrCode)
				return
			}
		}
	}()
	const rounds = 2000
	peak := 0
	for i := range rounds {
		id := h.send("i.example", "GET", "/rapid", nil)
		if err := h.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			t.Fatal(err)
		}
		if i%200 == 0 {
			peak = max(peak, runtime.NumGoroutine())
		}
	}
	h.fr.WritePing(false, [8]byte{2})
	if err := <-done; err != nil {
		t.Fatalf("after %d rapid resets: %v", rounds, err)
	}
	if got := h2srv.InlineAnswers() - before; got != rounds {
		t.Errorf("inline answers: %d, want %d", got, rounds)
	}
	if peak > goroutines+20 {
		t.Errorf("goroutines: %d before, %d during the resets", goroutines, peak)
	}
	if hits.Load() != 1 {
		t.Errorf("origin requests: %d, want 1", hits.Load())
	}
	h2c := dialH2(t, n.addrs.HTTPS, "i.example")
	if a := h2c.getAnswer("i.example", "/rapid"); a.status() != "200" {
		t.Errorf("after the resets: %v", a.fields)
	}
}

// TestH2ContinuationFloodBounded: a HEADERS frame followed by CONTINUATION
// frames without end (the CONTINUATION flood) gets the connection closed
// once the header list passes the limit; it is never answered inline.
func TestH2ContinuationFloodBounded(t *testing.T) {
	var hits atomic.Int64
	origin := inlineOrigin(t, &hits)
	n := inlineNode(t, origin.URL, Options{})
	h := dialH2(t, n.addrs.HTTPS, "i.example")
	before := h2srv.InlineAnswers()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "i.example"}, {":path", "/flood"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: buf.Bytes(), EndStream: true}); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	enc.WriteField(hpack.HeaderField{Name: "x-flood", Value: strings.Repeat("f", 8000)})
	frag := buf.Bytes()
	readErr := make(chan error, 1)
	go func() {
		for {
			f, err := h.fr.ReadFrame()
			if err != nil {
				readErr <- nil // closed: the end we want
				return
			}
			if m, ok := f.(*http2.MetaHeadersFrame); ok && m.StreamID == 1 {
				readErr <- fmt.Errorf("stream answered: %s", m.PseudoValue("status"))
				return
			}
		}
	}()
	sent := 0
	for sent < 16<<20 {
		if err := h.fr.WriteContinuation(1, false, frag); err != nil {
			break // the server closed the connection
		}
		sent += len(frag)
	}
	if sent >= 16<<20 {
		t.Fatalf("the server read %d bytes of one header block", sent)
	}
	if err := <-readErr; err != nil {
		t.Error(err)
	}
	if got := h2srv.InlineAnswers() - before; got != 0 {
		t.Errorf("%d inline answers", got)
	}
}

// TestH2InlineNoReaderBounded: a client that never reads and asks for
// more hits than the stream limit: inline answers wait for flow control
// in the server's queue with their streams open, so beyond
// SETTINGS_MAX_CONCURRENT_STREAMS new streams are refused instead of
// queued, and at most the connection's window of DATA was sent.
func TestH2InlineNoReaderBounded(t *testing.T) {
	var hits atomic.Int64
	origin := inlineOrigin(t, &hits)
	n := inlineNode(t, origin.URL, Options{})
	h := dialH2(t, n.addrs.HTTPS, "i.example")
	h.getAnswer("i.example", "/big") // stored: 12 KiB, answered inline
	maxStreams := int(h.settings[http2.SettingMaxConcurrentStreams])
	if maxStreams == 0 || maxStreams > 1000 {
		t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS %d", maxStreams)
	}
	before := h2srv.InlineAnswers()
	requests := maxStreams + 100
	for range requests {
		h.send("i.example", "GET", "/big", nil)
	}
	h.fr.WritePing(false, [8]byte{3})
	var refused, answered, data int
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			refused++
		case *http2.MetaHeadersFrame:
			answered++
		case *http2.DataFrame:
			data += len(f.Data())
		}
		if p, ok := f.(*http2.PingFrame); ok && p.IsAck() {
			break
		}
	}
	// The connection's window (65535) lets a few answers end, freeing
	// their streams.
	const ended = 65535/(12<<10) + 1
	if refused < requests-maxStreams-ended {
		t.Errorf("%d of %d streams refused, want >= %d", refused, requests, requests-maxStreams-ended)
	}
	if data > 65535 {
		t.Errorf("%d bytes of DATA past the connection's window", data)
	}
	if got := int(h2srv.InlineAnswers() - before); got > maxStreams+ended || got < maxStreams {
		t.Errorf("%d inline answers, want %d to %d", got, maxStreams, maxStreams+ended)
	}
	// The window opens: the queued answers come, and the connection
	// goes on.
	h.fr.WriteWindowUpdate(0, 1<<30)
	for range 50 {
		if a := h.getAnswer("i.example", "/big"); a.status() == "200" {
			if len(a.body) != 12<<10 {
				t.Errorf("answer after the window opened: %d bytes", len(a.body))
			}
			return
		}
	}
	t.Error("no answer after the window opened")
}

// TestH2ProxiedNoReaderBounded: a client that never reads (a window of 0)
// and asks a proxied property for more small answers than the stream
// limit: the answers (at most the handler's last 4 KiB buffer: a larger
// one's handler waits for flow control as in x/net) wait in the server's
// queue with their streams open, no handler goroutine waiting for them,
// so beyond
// SETTINGS_MAX_CONCURRENT_STREAMS new streams are refused instead of
// queued, and once the window opens every answer comes whole.
func TestH2ProxiedNoReaderBounded(t *testing.T) {
	var hits atomic.Int64
	origin := inlineOrigin(t, &hits)
	n := runTestNode(t, "", map[string]string{"p.yaml": fmt.Sprintf(
		"hostnames: [p.example]\norigins: [{url: %s}]\ntls: {certificate: p}\n", origin.URL)})
	h := dialH2(t, n.addrs.HTTPS, "p.example")
	maxStreams := int(h.settings[http2.SettingMaxConcurrentStreams])
	if err := h.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
		t.Fatal(err)
	}
	requests := maxStreams + 100
	ids := make([]uint32, requests)
	for i := range ids {
		ids[i] = h.send("p.example", "GET", "/small", nil)
	}
	// Every admitted request reaches the origin and its handler returns:
	// the answers wait for the window, not in goroutines.
	deadline := time.Now().Add(20 * time.Second)
	for hits.Load() < int64(maxStreams) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := hits.Load(); got != int64(maxStreams) {
		t.Fatalf("origin requests: %d, want %d (the stream limit)", got, maxStreams)
	}
	for time.Now().Before(deadline) && runningHandlers() > 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runningHandlers(); n > 0 {
		t.Errorf("%d handler goroutines still running with %d answers waiting for the window", n, maxStreams)
	}
	h.c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := h.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	h.fr.WriteWindowUpdate(0, 1<<30)
	bodies := map[uint32]int{}
	var refused, ended int
	for refused+ended < requests {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d answers and %d refusals: %v", ended, refused, err)
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			refused++
		case *http2.DataFrame:
			bodies[f.StreamID] += len(f.Data())
			if f.StreamEnded() {
				ended++
				if bodies[f.StreamID] != 100 {
					t.Errorf("stream %d: %d bytes", f.StreamID, bodies[f.StreamID])
				}
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				h.fr.WriteSettingsAck()
			}
		}
	}
	if ended != maxStreams || refused != requests-maxStreams {
		t.Errorf("%d answers, %d refused; want %d and %d", ended, refused, maxStreams, requests-maxStreams)
	}
}

// runningHandlers counts the goroutines running an HTTP/2 handler.
func runningHandlers() int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return bytes.Count(buf, []byte("h2srv.(*serverConn).runHandler("))
}
