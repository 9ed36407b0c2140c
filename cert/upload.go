package cert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"
)

// InputError is a problem with one field of what a user sent.
type InputError struct {
	Field string
	Msg   string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Msg }

func inputErr(field, format string, args ...any) error {
	return &InputError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// MaxNames bounds the names of an uploaded server certificate: far above
// what any public CA issues (Let's Encrypt 100, commercial CAs ~250), low
// enough that a mistaken upload is not served.
const MaxNames = 1000

// ParseUpload is CheckUpload without the warnings.
func ParseUpload(certPEM, keyPEM string, typ string, now time.Time) (Version, error) {
	v, _, err := CheckUpload(certPEM, keyPEM, typ, now)
	return v, err
}

// CheckUpload checks an uploaded certificate and returns it as a Version,
// with warnings about what is accepted but worth knowing: the PEM parses;
// for a server certificate the private key parses and matches the leaf, the
// leaf names at least one host and at most MaxNames, and the chain is put
// in order, leaf first; no certificate of the chain has expired. A CA
// certificate needs no key. A self-signed leaf marked CA:TRUE (what
// `openssl req -x509` makes by default) is accepted as a server
// certificate, with a warning (issue 11).
func CheckUpload(certPEM, keyPEM string, typ string, now time.Time) (Version, []string, error) {
	var warnings []string
	certs, err := parseCerts(certPEM)
	if err != nil {
		return Version{}, nil, err
	}
	var leaf *x509.Certificate
	switch typ {
	case TypeServer:
		if strings.TrimSpace(keyPEM) == "" {
			return Version{}, nil, inputErr("private_key_pem", "a server certificate needs its private key")
		}
		key, err := parseKey(keyPEM)
		if err != nil {
			return Version{}, nil, err
		}
		for _, c := range certs {
			if PublicKeyEqual(c.PublicKey, key.Public()) {
				leaf = c
				break
			}
		}
		if leaf == nil {
			return Version{}, nil, inputErr("private_key_pem", "the private key matches no certificate in certificate_pem")
		}
		if leaf.IsCA {
			if !selfSignedCert(leaf) {
				return Version{}, nil, inputErr("certificate_pem", "the key's certificate (%s) is a CA certificate (CA:TRUE) issued by %s, not a server certificate: upload the certificate the CA issued for your hostnames, with its key", leaf.Subject.String(), leaf.Issuer.String())
			}
			warnings = append(warnings, "the certificate is self-signed and marked CA:TRUE (as openssl req -x509 makes it); it is served as a server certificate, which browsers do not trust: fine for a bootstrap or a test")
		}
		names := subjectNames(leaf)
		switch {
		case len(names) == 0:
			return Version{}, nil, inputErr("certificate_pem", "the certificate names no host (no DNS subject alternative name, no common name): it cannot be served")
		case len(names) > MaxNames:
			return Version{}, nil, inputErr("certificate_pem", "the certificate names %d hosts, more than %d", len(names), MaxNames)
		}
		certs, err = orderChain(leaf, certs)
		if err != nil {
			return Version{}, nil, err
		}
	case TypeCA:
		leaf = certs[0]
		if !leaf.IsCA {
			return Version{}, nil, inputErr("type", "the certificate is not a CA certificate (no CA basic constraint); upload it with type server")
		}
		if keyPEM != "" {
			return Version{}, nil, inputErr("private_key_pem", "a CA certificate is a trust anchor: do not upload its private key")
		}
	default:
		return Version{}, nil, inputErr("type", "%q: use server or ca", typ)
	}
	for i, c := range certs {
		if now.After(c.NotAfter) {
			return Version{}, nil, inputErr("certificate_pem", "certificate %d (%s) expired on %s", i+1, c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	var out bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return Version{
		CertPEM: out.String(), KeyPEM: strings.TrimSpace(keyPEM) + "\n",
		SubjectNames: subjectNames(leaf), Issuer: leaf.Issuer.String(),
		NotBefore: leaf.NotBefore.UTC(), NotAfter: leaf.NotAfter.UTC(),
		Source: SourceUpload, CreatedAt: now.UTC(),
	}, warnings, nil
}

// selfSignedCert reports whether c is signed by its own key. The signature
// alone is checked: CheckSignatureFrom also wants the certSign key usage of
// a CA, which a self-signed server certificate made with
// keyUsage=digitalSignature lacks (issue 18).
func selfSignedCert(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

func subjectNames(c *x509.Certificate) []string {
	if len(c.DNSNames) > 0 {
		return c.DNSNames
	}
	if c.Subject.CommonName != "" {
		return []string{c.Subject.CommonName}
	}
	return nil
}

func parseCerts(s string) ([]*x509.Certificate, error) {
	rest := []byte(s)
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, inputErr("certificate_pem", "holds a %q PEM block; only CERTIFICATE blocks belong here", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, inputErr("certificate_pem", "certificate %d does not parse: %v", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, inputErr("certificate_pem", "no PEM certificate found (expected -----BEGIN CERTIFICATE-----)")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, inputErr("certificate_pem", "text after the last PEM block is not PEM")
	}
	return certs, nil
}

func parseKey(s string) (crypto.Signer, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		return nil, inputErr("private_key_pem", "no PEM private key found (expected -----BEGIN PRIVATE KEY-----)")
	}
	// PKCS#8 encryption, or the legacy RFC 1423 form (its Proc-Type header).
	if b.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, inputErr("private_key_pem", "the private key is encrypted with a passphrase: Edge needs it unencrypted (openssl pkey -in key.pem -out key-plain.pem), stored 0600")
	}
	var key any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		return nil, inputErr("private_key_pem", "a %q PEM block is not a private key", b.Type)
	}
	if err != nil {
		return nil, inputErr("private_key_pem", "does not parse: %v", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, inputErr("private_key_pem", "unsupported key type %T", key)
	}
	return signer, nil
}

// PublicKeyEqual reports whether two public keys are the same key.
func PublicKeyEqual(a, b crypto.PublicKey) bool {
	switch k := a.(type) {
	case *ecdsa.PublicKey:
		return k.Equal(b)
	case *rsa.PublicKey:
		return k.Equal(b)
	case ed25519.PublicKey:
		return k.Equal(b)
	}
	return false
}

// orderChain returns leaf followed by its issuers in order, each checked by
// signature. A certificate that is not on the leaf's chain is an error.
func orderChain(leaf *x509.Certificate, certs []*x509.Certificate) ([]*x509.Certificate, error) {
	out := []*x509.Certificate{leaf}
	used := map[*x509.Certificate]bool{leaf: true}
	for cur := leaf; ; {
		var next *x509.Certificate
		for _, c := range certs {
			if !used[c] && bytes.Equal(cur.RawIssuer, c.RawSubject) && cur.CheckSignatureFrom(c) == nil {
				next = c
				break
			}
		}
		if next == nil {
			break
		}
		out = append(out, next)
		used[next] = true
		cur = next
	}
	if len(out) != len(certs) {
		for i, c := range certs {
			if !used[c] {
				return nil, inputErr("certificate_pem", "certificate %d (%s) is not part of the leaf's issuing chain", i+1, c.Subject.String())
			}
		}
	}
	return out, nil
}
