package endpoint

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
)

// Socket options: set on an open socket (SetsockoptInt, the typed setters), then those a
// ListenConfig or Dialer sets before bind or connect (V6Only, ReuseAddr, MSS); each is read
// back through GetsockoptInt.

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

// TCP_MAXSEG, TCP_USER_TIMEOUT, TCP_CORK and TCP_NOTSENT_LOWAT through SetsockoptInt read
// back through GetsockoptInt and the typed getters; bad values fail with EINVAL and change
// nothing.
func TestSockoptTCPLinux(t *testing.T) {
	p := newPair(t, pairConfig{})
	c, _ := p.tcpPair(t, 0)
	setGet(t, c, []sockopt{
		{unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 2500},
		{unix.IPPROTO_TCP, unix.TCP_CORK, 1},
		{unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, 16384},
		{unix.IPPROTO_TCP, unix.TCP_CORK, 0},
		{unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 0},
		{unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, 0},
	})
	if err := c.SetsockoptInt(unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 1234); err != nil || c.UserTimeout() != 1234*time.Millisecond {
		t.Fatalf("TCP_USER_TIMEOUT 1234 ms: %v, UserTimeout %v", err, c.UserTimeout())
	}
	if err := c.SetCork(true); err != nil || !c.Cork() {
		t.Fatalf("SetCork: %v %v", err, c.Cork())
	}
	if v, _ := c.GetsockoptInt(unix.IPPROTO_TCP, unix.TCP_CORK); v != 1 {
		t.Fatalf("TCP_CORK after SetCork(true) = %d", v)
	}
	if err := c.SetCork(false); err != nil {
		t.Fatal(err)
	}
	if err := c.SetNotSentLowat(4096); err != nil || c.NotSentLowat() != 4096 {
		t.Fatalf("SetNotSentLowat: %v %d", err, c.NotSentLowat())
	}

	// TCP_MAXSEG reads the effective MSS: 1460 on a 1500-byte link, less 12 bytes of
	// timestamps when they were negotiated.
	ts := 0
	if c.Info().Timestamps {
		ts = 12
	}
	if v, err := c.GetsockoptInt(unix.IPPROTO_TCP, unix.TCP_MAXSEG); err != nil || v != 1460-ts {
		t.Fatalf("TCP_MAXSEG = %d %v, want %d", v, err, 1460-ts)
	}
	if err := c.SetsockoptInt(unix.IPPROTO_TCP, unix.TCP_MAXSEG, 500); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.GetsockoptInt(unix.IPPROTO_TCP, unix.TCP_MAXSEG); v != 500-ts || c.MSS() != v {
		t.Fatalf("TCP_MAXSEG after setting 500 = %d (MSS %d), want %d", v, c.MSS(), 500-ts)
	}

	for _, bad := range []struct{ name, v int }{
		{unix.TCP_MAXSEG, -1},
		{unix.TCP_MAXSEG, 87},
		{unix.TCP_MAXSEG, 65496},
		{unix.TCP_USER_TIMEOUT, -1},
		{unix.TCP_NOTSENT_LOWAT, -1},
	} {
		isErrno(t, c.SetsockoptInt(unix.IPPROTO_TCP, bad.name, bad.v), syscall.EINVAL)
	}
	isErrno(t, c.SetUserTimeout(-time.Second), syscall.EINVAL)
	isErrno(t, c.SetNotSentLowat(-5), syscall.EINVAL)
	isErrno(t, c.SetMSS(70000), syscall.EINVAL)
	if v, _ := c.GetsockoptInt(unix.IPPROTO_TCP, unix.TCP_MAXSEG); v != 500-ts {
		t.Errorf("TCP_MAXSEG after bad values = %d, want %d", v, 500-ts)
	}
	if c.UserTimeout() != 1234*time.Millisecond || c.NotSentLowat() != 4096 {
		t.Errorf("bad values changed the options: %v %d", c.UserTimeout(), c.NotSentLowat())
	}
	// An IPv4 option name at IPPROTO_TCP is not one of them.
	_, err := c.GetsockoptInt(unix.IPPROTO_TCP, 99)
	isErrno(t, err, syscall.ENOPROTOOPT)
}

// blackhole is a link that drops every frame once on: the peer seems to stop answering.
type blackhole struct {
	link.Endpoint
	on atomic.Bool
}

func (b *blackhole) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	if !b.on.Load() {
		return b.Endpoint.WritePackets(pkts)
	}
	for _, p := range pkts {
		p.Free()
	}
	return len(pkts), nil
}

