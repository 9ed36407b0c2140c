package node

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/etcdtest"
	"github.com/edge-cdn/edge/internal/testutil"
	"github.com/edge-cdn/edge/store"
)

// TestLastGoodOverEtcdTxnLimit starts a node on a real etcd with more
// property files than one etcd transaction may write (--max-txn-ops, 128
// by default): every file's last good version is stored. In one
// transaction the write failed, and a rejected file had nothing to fall
// back on after the next restart. The versions of files that are gone are
// deleted in the same batches.
func TestLastGoodOverEtcdTxnLimit(t *testing.T) {
	etcd := etcdtest.Start(t)
	const count = 300
	props := map[string]string{}
	for i := range count {
		props[fmt.Sprintf("p%03d.yaml", i)] = fmt.Sprintf("hostnames: [p%d.example]\norigins: [{url: http://127.0.0.1:9}]\n", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := store.OpenEtcd(ctx, store.EtcdConfig{Endpoints: []string{etcd.Endpoint}, Prefix: "/lg/"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// 100 files that are gone since the last run: their versions go, in
	// the same batches as the new ones.
	if err := st.Update(ctx, func(tx store.Tx) error {
		for i := range 100 {
			if err := tx.Put(store.Meta, fmt.Sprintf("property/test-node//gone/g%03d.yaml", i), []byte("hostnames: [gone.example]\n")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	n := runTestNode(t, fmt.Sprintf("store:\n  backend: etcd\n  etcd: {endpoints: [%s], prefix: /lg/}\n", etcd.Endpoint), props)

	// At start the versions are stored once the node serves (issue 20).
	var stored, gone int
	count300 := func() bool {
		stored, gone = 0, 0
		err := st.View(ctx, func(tx store.Tx) error {
			return tx.ForEach(store.Meta, "property/test-node/", func(k string, v []byte) error {
				switch {
				case strings.Contains(k, "/gone/"):
					gone++
				case strings.HasSuffix(k, ".yaml") && strings.Contains(string(v), "hostnames:"):
					stored++
				}
				return nil
			})
		})
		return err == nil && stored == count && gone == 0
	}
	testutil.WaitFor(t, "every last good version stored", count300, func() string {
		return fmt.Sprintf("%d last good versions stored for %d files, %d of 100 gone files kept\n%s", stored, count, gone, n.log)
	})
}
