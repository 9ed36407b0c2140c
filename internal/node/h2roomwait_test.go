package node

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	http2 "github.com/edge-cdn/edge/internal/h2srv"
	"golang.org/x/net/http2/hpack"
)

// TestH2ResetWhileWaitingForRoomSendsNoReusedBuffer: attack (the class of
// go.dev/issue/58446). A DATA frame that waits for the connection's writer
// (its peer reads nothing) holds the handler's buffer, uncopied. The
// client resets the stream: the handler's Write returns, and its buffer
// is its own again (a proxy's goes to the next stream's answer, another
// user's). When the peer reads again, none of those bytes may leave, on
// any stream. The handler fills its buffer with 'S' once its Write
// returned; every DATA frame the client then reads, up to the answer to a
// PING it sent after the reset, must be the 'a's written before.
func TestH2ResetWhileWaitingForRoomSendsNoReusedBuffer(t *testing.T) {
	srvTLS, cc := tlsPair(t, true) // net.Pipe: nothing is buffered for a peer that does not read
	bc := newBatchConn(srvTLS)
	reused := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := bytes.Repeat([]byte{'a'}, 16<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				break
			}
		}
		for i := range buf {
			buf[i] = 'S'
		}
		close(reused)
	})
	served := make(chan struct{})
	go func() {
		defer close(served)
		//lint:ignore SA1019 as serveH2Batched
		(&http2.Server{}).ServeConn(bc, &http2.ServeConnOpts{Handler: h, BaseConfig: &http.Server{}})
	}()
	t.Cleanup(func() { cc.Close(); bc.Close(); <-served })

	cc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := cc.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(cc, cc)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	fr.WriteWindowUpdate(0, 1<<31-1-65535)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "b.example"}, {":path", "/"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	// The writer's first write waits for this client; behind it the batch
	// fills, and then a frame waits for room (NotifyRoom's function set).
	for deadline := time.Now().Add(10 * time.Second); !bc.waitsForRoom(); {
		if time.Now().After(deadline) {
			t.Fatal("no frame waited for the connection's room")
		}
		time.Sleep(time.Millisecond)
	}
	if err := fr.WriteRSTStream(1, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reused:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's Write did not return after the reset")
	}
	if err := fr.WritePing(false, [8]byte{'p'}); err != nil {
		t.Fatal(err)
	}
	var data int
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the server's frames: %v (%d DATA bytes so far)", err, data)
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			data += len(f.Data())
			if i := bytes.IndexByte(f.Data(), 'S'); i >= 0 {
				t.Fatalf("stream %d: DATA carries the handler's reused buffer (byte %d of %d)", f.StreamID, i, len(f.Data()))
			}
		case *http2.PingFrame:
			if f.IsAck() {
				if data == 0 {
					t.Fatal("no DATA read: the test did not fill the writer")
				}
				return
			}
		}
	}
}

// waitsForRoom reports whether the serve goroutine waits for b's room.
func (b *batchConn) waitsForRoom() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.roomFn != nil
}
