package renew

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/edge-cdn/edge/acme"
	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/property"
	"github.com/edge-cdn/edge/store"
	"go.uber.org/zap"
)

// Announce is told of every certificate event (issued, renewed, failed,
// expiring, expired) with the certificate as stored and a detail.
type Announce func(ctx context.Context, typ string, c *cert.Certificate, detail string)

// RenewerConfig configures the renewal loop. Zero values are useful where
// noted.
type RenewerConfig struct {
	Policy        cert.Policy
	CheckInterval time.Duration // at most 1h; 0: 10m
	ARI           bool
	ExpiryWarning time.Duration   // 0: 7d
	Preflight     *acme.Preflight // nil: no preflight
	EdgeHostname  string
	MaxNames      int // the CA's limit of names in one order; 0: 100
	Workers       int // attempts at once; 0: 4
	Announce      Announce
	OnRenewal     func(result string) // metrics; may be nil
	OnOrder       func(result string)
	Logger        *zap.Logger
	Now           func() time.Time
}

// Renewer keeps automatically renewed certificates valid: one loop that
// looks at every certificate at start, every CheckInterval and at once on a
// change, and attempts the due ones in a small pool of workers.
type Renewer struct {
	certs *cert.Certs
	acme  *acme.Client // nil: ACME disabled (acme.agree_tos false)
	props func() *property.Table
	locks store.Locker
	cfg   RenewerConfig
	log   *zap.Logger

	wake     chan struct{}
	agenda   *agenda
	mu       sync.Mutex
	inflight map[string]bool
	sem      chan struct{}
	wg       sync.WaitGroup
}

// rescanEvery is how often the whole store is looked at again, as a safety
// net under the per-certificate updates.
const rescanEvery = 6 * time.Hour

