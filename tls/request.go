package tls

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/edge-cdn/edge/property"
)

// CertRequest is the body of POST /api/v1/certificates/request.
type CertRequest struct {
	Name             string   `json:"name"`
	Challenge        string   `json:"challenge"`
	Authority        string   `json:"authority"`
	CommonName       string   `json:"common_name"`
	AlternativeNames []string `json:"alternative_names"`
}

// Request creates a certificate to be issued by ACME for the request's
// names and returns it pending at once; the renewal loop orders it. Until
// then a self-signed certificate for the names stands in, so a property may
// name it right away.
func (r *Renewer) Request(ctx context.Context, req CertRequest) (*Certificate, error) {
	if !property.NamePattern.MatchString(req.Name) {
		return nil, &InputError{Field: "name", Msg: fmt.Sprintf("%q must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", req.Name)}
	}
	if req.Challenge != "http" {
		return nil, &InputError{Field: "challenge", Msg: fmt.Sprintf("%q: only \"http\" (HTTP-01) is supported", req.Challenge)}
	}
	if req.Authority != "lets_encrypt" {
		return nil, &InputError{Field: "authority", Msg: fmt.Sprintf("%q: only \"lets_encrypt\" is supported (the CA of acme.directory)", req.Authority)}
	}
	if req.CommonName == "" {
		return nil, &InputError{Field: "common_name", Msg: "required"}
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
		return nil, &InputError{Field: "alternative_names", Msg: fmt.Sprintf("%d names are more than the CA allows in one order (%d)", len(names), r.cfg.MaxNames)}
	}
	v, err := SelfSigned(names, 30*24*time.Hour, r.cfg.Now())
	if err != nil {
		return nil, err
	}
	rec := &Certificate{Name: req.Name, Type: TypeServer, AutoRenew: AutoRenewACME, Status: StatusPending,
		StatusDetail: "waiting for the CA: the order starts within a minute",
		Challenge:    "http", Authority: "lets_encrypt", CommonName: cn, AltNames: alts,
		Renewal: Renewal{State: RenewalScheduled, Reason: "no CA-issued certificate yet"}}
	if err := r.certs.Create(ctx, rec, v); err != nil {
		return nil, err
	}
	r.Wake()
	return rec, nil
}

// orderableName normalises a name for an ACME HTTP-01 order.
func orderableName(field, h string) (string, error) {
	if strings.Contains(h, "*") {
		return "", &InputError{Field: field, Msg: fmt.Sprintf("%q: HTTP-01 cannot validate wildcards; list each name", h)}
	}
	n, err := property.Normalize(h)
	if err != nil {
		return "", &InputError{Field: field, Msg: err.Error()}
	}
	return n, nil
}

// Renew schedules an immediate renewal of a server certificate, whatever
// its schedule.
func (r *Renewer) Renew(ctx context.Context, idOrName string) (*Certificate, error) {
	c, err := r.certs.Update(ctx, idOrName, func(c *Certificate) error {
		if c.Type != TypeServer {
			return &InputError{Field: "id", Msg: "only server certificates renew; a CA certificate is a trust anchor"}
		}
		c.Renewal.Forced = true
		c.Renewal.NextAttemptAt = nil
		c.Renewal.State = RenewalScheduled
		c.Renewal.Reason = "renewal requested by an operator"
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.Wake()
	return c, nil
}

// CertificateView is a certificate as the API and events show it (SPEC
// §6): the stored record, its effective status and the properties that use
// it.
type CertificateView struct {
	Certificate
	Properties []string `json:"properties"`
}

// View returns what the API shows of c.
func View(c *Certificate, users []string, now time.Time) CertificateView {
	v := CertificateView{Certificate: *c, Properties: users}
	if v.Properties == nil {
		v.Properties = []string{}
	}
	if v.Status == StatusActive && !v.NotAfter.IsZero() && now.After(v.NotAfter) {
		v.Status = StatusExpired
		v.StatusDetail = "the certificate expired on " + v.NotAfter.Format(time.RFC3339)
	}
	return v
}
