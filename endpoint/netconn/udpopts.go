package netconn

import (
	"net"
	"net/netip"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/transport/udp"
)

// withPCB runs fn on the PCB in core context; net.ErrClosed once closed.
func (c *UDPConn) withPCB(fn func(p *udp.PCB) error) error {
	c.s.Lock()
	defer c.s.Unlock()
	if c.pcb == nil {
		return net.ErrClosed
	}
	return fn(c.pcb)
}

// SetBroadcast allows sending to broadcast addresses (SO_BROADCAST).
func (c *UDPConn) SetBroadcast(on bool) error {
	return c.withPCB(func(p *udp.PCB) error { p.SetBroadcast(on); return nil })
}

// SetNoChecksum sends IPv4 datagrams without a checksum (SO_NO_CHECK).
func (c *UDPConn) SetNoChecksum(on bool) error {
	return c.withPCB(func(p *udp.PCB) error { p.SetNoChecksum(on); return nil })
}

// SetTTL sets the TTL (hop limit) of unicast datagrams (IP_TTL, IPV6_UNICAST_HOPS).
func (c *UDPConn) SetTTL(ttl uint8) error {
	return c.withPCB(func(p *udp.PCB) error { p.SetTTL(ttl); return nil })
}

// SetTOS sets the TOS (traffic class) of sent datagrams (IP_TOS, IPV6_TCLASS).
func (c *UDPConn) SetTOS(tos uint8) error {
	return c.withPCB(func(p *udp.PCB) error { p.SetTOS(tos); return nil })
}

// SetMulticastInterface picks the netif multicast datagrams leave by (IP_MULTICAST_IF,
// IPV6_MULTICAST_IF); 0 lets the route decide. errs.Val for an unknown netif.
func (c *UDPConn) SetMulticastInterface(ifIndex int) error {
	return c.withPCB(func(p *udp.PCB) error {
		if !c.knownNetif(ifIndex) {
			return errs.Val
		}
		p.SetMulticastNetif(ifIndex)
		return nil
	})
}

// SetMulticastTTL sets the TTL (hop limit) of multicast datagrams (IP_MULTICAST_TTL,
// IPV6_MULTICAST_HOPS), 0..255; default 1. 0 keeps them on this host, as Linux does: they
// reach local members when SetMulticastLoop is on (the default) and are never sent on the
// link. errs.Val out of range.
func (c *UDPConn) SetMulticastTTL(ttl int) error {
	if ttl < 0 || ttl > 255 {
		return errs.Val
	}
	return c.withPCB(func(p *udp.PCB) error { p.SetMulticastTTL(uint8(ttl)); return nil })
}

// SetMulticastLoop sets whether multicast datagrams sent are looped back to local members
// (IP_MULTICAST_LOOP, IPV6_MULTICAST_LOOP); default on.
func (c *UDPConn) SetMulticastLoop(on bool) error {
	return c.withPCB(func(p *udp.PCB) error { p.SetMulticastLoop(on); return nil })
}

// JoinGroup joins multicast group g on the netif ifIndex (0: the route's, or the first up
// netif of g's family) (IP_ADD_MEMBERSHIP, IPV6_JOIN_GROUP). The membership is dropped on
// Close. Errors: errs.Val (g not multicast, unknown netif), errs.Rte (no netif), errs.Mem
// (group table full).
func (c *UDPConn) JoinGroup(g netip.Addr, ifIndex int) error {
	return c.withPCB(func(p *udp.PCB) error {
		l := c.s.IP()
		if !g.Unmap().IsMulticast() {
			return errs.Val
		}
		if ifIndex > 0 && l.NetifByIndex(ifIndex) == nil {
			return errs.Val
		}
		n := l.NetifForGroup(g, ifIndex)
		if n == nil {
			return errs.Rte
		}
		if err := l.JoinGroup(n, g); err != nil {
			return err
		}
		c.groups = append(c.groups, joined{n: n, g: g.Unmap().WithZone("")})
		return nil
	})
}

// LeaveGroup drops a membership taken with JoinGroup (IP_DROP_MEMBERSHIP,
// IPV6_LEAVE_GROUP); errs.Val if this socket did not join g there.
func (c *UDPConn) LeaveGroup(g netip.Addr, ifIndex int) error {
	return c.withPCB(func(p *udp.PCB) error {
		g = g.Unmap().WithZone("")
		for i, j := range c.groups {
			if j.g == g && (ifIndex == 0 || j.n.Index() == ifIndex) {
				c.groups = append(c.groups[:i], c.groups[i+1:]...)
				return j.leave(c.s.IP())
			}
		}
		return errs.Val
	})
}

// UDPSockopts is a snapshot of a UDP socket's options, for getsockopt.
type UDPSockopts struct {
	ReuseAddr, Broadcast, NoChecksum, V6Only, MulticastLoop bool
	TTL, TOS, MulticastTTL                                  uint8
	MulticastInterface                                      int
	ReadBuffer                                              int // SetReadBuffer's bound, 0 none
	PktInfo                                                 bool
}

// Sockopts returns the socket's options; net.ErrClosed once closed.
func (c *UDPConn) Sockopts() (UDPSockopts, error) {
	var o UDPSockopts
	err := c.withPCB(func(p *udp.PCB) error {
		o = UDPSockopts{ReuseAddr: p.ReuseAddr(), Broadcast: p.Broadcast(), NoChecksum: p.NoChecksum(),
			V6Only: p.V6Only(), MulticastLoop: p.MulticastLoop(), TTL: p.TTL(), TOS: p.TOS(),
			MulticastTTL: p.MulticastTTL(), MulticastInterface: p.MulticastNetif()}
		return nil
	})
	c.mu.Lock()
	o.ReadBuffer, o.PktInfo = c.box.maxB, c.pktInfo
	c.mu.Unlock()
	return o, err
}
