package tcpapp

import (
	"fmt"
	"net/netip"

	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/tcp"
)

// Listener is a raw-API listener on every core of a stack (one PCB per core: each SYN
// reaches the core its connection hashes to). Accept callbacks run in the context of the
// core that accepted, so on a stack with several cores they may run in parallel.
type Listener struct {
	s    *stack.Stack
	addr netip.AddrPort
	ls   []*tcp.Listener // per core; nil once closed; that core's context
}

// Addr returns the address the listener is bound to (with the port chosen, if it was 0).
func (l *Listener) Addr() netip.AddrPort { return l.addr }

// Listen binds a listener to addr on every core of s (backlog 0: the default) and installs
// accept; it takes the cores' locks, so it must not be called from core context. Close it
// with Close (or CloseListener).
func Listen(s *stack.Stack, addr netip.AddrPort, backlog int, accept tcp.AcceptFunc) (*Listener, error) {
	l := &Listener{s: s, addr: addr}
	for _, k := range s.Cores() {
		var err error
		k.Callback(func() {
			var c *tcp.PCB
			if c, err = k.TCP().NewPCB(); err != nil {
				return
			}
			// Core 0 chooses the port; the others listen on it.
			if err = c.Bind(l.addr); err != nil {
				c.Close()
				return
			}
			var tl *tcp.Listener
			if tl, err = c.Listen(backlog); err != nil {
				c.Close()
				return
			}
			tl.OnAccept(accept)
			l.addr = netip.AddrPortFrom(addr.Addr(), tl.Addr().Port())
			l.ls = append(l.ls, tl)
		})
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("tcpapp: listen on %v: %w", addr, err)
		}
	}
	return l, nil
}

// Close closes the listener on every core. Connections already accepted go on until their
// peers close them (or the stack closes). Must not be called from core context.
func (l *Listener) Close() error {
	for i, tl := range l.ls {
		if tl == nil {
			continue
		}
		l.s.Cores()[i].Callback(func() { tl.Close() })
		l.ls[i] = nil
	}
	return nil
}

// CloseListener closes l, a listener of s returned by Listen, Echo or Discard.
func CloseListener(s *stack.Stack, l *Listener) error { return l.Close() }

// Dial makes a PCB on the core its connection to raddr hashes to (Stack.ConnectOn), lets
// attach install its callbacks (core context of k), and connects; connected runs when
// the handshake completes. On an error attach's PCB is closed (a CLOSED PCB is freed at
// once, without callbacks) and the caller must forget it. Must not be called from core
// context.
func Dial(s *stack.Stack, raddr netip.AddrPort, attach func(k *stack.Core, c *tcp.PCB), connected tcp.ConnectedFunc) error {
	_, err := s.ConnectOn(netip.AddrPort{}, raddr, func(k *stack.Core, local netip.AddrPort) error {
		c, err := k.TCP().NewPCB()
		if err != nil {
			return err
		}
		if local.IsValid() {
			if err := c.Bind(local); err != nil {
				c.Close()
				return err
			}
		}
		attach(k, c)
		if err := c.Connect(raddr, connected); err != nil {
			c.Close()
			return err
		}
		return nil
	})
	return err
}
