package netconn

import (
	"net/netip"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/transport/udp"
)

// SetBroadcast allows sending to broadcast addresses (SO_BROADCAST).
func (c *UDPConn) SetBroadcast(on bool) error {
	return c.setPCB(func(p *udp.PCB) { p.SetBroadcast(on) })
}

// SetNoChecksum sends IPv4 datagrams without a checksum (SO_NO_CHECK).
func (c *UDPConn) SetNoChecksum(on bool) error {
	return c.setPCB(func(p *udp.PCB) { p.SetNoChecksum(on) })
}

// SetSegmentSize sets UDP_SEGMENT (UDP GSO, Linux's udp(7)): a write of more than n bytes
// is sent as datagrams of n bytes each, the last shorter, built as one packet that a link
// offering USO cuts, or the stack just before the link. 0 turns it off. errs.Val outside
// 0..65535. A write under it fails with errs.MsgSize when a datagram would not fit the
// MTU, errs.Val past udp.MaxSegments datagrams or with SetNoChecksum on IPv4.
func (c *UDPConn) SetSegmentSize(n int) error {
	return c.withPCB(func(p *udp.PCB) error { return p.SetSegmentSize(n) })
}

// SegmentSize reports UDP_SEGMENT (0: off); net.ErrClosed once closed.
func (c *UDPConn) SegmentSize() (int, error) {
	n := 0
	err := c.withPCB(func(p *udp.PCB) error { n = p.SegmentSize(); return nil })
	return n, err
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
