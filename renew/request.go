package renew

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/property"
)

// Order is what a client asks to be issued (the request flow of SPEC §1).
type Order struct {
	Name             string
	Challenge        string
	Authority        string
	CommonName       string
	AlternativeNames []string
}

// Request creates a certificate to be issued by ACME for the request's
// names and returns it pending at once; the renewal loop orders it. Until
// then a self-signed certificate for the names stands in, so a property may
// name it right away.
func (r *Renewer) Request(ctx context.Context, req Order) (*cert.Certificate, error) {
	if !property.NamePattern.MatchString(req.Name) {
		return nil, &cert.InputError{Field: "name", Msg: fmt.Sprintf("%q must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", req.Name)}
	}
	if req.Challenge != "http" {
		return nil, &cert.InputError{Field: "challenge", Msg: fmt.Sprintf("%q: only \"http\" (HTTP-01) is supported", req.Challenge)}
	}
	if req.Authority != "lets_encrypt" {
		return nil, &cert.InputError{Field: "authority", Msg: fmt.Sprintf("%q: only \"lets_encrypt\" is supported (the CA of acme.directory)", req.Authority)}
	}
	if req.CommonName == "" {
		return nil, &cert.InputError{Field: "common_name", Msg: "required"}
	}
	cn, err := orderableName("common_name", req.CommonName)
	if err != nil {
		return nil, err
	}
	names := []string{cn}
	var alts []string
	for i, a := range req.AlternativeNames {
		n, err := orderableName(fmt.Sprintf("alternative_names[%d]", i), a)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
			alts = append(alts, n)
		}
	}
	if len(names) > r.cfg.MaxNames {
		return nil, &cert.InputError{Field: "alternative_names", Msg: fmt.Sprintf("%d names are more than the CA allows in one order (%d)", len(names), r.cfg.MaxNames)}
	}
	v, err := cert.SelfSigned(names, 30*24*time.Hour, r.cfg.Now())
	if err != nil {
		return nil, err
	}
	rec := &cert.Certificate{Name: req.Name, Type: cert.TypeServer, AutoRenew: cert.AutoRenewACME, Status: cert.StatusPending,
		StatusDetail: "waiting for the CA: the order starts within a minute",
		Challenge:    "http", Authority: "lets_encrypt", CommonName: cn, AltNames: alts,
		Renewal: cert.Renewal{State: cert.RenewalScheduled, Reason: "no CA-issued certificate yet"}}
	if err := r.certs.Create(ctx, rec, v); err != nil {
		return nil, err
	}
	r.Wake()
	return rec, nil
}

// orderableName normalises a name for an ACME HTTP-01 order.
func orderableName(field, h string) (string, error) {
	if strings.Contains(h, "*") {
		return "", &cert.InputError{Field: field, Msg: fmt.Sprintf("%q: HTTP-01 cannot validate wildcards; list each name", h)}
	}
	n, err := property.Normalize(h)
	if err != nil {
		return "", &cert.InputError{Field: field, Msg: err.Error()}
	}
	if why := unorderable(n); why != "" {
		return "", &cert.InputError{Field: field, Msg: fmt.Sprintf("%q %s: a CA cannot issue a certificate for it", n, why)}
	}
	return n, nil
}

// reservedSuffixes are names no public CA issues for (RFC 6761, RFC 6762,
// RFC 8375, and the private-use .internal).
var reservedSuffixes = []string{"localhost", "local", "invalid", "internal", "home.arpa"}

// unorderable says why a normalised name can never be issued by an ACME
// CA, or "": an IP literal (HTTP-01 here orders DNS names), a single label,
// a special-use domain.
func unorderable(n string) string {
	if net.ParseIP(n) != nil {
		return "is an IP address"
	}
	if !strings.Contains(n, ".") {
		return "is a single label (not a domain)"
	}
	for _, s := range reservedSuffixes {
		if n == s || strings.HasSuffix(n, "."+s) {
			return "is under ." + s + ", a special-use domain"
		}
	}
	return ""
}

// Renew schedules an immediate renewal of a server certificate, whatever
// its schedule.
func (r *Renewer) Renew(ctx context.Context, idOrName string) (*cert.Certificate, error) {
	c, err := r.certs.Update(ctx, idOrName, func(c *cert.Certificate) error {
		if c.Type != cert.TypeServer {
			return &cert.InputError{Field: "id", Msg: "only server certificates renew; a CA certificate is a trust anchor"}
		}
		c.Renewal.Forced = true
		c.Renewal.NextAttemptAt = nil
		c.Renewal.State = cert.RenewalScheduled
		c.Renewal.Reason = "renewal requested by an operator"
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.Wake()
	return c, nil
}
