package endpoint

import (
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestSockoptTCP(t *testing.T) {
	p := newPair(t, pairConfig{})
	c, _ := p.tcpPair(t, 0)
	set := []sockopt{
		{unix.IPPROTO_TCP, unix.TCP_NODELAY, 0},
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 30},
		{unix.IPPROTO_TCP, TCPKeepAlive, 40},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 5},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 4},
		{unix.IPPROTO_IP, unix.IP_TTL, 33},
		{unix.IPPROTO_IP, unix.IP_TOS, 0x10},
		{unix.SOL_SOCKET, unix.SO_RCVBUF, 32768},
		{unix.SOL_SOCKET, unix.SO_SNDBUF, 16384},
		{unix.SOL_SOCKET, unix.SO_RCVTIMEO, 20},
	}
	setGet(t, c, set)
	if v, _ := c.GetsockoptInt(unix.SOL_SOCKET, unix.SO_TYPE); v != unix.SOCK_STREAM {
		t.Fatal("SO_TYPE", v)
	}
	// SO_RCVTIMEO: a read with nothing to read fails with EAGAIN after 20 ms.
	start := time.Now()
	_, err := c.Read(make([]byte, 1))
	isErrno(t, err, syscall.EAGAIN)
	if ne := err.(net.Error); !ne.Timeout() || time.Since(start) < 15*time.Millisecond {
		t.Fatal("SO_RCVTIMEO", err)
	}
	c.SetsockoptInt(unix.SOL_SOCKET, unix.SO_RCVTIMEO, 0)
	_, err = c.GetsockoptInt(unix.SOL_SOCKET, unix.SO_NO_CHECK)
	isErrno(t, err, syscall.ENOPROTOOPT)
	isErrno(t, c.SetsockoptInt(99, 99, 1), syscall.ENOPROTOOPT)
	isErrno(t, c.SetsockoptInt(unix.IPPROTO_IP, unix.IP_TTL, 300), syscall.EINVAL)

	l, err := p.nb.ListenTCP("tcp", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if v, _ := l.GetsockoptInt(unix.SOL_SOCKET, unix.SO_ACCEPTCONN); v != 1 {
		t.Fatal("SO_ACCEPTCONN", v)
	}
}

func TestSockoptUDP(t *testing.T) {
	p := newPair(t, pairConfig{})
	c, err := p.na.ListenUDPAddrPort(netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	set := []sockopt{
		{unix.SOL_SOCKET, unix.SO_BROADCAST, 1},
		{unix.SOL_SOCKET, unix.SO_NO_CHECK, 1},
		{unix.IPPROTO_IP, unix.IP_TTL, 7},
		{unix.IPPROTO_IP, unix.IP_TOS, 0x20},
		{unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 5},
		{unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0},
		{unix.IPPROTO_IP, unix.IP_MULTICAST_IF, p.nifA.Index()},
		{unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 9},
		{unix.SOL_SOCKET, unix.SO_RCVBUF, 9000},
	}
	setGet(t, c, set)
	if v, _ := c.GetsockoptInt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); v != 0 {
		t.Fatal("dual-stack socket reports V6ONLY", v)
	}
	g := netip.MustParseAddr("239.1.2.3")
	if err := c.SetsockoptIPMreqn(unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, &unix.IPMreqn{Multiaddr: g.As4(), Ifindex: int32(p.nifA.Index())}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetsockoptIPMreq(unix.IPPROTO_IP, unix.IP_DROP_MEMBERSHIP, &unix.IPMreq{Multiaddr: g.As4(), Interface: addrA[0].As4()}); err != nil {
		t.Fatal(err)
	}
	g6 := netip.MustParseAddr("ff12::1234")
	if err := c.SetsockoptIPv6Mreq(unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, &unix.IPv6Mreq{Multiaddr: g6.As16(), Interface: uint32(p.nifA.Index())}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetsockoptInt(unix.IPPROTO_TCP, unix.TCP_NODELAY)
	isErrno(t, err, syscall.ENOPROTOOPT)
}
