package socks5

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"
)

// DialFunc opens a connection to addr ("host:port"; host an IP literal or a domain name)
// on network "tcp".
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Server is a SOCKS 5 server. The zero value is not usable: Dial is required.
type Server struct {
	// Dial connects to the destinations clients ask for.
	Dial DialFunc
	// HandshakeTimeout bounds the greeting and the request, and then the dial, so that a
	// silent client cannot hold a goroutine (0: DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration
	// Logf, if set, receives one line per failed request.
	Logf func(format string, args ...any)
}

// DefaultHandshakeTimeout is Server.HandshakeTimeout's default.
const DefaultHandshakeTimeout = 30 * time.Second

// Serve serves SOCKS 5 on l with a Server whose Dial is dial.
func Serve(l net.Listener, dial DialFunc) error {
	return (&Server{Dial: dial}).Serve(l)
}

// Serve accepts clients on l until Accept fails: when l is closed, Serve closes every
// connection it opened (ending their relays), waits for its goroutines and returns nil;
// another Accept error is returned after the same cleanup.
func (s *Server) Serve(l net.Listener) error {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &tracker{conns: map[net.Conn]struct{}{}}
	var wg sync.WaitGroup
	defer func() {
		cancel()
		tr.closeAll()
		wg.Wait()
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if !tr.track(c) {
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer tr.untrack(c)
			s.handle(ctx, tr, c)
		}()
	}
}

// tracker holds the connections of one Serve, to close them when it ends.
type tracker struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{} // open client and destination connections
	closed bool                  // Serve is ending: no new connection may start
}

// track registers c for closing at shutdown; false once shutdown has begun.
func (t *tracker) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

// untrack forgets c and closes it.
func (t *tracker) untrack(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	c.Close()
}

func (t *tracker) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for c := range t.conns {
		c.Close()
	}
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// handle runs one client: negotiation, request, dial, reply, relay.
func (s *Server) handle(ctx context.Context, tr *tracker, c net.Conn) {
	timeout := s.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	methods, err := ReadGreeting(c)
	if err != nil {
		s.logf("socks5: %v: %v", c.RemoteAddr(), err)
		return
	}
	// §3: "If the selected METHOD is X'FF', none of the methods listed by the client are
	// acceptable, and the client MUST close the connection."
	if !slices.Contains(methods, MethodNoAuth) {
		_, _ = c.Write([]byte{Version, MethodNoAcceptable})
		s.logf("socks5: %v: no acceptable authentication method (offered %v)", c.RemoteAddr(), methods)
		return
	}
	if _, err := c.Write([]byte{Version, MethodNoAuth}); err != nil {
		return
	}
	req, err := ReadRequest(c)
	if err != nil {
		var re *RequestError
		if errors.As(err, &re) && re.Reply != Succeeded {
			_, _ = c.Write(AppendReply(nil, re.Reply, netip.AddrPort{}))
		}
		s.logf("socks5: %v: %v", c.RemoteAddr(), err)
		return
	}
	if req.Cmd != CmdConnect {
		_, _ = c.Write(AppendReply(nil, CommandNotSupported, netip.AddrPort{}))
		s.logf("socks5: %v: command %d not supported", c.RemoteAddr(), req.Cmd)
		return
	}
	// The dial has its own bound; then the reply gets one, for a client that does not read.
	_ = c.SetDeadline(time.Time{})
	dctx, cancel := context.WithTimeout(ctx, timeout)
	dst, err := s.Dial(dctx, "tcp", req.Target())
	cancel()
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if err != nil {
		rep := ReplyFor(err)
		_, _ = c.Write(AppendReply(nil, rep, netip.AddrPort{}))
		s.logf("socks5: %v: CONNECT %s: %v (%v)", c.RemoteAddr(), req.Target(), err, rep)
		return
	}
	if !tr.track(dst) {
		dst.Close()
		return
	}
	defer tr.untrack(dst)
	// §6: "BND.ADDR contains the associated IP address" — the address the server used to
	// connect to the destination.
	if _, err := c.Write(AppendReply(nil, Succeeded, addrPortOf(dst.LocalAddr()))); err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	relay(c, dst)
}

// addrPortOf returns a net.Addr's address and port, or the zero AddrPort.
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case interface{ AddrPort() netip.AddrPort }:
		return a.AddrPort()
	}
	return netip.AddrPort{}
}

// relay copies both ways until both directions end. The end of one direction is passed on
// as a half-close (CloseWrite) where the connection has one, so that a client that shuts
// down its sending side still gets the whole answer; an error in either direction, or a
// connection without CloseWrite, closes both.
func relay(a, b net.Conn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		copyHalf(b, a)
	}()
	copyHalf(a, b)
	<-done
}

type closeWriter interface{ CloseWrite() error }

// copyHalf copies from src to dst; then half-closes dst or closes both.
func copyHalf(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if cw, ok := dst.(closeWriter); ok && err == nil {
		if cw.CloseWrite() == nil {
			return
		}
	}
	dst.Close()
	src.Close()
}

// ReplyFor returns the reply code that names why a dial failed (RFC 1928 §6), from the
// errno under it as a kernel (or wisp's endpoint) reports it:
//
//	ECONNREFUSED                         X'05' Connection refused
//	ENETUNREACH, ENETDOWN                X'03' Network unreachable
//	EHOSTUNREACH, EHOSTDOWN, no such host X'04' Host unreachable
//	ETIMEDOUT, a deadline or timeout     X'06' TTL expired
//	EACCES, EPERM                        X'02' Connection not allowed by ruleset
//	anything else                        X'01' General SOCKS server failure
//
// RFC 1928 has no "timed out" code; X'06' is what Tor and others answer for one.
func ReplyFor(err error) Reply {
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		return Succeeded
	case errors.Is(err, syscall.ECONNREFUSED):
		return ConnectionRefused
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ENETDOWN):
		return NetworkUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EHOSTDOWN):
		return HostUnreachable
	case errors.As(err, &dnsErr) && !dnsErr.IsTimeout:
		return HostUnreachable
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, os.ErrDeadlineExceeded), isTimeout(err):
		return TTLExpired
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return NotAllowed
	}
	return GeneralFailure
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
