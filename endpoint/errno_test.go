package endpoint

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/tcp"
)

// isErrno checks that err is a *net.OpError whose Err is errno, as package net reports a
// kernel socket's errors.
func isErrno(t *testing.T, err error, errno syscall.Errno) {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("want *net.OpError with %v, got %T %v", errno, err, err)
	}
	if !errors.Is(err, errno) {
		t.Fatalf("want %v, got %v", errno, err)
	}
	if e, ok := oe.Err.(syscall.Errno); !ok || e != errno {
		t.Fatalf("OpError.Err = %#v, want the errno %v", oe.Err, errno)
	}
}

func TestErrnoConnRefused(t *testing.T) {
	p := newPair(t, pairConfig{})
	_, err := p.na.Dial("tcp", "198.18.0.2:9")
	isErrno(t, err, syscall.ECONNREFUSED)
	if oe := err.(*net.OpError); oe.Op != "dial" || oe.Net != "tcp" || oe.Addr.String() != "198.18.0.2:9" {
		t.Fatalf("%#v", oe)
	}
}

func TestErrnoAddrInUse(t *testing.T) {
	p := newPair(t, pairConfig{})
	listen(t, p.nb, "tcp4", "198.18.0.2:8080")
	_, err := p.nb.Listen("tcp4", "198.18.0.2:8080")
	isErrno(t, err, syscall.EADDRINUSE)
	// The dual-stack wildcard taken twice.
	listen(t, p.nb, "tcp", ":8081")
	_, err = p.nb.Listen("tcp", ":8081")
	isErrno(t, err, syscall.EADDRINUSE)
	// The dual-stack wildcard holds the port for IPv4 too, as on Linux.
	_, err = p.nb.Listen("tcp", ":8080")
	isErrno(t, err, syscall.EADDRINUSE)
	_, err = p.nb.Listen("tcp4", "198.18.0.2:8081")
	isErrno(t, err, syscall.EADDRINUSE)
}

// Removing the address a connection is bound to aborts it (esp-lwip's default, unless
// Options.TCPKeepConnWhenIPChanges).
func TestErrnoConnAborted(t *testing.T) {
	p := newPair(t, pairConfig{})
	c, _ := p.tcpPair(t, 0)
	if err := p.nifA.RemoveAddr(addrA[0]); err != nil {
		t.Fatal(err)
	}
	_, err := c.Read(make([]byte, 1))
	isErrno(t, err, syscall.ECONNABORTED)
}

func TestErrnoConnReset(t *testing.T) {
	c := resetByPeer(t, newPair(t, pairConfig{}), 1)
	_, err := c.Read(make([]byte, 1))
	isErrno(t, err, syscall.ECONNRESET)
}

func TestErrnoNetUnreach(t *testing.T) {
	p := newPair(t, pairConfig{})
	_, err := p.na.Dial("tcp", "10.9.9.9:80")
	isErrno(t, err, syscall.ENETUNREACH)
	_, err = p.na.Dial("tcp", "[2001:db8::1]:80")
	isErrno(t, err, syscall.ENETUNREACH)
}

func TestErrnoNetDown(t *testing.T) {
	p := newPair(t, pairConfig{})
	p.nifA.SetUp(false)
	_, err := p.na.Dial("tcp", "198.18.0.2:80")
	isErrno(t, err, syscall.ENETDOWN)
	p.nifA.SetUp(true)
}

// A SYN into the void (an on-link address nobody has) times out after the SYN retries.
func TestErrnoTimedOut(t *testing.T) {
	p := newPair(t, pairConfig{opts: shortOpts()})
	_, err := p.na.Dial("tcp", "198.18.0.99:80")
	isErrno(t, err, syscall.ETIMEDOUT)
}

// A router answers the SYN with ICMP destination unreachable: once the SYN retries are
// spent the connect reports EHOSTUNREACH (RFC 1122 §4.2.3.9: a soft error, reported when
// the connection gives up).
func TestErrnoHostUnreach(t *testing.T) {
	o := shortOpts()
	o.IPForward = true
	p := newPair(t, pairConfig{opts: o})
	nif := p.a.Netifs()[0]
	if err := p.a.AddRoute(stack.Route{Dst: netip.MustParsePrefix("10.0.0.0/8"), Gateway: addrB[0], Netif: nif}); err != nil {
		t.Fatal(err)
	}
	_, err := p.na.Dial("tcp", "10.1.1.1:80") // B has no route to 10/8: ICMP unreachable
	isErrno(t, err, syscall.EHOSTUNREACH)
}

