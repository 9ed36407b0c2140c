package renew

import (
	"context"
	"errors"
	"runtime/debug"
	"slices"
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
	ARIWorkers    int // ARI requests at once; 0: DefaultARIWorkers
	// PassBudget bounds one pass over the due certificates; what is left
	// stays due for the next pass, after the loop has looked at its
	// context and wake-ups. 0: DefaultPassBudget.
	PassBudget time.Duration
	Announce   Announce
	OnRenewal  func(result string) // metrics; may be nil
	OnOrder    func(result string)
	Logger     *zap.Logger
	Now        func() time.Time
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
	ari      *ariQueue
}

// DefaultPassBudget bounds one renewal pass.
const DefaultPassBudget = 30 * time.Second

// changeTimeout bounds the rescheduling that follows a write.
const changeTimeout = 10 * time.Second

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
	if cfg.ARIWorkers <= 0 {
		cfg.ARIWorkers = DefaultARIWorkers
	}
	if cfg.PassBudget <= 0 {
		cfg.PassBudget = DefaultPassBudget
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
		wake: make(chan struct{}, 1), inflight: map[string]bool{}, sem: make(chan struct{}, cfg.Workers), ari: newARIQueue()}
	certs.OnChange(func(id string) {
		ctx, cancel := context.WithTimeout(context.Background(), changeTimeout)
		defer cancel()
		r.Changed(ctx, id)
	})
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

