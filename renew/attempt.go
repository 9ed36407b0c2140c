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
	"runtime/debug"
	"strings"
	"time"

	"github.com/edge-cdn/edge/acme"
	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/store"
	"go.uber.org/zap"
)

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
//
// The lock's lease may lapse during an order that runs for minutes (a
// partition, a paused process): the attempt runs under a context that
// ends when the lock is lost, and its writes after the order are fenced
// on the attempt's mark in the record, so that a node that lost the lock,
// and another that took it over, never both store a version.
func (r *Renewer) attempt(ctx context.Context, id, reason string) {
	lock := "renew/" + id
	ok, err := r.locks.TryLock(ctx, lock)
	if err != nil || !ok {
		// Another node renews it (or the store is away: the next check
		// tries again).
		r.log.Debug("renewal lock not taken; not renewing here", zap.String("id", id), zap.Bool("held_elsewhere", err == nil))
		return
	}
	defer r.locks.Unlock(context.WithoutCancel(ctx), lock)
	hctx, release := store.HeldContext(ctx, r.locks, lock)
	defer release() // before Unlock

	c, at, names, ok := r.begin(hctx, id, reason)
	if !ok {
		return
	}
	log := r.log.With(zap.String("certificate", c.Name), zap.Strings("names", names))
	log.Info("renewing certificate", zap.String("reason", reason), zap.Int("attempt", c.Renewal.Attempts))
	a := &fenced{Renewer: r, fence: cert.RequireAttempt(c.ID, at), log: log}

	if f := r.checkNames(names); f != "" {
		a.failed(hctx, c, acme.Failure{Detail: f, Result: "invalid_names"})
		return
	}
	if r.acme == nil {
		a.failed(hctx, c, acme.Failure{Detail: "ACME is off on this node: set acme.agree_tos: true (after reading the CA's terms) and acme.email, then reload", Result: "acme_disabled"})
		return
	}
	if p := r.cfg.Preflight; p != nil {
		if err := p.Check(hctx, r.acme, names); err != nil {
			if a.lost(ctx, hctx, c) {
				return
			}
			a.failed(hctx, c, acme.Failure{Detail: err.Error(), Result: "preflight"})
			return
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		a.failed(hctx, c, acme.Failure{Detail: err.Error(), Result: "error"})
		return
	}
	octx, cancel := context.WithTimeout(hctx, 5*time.Minute)
	chain, err := r.acme.Issue(octx, names, key, c.Renewal.Attempts > 1)
	cancel()
	if err != nil {
		if a.lost(ctx, hctx, c) || ctx.Err() != nil {
			return // lost the lock, or shutting down: the next start retries
		}
		f := acme.Describe(err, names, r.cfg.EdgeHostname)
		r.cfg.OnOrder("error")
		log.Warn("ACME order failed", zap.Error(err))
		a.failed(hctx, c, f)
		return
	}
	r.cfg.OnOrder("ok")
	a.succeeded(hctx, c, chain, key)
}

// begin checks under the lock that id is still due and marks it renewing
// at the moment it returns: the attempt's fence (cert.RequireAttempt). ok
// is false when there is nothing to do.
func (r *Renewer) begin(ctx context.Context, id, reason string) (c *cert.Certificate, at time.Time, names []string, ok bool) {
	c, err := r.certs.Get(ctx, id)
	if err != nil {
		return nil, time.Time{}, nil, false
	}
	names = r.wantedNames(c, r.props().CertificateNames())
	due, _ := r.due(c, names)
	now := r.cfg.Now()
	if (c.AutoRenew != cert.AutoRenewACME && !c.Renewal.Forced) || due.After(now) ||
		(c.Renewal.NextAttemptAt != nil && c.Renewal.NextAttemptAt.After(now) && !c.Renewal.Forced) {
		return nil, time.Time{}, nil, false // renewed meanwhile (by another node), or no longer due
	}
	c, err = r.certs.Update(ctx, id, func(c *cert.Certificate) error {
		c.Renewal.State = cert.RenewalRenewing
		c.Renewal.LastAttemptAt = &now
		c.Renewal.Attempts++
		c.Renewal.Reason = reason
		if c.StatusDetail == waitingReason {
			c.StatusDetail = "ordering from the CA"
		}
		return nil
	})
	if err != nil {
		return nil, time.Time{}, nil, false
	}
	return c, now, names, true
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
	var never []string
	for _, n := range names {
		if why := unorderable(n); why != "" {
			never = append(never, n+" "+why)
		}
	}
	if len(never) > 0 {
		return "a CA cannot issue a certificate for these names: " + strings.Join(never, "; ") + "; use a self-signed or uploaded certificate for them"
	}
	return ""
}

func (a *fenced) succeeded(ctx context.Context, c *cert.Certificate, chain []byte, key *ecdsa.PrivateKey) {
	r, log := a.Renewer, a.log
	leaf, err := parseLeaf(string(chain))
	if err != nil {
		a.failed(ctx, c, acme.Failure{Detail: "the CA returned a certificate that does not parse: " + err.Error(), Result: "bad_certificate"})
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
	stored, err := r.certs.AddVersionIf(context.WithoutCancel(ctx), c.ID, a.fence, v, func(c *cert.Certificate) {
		c.Status, c.StatusDetail = cert.StatusActive, ""
		c.Challenge, c.Authority = "http", "lets_encrypt"
		c.Renewal = cert.Renewal{State: cert.RenewalScheduled, Attempts: 0, LastAttemptAt: c.Renewal.LastAttemptAt}
	})
	if errors.Is(err, store.ErrConflict) {
		a.abandon(ctx, c, "the certificate changed since the renewal lock was taken: another node took the renewal over; the new certificate is dropped")
		return
	}
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
func (a *fenced) failed(ctx context.Context, c *cert.Certificate, f acme.Failure) {
	r, log := a.Renewer, a.log
	now := r.cfg.Now()
	wait := cert.Backoff(c.Renewal.Attempts, c.NotAfter, now)
	if c.Source != cert.SourceACME && c.Source != cert.SourceUpload {
		// Nothing CA-issued serves yet: keep the retries quick.
		wait = cert.Backoff(c.Renewal.Attempts, now.Add(365*24*time.Hour), now)
	}
	wait = max(wait, f.MinWait)
	next := now.Add(wait)
	stored, err := r.certs.UpdateIf(context.WithoutCancel(ctx), c.ID, a.fence, func(c *cert.Certificate) error {
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
	if errors.Is(err, store.ErrConflict) {
		a.abandon(ctx, c, "the certificate changed since the renewal lock was taken: another node took the renewal over; this failure is not recorded ("+f.Detail+")")
		return
	}
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
