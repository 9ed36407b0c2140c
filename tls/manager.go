package tls

import (
	"context"
	"crypto/tls"
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
	"golang.org/x/sync/singleflight"
)

// Manager picks the certificate for each handshake. Its zero value is not
// usable; make one with NewManager.
type Manager struct {
	certs *cert.Certs
	log   *zap.Logger

	props atomic.Pointer[property.Table]
	snap  atomic.Pointer[snapshot]
	mu    sync.Mutex      // serialises writers of snap and gone
	gone  map[string]bool // ids deleted since start (ids are never reused)

	loads       singleflight.Group // lazy loads under way, by id/version
	retryDelay  time.Duration      // a failed lazy load is tried again after this
	loadTimeout time.Duration      // bound of one lazy load
	now         func() time.Time

	warmMu     sync.Mutex // guards warmCancel and closed
	warmCancel context.CancelFunc
	closed     bool
	warms      sync.WaitGroup

	// OnHandshake, if set before serving, is called with "ok" or
	// "unrecognized_name" for every certificate choice (for metrics).
	OnHandshake func(result string)
	// OnWarm, if set before Load or Warm, is called when a warm-up has
	// read every version, with how many it read.
	OnWarm func(versions int)
}

// snapshot is an immutable view of the serving certificates.
type snapshot struct {
	byName map[string]*entry
	byID   map[string]*entry
}

// Bounds of the lazy load of a certificate at its first handshake.
const (
	// DefaultRetryDelay is how long handshakes are answered without a
	// certificate after its load failed, before one tries again: short,
	// so a store outage does not outlast itself, yet enough that the
	// handshakes of a busy name do not all hit a store that is down.
	DefaultRetryDelay = 2 * time.Second
	// DefaultLoadTimeout bounds one load (one store read and a parse).
	DefaultLoadTimeout = 3 * time.Second
	// refreshTimeout bounds the refresh that follows a write.
	refreshTimeout = 10 * time.Second
)

// NewManager returns a Manager serving the server certificates of certs. A
// nil logger logs nothing. Call Load before serving.
func NewManager(certs *cert.Certs, log *zap.Logger) *Manager {
	if log == nil {
		log = zap.NewNop()
	}
	m := &Manager{certs: certs, log: log, gone: map[string]bool{},
		retryDelay: DefaultRetryDelay, loadTimeout: DefaultLoadTimeout, now: time.Now}
	m.snap.Store(&snapshot{byName: map[string]*entry{}, byID: map[string]*entry{}})
	certs.OnChange(func(id string) {
		ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
		defer cancel()
		if err := m.Refresh(ctx, id); err != nil {
			m.log.Error("certificate refresh failed", zap.String("certificate", id), zap.Error(err))
		}
	})
	return m
}

// Load rebuilds the whole snapshot from the certificate records, then warms
// the key pairs up in the background. An entry whose version and name did
// not change is kept as it is, parsed or warmed: after a store outage the
// first handshakes must not all go to the store. When Load fails (the store
// does not answer) the snapshot serving stays.
func (m *Manager) Load(ctx context.Context) error {
	if err := m.LoadCold(ctx, nil); err != nil {
		return err
	}
	m.Warm()
	return nil
}

// Warm starts the background warm-up of the snapshot serving now (see
// Load), stopping one under way.
func (m *Manager) Warm() { m.startWarm(m.snap.Load()) }

// LoadCold is Load without the warm-up, which the caller starts with Warm
// when it suits it (the node's start: once it serves, for the warm-up's
// reading of every version took a fifth of the CPU of the start), and
// that also hands each record it reads, of every type, to each (when not
// nil): the start learns the certificates its properties name from this
// one pass instead of listing them again. Until Warm, each certificate
// loads at its first handshake.
func (m *Manager) LoadCold(ctx context.Context, each func(cert.Summary)) error {
	old := m.snap.Load()
	s := &snapshot{byName: make(map[string]*entry, len(old.byID)), byID: make(map[string]*entry, len(old.byID))}
	err := m.certs.EachRecord(ctx, func(r cert.Summary) {
		if each != nil {
			each(r)
		}
		if r.Type != cert.TypeServer {
			return
		}
		e := old.byID[r.ID]
		if e == nil || e.version != r.Version || e.name != r.Name {
			e = &entry{id: r.ID, name: r.Name, version: r.Version, notAfter: r.NotAfter}
		}
		s.byName[e.name], s.byID[e.id] = e, e
	})
	if err != nil {
		return fmt.Errorf("loading certificates: %w", err)
	}
	m.mu.Lock()
	m.mergeNewer(s)
	m.snap.Store(s)
	m.mu.Unlock()
	return nil
}

