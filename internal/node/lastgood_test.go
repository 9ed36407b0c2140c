package node

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/etcdtest"
	"github.com/edge-cdn/edge/store"
)

// TestLastGoodOverEtcdTxnLimit starts a node on a real etcd with more
// property files than one etcd transaction may write (--max-txn-ops, 128
// by default): every file's last good version is stored. In one
// transaction the write failed, and a rejected file had nothing to fall
// back on after the next restart.
func TestLastGoodOverEtcdTxnLimit(t *testing.T) {
	etcd := etcdtest.Start(t)
	const count = 300
	props := map[string]string{}
	for i := range count {
		props[fmt.Sprintf("p%03d.yaml", i)] = fmt.Sprintf("hostnames: [p%d.example]\norigins: [{url: http://127.0.0.1:9}]\n", i)
	}
	n := runTestNode(t, fmt.Sprintf("store:\n  backend: etcd\n  etcd: {endpoints: [%s], prefix: /lg/}\n", etcd.Endpoint), props)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := store.OpenEtcd(ctx, store.EtcdConfig{Endpoints: []string{etcd.Endpoint}, Prefix: "/lg/"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stored := 0
	err = st.View(ctx, func(tx store.Tx) error {
		return tx.ForEach(store.Meta, "property/test-node/", func(k string, v []byte) error {
			if strings.HasSuffix(k, ".yaml") && strings.Contains(string(v), "hostnames:") {
				stored++
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if stored != count {
		t.Errorf("%d last good versions stored for %d files\n%s", stored, count, n.log)
	}
}
