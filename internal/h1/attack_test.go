package h1_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/h1"
)

// serveBoth serves h on Go's server and on h1.Server; names "go", "edge".
func serveBoth(t *testing.T, h http.Handler) []front {
	t.Helper()
	goLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	goSrv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	goDone := make(chan struct{})
	go func() { defer close(goDone); goSrv.Serve(goLn) }()
	t.Cleanup(func() { goSrv.Close(); <-goDone })
	return []front{{"go", goLn.Addr().String()}, {"edge", serveH1(t, h)}}
}

// serveH1 serves h on h1.Server; its address.
func serveH1(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &h1.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

// rawAll writes req and reads every byte until the server closes.
func rawAll(t *testing.T, addr, req string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer: %v (got %q)", err, b)
	}
	return b
}

// splitHandler sets fields whose names and values try to inject a field
// ("Injected: 1") into the head, an interim head and the trailers.
func splitHandler(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	switch r.URL.Path {
	case "/early":
		h.Set("Link", "</a>\r\nInjected: 1")
		w.WriteHeader(http.StatusEarlyHints)
		h.Del("Link")
	case "/trailer":
		h.Set("Trailer", "X-Sum")
		io.WriteString(w, strings.Repeat("x", 3000)) // chunked
		h.Set("X-Sum", "1\r\nInjected: 1")
		h.Set(http.TrailerPrefix+"X-Late", "2\nInjected: 1")
		return
	}
	h.Set("X-Crlf", "a\r\nInjected: 1")
	h.Set("X-Lf", "a\nInjected: 1")
	h.Set("X-Cr", "a\rInjected: 1")
	h["X-Bad\r\nInjected"] = []string{"1"}
	h.Set("Location", "/x\r\n\r\n<html>injected body")
	io.WriteString(w, "ok")
}

// TestResponseSplittingHeaderValueRefused: CR or LF in a field a handler
// sets (value or name; head, 103 head or trailer) never starts a line of
// the response on either front: values have them turned into spaces,
// names holding them are dropped.
func TestResponseSplittingHeaderValueRefused(t *testing.T) {
	for _, f := range serveBoth(t, http.HandlerFunc(splitHandler)) {
		for _, path := range []string{"/", "/early", "/trailer"} {
			got := rawAll(t, f.addr, "GET "+path+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			for _, line := range strings.Split(string(got), "\n") {
				if strings.HasPrefix(strings.TrimLeft(line, "\r"), "Injected") || strings.HasPrefix(line, "<html>") {
					t.Errorf("%s %s: a handler's field value started a line:\n%q", f.name, path, got)
				}
			}
			if bytes.Count(got, []byte("\r\n\r\n")) > 1+strings.Count(path, "early")+strings.Count(path, "trailer") {
				t.Errorf("%s %s: a head ended early:\n%q", f.name, path, got)
			}
		}
	}
}

// TestResponseSplittingNULRefused: a NUL in a handler's field value is
// never written (h1 only: Go's server writes it, and clients that refuse
// such a head - Go's own - see a broken response; a proxy that truncates
// at NUL sees another head). h1 is stricter: NUL becomes a space.
func TestResponseSplittingNULRefused(t *testing.T) {
	addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Nul", "a\x00Injected: 1")
		w.Header().Set("Trailer", "X-T")
		w.WriteHeader(200)
		io.WriteString(w, strings.Repeat("x", 3000))
		w.Header().Set("X-T", "b\x00c")
	}))
	got := rawAll(t, addr, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if bytes.IndexByte(got, 0) >= 0 {
		t.Fatalf("a NUL was written:\n%q", got)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(got)), nil)
	if err != nil {
		t.Fatalf("Go's client refuses the answer: %v\n%q", err, got)
	}
	io.Copy(io.Discard, resp.Body)
	if v := resp.Header.Get("X-Nul"); v != "a Injected: 1" {
		t.Errorf("X-Nul = %q", v)
	}
}

