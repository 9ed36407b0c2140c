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
