package node

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/edge-cdn/edge/internal/etcdtest"
	"github.com/edge-cdn/edge/internal/testutil"
	"github.com/edge-cdn/edge/store"
	"github.com/mholt/acmez/v3/acme"
)

// TestChallengeFromAnotherNode: a challenge token another node of the
// fleet stores in etcd is answered on this node's HTTP port as soon as the
// other node's write returned (the write is the fence: the CA is told to
// validate only then, and this node's watch may deliver it later), for a
// host no property serves, while hosts with nothing pending get 404.
func TestChallengeFromAnotherNode(t *testing.T) {
	e := etcdtest.Start(t)
	const dir = "https://ca.test/dir"
	n := runTestNode(t, fmt.Sprintf("store: {backend: etcd, etcd: {endpoints: [%s]}}\nacme: {agree_tos: true, directory: %q, staging_directory: \"\"}\n", e.Endpoint, dir), nil)
	get := func(host, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+n.addrs.HTTP+"/.well-known/acme-challenge/"+token, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("fleet.example", "tok-fleet"); code != 404 {
		t.Fatalf("before any token: %d, want 404", code)
	}
	// The other node: certmagic's distributed solver stores the challenge
	// under its issuer's prefix, with the storage's 8-byte time in front.
	other, err := store.OpenEtcd(context.Background(), store.EtcdConfig{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	chal, _ := json.Marshal(acme.Challenge{Type: acme.ChallengeTypeHTTP01, Token: "tok-fleet", KeyAuthorization: "tok-fleet.thumb",
		Identifier: acme.Identifier{Type: "dns", Value: "fleet.example"}})
	val := binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
	key := path.Join("acme", certmagic.StorageKeys.Safe((&certmagic.ACMEIssuer{CA: dir}).IssuerKey()), "challenge_tokens", "fleet.example.json")
	if err := other.Update(context.Background(), func(tx store.Tx) error { return tx.Put(store.ACME, key, append(val, chal...)) }); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the token stored by another node to be answered", func() bool {
		code, body := get("fleet.example", "tok-fleet")
		return code == 200 && body == "tok-fleet.thumb"
	})
	if code, _ := get("unknown.example", "tok-fleet"); code != 404 {
		t.Errorf("a host with nothing pending: %d, want 404", code)
	}
}
