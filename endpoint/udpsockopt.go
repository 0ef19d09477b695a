package endpoint

import (
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/endpoint/netconn"
)

// SetBroadcast allows sending to broadcast addresses (SO_BROADCAST; off by default, when
// such a send fails with EACCES).
func (c *UDPConn) SetBroadcast(on bool) error {
	return c.SetsockoptInt(unix.SOL_SOCKET, unix.SO_BROADCAST, b2i(on))
}

// SetNoChecksum sends IPv4 datagrams without a checksum (SO_NO_CHECK).
func (c *UDPConn) SetNoChecksum(on bool) error {
	return c.SetsockoptInt(unix.SOL_SOCKET, unix.SO_NO_CHECK, b2i(on))
}

// SetSegmentSize sets UDP_SEGMENT (UDP GSO): a write of more than n bytes leaves as
// datagrams of n bytes each, the last shorter; 0 turns it off (the default).
func (c *UDPConn) SetSegmentSize(n int) error {
	return c.SetsockoptInt(unix.SOL_UDP, unix.UDP_SEGMENT, n)
}

// SetPktInfo makes ReadMsgUDP return IP_PKTINFO / IPV6_PKTINFO control messages.
func (c *UDPConn) SetPktInfo(on bool) error {
	return c.SetsockoptInt(unix.IPPROTO_IP, unix.IP_PKTINFO, b2i(on))
}

// SetMulticastInterface chooses the netif multicast datagrams leave by (0: the route's).
func (c *UDPConn) SetMulticastInterface(ifIndex int) error {
	return c.SetsockoptInt(unix.IPPROTO_IP, unix.IP_MULTICAST_IF, ifIndex)
}

// SetMulticastTTL sets the TTL of multicast datagrams (default 1).
func (c *UDPConn) SetMulticastTTL(ttl int) error {
	return c.SetsockoptInt(unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, ttl)
}

// SetMulticastLoopback sets whether multicast datagrams sent loop back to this host's
// members (default on).
func (c *UDPConn) SetMulticastLoopback(on bool) error {
	return c.SetsockoptInt(unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, b2i(on))
}

// JoinGroup joins multicast group g on netif ifIndex (0: the route's); the socket leaves
// its groups on Close.
func (c *UDPConn) JoinGroup(g netip.Addr, ifIndex int) error {
	return c.err("set", nil, c.c.JoinGroup(g.Unmap(), ifIndex))
}

// LeaveGroup leaves a group joined with JoinGroup.
func (c *UDPConn) LeaveGroup(g netip.Addr, ifIndex int) error {
	return c.err("set", nil, c.c.LeaveGroup(g.Unmap(), ifIndex))
}

// GetsockoptInt reads an option: SO_REUSEADDR, SO_BROADCAST, SO_NO_CHECK, SO_RCVBUF,
// SO_SNDBUF, SO_ERROR, SO_TYPE, SO_ACCEPTCONN, SO_RCVTIMEO / SO_SNDTIMEO (ms), IP_TTL,
// IP_TOS, IP_PKTINFO, IP_MULTICAST_IF / TTL / LOOP and their IPv6 counterparts,
// IPV6_V6ONLY, IPV6_RECVPKTINFO, UDP_SEGMENT (SOL_UDP).
func (c *UDPConn) GetsockoptInt(level, name int) (int, error) {
	v, err := udpOptTable.get(c, level, name)
	return v, c.err("get", nil, err)
}

// SetsockoptInt changes an option (see GetsockoptInt). SO_REUSEADDR and IPV6_V6ONLY matter
// only before bind, which Listen and Dial have done: EINVAL. Set them before bind with
// Dialer.ReuseAddr and ListenConfig.ReuseAddr / V6Only.
func (c *UDPConn) SetsockoptInt(level, name, v int) error {
	return c.err("set", nil, udpOptTable.set(c, level, name, v))
}

