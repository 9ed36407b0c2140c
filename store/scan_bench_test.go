package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/edge-cdn/edge/internal/etcdtest"
)

// fill writes n keys of 200 bytes into CertificateVersions, 100 a commit.
func fill(b *testing.B, s Store, n int) {
	val := make([]byte, 200)
	for i := 0; i < n; i += 100 {
		if err := s.Update(context.Background(), func(tx Tx) error {
			for j := i; j < min(i+100, n); j++ {
				if err := tx.Put(CertificateVersions, fmt.Sprintf("crt_%08d/%010d", j, 1), val); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

var errFull = errors.New("batch full")

// scan walks the bucket in read transactions of batch keys each: resumed
// with ForEachFrom, or (the old way) restarted at the bucket start and
// skipping what it saw. It returns the keys read from the store.
func scan(b *testing.B, s Store, batch int, resume bool) int {
	read, from := 0, ""
	for {
		n := 0
		var last string
		err := s.View(context.Background(), func(tx Tx) error {
			fn := func(k string, _ []byte) error {
				read++
				if !resume && from != "" && k <= from {
					return nil
				}
				if n == batch {
					return errFull
				}
				last, n = k, n+1
				return nil
			}
			if resume && from != "" {
				return tx.ForEachFrom(CertificateVersions, "", from+"\x00", fn)
			}
			return tx.ForEach(CertificateVersions, "", fn)
		})
		if !errors.Is(err, errFull) {
			if err != nil {
				b.Fatal(err)
			}
			return read
		}
		from = last
	}
}

// BenchmarkBatchedScan: 20,000 keys in batches of 2,000, the warm-up scan
// of tls.Certs.eachVersion, restarting versus resuming.
func BenchmarkBatchedScan(b *testing.B) {
	const keys, batch = 20000, 2000
	etcd := etcdtest.Start(b)
	e, err := OpenEtcd(context.Background(), EtcdConfig{Endpoints: []string{etcd.Endpoint}, Prefix: "/scan/"})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	bolt, err := OpenBolt(filepath.Join(b.TempDir(), "edge.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer bolt.Close()
	for _, st := range []struct {
		name string
		s    Store
	}{{"bbolt", bolt}, {"etcd", e}} {
		fill(b, st.s, keys)
		for _, resume := range []bool{false, true} {
			name := st.name + "/restart"
			if resume {
				name = st.name + "/ForEachFrom"
			}
			b.Run(name, func(b *testing.B) {
				var read int
				for b.Loop() {
					read = scan(b, st.s, batch, resume)
				}
				b.ReportMetric(float64(read), "keys-read")
			})
		}
	}
}
