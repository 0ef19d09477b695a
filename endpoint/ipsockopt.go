package endpoint

import (
	"golang.org/x/sys/unix"
)

// SetChecksumOffset sets IPV6_CHECKSUM on an IPv6 socket (RFC 3542 §3.1): the stack
// writes a checksum over the pseudo-header and payload at offset off of each payload sent
// and drops received packets whose checksum there is wrong; -1 turns it off.
func (c *IPConn) SetChecksumOffset(off int) error {
	return c.SetsockoptInt(unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM, off)
}

// GetsockoptInt reads an option: SO_TYPE (SOCK_RAW), SO_PROTOCOL, SO_DOMAIN,
// SO_ACCEPTCONN, SO_ERROR, SO_REUSEADDR (0), SO_RCVBUF, SO_SNDBUF, SO_RCVTIMEO /
// SO_SNDTIMEO (ms), IP_TTL / IPV6_UNICAST_HOPS, IP_TOS / IPV6_TCLASS, IP_PKTINFO /
// IPV6_RECVPKTINFO, IP_MULTICAST_IF / TTL / LOOP and their IPv6 counterparts,
// IPV6_CHECKSUM (IPv6 only; -1 when off, always 2 for ICMPv6).
func (c *IPConn) GetsockoptInt(level, name int) (int, error) {
	v, err := ipOptTable.get(c, level, name)
	return v, c.err("get", nil, err)
}

// SetsockoptInt changes an option (see GetsockoptInt). IPV6_CHECKSUM takes an even offset
// or -1; on an ICMPv6 socket it fails with EINVAL, as on Linux (RFC 3542 §3.1: the kernel
// always computes that checksum), and on an IPv4 socket with ENOPROTOOPT. SO_REUSEADDR
// fails with EINVAL: a raw socket is bound when it is opened, and raw sockets never
// conflict (see ListenConfig.ReuseAddr).
func (c *IPConn) SetsockoptInt(level, name, v int) error {
	return c.err("set", nil, ipOptTable.set(c, level, name, v))
}

// ipOptTable is an IPConn's options: those it shares with UDPConn (dgramOpts) and its own.
var ipOptTable = newOptTable(dgramOpts[*IPConn](), optTable[*IPConn]{
	soType:                              {get: constant[*IPConn](unix.SOCK_RAW)},
	soError:                             {get: constant[*IPConn](0)},
	{unix.SOL_SOCKET, unix.SO_PROTOCOL}: {get: func(c *IPConn) (int, error) { return int(c.c.Proto()), nil }},
	{unix.SOL_SOCKET, unix.SO_DOMAIN}: {get: func(c *IPConn) (int, error) {
		if c.v6 {
			return unix.AF_INET6, nil
		}
		return unix.AF_INET, nil
	}},
	ipv6Checksum: {
		get: func(c *IPConn) (int, error) {
			if !c.v6 {
				return 0, errNoProtoOpt
			}
			o, err := c.c.Sockopts()
			return o.ChecksumOffset, err
		},
		set: func(c *IPConn, v int) error {
			if !c.v6 {
				return errNoProtoOpt
			}
			if c.c.Proto() == protoICMPv6 || v < -1 || v > 0 && v&1 != 0 {
				return errInval
			}
			return c.c.SetChecksumOffset(v)
		},
	},
})