// udpOptTable is a UDPConn's options: those it shares with IPConn (dgramOpts) and its own,
// all but the timeouts and IP_PKTINFO held by the PCB.
var udpOptTable = newOptTable(dgramOpts[*UDPConn](), optTable[*UDPConn]{
	soType:  {get: constant[*UDPConn](unix.SOCK_DGRAM)},
	soError: {get: func(c *UDPConn) (int, error) { return soErrno(c.c.Err()), nil }},
	{unix.SOL_SOCKET, unix.SO_BROADCAST}: {
		get: udpGet(func(o *netconn.Sockopts) bool { return o.Broadcast }),
		set: func(c *UDPConn, v int) error { return c.c.SetBroadcast(v != 0) },
	},
	{unix.SOL_SOCKET, unix.SO_NO_CHECK}: {
		get: udpGet(func(o *netconn.Sockopts) bool { return o.NoChecksum }),
		set: func(c *UDPConn, v int) error { return c.c.SetNoChecksum(v != 0) },
	},
	{unix.SOL_UDP, unix.UDP_SEGMENT}: {
		get: func(c *UDPConn) (int, error) { return c.c.SegmentSize() },
		set: func(c *UDPConn, v int) error { return c.c.SetSegmentSize(v) },
	},
	ipv6V6Only: {
		get: func(c *UDPConn) (int, error) {
			if !c.v6sock {
				return 0, errNoProtoOpt
			}
			return udpGet(func(o *netconn.Sockopts) bool { return o.V6Only })(c)
		},
		set: func(c *UDPConn, v int) error {
			if !c.v6sock {
				return errNoProtoOpt
			}
			return errInval
		},
	},
})

// udpGet makes the get of a UDP flag, read from the PCB.
func udpGet(f func(o *netconn.Sockopts) bool) func(*UDPConn) (int, error) {
	return func(c *UDPConn) (int, error) {
		o, err := c.c.Sockopts()
		return b2i(f(&o)), err
	}
}

// SetsockoptIPMreq joins (IP_ADD_MEMBERSHIP) or leaves (IP_DROP_MEMBERSHIP) an IPv4 group
// with a struct ip_mreq: Interface is the address of the netif (0.0.0.0: the route's).
func (c *UDPConn) SetsockoptIPMreq(level, name int, m *unix.IPMreq) error {
	if m == nil {
		return c.err("set", nil, errInval)
	}
	return c.membership4(level, name, m.Multiaddr, 0, m.Interface)
}

// SetsockoptIPMreqn is SetsockoptIPMreq with a struct ip_mreqn (Ifindex wins over
// Address).
func (c *UDPConn) SetsockoptIPMreqn(level, name int, m *unix.IPMreqn) error {
	if m == nil {
		return c.err("set", nil, errInval)
	}
	return c.membership4(level, name, m.Multiaddr, int(m.Ifindex), m.Address)
}

// membership4 is membership for an IPv4 group on netif ifIndex, or (0) the netif with
// address local, or (unspecified too) the route's.
func (c *UDPConn) membership4(level, name int, group [4]byte, ifIndex int, local [4]byte) error {
	if a := netip.AddrFrom4(local); ifIndex == 0 && !a.IsUnspecified() {
		if ifIndex = c.n.ifIndexOf(a); ifIndex == 0 {
			return c.err("set", nil, unix.EADDRNOTAVAIL)
		}
	}
	return c.membership(level, name, netip.AddrFrom4(group), ifIndex)
}

// SetsockoptIPv6Mreq joins (IPV6_JOIN_GROUP) or leaves (IPV6_LEAVE_GROUP) an IPv6 group
// with a struct ipv6_mreq (Interface: netif index, 0 for the route's).
func (c *UDPConn) SetsockoptIPv6Mreq(level, name int, m *unix.IPv6Mreq) error {
	if m == nil {
		return c.err("set", nil, errInval)
	}
	return c.membership(level, name, netip.AddrFrom16(m.Multiaddr), int(m.Interface))
}

