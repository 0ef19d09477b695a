package netconn_test

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/errs"
)

// Each option reads back what was set; bad values fail with errs.Val and change nothing.
func TestTCPOptRoundTrip(t *testing.T) {
	a, b := newPair(t, tunnel())
	c, _ := connPair(t, a, b, 0)

	if got := c.MSS(); got <= 0 || got > 1460 {
		t.Fatalf("MSS %d on a 1500-byte link", got)
	}
	if err := c.SetMSS(400); err != nil {
		t.Fatal(err)
	}
	if got := c.MSS(); got > 400 || got < 400-40 {
		t.Errorf("MSS after SetMSS(400) = %d, want 400 less the TCP options", got)
	}
	for _, bad := range []int{-1, 1, 87, 65496} {
		if err := c.SetMSS(bad); !errors.Is(err, errs.Val) {
			t.Errorf("SetMSS(%d): %v, want errs.Val", bad, err)
		}
	}
	// 0 removes the cap (whether an MSS already lowered comes back is the PCB's business).
	if err := c.SetMSS(0); err != nil {
		t.Errorf("SetMSS(0): %v", err)
	}

	if err := c.SetUserTimeout(1500 * time.Millisecond); err != nil || c.Sockopts().UserTimeout != 1500*time.Millisecond {
		t.Errorf("SetUserTimeout: %v, UserTimeout %v", err, c.Sockopts().UserTimeout)
	}
	if err := c.SetUserTimeout(-time.Millisecond); !errors.Is(err, errs.Val) || c.Sockopts().UserTimeout != 1500*time.Millisecond {
		t.Errorf("SetUserTimeout(-1ms): %v, UserTimeout %v", err, c.Sockopts().UserTimeout)
	}
	if err := c.SetUserTimeout(0); err != nil || c.Sockopts().UserTimeout != 0 {
		t.Errorf("SetUserTimeout(0): %v, UserTimeout %v", err, c.Sockopts().UserTimeout)
	}

	if c.Sockopts().Cork {
		t.Error("corked by default")
	}
	if err := c.SetCork(true); err != nil || !c.Sockopts().Cork {
		t.Errorf("SetCork(true): %v, Cork %v", err, c.Sockopts().Cork)
	}
	if err := c.SetCork(false); err != nil || c.Sockopts().Cork {
		t.Errorf("SetCork(false): %v, Cork %v", err, c.Sockopts().Cork)
	}

	if c.Sockopts().NotSentLowat != 0 {
		t.Errorf("NotSentLowat %d by default", c.Sockopts().NotSentLowat)
	}
	if err := c.SetNotSentLowat(16384); err != nil || c.Sockopts().NotSentLowat != 16384 {
		t.Errorf("SetNotSentLowat: %v, NotSentLowat %d", err, c.Sockopts().NotSentLowat)
	}
	if err := c.SetNotSentLowat(-1); !errors.Is(err, errs.Val) || c.Sockopts().NotSentLowat != 16384 {
		t.Errorf("SetNotSentLowat(-1): %v, NotSentLowat %d", err, c.Sockopts().NotSentLowat)
	}
}

