package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/certmagic"
	"github.com/edge-cdn/edge/store"
	"github.com/mholt/acmez/v3/acme"
)

// pebbleAccount asks Pebble for the account of the key stored in the
// stopped node's store: the contact as the CA records it, and its URL.
func pebbleAccount(t *testing.T, n *acmeNode) (contact []string, location string) {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(n.dir, "data", "edge.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var keys [][]byte
	err = st.View(context.Background(), func(tx store.Tx) error {
		return tx.ForEach(store.ACME, "acme/", func(k string, v []byte) error {
			if strings.Contains(k, "/users/") && strings.HasSuffix(k, ".key") {
				keys = append(keys, append([]byte(nil), v[8:]...))
			}
			return nil
		})
	})
	if err != nil || len(keys) == 0 {
		t.Fatalf("no account key stored: %v", err)
	}
	pool := x509.NewCertPool()
	pemBytes, _ := os.ReadFile(n.pebble.CARootsFile)
	pool.AppendCertsFromPEM(pemBytes)
	cl := &acme.Client{Directory: n.pebble.DirectoryURL,
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
	var locations []string
	for _, k := range keys {
		key, err := certmagic.PEMDecodePrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		acct, err := cl.GetAccount(context.Background(), acme.Account{PrivateKey: key})
		if err != nil {
			t.Fatalf("Pebble does not know the stored account: %v", err)
		}
		contact, location = acct.Contact, acct.Location
		locations = append(locations, acct.Location)
	}
	for _, l := range locations {
		if l != location {
			t.Errorf("the store holds keys of several accounts: %v", locations)
		}
	}
	return contact, location
}

// Issue 11 item 3: acme.email is the account's contact, and a changed
// email updates the same account.
func TestACMEAccountContact(t *testing.T) {
	t.Parallel()
	n := startACMENode(t, acmeOpts{})
	n.api("POST", "/api/v1/certificates/request", map[string]any{"name": "c1", "challenge": "http",
		"authority": "lets_encrypt", "common_name": "c1.contact.example"})
	n.waitCert("c1", "issued", status("active"))
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	contact, location := pebbleAccount(t, n)
	if len(contact) != 1 || contact[0] != "mailto:ops@edge.test" {
		t.Fatalf("Pebble records contact %v, want mailto:ops@edge.test", contact)
	}

	cfg := filepath.Join(n.dir, "edge.yaml")
	b, _ := os.ReadFile(cfg)
	writeFiles(t, n.dir, map[string]string{"edge.yaml": strings.Replace(string(b), "email: ops@edge.test", "email: NewOps@edge.test", 1)})
	n2 := &acmeNode{testNode: runNode(t, n.dir), pebble: n.pebble}
	n2.api("POST", "/api/v1/certificates/request", map[string]any{"name": "c2", "challenge": "http",
		"authority": "lets_encrypt", "common_name": "c2.contact.example"})
	n2.waitCert("c2", "issued", status("active"))
	if !strings.Contains(n2.log.String(), "ACME account contact updated") {
		t.Errorf("no log of the contact update:\n%s", n2.log)
	}
	if err := n2.stop(); err != nil {
		t.Fatal(err)
	}
	contact2, location2 := pebbleAccount(t, n2)
	if len(contact2) != 1 || contact2[0] != "mailto:newops@edge.test" || location2 != location {
		t.Errorf("after the email changed: contact %v at %s, want mailto:newops@edge.test at %s (the same account)", contact2, location2, location)
	}
}