// PropertiesChangedKnown is PropertiesChanged given the certificates by
// name as listed once for the reload: it reads only the names missing from
// known (nil: every name). A listed record may be older than a write that
// raced the reload, so it can only bring a certificate's turn earlier: the
// turn then reads it fresh.
func (r *Renewer) PropertiesChangedKnown(ctx context.Context, old, new *property.Table, known map[string]*cert.Certificate) {
	if known == nil {
		r.PropertiesChanged(ctx, old, new)
		return
	}
	wanted, now := new.CertificateNames(), r.cfg.Now()
	look := func(n string) {
		c, ok := known[n]
		if !ok {
			r.Changed(ctx, n)
			return
		}
		if at, ok := r.nextEvent(c, wanted, now); ok {
			r.agenda.setEarlier(c.ID, at)
			if !at.After(now) {
				r.Wake()
			}
		}
	}
	for n := range wanted {
		look(n)
	}
	for n := range old.CertificateNames() {
		if _, done := wanted[n]; !done {
			look(n)
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

// Run loops until ctx ends, then waits for attempts and ARI checks under
// way to stop.
func (r *Renewer) Run(ctx context.Context) {
	defer r.wg.Wait()
	if r.cfg.ARI && r.acme != nil {
		for range r.cfg.ARIWorkers {
			r.wg.Go(func() { r.ariWorker(ctx) })
		}
	}
	r.rescan(ctx)
	if r.agenda.len() >= 1000 {
		// The first scan decoded every record: give that garbage back
		// now rather than over the next minutes (see cmd/bench -properties).
		debug.FreeOSMemory()
	}
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
	if c.Type == cert.TypeServer && c.AutoRenew == cert.AutoRenewACME && c.Renewal.RenewAt == nil && !c.Renewal.Forced {
		// Show renew_at at once (an upload, a rotation), not only when the
		// certificate's first timed event comes (issue 11).
		if names := r.wantedNames(c, wanted); len(names) > 0 {
			if due, reason := r.due(c, names); due.After(now) {
				r.noteSchedule(ctx, c, due, reason)
			}
		}
	}
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
	// Once expired, the expiring notice is moot: considering it would make
	// an expired certificate due at every turn (a busy loop).
	if c.Notices.ExpiringVersion != c.Version && c.Notices.ExpiredVersion != c.Version {
		consider(c.NotAfter.Add(-cert.ExpiryWarning(c, r.cfg.Policy, r.cfg.ExpiryWarning)))
	}
	waiting := c.AutoRenew == cert.AutoRenewACME && !c.Renewal.Forced && len(r.wantedNames(c, wanted)) == 0
	switch {
	case waiting && c.Renewal.Reason != waitingReason:
		consider(now) // to record why it waits
	case waiting:
		// Look again each check interval: a reload that gives it names
		// reschedules it at once, but a pass that read the table before the
		// reload may have taken it out of the agenda after that.
		consider(now.Add(r.cfg.CheckInterval))
	}
	if (c.AutoRenew == cert.AutoRenewACME && !waiting) || c.Renewal.Forced {
		due, _ := r.due(c, r.wantedNames(c, wanted))
		if c.Renewal.NextAttemptAt != nil && c.Renewal.NextAttemptAt.After(due) && !c.Renewal.Forced {
			due = *c.Renewal.NextAttemptAt
		}
		consider(due)
		if r.cfg.ARI && r.acme != nil && c.Source == cert.SourceACME && !r.ari.isPending(c.ID) {
			if c.Renewal.ARINextCheckAt == nil {
				consider(now)
			} else {
				consider(*c.Renewal.ARINextCheckAt)
			}
		}
	}
	return at, ok
}

// runDue handles the certificates whose moment has come, each at the time
// it is looked at, within PassBudget: what is left stays due for the next
// pass.
func (r *Renewer) runDue(ctx context.Context) {
	start := r.cfg.Now()
	ids := r.agenda.popDue(start)
	if len(ids) == 0 {
		return
	}
	wanted := r.props().CertificateNames()
	for i, id := range ids {
		now := r.cfg.Now()
		if ctx.Err() != nil || now.Sub(start) >= r.cfg.PassBudget {
			for _, left := range ids[i:] {
				r.agenda.setEarlier(left, start)
			}
			return
		}
		r.processSafely(ctx, id, wanted, now)
	}
}

// processSafely is process, with a panic logged and the certificate looked
// at again later, not the loop stopped.
func (r *Renewer) processSafely(ctx context.Context, id string, wanted map[string][]string, now time.Time) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("renewal pass panicked", zap.String("certificate", id), zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			r.agenda.setEarlier(id, now.Add(r.cfg.CheckInterval))
		}
	}()
	r.process(ctx, id, wanted, now)
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
		if len(names) == 0 && !c.Renewal.Forced {
			r.noteWaiting(ctx, c)
			if fresh, err := r.certs.Get(ctx, id); err == nil {
				c = fresh
			}
			r.schedule(ctx, c, wanted, now)
			return
		}
		if r.needsARI(c, now) {
			r.ari.add(c.ID) // its answer reschedules c
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

// waitingReason is why a certificate with auto_renew acme orders nothing.
const waitingReason = "waiting for a property with tls.renew_automation: true to name it: its hostnames are what the CA is asked for"

// noteWaiting records that c waits for a property to give it names.
func (r *Renewer) noteWaiting(ctx context.Context, c *cert.Certificate) {
	if c.Renewal.Reason == waitingReason {
		return
	}
	_, err := r.certs.Update(ctx, c.ID, func(c *cert.Certificate) error {
		c.Renewal.RenewAt, c.Renewal.Reason = nil, waitingReason
		if c.Status == cert.StatusPending {
			c.StatusDetail = waitingReason
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		r.log.Warn("storing the renewal state", zap.String("certificate", c.Name), zap.Error(err))
	}
}

// wantedNames are the names c must hold: the hostnames of the properties
// using it with renew automation, else the names it was requested (or
// uploaded) for, else the names of a CA-issued or uploaded version. A
// self-signed stand-in's names do not matter (SPEC §1): with no property
// naming it there is nothing to order yet, and it waits rather than spend
// an order on names that a property about to appear would change (issue 11).
func (r *Renewer) wantedNames(c *cert.Certificate, fromProps map[string][]string) []string {
	if hs := fromProps[c.Name]; len(hs) > 0 {
		return hs
	}
	if c.CommonName != "" {
		names := append([]string{c.CommonName}, c.AltNames...)
		slices.Sort(names)
		return slices.Compact(names)
	}
	if c.Source == cert.SourceSelfSigned {
		return nil
	}
	return c.SubjectNames
}
