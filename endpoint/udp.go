package endpoint

import (
	"net"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/endpoint/netconn"
)

// UDPConn is a UDP socket: a net.Conn (when connected) and a net.PacketConn, with the
// methods of *net.UDPConn that make sense without a file descriptor. ReadMsgUDP and
// WriteMsgUDP carry IP_PKTINFO / IPV6_PKTINFO as Linux control messages (parseable with
// golang.org/x/net/ipv4.ControlMessage) once SetsockoptInt(IPPROTO_IP, IP_PKTINFO, 1)
// (or IPV6_RECVPKTINFO) enabled them. Every method is safe for concurrent use; Close
// unblocks every reader.
type UDPConn struct {
	dgramSock
	c      *netconn.UDPConn
	v6sock bool
}

func (n *Net) newUDPConn(network string, v6sock bool, c *netconn.UDPConn) *UDPConn {
	u := &UDPConn{c: c, v6sock: v6sock}
	u.dgramSock = dgramSock{sockBase: sockBase{n: n, nc: c, network: network, laddr: udpAddrOf(c.LocalAddr(), v6sock)}, ipc: c}
	if ra := c.RemoteAddr(); ra.IsValid() {
		u.raddr = udpAddrOf(ra, v6sock)
	}
	return u
}

// dialUDP opens a UDP socket connected to raddr.
func (n *Net) dialUDP(network string, f family, laddr, raddr netip.AddrPort, bo bindOpts) (*UDPConn, error) {
	v6sock := f == fam6 || raddr.Addr().Is6() && !raddr.Addr().Is4In6()
	ra := udpAddrOf(raddr, v6sock)
	dst := raddr.Addr().Unmap()
	if err := n.routeErr(dst); err != nil {
		return nil, opError("dial", network, nil, ra, err)
	}
	o := &netconn.UDPOptions{V6Only: f == fam6, ReuseAddr: bo.reuseAddr}
	c, err := netconn.DialUDP(n.s, unmapAP(laddr), netip.AddrPortFrom(dst, raddr.Port()), o)
	if err != nil {
		return nil, opError("dial", network, nil, ra, err)
	}
	return n.newUDPConn(network, v6sock, c), nil
}

// listenUDP opens an unconnected UDP socket on laddr (invalid address: every address,
// dual-stack on "udp").
func (n *Net) listenUDP(network string, f family, laddr netip.AddrPort, bo bindOpts) (*UDPConn, error) {
	a := laddr.Addr()
	v6sock := f == fam6 || f == famAny && (!a.IsValid() || a.Is6() && !a.Is4In6())
	switch {
	case !a.IsValid():
		a = wildcard(f)
	case f != fam6:
		a = a.Unmap()
	}
	o := &netconn.UDPOptions{V6Only: f == fam6 || bo.v6only && v6sock, ReuseAddr: bo.reuseAddr}
	la := netip.AddrPortFrom(a, laddr.Port())
	c, err := netconn.ListenUDP(n.s, la, o)
	if err != nil {
		return nil, opError("listen", network, nil, udpAddrOf(la, v6sock), err)
	}
	return n.newUDPConn(network, v6sock, c), nil
}

// DialUDP opens a connected UDP socket, as net.DialUDP.
func (n *Net) DialUDP(network string, laddr, raddr *net.UDPAddr) (*UDPConn, error) {
	f, err := parseNetwork(network, kindUDP)
	if err != nil {
		return nil, opError("dial", network, laddr, raddr, err)
	}
	if raddr == nil {
		return nil, opError("dial", network, laddr, nil, errMissingAddr)
	}
	la, ok1 := udpAddrPort(laddr)
	ra, ok2 := udpAddrPort(raddr)
	if !ok1 || !ok2 || !ra.Addr().IsValid() || !matchFamily(ra.Addr(), f) {
		return nil, opError("dial", network, laddr, raddr, errInval)
	}
	return n.dialUDP(network, f, la, ra, bindOpts{})
}

