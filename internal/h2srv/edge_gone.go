// Copyright 2026 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Edge's changes to x/net/http2's server (see NOTICE).

package h2srv

import (
	"context"
	"net/http"
	"sync"
)

// Edge: the client-gone hook of a stream (SetClientGone/ClearClientGone,
// the interface the proxy's watchClient looks for on a ResponseWriter, as
// internal/h1's response offers it). The proxy watches the request's
// context for the whole exchange with the origin; context.AfterFunc on
// the stream's context cost a registration (the afterFuncCtx, its stop
// func, the stream context's Done channel and its children map: ~4 % of
// the CPU of a proxied HTTP/2 request). The hook is a field of the
// stream: set and cleared under the stream's lock, called once when the
// stream's context is cancelled — by the stream's end (goneCancel, which
// stands for cancelCtx everywhere) or by the connection's base context
// (the serve loop fires the hooks of its open streams, baseGone).

// goneHook is a stream's hook state, guarded by mu.
type goneHook struct {
	mu        sync.Mutex
	f         func() // nil: none set
	fired     bool   // f was called (or is being called) since it was set
	cancelled bool   // the stream's context was cancelled
}

// goneCancel cancels the stream's context and calls its hook, if one is
// set, on a goroutine of its own (as context.AfterFunc does: the hook may
// take locks the caller — the serve goroutine — must not wait for).
func (st *stream) goneCancel() {
	st.cancelCtx()
	st.fireGone()
}

// fireGone marks the stream's context cancelled and starts its hook.
func (st *stream) fireGone() {
	h := &st.gone
	h.mu.Lock()
	h.cancelled = true
	f := h.f
	if f != nil {
		h.f, h.fired = nil, true
	}
	h.mu.Unlock()
	if f != nil {
		go f()
	}
}

// baseGone is run by the serve loop once the connection's base context
// is cancelled (server shutdown): the streams' contexts were cancelled
// with it, so their hooks are due.
func baseGone(sc *serverConn) {
	sc.serveG.check()
	for _, st := range sc.streams {
		st.fireGone()
	}
}

// watchBase arranges for baseGone to run on the serve loop when the base
// context is cancelled while the connection is served; the returned func
// stops that.
func (sc *serverConn) watchBase() (stop func() bool) {
	if sc.baseCtx.Done() == nil {
		return func() bool { return true }
	}
	return context.AfterFunc(sc.baseCtx, func() { sc.sendServeMsg(baseGone) })
}

// SetClientGone arranges for f to be called once, on a goroutine of its
// own, when ctx — which must be this stream's own context, the
// request's — is cancelled: the client reset the stream or went, the
// connection ended, the server shut down. It returns false, doing nothing,
// for any other context or once the handler is done (then use
// context.AfterFunc). If the context is cancelled already, f is called at
// once. The handler clears it with ClearClientGone before it returns. One
// hook at a time: a second replaces the first.
func (w *responseWriter) SetClientGone(ctx context.Context, f func()) bool {
	rws := w.rws
	if rws == nil || rws.handlerDone || ctx != rws.stream.ctx {
		return false
	}
	h := &rws.stream.gone
	h.mu.Lock()
	if h.cancelled || ctx.Err() != nil {
		// Cancelled with the base context before the serve loop got to
		// this stream, or by the stream's end.
		h.cancelled, h.f, h.fired = true, nil, true
		h.mu.Unlock()
		f()
		return true
	}
	h.f, h.fired = f, false
	h.mu.Unlock()
	return true
}

// ClearClientGone removes the hook SetClientGone set. fired reports that
// f was called (or is being called); otherwise it never will be.
func (w *responseWriter) ClearClientGone() (fired bool) {
	rws := w.rws
	if rws == nil {
		return false
	}
	h := &rws.stream.gone
	h.mu.Lock()
	h.f = nil
	fired = h.fired
	h.mu.Unlock()
	return fired
}

var _ interface {
	SetClientGone(context.Context, func()) bool
	ClearClientGone() bool
} = (*responseWriter)(nil)

var _ http.ResponseWriter = (*responseWriter)(nil)
