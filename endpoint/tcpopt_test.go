package endpoint

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
)

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

// Dialer.MSS is TCP_MAXSEG before connect: the SYN announces it, so the accepted side sends
// no larger segment; a bad value fails the dial with EINVAL. A StartDialTCP conn still
// connecting reports 536, as Linux.
func TestDialerMSS(t *testing.T) {
	p := newPair(t, pairConfig{opts: shortOpts()})
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
	p := newPair(t, pairConfig{wrapA: func(ep link.Endpoint) link.Endpoint {
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
