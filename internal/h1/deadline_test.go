package h1_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edge-cdn/edge/internal/h1"
)

// The front leaves a head's (or the idle wait's) read deadline set after
// the head is read and clears it before the connection is read again
// (issue 22: one deadline change per request instead of three). These
// tests pin what must not change: a deadline meant for a head never cuts
// a handler's reads, nor cancels its request, and a deadline a handler
// set itself is never cleared by the front. They run on fake time
// (testing/synctest) over net.Pipe, so the deadlines really pass.

const (
	testHeadTimeout = 50 * time.Millisecond
	testIdleTimeout = 80 * time.Millisecond
)

// pipeServer serves one net.Pipe connection with h, with short head and
// idle timeouts; it returns the client side. The caller's bubble waits
// for the server's goroutine (the client side closes first).
func pipeServer(t *testing.T, h http.HandlerFunc) (net.Conn, *bufio.Reader) {
	s := &h1.Server{Handler: h, ReadHeaderTimeout: testHeadTimeout, IdleTimeout: testIdleTimeout}
	cli, srv := net.Pipe()
	go s.ServeConn(srv)
	t.Cleanup(func() { cli.Close() })
	return cli, bufio.NewReader(cli)
}

func roundTrip(t *testing.T, c net.Conn, br *bufio.Reader, req string) string {
	t.Helper()
	go io.WriteString(c, req) // net.Pipe: the write waits for the server's read
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%q: %v", req, err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.Status + " " + string(b)
}

// TestStaleHeadDeadlineNotOnBody: a keep-alive request whose body comes
// after the head and idle timeouts have passed is read whole (the head's
// deadline, left set, is cleared before the body is read).
func TestStaleHeadDeadlineNotOnBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, br := pipeServer(t, func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				io.WriteString(w, "body: "+err.Error())
				return
			}
			io.WriteString(w, "got "+string(b))
		})
		if got := roundTrip(t, c, br, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"); got != "200 OK got " {
			t.Fatal(got)
		}
		// The second head alone (whole: no head deadline is set), then the
		// body well after both timeouts.
		go func() {
			io.WriteString(c, "POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
			time.Sleep(3 * (testHeadTimeout + testIdleTimeout))
			io.WriteString(c, "hello")
		}()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "got hello" {
			t.Fatalf("%q", b)
		}
	})
}

// TestStaleHeadDeadlineNoFalseClientGone: a handler that runs past the
// idle and head timeouts on a keep-alive connection is not cancelled (the
// watching read, started after 2 ms, does not fail on the old deadline
// and take it for the client leaving); a client that leaves still is seen.
func TestStaleHeadDeadlineNoFalseClientGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gone := make(chan struct{})
		c, br := pipeServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/1" {
				return
			}
			select {
			case <-r.Context().Done():
				io.WriteString(w, "cancelled")
			case <-time.After(3 * (testHeadTimeout + testIdleTimeout)):
				io.WriteString(w, "ran")
			}
			if r.URL.Path == "/gone" {
				w.(http.Flusher).Flush()
				<-r.Context().Done()
				close(gone)
			}
		})
		if got := roundTrip(t, c, br, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"); got != "200 OK " {
			t.Fatal(got)
		}
		if got := roundTrip(t, c, br, "GET /long HTTP/1.1\r\nHost: x\r\n\r\n"); got != "200 OK ran" {
			t.Fatalf("a handler past the idle timeout: %q", got)
		}
		go io.WriteString(c, "GET /gone HTTP/1.1\r\nHost: x\r\n\r\n")
		// The first bytes of the answer: the handler ran its time.
		if _, err := br.Peek(1); err != nil {
			t.Fatal(err)
		}
		c.Close()
		<-gone // hangs (the bubble deadlocks: the test fails) if not seen
	})
}

// TestHandlerReadDeadlineKept: a read deadline the handler sets
// (http.ResponseController) holds for its body reads; the front's clearing
// of the head's deadline does not undo it.
func TestHandlerReadDeadlineKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, br := pipeServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/1" {
				return
			}
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(time.Second))
			_, err := io.ReadAll(r.Body)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				io.WriteString(w, "deadline")
				return
			}
			io.WriteString(w, "read: "+errString(err))
		})
		if got := roundTrip(t, c, br, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"); got != "200 OK " {
			t.Fatal(got)
		}
		// The body never comes: only the handler's deadline ends the read
		// (without it the bubble deadlocks and the test fails).
		if got := roundTrip(t, c, br, "POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"); !strings.HasSuffix(got, " deadline") {
			t.Fatalf("%q", got)
		}
	})
}

// TestHijackerDeadlineKept: after Hijack the connection's deadlines are
// the handler's: one it sets holds for its reads through the returned
// reader.
func TestHijackerDeadlineKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		res := make(chan error, 1)
		c, br := pipeServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/1" {
				return
			}
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				res <- err
				return
			}
			defer conn.Close()
			conn.SetReadDeadline(time.Now().Add(time.Second))
			_, err = brw.ReadByte()
			res <- err
		})
		if got := roundTrip(t, c, br, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"); got != "200 OK " {
			t.Fatal(got)
		}
		go io.WriteString(c, "GET /hijack HTTP/1.1\r\nHost: x\r\n\r\n")
		if err := <-res; !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the hijacker's read: %v; want its deadline", err)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
