package h1_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
	"weak"
)

// TestRequestStateNotCarriedToNextRequest: two requests on one keep-alive
// connection, sent one after the other and pipelined in one write, on
// both fronts. What the first request's handler had — its context (and
// contexts derived from it, and an AfterFunc on it), its request fields,
// its response header — ends with it or stays as it was: the second
// request's context is a new one and not done, the first's fields kept by
// its handler are unchanged by the second head (the front keeps a small
// head's field values in per-request state), and a header the first
// handler set, even after it returned, never reaches the second answer.
func TestRequestStateNotCarriedToNextRequest(t *testing.T) {
	type first struct {
		ctx, derived context.Context
		header       http.Header
		w            http.ResponseWriter
		afterFunc    chan struct{}
	}
	var one first
	problems := make(chan string, 16)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/one":
			derived, cancel := context.WithTimeout(r.Context(), time.Hour)
			_ = cancel // ended by the request's end
			one = first{ctx: r.Context(), derived: derived, header: r.Header, w: w, afterFunc: make(chan struct{})}
			context.AfterFunc(r.Context(), func() { close(one.afterFunc) })
			w.Header().Set("X-Leak-One", "1")
			io.WriteString(w, "one")
		case "/two":
			if r.Context() == one.ctx {
				problems <- "the second request has the first's context"
			}
			if err := r.Context().Err(); err != nil {
				problems <- "the second request's context is done: " + err.Error()
			}
			if one.ctx.Err() != context.Canceled || one.derived.Err() != context.Canceled {
				problems <- "the first request's context (or one derived from it) not ended by its end"
			}
			select {
			case <-one.afterFunc:
			case <-time.After(5 * time.Second):
				problems <- "the first request's AfterFunc not called"
			}
			if got := one.header.Get("X-One"); got != "a" {
				problems <- "the first request's field changed: " + got
			}
			if got := r.Header.Get("X-One"); got != "" {
				problems <- "the second request has the first's field: " + got
			}
			// The first handler's writer, used after it returned (a
			// handler's bug): nothing of it reaches this answer.
			one.w.Header().Set("X-Leak-Late", "1")
			io.WriteString(w, "two")
		}
	})
	reqs := "GET /one HTTP/1.1\r\nHost: a.example\r\nX-One: a\r\nX-Pad: 1\r\n\r\n" +
		"GET /two HTTP/1.1\r\nHost: a.example\r\nX-Two: b\r\nX-Pad: 2\r\n\r\n"
	split := strings.Index(reqs, "GET /two")
	for _, f := range serveBoth(t, h) {
		for _, pipelined := range []bool{false, true} {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			var answers []*http.Response
			send := []string{reqs[:split], reqs[split:]}
			if pipelined {
				send = []string{reqs}
			}
			for _, s := range send {
				if _, err := io.WriteString(c, s); err != nil {
					t.Fatal(err)
				}
				for range strings.Count(s, "GET ") {
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatalf("%s: %v", f.name, err)
					}
					io.ReadAll(resp.Body)
					answers = append(answers, resp)
				}
			}
			c.Close()
			if answers[0].Header.Get("X-Leak-One") != "1" {
				t.Errorf("%s: the first answer lacks its own field", f.name)
			}
			for k := range answers[1].Header {
				if strings.HasPrefix(k, "X-Leak") {
					t.Errorf("%s pipelined=%v: the second answer has %s", f.name, pipelined, k)
				}
			}
			for len(problems) > 0 {
				t.Errorf("%s pipelined=%v: %s", f.name, pipelined, <-problems)
			}
		}
	}
}

// TestIdleConnectionKeepsNoRequest: a keep-alive connection waiting for
// its next request holds nothing of the last one (its Request, header,
// ResponseWriter and context live in per-request state the connection
// must let go of): a client that sends one large head and then idles
// must not pin it for the idle timeout.
func TestIdleConnectionKeepsNoRequest(t *testing.T) {
	got := make(chan weak.Pointer[http.Request], 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- weak.Make(r)
		io.WriteString(w, "ok")
	})
	addr := serveH1(t, h)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a.example\r\nX-Big: "+strings.Repeat("b", 4000)+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	wp := <-got
	for i := 0; wp.Value() != nil; i++ {
		if i == 50 {
			t.Fatal("the idle connection keeps its last request")
		}
		// The answer is read before the connection forgets the request
		// (endRequest follows the final write): collect until it has.
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}
