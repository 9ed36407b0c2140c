// Package rawsend holds what Edge's two "write, then wait for the answer
// in one syscall.RawConn.Read" paths share: internal/h1's sendAndWait (a
// keep-alive answer and the wait for the next request) and proxy's
// sendRaw (an origin request and the wait for its answer). Both flush a
// bufio.Writer into a Holder instead of the socket, then write the held
// bytes themselves from inside the RawConn.Read call (WriteHeld), after
// the runtime reset the socket's readiness, so no wake-up is lost.
package rawsend

import (
	"bufio"
	"io"
)

// Holder is the writer under a bufio.Writer: it writes to W, or, during
// HoldFlush, keeps the bytes of the one Write the Flush makes in Held.
// They stay in the bufio.Writer's buffer, which nothing writes to until
// they are sent (WriteHeld, or W.Write of what is left).
type Holder struct {
	W    io.Writer
	Held []byte // bytes flushed by HoldFlush and not yet written; nil: none
	hold bool
}

func (h *Holder) Write(p []byte) (int, error) {
	if h.hold {
		h.Held = p
		return len(p), nil
	}
	return h.W.Write(p)
}

// HoldFlush flushes bw, whose writer is h, into h.Held: no system call.
func (h *Holder) HoldFlush(bw *bufio.Writer) error {
	h.hold = true
	err := bw.Flush()
	h.hold = false
	return err
}
