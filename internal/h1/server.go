package h1

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves HTTP/1.x with a Handler, as http.Server does for HTTP/1.
type Server struct {
	Handler           http.Handler
	ReadHeaderTimeout time.Duration // from a request's first byte to its head's end; 0: none
	IdleTimeout       time.Duration // between requests on a connection; 0: none (as http.Server without ReadTimeout)
	// MaxHeaderBytes is the exact bound on a raw request head (request
	// line, fields and the blank line); over it: 431. 0: 1 MiB.
	MaxHeaderBytes int
	ErrorLog       *log.Logger                    // nil: none
	ConnState      func(net.Conn, http.ConnState) // as http.Server's

	mu         sync.Mutex
	listeners  map[*net.Listener]struct{}
	conns      map[*conn]struct{}
	inShutdown atomic.Bool
	noKeep     atomic.Bool
	listenerWG sync.WaitGroup
}

// Serve accepts connections on ln and serves each in its own goroutine.
// It returns http.ErrServerClosed after Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	if !s.trackListener(&ln, true) {
		return http.ErrServerClosed
	}
	defer s.trackListener(&ln, false)
	var delay time.Duration
	for {
		rw, err := ln.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Temporary (EMFILE...): back off as net/http does.
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else {
					delay = min(2*delay, time.Second)
				}
				s.logf("h1: Accept error: %v; retrying in %v", err, delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := s.newConn(rw)
		if c == nil {
			continue
		}
		go c.serve()
	}
}

// ServeConn serves one connection until it ends, in the caller's
// goroutine. c may be a *tls.Conn whose handshake is done: requests then
// carry its ConnectionState.
func (s *Server) ServeConn(rw net.Conn) {
	if c := s.newConn(rw); c != nil {
		c.serve()
	}
}

// newConn registers a connection; nil (and rw closed) after Shutdown.
func (s *Server) newConn(rw net.Conn) *conn {
	c := &conn{s: s, rwc: rw, since: time.Now()}
	s.mu.Lock()
	if s.inShutdown.Load() {
		s.mu.Unlock()
		rw.Close()
		return nil
	}
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	c.setState(http.StateNew)
	return c
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) trackListener(ln *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listeners == nil {
		s.listeners = map[*net.Listener]struct{}{}
	}
	if add {
		if s.inShutdown.Load() {
			return false
		}
		s.listeners[ln] = struct{}{}
		s.listenerWG.Add(1)
	} else {
		delete(s.listeners, ln)
		s.listenerWG.Done()
	}
	return true
}

func (s *Server) closeListeners() error {
	var err error
	for ln := range s.listeners {
		if cerr := (*ln).Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// shutdownPollMax bounds the wait between Shutdown's looks at its
// connections.
const shutdownPollMax = 500 * time.Millisecond

// Shutdown stops accepting, closes idle connections and waits for the
// others to finish their request and close, or for ctx to end (then it
// returns ctx's error, the connections left open). As http.Server's, it
// does not wait for hijacked connections, and a connection that has sent
// nothing for 5 seconds counts as idle.
func (s *Server) Shutdown(ctx context.Context) error {
	s.inShutdown.Store(true)
	s.mu.Lock()
	lnerr := s.closeListeners()
	s.mu.Unlock()
	s.listenerWG.Wait()
	poll := time.Millisecond
	t := time.NewTimer(poll)
	defer t.Stop()
	for {
		if s.closeIdle(true) {
			return lnerr
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			poll = min(2*poll, shutdownPollMax)
			t.Reset(poll)
		}
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.inShutdown.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.closeListeners()
	// Serve returns once its Accept fails; not waited for under the lock.
	for c := range s.conns {
		c.rwc.Close()
		delete(s.conns, c)
	}
	return err
}

// SetKeepAlivesEnabled(false) closes the idle connections and answers
// every request after with Connection: close.
func (s *Server) SetKeepAlivesEnabled(v bool) {
	s.noKeep.Store(!v)
	if !v {
		s.closeIdle(false)
	}
}

// closeIdle closes the connections waiting for a request (and, during
// Shutdown, those that have sent nothing for 5 seconds); it reports
// whether none is left.
func (s *Server) closeIdle(shutdown bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	quiet := time.Now().Add(-5 * time.Second)
	for c := range s.conns {
		st := c.state.Load()
		if shutdown && st == stateNew && c.since.Before(quiet) {
			c.state.CompareAndSwap(stateNew, stateIdle)
			st = stateIdle
		}
		if st == stateIdle && c.state.CompareAndSwap(stateIdle, stateClosing) {
			c.rwc.Close()
			delete(s.conns, c)
		}
	}
	return len(s.conns) == 0
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
	}
}

func (s *Server) maxHeaderBytes() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes
	}
	return http.DefaultMaxHeaderBytes
}
