package tcpapp

import (
	"context"
	"net/netip"
	"sync"

	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/tcp"
)

// Server listens on an address and runs a Transfer on every connection it accepts: each
// sends n bytes of the pattern of seed and checksums what arrives (Sink: n == 0; Source:
// n > 0). Its methods are safe for concurrent use and must not be called from core context.
type Server struct {
	s    *stack.Stack
	addr netip.AddrPort

	lmu sync.Mutex
	l   *Listener // nil once closed

	mu     sync.Mutex
	ready  []*Transfer // accepted, not yet returned by Accept
	notify chan struct{}
}

// Serve listens on addr; every connection sends n bytes of the pattern of seed, then its
// FIN, and consumes and checksums what arrives until the peer's FIN (see Transfer).
func Serve(s *stack.Stack, addr netip.AddrPort, n int64, seed uint64) (*Server, error) {
	v := &Server{s: s, notify: make(chan struct{}, 1)}
	l, err := Listen(s, addr, 0, func(l *tcp.Listener, c *tcp.PCB) {
		t := newTransfer(s, n, seed)
		t.local, t.remote = c.LocalAddr(), c.RemoteAddr()
		t.attach(s.CoreFor(c.LocalAddr(), c.RemoteAddr()), c)
		v.mu.Lock()
		v.ready = append(v.ready, t)
		v.mu.Unlock()
		select {
		case v.notify <- struct{}{}:
		default:
		}
		t.fill()
	})
	if err != nil {
		return nil, err
	}
	v.l = l
	v.addr = l.Addr()
	return v, nil
}

// Sink is Serve with nothing to send: every connection consumes and checksums what
// arrives, and closes after the peer's FIN.
func Sink(s *stack.Stack, addr netip.AddrPort) (*Server, error) { return Serve(s, addr, 0, 0) }

// Source is Serve for downloads: every connection sends n bytes of the pattern of seed.
func Source(s *stack.Stack, addr netip.AddrPort, n int64, seed uint64) (*Server, error) {
	return Serve(s, addr, n, seed)
}

// Addr returns the address the server listens on (with the port chosen, if addr's was 0).
func (v *Server) Addr() netip.AddrPort { return v.addr }

// Accept returns the next connection accepted (in order), waiting for one until ctx ends.
func (v *Server) Accept(ctx context.Context) (*Transfer, error) {
	for {
		v.mu.Lock()
		if len(v.ready) > 0 {
			t := v.ready[0]
			v.ready[0] = nil
			v.ready = v.ready[1:]
			v.mu.Unlock()
			return t, nil
		}
		v.mu.Unlock()
		select {
		case <-v.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close stops listening; accepted connections go on until they end (or the stack closes).
func (v *Server) Close() error {
	v.lmu.Lock()
	defer v.lmu.Unlock()
	if v.l == nil {
		return nil
	}
	err := CloseListener(v.s, v.l)
	v.l = nil
	return err
}
