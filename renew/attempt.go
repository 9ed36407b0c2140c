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
		if c.StatusDetail == waitingReason {
			c.StatusDetail = "ordering from the CA"
		}
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
