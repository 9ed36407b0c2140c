package admin

import (
	"time"

	"github.com/edge-cdn/edge/cert"
)

// CertificateView is a certificate as the API and events show it (SPEC
// §6): the stored record, its effective status and the properties that use
// it.
type CertificateView struct {
	cert.Certificate
	Properties []string `json:"properties"`
	// Warnings are about what was just accepted (an upload, a rotation),
	// only in the answer to that write.
	Warnings []string `json:"warnings,omitempty"`
}

// View returns what the API shows of c.
func View(c *cert.Certificate, users []string, now time.Time) CertificateView {
	v := CertificateView{Certificate: *c, Properties: users}
	if v.Properties == nil {
		v.Properties = []string{}
	}
	if v.Status == cert.StatusActive && !v.NotAfter.IsZero() && now.After(v.NotAfter) {
		v.Status = cert.StatusExpired
		v.StatusDetail = "the certificate expired on " + v.NotAfter.Format(time.RFC3339)
	}
	return v
}