// TestResponseContentLengthSmugglingRefused: a handler's Content-Length
// is written once, as the number the body is framed by: never a second,
// differing Content-Length (a response a downstream cache can split two
// ways) nor a "+5" others read differently. Go's server writes every
// value as given; h1 is stricter.
func TestResponseContentLengthSmugglingRefused(t *testing.T) {
	addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/two":
			w.Header()["Content-Length"] = []string{"5", "50"}
		case "/plus":
			w.Header().Set("Content-Length", "+5")
		}
		io.WriteString(w, "hello")
	}))
	for _, path := range []string{"/two", "/plus"} {
		got := rawAll(t, addr, "GET "+path+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		head, _, _ := bytes.Cut(got, []byte("\r\n\r\n"))
		if n := bytes.Count(bytes.ToLower(head), []byte("\r\ncontent-length:")); n != 1 || !bytes.Contains(head, []byte("\r\nContent-Length: 5")) || bytes.Contains(head, []byte("+5")) {
			t.Errorf("%s: %d Content-Length fields, want one \"5\":\n%q", path, n, got)
		}
	}
}

// TestPanickedHandlerBodyNotReadAcrossClients: a handler that hands its
// request body to a goroutine and then panics (http.ErrAbortHandler, as
// a proxy does on a broken upstream) leaves a body that is read later.
// That read must fail: it must never read from the connection's buffered
// reader once that went back to the pool, where it now holds another
// client's request (Go's server has this weakness; h1 is stricter).
func TestPanickedHandlerBodyNotReadAcrossClients(t *testing.T) {
	for _, chunked := range []bool{true, false} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			stash := make(chan io.Reader, 1)
			bIn := make(chan struct{})
			bGo := make(chan struct{})
			addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/a" {
					r.Body.Read(make([]byte, 1))
					stash <- r.Body
					panic(http.ErrAbortHandler)
				}
				close(bIn)
				<-bGo
				b, _ := io.ReadAll(r.Body)
				w.Write(b)
			}))
			a, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			a.SetDeadline(time.Now().Add(10 * time.Second))
			if chunked {
				io.WriteString(a, "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\n")
			} else {
				io.WriteString(a, "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nA")
			}
			stale := <-stash
			io.ReadAll(a) // the connection is closed: its reader pooled
			// Client B's request, its body in the same read as its head.
			b, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			b.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(b, "POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nSECRET\r\n0\r\n\r\n")
			<-bIn
			var n int
			var rerr error
			func() {
				defer func() {
					if p := recover(); p != nil {
						rerr = fmt.Errorf("panic: %v", p)
						t.Errorf("the stale body's read panicked: %v", p)
					}
				}()
				buf := make([]byte, 64)
				n, rerr = stale.Read(buf)
				if n > 0 {
					t.Errorf("the stale body read %q after its connection closed", buf[:n])
				}
			}()
			if rerr == nil {
				t.Errorf("the stale body's read did not fail")
			}
			close(bGo)
			resp, err := http.ReadResponse(bufio.NewReader(b), nil)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			if string(got) != "SECRET" {
				t.Errorf("client B's body reached its handler as %q", got)
			}
		})
	}
}

