package cert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// TestSelfSignedCAWithoutCertSignAccepted: openssl req -x509 -addext
// keyUsage=critical,digitalSignature makes a self-signed certificate
// marked CA:TRUE whose key usage lacks certSign (the lab's own test
// certificates). x509.CheckSignatureFrom applies the key-usage constraint,
// so the self-signature check failed and the upload was refused as "a CA
// certificate issued by CN=…". The signature alone is checked: it is
// accepted with the warning of every self-signed CA:TRUE leaf.
func TestSelfSignedCAWithoutCertSignAccepted(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "lab.example"},
		DNSNames: []string{"lab.example"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	v, warnings, err := CheckUpload(certPEM, keyPEM, TypeServer, time.Now())
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "self-signed and marked CA:TRUE") {
		t.Errorf("warnings %q", warnings)
	}
	if len(v.SubjectNames) != 1 || v.SubjectNames[0] != "lab.example" {
		t.Errorf("names %v", v.SubjectNames)
	}

	// A CA:TRUE certificate with the same subject whose signature is another
	// key's is still refused: the check is the signature, not the names.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, other)
	if err != nil {
		t.Fatal(err)
	}
	forgedPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: forged}))
	if _, _, err := CheckUpload(forgedPEM, keyPEM, TypeServer, time.Now()); err == nil || !strings.Contains(err.Error(), "is a CA certificate (CA:TRUE) issued by") {
		t.Errorf("forged self-signature: %v", err)
	}
}
