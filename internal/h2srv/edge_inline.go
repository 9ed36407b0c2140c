// Copyright 2026 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Edge's changes to x/net/http2's server (see NOTICE).

package h2srv

import (
	"errors"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"
)

var inlineAnswers atomic.Uint64

// InlineAnswers is the number of requests answered inline since the
// process started, by every Server (for tests).
func InlineAnswers() uint64 { return inlineAnswers.Load() }

// InlineHandler answers some requests on the connection's serve
// goroutine, where x/net starts a goroutine per request and hands every
// frame it writes to the serve goroutine over channels: for a small
// answer from memory (a cache hit), that hand-over costs more than the
// answer.
//
// The server calls ServeInline for a request whose HEADERS end the
// stream (no body) and that the server itself does not refuse (431,
// 400); w is the stream's ordinary ResponseWriter. ServeInline must not
// block: no network, no disk, no waiting on another request. It returns
// true when it answered (the server sends what it wrote once it
// returns; w must not be used after that), or false, having written
// nothing to w and kept no reference to it or to r, when the request
// needs more: the server then runs the connection's Handler for it, on
// a goroutine, as it does for every other request. Headers set on w
// before declining are dropped.
//
// The frames of inline answers wait in the connection's write queue
// for flow control, not in a blocked handler. A Write of more than
// 4 KiB (the body buffer's size) made while the answer's body buffer
// holds nothing (its first Write, in practice) is queued as it is, not
// copied: its bytes must not change, ever (a cache's stored body, never
// a buffer that is reused), as the connection reads them until the
// stream's frames are written or the stream ends, after ServeInline
// returned. The rest of an inline answer's body is copied, at most
// InlineBodyMax bytes of it: a Write past that fails (and the stream is
// reset).
type InlineHandler interface {
	ServeInline(w http.ResponseWriter, r *http.Request) bool
}

// InlineBodyMax bounds the bytes of an inline answer's body that the
// server copies (see InlineHandler): the initial flow control window of
// a stream (RFC 9113, 6.9.2), so that a peer that does not change it
// gets such an answer whole at once.
const InlineBodyMax = 64<<10 - 1

var errInlineTooBig = errors.New("h2srv: inline answer longer than InlineBodyMax")

// errInlineUnsupported is what the ResponseWriter's deadline setters and
// Push return to an inline answer: each hands work to the serve loop and
// some wait for it, and the serve loop is the goroutine calling them.
var errInlineUnsupported = errors.New("h2srv: not available to an inline answer")

// serveInline offers the request to sc.inline on the serve goroutine and
// reports whether it was answered; if not, rw is as it was.
func (sc *serverConn) serveInline(st *stream, rw *responseWriter, req *http.Request) (answered bool) {
	sc.serveG.check()
	rws := rw.rws
	rws.inline = true
	defer func() {
		if answered {
			return
		}
		// As runHandler does for a handler that panics.
		e := recover()
		if e == nil {
			return // declined
		}
		answered = true
		st.goneCancel() // Edge: and its client-gone hook (edge_gone.go)
		sc.writeFrame(FrameWriteRequest{write: handlerPanicRST{st.id}, stream: st})
		if e != http.ErrAbortHandler {
			const size = 64 << 10
			buf := make([]byte, size)
			buf = buf[:runtime.Stack(buf, false)]
			sc.logf("http2: panic serving %v: %v\n%s", sc.conn.RemoteAddr(), e, buf)
		}
	}()
	if req.TLS == nil && sc.tlsState != nil {
		// x/net leaves it nil for a request whose :scheme is not https;
		// net/http's wrapper of the connection's Handler fills it in
		// before a goroutine-path handler runs. Without it the proxy would
		// skip the SNI check (421) and key the cache as plain HTTP.
		req.TLS = sc.tlsState
	}
	if !sc.inline.ServeInline(rw, req) && !rws.wroteHeader {
		rws.inline = false
		rws.handlerHeader = nil
		return false
	}
	if rws.inlineTooBig {
		// The answer is not whole: reset the stream rather than end it
		// as if it were (what a handler that panics gets).
		st.goneCancel() // Edge: and its client-gone hook (edge_gone.go)
		sc.writeFrame(FrameWriteRequest{write: handlerPanicRST{st.id}, stream: st})
		return true
	}
	// What runHandler does when the handler returns (the request has no
	// body to close).
	st.goneCancel() // Edge: and its client-gone hook (edge_gone.go)
	rw.handlerDone()
	inlineAnswers.Add(1)
	return true
}