// NewRenewer returns a Renewer; Run starts it.
func NewRenewer(certs *cert.Certs, a *acme.Client, props func() *property.Table, locks store.Locker, cfg RenewerConfig) *Renewer {
	if cfg.CheckInterval <= 0 || cfg.CheckInterval > time.Hour {
		cfg.CheckInterval = 10 * time.Minute
	}
	if cfg.ExpiryWarning <= 0 {
		cfg.ExpiryWarning = 7 * 24 * time.Hour
	}
	if cfg.MaxNames <= 0 {
		cfg.MaxNames = 100
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Announce == nil {
		cfg.Announce = func(context.Context, string, *cert.Certificate, string) {}
	}
	if cfg.OnRenewal == nil {
		cfg.OnRenewal = func(string) {}
	}
	if cfg.OnOrder == nil {
		cfg.OnOrder = func(string) {}
	}
	r := &Renewer{certs: certs, acme: a, props: props, locks: locks, cfg: cfg, log: cfg.Logger, agenda: newAgenda(),
		wake: make(chan struct{}, 1), inflight: map[string]bool{}, sem: make(chan struct{}, cfg.Workers)}
	certs.OnChange(func(id string) { r.Changed(context.Background(), id) })
	return r
}

// Changed reschedules one certificate (by id or name) after it was written
// here or by another node, and wakes the loop if it is due now.
func (r *Renewer) Changed(ctx context.Context, idOrName string) {
	c, err := r.certs.Get(ctx, idOrName)
	if errors.Is(err, cert.ErrNotFound) {
		r.agenda.remove(idOrName)
		return
	}
	if err != nil {
		return
	}
	r.schedule(ctx, c, r.props().CertificateNames(), r.cfg.Now())
}

// PropertiesChanged reschedules the certificates named by properties
// before or after a reload: their wanted names may have changed.
func (r *Renewer) PropertiesChanged(ctx context.Context, old, new *property.Table) {
	for n := range new.CertificateNames() {
		r.Changed(ctx, n)
	}
	for n := range old.CertificateNames() {
		if _, done := new.CertificateNames()[n]; !done {
			r.Changed(ctx, n)
		}
	}
}

// Wake makes the loop look at once (a new request, a reload, a renew
// command).
func (r *Renewer) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run loops until ctx ends, then waits for attempts under way to stop.
func (r *Renewer) Run(ctx context.Context) {
	defer r.wg.Wait()
	r.rescan(ctx)
	lastScan := r.cfg.Now()
	for {
		r.runDue(ctx)
		wait := r.cfg.CheckInterval
		if next := r.agenda.next(); !next.IsZero() {
			wait = min(wait, max(next.Sub(r.cfg.Now()), 10*time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
		if r.cfg.Now().Sub(lastScan) > rescanEvery {
			r.rescan(ctx)
			lastScan = r.cfg.Now()
		}
	}
}

// Rescan schedules every certificate of the store again (after a gap in
// what this node heard of other nodes' writes).
func (r *Renewer) Rescan(ctx context.Context) { r.rescan(ctx) }

// rescan schedules every certificate of the store.
func (r *Renewer) rescan(ctx context.Context) {
	list, err := r.certs.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("renewal: listing certificates", zap.Error(err))
		}
		return
	}
	wanted, now := r.props().CertificateNames(), r.cfg.Now()
	for _, c := range list {
		r.schedule(ctx, c, wanted, now)
	}
}

// schedule puts c in the agenda at its next timed event, or takes it out
// when it has none.
func (r *Renewer) schedule(ctx context.Context, c *cert.Certificate, wanted map[string][]string, now time.Time) {
	at, ok := r.nextEvent(c, wanted, now)
	if !ok {
		r.agenda.remove(c.ID)
		return
	}
	r.agenda.set(c.ID, at)
	if !at.After(now) {
		r.Wake()
	}
}

// nextEvent is the earliest moment something is due for c: its expiry
// notices, its renewal (or the end of its backoff) and its ARI check.
func (r *Renewer) nextEvent(c *cert.Certificate, wanted map[string][]string, now time.Time) (time.Time, bool) {
	if c.Type != cert.TypeServer {
		return time.Time{}, false
	}
	var at time.Time
	ok := false
	consider := func(t time.Time) {
		if !ok || t.Before(at) {
			at, ok = t, true
		}
	}
	if c.Notices.ExpiredVersion != c.Version {
		consider(c.NotAfter)
	}
	if c.Notices.ExpiringVersion != c.Version {
		consider(c.NotAfter.Add(-r.cfg.ExpiryWarning))
	}
	if c.AutoRenew == cert.AutoRenewACME || c.Renewal.Forced {
		due, _ := r.due(c, r.wantedNames(c, wanted))
		if c.Renewal.NextAttemptAt != nil && c.Renewal.NextAttemptAt.After(due) && !c.Renewal.Forced {
			due = *c.Renewal.NextAttemptAt
		}
		consider(due)
		if r.cfg.ARI && r.acme != nil && c.Source == cert.SourceACME {
			if c.Renewal.ARINextCheckAt == nil {
				consider(now)
			} else {
				consider(*c.Renewal.ARINextCheckAt)
			}
		}
	}
	return at, ok
}

// runDue handles every certificate whose moment has come.
func (r *Renewer) runDue(ctx context.Context) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("renewal pass panicked", zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
		}
	}()
	now := r.cfg.Now()
	ids := r.agenda.popDue(now)
	if len(ids) == 0 {
		return
	}
	wanted := r.props().CertificateNames()
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		r.process(ctx, id, wanted, now)
	}
}

// process looks at one due certificate, fresh from the store: notices,
// ARI, and an attempt when its renewal is due.
func (r *Renewer) process(ctx context.Context, id string, wanted map[string][]string, now time.Time) {
	c, err := r.certs.Get(ctx, id)
	if errors.Is(err, cert.ErrNotFound) {
		return
	}
	if err != nil {
		// The store does not answer: look again later.
		r.agenda.set(id, now.Add(r.cfg.CheckInterval))
		return
	}
	r.notices(ctx, c, now)
	if c.Type == cert.TypeServer && (c.AutoRenew == cert.AutoRenewACME || c.Renewal.Forced) {
		names := r.wantedNames(c, wanted)
		if r.cfg.ARI {
			r.refreshARI(ctx, c, now)
		}
		at, reason := r.due(c, names)
		if c.Renewal.NextAttemptAt != nil && c.Renewal.NextAttemptAt.After(at) && !c.Renewal.Forced {
			at = *c.Renewal.NextAttemptAt
		}
		if !at.After(now) {
			r.start(ctx, c.ID, reason)
			// The attempt's writes reschedule it; this is a fallback.
			r.agenda.set(c.ID, now.Add(r.cfg.CheckInterval))
			return
		}
		r.noteSchedule(ctx, c, at, reason)
	}
	if fresh, err := r.certs.Get(ctx, id); err == nil {
		c = fresh
	}
	r.schedule(ctx, c, wanted, now)
}

