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
// name, as listed once for a whole reload: it reads nothing for them. With
// known nil, each name is read.
func (c *Certs) BootstrapKnown(ctx context.Context, t *property.Table, known map[string]*Certificate) ([]*Certificate, error) {
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
			if _, ok := known[name]; ok {
				continue
			}
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
			Renewal: Renewal{State: "none"}}
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
