package node

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"

	edgeacme "github.com/edge-cdn/edge/acme"
	"github.com/edge-cdn/edge/admin"
	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/events"
	"github.com/edge-cdn/edge/renew"
	"go.uber.org/zap"
)

// newACME returns the node's ACME client, or nil when acme.agree_tos is
// false (renewals then fail with a status_detail saying so).
func (n *node) newACME(httpLn net.Listener) (*edgeacme.Client, error) {
	c := n.cfg.ACME
	if !c.AgreeTOS {
		n.log.Info("ACME is off: acme.agree_tos is false")
		return nil, nil
	}
	var roots *x509.CertPool
	if c.CARoots != "" {
		pem, err := os.ReadFile(c.CARoots)
		if err != nil {
			return nil, fmt.Errorf("acme.ca_roots: %w", err)
		}
		if roots, err = x509.SystemCertPool(); err != nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("acme.ca_roots: %s holds no PEM certificate", c.CARoots)
		}
	}
	host, _, _ := net.SplitHostPort(n.cfg.Listen.HTTP)
	return edgeacme.New(n.store, edgeacme.Config{
		Directory: c.Directory, StagingDirectory: c.StagingDirectory, Email: c.Email, AgreeTOS: true,
		CARoots: roots, Profile: c.Profile, HTTPHost: host, HTTPPort: httpLn.Addr().(*net.TCPAddr).Port,
		KnownHost: n.servesHost, Logger: n.log.Named("acme"),
	})
}

func (n *node) newRenewer(acme *edgeacme.Client) *renew.Renewer {
	c := n.cfg
	var pf *edgeacme.Preflight
	if c.Preflight.Enabled {
		pf = &edgeacme.Preflight{Resolver: c.ACME.Resolver, Port: c.ACME.ChallengePort, EdgeHostname: c.Node.EdgeHostname}
	}
	return renew.NewRenewer(n.certs, acme, n.table.Load, n.store, renew.RenewerConfig{
		Policy:        cert.Policy{RenewBefore: c.Renewal.RenewBefore.Std()},
		CheckInterval: c.Renewal.CheckInterval.Std(),
		ARI:           c.Renewal.ARI,
		ExpiryWarning: c.Notify.ExpiryWarning.Std(),
		Preflight:     pf,
		EdgeHostname:  c.Node.EdgeHostname,
		MaxNames:      c.MaxNamesPerOrder(),
		Announce:      n.announceCertificate,
		OnRenewal:     n.metrics.Renewal,
		OnOrder:       n.metrics.Order,
		Logger:        n.log.Named("renewal"),
	})
}

// announceCertificate emits a certificate event carrying the certificate
// as the API shows it.
func (n *node) announceCertificate(ctx context.Context, typ string, c *cert.Certificate, detail string) {
	var users []string
	for _, p := range n.table.Load().Properties() {
		if p.TLS.Certificate == c.Name {
			users = append(users, p.Name)
		}
	}
	view, err := json.Marshal(admin.View(c, users, c.UpdatedAt))
	if err != nil {
		n.log.Error("encoding an event's certificate", zap.Error(err))
	}
	prop := ""
	if len(users) == 1 {
		prop = users[0]
	}
	_, _ = n.events.Emit(context.WithoutCancel(ctx), events.Event{Type: typ, Certificate: view, Property: prop, Detail: detail})
}
