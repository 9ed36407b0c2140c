package tls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/edge-cdn/edge/property"
	"go.uber.org/zap"
)

// Manager picks the certificate for each handshake. Its zero value is not
// usable; make one with NewManager.
type Manager struct {
	certs *Certs
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

type entry struct {
	id, name string
	version  int
	cert     *tls.Certificate
}

// NewManager returns a Manager serving the server certificates of certs. A
// nil logger logs nothing. Call Load before serving.
func NewManager(certs *Certs, log *zap.Logger) *Manager {
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

// Load rebuilds the whole snapshot from the store. A certificate whose
// current version does not parse is logged and left out.
func (m *Manager) Load(ctx context.Context) error {
	s := &snapshot{byName: map[string]*entry{}, byID: map[string]*entry{}}
	err := m.certs.each(ctx, func(rec *Certificate, v *Version) error {
		if rec.Type != TypeServer {
			return nil
		}
		e, err := parseEntry(rec, v)
		if err != nil {
			m.log.Error("stored certificate does not load", zap.String("certificate", rec.Name), zap.Error(err))
			return nil
		}
		s.byName[e.name], s.byID[e.id] = e, e
		return nil
	})
	if err != nil {
		return fmt.Errorf("loading certificates: %w", err)
	}
	m.mu.Lock()
	m.snap.Store(s)
	m.mu.Unlock()
	return nil
}

// Refresh reloads one certificate (by id) into the snapshot, or drops it if
// it is gone. A version that does not parse leaves the previous one serving.
func (m *Manager) Refresh(ctx context.Context, id string) error {
	rec, v, err := m.certs.Current(ctx, id)
	var e *entry
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return err
	case rec.Type == TypeServer:
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

func parseEntry(rec *Certificate, v *Version) (*entry, error) {
	c, err := tls.X509KeyPair([]byte(v.CertPEM), []byte(v.KeyPEM))
	if err != nil {
		return nil, err
	}
	return &entry{id: rec.ID, name: rec.Name, version: v.Version, cert: &c}, nil
}

// SetProperties swaps in the property table used to map names to
// certificates.
func (m *Manager) SetProperties(t *property.Table) { m.props.Store(t) }

// Certificate returns the serving certificate with that store name, or nil.
func (m *Manager) Certificate(name string) *tls.Certificate {
	if e := m.snap.Load().byName[name]; e != nil {
		return e.cert
	}
	return nil
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

// Each calls fn with the name and leaf of every served certificate.
func (m *Manager) Each(fn func(name string, leaf *x509.Certificate)) {
	for name, e := range m.snap.Load().byName {
		if e.cert.Leaf != nil {
			fn(name, e.cert.Leaf)
		}
	}
}