// TCP_USER_TIMEOUT: once the peer stops answering, data unacknowledged for longer than the
// timeout ends the connection with ETIMEDOUT, long before the retransmissions would run
// out (12 of them, from a 200 ms RTO, take minutes).
func TestSockoptUserTimeout(t *testing.T) {
	var bh *blackhole
	p := newPair(t, pairConfig{wrapA: func(_ *stack.Stack, ep link.Endpoint) link.Endpoint {
		bh = &blackhole{Endpoint: ep}
		return bh
	}})
	c, _ := p.tcpPair(t, 0)
	const timeout = 300 * time.Millisecond
	if err := c.SetsockoptInt(unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(timeout.Milliseconds())); err != nil {
		t.Fatal(err)
	}
	bh.on.Store(true)
	start := time.Now()
	if _, err := c.Write([]byte("into the void")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	took := time.Since(start)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("no timeout within 5 s: %v", c.Info())
	}
	isErrno(t, err, syscall.ETIMEDOUT)
	if took < timeout-20*time.Millisecond || took > timeout+time.Second {
		t.Errorf("the connection timed out after %v, want about %v", took, timeout)
	}
	t.Logf("timed out after %v", took)
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

// ListenConfig.V6Only stops the dual stack of a "tcp" listener on "::": IPv4 on the same
// port is then free for a "tcp4" listener, and each family reaches its own.
func TestListenConfigV6OnlyTCP(t *testing.T) {
	p := newPair(t, pairConfig{})
	ctx := context.Background()
	dual, err := (&ListenConfig{Net: p.nb}).Listen(ctx, "tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(dual.Addr().(*net.TCPAddr).Port)
	_, err = p.nb.Listen("tcp4", ":"+port)
	isErrno(t, err, syscall.EADDRINUSE)
	dual.Close()

	lc := ListenConfig{Net: p.nb, V6Only: true}
	l6, err := lc.Listen(ctx, "tcp", ":"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer l6.Close()
	l4 := listen(t, p.nb, "tcp4", ":"+port)
	if v, err := l6.(*TCPListener).GetsockoptInt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); err != nil || v != 1 {
		t.Fatalf("IPV6_V6ONLY %d %v", v, err)
	}
	isErrno(t, l6.(*TCPListener).SetsockoptInt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0), syscall.EINVAL)
	for fam, l := range []net.Listener{l4, l6} {
		c, accepted := p.dialAccept(t, l, net.JoinHostPort(addrB[fam].String(), port))
		if fam == 1 {
			// An accepted conn inherits the listener's IPV6_V6ONLY.
			if v, _ := accepted.(*TCPConn).GetsockoptInt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); v != 1 {
				t.Fatalf("accepted IPV6_V6ONLY %d", v)
			}
		}
		accepted.Close()
		c.Close()
	}
}

// A "tcp6" socket is IPV6_V6ONLY, as Go's, while it connects and once connected (the value
// read from its PCB); a "tcp" socket to an IPv6 address is not.
func TestDialV6OnlyTCP(t *testing.T) {
	p := newPair(t, pairConfig{})
	l := listen(t, p.nb, "tcp6", ":0")
	defer l.Close()
	raddr := &net.TCPAddr{IP: addrB[1].AsSlice(), Port: l.Addr().(*net.TCPAddr).Port}
	for network, want := range map[string]int{"tcp6": 1, "tcp": 0} {
		c, err := p.na.StartDialTCP(network, nil, raddr)
		if !errors.Is(err, syscall.EINPROGRESS) {
			t.Fatalf("%s: %v", network, err)
		}
		if v, _ := c.GetsockoptInt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); v != want {
			t.Errorf("%s connecting: IPV6_V6ONLY %d, want %d", network, v, want)
		}
		accepted, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("x")); err != nil { // waits for the connect
			t.Fatal(err)
		}
		if v, _ := c.GetsockoptInt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); v != want {
			t.Errorf("%s connected: IPV6_V6ONLY %d, want %d", network, v, want)
		}
		accepted.Close()
		c.Close()
	}
}

// A restarted server listens again on its port while a connection its old listener accepted
// is still open, as with package net on Linux (SO_REUSEADDR on every TCP listener); a
// second listener beside a live one still fails.
func TestListenAgainWhileAcceptedConnLive(t *testing.T) {
	p := newPair(t, pairConfig{})
	l := listen(t, p.nb, "tcp", ":0")
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	_, err := p.nb.Listen("tcp", ":"+port)
	isErrno(t, err, syscall.EADDRINUSE)
	if v, err := l.(*TCPListener).GetsockoptInt(unix.SOL_SOCKET, unix.SO_REUSEADDR); err != nil || v != 1 {
		t.Fatalf("listener SO_REUSEADDR %d %v", v, err)
	}
	c, accepted := p.dialAccept(t, l, net.JoinHostPort(addrB[0].String(), port)) // deadlines, closed after the evidence
	l.Close()
	listen(t, p.nb, "tcp", ":"+port)
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := accepted.Read(b[:]); err != nil || b[0] != 'x' {
		t.Fatalf("old connection after the new listen: %q %v", b, err)
	}
}

