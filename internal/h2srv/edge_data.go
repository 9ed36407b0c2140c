// Copyright 2026 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Edge's changes to x/net/http2's server (see NOTICE): the DATA path.

package h2srv

// writeDataFrame writes a DATA frame on the serve goroutine: its 9-byte
// header, then its payload, to the connection's buffered writer. x/net's
// Framer.WriteData first copies the payload into the Framer's buffer
// (grown to the largest frame, 16 KiB per connection) and writes that:
// one copy of every body byte more than needed (bench cache-h2-100k:
// 3 copies of each 100 KiB answer before TLS, now 2), as the writer
// copies it again anyway.
//
// Only for a frame written synchronously (startFrameWrite's first
// branch): once this returns, the bufio buffer or the connection holds
// its own copy of the bytes, so none of p is referenced after the
// handler that wrote it was told the frame is written (go.dev/issue/58446).
// Frames written on writeFrameAsync are encoded into the Framer's buffer
// on the serve goroutine, as in x/net.
func (sc *serverConn) writeDataFrame(streamID uint32, endStream bool, p []byte) error {
	f := sc.framer
	if f.logWrites || f.w != sc.bw {
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
	if _, err := sc.bw.Write(f.wbuf); err != nil {
		return err
	}
	return sc.bw.writeThrough(p)
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

// writeBodyDirect is the responseWriter's Write of p larger than its
// body buffer when it holds none: bufio.Writer would hand such a p to
// writeChunk without copying it, and the stream would then keep the
// 4 KiB buffer for its handler's lifetime (bench cache-h2-100k: 500
// streams, each writing its answer in one Write, held 2 MB of them).
// An error sticks, as it does in bufio.Writer: later Writes return it.
func (rws *responseWriterState) writeBodyDirect(p []byte) (int, error) {
	n, err := chunkWriter{rws}.Write(p)
	if err != nil {
		rws.bodyErr = err
	}
	return n, err
}
