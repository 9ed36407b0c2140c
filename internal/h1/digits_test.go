package h1_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestContentLengthDigitsAtBufferEdge: the Content-Length digits are
// written into the write buffer's free room; a head whose end falls at
// every offset around the buffer's 8 KiB edge still carries the right
// number, both when the handler sets it and when h1 computes it from the
// body (and the bytes after it are intact).
func TestContentLengthDigitsAtBufferEdge(t *testing.T) {
	const bodyLen = 12345 // five digits
	body := bytes.Repeat([]byte("b"), bodyLen)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pad, _ := strconv.Atoi(r.URL.Query().Get("pad"))
		w.Header().Set("X-Pad", strings.Repeat("p", pad))
		w.Header().Set("Content-Type", "text/plain")
		if r.URL.Query().Get("set") == "1" {
			w.Header().Set("Content-Length", strconv.Itoa(bodyLen))
			w.Write(body)
			return
		}
		w.Write(body[:100]) // small: computed once the handler is done
	})
	addr := serveH1(t, h)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	for _, set := range []string{"1", "0"} {
		for pad := 8192 - 200; pad < 8192; pad++ {
			if _, err := io.WriteString(c, "GET /?set="+set+"&pad="+strconv.Itoa(pad)+" HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("set=%s pad=%d: %v", set, pad, err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := bodyLen
			if set == "0" {
				want = 100
			}
			if err != nil || resp.ContentLength != int64(want) || len(got) != want || !bytes.Equal(got, body[:want]) {
				t.Fatalf("set=%s pad=%d: Content-Length %d, body %d bytes, err %v; want %d",
					set, pad, resp.ContentLength, len(got), err, want)
			}
		}
	}
}

// TestStatusDigitsAtBufferEdge: pipelined answers pack into the write
// buffer, so their status lines (digits written into its free room)
// start at every offset, across its edge too; each status, with and
// without a reason phrase, comes out whole.
func TestStatusDigitsAtBufferEdge(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pad, _ := strconv.Atoi(r.URL.Query().Get("pad"))
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		w.Header().Set("X-Pad", strings.Repeat("p", pad))
		w.WriteHeader(code)
		w.Write([]byte("x"))
	})
	addr := serveH1(t, h)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	codes := []int{200, 404, 599, 299}
	const n = 400
	var reqs strings.Builder
	for i := range n {
		reqs.WriteString("GET /?code=" + strconv.Itoa(codes[i%len(codes)]) + "&pad=" + strconv.Itoa(i*7%300) + " HTTP/1.1\r\nHost: a\r\n\r\n")
	}
	wrote := make(chan error, 1)
	go func() { _, err := io.WriteString(c, reqs.String()); wrote <- err }() // read meanwhile
	defer func() { c.Close(); <-wrote }()
	br := bufio.NewReader(c)
	for i := range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := codes[i%len(codes)]; err != nil || resp.StatusCode != want || string(b) != "x" {
			t.Fatalf("answer %d: %q %q %v; want %d", i, resp.Status, b, err, want)
		}
	}
}
