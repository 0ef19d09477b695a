package endpoint

import (
	"golang.org/x/sys/unix"
)

// SetTTL sets the TTL (hop limit) of unicast sends (IP_TTL / IPV6_UNICAST_HOPS).
func (c *IPConn) SetTTL(ttl int) error {
	return c.SetsockoptInt(unix.IPPROTO_IP, unix.IP_TTL, ttl)
}

// SetTOS sets the TOS / traffic class byte (IP_TOS / IPV6_TCLASS).
func (c *IPConn) SetTOS(tos int) error {
	return c.SetsockoptInt(unix.IPPROTO_IP, unix.IP_TOS, tos)
}

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
	v, err := c.getInt(level, name)
	return v, c.err("get", nil, err)
}

func (c *IPConn) getInt(level, name int) (int, error) {
	if v, ok := getDgramOpt(&c.timeo, level, name); ok {
		return v, nil
	}
	switch (optKey{level, name}) {
	case optKey{unix.SOL_SOCKET, unix.SO_TYPE}:
		return unix.SOCK_RAW, nil
	case optKey{unix.SOL_SOCKET, unix.SO_PROTOCOL}:
		return int(c.c.Proto()), nil
	case optKey{unix.SOL_SOCKET, unix.SO_DOMAIN}:
		if c.v6 {
			return unix.AF_INET6, nil
		}
		return unix.AF_INET, nil
	case optKey{unix.SOL_SOCKET, unix.SO_ACCEPTCONN}, optKey{unix.SOL_SOCKET, unix.SO_ERROR},
		optKey{unix.SOL_SOCKET, unix.SO_REUSEADDR}:
		return 0, nil
	case optKey{unix.SOL_SOCKET, unix.SO_SNDBUF}:
		return 65535, nil // sends are not buffered: report the largest packet
	case optKey{unix.IPPROTO_IP, unix.IP_PKTINFO}, optKey{unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO}:
		return b2i(c.pktinfo.Load()), nil
	}
	o, err := c.c.Sockopts()
	if err != nil {
		return 0, err
	}
	switch (optKey{level, name}) {
	case optKey{unix.SOL_SOCKET, unix.SO_RCVBUF}:
		if o.ReadBuffer > 0 {
			return o.ReadBuffer, nil
		}
		so := c.n.s.Options()
		return so.UDPRecvMboxSize * so.PbufPoolBufSize, nil
	case optKey{unix.IPPROTO_IP, unix.IP_TTL}, optKey{unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS}:
		if o.TTL == 0 {
			return int(c.n.s.Options().IPDefaultTTL), nil
		}
		return int(o.TTL), nil
	case optKey{unix.IPPROTO_IP, unix.IP_TOS}, optKey{unix.IPPROTO_IPV6, unix.IPV6_TCLASS}:
		return int(o.TOS), nil
	case optKey{unix.IPPROTO_IP, unix.IP_MULTICAST_IF}, optKey{unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF}:
		return o.MulticastInterface, nil
	case optKey{unix.IPPROTO_IP, unix.IP_MULTICAST_TTL}, optKey{unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS}:
		return int(o.MulticastTTL), nil
	case optKey{unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP}, optKey{unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP}:
		return b2i(o.MulticastLoop), nil
	case optKey{unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM}:
		if c.v6 {
			return o.ChecksumOffset, nil
		}
	}
	return 0, errNoProtoOpt
}

// SetsockoptInt changes an option (see GetsockoptInt). IPV6_CHECKSUM takes an even offset
// or -1; on an ICMPv6 socket it fails with EINVAL, as on Linux (RFC 3542 §3.1: the kernel
// always computes that checksum), and on an IPv4 socket with ENOPROTOOPT. SO_REUSEADDR
// fails with EINVAL: a raw socket is bound when it is opened, and raw sockets never
// conflict (see ListenConfig.ReuseAddr).
func (c *IPConn) SetsockoptInt(level, name, v int) error {
	return c.err("set", nil, c.setInt(level, name, v))
}

func (c *IPConn) setInt(level, name, v int) error {
	if ok, err := setDgramOpt(&c.timeo, c.c, c, level, name, v); ok {
		return err
	}
	switch (optKey{level, name}) {
	case optKey{unix.SOL_SOCKET, unix.SO_REUSEADDR}:
		return errInval
	case optKey{unix.IPPROTO_IP, unix.IP_PKTINFO}, optKey{unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO}:
		c.pktinfo.Store(v != 0)
		return nil
	case optKey{unix.IPPROTO_IP, unix.IP_TTL}, optKey{unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS}:
		if !checkTTL(v) {
			return errInval
		}
		return c.c.SetTTL(uint8(max(v, 0))) // -1: 0, the stack's default
	case optKey{unix.IPPROTO_IP, unix.IP_TOS}, optKey{unix.IPPROTO_IPV6, unix.IPV6_TCLASS}:
		if v < -1 || v > 255 {
			return errInval
		}
		return c.c.SetTOS(uint8(max(v, 0)))
	case optKey{unix.IPPROTO_IP, unix.IP_MULTICAST_IF}, optKey{unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF}:
		if v < 0 {
			return errInval
		}
		return c.c.SetMulticastInterface(v)
	case optKey{unix.IPPROTO_IP, unix.IP_MULTICAST_TTL}, optKey{unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS}:
		v, ok := mcastTTL(v)
		if !ok {
			return errInval
		}
		return c.c.SetMulticastTTL(v)
	case optKey{unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP}, optKey{unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP}:
		return c.c.SetMulticastLoop(v != 0)
	case optKey{unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM}:
		if !c.v6 {
			return errNoProtoOpt
		}
		if c.c.Proto() == protoICMPv6 || v < -1 || v > 0 && v&1 != 0 {
			return errInval
		}
		return c.c.SetChecksumOffset(v)
	}
	return errNoProtoOpt
}
