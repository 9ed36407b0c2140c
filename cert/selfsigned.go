package cert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// SelfSigned makes a self-signed ECDSA P-256 server certificate for hosts
// (wildcards allowed), valid from now for validFor, as a Version.
func SelfSigned(hosts []string, validFor time.Duration, now time.Time) (Version, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Version{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return Version{}, err
	}
	cn := "edge bootstrap certificate"
	for i := len(hosts) - 1; i >= 0; i-- { // prefer the first concrete name
		if cn == "edge bootstrap certificate" || !strings.HasPrefix(hosts[i], "*.") {
			cn = hosts[i]
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Edge self-signed"}},
		DNSNames:              hosts,
		NotBefore:             now.Add(-time.Minute), // tolerate small clock skew
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Version{}, fmt.Errorf("self-signed certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Version{}, err
	}
	return Version{
		CertPEM:      string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:       string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
		SubjectNames: hosts,
		Issuer:       tmpl.Subject.String(),
		NotBefore:    tmpl.NotBefore.UTC(),
		NotAfter:     tmpl.NotAfter.UTC(),
		Source:       SourceSelfSigned,
		CreatedAt:    now.UTC(),
	}, nil
}