// ListenUDP opens an unconnected UDP socket, as net.ListenUDP (laddr nil: every address,
// an ephemeral port).
func (n *Net) ListenUDP(network string, laddr *net.UDPAddr) (*UDPConn, error) {
	f, err := parseNetwork(network, kindUDP)
	if err != nil {
		return nil, opError("listen", network, nil, laddr, err)
	}
	la, ok := udpAddrPort(laddr)
	if !ok || la.Addr().IsValid() && !matchFamily(la.Addr(), f) {
		return nil, opError("listen", network, nil, laddr, errInval)
	}
	return n.listenUDP(network, f, la, bindOpts{})
}

// DialUDPAddrPort opens a UDP socket connected to raddr, bound to laddr (zero: chosen by
// the route), as wireguard-go's netstack Net.DialUDPAddrPort.
func (n *Net) DialUDPAddrPort(laddr, raddr netip.AddrPort) (*UDPConn, error) {
	network, f := "udp4", fam4
	if raddr.Addr().Is6() && !raddr.Addr().Is4In6() {
		network, f = "udp6", fam6
	}
	if !raddr.IsValid() {
		return n.listenUDPAddrPort(laddr)
	}
	return n.dialUDP(network, f, laddr, raddr, bindOpts{})
}

// ListenUDPAddrPort opens an unconnected UDP socket on laddr (an invalid address: every
// address, dual-stack).
func (n *Net) ListenUDPAddrPort(laddr netip.AddrPort) (*UDPConn, error) {
	return n.listenUDPAddrPort(laddr)
}

func (n *Net) listenUDPAddrPort(laddr netip.AddrPort) (*UDPConn, error) {
	network, f := "udp", famAny
	switch a := laddr.Addr(); {
	case a.Is4() || a.Is4In6():
		network, f = "udp4", fam4
	case a.Is6() && !a.IsUnspecified():
		network, f = "udp6", fam6
	}
	return n.listenUDP(network, f, laddr, bindOpts{})
}

// Read reads one datagram (from the connected peer, or from anyone).
func (c *UDPConn) Read(b []byte) (int, error) {
	n, _, err := c.ReadFromUDPAddrPort(b)
	return n, err
}

// ReadFrom reads one datagram and its sender (a *net.UDPAddr). A datagram longer than b
// is truncated (the rest is lost), as recvfrom(2) does.
func (c *UDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, ap, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, udpAddrOf(ap, c.v6sock), nil
}

// ReadFromUDP is ReadFrom returning a *net.UDPAddr.
func (c *UDPConn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	n, ap, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, udpAddrOf(ap, c.v6sock), nil
}

// ReadFromUDPAddrPort is ReadFrom returning a netip.AddrPort (IPv4 senders v4-mapped on a
// dual-stack socket, as Go reports them).
func (c *UDPConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, m, err := c.timeo.readMsg(c.c, b)
	if err != nil {
		return n, netip.AddrPort{}, c.err("read", c.raddr, err)
	}
	return n, netip.AddrPortFrom(report(m.Src.Addr(), c.v6sock), m.Src.Port()), nil
}

// ReadMsgUDP reads one datagram, its control messages into oob (IP_PKTINFO or
// IPV6_PKTINFO when enabled) and flags (MSG_TRUNC when b was too short), as net.UDPConn.
func (c *UDPConn) ReadMsgUDP(b, oob []byte) (n, oobn, flags int, addr *net.UDPAddr, err error) {
	var ap netip.AddrPort
	n, oobn, flags, ap, err = c.ReadMsgUDPAddrPort(b, oob)
	if err == nil {
		addr = udpAddrOf(ap, c.v6sock)
	}
	return
}

// ReadMsgUDPAddrPort is ReadMsgUDP returning a netip.AddrPort.
func (c *UDPConn) ReadMsgUDPAddrPort(b, oob []byte) (n, oobn, flags int, addr netip.AddrPort, err error) {
	n, m, err := c.timeo.readMsg(c.c, b)
	if err != nil {
		return n, 0, 0, addr, c.err("read", c.raddr, err)
	}
	oobn, flags = recvControl(&m, oob, c.pktinfo.Load())
	return n, oobn, flags, netip.AddrPortFrom(report(m.Src.Addr(), c.v6sock), m.Src.Port()), nil
}

// WriteTo sends one datagram to addr (a *net.UDPAddr): EMSGSIZE when b is longer than a
// datagram can be, ENOMEM when the link queue (or the stack's memory) is full — UDP never
// blocks for room, as lwIP documents.
func (c *UDPConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || ua == nil {
		return 0, c.err("write", addr, errInval)
	}
	return c.WriteToUDP(b, ua)
}