func (r *Renewer) due(c *cert.Certificate, names []string) (time.Time, string) {
	if c.Renewal.Forced {
		return time.Time{}, "renewal requested by an operator"
	}
	var ariAt time.Time
	if r.cfg.ARI && c.Renewal.ARISelectedAt != nil && c.Source == cert.SourceACME {
		ariAt = *c.Renewal.ARISelectedAt
	}
	return cert.RenewAt(c, names, ariAt, r.cfg.Policy)
}

// noteSchedule stores renew_at when it changed, so the API shows it.
func (r *Renewer) noteSchedule(ctx context.Context, c *cert.Certificate, at time.Time, reason string) {
	if c.Renewal.RenewAt != nil && c.Renewal.RenewAt.Equal(at) && c.Renewal.Reason == reason {
		return
	}
	_, err := r.certs.Update(ctx, c.ID, func(c *cert.Certificate) error {
		c.Renewal.RenewAt, c.Renewal.Reason = &at, reason
		if c.Renewal.State == cert.RenewalNone || c.Renewal.State == "" {
			c.Renewal.State = cert.RenewalScheduled
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		r.log.Warn("storing renew_at", zap.String("certificate", c.Name), zap.Error(err))
	}
}

// wantedNames are the names c must hold: the hostnames of the properties
// using it with renew automation, else the names it was requested for, else
// the names it holds.
func (r *Renewer) wantedNames(c *cert.Certificate, fromProps map[string][]string) []string {
	if hs := fromProps[c.Name]; len(hs) > 0 {
		return hs
	}
	if c.CommonName != "" {
		names := append([]string{c.CommonName}, c.AltNames...)
		slices.Sort(names)
		return slices.Compact(names)
	}
	return c.SubjectNames
}

// notices announces certificate.expiring and certificate.expired, once per
// version, and marks an expired certificate so.
func (r *Renewer) notices(ctx context.Context, c *cert.Certificate, now time.Time) {
	left := c.NotAfter.Sub(now)
	switch {
	case left <= 0 && c.Notices.ExpiredVersion != c.Version:
		stored, err := r.certs.Update(ctx, c.ID, func(c *cert.Certificate) error {
			c.Notices.ExpiredVersion = c.Version
			c.Status = cert.StatusExpired
			c.StatusDetail = "the certificate expired on " + c.NotAfter.Format(time.RFC3339)
			return nil
		})
		if err == nil {
			r.cfg.Announce(ctx, "certificate.expired", stored, stored.StatusDetail)
		}
	case left > 0 && left <= r.cfg.ExpiryWarning && c.Notices.ExpiringVersion != c.Version:
		stored, err := r.certs.Update(ctx, c.ID, func(c *cert.Certificate) error {
			c.Notices.ExpiringVersion = c.Version
			return nil
		})
		if err == nil {
			r.cfg.Announce(ctx, "certificate.expiring", stored, fmt.Sprintf("%s expires in %s, on %s",
				c.Name, cert.RoundDuration(left.Round(time.Hour)), c.NotAfter.Format(time.RFC3339)))
		}
	}
}

// refreshARI asks the CA for the renewal window of a CA-issued certificate
// when the last answer's Retry-After has passed (at least twice a day).
func (r *Renewer) refreshARI(ctx context.Context, c *cert.Certificate, now time.Time) {
	if r.acme == nil || c.Source != cert.SourceACME || (c.Renewal.ARINextCheckAt != nil && now.Before(*c.Renewal.ARINextCheckAt)) {
		return
	}
	_, v, err := r.certs.Current(ctx, c.ID)
	if err != nil {
		return
	}
	leaf, err := parseLeaf(v.CertPEM)
	if err != nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	w, retry, err := r.acme.RenewalInfo(cctx, leaf)
	nextCheck := now.Add(12 * time.Hour)
	if err == nil && !retry.IsZero() && retry.Before(nextCheck) && retry.After(now) {
		nextCheck = retry
	}
	if err != nil {
		r.log.Debug("ARI unavailable", zap.String("certificate", c.Name), zap.Error(err))
		nextCheck = now.Add(time.Hour)
	}
	stored, uerr := r.certs.Update(ctx, c.ID, func(c *cert.Certificate) error {
		c.Renewal.ARINextCheckAt = &nextCheck
		if err == nil && !w.End.IsZero() {
			if c.Renewal.ARIWindow == nil || !c.Renewal.ARIWindow.Start.Equal(w.Start) || !c.Renewal.ARIWindow.End.Equal(w.End) {
				at := w.Start
				if span := w.End.Sub(w.Start); span > 0 {
					at = w.Start.Add(mrand.N(span))
				}
				c.Renewal.ARIWindow, c.Renewal.ARISelectedAt = &w, &at
			}
		}
		return nil
	})
	if uerr == nil {
		*c = *stored
	}
}

// start runs an attempt for id in the worker pool, unless one is under way.
func (r *Renewer) start(ctx context.Context, id, reason string) {
	r.mu.Lock()
	if r.inflight[id] {
		r.mu.Unlock()
		return
	}
	r.inflight[id] = true
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			delete(r.inflight, id)
			r.mu.Unlock()
		}()
		defer func() {
			if p := recover(); p != nil {
				r.log.Error("renewal attempt panicked", zap.String("certificate", id), zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			}
		}()
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-r.sem }()
		r.attempt(ctx, id, reason)
	}()
}

