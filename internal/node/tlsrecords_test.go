package node

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordBody is byte i of a test answer's body: it depends on the offset,
// with no period near a buffer's or a record's size, so that a piece
// written twice, dropped or out of order shows.
func recordBody(n int) []byte { return seededBody(n, 0) }

// seededBody is recordBody shifted by seed: each client its own bytes.
func seededBody(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + (i+i/251+seed)%26)
	}
	return b
}

// piecesHandler answers with the body recordBody(sum of p), written in
// the pieces the query's p lists (comma-separated sizes); cl=1 declares
// the length (else the answer is chunked), flush=1 flushes after each
// piece.
func piecesHandler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var sizes []int
	total := 0
	for _, s := range strings.Split(q.Get("p"), ",") {
		n, _ := strconv.Atoi(s)
		sizes = append(sizes, n)
		total += n
	}
	seed, _ := strconv.Atoi(q.Get("s"))
	body := seededBody(total, seed)
	if q.Get("cl") == "1" {
		w.Header().Set("Content-Length", strconv.Itoa(total))
	}
	f := w.(http.Flusher)
	for _, n := range sizes {
		if _, err := w.Write(body[:n]); err != nil {
			return
		}
		body = body[n:]
		if q.Get("flush") == "1" {
			f.Flush()
		}
	}
}

// TestTLSFrontStreamedAnswersWhole: answers written in pieces of every
// size around the write buffer's (8 KiB) and a TLS record's (16 KiB),
// chunked or with a length, flushed after each piece or not, arrive
// whole and byte for byte on one keep-alive HTTPS connection (the large
// pieces leave in whole records, with what the buffer held before them:
// a piece's start, end or the held bytes written twice, dropped or out of
// order fails here).
func TestTLSFrontStreamedAnswersWhole(t *testing.T) {
	t.Parallel()
	_, addr := holdFront(t, http.HandlerFunc(piecesHandler))
	c := holdDial(t, addr)
	br := bufio.NewReader(c)
	pieces := []string{
		"32768,32768,32768,4096", "102400", "1,102400", "2047,2,16384", "8000,200,16384,16385,1",
		"8191,8192,8193", "16383,16384,16385,1", "24576,24576", "5,7,40000,3,65536,9", "3000,3000,3000,3000,3000,3000,3000",
		"16384", "32768", "49152,100", "10", "1048581",
	}
	for _, p := range pieces {
		for _, mode := range []string{"", "&cl=1", "&flush=1", "&cl=1&flush=1"} {
			target := "/?p=" + p + mode
			resp, b, want, err := getPieces(t, c, br, target, p)
			if err != nil || !bytes.Equal(b, recordBody(want)) {
				t.Fatalf("%s: %d bytes, %v; want the %d sent (first difference at %d)", target, len(b), err, want, firstDiff(b, recordBody(want)))
			}
			if len(resp.TransferEncoding) > 0 && strings.Contains(mode, "cl=1") {
				t.Fatalf("%s: chunked, with a length", target)
			}
		}
	}
}

// getPieces asks piecesHandler for target on c, whose answers br reads,
// and returns the answer, its body, the length the comma-separated pieces
// add up to, and the body's read error.
func getPieces(t *testing.T, c io.Writer, br *bufio.Reader, target, pieces string) (*http.Response, []byte, int, error) {
	t.Helper()
	io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: a.example\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	b, err := io.ReadAll(resp.Body)
	want := 0
	for _, s := range strings.Split(pieces, ",") {
		n, _ := strconv.Atoi(s)
		want += n
	}
	return resp, b, want, err
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// recordLengths lists the lengths (the header's) of the TLS records in b.
func recordLengths(b []byte) ([]int, error) {
	var ls []int
	for len(b) > 0 {
		if len(b) < 5 {
			return ls, fmt.Errorf("%d bytes after the last record", len(b))
		}
		l := int(binary.BigEndian.Uint16(b[3:5]))
		if len(b) < 5+l {
			return ls, fmt.Errorf("a record of %d cut at %d", l, len(b)-5)
		}
		ls = append(ls, l)
		b = b[5+l:]
	}
	return ls, nil
}

// TestTLSFrontProxiedAnswerInFullRecords: a 100 KiB answer copied in
// 32 KiB pieces (as the proxy copies an origin's chunked answer) leaves in
// full TLS records (16 KiB of plaintext) but the last, not in records cut
// at the write buffer's 8 KiB (head and first body bytes, then the rest:
// three records and three writes per piece, where two full ones do).
func TestTLSFrontProxiedAnswerInFullRecords(t *testing.T) {
	t.Parallel()
	inner, addr := holdFront(t, http.HandlerFunc(piecesHandler), func(f *tlsFront) {
		// Whole records from the first byte: crypto/tls starts a
		// connection with small ones (its first 128 KiB).
		f.h2.TLSConfig.DynamicRecordSizingDisabled = true
	})
	c := holdDial(t, addr)
	br := bufio.NewReader(c)
	for _, cl := range []string{"", "&cl=1"} {
		before := len(inner.snapshot())
		io.WriteString(c, "GET /?p=32768,32768,32768,4096"+cl+" HTTP/1.1\r\nHost: a.example\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(resp.Body); err != nil || !bytes.Equal(b, recordBody(100<<10)) {
			t.Fatalf("%d bytes, %v", len(b), err)
		}
		ls, err := recordLengths(bytes.Join(inner.snapshot()[before:], nil))
		if err != nil {
			t.Fatal(err)
		}
		const full = 16<<10 + 17 // plaintext, content type, AEAD tag
		for i, l := range ls[:len(ls)-1] {
			if l != full {
				t.Fatalf("answer%s: records %v: record %d is not full", cl, ls, i)
			}
		}
		if len(ls) != 7 {
			t.Errorf("answer%s: %d records %v; want 7", cl, len(ls), ls)
		}
	}
}

// TestTLSRecordBufferNotSharedAcrossConnections: the buffer a body piece's
// first record is assembled in is lent per write from a pool shared by
// every HTTPS connection; clients streaming large answers at once each
// get their own bytes (a buffer given back before TLS took its bytes, or
// kept past it, would hand one client's body to another).
func TestTLSRecordBufferNotSharedAcrossConnections(t *testing.T) {
	t.Parallel()
	_, addr := holdFront(t, http.HandlerFunc(piecesHandler))
	const clients = 8
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for seed := 1; seed <= clients; seed++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(c)
			for i := 0; i < 20; i++ {
				q := "/?p=32768,32768,32768,4096&s=" + strconv.Itoa(seed)
				if i%2 == 1 {
					q = "/?p=7,102400&cl=1&s=" + strconv.Itoa(seed)
				}
				io.WriteString(c, "GET "+q+" HTTP/1.1\r\nHost: a.example\r\n\r\n")
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				if want := seededBody(len(b), seed); err != nil || len(b) < 100<<10 || !bytes.Equal(b, want) {
					errs <- fmt.Errorf("client %d, answer %d: %d bytes, %v, first difference at %d", seed, i, len(b), err, firstDiff(b, want))
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
