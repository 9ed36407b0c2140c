package cert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"
)

// pair makes a certificate for names (self-signed unless parent is set)
// and returns its PEM, its key's PEM, the certificate and the key.
func pair(t *testing.T, names []string, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, notAfter time.Time) (string, string, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cn := "no names"
	if len(names) > 0 {
		cn = names[0]
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		DNSNames: names, NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, BasicConstraintsValid: true, IsCA: isCA}
	if len(names) == 0 {
		tmpl.Subject.CommonName = ""
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})), c, key
}

func TestCheckUpload(t *testing.T) {
	day := time.Now().Add(24 * time.Hour)
	caPEM, _, ca, caKey := pair(t, nil, true, nil, nil, day)
	interPEM, interKeyPEM, _, _ := pair(t, []string{"Sub CA"}, true, ca, caKey, day)
	ssCA, ssCAKey, _, _ := pair(t, []string{"lab.example"}, true, nil, nil, day)
	noNames, noNamesKey, _, _ := pair(t, nil, false, ca, caKey, day)
	many := make([]string, MaxNames+1)
	for i := range many {
		many[i] = fmt.Sprintf("h%d.example", i)
	}
	tooMany, tooManyKey, _, _ := pair(t, many, false, ca, caKey, day)
	_, leafKey, _, _ := pair(t, []string{"shop.example"}, false, ca, caKey, day)
	encrypted := strings.Replace(leafKey, "PRIVATE KEY", "ENCRYPTED PRIVATE KEY", 2)
	for _, tc := range []struct {
		name, cert, key, want, warn string
	}{
		{"openssl-style self-signed CA:TRUE", ssCA, ssCAKey, "", "self-signed and marked CA:TRUE"},
		{"an intermediate CA with its key", interPEM + caPEM, interKeyPEM, "is a CA certificate (CA:TRUE) issued by", ""},
		{"no names", noNames + caPEM, noNamesKey, "names no host", ""},
		{"too many names", tooMany + caPEM, tooManyKey, "names 1001 hosts, more than 1000", ""},
		{"encrypted key", ssCA, encrypted, "encrypted with a passphrase", ""},
	} {
		_, warnings, err := CheckUpload(tc.cert, tc.key, TypeServer, time.Now())
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
		if tc.warn != "" && !strings.Contains(strings.Join(warnings, ";"), tc.warn) {
			t.Errorf("%s: warnings %v, want %q", tc.name, warnings, tc.warn)
		}
	}
}

func TestRotateRollbackReplace(t *testing.T) {
	ctx := context.Background()
	c := newCerts(t)
	day := time.Now().Add(24 * time.Hour)
	// A bootstrap, as Bootstrap makes it.
	if _, err := c.Bootstrap(ctx, table(t, map[string]string{"shop.yaml": "hostnames: [shop.example]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: shop}\n"})); err != nil {
		t.Fatal(err)
	}
	p1, k1, _, _ := pair(t, []string{"shop.example"}, false, nil, nil, day)
	v1, err := ParseUpload(p1, k1, TypeServer, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.ReplaceBootstrap(ctx, "shop", v1, func(*Certificate) {})
	if err != nil || rec.Version != 2 || rec.Bootstrap || rec.Source != SourceUpload {
		t.Fatalf("replace bootstrap: %v %+v", err, rec)
	}
	if _, err := c.ReplaceBootstrap(ctx, "shop", v1, func(*Certificate) {}); !errors.Is(err, ErrExists) {
		t.Errorf("second replace: %v, want ErrExists", err)
	}
	p2, k2, _, _ := pair(t, []string{"shop.example"}, false, nil, nil, day)
	if rec, _, err = c.Rotate(ctx, "shop", p2, k2); err != nil || rec.Version != 3 {
		t.Fatalf("rotate: %v %+v", err, rec)
	}
	if _, _, err := c.Rotate(ctx, "shop", p2, k1); err == nil {
		t.Error("rotate with a foreign key accepted")
	}
	for v, want := range map[int]string{3: "the one serving", 4: "versions 1 to 3", 0: "versions 1 to 3"} {
		if _, err := c.Rollback(ctx, "shop", v); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("rollback to %d: %v, want %q", v, err, want)
		}
	}
	if rec, err = c.Rollback(ctx, "shop", 2); err != nil || rec.Version != 4 || rec.Source != SourceUpload {
		t.Fatalf("rollback: %v %+v", err, rec)
	}
	_, cur, _ := c.Current(ctx, "shop")
	if cur.CertPEM != v1.CertPEM || cur.RollbackOf != 2 || cur.KeyPEM == "" {
		t.Errorf("version 4 is not a copy of version 2: rollback_of %d", cur.RollbackOf)
	}
	if vs, _ := c.Versions(ctx, "shop"); len(vs) != 4 {
		t.Errorf("%d versions kept, want 4", len(vs))
	}
}