// attempt renews one certificate: lock, check again, preflight, order,
// store. The certificate in service is never touched unless a new one is
// stored.
func (r *Renewer) attempt(ctx context.Context, id, reason string) {
	lock := "renew/" + id
	ok, err := r.locks.TryLock(ctx, lock)
	if err != nil || !ok {
		return // another node renews it
	}
	defer r.locks.Unlock(context.WithoutCancel(ctx), lock)

	c, err := r.certs.Get(ctx, id)
	if err != nil {
		return
	}
	names := r.wantedNames(c, r.props().CertificateNames())
	at, _ := r.due(c, names)
	now := r.cfg.Now()
	if (c.AutoRenew != cert.AutoRenewACME && !c.Renewal.Forced) || at.After(now) ||
		(c.Renewal.NextAttemptAt != nil && c.Renewal.NextAttemptAt.After(now) && !c.Renewal.Forced) {
		return // renewed meanwhile (by another node), or no longer due
	}
	log := r.log.With(zap.String("certificate", c.Name), zap.Strings("names", names))
	c, err = r.certs.Update(ctx, id, func(c *cert.Certificate) error {
		c.Renewal.State = cert.RenewalRenewing
		c.Renewal.LastAttemptAt = &now
		c.Renewal.Attempts++
		c.Renewal.Reason = reason
		return nil
	})
	if err != nil {
		return
	}
	log.Info("renewing certificate", zap.String("reason", reason), zap.Int("attempt", c.Renewal.Attempts))

	if f := r.checkNames(names); f != "" {
		r.failed(ctx, c, acme.Failure{Detail: f, Result: "invalid_names"}, log)
		return
	}
	if r.acme == nil {
		r.failed(ctx, c, acme.Failure{Detail: "ACME is off on this node: set acme.agree_tos: true (after reading the CA's terms) and acme.email, then reload", Result: "acme_disabled"}, log)
		return
	}
	if p := r.cfg.Preflight; p != nil {
		if err := p.Check(ctx, r.acme, names); err != nil {
			r.failed(ctx, c, acme.Failure{Detail: err.Error(), Result: "preflight"}, log)
			return
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		r.failed(ctx, c, acme.Failure{Detail: err.Error(), Result: "error"}, log)
		return
	}
	octx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	chain, err := r.acme.Issue(octx, names, key, c.Renewal.Attempts > 1)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down: the next start retries
		}
		f := acme.Describe(err, names, r.cfg.EdgeHostname)
		r.cfg.OnOrder("error")
		log.Warn("ACME order failed", zap.Error(err))
		r.failed(ctx, c, f, log)
		return
	}
	r.cfg.OnOrder("ok")
	r.succeeded(ctx, c, chain, key, log)
}

