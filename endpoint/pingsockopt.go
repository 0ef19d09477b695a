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
	v, err := pingOptTable.get(c, level, name)
	return v, c.err("get", nil, err)
}

// SetsockoptInt changes an option: IP_TTL / IPV6_UNICAST_HOPS (-1: the default).
// IPV6_CHECKSUM accepts only 2, the fixed ICMPv6 offset.
func (c *PingConn) SetsockoptInt(level, name, v int) error {
	return c.err("set", nil, pingOptTable.set(c, level, name, v))
}

// pingOptTable is a PingConn's options; the TTL lives on the PCB.
var pingOptTable = newOptTable(optTable[*PingConn]{
	soType:       {get: constant[*PingConn](unix.SOCK_DGRAM)},
	soAcceptConn: {get: constant[*PingConn](0)},
	soError:      {get: constant[*PingConn](0)},
	ipTTL: {
		get: func(c *PingConn) (int, error) {
			o, err := c.c.Sockopts()
			so := c.n.s.Options()
			return reportTTL(o.TTL, &so), err
		},
		set: func(c *PingConn, v int) error { return setTTL(v, c.n.s.Options().IPDefaultTTL, c.c.SetTTL) },
	},
	ipv6Checksum: {
		get: func(c *PingConn) (int, error) {
			if !c.local.Is6() {
				return 0, errNoProtoOpt
			}
			return icmp6ChecksumOffset, nil
		},
		set: func(c *PingConn, v int) error {
			switch {
			case !c.local.Is6():
				return errNoProtoOpt
			case v != icmp6ChecksumOffset:
				return errInval
			}
			return nil
		},
	},
})