// TestConcurrentConnectionsNoCrossTalk: many clients pipelining requests
// with bodies at once (run with -race): every answer carries its own
// request's id and body, never another's (the pooled readers, writers
// and head buffers are never shared).
func TestConcurrentConnectionsNoCrossTalk(t *testing.T) {
	addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		w.Header().Set("X-Id", r.Header.Get("X-Id"))
		if r.URL.Query().Has("stream") {
			w.(http.Flusher).Flush()
		}
		fmt.Fprintf(w, "%s|%s|%s", r.URL.Path, r.Header.Get("X-Id"), b)
	}))
	const clients, perClient = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			var req bytes.Buffer
			for j := range perClient {
				id := fmt.Sprintf("c%d-r%d", i, j)
				body := strings.Repeat(id, j%7)
				q := ""
				if j%3 == 0 {
					q = "?stream"
				}
				if j%2 == 0 {
					fmt.Fprintf(&req, "POST /%s%s HTTP/1.1\r\nHost: a\r\nX-Id: %s\r\nContent-Length: %d\r\n\r\n%s", id, q, id, len(body), body)
				} else {
					fmt.Fprintf(&req, "POST /%s%s HTTP/1.1\r\nHost: a\r\nX-Id: %s\r\nTransfer-Encoding: chunked\r\n\r\n", id, q, id)
					if body != "" {
						fmt.Fprintf(&req, "%x\r\n%s\r\n", len(body), body)
					}
					req.WriteString("0\r\n\r\n")
				}
			}
			go c.Write(req.Bytes())
			br := bufio.NewReader(c)
			for j := range perClient {
				id := fmt.Sprintf("c%d-r%d", i, j)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs <- fmt.Errorf("%s: %v", id, err)
					return
				}
				got, err := io.ReadAll(resp.Body)
				if err != nil {
					errs <- fmt.Errorf("%s: %v", id, err)
					return
				}
				want := fmt.Sprintf("/%s|%s|%s", id, id, strings.Repeat(id, j%7))
				if string(got) != want || resp.Header.Get("X-Id") != id {
					errs <- fmt.Errorf("answer %q (X-Id %q), want %q", got, resp.Header.Get("X-Id"), want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestPanickedHandlerLateWriteNotInOtherResponse: a handler that panics
// (http.ErrAbortHandler) while a goroutine it started still holds the
// ResponseWriter: that goroutine's later writes must never reach another
// client's response through the pooled write buffer (nor crash on it).
// Go's server pools its writers the same way; h1 is stricter: after a
// panic the connection's buffers are not pooled.
func TestPanickedHandlerLateWriteNotInOtherResponse(t *testing.T) {
	release := make(chan struct{})
	lateDone := make(chan any, 1)
	bIn := make(chan struct{})
	bGo := make(chan struct{})
	addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/a" {
			go func() {
				defer func() { lateDone <- recover() }()
				<-release
				io.WriteString(w, "LEAKED-FROM-A")
				w.(http.Flusher).Flush()
			}()
			panic(http.ErrAbortHandler)
		}
		close(bIn)
		<-bGo
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, strings.Repeat("b", 100))
	}))
	a, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(a, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
	if got, _ := io.ReadAll(a); len(got) > 0 {
		t.Fatalf("the panicked handler's connection answered %q", got)
	}
	b, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(b, "GET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	<-bIn
	close(release)
	if p := <-lateDone; p != nil {
		t.Errorf("the late write panicked: %v", p)
	}
	close(bGo)
	got, _ := io.ReadAll(b)
	if bytes.Contains(got, []byte("LEAKED")) {
		t.Errorf("client B's response carries client A's bytes:\n%q", got)
	}
}

// framingHandler misuses the response's framing as handlers can.
func framingHandler(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/plain")
	switch r.URL.Path {
	case "/short": // declares more than it writes
		h.Set("Content-Length", "10")
		io.WriteString(w, "hello")
	case "/long": // writes more than it declares
		h.Set("Content-Length", "3")
		io.WriteString(w, "hello")
	case "/status99":
		w.WriteHeader(99)
	case "/status1000":
		w.WriteHeader(1000)
	case "/status999":
		w.WriteHeader(999)
		io.WriteString(w, "odd")
	case "/body": // a body for HEAD, 204 and 304
		io.WriteString(w, "hello")
	case "/nocontent":
		h.Set("Content-Length", "5")
		w.WriteHeader(http.StatusNoContent)
		io.WriteString(w, "hello")
	case "/notmodified":
		w.WriteHeader(http.StatusNotModified)
		io.WriteString(w, "hello")
	case "/te":
		h.Set("Transfer-Encoding", "chunked")
		h.Set("Content-Length", "5")
		io.WriteString(w, "hello")
	case "/identity":
		h.Set("Transfer-Encoding", "identity")
		io.WriteString(w, "hello")
	case "/trailers": // declared, undeclared and prefixed trailers
		h.Set("Trailer", "X-A, Content-Length, X-Never")
		io.WriteString(w, "hello")
		w.(http.Flusher).Flush()
		h.Set("X-A", "1")
		h.Set("X-Undeclared", "2")
		h.Set("Content-Length", "99")
		h.Set(http.TrailerPrefix+"X-P", "3")
	case "/early":
		h.Set("Link", "</a>")
		h.Set("Content-Length", "7")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "final")
	case "/upgrade-noconn": // 101 without Connection: Upgrade
		h.Set("Upgrade", "websocket")
		w.WriteHeader(http.StatusSwitchingProtocols)
	case "/conn-close-token": // close among other tokens, space-separated
		h.Set("Connection", "x close")
		io.WriteString(w, "hello")
	case "/upgrade-unhijacked":
		h.Set("Connection", "Upgrade")
		h.Set("Upgrade", "websocket")
		w.WriteHeader(http.StatusSwitchingProtocols)
	default:
		io.WriteString(w, "probe")
	}
}