// handlerFinal is what a handler goroutine left to write when it
// returned (at most a HEADERS frame, one DATA frame of the handler's
// last buffer, and trailers), sent to the serve loop in one message that
// also stands for handlerDoneMsg. x/net hands each frame over and waits
// until it is written, then sends handlerDoneMsg: three round trips
// between the two goroutines for a small answer. Nobody waits for these
// frames: like an inline answer's, they wait for flow control in the
// write queue, their stream open (so at most
// SETTINGS_MAX_CONCURRENT_STREAMS answers' last 4 KiB wait).
type handlerFinal struct {
	frames [3]FrameWriteRequest // HEADERS, DATA, trailers: no allocation for those
	n      int
	more   []FrameWriteRequest // past frames (not seen: kept for safety)
	data   writeData           // the first DATA frame's
	hdr    writeResHeaders     // the first HEADERS frame's (Edge: no allocation for it)
}

// writeFinal queues the frames a handler left when it returned (its
// handlerFinal), then writes them: written one by one as they were
// queued, the first (a small answer's HEADERS) went out alone and
// started the flush, whose goroutine then held back the second (its
// DATA) until the flush was done, and the DATA took a flush of its own:
// two flushes (two goroutines, two hand-overs to the connection's
// writer) per answer where one does.
func (sc *serverConn) writeFinal(v *handlerFinal) {
	sc.serveG.check()
	sc.inFrameScheduleLoop = true // writeFrame only queues
	for _, wr := range v.frames[:v.n] {
		sc.writeFrame(wr)
	}
	for _, wr := range v.more {
		sc.writeFrame(wr)
	}
	sc.inFrameScheduleLoop = false
	sc.handlerDone()
	sc.scheduleFrameWrite()
}

// addFinal adds wr to rws's handlerFinal.
func (rws *responseWriterState) addFinal(wr FrameWriteRequest) {
	if rws.fin == nil {
		rws.fin = &rws.stream.finStore // one per stream: its handler's end
	}
	f := rws.fin
	if f.n == len(f.frames) {
		f.more = append(f.more, wr)
		return
	}
	f.frames[f.n] = wr
	f.n++
}

// writeHeaders writes a HEADERS frame of the response: from the handler
// goroutine through the serve goroutine, or, inline, into the
// connection's write queue (h is the handler's no more), or, once the
// handler returned, into its handlerFinal.
//
// Edge: h is taken by value, so that a final HEADERS frame (the common
// case: the handler returned before its answer was flushed) goes into
// the handlerFinal, which comes with the stream, without an allocation.
func (rws *responseWriterState) writeHeaders(h writeResHeaders) error {
	if rws.final {
		if rws.fin == nil {
			rws.fin = &rws.stream.finStore
		}
		hp := &rws.fin.hdr
		if hp.streamID != 0 {
			hp = new(writeResHeaders) // a second one (trailers)
		}
		*hp = h
		rws.addFinal(FrameWriteRequest{write: hp, stream: rws.stream})
		return nil
	}
	hp := new(writeResHeaders)
	*hp = h
	if rws.inline {
		rws.conn.writeFrame(FrameWriteRequest{write: hp, stream: rws.stream})
		return nil
	}
	return rws.conn.writeHeaders(rws.stream, hp)
}

// writeData writes a DATA frame of the response, as writeHeaders does;
// inline or final, p is copied (it is the handler's buffer), except an
// inline answer's direct Write (rws.shared: see InlineHandler).
func (rws *responseWriterState) writeData(p []byte, endStream bool) error {
	if !rws.inline && !rws.final {
		return rws.conn.writeDataFromHandler(rws.stream, p, endStream)
	}
	st := rws.stream
	if rws.final {
		if rws.fin == nil {
			rws.fin = &rws.stream.finStore
		}
		d := &rws.fin.data
		if d.streamID != 0 {
			d = new(writeData) // a second one (not seen)
		}
		*d = writeData{st.id, append([]byte(nil), p...), endStream}
		rws.addFinal(FrameWriteRequest{write: d, stream: st})
		return nil
	}
	if !rws.shared {
		p = append([]byte(nil), p...)
	}
	wr := FrameWriteRequest{write: &writeData{st.id, p, endStream}, stream: st}
	if st.state == stateClosed {
		return errStreamClosed
	}
	rws.conn.writeFrame(wr)
	return nil
}

// handlerJob is a request for a handler goroutine.
type handlerJob struct {
	rw      *responseWriter
	req     *http.Request
	handler func(http.ResponseWriter, *http.Request)
}

// maxIdleWorkers bounds the handler goroutines a connection keeps
// waiting for its next request while it has streams open (and for
// workerLinger after its last closed): 16 covers a client with 10-16
// requests in flight per connection (h2load -m 10 in the bench); with 8,
// the 9th and 10th of each batch started a goroutine (16,845 in 5 s of
// bench h2-small).
const maxIdleWorkers = 16

