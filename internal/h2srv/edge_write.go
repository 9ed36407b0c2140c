// Copyright 2026 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Edge's changes to x/net/http2's server (see NOTICE).

package h2srv

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
