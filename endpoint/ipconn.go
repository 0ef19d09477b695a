package endpoint

import (
	"net"
	"net/netip"
	"strings"

	"github.com/wispstack/wisp/endpoint/netconn"
)

// IPConn is a raw IP socket of one protocol, as *net.IPConn (Linux's SOCK_RAW without
// IP_HDRINCL): a net.Conn (when dialed) and a net.PacketConn whose addresses are
// *net.IPAddr. Writes send protocol payloads (the stack builds the IP header); reads return
// a copy of each packet of the socket's protocol and family addressed to the stack (and,
// when bound to an address or connected, to it or from the peer), from the transport
// header on.
//
// The IP header is never returned, in either family. That is what package net's
// ReadFrom and ReadFromIP give on Linux (they strip the IPv4 header), but Read and
// ReadMsgIP on a kernel AF_INET raw socket include it: wisp's do not (transport/raw hands
// over the packet from the transport header, and a rebuilt header would lack the IP ID,
// flags and options). The source and destination addresses come from ReadFromIP and
// ReadMsgIP's IP_PKTINFO; IPv6 raw sockets never include the header on Linux either.
//
// Packets of protocols the stack implements (ICMP, IGMP, TCP, UDP, ICMPv6) still go to the
// stack after the copy; packets of other protocols that a raw socket received earn no
// protocol unreachable. IPv6 sockets of ICMPv6 have their checksum computed and checked by
// the stack; IPV6_CHECKSUM does the same for other IPv6 protocols (RFC 3542 §3.1).
// Copies wait in a mailbox of at most UDPRecvMboxSize packets; beyond, they are dropped.
// Every method is safe for concurrent use; Close unblocks every reader.
type IPConn struct {
	dgramSock
	c  *netconn.RawConn
	v6 bool
}

// ipAddrOf converts a *net.IPAddr (nil or without IP: the invalid address).
func ipAddrOf(a *net.IPAddr) (netip.Addr, bool) {
	if a == nil || len(a.IP) == 0 {
		return netip.Addr{}, true
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Addr{}, false
	}
	if a.Zone != "" && ip.Is6() && !ip.Is4In6() {
		ip = ip.WithZone(a.Zone)
	}
	return ip.Unmap(), true
}

// netIPAddr is the *net.IPAddr of a (4 bytes for IPv4, as package net reports them).
func netIPAddr(a netip.Addr) *net.IPAddr {
	return &net.IPAddr{IP: ipOf(a), Zone: a.Zone()}
}

// openIP opens a raw socket of proto bound to laddr (invalid: any address of the family)
// and connected to raddr (invalid: unconnected). The family is raddr's, else laddr's,
// else the network's (IPv4 for "ip:N").
func (n *Net) openIP(network string, f family, proto uint8, laddr, raddr netip.Addr) (*IPConn, error) {
	op := "listen"
	var ra net.Addr
	if raddr.IsValid() {
		op, ra = "dial", netIPAddr(raddr)
	}
	laddr, raddr = laddr.Unmap(), raddr.Unmap()
	if !laddr.IsValid() && !raddr.IsValid() {
		laddr = netip.IPv4Unspecified() // "ip:N" without an address: IPv4
		if f == fam6 {
			laddr = netip.IPv6Unspecified()
		}
	}
	if laddr.IsValid() && raddr.IsValid() && laddr.Is4() != raddr.Is4() {
		return nil, opError(op, network, netIPAddr(laddr), ra, errAFNoSupport)
	}
	fam := raddr
	if !fam.IsValid() {
		fam = laddr
	}
	if !matchFamily(fam, f) {
		return nil, opError(op, network, nil, ra, errAFNoSupport)
	}
	v6 := fam.Is6()
	if err := rawProtoErr(int(proto), v6); err != nil {
		return nil, opError(op, network, nil, ra, err)
	}
	if raddr.IsValid() {
		if err := n.routeErr(raddr); err != nil {
			return nil, opError(op, network, nil, ra, err)
		}
	}
	var c *netconn.RawConn
	var err error
	if raddr.IsValid() {
		c, err = netconn.DialRaw(n.s, proto, laddr, raddr)
	} else {
		c, err = netconn.ListenRaw(n.s, proto, laddr)
	}
	if err != nil {
		var la net.Addr
		if laddr.IsValid() {
			la = netIPAddr(laddr)
		}
		return nil, opError(op, network, la, ra, err)
	}
	ic := &IPConn{dgramSock: dgramSock{sockBase: sockBase{n: n, nc: c, network: network}, ipc: c}, c: c, v6: v6}
	la := c.LocalAddr()
	if !la.IsValid() {
		la = netip.IPv4Unspecified()
		if v6 {
			la = netip.IPv6Unspecified()
		}
	}
	ic.laddr = netIPAddr(la)
	if raddr.IsValid() {
		ic.raddr = netIPAddr(raddr)
	}
	return ic, nil
}

// rawNetwork parses the network of DialIP and ListenIP: "ip4:proto", "ip6:proto" or
// "ip:proto", every protocol a raw socket (ICMP and ICMPv6 included, as package net's).
func rawNetwork(network string) (family, uint8, error) {
	k, f, proto, err := parseNetworkProto(network)
	switch {
	case err != nil:
		return 0, 0, err
	case k != kindRaw && k != kindPing || k == kindPing && !strings.Contains(network, ":"):
		return 0, 0, net.UnknownNetworkError(network)
	}
	if k == kindPing && strings.HasPrefix(network, "ip:") {
		f = famAny // "ip:icmp" takes the family of its address, as "ip:N" does
	}
	return f, proto, nil
}

