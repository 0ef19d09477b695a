package tcpapp

import (
	"fmt"
	"net/netip"

	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/tcp"
)

// Listen binds a listener to addr on s (backlog 0: the default) and installs accept; it runs
// in core context through s.Callback, so it must not be called from core context. Close the
// listener with CloseListener.
func Listen(s *stack.Stack, addr netip.AddrPort, backlog int, accept tcp.AcceptFunc) (*tcp.Listener, error) {
	var l *tcp.Listener
	var err error
	s.Callback(func() {
		var c *tcp.PCB
		if c, err = s.TCP().NewPCB(); err != nil {
			return
		}
		if err = c.Bind(addr); err != nil {
			c.Close()
			return
		}
		if l, err = c.Listen(backlog); err != nil {
			c.Close()
			return
		}
		l.OnAccept(accept)
	})
	if err != nil {
		return nil, fmt.Errorf("tcpapp: listen on %v: %w", addr, err)
	}
	return l, nil
}

// CloseListener closes l, a listener of s returned by Listen, Echo or Discard, in core context.
// Connections already accepted go on until their peers close them (or s closes).
func CloseListener(s *stack.Stack, l *tcp.Listener) error {
	var err error
	s.Callback(func() { err = l.Close() })
	return err
}