// WriteToUDP is WriteTo with a *net.UDPAddr.
func (c *UDPConn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	ap, ok := udpAddrPort(addr)
	if !ok || addr == nil || !ap.Addr().IsValid() {
		return 0, c.err("write", addr, errInval)
	}
	return c.writeTo(b, ap, addr)
}

// WriteToUDPAddrPort is WriteTo with a netip.AddrPort.
func (c *UDPConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.writeTo(b, addr, nil)
}

func (c *UDPConn) writeTo(b []byte, ap netip.AddrPort, na net.Addr) (int, error) {
	if c.raddr != nil {
		return 0, c.err("write", c.addrOr(na, ap), net.ErrWriteToConnected)
	}
	n, err := c.c.WriteTo(b, unmapAP(ap))
	if err != nil {
		return n, c.err("write", c.addrOr(na, ap), err)
	}
	return n, nil
}

func (c *UDPConn) addrOr(na net.Addr, ap netip.AddrPort) net.Addr {
	if na != nil {
		return na
	}
	return udpAddrOf(ap, c.v6sock)
}

// WriteMsgUDP sends one datagram with control messages: IP_PKTINFO / IPV6_PKTINFO in oob
// choose the source address and the netif, UDP_SEGMENT (SOL_UDP, a uint16) the segment
// size of this write (see SetSegmentSize). addr must be nil on a connected socket.
func (c *UDPConn) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (n, oobn int, err error) {
	var ap netip.AddrPort
	if addr != nil {
		var ok bool
		if ap, ok = udpAddrPort(addr); !ok || !ap.Addr().IsValid() {
			return 0, 0, c.err("write", addr, errInval)
		}
	}
	return c.WriteMsgUDPAddrPort(b, oob, ap)
}

// WriteMsgUDPAddrPort is WriteMsgUDP with a netip.AddrPort (zero on a connected socket).
func (c *UDPConn) WriteMsgUDPAddrPort(b, oob []byte, addr netip.AddrPort) (n, oobn int, err error) {
	switch {
	case c.raddr != nil && addr.IsValid():
		return 0, 0, c.err("write", udpAddrOf(addr, c.v6sock), net.ErrWriteToConnected)
	case c.raddr == nil && !addr.IsValid():
		return 0, 0, c.err("write", nil, errDestAddrReq)
	case c.raddr != nil:
		addr = c.c.RemoteAddr()
	}
	src, ifIndex, err := parsePktInfo(oob)
	seg := -1
	if err == nil {
		seg, err = udpSegment(oob)
	}
	if err != nil {
		return 0, 0, c.err("write", udpAddrOf(addr, c.v6sock), err)
	}
	switch {
	case len(oob) == 0 && c.raddr != nil:
		n, err = c.c.Write(b)
	case len(oob) == 0:
		n, err = c.c.WriteTo(b, unmapAP(addr))
	case seg >= 0:
		n, err = c.c.WriteToFromSeg(b, unmapAP(addr), src.Unmap(), ifIndex, seg)
	default:
		n, err = c.c.WriteToFrom(b, unmapAP(addr), src.Unmap(), ifIndex)
	}
	if err != nil {
		return n, 0, c.err("write", udpAddrOf(addr, c.v6sock), err)
	}
	return n, len(oob), nil
}

// udpSegment reads the UDP_SEGMENT control message of a send (udp(7): SOL_UDP, a __u16
// segment size), -1 when oob has none. As Linux's udp_cmsg_send: EINVAL for one of
// another length, or for another SOL_UDP message.
func udpSegment(oob []byte) (int, error) {
	if len(oob) == 0 {
		return -1, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return -1, errInval
	}
	seg := -1
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_UDP {
			continue
		}
		if m.Header.Type != unix.UDP_SEGMENT || len(m.Data) != 2 {
			return -1, errInval
		}
		seg = int(ne.Uint16(m.Data))
	}
	return seg, nil
}

// Buffered returns the size of the next datagram queued for reading (FIONREAD on a UDP
// socket), or 0.
func (c *UDPConn) Buffered() int { return c.c.Buffered() }
