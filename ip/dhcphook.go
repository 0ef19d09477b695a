package ip

import (
	"encoding/binary"
	"net/netip"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// What a DHCPv4 client (apps/dhcp) needs of a netif before it has an address, and for
// RFC 5227 address conflict detection. All core context.

// SetAcceptUDPPort makes n take unicast IPv4 UDP datagrams to port (0: off) while it has no
// IPv4 address, whatever their destination address: a DHCP server may send its OFFER and
// ACK to the address it offers (yiaddr) and the client's MAC before the client has the
// address (RFC 2131 §4.1, when the BROADCAST bit is clear). This is lwIP's
// LWIP_IP_ACCEPT_UDP_PORT, narrowed the same way: only UDP, only that destination port, only
// unfragmented packets, and only while n has no IPv4 address of its own. The transports see
// such a datagram as addressed to its destination; a PCB bound to the wildcard address
// receives it.
func (n *Netif) SetAcceptUDPPort(port uint16) {
	n.l.timers.AssertCore()
	n.acceptUDP = port
	n.l.changed()
}

// acceptsUDP reports whether packet p (at its IPv4 header of hl bytes, not for us) is taken
// by SetAcceptUDPPort's rule. It borrows p.
func (n *Netif) acceptsUDP(ip wire.IPv4, p *pbuf.Pbuf, hl int) bool {
	if n.acceptUDP == 0 || ip.Protocol() != wire.ProtoUDP || ip.IsFragment() || n.hasIPv4() {
		return false
	}
	b, ok := p.Header(hl + 4)
	return ok && binary.BigEndian.Uint16(b[hl+2:]) == n.acceptUDP
}

// hasIPv4 reports whether n has an IPv4 address.
func (n *Netif) hasIPv4() bool {
	for _, a := range n.addrs {
		if a.prefix.Addr().Is4() {
			return true
		}
	}
	return false
}

// ARPRequest broadcasts an ARP request for target with sender address sender: 0.0.0.0
// makes it an RFC 5227 ARP Probe ("with the 'sender IP address' field set to all zeroes"),
// an address of n an ordinary request, whose reply teaches n's neighbour table. errs.Val on
// a netif that is not Ethernet or for a non-IPv4 target, errs.NetDown when n is down.
func (n *Netif) ARPRequest(target, sender netip.Addr) error {
	n.l.timers.AssertCore()
	switch {
	case n.eth == nil || !target.Is4() || !sender.Is4():
		return errs.Val
	case !n.up:
		return errs.NetDown
	}
	n.eth.Request(target, sender)
	return nil
}

// ARPAnnounce broadcasts an ARP announcement of addr (RFC 5227 §2.3). errs.Val on a netif
// that is not Ethernet, errs.NetDown when n is down.
func (n *Netif) ARPAnnounce(addr netip.Addr) error {
	n.l.timers.AssertCore()
	switch {
	case n.eth == nil || !addr.Is4():
		return errs.Val
	case !n.up:
		return errs.NetDown
	}
	n.eth.Announce(addr)
	return nil
}

// WatchARP calls fn, in core context, with the sender's MAC for every ARP message another
// station sends about addr: one whose sender address is addr, or a probe for addr (RFC 5227
// §2.1.1: a conflict while probing). One watch per netif; an invalid addr or nil fn stops
// it. errs.Val on a netif that is not Ethernet.
func (n *Netif) WatchARP(addr netip.Addr, fn func(hw [6]byte)) error {
	n.l.timers.AssertCore()
	if n.eth == nil {
		return errs.Val
	}
	n.eth.Watch(addr, fn)
	return nil
}

// Rand64 returns a pseudo-random number from the layer's generator (seeded from the stack's
// seed, so fixed under a fixed seed): for the apps' jitter. Core context.
func (l *Layer) Rand64() uint64 {
	l.timers.AssertCore()
	return l.rng.Uint64()
}