// ListenConfig.ReuseAddr lets UDP sockets share a port; without it the second bind fails.
// Once bound, SO_REUSEADDR cannot change.
func TestListenConfigReuseAddrUDP(t *testing.T) {
	p := newPair(t, pairConfig{})
	ctx := context.Background()
	lc := ListenConfig{Net: p.nb, ReuseAddr: true}
	a, err := lc.ListenPacket(ctx, "udp4", "198.18.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	addr := a.LocalAddr().String()
	_, err = p.nb.ListenPacket("udp4", addr)
	isErrno(t, err, syscall.EADDRINUSE)
	b, err := lc.ListenPacket(ctx, "udp4", addr)
	if err != nil {
		t.Fatalf("second ReuseAddr socket: %v", err)
	}
	defer b.Close()
	uc := b.(*UDPConn)
	if v, err := uc.GetsockoptInt(unix.SOL_SOCKET, unix.SO_REUSEADDR); err != nil || v != 1 {
		t.Fatalf("SO_REUSEADDR %d %v", v, err)
	}
	isErrno(t, uc.SetsockoptInt(unix.SOL_SOCKET, unix.SO_REUSEADDR, 0), syscall.EINVAL)

	// V6Only on "udp": the IPv4 side of the port stays free.
	v6, err := (&ListenConfig{Net: p.nb, V6Only: true}).ListenPacket(ctx, "udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer v6.Close()
	port := strconv.Itoa(v6.LocalAddr().(*net.UDPAddr).Port)
	v4 := listenPacket(t, p.nb, "udp4", ":"+port)
	if v, _ := v6.(*UDPConn).GetsockoptInt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); v != 1 {
		t.Fatalf("IPV6_V6ONLY %d", v)
	}
	// IPv4 datagrams to the port reach the udp4 socket only.
	c := dial(t, p.na, "udp4", net.JoinHostPort(addrB[0].String(), port))
	if _, err := c.Write([]byte("v4")); err != nil {
		t.Fatal(err)
	}
	v4.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 8)
	if n, _, err := v4.ReadFrom(buf); err != nil || string(buf[:n]) != "v4" {
		t.Fatalf("udp4 socket: %q %v", buf[:n], err)
	}
}

// Dialer.ReuseAddr binds a TCP socket's local port although a connection from it is in
// TIME-WAIT; the connected socket reports SO_REUSEADDR and refuses to change it.
func TestDialerReuseAddrTCP(t *testing.T) {
	p := newPair(t, pairConfig{})
	l := listen(t, p.nb, "tcp4", ":0")
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				// The server waits for the client's FIN, so the client closes first and
				// its side ends in TIME-WAIT.
				c.SetReadDeadline(time.Now().Add(ioTimeout))
				_, _ = c.Read(make([]byte, 1))
				c.Close()
			}()
		}
	}()
	raddr := net.JoinHostPort(addrB[0].String(), strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	d := Dialer{Net: p.na, LocalAddr: &net.TCPAddr{IP: addrA[0].AsSlice(), Port: 40123}}
	ctx := testCtx(t)
	c, err := d.DialContext(ctx, "tcp4", raddr)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := c.(*TCPConn).GetsockoptInt(unix.SOL_SOCKET, unix.SO_REUSEADDR); v != 0 {
		t.Fatalf("SO_REUSEADDR %d", v)
	}
	c.Close()
	l2 := listen(t, p.nb, "tcp4", ":0")
	go func() {
		if c, err := l2.Accept(); err == nil {
			c.Close()
		}
	}()
	raddr2 := net.JoinHostPort(addrB[0].String(), strconv.Itoa(l2.Addr().(*net.TCPAddr).Port))
	_, err = d.DialContext(ctx, "tcp4", raddr2)
	isErrno(t, err, syscall.EADDRINUSE)
	d.ReuseAddr = true
	// The client reaches TIME-WAIT once the server's FIN has crossed the pipe; until then
	// (FIN-WAIT-2) the port is not reusable either.
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err = d.DialContext(ctx, "tcp4", raddr2)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("ReuseAddr dial from a port in TIME-WAIT: %v", err)
	}
	p.ev.Close(c)
	tc := c.(*TCPConn)
	if v, _ := tc.GetsockoptInt(unix.SOL_SOCKET, unix.SO_REUSEADDR); v != 1 {
		t.Fatalf("SO_REUSEADDR %d", v)
	}
	isErrno(t, tc.SetsockoptInt(unix.SOL_SOCKET, unix.SO_REUSEADDR, 1), syscall.EINVAL)
}

