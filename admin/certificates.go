package admin

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/internal/yamlfield"
	"github.com/edge-cdn/edge/property"
	"github.com/edge-cdn/edge/renew"
	"go.uber.org/zap"
)

// automatedUsers are the properties naming certificate name with renew
// automation on.
func (a *api) automatedUsers(name string) []string {
	var out []string
	if a.c.Properties == nil {
		return nil
	}
	for _, p := range a.c.Properties().Properties() {
		if p.TLS.Certificate == name && p.TLS.RenewAutomation {
			out = append(out, p.Name)
		}
	}
	return out
}

// usersOf maps each certificate name to the properties naming it.
func (a *api) usersOf() map[string][]string {
	out := map[string][]string{}
	if a.c.Properties == nil {
		return out
	}
	for _, p := range a.c.Properties().Properties() {
		if c := p.TLS.Certificate; c != "" {
			out[c] = append(out[c], p.Name)
		}
	}
	return out
}

func (a *api) listCertificates(w http.ResponseWriter, r *http.Request) {
	list, err := a.c.Certs.List(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	for key, allowed := range map[string][]string{"status": {cert.StatusPending, cert.StatusActive, cert.StatusFailed, cert.StatusExpired},
		"auto_renew": {cert.AutoRenewACME, cert.AutoRenewNone}, "type": {cert.TypeServer, cert.TypeCA}} {
		if v := q.Get(key); v != "" && !slices.Contains(allowed, v) {
			a.fail(w, r, inputErr(key, "%q: use one of %s", v, strings.Join(allowed, ", ")))
			return
		}
	}
	users, now := a.usersOf(), a.c.Now()
	out := make([]CertificateView, 0, len(list))
	for _, c := range list {
		v := View(c, users[c.Name], now)
		if s := q.Get("status"); s != "" && v.Status != s {
			continue
		}
		if s := q.Get("auto_renew"); s != "" && v.AutoRenew != s {
			continue
		}
		if s := q.Get("type"); s != "" && v.Type != s {
			continue
		}
		out = append(out, v)
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			a.fail(w, r, inputErr("limit", "%q: give a number of certificates, 1 or more", v))
			return
		}
		limit = n
	}
	switch q.Get("order") {
	case "", "name":
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	case "attention":
		sortForAttention(out)
	default:
		a.fail(w, r, inputErr("order", "%q: use name or attention", q.Get("order")))
		return
	}
	total := len(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	writeJSON(w, http.StatusOK, map[string]any{"certificates": out, "total": total})
}

// sortForAttention orders certificates as an operator reads them (the
// dashboard): failed, expired, pending, then active; within each, the
// soonest to expire first, then by name.
func sortForAttention(out []CertificateView) {
	rank := map[string]int{cert.StatusFailed: 0, cert.StatusExpired: 1, cert.StatusPending: 2, cert.StatusActive: 3}
	sort.SliceStable(out, func(i, j int) bool {
		ri, oki := rank[out[i].Status]
		rj, okj := rank[out[j].Status]
		if !oki {
			ri = len(rank)
		}
		if !okj {
			rj = len(rank)
		}
		if ri != rj {
			return ri < rj
		}
		ei, ej := out[i].NotAfter, out[j].NotAfter
		switch {
		case ei.IsZero() != ej.IsZero():
			return !ei.IsZero() // a date before none
		case !ei.Equal(ej):
			return ei.Before(ej)
		}
		return out[i].Name < out[j].Name
	})
}

func (a *api) getCertificate(w http.ResponseWriter, r *http.Request) {
	c, err := a.c.Certs.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, View(c, a.usersOf()[c.Name], a.c.Now()))
}

type createBody struct {
	Name           string   `json:"name"`
	CertificatePEM string   `json:"certificate_pem"`
	PrivateKeyPEM  string   `json:"private_key_pem"`
	Type           string   `json:"type"`
	AutoRenew      string   `json:"auto_renew"`
	SelfSigned     bool     `json:"self_signed"`
	Hostnames      []string `json:"hostnames"`
	ValidFor       string   `json:"valid_for"`
}

