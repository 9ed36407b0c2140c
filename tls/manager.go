package tls

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/property"
	"go.uber.org/zap"
)

// Manager picks the certificate for each handshake. Its zero value is not
// usable; make one with NewManager.
type Manager struct {
	certs *cert.Certs
	log   *zap.Logger

	props atomic.Pointer[property.Table]
	snap  atomic.Pointer[snapshot]
	mu    sync.Mutex // serialises writers of snap

	// OnHandshake, if set before serving, is called with "ok" or
	// "unrecognized_name" for every certificate choice (for metrics).
	OnHandshake func(result string)
}

// snapshot is an immutable view of the serving certificates.
type snapshot struct {
	byName map[string]*entry
	byID   map[string]*entry
}

// entry is one served certificate. At start only the records are read, so
// a node with 100,000 certificates is ready at once; a background warm-up
// then keeps each key pair in memory as DER (about half its PEM size), and
// the first handshake that needs a certificate parses it (once), loading it
// from the store itself if the warm-up has not reached it yet. A new
// VersionOf is parsed before it replaces the old one.
type entry struct {
	id, name string
	version  int
	notAfter time.Time
	der      atomic.Pointer[derPair]
	load     func() (*cert.Version, error) // reads this version from the store

	once sync.Once
	cert *tls.Certificate
	err  error
}

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

