package tls

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/edge-cdn/edge/cert"
	"go.uber.org/zap"
)

// entry is one served certificate. At start only the records are read, so
// a node with 100,000 certificates is ready at once; a background warm-up
// then keeps each key pair in memory as DER (about half its PEM size), and
// the first handshake that needs a certificate parses it, loading it from
// the store itself if the warm-up has not reached it yet. A new version is
// parsed before it replaces the old one.
//
// Only a success is kept: a load that failed (store unreachable, corrupt
// version) is tried again by a handshake at least retryDelay later, so one
// outage does not take a certificate out of service until a restart.
type entry struct {
	id, name string
	version  int
	notAfter time.Time
	der      atomic.Pointer[derPair]         // warmed up, not yet parsed
	cert     atomic.Pointer[tls.Certificate] // parsed: what handshakes use
	failed   atomic.Pointer[loadFailure]     // the last failed load, nil after a success
}

// loadFailure is a failed lazy load and when it happened.
type loadFailure struct {
	at  time.Time
	err error
}

// healthy reports whether the entry serves or may still load: it has not
// failed since its last success.
func (e *entry) healthy() bool { return e.failed.Load() == nil }

// derPair is a version's chain and key, decoded from PEM.
type derPair struct {
	chain [][]byte
	key   []byte
}

func toDER(v *cert.Version) (*derPair, error) {
	var p derPair
	rest := []byte(v.CertPEM)
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			p.chain = append(p.chain, b.Bytes)
		}
	}
	kb, _ := pem.Decode([]byte(v.KeyPEM))
	if len(p.chain) == 0 || kb == nil {
		return nil, errors.New("version holds no PEM certificate or key")
	}
	p.key = kb.Bytes
	return &p, nil
}

func parseDER(p *derPair) (*tls.Certificate, error) {
	leaf, err := x509.ParseCertificate(p.chain[0])
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(p.key)
	if err != nil {
		if k, err2 := x509.ParseECPrivateKey(p.key); err2 == nil {
			key, err = k, nil
		} else if k, err2 := x509.ParsePKCS1PrivateKey(p.key); err2 == nil {
			key, err = k, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok || !cert.PublicKeyEqual(leaf.PublicKey, signer.Public()) {
		return nil, errors.New("the private key does not match the certificate")
	}
	return &tls.Certificate{Certificate: p.chain, PrivateKey: key, Leaf: leaf}, nil
}

// get returns e's parsed certificate, parsing (and if need be reading) it
// on first use. Concurrent first uses share one load (singleflight); each
// caller waits no longer than its own ctx (the handshake's). The shared
// load keeps ctx's values but not its cancellation, so a client that hangs
// up does not fail the others, and is bounded by loadTimeout.
func (m *Manager) get(ctx context.Context, e *entry) (*tls.Certificate, error) {
	if c := e.cert.Load(); c != nil {
		return c, nil
	}
	if f := e.failed.Load(); f != nil && m.now().Sub(f.at) < m.retryDelay {
		return nil, f.err
	}
	key := e.id + "/" + strconv.Itoa(e.version)
	ch := m.loads.DoChan(key, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.loadTimeout)
		defer cancel()
		return m.load(lctx, e)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		c := r.Val.(*tls.Certificate)
		// Another entry of the same version (an older snapshot) may have
		// run the load: keep the result here too.
		if e.cert.CompareAndSwap(nil, c) {
			e.der.Store(nil)
			e.failed.Store(nil)
		}
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// load parses e, reading its version from the store when the warm-up has
// not reached it. A failure is remembered for retryDelay, a success for
// good.
func (m *Manager) load(ctx context.Context, e *entry) (*tls.Certificate, error) {
	if c := e.cert.Load(); c != nil {
		return c, nil
	}
	p := e.der.Load()
	var err error
	if p == nil {
		var v *cert.Version
		if v, err = m.certs.VersionOf(ctx, e.id, e.version); err == nil {
			p, err = toDER(v)
		}
	}
	var c *tls.Certificate
	if err == nil {
		c, err = parseDER(p)
	}
	if err != nil {
		e.failed.Store(&loadFailure{at: m.now(), err: err})
		m.log.Error("stored certificate does not load; handshakes try again shortly",
			zap.String("certificate", e.name), zap.Int("version", e.version), zap.Error(err))
		return nil, err
	}
	e.cert.Store(c)
	e.der.Store(nil) // parsed: the DER lives on in c
	e.failed.Store(nil)
	return c, nil
}

// parseEntry parses a version at once: a new version that does not parse
// must not replace the one serving.
func parseEntry(rec *cert.Certificate, v *cert.Version) (*entry, error) {
	e := &entry{id: rec.ID, name: rec.Name, version: v.Version, notAfter: v.NotAfter}
	p, err := toDER(v)
	if err != nil {
		return nil, err
	}
	c, err := parseDER(p)
	if err != nil {
		return nil, err
	}
	e.cert.Store(c)
	return e, nil
}