// Dialer.MSS is TCP_MAXSEG before connect: the SYN announces it, so the accepted side sends
// no larger segment; a bad value fails the dial with EINVAL. A StartDialTCP conn still
// connecting reports 536, as Linux.
func TestDialerMSS(t *testing.T) {
	o := shortOpts()
	o.GRO = false // the receiver counts segments as the wire carries them
	p := newPair(t, pairConfig{opts: o})
	l, err := p.nb.ListenTCP("tcp4", &net.TCPAddr{Port: 7100})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d := Dialer{Net: p.na, MSS: 80}
	_, err = d.Dial("tcp", "198.18.0.2:7100")
	isErrno(t, err, syscall.EINVAL)
	d.MSS = -1
	_, err = d.Dial("tcp", "198.18.0.2:7100")
	isErrno(t, err, syscall.EINVAL)

	d.MSS = 700
	c, s := p.connect(t, l, func() (*TCPConn, error) { // deadlines, closed after the evidence
		nc, err := d.DialContext(testCtx(t), "tcp", "198.18.0.2:7100")
		if err != nil {
			return nil, err
		}
		return nc.(*TCPConn), nil
	})
	want := 700
	if s.Info().Timestamps {
		want -= 12
	}
	if v, _ := s.GetsockoptInt(unix.IPPROTO_TCP, unix.TCP_MAXSEG); v != want {
		t.Errorf("accepted side's TCP_MAXSEG = %d, want %d (the dialer announced 700): %v", v, want, s.Info())
	}
	if v, _ := c.GetsockoptInt(unix.IPPROTO_TCP, unix.TCP_MAXSEG); v != want {
		t.Errorf("dialer's TCP_MAXSEG = %d, want %d", v, want)
	}
	// The accepted side's data arrives in segments of at most want bytes.
	const n = 32 << 10
	before := p.a.Stats().TCP.Recv
	go func() {
		s.Write(make([]byte, n))
		s.CloseWrite()
	}()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if k, err := io.Copy(io.Discard, c); k != n || err != nil {
		t.Fatalf("read %d bytes, %v", k, err)
	}
	if segs := p.a.Stats().TCP.Recv - before; segs < uint64((n+want-1)/want) {
		t.Errorf("%d bytes in %d segments: some were larger than %d", n, segs, want)
	}

	// Connecting to a silent address: 536 until the handshake gives an MSS.
	pc, err := p.na.StartDialTCP("tcp", nil, &net.TCPAddr{IP: net.ParseIP("198.18.0.99"), Port: 80})
	isErrno(t, err, syscall.EINPROGRESS)
	defer pc.Close()
	if v, err := pc.GetsockoptInt(unix.IPPROTO_TCP, unix.TCP_MAXSEG); v != 536 || err != nil {
		t.Errorf("TCP_MAXSEG while connecting = %d %v, want 536", v, err)
	}
	// The other options read what a new connection starts with, without waiting.
	for _, o := range []struct{ level, name, v int }{
		{unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 0},
		{unix.SOL_SOCKET, unix.SO_LINGER, -1},
		{unix.IPPROTO_TCP, unix.TCP_CORK, 0},
	} {
		if v, err := pc.GetsockoptInt(o.level, o.name); v != o.v || err != nil {
			t.Errorf("get %d/%d while connecting = %d %v, want %d", o.level, o.name, v, err, o.v)
		}
	}
}

// ListenConfig.MSS is TCP_MAXSEG on the listener: the SYN-ACK announces it, so the dialer
// sends no larger segment, and accepted conns inherit it.
func TestListenConfigMSS(t *testing.T) {
	p := newPair(t, pairConfig{})
	_, err := (&ListenConfig{Net: p.nb, MSS: 50}).Listen(t.Context(), "tcp", ":7200")
	isErrno(t, err, syscall.EINVAL)
	ln, err := (&ListenConfig{Net: p.nb, MSS: 800}).Listen(t.Context(), "tcp", ":7200")
	if err != nil {
		t.Fatal(err)
	}
	l := ln.(*TCPListener)
	defer l.Close()
	if v, err := l.GetsockoptInt(unix.IPPROTO_TCP, unix.TCP_MAXSEG); v != 800 || err != nil {
		t.Fatalf("listener's TCP_MAXSEG = %d %v", v, err)
	}
	c, s := p.connect(t, l, func() (*TCPConn, error) {
		return p.na.DialContextTCP(testCtx(t), "tcp", nil, &net.TCPAddr{IP: addrB[0].AsSlice(), Port: 7200})
	})
	want := 800
	if c.Info().Timestamps {
		want -= 12
	}
	if v := c.MSS(); v != want {
		t.Errorf("dialer's MSS %d, want %d (the SYN-ACK announced 800): %v", v, want, c.Info())
	}
	if v := s.MSS(); v != want {
		t.Errorf("accepted conn's MSS %d, want %d", v, want)
	}
}
