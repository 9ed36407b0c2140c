package acme

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/store"
	"go.uber.org/zap"
)

// Config configures the ACME client.
type Config struct {
	Directory        string
	StagingDirectory string // tried first on a retry after a Failure; "" never
	Email            string
	AgreeTOS         bool
	CARoots          *x509.CertPool // extra roots for the ACME server; nil: system
	Profile          string
	// HTTPHost and HTTPPort are the node's bound HTTP listener: certmagic
	// finds the port taken and leaves the challenges to the node's own
	// HTTP handler, which answers them through ServeChallenge.
	HTTPHost string
	HTTPPort int
	// KnownHost reports whether a property serves host. Challenge requests
	// that miss the memory read the store (a probe or token another node
	// just stored may not have reached this node's memory yet); those for
	// such hosts have their own rate budget, apart from every other name's.
	// nil: no host is known that way.
	KnownHost func(host string) bool
	Logger    *zap.Logger
}

// Client obtains certificates through certmagic's ACMEIssuer (acmez/v3
// underneath) and answers HTTP-01 challenges. Accounts and challenge
// tokens live in the store, so every node sharing it answers every token.
type Client struct {
	cfg     *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	cache   *certmagic.Cache
	storage *acmeStorage
	pending *pending
	log     *zap.Logger
	staging bool
	known   func(string) bool

	// The account: its contact, the CA and the roots to reach it.
	email, directory string
	roots            *x509.CertPool
	acctMu           sync.Mutex
	acctSynced       bool
}

// Store is what the ACME client needs of the store: transactions for the
// account and challenge tokens, and locks that certmagic takes around them.
type Store interface {
	View(ctx context.Context, fn func(store.Tx) error) error
	Update(ctx context.Context, fn func(store.Tx) error) error
	store.Locker
}

// New returns an ACME client over st.
func New(st Store, c Config) (*Client, error) {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if !c.AgreeTOS {
		return nil, errors.New("acme.agree_tos must be true to issue certificates (read the CA's terms of service first)")
	}
	a := &Client{storage: &acmeStorage{st: st, now: time.Now}, pending: newPending(), log: c.Logger, staging: c.StagingDirectory != "",
		email: c.Email, directory: c.Directory, roots: c.CARoots}
	a.storage.seen = a.pending.observe
	a.known = c.KnownHost
	// certmagic wants a cache for certificates it manages; Edge manages its
	// own, so this one stays empty and is stopped with Close.
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return a.cfg, nil },
		Logger:           c.Logger,
	})
	a.cfg = certmagic.New(a.cache, certmagic.Config{Storage: a.storage, Logger: c.Logger})
	a.issuer = certmagic.NewACMEIssuer(a.cfg, certmagic.ACMEIssuer{
		CA:                      c.Directory,
		TestCA:                  c.StagingDirectory,
		Email:                   c.Email,
		Agreed:                  true,
		Profile:                 c.Profile,
		TrustedRoots:            c.CARoots,
		DisableTLSALPNChallenge: true, // HTTP-01 only: acmez could otherwise pick TLS-ALPN
		ListenHost:              c.HTTPHost,
		AltHTTPPort:             c.HTTPPort,
		CertObtainTimeout:       2 * time.Minute,
		Logger:                  c.Logger,
	})
	a.cfg.Issuers = []certmagic.Issuer{a.issuer}
	if !hookTransport(a.issuer, time.Now) {
		c.Logger.Warn("cannot read the CA's Retry-After (certmagic's HTTP client moved); rate limits wait a fixed hour")
	}
	return a, nil
}

// Close stops certmagic's (empty) cache maintenance.
func (a *Client) Close() { a.cache.Stop() }

// Issue places one ACME order for every name, with one CSR signed by key,
// and returns the PEM chain. With staging, the order is first tried
// against the staging directory (its certificate is thrown away), then
// against the real one.
func (a *Client) Issue(ctx context.Context, names []string, key crypto.Signer, staging bool) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: names[0]}, DNSNames: names}, key)
	if err != nil {
		return nil, fmt.Errorf("making the CSR: %w", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, err
	}
	if err := a.syncAccount(ctx); err != nil {
		return nil, err
	}
	if staging && a.staging {
		attempts := 1
		ctx = context.WithValue(ctx, certmagic.AttemptsCtxKey, &attempts)
	}
	ctx, note := withRetryNote(ctx)
	ic, err := a.issuer.Issue(ctx, csr)
	if err != nil {
		return nil, note.wrap(err)
	}
	return ic.Certificate, nil
}

