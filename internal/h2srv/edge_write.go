// Copyright 2026 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Edge's changes to x/net/http2's server (see NOTICE).

package h2srv

import "errors"

// writeRoomer is a connection that tells how many bytes it takes at once
// without blocking: Edge's batchConn, whose Write only copies into the
// buffer of its writer goroutine until that holds its bound. On such a
// connection the serve goroutine writes a frame itself (encodes it into
// the bufio buffer and flushes it into the connection's) when it fits,
// where x/net starts a goroutine per flush and per HEADERS frame and
// waits for it on a channel, because a write to a plain connection may
// block for as long as the peer does not read. Frames that do not fit
// go the x/net way, so a peer that does not read still blocks a writer
// goroutine, never the serve loop.
type writeRoomer interface {
	// WriteRoom is the number of bytes the next Writes may hand over
	// in all without one of them blocking (<= 0: the next may block).
	// Only the connection's writer lowers it.
	WriteRoom() int
	// NotifyRoom calls f once the connection's writer has taken all
	// that waited (or stopped), or at once if nothing waits: then a
	// Write hands over all of its bytes without blocking. f runs on
	// the writer's goroutine or the caller's, and must not block.
	NotifyRoom(f func())
}

// errRoomFree is waitRoom's message on wroteFrameCh: the frame has not
// been written, and now can be.
var errRoomFree = errors.New("http2: the connection's writer has room")

// waitRoom holds a DATA frame that would block the serve goroutine until
// the connection's writer has room for it (see writeRoomer), in place of
// x/net's goroutine per such frame, which copied the frame's payload
// into the Framer's buffer first (go.dev/issue/58446: the handler may
// reuse its buffer once its stream is closed, while that goroutine
// waited). Here nothing is written from the handler's buffer once its
// stream is closed (writeAfterRoom), and the payload is copied once,
// into the writer's batch. Bench h2-100k: about half of the DATA frames
// of 500 proxied 100 KiB answers took that goroutine, and each of the 50
// connections kept a Framer buffer of 16 KiB.
func (sc *serverConn) waitRoom(wr FrameWriteRequest) {
	sc.writingFrameAsync = true // no other frame starts meanwhile
	ch := sc.wroteFrameCh       // buffered: one message, this one
	sc.notifyRoom(func() { ch <- frameWriteResult{wr: wr, err: errRoomFree} })
}

// writeAfterRoom writes the frame waitRoom held, on the serve goroutine,
// unless its stream closed meanwhile: its handler was told so (its
// stream's cw) and may have reused the frame's bytes.
func (sc *serverConn) writeAfterRoom(wr FrameWriteRequest) {
	sc.writingFrameAsync = false
	if st := wr.stream; st != nil && st.state == stateClosed {
		sc.writingFrame = false
		wr.replyToWriter(errStreamClosed)
		sc.scheduleFrameWrite()
		return
	}
	err := wr.write.writeFrame(sc)
	sc.wroteFrame(frameWriteResult{wr: wr, err: err})
}

// writeWontBlock reports whether writing w (and flushing it, if it
// flushes) leaves every Write to the connection non-blocking. It
// encodes a HEADERS frame's block to know its size: writeFrame then
// does not encode it again.
func (sc *serverConn) writeWontBlock(w writeFramer) bool {
	if sc.room == nil {
		return false
	}
	// Every byte the bufio buffer holds and every byte of w may reach
	// the connection; a Write blocks only if the room is gone when it
	// starts, so less than the room in all never blocks.
	room := sc.room() - sc.bw.Buffered() - 1
	if room <= 0 {
		return false
	}
	switch w := w.(type) {
	case flushFrameWriter:
		// The flush stays on a goroutine of its own: while it waits to
		// run, the serve goroutine puts the frames of the requests that
		// came meanwhile in the bufio buffer, and the flush hands them
		// over together (measured, bench h2-small, 50x10 streams: the
		// flush written here cost 90.7 us per proxied request against
		// 69.0-73.5 us with this goroutine; cache hits the same).
		return false
	case *writeResHeaders:
		if !w.encoded {
			w.encode(sc)
		}
		n := sc.headerWriteBuf.Len()
		return n+frameHeaderLen*(n/16384+1) <= room
	case *writeGoAway, *writePushPromise:
		return false // rare; x/net's way
	}
	return w.staysWithinBuffer(room)
}
