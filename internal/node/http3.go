package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edge-cdn/edge/internal/config"
	"github.com/edge-cdn/edge/property"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// HTTP/3 (issue 19): one QUIC listener on UDP serves every property with
// the HTTPS port's handler, certificates and session-ticket keys.

// listenHTTP3 binds the UDP socket of listen.http3 into lns.h3 (nil when
// HTTP/3 is off), or takes it from the process an upgrade replaces (h).
// "auto" takes the host of listen.https and the port its listener bound;
// when listen.https asked for port 0 and that UDP port is taken, both are
// bound again on another port, a few times.
func (l *listeners) listenHTTP3(cfg *config.Config, h *Handover) error {
	addr := cfg.Listen.HTTP3
	if addr == "" {
		return nil
	}
	if addr != config.HTTP3Auto {
		pc, err := h.ListenPacket(addr)
		if err != nil {
			return fmt.Errorf("listen.http3 %s: %w", addr, err)
		}
		l.h3 = pc
		return nil
	}
	host, port, _ := net.SplitHostPort(cfg.Listen.HTTPS) // checked by config
	for try := 0; ; try++ {
		bound := net.JoinHostPort(host, strconv.Itoa(l.https.Addr().(*net.TCPAddr).Port))
		pc, err := h.ListenPacket(bound)
		if err == nil {
			l.h3 = pc
			return nil
		}
		if port != "0" || try == 10 || !errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("listen.http3 (auto: listen.https over UDP) %s: %w", bound, err)
		}
		ln, lerr := h.Listen(cfg.Listen.HTTPS)
		if lerr != nil {
			return fmt.Errorf("listen.https %s: %w", cfg.Listen.HTTPS, lerr)
		}
		l.https.Close()
		l.https = ln
	}
}

// closeHTTP3 closes the UDP socket, once the QUIC listener has stopped
// reading it (shutdown closes the TCP listeners first, this one last).
func (l *listeners) closeHTTP3() {
	if l.h3 != nil {
		l.h3.Close()
	}
}

// QUIC limits. Streams are bounded per connection like HTTP/2's
// concurrent streams (Go's server allows 250; nginx 128, quic-go 100);
// a client needs 3 unidirectional streams (control and QPACK).
const (
	h3MaxStreams    = 100
	h3MaxUniStreams = 16
	// h3HeaderSlop is what quic-go's head limit allows beyond
	// limits.max_header_bytes: quic-go counts 32 bytes more per field
	// (RFC 9114's field section size) than the proxy's count of the head
	// as HTTP/1.1 text, so that with this slop a head of up to 64 fields
	// the proxy finds under the limit is not refused by quic-go, and one
	// over it is answered 431 by the proxy (access-logged and counted like
	// every request). quic-go's own 431, unlogged, only answers heads
	// bigger still.
	h3HeaderSlop = 64 * 32
	// h3RetryAbove is the rate of new QUIC connection attempts per second
	// above which the node asks clients to prove their address with a
	// Retry (RFC 9000 §8.1.2) before it spends a handshake on them: a
	// flood from spoofed addresses then costs one packet each. Below it a
	// handshake needs no extra round trip.
	h3RetryAbove = 1000
	// h3UpgradeGrace is how long the old process of an upgrade keeps
	// reading the UDP socket the new one reads too: GOAWAY goes out and
	// short requests finish, then it stops (two readers of one socket
	// take each other's packets); clients reconnect to the new process.
	h3UpgradeGrace = 250 * time.Millisecond
	// udpBufferWanted is the socket buffer quic-go asks for (7 MiB).
	udpBufferWanted = 7 << 20
)

// http3Server is the node's QUIC listener: a quic.Transport over a UDP
// socket it does not own (the caller closes it, so that a socket handed
// over by an upgrade outlives this server) and the http3.Server on it.
type http3Server struct {
	srv *http3.Server
	tr  *quic.Transport
	ln  *quic.Listener
	// retry is the budget of new connections per second served without
	// a Retry; retries counts the Retries asked for.
	retry   *rate.Limiter
	retries atomic.Int64
	// warned is when the last flood warning was logged (unix seconds):
	// one a minute at most.
	warned atomic.Int64
}