// startWarm warms s up in the background, stopping the warm-up of an older
// snapshot first (a new Load supersedes it).
func (m *Manager) startWarm(s *snapshot) {
	m.warmMu.Lock()
	defer m.warmMu.Unlock()
	if m.closed {
		return
	}
	if m.warmCancel != nil {
		m.warmCancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.warmCancel = cancel
	m.warms.Go(func() {
		defer cancel()
		m.warm(ctx, s)
	})
}

// Close stops the background warm-up and waits for it. Handshakes keep
// working; what is not warmed loads at its first handshake.
func (m *Manager) Close() {
	m.warmMu.Lock()
	m.closed = true
	if m.warmCancel != nil {
		m.warmCancel()
	}
	m.warmMu.Unlock()
	m.warms.Wait()
}

// mergeNewer keeps in s what Refresh stored while Load was reading: a
// higher version than s read, and the deletions. m.mu is held.
func (m *Manager) mergeNewer(s *snapshot) {
	for id, cur := range m.snap.Load().byID {
		if e := s.byID[id]; e != nil && cur.version > e.version {
			if s.byName[e.name] == e {
				delete(s.byName, e.name)
			}
			s.byName[cur.name], s.byID[id] = cur, cur
		}
	}
	for id := range m.gone {
		if e := s.byID[id]; e != nil {
			delete(s.byID, id)
			if s.byName[e.name] == e {
				delete(s.byName, e.name)
			}
		}
	}
}

// warm reads every version of s into memory as DER, in batches, so that
// the node no longer needs the store to serve them.
func (m *Manager) warm(ctx context.Context, s *snapshot) {
	start := time.Now()
	n, err := m.certs.EachVersion(ctx, func(id string, v *cert.Version) {
		e := s.byID[id]
		if e == nil || e.version != v.Version || e.der.Load() != nil || e.cert.Load() != nil {
			return
		}
		if p, err := toDER(v); err == nil {
			e.der.Store(p)
		}
	})
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("warming certificates up; the rest load at their first handshake", zap.Error(err))
		}
		return
	}
	if n > 10_000 {
		// Decoding many versions left garbage several times the size of
		// what stays; give it back to the system now rather than over the
		// next minutes.
		debug.FreeOSMemory()
	}
	m.log.Debug("certificates in memory", zap.Int("versions", n), zap.Duration("took", time.Since(start)))
	if m.OnWarm != nil {
		m.OnWarm(n)
	}
}

// Refresh reloads one certificate (by id) into the snapshot, or drops it if
// it is gone. A version that does not parse leaves the previous one serving.
// A write that changed only the record (status, renewal state, notices),
// most writes, leaves a healthy entry alone: no version read, no parse, no
// copy of the index; it replaces an entry whose load failed. An entry is
// never replaced by a lower version: a local write and the etcd watch may
// refresh the same certificate at once, and the one that read first may
// finish last.
func (m *Manager) Refresh(ctx context.Context, id string) error {
	if rec, err := m.certs.Get(ctx, id); err == nil {
		if e := m.snap.Load().byID[id]; e != nil && rec.Type == cert.TypeServer && e.name == rec.Name &&
			(e.version > rec.Version || e.version == rec.Version && e.healthy()) {
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
	prev := old.byID[id]
	if errors.Is(err, cert.ErrNotFound) {
		m.gone[id] = true
	}
	switch {
	case e != nil && m.gone[id]:
		return nil // read before a deletion that is already applied
	case e != nil && prev != nil && prev.version > e.version:
		return nil // a newer version is already served
	case e == nil && prev == nil:
		return nil
	}
	s := &snapshot{byName: maps.Clone(old.byName), byID: maps.Clone(old.byID)}
	if prev != nil {
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

// SetProperties swaps in the property table used to map names to
// certificates.
func (m *Manager) SetProperties(t *property.Table) { m.props.Store(t) }

// Certificate returns the serving certificate with that store name, or nil.
func (m *Manager) Certificate(name string) *tls.Certificate {
	return m.certificate(context.Background(), name)
}

func (m *Manager) certificate(ctx context.Context, name string) *tls.Certificate {
	e := m.snap.Load().byName[name]
	if e == nil {
		return nil
	}
	c, _ := m.get(ctx, e) // a failed load is logged once, by the load
	return c
}

// GetCertificate implements tls.Config.GetCertificate. An unknown name
// returns no certificate and no error, which crypto/tls answers with the
// unrecognized_name alert when the config holds no static certificate.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := m.lookup(hello)
	if m.OnHandshake != nil {
		if c == nil {
			m.OnHandshake("unrecognized_name")
		} else {
			m.OnHandshake("ok")
		}
	}
	return c, nil
}

func (m *Manager) lookup(hello *tls.ClientHelloInfo) *tls.Certificate {
	if hello.ServerName == "" {
		return nil
	}
	name, err := property.Normalize(hello.ServerName)
	if err != nil {
		return nil
	}
	p := m.props.Load().Lookup(name)
	if p == nil || p.TLS.Certificate == "" {
		return nil
	}
	e := m.snap.Load().byName[p.TLS.Certificate]
	if e == nil {
		return nil
	}
	if c := e.cert.Load(); c != nil {
		return c // the common case: no context needed
	}
	ctx := hello.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	c, _ := m.get(ctx, e)
	return c
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
