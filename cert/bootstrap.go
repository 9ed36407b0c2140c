package cert

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/edge-cdn/edge/property"
)

// BootstrapValidity is how long a self-signed bootstrap certificate is valid.
const BootstrapValidity = 365 * 24 * time.Hour

// Bootstrap creates a self-signed certificate for every certificate name
// that a property of t uses and the store does not hold yet, so that a new
// property serves HTTPS at once. Its names are the hostnames of every
// property naming it; it renews by ACME (status pending) when one of them
// has renew automation, else it is simply active. It returns what it made.
func (c *Certs) Bootstrap(ctx context.Context, t *property.Table) ([]*Certificate, error) {
	return c.BootstrapKnown(ctx, t, nil)
}

// BootstrapKnown is Bootstrap given the certificates the store holds, by
// name, as listed once for a whole reload: it reads nothing for them, and
// looks no further at the properties naming them. With known nil, each
// name is read.
func (c *Certs) BootstrapKnown(ctx context.Context, t *property.Table, known map[string]Summary) ([]*Certificate, error) {
	type want struct {
		hosts []string
		acme  bool
	}
	wanted := map[string]*want{}
	for _, p := range t.Properties() {
		name := p.TLS.Certificate
		if name == "" {
			continue
		}
		if _, ok := known[name]; ok {
			continue // most names, on a reload of 100,000 properties
		}
		w := wanted[name]
		if w == nil {
			w = &want{}
			wanted[name] = w
		}
		w.hosts = append(w.hosts, p.Hostnames...)
		w.acme = w.acme || p.TLS.RenewAutomation
	}
	names := make([]string, 0, len(wanted))
	for n := range wanted {
		names = append(names, n)
	}
	sort.Strings(names)
	var made []*Certificate
	var errs []error
	for _, name := range names {
		if known != nil {
			// Not listed (skipped above otherwise): made now.
		} else if _, err := c.Get(ctx, name); err == nil {
			continue
		} else if !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		w := wanted[name]
		sort.Strings(w.hosts)
		v, err := SelfSigned(w.hosts, BootstrapValidity, c.now())
		if err != nil {
			errs = append(errs, fmt.Errorf("certificate %s: %w", name, err))
			continue
		}
		rec := &Certificate{Name: name, Type: TypeServer, AutoRenew: AutoRenewNone, Status: StatusActive,
			Bootstrap: true, Renewal: Renewal{State: "none"}}
		if w.acme {
			rec.AutoRenew, rec.Status = AutoRenewACME, StatusPending
			rec.StatusDetail = "serving a self-signed bootstrap certificate until the CA issues one"
			rec.Challenge, rec.Authority = "http", "lets_encrypt"
			rec.Renewal.State = "scheduled"
		}
		if err := c.Create(ctx, rec, v); err != nil && !errors.Is(err, ErrExists) {
			errs = append(errs, err)
			continue
		}
		made = append(made, rec)
	}
	return made, errors.Join(errs...)
}

// FollowAutomation makes the properties' tls.renew_automation drive their
// certificates (issue 11): a server certificate named by a property with
// renew automation on is switched to auto_renew acme, so that it is renewed
// for the property's hostnames (a self-signed one becomes pending until the
// CA issues one). Turning automation off changes nothing: a certificate
// requested or set to acme keeps renewing. It returns what it switched.
// known are the stored certificates by name, listed once for a reload, so
// that only the ones switched are read (inside their update); nil reads
// each.
func (c *Certs) FollowAutomation(ctx context.Context, t *property.Table, known map[string]Summary) ([]*Certificate, error) {
	return c.followAutomation(ctx, t, "", known)
}

// FollowAutomationOf is FollowAutomation for one certificate name, read
// from the store, after an API write to it.
func (c *Certs) FollowAutomationOf(ctx context.Context, t *property.Table, name string) ([]*Certificate, error) {
	return c.followAutomation(ctx, t, name, nil)
}

func (c *Certs) followAutomation(ctx context.Context, t *property.Table, only string, known map[string]Summary) ([]*Certificate, error) {
	names := map[string]bool{}
	for _, p := range t.Properties() {
		if p.TLS.Certificate != "" && p.TLS.RenewAutomation && (only == "" || p.TLS.Certificate == only) {
			if s, ok := known[p.TLS.Certificate]; known != nil && (!ok || s.Type != TypeServer || s.AutoRenew == AutoRenewACME) {
				continue // none yet (a bootstrap made now follows the property), or nothing to switch
			}
			names[p.TLS.Certificate] = true
		}
	}
	var switched []*Certificate
	var errs []error
	for name := range names {
		id := name
		if known != nil {
			id = known[name].ID
		} else {
			rec, err := c.Get(ctx, name)
			if errors.Is(err, ErrNotFound) {
				continue // none yet: a bootstrap made now follows the property already
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if rec.Type != TypeServer || rec.AutoRenew == AutoRenewACME {
				continue
			}
			id = rec.ID
		}
		rec, err := c.Update(ctx, id, func(r *Certificate) error {
			if r.Type != TypeServer || r.AutoRenew == AutoRenewACME {
				return errUnchanged // switched meanwhile: nothing to write
			}
			r.AutoRenew, r.Challenge, r.Authority = AutoRenewACME, "http", "lets_encrypt"
			r.Renewal = Renewal{State: RenewalScheduled, LastAttemptAt: r.Renewal.LastAttemptAt}
			if r.Source == SourceSelfSigned {
				r.Status = StatusPending
				r.StatusDetail = "tls.renew_automation is on: serving a self-signed certificate until the CA issues one"
			}
			return nil
		})
		if errors.Is(err, errUnchanged) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("certificate %s: %w", name, err))
			continue
		}
		switched = append(switched, rec)
	}
	return switched, errors.Join(errs...)
}

// errUnchanged ends an update that has nothing to write.
var errUnchanged = errors.New("unchanged")