// TestResponseFramingMisuseAsGo: a handler whose Content-Length and
// bytes disagree, that sets an invalid status, writes a body where none
// is allowed, or sets Transfer-Encoding itself: h1 answers byte for byte
// as Go's server does, and closes the connection where Go does (a
// response the client cannot delimit is never followed by another).
func TestResponseFramingMisuseAsGo(t *testing.T) {
	fronts := serveBoth(t, http.HandlerFunc(framingHandler))
	const probe = "GET /probe HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	for _, tc := range []struct{ method, path string }{
		{"GET", "/short"}, {"GET", "/long"}, {"GET", "/status99"}, {"GET", "/status1000"},
		{"GET", "/status999"}, {"HEAD", "/body"}, {"HEAD", "/short"}, {"GET", "/nocontent"},
		{"GET", "/notmodified"}, {"GET", "/te"}, {"GET", "/identity"}, {"GET", "/upgrade-unhijacked"},
		{"GET", "/trailers"}, {"GET", "/early"}, {"HEAD", "/trailers"}, {"GET", "/upgrade-noconn"},
		{"GET", "/conn-close-token"},
	} {
		var got []string
		for _, f := range fronts {
			raw := rawAll(t, f.addr, tc.method+" "+tc.path+" HTTP/1.1\r\nHost: a\r\n\r\n"+probe)
			got = append(got, normalise(raw))
		}
		if got[0] != got[1] {
			t.Errorf("%s %s:\n go:   %q\n edge: %q", tc.method, tc.path, got[0], got[1])
		}
		// Again, the client asking to close.
		got = got[:0]
		for _, f := range fronts {
			got = append(got, normalise(rawAll(t, f.addr, tc.method+" "+tc.path+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")))
		}
		if got[0] != got[1] {
			t.Errorf("%s %s, Connection: close:\n go:   %q\n edge: %q", tc.method, tc.path, got[0], got[1])
		}
		if strings.Contains(tc.path, "short") && tc.method == "GET" && strings.Contains(got[1], "probe") {
			t.Errorf("%s %s: a response short of its length was followed by another: %q", tc.method, tc.path, got[1])
		}
	}
}

// TestBodyClosedEarlyAnswerReadable: a handler that closes a large
// request body unread and answers: the client, still sending, reads the
// whole answer (the connection is half-closed and kept a moment before
// the close, as Go's server does), and the connection ends.
func TestBodyClosedEarlyAnswerReadable(t *testing.T) {
	fronts := serveBoth(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body.Read(make([]byte, 1))
		r.Body.Close()
		io.WriteString(w, "answered")
	}))
	const size = 8 << 20
	for _, f := range fronts {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", size)
			c.Write(make([]byte, size))
		}()
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Errorf("%s: %v", f.name, err)
		} else {
			b, err := io.ReadAll(resp.Body)
			if err != nil || string(b) != "answered" || !resp.Close {
				t.Errorf("%s: %q, %v, close=%v", f.name, b, err, resp.Close)
			}
			// Then the server's FIN (a clean end), not a reset.
			if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
				t.Errorf("%s: after the answer %q, %v; want a clean end", f.name, rest, err)
			}
		}
		c.Close()
		<-wrote
	}
}

