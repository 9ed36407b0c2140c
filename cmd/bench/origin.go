package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// runOrigin serves /small (100 bytes) and /large (100 KiB) on an HTTP port
// and an HTTPS port (HTTP/2 and HTTP/1.1, ECDSA P-256), until killed.
// /c/small and /c/large are the same bodies with Cache-Control: max-age
// (the cache scenarios), and /scan/<anything> a 64 KiB cacheable body
// (the cache scan).
func runOrigin(args []string) {
	small := []byte(strings.Repeat("s", 100))
	large := []byte(strings.Repeat("L", 100<<10))
	scan := []byte(strings.Repeat("S", scanObject))
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) { w.Write(small) })
	mux.HandleFunc("/large", func(w http.ResponseWriter, r *http.Request) { w.Write(large) })
	var cacheableServed atomic.Int64 // for /cacheable: the cache scenarios' origin requests
	cacheable := func(body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			cacheableServed.Add(1)
			w.Header().Set("Cache-Control", "max-age=3600")
			w.Write(body)
		}
	}
	mux.HandleFunc("/c/small", cacheable(small))
	mux.HandleFunc("/c/large", cacheable(large))
	mux.HandleFunc("/scan/", cacheable(scan))
	memoryOrigin(mux)
	// /conns: connections accepted so far (both ports), for the edge's
	// upstream reuse.
	var conns atomic.Int64
	countConns := func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	mux.HandleFunc("/conns", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, conns.Load()) })
	mux.HandleFunc("/cacheable", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, cacheableServed.Load()) })
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench.local"}, DNSNames: []string{"bench.local"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	tlsSrv := &http.Server{Addr: "127.0.0.1:" + args[1], Handler: mux, ConnState: countConns,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}}
	go tlsSrv.ListenAndServeTLS("", "")
	// HTTP/3 on the HTTPS port number, over UDP (the h3 scenarios' direct run).
	go (&http3.Server{Addr: tlsSrv.Addr, Handler: mux, TLSConfig: http3.ConfigureTLSConfig(tlsSrv.TLSConfig)}).ListenAndServe()
	(&http.Server{Addr: "127.0.0.1:" + args[0], Handler: mux, ConnState: countConns}).ListenAndServe()
}