func (e *entry) get() *tls.Certificate {
	e.once.Do(func() {
		p := e.der.Load()
		if p == nil {
			v, err := e.load()
			if err == nil {
				p, err = toDER(v)
			}
			if err != nil {
				e.err = err
				return
			}
		}
		e.cert, e.err = parseDER(p)
		e.der.Store(nil) // parsed: the DER lives on in e.cert
	})
	return e.cert
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

// NewManager returns a Manager serving the server certificates of certs. A
// nil logger logs nothing. Call Load before serving.
func NewManager(certs *cert.Certs, log *zap.Logger) *Manager {
	if log == nil {
		log = zap.NewNop()
	}
	m := &Manager{certs: certs, log: log}
	m.snap.Store(&snapshot{byName: map[string]*entry{}, byID: map[string]*entry{}})
	certs.OnChange(func(id string) {
		if err := m.Refresh(context.Background(), id); err != nil {
			m.log.Error("certificate refresh failed", zap.String("certificate", id), zap.Error(err))
		}
	})
	return m
}

// Load rebuilds the whole snapshot from the certificate records, then warms
// the key pairs up in the background.
func (m *Manager) Load(ctx context.Context) error {
	s := &snapshot{byName: map[string]*entry{}, byID: map[string]*entry{}}
	err := m.certs.EachRecord(ctx, func(id, name, typ string, version int, notAfter time.Time) {
		if typ != cert.TypeServer {
			return
		}
		e := &entry{id: id, name: name, version: version, notAfter: notAfter}
		e.load = func() (*cert.Version, error) { return m.certs.VersionOf(context.Background(), id, version) }
		s.byName[e.name], s.byID[e.id] = e, e
	})
	if err != nil {
		return fmt.Errorf("loading certificates: %w", err)
	}
	m.mu.Lock()
	m.snap.Store(s)
	m.mu.Unlock()
	go m.warm(s)
	return nil
}

// warm reads every version of s into memory as DER, in batches, so that
// the node no longer needs the store to serve them.
func (m *Manager) warm(s *snapshot) {
	start := time.Now()
	n, err := m.certs.EachVersion(context.Background(), func(id string, v *cert.Version) {
		e := s.byID[id]
		if e == nil || e.version != v.Version || e.der.Load() != nil {
			return
		}
		if p, err := toDER(v); err == nil {
			e.der.Store(p)
		}
	})
	if err != nil {
		m.log.Warn("warming certificates up; the rest load at their first handshake", zap.Error(err))
		return
	}
	if n > 10_000 {
		// Decoding many versions left garbage several times the size of
		// what stays; give it back to the system now rather than over the
		// next minutes.
		debug.FreeOSMemory()
	}
	m.log.Debug("certificates in memory", zap.Int("versions", n), zap.Duration("took", time.Since(start)))
}

// Refresh reloads one certificate (by id) into the snapshot, or drops it if
// it is gone. A version that does not parse leaves the previous one serving.
// A write that changed only the record (status, renewal state, notices),
// most writes, leaves the snapshot alone: no version read, no parse, no copy
// of the index.
func (m *Manager) Refresh(ctx context.Context, id string) error {
	if rec, err := m.certs.Get(ctx, id); err == nil {
		if e := m.snap.Load().byID[id]; e != nil && rec.Type == cert.TypeServer && e.version == rec.Version && e.name == rec.Name {
			return nil
		}
	}
	rec, v, err := m.certs.Current(ctx, id)
	var e *entry
	switch {
	case errors.Is(err, cert.ErrNotFound):
	case err != nil:
		return err
	case rec.Type == cert.TypeServer:
		if e, err = parseEntry(rec, v); err != nil {
			return fmt.Errorf("certificate %s version %d does not load, the previous version keeps serving: %w", rec.Name, v.Version, err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.snap.Load()
	s := &snapshot{byName: maps.Clone(old.byName), byID: maps.Clone(old.byID)}
	if prev, ok := s.byID[id]; ok {
		delete(s.byID, id)
		if s.byName[prev.name] == prev {
			delete(s.byName, prev.name)
		}
	}
	if e != nil {
		s.byName[e.name], s.byID[e.id] = e, e
	}
	m.snap.Store(s)
	return nil
}

// parseEntry parses a version at once: a new version that does not parse
// must not replace the one serving.
func parseEntry(rec *cert.Certificate, v *cert.Version) (*entry, error) {
	e := &entry{id: rec.ID, name: rec.Name, version: v.Version, notAfter: v.NotAfter}
	p, err := toDER(v)
	if err != nil {
		return nil, err
	}
	e.der.Store(p)
	if e.get() == nil {
		return nil, e.err
	}
	return e, nil
}

// SetProperties swaps in the property table used to map names to
// certificates.
func (m *Manager) SetProperties(t *property.Table) { m.props.Store(t) }

// Certificate returns the serving certificate with that store name, or nil.
func (m *Manager) Certificate(name string) *tls.Certificate {
	e := m.snap.Load().byName[name]
	if e == nil {
		return nil
	}
	c := e.get()
	if c == nil {
		m.log.Error("stored certificate does not load", zap.String("certificate", name), zap.Error(e.err))
	}
	return c
}

// GetCertificate implements tls.Config.GetCertificate. An unknown name
// returns no certificate and no error, which crypto/tls answers with the
// unrecognized_name alert when the config holds no static certificate.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := m.lookup(hello.ServerName)
	if m.OnHandshake != nil {
		if c == nil {
			m.OnHandshake("unrecognized_name")
		} else {
			m.OnHandshake("ok")
		}
	}
	return c, nil
}

func (m *Manager) lookup(sni string) *tls.Certificate {
	if sni == "" {
		return nil
	}
	name, err := property.Normalize(sni)
	if err != nil {
		return nil
	}
	p := m.props.Load().Lookup(name)
	if p == nil || p.TLS.Certificate == "" {
		return nil
	}
	return m.Certificate(p.TLS.Certificate)
}

// ServerConfig returns the TLS configuration of the HTTPS port: TLS 1.2 and
// 1.3 only, ECDHE key exchange with AEAD ciphers, HTTP/2 and HTTP/1.1.
func (m *Manager) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// TLS 1.3 suites are not configurable and are all AEAD.
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: m.GetCertificate,
	}
}

// Each calls fn with the name and expiry of every served certificate.
func (m *Manager) Each(fn func(name string, notAfter time.Time)) {
	for name, e := range m.snap.Load().byName {
		fn(name, e.notAfter)
	}
}
