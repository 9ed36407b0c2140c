package cert

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/edge-cdn/edge/store"
)

// An operator's changes to a certificate's versions (SPEC §7, issue 11):
// rotate (a new uploaded version), rollback (a kept version again, as a new
// version) and an upload replacing a bootstrap. Each is one transaction
// that checks first and writes only a version that serves: a bad version
// never replaces the one serving.

// Rotate checks an uploaded certificate and key as an upload of the
// certificate's type is checked, then stores it as the certificate's next
// version, which serves at once. It returns the record as stored and the
// upload's warnings.
func (c *Certs) Rotate(ctx context.Context, idOrName, certPEM, keyPEM string) (*Certificate, []string, error) {
	var warnings []string
	rec, err := c.addVersion(ctx, nil, idOrName, func(rec *Certificate, _ store.Tx) (Version, error) {
		v, w, err := CheckUpload(certPEM, keyPEM, rec.Type, c.now())
		warnings = w
		return v, err
	}, func(rec *Certificate) error {
		operatorVersion(rec)
		return nil
	})
	return rec, warnings, err
}

// Rollback makes a kept version serve again, as the next version (so the
// history reads forwards). The version must be kept, not the one serving,
// and not expired.
func (c *Certs) Rollback(ctx context.Context, idOrName string, version int) (*Certificate, error) {
	return c.addVersion(ctx, nil, idOrName, func(rec *Certificate, tx store.Tx) (Version, error) {
		if version == rec.Version {
			return Version{}, inputErr("version", "version %d is the one serving", version)
		}
		if version < 1 || version > rec.Version {
			return Version{}, inputErr("version", "certificate %s has versions 1 to %d", rec.Name, rec.Version)
		}
		old, err := getVersion(tx, rec.ID, version)
		if err != nil {
			return Version{}, inputErr("version", "version %d is no longer kept (the newest %d are): %v", version, KeepVersions, err)
		}
		now := c.now()
		if !now.Before(old.NotAfter) {
			return Version{}, inputErr("version", "version %d expired on %s", version, old.NotAfter.Format(time.RFC3339))
		}
		if rec.Type == TypeServer && strings.TrimSpace(old.KeyPEM) == "" {
			return Version{}, inputErr("version", "version %d has no private key", version)
		}
		v := *old
		v.RollbackOf, v.CreatedAt = version, now.UTC()
		return v, nil
	}, func(rec *Certificate) error {
		operatorVersion(rec)
		return nil
	})
}

// ReplaceBootstrap stores an upload (checked as a server certificate) as
// the next version of the self-signed bootstrap certificate Edge made under
// that name, which stops being a bootstrap; update sets what the upload
// asked for (auto_renew). A certificate that is not a bootstrap is left
// alone: ErrExists.
func (c *Certs) ReplaceBootstrap(ctx context.Context, name string, v Version, update func(*Certificate)) (*Certificate, error) {
	return c.addVersion(ctx, nil, name, func(rec *Certificate, _ store.Tx) (Version, error) {
		if !rec.Bootstrap || rec.Name != name {
			return Version{}, fmt.Errorf("certificate %q: %w (to give it a new version: edge cert rotate)", name, ErrExists)
		}
		return v, nil
	}, func(rec *Certificate) error {
		rec.Bootstrap = false
		operatorVersion(rec)
		update(rec)
		return nil
	})
}

// operatorVersion resets the state that described the previous version
// after an operator gave the certificate a new one: it is active, and its
// renewal starts over from the new version's dates.
func operatorVersion(rec *Certificate) {
	rec.Status, rec.StatusDetail = StatusActive, ""
	state := RenewalNone
	if rec.AutoRenew == AutoRenewACME {
		state = RenewalScheduled
	}
	rec.Renewal = Renewal{State: state, LastAttemptAt: rec.Renewal.LastAttemptAt}
	rec.Notices = Notices{}
}
