package netconn

import (
	"net/netip"

	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/raw"
)

// PingConn is an ICMP echo socket, like Linux's SOCK_DGRAM/IPPROTO_ICMP sockets and
// wireguard-go's netstack PingConn: it sends whole ICMP echo request messages (the stack
// writes the identifier and the checksum) and receives the echo replies whose identifier is
// its own. Replies wait in a mailbox of at most UDPRecvMboxSize messages (as lwIP's raw
// netconns share the UDP mailbox size); beyond, they are dropped and counted. Every method
// is safe for concurrent use.
type PingConn struct {
	rawCore

	ident uint16 // guarded by dgramConn.mu
}

// ListenPing opens an ICMP echo socket bound to laddr, whose family (an unspecified
// 0.0.0.0 or :: for any address) picks ICMP or ICMPv6. Errors: errs.Val (no family),
// errs.AddrNotAvail, errs.Use (no identifier free), errs.Mem (no PCB, or MempNumNetconn
// reached), errs.Clsd (the stack is closed).
func ListenPing(s *stack.Stack, laddr netip.Addr) (*PingConn, error) {
	return openPing(s, laddr, netip.Addr{})
}

// DialPing opens an ICMP echo socket connected to raddr: Write sends there and only its
// replies are received. laddr may be invalid (any); the family is raddr's, else laddr's.
func DialPing(s *stack.Stack, laddr, raddr netip.Addr) (*PingConn, error) {
	return openPing(s, laddr, raddr)
}

func openPing(s *stack.Stack, laddr, raddr netip.Addr) (*PingConn, error) {
	v6, err := rawFamily(laddr, raddr)
	if err != nil {
		return nil, err
	}
	c := &PingConn{}
	c.maxLen, c.pingIdent = 0xffff, &c.ident
	newPing := func() (*raw.PCB, error) { return s.Raw().NewPing(v6) }
	if err := c.open(s, laddr, raddr, newPing); err != nil {
		return nil, err
	}
	return c, nil
}

// Ident returns the echo identifier (0 until Bind, Connect or the first send chose it).
func (c *PingConn) Ident() uint16 { return locked(&c.mu, &c.ident) }