// TCPOptions.MSS is announced in the SYN: the peer sends no segment larger, and each side
// reports it (less the timestamp option) as its MSS. A bad value fails the dial.
func TestTCPMSSBeforeConnect(t *testing.T) {
	o := tunnel()
	o.GRO = false // the receiver counts segments as the wire carries them
	a, b := newPair(t, o)
	l := listenTCP(t, b, netip.AddrPortFrom(addrB[0], 0), nil)
	if _, err := netconn.DialTCP(ctxFor(t, 5*time.Second), a, netip.AddrPort{}, l.Addr(), &netconn.TCPOptions{MSS: 87}); !errors.Is(err, errs.Val) {
		t.Fatalf("DialTCP with MSS 87: %v, want errs.Val", err)
	}
	const mss = 600
	ev := evidenceOf(a)
	l.SetDeadline(time.Now().Add(dialTimeout))
	accepted := make(chan *netconn.TCPConn, 1)
	go func() {
		s, err := l.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- s
	}()
	c, err := netconn.DialTCP(ctxFor(t, 5*time.Second), a, netip.AddrPort{}, l.Addr(), &netconn.TCPOptions{NoDelay: true, MSS: mss})
	if err != nil {
		t.Fatal(err)
	}
	ev.Close(c) // after the evidence
	s := <-accepted
	if s == nil {
		return
	}
	ev.Close(s)
	want := mss
	if s.Info().Timestamps {
		want -= 12 // the timestamp option in every segment
	}
	if got := s.MSS(); got != want {
		t.Errorf("the peer's MSS is %d, want %d (announced %d); peer %v", got, want, mss, s.Info())
	}
	if got := c.MSS(); got > want {
		t.Errorf("the dialer's own MSS is %d, above its cap %d", got, want)
	}

	// On the wire: the peer's 64 KiB arrive in segments of at most want bytes.
	const n = 64 << 10
	before := a.Stats().TCP.Recv
	data := pattern(n, 9)
	done := make(chan error, 1)
	s.SetWriteDeadline(time.Now().Add(ioTimeout))
	go func() {
		_, err := s.Write(data)
		if err == nil {
			err = s.CloseWrite()
		}
		done <- err
	}()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := readAll(c, 32<<10)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v; dialer %v; peer %v", len(got), err, c.Info(), s.Info())
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if segs := a.Stats().TCP.Recv - before; segs < uint64((n+want-1)/want) {
		t.Errorf("%d bytes came in %d segments: some were larger than %d", n, segs, want)
	}
}

// TCP_CORK holds a partial segment until uncorked, while full segments still leave.
func TestTCPCork(t *testing.T) {
	a, b := newPair(t, tunnel())
	c, s := connPair(t, a, b, 0)
	if err := c.SetCork(true); err != nil {
		t.Fatal(err)
	}
	mss := c.MSS()
	data := pattern(2*mss+5, 4)
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	// The two full segments arrive; the 5-byte tail stays behind.
	buf := make([]byte, len(data))
	got := 0
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	for got < 2*mss {
		n, err := s.Read(buf[got:])
		got += n
		if err != nil {
			t.Fatalf("read %d of the %d bytes of full segments: %v; sender %v", got, 2*mss, err, c.Info())
		}
	}
	s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := s.Read(buf[got:]); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("corked tail: read %d bytes, %v; want nothing until uncorked (sender %v)", got+n, err, c.Info())
	}
	if u := c.Info().Unsent; u != 5 {
		t.Errorf("sender holds %d unsent bytes, want the 5-byte tail", u)
	}
	if err := c.SetCork(false); err != nil {
		t.Fatal(err)
	}
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	for got < len(data) {
		n, err := s.Read(buf[got:])
		got += n
		if err != nil {
			t.Fatalf("after uncork: read %d of %d bytes: %v; sender %v", got, len(data), err, c.Info())
		}
	}
	if !bytes.Equal(buf, data) {
		t.Fatal("data differs")
	}
}