// RenewalInfo asks the CA for its ARI window for leaf, and when to ask
// again.
func (a *Client) RenewalInfo(ctx context.Context, leaf *x509.Certificate) (cert.Window, time.Time, error) {
	ctx, note := withRetryNote(ctx)
	ri, err := a.issuer.GetRenewalInfo(ctx, certmagic.Certificate{Certificate: tlsCertWithLeaf(leaf)})
	if err != nil {
		return cert.Window{}, time.Time{}, note.wrap(err)
	}
	var retry time.Time
	if ri.RetryAfter != nil {
		retry = *ri.RetryAfter
	}
	return cert.Window{Start: ri.SuggestedWindow.Start, End: ri.SuggestedWindow.End}, retry, nil
}

// probeKey is where a preflight probe token lives in the store, so that
// whichever node the probe reaches can answer it.
func probeKey(token string) string { return "edge-probe/" + token }

// validToken reports whether a challenge token has ACME's token syntax
// (base64url, RFC 8555 §8.1); only such tokens are looked up.
func validToken(t string) bool {
	if len(t) == 0 || len(t) > 256 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ServeChallenge answers a preflight probe or an ACME HTTP-01 challenge for
// any hostname with an order pending (on any node sharing the store),
// whether or not a property uses it. It implements
// proxy.ChallengeResponder.
//
// Known probes and pending tokens are answered from memory. Anything else
// is a miss, and a miss reads the store: the node that placed the order
// stored the token before it told the CA to validate, and that write
// returned only once committed (on etcd, a linearizable read on any node
// sees it), while this node's watch may not have delivered it yet. The
// write is the fence; the memory is only the fast path. The store reads
// of misses are rate-bounded, with one budget for the hosts a property
// serves (and the hosts already pending) and another for every other
// name, so that junk Host values cannot starve real challenges.
func (a *Client) ServeChallenge(w http.ResponseWriter, r *http.Request, host, token string) bool {
	if !validToken(token) {
		return false
	}
	if v, ok := a.pending.probe(token); ok {
		writeProbe(w, []byte(v))
		return true
	}
	want, pending := a.pending.token(host)
	if pending && want == token {
		return a.issuer.HandleHTTPChallenge(w, r)
	}
	limit := a.pending.unknownLimit
	if pending || (a.known != nil && a.known(host)) {
		limit = a.pending.limit
	}
	if !limit.Allow() {
		// A flood of junk is what this refuses: said once a minute, not
		// once a request.
		a.pending.overRate.Do(func() {
			a.log.Warn("challenge lookups over their rate; refusing (said at most once a minute)",
				zap.String("host", host), zap.Bool("property_host", limit == a.pending.limit))
		})
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), lookupTimeout)
	defer cancel()
	if v, err := a.storage.Load(ctx, probeKey(token)); err == nil {
		writeProbe(w, v)
		return true
	}
	return a.issuer.HandleHTTPChallenge(w, r.WithContext(ctx))
}

func writeProbe(w http.ResponseWriter, answer []byte) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write(answer)
}

// newProbe stores a random probe token and its answer.
func (a *Client) newProbe(ctx context.Context) (token, answer string, err error) {
	var b [24]byte
	_, _ = rand.Read(b[:])
	token = base64.RawURLEncoding.EncodeToString(b[:12])
	answer = base64.RawURLEncoding.EncodeToString(b[12:])
	return token, answer, a.storage.Store(ctx, probeKey(token), []byte(answer))
}

func (a *Client) dropProbe(ctx context.Context, token string) {
	_ = a.storage.Delete(context.WithoutCancel(ctx), probeKey(token))
}

func tlsCertWithLeaf(leaf *x509.Certificate) tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, Leaf: leaf}
}
