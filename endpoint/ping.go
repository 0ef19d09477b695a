package endpoint

import (
	"net"
	"net/netip"
	"time"

	"github.com/wispstack/wisp/endpoint/netconn"
)

// PingConn is an ICMP echo socket, as wireguard-go's netstack PingConn (and Linux's
// unprivileged SOCK_DGRAM/IPPROTO_ICMP socket): WriteTo sends a whole ICMP echo request
// message (the stack sets the identifier and the checksum), ReadFrom returns whole echo
// reply messages whose identifier is this socket's. It implements net.Conn (when dialed)
// and net.PacketConn; addresses are *PingAddr. Every method is safe for concurrent use.
type PingConn struct {
	sockBase
	c     *netconn.PingConn
	local netip.Addr // LocalAddr's address, whose family is the socket's
}

// dialPing opens a ping socket bound to laddr (invalid: any of raddr's family) and
// connected to raddr (invalid: unconnected). One of them must be valid.
func (n *Net) dialPing(network string, laddr, raddr netip.Addr) (*PingConn, error) {
	if !laddr.IsValid() && !raddr.IsValid() {
		switch network {
		case "ping6", "ip6:ipv6-icmp", "ip6:58", "ip6:icmpv6":
			laddr = netip.IPv6Unspecified()
		default:
			laddr = netip.IPv4Unspecified()
		}
	}
	laddr, raddr = laddr.Unmap(), raddr.Unmap()
	var ra net.Addr
	if raddr.IsValid() {
		ra = PingAddrFromAddr(raddr)
	}
	if laddr.IsValid() && raddr.IsValid() && laddr.Is4() != raddr.Is4() {
		return nil, opError("dial", network, PingAddrFromAddr(laddr), ra, errAFNoSupport)
	}
	if raddr.IsValid() {
		if err := n.routeErr(raddr); err != nil {
			return nil, opError("dial", network, nil, ra, err)
		}
	}
	var c *netconn.PingConn
	var err error
	if raddr.IsValid() {
		c, err = netconn.DialPing(n.s, laddr, raddr)
	} else {
		c, err = netconn.ListenPing(n.s, laddr)
	}
	if err != nil {
		op := "listen"
		if raddr.IsValid() {
			op = "dial"
		}
		return nil, opError(op, network, nil, ra, err)
	}
	la := c.LocalAddr()
	if !la.IsValid() {
		la = laddr
	}
	pc := &PingConn{sockBase: sockBase{n: n, nc: c, network: network, laddr: PingAddrFromAddr(la)}, c: c, local: la}
	if raddr.IsValid() {
		pc.raddr = PingAddrFromAddr(raddr)
	}
	return pc, nil
}

// DialPingAddr opens a ping socket, as wireguard-go's netstack Net.DialPingAddr: bound to
// laddr (invalid: chosen by the route), connected to raddr (invalid: unconnected); one
// must be valid.
func (n *Net) DialPingAddr(laddr, raddr netip.Addr) (*PingConn, error) {
	network := "ping4"
	if laddr.Is6() && !laddr.Is4In6() || raddr.Is6() && !raddr.Is4In6() {
		network = "ping6"
	}
	if !laddr.IsValid() && !raddr.IsValid() {
		return nil, opError("dial", network, nil, nil, errMissingAddr)
	}
	return n.dialPing(network, laddr, raddr)
}

// ListenPingAddr opens an unconnected ping socket bound to laddr.
func (n *Net) ListenPingAddr(laddr netip.Addr) (*PingConn, error) {
	return n.DialPingAddr(laddr, netip.Addr{})
}

// DialPing is DialPingAddr with *PingAddr arguments (nil: invalid), as wireguard-go's.
func (n *Net) DialPing(laddr, raddr *PingAddr) (*PingConn, error) {
	var la, ra netip.Addr
	if laddr != nil {
		la = laddr.addr
	}
	if raddr != nil {
		ra = raddr.addr
	}
	return n.DialPingAddr(la, ra)
}

// ListenPing is ListenPingAddr with a *PingAddr, as wireguard-go's.
func (n *Net) ListenPing(laddr *PingAddr) (*PingConn, error) {
	var la netip.Addr
	if laddr != nil {
		la = laddr.addr
	}
	return n.ListenPingAddr(la)
}

// ReadFrom reads one echo reply message (ICMP header included) and its sender (*PingAddr).
func (c *PingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := c.c.ReadFrom(b)
	if err != nil {
		return n, nil, c.err("read", c.raddr, err)
	}
	return n, PingAddrFromAddr(a), nil
}

// Read reads one echo reply message.
func (c *PingConn) Read(b []byte) (int, error) {
	n, _, err := c.ReadFrom(b)
	return n, err
}

// WriteTo sends one echo request message (8-byte ICMP header and data) to addr, a
// *PingAddr or *net.IPAddr of the socket's family.
func (c *PingConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	dst, ok := pingAddrOf(addr)
	if !ok || !dst.IsValid() {
		return 0, c.err("write", addr, errInval)
	}
	if dst.Is4() != c.local.Is4() {
		return 0, c.err("write", addr, errAFNoSupport)
	}
	n, err := c.c.WriteTo(b, dst)
	if err != nil {
		return n, c.err("write", addr, err)
	}
	return n, nil
}

// Ident returns the ICMP echo identifier the stack gives this socket's requests.
func (c *PingConn) Ident() uint16 { return c.c.Ident() }

// SetDeadline sets the read and write deadlines.
func (c *PingConn) SetDeadline(t time.Time) error { return c.err("set", nil, c.c.SetDeadline(t)) }

// SetReadDeadline sets the deadline of reads, those in progress included.
func (c *PingConn) SetReadDeadline(t time.Time) error {
	return c.err("set", nil, c.c.SetReadDeadline(t))
}

// SetWriteDeadline sets the deadline of writes.
func (c *PingConn) SetWriteDeadline(t time.Time) error {
	return c.err("set", nil, c.c.SetWriteDeadline(t))
}
