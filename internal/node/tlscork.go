package node

import "crypto/tls"

// corkAbove is the size of a write that makes more than one TLS record
// (crypto/tls's largest plaintext record): crypto/tls writes each record
// with a write(2) of its own, so each went out as a TCP segment of its own.
const corkAbove = 16 << 10

// corkedWrite writes p through tc; when p makes more than one record, with
// the socket under tc corked (TCP_CORK, Linux), so that the records leave
// in as few segments as the kernel makes (on loopback, one per 64 KiB
// rather than one per 16 KiB record; on a NIC, full-sized ones): issue 22's
// HTTPS 100 KiB rows paid for a segment, an ACK and a wake-up of the reader
// per record. The socket is uncorked once the write returns, which sends
// what is left. Only one goroutine writes a connection at a time (its
// h1 connection's, or its HTTP/2 batchConn's writer).
func corkedWrite(tc *tls.Conn, p []byte) (int, error) {
	if len(p) <= corkAbove {
		return tc.Write(p)
	}
	h, ok := tc.NetConn().(*holdConn)
	if !ok {
		return tc.Write(p)
	}
	h.cork(true)
	n, err := tc.Write(p)
	h.cork(false)
	return n, err
}