// TCP_NOTSENT_LOWAT: a writer blocks while more than the low-water mark is unsent (the
// peer's window is closed), far below the send buffer, and wakes once the peer reads.
func TestTCPNotSentLowat(t *testing.T) {
	a, b := newPair(t, tunnel())
	c, s := connPair(t, a, b, 0)
	const lowat, n = 16 << 10, 1 << 20
	if err := s.SetReadBuffer(8 << 10); err != nil {
		t.Fatal(err)
	}
	if err := c.SetNotSentLowat(lowat); err != nil {
		t.Fatal(err)
	}
	data := pattern(n, 5)
	done := make(chan error, 1)
	go func() {
		c.SetWriteDeadline(time.Now().Add(20 * time.Second))
		_, err := c.Write(data)
		done <- err
	}()
	// The peer reads nothing: once its window is closed the writer must stop at the mark.
	deadline := time.Now().Add(5 * time.Second)
	var last int
	for stable := 0; stable < 5; {
		time.Sleep(20 * time.Millisecond)
		i := c.Info()
		if i.SndBuf == last {
			stable++
		} else {
			stable, last = 0, i.SndBuf
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sender never settled: %v", i)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("Write of %d bytes returned (%v) while the peer read nothing: %v", n, err, c.Info())
	default:
	}
	// The write that crosses the mark is queued whole (one 64 KiB chunk at most, as Linux
	// queues a whole skb); without the mark 256 KiB would wait.
	if i := c.Info(); i.Unsent >= lowat+64<<10 {
		t.Fatalf("writer blocked with %d bytes unsent (%d queued), want under %d + one 64 KiB chunk: %v", i.Unsent, i.SndBuf, lowat, i)
	}
	// The peer reads: unsent bytes drain below the mark, and the writer wakes and finishes.
	s.SetReadDeadline(time.Now().Add(20 * time.Second))
	got := make([]byte, n)
	for off := 0; off < n; {
		k, err := s.Read(got[off:])
		off += k
		if err != nil {
			t.Fatalf("read %d of %d bytes: %v; sender %v", off, n, err, c.Info())
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the writer never woke: %v", c.Info())
	}
	if !bytes.Equal(got, data) {
		t.Fatal("data differs")
	}
}

// ListenOptions.MSS: the SYN-ACK announces it and accepted connections inherit the cap.
func TestTCPListenMSS(t *testing.T) {
	a, b := newPair(t, tunnel())
	if _, err := netconn.ListenTCP(b, netip.AddrPortFrom(addrB[0], 0), &netconn.ListenOptions{MSS: 65496}); !errors.Is(err, errs.Val) {
		t.Fatalf("ListenTCP with MSS 65496: %v, want errs.Val", err)
	}
	l := listenTCP(t, b, netip.AddrPortFrom(addrB[0], 0), &netconn.ListenOptions{MSS: 1000})
	l.SetDeadline(time.Now().Add(dialTimeout))
	accepted := make(chan *netconn.TCPConn, 1)
	go func() {
		s, _ := l.Accept()
		accepted <- s
	}()
	c, err := netconn.DialTCP(ctxFor(t, 5*time.Second), a, netip.AddrPort{}, l.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	defer s.Close()
	want := 1000
	if c.Info().Timestamps {
		want -= 12
	}
	if c.MSS() != want || s.MSS() != want {
		t.Errorf("MSS: dialer %d, accepted %d, want %d", c.MSS(), s.MSS(), want)
	}
}

// Sockopts reads the options from the PCB; once the PCB is gone (here: reset by the peer)
// it reports the values the PCB had last, and netconn's own values stay.
func TestTCPSockoptsOutliveThePCB(t *testing.T) {
	a, b := newPair(t, tunnel())
	c, s := connPair(t, a, b, 0)
	if got, want := c.Sockopts(), netconn.DefaultTCPSockopts(a); got != want {
		t.Errorf("new connection's options %+v, want %+v", got, want)
	}
	c.SetCork(true)
	c.SetNotSentLowat(4096)
	c.SetUserTimeout(time.Second)
	c.SetNoDelay(false)
	c.SetLinger(7)
	c.SetTTL(9)
	c.SetTOS(0x10)
	// Keepalive's parameters are kept while it is off.
	ka := netconn.KeepAlive{Idle: time.Minute, Intvl: 5 * time.Second, Cnt: 4}
	c.SetKeepAlive(ka)
	want := c.Sockopts()
	if !want.Cork || want.NotSentLowat != 4096 || want.UserTimeout != time.Second || want.NoDelay || want.Linger != 7 ||
		want.TTL != 9 || want.TOS != 0x10 || want.KeepAlive != ka {
		t.Fatalf("options not set: %+v", want)
	}
	s.SetLinger(0)
	s.Close()
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, errs.Rst) {
		t.Fatalf("Read after RST: %v", err)
	}
	if got := c.Sockopts(); got != want {
		t.Errorf("options after the reset %+v, want %+v", got, want)
	}
}