// StartDialTCP is the non-blocking connect: EINPROGRESS at once, EALREADY for a second
// connect while the handshake runs, EISCONN once connected.
func TestErrnoInProgressAlready(t *testing.T) {
	p := newPair(t, pairConfig{opts: shortOpts()})
	l, err := p.nb.ListenTCP("tcp", &net.TCPAddr{Port: 7000})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// To a silent address the handshake stays in progress for a while.
	silent := &net.TCPAddr{IP: net.ParseIP("198.18.0.99"), Port: 80}
	c, err := p.na.StartDialTCP("tcp", nil, silent)
	isErrno(t, err, syscall.EINPROGRESS)
	isErrno(t, c.Connect(silent), syscall.EALREADY)
	if v, err := c.GetsockoptInt(syscall.SOL_SOCKET, syscall.SO_ERROR); v != 0 || err != nil {
		t.Fatalf("SO_ERROR while connecting: %d %v", v, err)
	}
	isErrno(t, c.WaitConnect(testCtx(t)), syscall.ETIMEDOUT)
	c.Close()

	// A connect that succeeds.
	c, err = p.na.StartDialTCP("tcp", nil, &net.TCPAddr{IP: addrB[0].AsSlice(), Port: 7000})
	isErrno(t, err, syscall.EINPROGRESS)
	go func() {
		if s, err := l.Accept(); err == nil {
			s.Write([]byte("x"))
			s.Close()
		}
	}()
	c.SetDeadline(time.Now().Add(ioTimeout))
	b := make([]byte, 1)
	if n, err := c.Read(b); n != 1 || err != nil { // waits for the handshake
		t.Fatalf("read %d %v", n, err)
	}
	isErrno(t, c.Connect(nil), syscall.EISCONN)
	c.Close()

	// Close abandons a connect in progress; nothing is left behind.
	c, _ = p.na.StartDialTCP("tcp", nil, silent)
	time.Sleep(5 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestErrnoProtoNoSupport(t *testing.T) {
	p := newPair(t, pairConfig{})
	// Raw sockets of protocol 0 fail so on Linux too; IPPROTO_RAW (header included) and
	// IPv6 extension headers are not offered.
	_, err := p.na.Dial("ip4:0", "198.18.0.2")
	isErrno(t, err, syscall.EPROTONOSUPPORT)
	_, err = p.na.ListenPacket("ip4:0", "0.0.0.0")
	isErrno(t, err, syscall.EPROTONOSUPPORT)
	_, err = p.na.ListenPacket("ip6:255", "::")
	isErrno(t, err, syscall.EPROTONOSUPPORT)
	_, err = p.na.ListenIP("ip6:44", nil)
	isErrno(t, err, syscall.EPROTONOSUPPORT)
	_, err = p.na.Dial("ip:44", "fd42:5eed::2")
	isErrno(t, err, syscall.EPROTONOSUPPORT)
	_, err = p.na.Dial("unix", "/tmp/x")
	isErrno(t, err, syscall.EPROTONOSUPPORT)
	_, err = p.na.Dial("bogus", "x")
	var un net.UnknownNetworkError
	if !errors.As(err, &un) {
		t.Fatalf("unknown network: %v", err)
	}
}

// The stack's netconn count is a pool: beyond Options.MempNumNetconn a dial fails with
// ENOMEM.
func TestErrnoNoMemConns(t *testing.T) {
	o := opt.Tunnel()
	o.MempNumNetconn = 3
	p := newPair(t, pairConfig{opts: o})
	listen(t, p.nb, "tcp", ":7001")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for {
		c, err := p.na.Dial("tcp", "198.18.0.2:7001")
		if err != nil {
			isErrno(t, err, syscall.ENOMEM)
			break
		}
		conns = append(conns, c)
		if len(conns) > 3 {
			t.Fatal("MempNumNetconn not enforced")
		}
	}
}

// A write after shutdown(SHUT_WR) fails with EPIPE, as on Linux (lwIP says ENOTCONN), and
// still does once the connection has ended normally after it (TIME-WAIT ran out).
func TestErrnoPipe(t *testing.T) {
	o := opt.Tunnel()
	o.TCPMSL = 5 * time.Millisecond
	p := newPair(t, pairConfig{opts: o})
	c, s := p.tcpPair(t, 0)
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_, err := c.Write([]byte("x"))
	isErrno(t, err, syscall.EPIPE)
	if oe := err.(*net.OpError); oe.Op != "write" {
		t.Fatalf("Op %q", oe.Op)
	}
	// The server reads the FIN and closes: the client goes through TIME-WAIT to CLOSED
	// (the PCB gone with errs.Clsd) and the write error stays EPIPE.
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("server read: %v", err)
	}
	s.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.Info().State != tcp.StateClosed {
		if time.Now().After(deadline) {
			t.Fatalf("client still %v", c.Info().State)
		}
		time.Sleep(2 * time.Millisecond)
	}
	_, err = c.Write([]byte("x"))
	isErrno(t, err, syscall.EPIPE)
}

// The first write after the peer's reset fails with ECONNRESET, as on Linux.
func TestErrnoWriteAfterReset(t *testing.T) {
	c := resetByPeer(t, newPair(t, pairConfig{}), 0)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := c.Write([]byte("x"))
		if err != nil {
			isErrno(t, err, syscall.ECONNRESET)
			// Linux reports the reset once; then writes get EPIPE and reads end of file.
			_, err = c.Write([]byte("x"))
			isErrno(t, err, syscall.EPIPE)
			if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Errorf("Read after the reported reset: %d, %v; want 0, io.EOF", n, err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("writes still succeed 5 s after the peer's reset")
		}
		time.Sleep(time.Millisecond)
	}
}

// resetByPeer returns the client end of a TCP connection of p (fam 0 IPv4, 1 IPv6) whose
// server end has reset it (SO_LINGER 0, then Close).
func resetByPeer(t *testing.T, p *pair, fam int) *TCPConn {
	t.Helper()
	c, s := p.tcpPair(t, fam)
	if err := s.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	s.Close() // RST
	return c
}