// MaxIdleHandlers is maxIdleWorkers, for tests.
const MaxIdleHandlers = maxIdleWorkers

var handlerGoroutines atomic.Uint64

// HandlerGoroutinesStarted is the number of handler goroutines started
// since the process started, by every Server (for tests).
func HandlerGoroutinesStarted() uint64 { return handlerGoroutines.Load() }

// startHandler runs a handler on a goroutine of the connection that
// finished its last one and waits for the next (x/net starts one per
// request): such a goroutine keeps the stack the handlers grew, where a
// new goroutine starts small and grows it again, copying it, in every
// request (notes/h2hit.md). Up to maxIdleWorkers wait per connection,
// until it ends or has had no stream open for workerLinger; the others
// end with their handler.
func (sc *serverConn) startHandler(rw *responseWriter, req *http.Request, handler func(http.ResponseWriter, *http.Request)) {
	j := handlerJob{rw, req, handler}
	p := sc.workCh.Load()
	if p == nil || sc.idleClosed {
		c := make(chan handlerJob)
		p = &c
		sc.workCh.Store(p)
		sc.idleClosed = false
	}
	select {
	case *p <- j:
	default:
		handlerGoroutines.Add(1)
		go sc.handlerWorker(j)
	}
}

// workerLinger is how long a connection with no stream open keeps its
// idle handler goroutines (between workerLinger and twice that): a client
// that sends its next requests as soon as the last answers came (h2load,
// a page's next batch of subresources) finds them still there. Retiring
// them the moment the last stream closed made such a connection start
// most of its requests on new goroutines, each growing its stack again
// (bench h2-small, 50 connections x 10 streams: 67,524 goroutines
// started for 72,000 requests in 5 s).
const workerLinger = time.Second

// noteNoStreams runs when the connection's last open stream closed. It
// arms a timer that retires the idle handler goroutines if the
// connection has had no stream since (onRetireTimerMsg).
func (sc *serverConn) noteNoStreams() {
	sc.serveG.check()
	sc.idleGen++
	sc.armRetire()
}

func (sc *serverConn) armRetire() {
	if sc.retireArmed || sc.idleClosed || sc.workCh.Load() == nil {
		return // armed already, or nothing to retire
	}
	sc.retireArmed = true
	sc.retireGen = sc.idleGen
	if sc.retireTimer == nil {
		sc.retireTimer = time.AfterFunc(workerLinger, sc.onRetireTimer)
	} else {
		sc.retireTimer.Reset(workerLinger)
	}
}

func (sc *serverConn) onRetireTimer() { sc.sendServeMsg(retireTimerMsg) }

// onRetireTimerMsg retires the idle handler goroutines if the connection
// has had no stream open since the timer was armed. If it had some and
// has none now, it waits another workerLinger; if it has some now, the
// next time it has none arms the timer again.
func (sc *serverConn) onRetireTimerMsg() {
	sc.serveG.check()
	sc.retireArmed = false
	if len(sc.streams) != 0 {
		return
	}
	if sc.idleGen == sc.retireGen {
		sc.retireIdleWorkers()
		return
	}
	sc.armRetire()
}

// retireIdleWorkers ends the handler goroutines waiting for a request
// once the connection has had no stream for workerLinger, or has ended,
// by closing the channel they wait on (a fresh one is made when a
// handler next starts): a connection that stays idle (keep-alive, up to
// limits.idle_timeout) then holds none, where each would keep its stack
// (reviewed: 160 goroutines for 20 idle connections, 1.8 MiB of stacks).
// Under load a connection with streams open keeps them. A worker that
// starts waiting after the close finds it closed and leaves. Only the
// serve goroutine sends on the channel or closes it.
func (sc *serverConn) retireIdleWorkers() {
	sc.serveG.check()
	if p := sc.workCh.Load(); p != nil && !sc.idleClosed {
		close(*p)
		sc.idleClosed = true
	}
}

// handlerWorker runs j's handler, then waits for the connection's next
// request, until the connection retires it. It waits on one channel (a
// receive, not a select over the retirement and the connection's end as
// before: 3.4 % of the edge's CPU in bench h2-small was that select).
func (sc *serverConn) handlerWorker(j handlerJob) {
	for {
		sc.runHandler(j.rw, j.req, j.handler)
		if sc.idleWorkers.Add(1) > maxIdleWorkers {
			sc.idleWorkers.Add(-1)
			return
		}
		work := *sc.workCh.Load() // made by startHandler before this worker's first job
		var ok bool
		j, ok = <-work
		sc.idleWorkers.Add(-1)
		if !ok {
			return
		}
	}
}