// checkNames returns why names cannot be ordered, or "".
func (r *Renewer) checkNames(names []string) string {
	if len(names) == 0 {
		return "no hostnames to order: use the certificate in a property with tls.renew_automation, or request it with a common name"
	}
	if len(names) > r.cfg.MaxNames {
		return fmt.Sprintf("%d names are more than the CA allows in one order (%d): split them over more certificates", len(names), r.cfg.MaxNames)
	}
	var wild []string
	for _, n := range names {
		if strings.HasPrefix(n, "*.") {
			wild = append(wild, n)
		}
	}
	if len(wild) > 0 {
		return "HTTP-01 cannot validate wildcards: " + strings.Join(wild, ", ") + "; upload a wildcard certificate instead"
	}
	return ""
}

func (r *Renewer) succeeded(ctx context.Context, c *cert.Certificate, chain []byte, key *ecdsa.PrivateKey, log *zap.Logger) {
	leaf, err := parseLeaf(string(chain))
	if err != nil {
		r.failed(ctx, c, acme.Failure{Detail: "the CA returned a certificate that does not parse: " + err.Error(), Result: "bad_certificate"}, log)
		return
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	now := r.cfg.Now()
	first := c.Source != cert.SourceACME
	v := cert.Version{
		CertPEM: string(chain), KeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
		SubjectNames: leaf.DNSNames, Issuer: leaf.Issuer.String(),
		NotBefore: leaf.NotBefore.UTC(), NotAfter: leaf.NotAfter.UTC(), Source: cert.SourceACME, CreatedAt: now.UTC(),
	}
	stored, err := r.certs.AddVersion(context.WithoutCancel(ctx), c.ID, v, func(c *cert.Certificate) {
		c.Status, c.StatusDetail = cert.StatusActive, ""
		c.Challenge, c.Authority = "http", "lets_encrypt"
		c.Renewal = cert.Renewal{State: cert.RenewalScheduled, Attempts: 0, LastAttemptAt: c.Renewal.LastAttemptAt}
	})
	if err != nil {
		log.Error("storing the new certificate failed; the old one keeps serving", zap.Error(err))
		r.cfg.OnRenewal("error")
		return
	}
	r.cfg.OnRenewal("ok")
	typ, verb := "certificate.renewed", "renewed"
	if first {
		typ, verb = "certificate.issued", "issued"
	}
	detail := fmt.Sprintf("%s by %s for %s, valid until %s", verb, leaf.Issuer.CommonName, strings.Join(leaf.DNSNames, ", "), leaf.NotAfter.UTC().Format(time.RFC3339))
	log.Info("certificate "+verb, zap.Int("version", stored.Version), zap.Time("not_after", leaf.NotAfter))
	r.cfg.Announce(ctx, typ, stored, detail)
	r.Wake() // schedule its next renewal
}

// failed records a failed attempt: status_detail, backoff and the failure
// event. A certificate with a valid CA-issued version keeps it serving and
// stays active.
func (r *Renewer) failed(ctx context.Context, c *cert.Certificate, f acme.Failure, log *zap.Logger) {
	now := r.cfg.Now()
	wait := cert.Backoff(c.Renewal.Attempts, c.NotAfter, now)
	if c.Source != cert.SourceACME && c.Source != cert.SourceUpload {
		// Nothing CA-issued serves yet: keep the retries quick.
		wait = cert.Backoff(c.Renewal.Attempts, now.Add(365*24*time.Hour), now)
	}
	wait = max(wait, f.MinWait)
	next := now.Add(wait)
	stored, err := r.certs.Update(context.WithoutCancel(ctx), c.ID, func(c *cert.Certificate) error {
		c.Renewal.State = cert.RenewalBackoff
		c.Renewal.LastError = f.Detail
		c.Renewal.NextAttemptAt = &next
		c.Renewal.Forced = false
		c.StatusDetail = f.Detail
		valid := (c.Source == cert.SourceACME || c.Source == cert.SourceUpload) && now.Before(c.NotAfter)
		if !valid {
			c.Status = cert.StatusFailed
		}
		return nil
	})
	r.cfg.OnRenewal(f.Result)
	log.Warn("certificate renewal failed", zap.String("detail", f.Detail), zap.Time("next_attempt_at", next))
	if err != nil {
		log.Error("recording the failure", zap.Error(err))
		return
	}
	r.cfg.Announce(ctx, "certificate.failed", stored, f.Detail)
}

func parseLeaf(chainPEM string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(chainPEM))
	if b == nil {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}
