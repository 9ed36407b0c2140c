// Copyright 2026 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Edge's changes to x/net/http2's server (see NOTICE): the DATA path.

package h2srv

// writeBodyDirect is the responseWriter's Write of p larger than its
// body buffer when it holds none: bufio.Writer would hand such a p to
// writeChunk without copying it, and the stream would then keep the
// 4 KiB buffer for its handler's lifetime (bench cache-h2-100k: 500
// streams, each writing its answer in one Write, held 2 MB of them).
// An error sticks, as it does in bufio.Writer: later Writes return it.
//
// An inline answer's p is queued as it is, not copied (see
// InlineHandler): the handler promised that its bytes do not change.
func (rws *responseWriterState) writeBodyDirect(p []byte) (int, error) {
	rws.shared = rws.inline
	n, err := chunkWriter{rws}.Write(p)
	rws.shared = false
	if err != nil {
		rws.bodyErr = err
	}
	return n, err
}

// writeDataFrame writes a DATA frame on the serve goroutine: its 9-byte
// header, then its payload, to the connection's buffered writer. x/net's
// Framer.WriteData first copies the payload into the Framer's buffer
// (grown to the largest frame: 16 KiB kept per connection) and writes
// that: one copy of every body byte more than needed, as the
// connection's batch writer (writeRoomer) copies it again anyway.
//
// Only on a connection that tells its room: there every DATA frame is
// written on the serve goroutine (at once, or after waitRoom), and once
// this returns the bufio buffer or the batch writer holds its own copy of
// the bytes, so none of p is referenced after its handler was told the
// frame is written (go.dev/issue/58446). Elsewhere x/net's frames may be
// written on writeFrameAsync, from the Framer's copy.
func (sc *serverConn) writeDataFrame(streamID uint32, endStream bool, p []byte) error {
	f := sc.framer
	if sc.room == nil || f.logWrites || f.w != sc.bw {
		return f.WriteData(streamID, endStream, p)
	}
	if !validStreamID(streamID) && !f.AllowIllegalWrites {
		return errStreamID
	}
	if len(p) >= 1<<24 {
		return ErrFrameTooLarge
	}
	var flags Flags
	if endStream {
		flags |= FlagDataEndStream
	}
	f.startWrite(FrameData, flags, streamID)
	f.wbuf[0], f.wbuf[1], f.wbuf[2] = byte(len(p)>>16), byte(len(p)>>8), byte(len(p))
	if pw, ok := sc.bw.conn.(pairWriter); ok && sc.bw.byteTimeout == 0 && (sc.bw.bw == nil || sc.bw.bw.Buffered() == 0) {
		// Nothing buffered before it: header and payload to the
		// connection's writer in one call.
		return pw.WritePair(f.wbuf, p)
	}
	if _, err := sc.bw.Write(f.wbuf); err != nil {
		return err
	}
	return sc.bw.writeThrough(p)
}

// pairWriter is a connection that takes two byte slices in one call, in
// order, copying both before it returns (Edge's batchConn).
type pairWriter interface {
	WritePair(a, b []byte) error
}

// writeThrough writes p after what w holds. A p larger than the room
// left in w's buffer goes to the connection directly after w's bytes
// (bufio.Writer would first copy what fits into its buffer, then write
// the rest directly); a smaller one is buffered.
func (w *bufferedWriter) writeThrough(p []byte) error {
	if w.bw != nil && len(p) > w.bw.Available() && w.bw.Buffered() > 0 {
		if err := w.bw.Flush(); err != nil {
			return err
		}
	}
	_, err := w.Write(p)
	return err
}
