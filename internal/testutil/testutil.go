// Package testutil holds the helpers that tests of several packages share.
// It imports nothing of Edge, so that any package's own tests may use it;
// package fixture makes Edge's stores, certificates and tables. Only tests
// import either.
package testutil

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// WaitFor polls cond until it holds, and fails the test if it does not
// within 10 seconds. The polls start a few milliseconds apart and slow to
// 50 ms (conditions that ask a node over HTTP, in tests running in
// parallel, would otherwise keep the CPUs busy). detail, if given, is
// called on a time-out and its text added to the failure (a log, the last
// answer).
func WaitFor(t testing.TB, what string, cond func() bool, detail ...func() string) {
	t.Helper()
	WaitForWithin(t, 10*time.Second, what, cond, detail...)
}

// WaitForWithin is WaitFor with its own limit.
func WaitForWithin(t testing.TB, limit time.Duration, what string, cond func() bool, detail ...func() string) {
	t.Helper()
	pause := 5 * time.Millisecond
	for deadline := time.Now().Add(limit); !cond(); pause = min(2*pause, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			more := ""
			for _, d := range detail {
				more += "\n" + d()
			}
			t.Fatalf("timed out after %s waiting for %s%s", limit, what, more)
		}
		time.Sleep(pause)
	}
}

// SyncBuffer is a bytes.Buffer safe for a node's logger and the test that
// reads it. The zero value is ready.
type SyncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{} // closed by the next Write, for Await
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written != nil {
		close(s.written)
		s.written = nil
	}
	return s.b.Write(p)
}

// Await returns true once the buffer holds substr, woken by the writes
// (no polling), or false after limit.
func (s *SyncBuffer) Await(substr string, limit time.Duration) bool {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if bytes.Contains(s.b.Bytes(), []byte(substr)) {
			s.mu.Unlock()
			return true
		}
		if s.written == nil {
			s.written = make(chan struct{})
		}
		written := s.written
		s.mu.Unlock()
		select {
		case <-written:
		case <-timer.C:
			return false
		}
	}
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