// DialIP opens a raw IP socket connected to raddr, as net.DialIP: network "ip4:proto",
// "ip6:proto" or "ip:proto" with a protocol number or name ("ip4:253", "ip6:ipv6-icmp").
// Unlike Dial, it opens a raw socket for ICMP and ICMPv6 too. laddr may be nil.
func (n *Net) DialIP(network string, laddr, raddr *net.IPAddr) (*IPConn, error) {
	f, proto, err := rawNetwork(network)
	if err != nil {
		return nil, opError("dial", network, laddr, raddr, err)
	}
	if raddr == nil {
		return nil, opError("dial", network, laddr, nil, errMissingAddr)
	}
	la, ok1 := ipAddrOf(laddr)
	ra, ok2 := ipAddrOf(raddr)
	if !ok1 || !ok2 || !ra.IsValid() || ra.IsUnspecified() {
		return nil, opError("dial", network, laddr, raddr, errInval)
	}
	if !matchFamily(ra, f) || la.IsValid() && !matchFamily(la, f) {
		return nil, opError("dial", network, laddr, raddr, errAFNoSupport)
	}
	return n.openIP(network, f, proto, la, ra)
}

// ListenIP opens an unconnected raw IP socket bound to laddr (nil or without IP: every
// address of the network's family, IPv4 for "ip:proto"), as net.ListenIP. Unlike
// ListenPacket, it opens a raw socket for ICMP and ICMPv6 too.
func (n *Net) ListenIP(network string, laddr *net.IPAddr) (*IPConn, error) {
	f, proto, err := rawNetwork(network)
	if err != nil {
		return nil, opError("listen", network, nil, laddr, err)
	}
	la, ok := ipAddrOf(laddr)
	if !ok {
		return nil, opError("listen", network, nil, laddr, errInval)
	}
	if la.IsValid() && !matchFamily(la, f) {
		return nil, opError("listen", network, nil, laddr, errAFNoSupport)
	}
	return n.openIP(network, f, proto, la, netip.Addr{})
}

// Read reads one packet, from its transport header on (see IPConn).
func (c *IPConn) Read(b []byte) (int, error) {
	n, _, err := c.ReadFromIP(b)
	return n, err
}

// ReadFrom reads one packet and its sender (a *net.IPAddr). A packet longer than b is
// truncated (the rest is lost), as recvfrom(2) does.
func (c *IPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := c.ReadFromIP(b)
	if err != nil {
		return n, nil, err
	}
	return n, a, nil
}

// ReadFromIP is ReadFrom returning a *net.IPAddr.
func (c *IPConn) ReadFromIP(b []byte) (int, *net.IPAddr, error) {
	n, m, err := c.timeo.readMsg(c.c, b)
	if err != nil {
		return n, nil, c.err("read", c.raddr, err)
	}
	return n, netIPAddr(m.Src.Addr()), nil
}

// ReadMsgIP reads one packet, its control messages into oob (IP_PKTINFO or IPV6_PKTINFO
// once enabled by SetsockoptInt) and flags (MSG_TRUNC when b was too short), as
// net.IPConn.
func (c *IPConn) ReadMsgIP(b, oob []byte) (n, oobn, flags int, addr *net.IPAddr, err error) {
	n, m, err := c.timeo.readMsg(c.c, b)
	if err != nil {
		return n, 0, 0, nil, c.err("read", c.raddr, err)
	}
	oobn, flags = recvControl(&m, oob, c.pktinfo.Load())
	return n, oobn, flags, netIPAddr(m.Src.Addr()), nil
}

// WriteTo sends b, a protocol payload, in one IP packet to addr (a *net.IPAddr of the
// socket's family): EMSGSIZE beyond one IP packet, ENOMEM when the link queue (or the
// stack's memory) is full — raw sends never block for room.
func (c *IPConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ia, ok := addr.(*net.IPAddr)
	if !ok || ia == nil {
		return 0, c.err("write", addr, errInval)
	}
	return c.WriteToIP(b, ia)
}

// WriteToIP is WriteTo with a *net.IPAddr. A connected socket refuses it
// (net.ErrWriteToConnected, as package net).
func (c *IPConn) WriteToIP(b []byte, addr *net.IPAddr) (int, error) {
	dst, ok := ipAddrOf(addr)
	if !ok || !dst.IsValid() {
		return 0, c.err("write", addr, errInval)
	}
	if c.raddr != nil {
		return 0, c.err("write", addr, net.ErrWriteToConnected)
	}
	return c.writeTo(b, dst, addr)
}

func (c *IPConn) writeTo(b []byte, dst netip.Addr, addr net.Addr) (int, error) {
	if dst.Is6() != c.v6 {
		return 0, c.err("write", addr, errAFNoSupport)
	}
	n, err := c.c.WriteTo(b, dst)
	if err != nil {
		return n, c.err("write", addr, err)
	}
	return n, nil
}

// WriteMsgIP sends b to addr (nil on a connected socket). Control messages are not
// supported on send (transport/raw has no per-packet source address or netif): a
// non-empty oob fails with EINVAL.
func (c *IPConn) WriteMsgIP(b, oob []byte, addr *net.IPAddr) (n, oobn int, err error) {
	var dst net.Addr
	if addr != nil {
		dst = addr
	}
	switch {
	case len(oob) > 0:
		return 0, 0, c.err("write", dst, errInval)
	case c.raddr != nil && addr != nil:
		return 0, 0, c.err("write", dst, net.ErrWriteToConnected)
	case c.raddr == nil && addr == nil:
		return 0, 0, c.err("write", nil, errDestAddrReq)
	case c.raddr != nil:
		n, err = c.Write(b)
		return n, 0, err
	}
	n, err = c.WriteToIP(b, addr)
	return n, 0, err
}

// Drops returns the packets dropped because the mailbox was full.
func (c *IPConn) Drops() uint64 { return c.c.Drops() }
