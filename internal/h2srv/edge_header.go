// Copyright 2026 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Edge's changes to x/net/http2's server (see NOTICE).

package h2srv

// WriteHeaderKept is WriteHeader (a final status, 200-599) from a handler
// that leaves the header map (Header's) as it is from now until it
// returns: no field added, changed or removed, trailers included. The
// server then writes the HEADERS frame from that map itself, where
// WriteHeader copies it (a map and an array of values per answer: 2.4 %
// of the edge's CPU in bench h2-small), because a handler may change
// its map after WriteHeader and those changes must not reach the client.
// The server reads the map until the frame is written, and never
// changes it: the Content-Length and Connection fields it does not
// forward as they are are left out as the frame is encoded (skipFields)
// instead of deleted from the map. Any other status is WriteHeader's.
func (w *responseWriter) WriteHeaderKept(code int) {
	rws := w.rws
	if rws == nil {
		panic("WriteHeader called after Handler finished")
	}
	if !rws.wroteHeader && code >= 200 && code <= 599 && !rws.inline {
		rws.keptHeader = true
	}
	rws.writeHeader(code)
}

// skipFields are the fields of a handler's header map that a HEADERS
// frame written from the map itself (WriteHeaderKept) leaves out: those
// writeChunk deletes from its copy.
type skipFields uint8

const (
	skipContentLength skipFields = 1 << iota // sent from writeResHeaders.contentLength
	skipConnection                           // not sent in HTTP/2 (RFC 9113 8.2.2)
)

// skips reports whether the field named k (as it is in the map) is left out.
func (s skipFields) skips(k string) bool {
	return s&skipContentLength != 0 && k == "Content-Length" ||
		s&skipConnection != 0 && k == "Connection"
}
