package tls

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/fixture"
	"github.com/edge-cdn/edge/store"
)

// fakeClock is an injected clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// ticketServer is one node's TLS port: a fixed certificate and the shared
// ticket keys. Each connection completes its handshake, sends a byte (so
// the client reads the session tickets sent before it) and waits for the
// client to close.
func ticketServer(t *testing.T, cert tls.Certificate, k *TicketKeys) string {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	k.Apply(cfg)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg.Clone()) // as ServeTLS does
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write([]byte{1}); err != nil {
					return
				}
				_, _ = c.Read(make([]byte, 1))
			}()
		}
	}()
	return ln.Addr().String()
}

// connect makes one TLS connection with the client's session cache and
// reports whether it resumed a session.
func connect(t *testing.T, addr string, cache tls.ClientSessionCache, version uint16) bool {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{
		ServerName: "a.example", InsecureSkipVerify: true, ClientSessionCache: cache, MaxVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	return c.ConnectionState().DidResume
}

func storedKeys(t *testing.T, st store.Store) []ticketKey {
	t.Helper()
	var keys []ticketKey
	err := st.View(context.Background(), func(tx store.Tx) error {
		b, err := tx.Get(store.Meta, TicketKeysKey)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &keys)
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestTicketsResumeAcrossTheFleet: a ticket that node A issued resumes a
// session on node B sharing the store, over TLS 1.3 and 1.2; keys rotate
// after a day, the previous key still decrypts, and a key two rotations
// old no longer does.
func TestTicketsResumeAcrossTheFleet(t *testing.T) {
	ctx := context.Background()
	st := fixture.Bolt(t)
	clock := &fakeClock{t: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	v := fixture.SelfSigned(t, "a.example")
	cert, err := tls.X509KeyPair([]byte(v.CertPEM), []byte(v.KeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	nodeA := NewTicketKeys(st, TicketOptions{Now: clock.now})
	nodeB := NewTicketKeys(st, TicketOptions{Now: clock.now})
	for _, k := range []*TicketKeys{nodeA, nodeB} {
		if err := k.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if keys := storedKeys(t, st); len(keys) != 1 {
		t.Fatalf("%d keys stored after two nodes started, want 1", len(keys))
	}
	addrA, addrB := ticketServer(t, cert, nodeA), ticketServer(t, cert, nodeB)
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		cache := tls.NewLRUClientSessionCache(4)
		if connect(t, addrA, cache, version) {
			t.Fatal("first connection resumed")
		}
		if !connect(t, addrB, cache, version) {
			t.Errorf("TLS %x: node A's ticket did not resume on node B", version)
		}
	}

	// A ticket from before a rotation still resumes after it.
	before := tls.NewLRUClientSessionCache(4)
	connect(t, addrA, before, tls.VersionTLS13)
	first := storedKeys(t, st)[0]
	clock.add(23 * time.Hour)
	if err := nodeB.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if keys := storedKeys(t, st); len(keys) != 1 {
		t.Fatalf("rotated before a day: %d keys", len(keys))
	}
	clock.add(2 * time.Hour)
	if err := nodeB.Sync(ctx); err != nil { // B rotates ...
		t.Fatal(err)
	}
	if err := nodeA.Sync(ctx); err != nil { // ... A reads B's key
		t.Fatal(err)
	}
	keys := storedKeys(t, st)
	if len(keys) != 2 || !keys[1].Created.Equal(first.Created) || !keys[0].Created.Equal(clock.now()) {
		t.Fatalf("after a day: keys %+v, want a new one in front of the first", keys)
	}
	if !connect(t, addrA, before, tls.VersionTLS13) {
		t.Error("a ticket from before the rotation did not resume")
	}
	after := tls.NewLRUClientSessionCache(4)
	connect(t, addrB, after, tls.VersionTLS13)
	if !connect(t, addrA, after, tls.VersionTLS13) {
		t.Error("a ticket with the new key did not resume on the other node")
	}

	// Two rotations later the first key is gone.
	stale := tls.NewLRUClientSessionCache(4)
	connect(t, addrA, stale, tls.VersionTLS13)
	for range 2 {
		clock.add(25 * time.Hour)
		for _, k := range []*TicketKeys{nodeA, nodeB} {
			if err := k.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if keys := storedKeys(t, st); len(keys) != 2 {
		t.Errorf("%d keys kept, want 2", len(keys))
	}
	if connect(t, addrB, stale, tls.VersionTLS13) {
		t.Error("a ticket two rotations old resumed")
	}
}
