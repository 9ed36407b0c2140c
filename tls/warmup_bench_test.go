package tls

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/internal/etcdtest"
	"github.com/edge-cdn/edge/internal/fixture"
	"github.com/edge-cdn/edge/store"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

var warmCerts = flag.Int("warmup.certs", 2000, "certificates in the store for BenchmarkWarmUp (issue 13 measures 100000)")

// BenchmarkWarmUp measures a node's certificate start on each store: ready
// (Load: every record read, handshakes can start) and warm (every current
// version in memory, the store no longer needed to serve). Metrics are
// per start, not per op: run with -benchtime=1x.
//
//	go test ./tls -run '^$' -bench WarmUp -benchtime=1x -warmup.certs=100000
func BenchmarkWarmUp(b *testing.B) {
	versions := warmVersions(b, *warmCerts)
	b.Run("bolt", func(b *testing.B) {
		st := fixture.Bolt(b)
		benchWarmUp(b, st, versions, 1000)
	})
	b.Run("etcd", func(b *testing.B) {
		e := etcdtest.Start(b)
		st, err := store.OpenEtcd(context.Background(), store.EtcdConfig{Endpoints: []string{e.Endpoint}, Prefix: "/warm/", MaxTxnOps: 256})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		benchWarmUp(b, st, versions, 256/3)
	})
}

var (
	warmOnce sync.Once
	warmVs   []cert.Version
)

// warmVersions makes n distinct self-signed certificates, once per run.
func warmVersions(b *testing.B, n int) []cert.Version {
	warmOnce.Do(func() {
		now := time.Now()
		for i := range n {
			v, err := cert.SelfSigned([]string{fmt.Sprintf("h%d.warm.example", i)}, 90*24*time.Hour, now)
			if err != nil {
				b.Fatal(err)
			}
			v.Version = 1
			warmVs = append(warmVs, v)
		}
	})
	return warmVs
}

// writeWarm stores the versions as the node stores certificates, batch
// certificates per transaction.
func writeWarm(b *testing.B, st store.Store, versions []cert.Version, batch int) {
	now := time.Now()
	for i := 0; i < len(versions); i += batch {
		err := st.Update(context.Background(), func(tx store.Tx) error {
			for j := i; j < min(i+batch, len(versions)); j++ {
				v := versions[j]
				rec := cert.Certificate{ID: fmt.Sprintf("crt_%08d", j), Name: fmt.Sprintf("c%d", j), Type: cert.TypeServer,
					AutoRenew: cert.AutoRenewNone, Status: cert.StatusActive, Version: 1, SubjectNames: v.SubjectNames,
					Issuer: v.Issuer, NotBefore: v.NotBefore, NotAfter: v.NotAfter, Source: v.Source, CreatedAt: now, UpdatedAt: now}
				if err := cert.Put(tx, &rec, &v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func benchWarmUp(b *testing.B, st store.Store, versions []cert.Version, batch int) {
	writeWarm(b, st, versions, batch)
	ctx := context.Background()
	var ready, warm time.Duration
	b.ResetTimer()
	for range b.N {
		core, logs := observer.New(zap.DebugLevel)
		m := NewManager(cert.NewCerts(st), zap.New(core))
		start := time.Now()
		if err := m.Load(ctx); err != nil {
			b.Fatal(err)
		}
		ready += time.Since(start)
		for logs.FilterMessage("certificates in memory").Len() == 0 {
			if logs.FilterMessage("warming certificates up; the rest load at their first handshake").Len() > 0 {
				b.Fatal("the warm-up failed")
			}
			time.Sleep(time.Millisecond)
		}
		warm += time.Since(start)
		if got := logs.FilterMessage("certificates in memory").All()[0].ContextMap()["versions"]; got != int64(len(versions)) {
			b.Fatalf("warmed %v versions, want %d", got, len(versions))
		}
		m.Close()
	}
	b.ReportMetric(float64(ready.Milliseconds())/float64(b.N), "ms-ready")
	b.ReportMetric(float64(warm.Milliseconds())/float64(b.N), "ms-warm")
	b.ReportMetric(0, "ns/op")
}