func inputErr(field, format string, args ...any) error {
	return &cert.InputError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

func checkName(name string) error {
	if name == "" {
		return inputErr("name", "required")
	}
	if !property.NamePattern.MatchString(name) {
		return inputErr("name", "%q must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

func checkAutoRenew(v *string, typ string) error {
	switch *v {
	case "":
		*v = cert.AutoRenewNone
	case cert.AutoRenewNone:
	case cert.AutoRenewACME:
		if typ == cert.TypeCA {
			return inputErr("auto_renew", "only server certificates renew; a CA certificate cannot use acme")
		}
	default:
		return inputErr("auto_renew", "%q: use acme or none", *v)
	}
	return nil
}

func (a *api) createCertificate(w http.ResponseWriter, r *http.Request) {
	var b createBody
	if err := decode(r, &b); err != nil {
		a.fail(w, r, err)
		return
	}
	rec, v, warnings, err := a.newCertificate(&b)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	err = a.c.Certs.Create(r.Context(), rec, v)
	if errors.Is(err, cert.ErrExists) && !b.SelfSigned && b.Type == cert.TypeServer {
		// A property named it before it was uploaded: the upload replaces
		// the self-signed bootstrap Edge made meanwhile (issue 11).
		want := *rec
		rec, err = a.c.Certs.ReplaceBootstrap(r.Context(), b.Name, v, func(c *cert.Certificate) {
			c.AutoRenew, c.Challenge, c.Authority = want.AutoRenew, want.Challenge, want.Authority
			c.CommonName, c.AltNames = want.CommonName, want.AltNames
		})
		if err == nil {
			warnings = append(warnings, fmt.Sprintf("replaced the self-signed bootstrap certificate %s (kept as version %d)", b.Name, rec.Version-1))
		}
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rec = a.followAutomation(r, rec, &warnings)
	view := View(rec, a.usersOf()[rec.Name], a.c.Now())
	view.Warnings = append(warnings, a.coverage(rec)...)
	writeJSON(w, http.StatusCreated, view)
}

// followAutomation switches c to auto_renew acme when a property names it
// with tls.renew_automation (issue 11: the property's setting drives it),
// and says so in warnings.
func (a *api) followAutomation(r *http.Request, c *cert.Certificate, warnings *[]string) *cert.Certificate {
	if a.c.Properties == nil || c.Type != cert.TypeServer || c.AutoRenew == cert.AutoRenewACME {
		return c
	}
	switched, err := a.c.Certs.FollowAutomationOf(r.Context(), a.c.Properties(), c.Name)
	if err != nil {
		a.c.Logger.Warn("following tls.renew_automation", zap.String("certificate", c.Name), zap.Error(err))
	}
	if len(switched) == 1 {
		*warnings = append(*warnings, "auto_renew is acme: a property naming it has tls.renew_automation: true")
		return switched[0]
	}
	return c
}

// newCertificate checks a create body and builds the record and version.
func (a *api) newCertificate(b *createBody) (*cert.Certificate, cert.Version, []string, error) {
	var v cert.Version
	if err := checkName(b.Name); err != nil {
		return nil, v, nil, err
	}
	if b.Type == "" {
		b.Type = cert.TypeServer
	}
	if b.Type != cert.TypeServer && b.Type != cert.TypeCA {
		return nil, v, nil, inputErr("type", "%q: use server or ca", b.Type)
	}
	if err := checkAutoRenew(&b.AutoRenew, b.Type); err != nil {
		return nil, v, nil, err
	}
	rec := &cert.Certificate{Name: b.Name, Type: b.Type, AutoRenew: b.AutoRenew, Status: cert.StatusActive,
		Renewal: cert.Renewal{State: "none"}}
	now := a.c.Now()
	var err error
	var warnings []string
	if b.SelfSigned {
		if v, err = selfSigned(b, now); err != nil {
			return nil, v, nil, err
		}
	} else {
		if len(b.Hostnames) > 0 || b.ValidFor != "" {
			return nil, v, nil, inputErr("hostnames", "hostnames and valid_for go with self_signed: true")
		}
		if v, warnings, err = cert.CheckUpload(b.CertificatePEM, b.PrivateKeyPEM, b.Type, now); err != nil {
			return nil, v, nil, err
		}
	}
	if b.AutoRenew == cert.AutoRenewACME {
		rec.Challenge, rec.Authority = "http", "lets_encrypt"
		rec.Renewal.State = "scheduled"
		if b.SelfSigned {
			// Its names do not matter (SPEC §1): it renews for the
			// hostnames of the properties using it, and waits for one
			// rather than ordering the stand-in's names (issue 11).
			rec.Status = cert.StatusPending
			rec.StatusDetail = "serving a self-signed certificate until the CA issues one"
		} else if len(v.SubjectNames) > 0 {
			rec.CommonName, rec.AltNames = v.SubjectNames[0], v.SubjectNames[1:]
		}
	}
	return rec, v, warnings, nil
}

// coverage warns about hostnames of the properties using c that its
// serving version does not cover.
func (a *api) coverage(c *cert.Certificate) []string {
	if a.c.Properties == nil || c.Type != cert.TypeServer {
		return nil
	}
	var missing []string
	for _, p := range a.c.Properties().Properties() {
		if p.TLS.Certificate != c.Name {
			continue
		}
		for _, h := range p.Hostnames {
			if !covers(c.SubjectNames, h) {
				missing = append(missing, h+" ("+p.Name+")")
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return []string{"the certificate does not cover these hostnames of the properties using it; their clients get a name mismatch: " + strings.Join(missing, ", ")}
}

// covers reports whether names hold host, exactly or by a wildcard of its
// first label.
func covers(names []string, host string) bool {
	wild := ""
	if i := strings.IndexByte(host, '.'); i > 0 {
		wild = "*" + host[i:]
	}
	for _, n := range names {
		if n == host || (wild != "" && n == wild) {
			return true
		}
	}
	return false
}

// rotateCertificate is POST /api/v1/certificates/{id}/versions: an
// operator's new version, checked as an upload, serving at once.
func (a *api) rotateCertificate(w http.ResponseWriter, r *http.Request) {
	var b struct {
		CertificatePEM string `json:"certificate_pem"`
		PrivateKeyPEM  string `json:"private_key_pem"`
	}
	if err := decode(r, &b); err != nil {
		a.fail(w, r, err)
		return
	}
	c, warnings, err := a.c.Certs.Rotate(r.Context(), r.PathValue("id"), b.CertificatePEM, b.PrivateKeyPEM)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.c.Logger.Info("certificate rotated", zap.String("certificate", c.Name), zap.Int("version", c.Version))
	view := View(c, a.usersOf()[c.Name], a.c.Now())
	view.Warnings = append(warnings, a.coverage(c)...)
	writeJSON(w, http.StatusCreated, view)
}

// rollbackCertificate is POST /api/v1/certificates/{id}/rollback: a kept
// version serves again, as a new version.
func (a *api) rollbackCertificate(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Version *int `json:"version"`
	}
	if err := decode(r, &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if b.Version == nil {
		a.fail(w, r, inputErr("version", "required: the kept version to serve again (see GET .../versions)"))
		return
	}
	c, err := a.c.Certs.Rollback(r.Context(), r.PathValue("id"), *b.Version)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.c.Logger.Info("certificate rolled back", zap.String("certificate", c.Name), zap.Int("to", *b.Version), zap.Int("version", c.Version))
	view := View(c, a.usersOf()[c.Name], a.c.Now())
	view.Warnings = a.coverage(c)
	writeJSON(w, http.StatusCreated, view)
}

func selfSigned(b *createBody, now time.Time) (cert.Version, error) {
	var v cert.Version
	if b.Type != cert.TypeServer {
		return v, inputErr("type", "self-signed certificates are of type server")
	}
	if b.CertificatePEM != "" || b.PrivateKeyPEM != "" {
		return v, inputErr("certificate_pem", "a self-signed certificate is made by the edge: send no PEM")
	}
	// No hostnames is fine: a bootstrap certificate's names do not matter
	// (SPEC §1); renewals use the names of the properties using it.
	if len(b.Hostnames) > cert.MaxNames {
		return v, inputErr("hostnames", "%d names, more than %d", len(b.Hostnames), cert.MaxNames)
	}
	hosts := make([]string, 0, len(b.Hostnames))
	for i, h := range b.Hostnames {
		n, err := property.NormalizeWildcard(h)
		if err != nil {
			return v, inputErr(fmt.Sprintf("hostnames[%d]", i), "%v", err)
		}
		if strings.HasPrefix(n, "*.") && b.AutoRenew == cert.AutoRenewACME {
			return v, inputErr(fmt.Sprintf("hostnames[%d]", i), "wildcard %q cannot renew by ACME HTTP-01", n)
		}
		hosts = append(hosts, n)
	}
	validFor := 90 * 24 * time.Hour
	if b.ValidFor != "" {
		d, err := yamlfield.ParseDuration(b.ValidFor)
		if err != nil {
			return v, inputErr("valid_for", "%v", err)
		}
		if d < time.Hour || d > 825*24*time.Hour {
			return v, inputErr("valid_for", "%s must be between 1h and 825d", b.ValidFor)
		}
		validFor = d
	}
	return cert.SelfSigned(hosts, validFor, now)
}

func (a *api) patchCertificate(w http.ResponseWriter, r *http.Request) {
	var b struct {
		AutoRenew *string `json:"auto_renew"`
	}
	if err := decode(r, &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if b.AutoRenew == nil {
		a.fail(w, r, inputErr("auto_renew", "required: the only field that can be changed"))
		return
	}
	c, err := a.c.Certs.Update(r.Context(), r.PathValue("id"), func(c *cert.Certificate) error {
		if *b.AutoRenew == "" {
			return inputErr("auto_renew", "use acme or none")
		}
		if err := checkAutoRenew(b.AutoRenew, c.Type); err != nil {
			return err
		}
		if *b.AutoRenew == cert.AutoRenewNone {
			if users := a.automatedUsers(c.Name); len(users) > 0 {
				return inputErr("auto_renew", "certificate %s renews by ACME because properties %s have tls.renew_automation: true; turn that off in their files first",
					c.Name, strings.Join(users, ", "))
			}
		}
		c.AutoRenew = *b.AutoRenew
		if c.AutoRenew == cert.AutoRenewACME {
			c.Challenge, c.Authority = "http", "lets_encrypt"
			// A self-signed stand-in's names do not matter: it waits for a
			// property to name it (issue 11).
			if c.CommonName == "" && len(c.SubjectNames) > 0 && c.Source != cert.SourceSelfSigned {
				c.CommonName, c.AltNames = c.SubjectNames[0], c.SubjectNames[1:]
			}
			c.Renewal.State = "scheduled"
		} else {
			c.Renewal.State = "none"
		}
		return nil
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, View(c, a.usersOf()[c.Name], a.c.Now()))
}

func (a *api) deleteCertificate(w http.ResponseWriter, r *http.Request) {
	c, err := a.c.Certs.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if users := a.usersOf()[c.Name]; len(users) > 0 {
		writeError(w, http.StatusConflict, "in_use", fmt.Sprintf("certificate %s is used by properties %s: change their tls.certificate first",
			c.Name, strings.Join(users, ", ")))
		return
	}
	if err := a.c.Certs.Delete(r.Context(), c.ID); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) certificateVersions(w http.ResponseWriter, r *http.Request) {
	vs, err := a.c.Certs.Versions(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"versions": vs})
}

func (a *api) requestCertificate(w http.ResponseWriter, r *http.Request) {
	if a.c.Issuer == nil {
		writeError(w, http.StatusNotImplemented, "not_implemented", "ACME issuance is not available on this node")
		return
	}
	var b CertRequest
	if err := decode(r, &b); err != nil {
		a.fail(w, r, err)
		return
	}
	c, err := a.c.Issuer.Request(r.Context(), renew.Order(b))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, View(c, a.usersOf()[c.Name], a.c.Now()))
}

func (a *api) renewCertificate(w http.ResponseWriter, r *http.Request) {
	if a.c.Issuer == nil {
		writeError(w, http.StatusNotImplemented, "not_implemented", "ACME issuance is not available on this node")
		return
	}
	c, err := a.c.Issuer.Renew(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, View(c, a.usersOf()[c.Name], a.c.Now()))
}