// TestHalfClosedClientAnswered: a client that sends its requests
// (pipelined) and half-closes gets every answer, on both fronts.
func TestHalfClosedClientAnswered(t *testing.T) {
	fronts := serveBoth(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	for _, f := range fronts {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || !bytes.Contains(got, []byte("\r\n\r\n/1")) || !bytes.HasSuffix(got, []byte("\r\n\r\n/2")) {
			t.Errorf("%s: %q, %v", f.name, got, err)
		}
	}
}

// TestResponseNonCanonicalFramingFieldDropped: a handler that sets a
// framing field under a non-canonical key (h["content-length"],
// h["transfer-encoding"]) never gets it written beside the framing h1
// writes (two lengths, or a length and chunked: a response a downstream
// cache splits differently from the client). Go's server writes such
// keys as they are; h1 is stricter and drops them.
func TestResponseNonCanonicalFramingFieldDropped(t *testing.T) {
	addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.URL.Path {
		case "/cl":
			h["content-length"] = []string{"100"}
		case "/te":
			h["transfer-encoding"] = []string{"chunked"}
		case "/early":
			h["content-LENGTH"] = []string{"100"}
			w.WriteHeader(http.StatusEarlyHints)
		}
		io.WriteString(w, "hello")
	}))
	for _, path := range []string{"/cl", "/te", "/early"} {
		got := rawAll(t, addr, "GET "+path+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		lower := bytes.ToLower(got)
		if n := bytes.Count(lower, []byte("\r\ncontent-length:")) + bytes.Count(lower, []byte("\r\ntransfer-encoding:")); n != 1 || bytes.Contains(got, []byte("100")) {
			t.Errorf("%s: %d framing fields, want the one h1 computes:\n%q", path, n, got)
		}
	}
}

// TestResponseDoubleChunkedRefused: a handler's Transfer-Encoding that
// names chunked beside another coding ("gzip, chunked", or a second
// value "chunked") is not written beside the chunked h1 applies once: a
// response whose field says chunked twice is decoded differently by
// different recipients. Go's server writes it; h1 is stricter. A coding
// without chunked ("gzip") is kept, as Go keeps it.
func TestResponseDoubleChunkedRefused(t *testing.T) {
	addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/list":
			w.Header().Set("Transfer-Encoding", "gzip, chunked")
		case "/values":
			w.Header()["Transfer-Encoding"] = []string{"gzip", "chunked"}
		case "/gzip":
			w.Header().Set("Transfer-Encoding", "gzip")
		}
		io.WriteString(w, strings.Repeat("x", 3000))
	}))
	for _, tc := range []struct{ path, want string }{
		{"/list", "chunked"}, {"/values", "chunked"}, {"/gzip", "gzip,chunked"},
	} {
		got := rawAll(t, addr, "GET "+tc.path+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		head, _, _ := bytes.Cut(got, []byte("\r\n\r\n"))
		var te []string
		for _, l := range strings.Split(string(head), "\r\n") {
			if v, ok := strings.CutPrefix(l, "Transfer-Encoding: "); ok {
				te = append(te, strings.ReplaceAll(v, " ", ""))
			}
		}
		if strings.Join(te, ",") != tc.want {
			t.Errorf("%s: Transfer-Encoding %q, want %q", tc.path, te, tc.want)
		}
	}
}

// TestHTTP10KeepAliveAndCloseCloses: an HTTP/1.0 request asking for both
// keep-alive and close is closed after its answer. Go's server answers
// "Connection: keep-alive" and keeps the connection (its keep-alive test
// and its close test disagree); h1 is stricter: close wins, so a client
// (or an intermediary) that took close never sees a next answer.
func TestHTTP10KeepAliveAndCloseCloses(t *testing.T) {
	addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
	}))
	for _, conn := range []string{"keep-alive, close", "close, keep-alive", "x keep-alive"} {
		got := rawAll(t, addr, "GET / HTTP/1.0\r\nHost: a\r\nConnection: "+conn+"\r\n\r\nGET /2 HTTP/1.0\r\nHost: a\r\n\r\n")
		if n := bytes.Count(got, []byte("HTTP/1.0 200")); n != 1 || bytes.Contains(got, []byte("keep-alive")) {
			t.Errorf("Connection: %s: %d answers:\n%q", conn, n, got)
		}
	}
}