func (c *UDPConn) membership(level, name int, g netip.Addr, ifIndex int) error {
	var err error
	switch (optKey{level, name}) {
	case optKey{unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP}, optKey{unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP}:
		err = c.c.JoinGroup(g.Unmap(), ifIndex)
	case optKey{unix.IPPROTO_IP, unix.IP_DROP_MEMBERSHIP}, optKey{unix.IPPROTO_IPV6, unix.IPV6_LEAVE_GROUP}:
		err = c.c.LeaveGroup(g.Unmap(), ifIndex)
	default:
		err = errNoProtoOpt
	}
	return c.err("set", nil, err)
}

// SetsockoptBytes sets an option from its C struct bytes (native byte order): ip_mreq (8
// bytes) or ip_mreqn (12) for IP_ADD/DROP_MEMBERSHIP, ipv6_mreq (20) for
// IPV6_JOIN/LEAVE_GROUP, in_addr (4) or ip_mreqn for IP_MULTICAST_IF, timeval for
// SO_RCVTIMEO / SO_SNDTIMEO, and a 4-byte int for any int option.
func (c *UDPConn) SetsockoptBytes(level, name int, b []byte) error {
	k := optKey{level, name}
	switch {
	case (k == optKey{unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP} || k == optKey{unix.IPPROTO_IP, unix.IP_DROP_MEMBERSHIP}) && len(b) == unix.SizeofIPMreq:
		return c.SetsockoptIPMreq(level, name, &unix.IPMreq{Multiaddr: [4]byte(b[0:4]), Interface: [4]byte(b[4:8])})
	case (k == optKey{unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP} || k == optKey{unix.IPPROTO_IP, unix.IP_DROP_MEMBERSHIP}) && len(b) == unix.SizeofIPMreqn:
		return c.SetsockoptIPMreqn(level, name, &unix.IPMreqn{Multiaddr: [4]byte(b[0:4]), Address: [4]byte(b[4:8]), Ifindex: int32(ne.Uint32(b[8:12]))})
	case (k == optKey{unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP} || k == optKey{unix.IPPROTO_IPV6, unix.IPV6_LEAVE_GROUP}) && len(b) == unix.SizeofIPv6Mreq:
		return c.SetsockoptIPv6Mreq(level, name, &unix.IPv6Mreq{Multiaddr: [16]byte(b[0:16]), Interface: ne.Uint32(b[16:20])})
	case k == optKey{unix.IPPROTO_IP, unix.IP_MULTICAST_IF} && (len(b) == 4 || len(b) == unix.SizeofIPMreqn):
		// in_addr of the netif, or ip_mreqn { multiaddr (ignored), address, ifindex }.
		a, ifIndex := netip.AddrFrom4([4]byte(b[0:4])), 0
		if len(b) == unix.SizeofIPMreqn {
			a, ifIndex = netip.AddrFrom4([4]byte(b[4:8])), int(int32(ne.Uint32(b[8:12])))
		}
		if ifIndex == 0 && !a.IsUnspecified() {
			if ifIndex = c.n.ifIndexOf(a); ifIndex == 0 {
				return c.err("set", nil, unix.EADDRNOTAVAIL)
			}
		}
		return c.SetsockoptInt(level, name, ifIndex)
	case level == unix.SOL_SOCKET && (name == unix.SO_RCVTIMEO || name == unix.SO_SNDTIMEO) && len(b) == 16:
		// struct timeval { time_t tv_sec; suseconds_t tv_usec; } on 64-bit Linux.
		sec, usec := int64(ne.Uint64(b[0:8])), int64(ne.Uint64(b[8:16]))
		if sec < 0 || usec < 0 || usec >= 1e6 {
			return c.err("set", nil, errInval)
		}
		c.timeo.set(c.c, name == unix.SO_RCVTIMEO, time.Duration(sec)*time.Second+time.Duration(usec)*time.Microsecond)
		return nil
	case len(b) == 4:
		return c.SetsockoptInt(level, name, int(int32(ne.Uint32(b))))
	}
	return c.err("set", nil, errInval)
}

// ifIndexOf returns the index of the netif holding address a, or 0.
func (n *Net) ifIndexOf(a netip.Addr) int {
	for _, nif := range n.s.Netifs() {
		for _, ai := range nif.Addrs() {
			if ai.Prefix.Addr() == a {
				return nif.Index()
			}
		}
	}
	return 0
}
