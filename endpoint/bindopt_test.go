package endpoint

import (
	"context"
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

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