// newHTTP3Server makes the QUIC listener on pc: TLS 1.3 with the
// certificates tlsConf picks, handler for every request, the request head
// bounded by limits (quic-go bounds the HEADERS frame and its decoded
// fields, see h3HeaderSlop; the handler checks the decoded fields against
// limits.max_header_bytes), idle and handshake timeouts, no 0-RTT.
func newHTTP3Server(pc net.PacketConn, tlsConf *tls.Config, handler http.Handler, limits config.LimitsConfig, log *zap.Logger) (*http3Server, error) {
	warnUDPBuffer(pc, log)
	s := &http3Server{retry: rate.NewLimiter(h3RetryAbove, h3RetryAbove)}
	s.tr = &quic.Transport{Conn: pc, VerifySourceAddress: func(net.Addr) bool {
		if s.retry.Allow() {
			return false
		}
		s.retries.Add(1)
		now := time.Now().Unix()
		if last := s.warned.Load(); now-last >= 60 && s.warned.CompareAndSwap(last, now) {
			log.Warn("HTTP/3: new QUIC connections above the handshake budget; clients must prove their address (Retry) first",
				zap.Int("budget_per_second", h3RetryAbove), zap.Int64("retries_so_far", s.retries.Load()))
		}
		return true
	}}
	tc := http3.ConfigureTLSConfig(tlsConf) // ALPN h3
	tc.MinVersion = tls.VersionTLS13
	ln, err := s.tr.Listen(tc, &quic.Config{
		HandshakeIdleTimeout:  limits.ReadHeaderTimeout.Std(),
		MaxIdleTimeout:        limits.IdleTimeout.Std(),
		MaxIncomingStreams:    h3MaxStreams,
		MaxIncomingUniStreams: h3MaxUniStreams,
		Allow0RTT:             false, // replayable requests would reach origins
	})
	if err != nil {
		s.tr.Close()
		return nil, fmt.Errorf("listen.http3: %w", err)
	}
	s.ln = ln
	s.srv = &http3.Server{
		Handler:        handler,
		MaxHeaderBytes: limits.MaxHeaderBytes + h3HeaderSlop,
		IdleTimeout:    limits.IdleTimeout.Std(),
		// No Port: the proxy writes Alt-Svc itself (per property, the
		// public port), not http3.Server.SetQUICHeaders.
	}
	return s, nil
}

// serve serves until shutdown; it returns http.ErrServerClosed then.
func (s *http3Server) serve() error { return s.srv.ServeListener(s.ln) }

// shutdown refuses new connections, sends GOAWAY on the others and waits
// for their requests until ctx ends (then cuts them), and stops reading
// the UDP socket, which it leaves open.
func (s *http3Server) shutdown(ctx context.Context) error {
	s.ln.Close() // handshakes under way are refused; connections stay
	err := s.srv.Shutdown(ctx)
	s.tr.Close()
	return err
}

// http3TLS is the QUIC listener's TLS configuration: TLS 1.3, the
// certificate the HTTPS port would choose (unknown names refused), the
// fleet's session-ticket keys, and handshakes refused for the names of a
// property that turned HTTP/3 off.
func (n *node) http3TLS() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS13, GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if name, err := property.Normalize(hello.ServerName); err == nil {
			if p := n.table.Load().Lookup(name); p != nil && !p.HTTP3 {
				return nil, errHTTP3Off
			}
		}
		return n.tls.GetCertificate(hello)
	}}
	n.tickets.Apply(c)
	return c
}

var errHTTP3Off = errors.New("HTTP/3 is off for this name (property http3: false)")

// http3Server builds the QUIC listener on lns.h3, or returns nil when
// HTTP/3 is off.
func (n *node) http3Server(lns *listeners) (*http3Server, error) {
	if lns.h3 == nil {
		return nil, nil
	}
	// quic-go, too, runs each request on a new goroutine.
	return newHTTP3Server(lns.h3, n.http3TLS(), streamStack(n.metrics.ByProtocol(n.proxy.HTTPSHandler())), n.cfg.Limits, n.log.Named("http3"))
}

// http3Port is the UDP port offered in Alt-Svc: listen.https_redirect_port
// when set (a port mapping in front of the node maps UDP the same way),
// else the bound one; 0 when HTTP/3 is off.
func http3Port(cfg *config.Config, lns *listeners) int {
	if lns.h3 == nil {
		return 0
	}
	return cfg.HTTPSRedirectPort(lns.h3.LocalAddr().(*net.UDPAddr).Port)
}

// warnUDPBuffer raises pc's receive and send buffers to what quic-go wants
// and warns, with the sysctl that allows it, when the kernel caps them
// lower (quic-go's own message, "failed to sufficiently increase receive
// buffer size", is then silenced: this one says what to do).
func warnUDPBuffer(pc net.PacketConn, log *zap.Logger) {
	if os.Getenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING") == "" {
		os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	}
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return
	}
	_ = uc.SetReadBuffer(udpBufferWanted)
	_ = uc.SetWriteBuffer(udpBufferWanted)
	rcv, snd := socketBuffer(uc, syscall.SO_RCVBUF), socketBuffer(uc, syscall.SO_SNDBUF)
	if rcv < 0 || snd < 0 {
		return
	}
	// Linux reports twice the size asked for (its bookkeeping); other
	// systems the size itself.
	if rcv < udpBufferWanted || snd < udpBufferWanted {
		log.Warn("UDP buffers too small for HTTP/3: failed to sufficiently increase receive buffer size; "+
			"under load QUIC packets will be dropped. Raise the kernel's limits: "+
			"sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000 (and in /etc/sysctl.d/ to keep it)",
			zap.Int("receive_buffer_kib", rcv/1024), zap.Int("send_buffer_kib", snd/1024), zap.Int("wanted_kib", udpBufferWanted/1024))
	}
}

func socketBuffer(uc *net.UDPConn, opt int) int {
	rc, err := uc.SyscallConn()
	if err != nil {
		return -1
	}
	size := -1
	_ = rc.Control(func(fd uintptr) {
		if v, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, opt); err == nil {
			size = v
		}
	})
	return size
}
