package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// testPKI is a root, an intermediate and leaves for upload tests.
type testPKI struct {
	rootPEM, interPEM      string
	leafPEM, leafKeyPEM    string
	expiredPEM, expiredKey string
	otherKeyPEM            string
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	now := time.Now()
	root, rootKey := mkCert(t, "Test Root", nil, nil, true, now.Add(-time.Hour), now.Add(24*time.Hour))
	inter, interKey := mkCert(t, "Test Intermediate", root, rootKey, true, now.Add(-time.Hour), now.Add(24*time.Hour))
	leaf, leafKey := mkCert(t, "shop.example", inter, interKey, false, now.Add(-time.Hour), now.Add(12*time.Hour))
	expired, expiredKey := mkCert(t, "old.example", inter, interKey, false, now.Add(-48*time.Hour), now.Add(-time.Hour))
	_, otherKey := mkCert(t, "other.example", nil, nil, false, now, now.Add(time.Hour))
	return testPKI{
		rootPEM: certPEM(root), interPEM: certPEM(inter),
		leafPEM: certPEM(leaf), leafKeyPEM: keyPEM(t, leafKey),
		expiredPEM: certPEM(expired), expiredKey: keyPEM(t, expiredKey),
		otherKeyPEM: keyPEM(t, otherKey),
	}
}

func mkCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool, from, to time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, NotBefore: from, NotAfter: to,
		BasicConstraintsValid: true, IsCA: isCA}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	} else {
		tmpl.DNSNames = []string{cn}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func certPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func keyPEM(t *testing.T, k *ecdsa.PrivateKey) string {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}
