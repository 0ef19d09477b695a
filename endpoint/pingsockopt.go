package endpoint

import (
	"golang.org/x/sys/unix"
)

// icmp6ChecksumOffset is where the ICMPv6 checksum sits: the stack always fills it (RFC
// 4443 §2.3), so IPV6_CHECKSUM on an ICMPv6 socket reads 2 and cannot change (RFC 3542
// §3.1: "the kernel will always calculate and insert the checksum for ICMPv6").
const icmp6ChecksumOffset = 2

// SetTTL sets the TTL (hop limit) of echo requests.
func (c *PingConn) SetTTL(ttl int) error {
	return c.SetsockoptInt(unix.IPPROTO_IP, unix.IP_TTL, ttl)
}

// GetsockoptInt reads an option: SO_TYPE, SO_ACCEPTCONN, SO_ERROR, IP_TTL /
// IPV6_UNICAST_HOPS, IPV6_CHECKSUM (ICMPv6: always 2).
func (c *PingConn) GetsockoptInt(level, name int) (int, error) {
	v6 := c.laddr.addr.Is6()
	switch (optKey{level, name}) {
	case optKey{unix.SOL_SOCKET, unix.SO_TYPE}:
		return unix.SOCK_DGRAM, nil
	case optKey{unix.SOL_SOCKET, unix.SO_ACCEPTCONN}, optKey{unix.SOL_SOCKET, unix.SO_ERROR}:
		return 0, nil
	case optKey{unix.IPPROTO_IP, unix.IP_TTL}, optKey{unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS}:
		c.opts.mu.Lock()
		defer c.opts.mu.Unlock()
		return c.opts.ttl, nil
	case optKey{unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM}:
		if v6 {
			return icmp6ChecksumOffset, nil
		}
	}
	return 0, c.err("get", nil, errNoProtoOpt)
}

// SetsockoptInt changes an option: IP_TTL / IPV6_UNICAST_HOPS (-1: the default).
// IPV6_CHECKSUM accepts only 2, the fixed ICMPv6 offset.
func (c *PingConn) SetsockoptInt(level, name, v int) error {
	v6 := c.laddr.addr.Is6()
	switch (optKey{level, name}) {
	case optKey{unix.IPPROTO_IP, unix.IP_TTL}, optKey{unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS}:
		if !checkTTL(v) {
			return c.err("set", nil, errInval)
		}
		if v == -1 {
			v = int(c.n.s.Options().IPDefaultTTL)
		}
		c.opts.mu.Lock()
		defer c.opts.mu.Unlock()
		if err := c.c.SetTTL(uint8(v)); err != nil {
			return c.err("set", nil, err)
		}
		c.opts.ttl = v
		return nil
	case optKey{unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM}:
		if v6 {
			if v != icmp6ChecksumOffset {
				return c.err("set", nil, errInval)
			}
			return nil
		}
	}
	return c.err("set", nil, errNoProtoOpt)
}
