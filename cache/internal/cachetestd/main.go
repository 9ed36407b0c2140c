// Command cachetestd serves cache.Cache in front of a plain
// httputil.ReverseProxy to one origin: a stand-in for the edge binary until
// the cache is wired into it, used by scripts/cache-tests.sh to run the
// http-cache-tests suite against the cache alone.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/edge-cdn/edge/cache"
	"github.com/edge-cdn/edge/property"
	"go.uber.org/zap"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "cachetestd:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("cachetestd", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve on")
	origin := fs.String("origin", "http://127.0.0.1:8000", "origin URL")
	dir := fs.String("dir", "", "disk tier directory (empty: memory only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*origin)
	if err != nil {
		return err
	}
	log, _ := zap.NewDevelopment()
	cfg := cache.Config{MemorySize: 64 << 20, Logger: log}
	if *dir != "" {
		cfg.Dir, cfg.DiskSize = *dir, 256<<20
	}
	c, err := cache.New(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	p := &property.Property{Name: "conformance", Cache: property.Cache{Enabled: true,
		MaxObjectSize: property.DefaultMaxObjectSize, Query: property.QueryAll}}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host
	}}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.Serve(w, r, p, rp)
	}), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
