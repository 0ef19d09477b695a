package endpoint

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// TestNettestConn runs golang.org/x/net/nettest's conformance suite (basic I/O, ping-pong,
// racy reads and writes, close unblocking, deadlines, concurrent methods) on wisp TCP.
func TestNettestConn(t *testing.T) {
	for fam, name := range []string{"IPv4", "IPv6"} {
		t.Run(name, func(t *testing.T) {
			p := newPair(t, pairConfig{})
			nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
				a, b := p.tcpPair(t, fam)
				stop = func() {
					a.Close()
					b.Close()
				}
				return a, b, stop, nil
			})
		})
	}
}

func TestTCPCopyBothWays(t *testing.T) {
	p := newPair(t, pairConfig{})
	c, s := p.tcpPair(t, 0) // deadlines, closed after the evidence
	data := make([]byte, 4<<20)
	rand.Read(data)
	want := sha256.Sum256(data)
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, bytes.NewReader(data)) // TCPConn.ReadFrom
		if err == nil {
			err = c.CloseWrite()
		}
		done <- err
	}()
	h := sha256.New()
	n, err := io.Copy(h, s) // TCPConn.WriteTo: zero-copy from pbufs
	if err != nil || n != int64(len(data)) {
		t.Fatalf("copied %d, %v", n, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("data differs")
	}
	// The other direction still works after the half-close.
	if _, err := s.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "bye" {
		t.Fatalf("%q %v", b, err)
	}
}

func TestTCPAddrs(t *testing.T) {
	p := newPair(t, pairConfig{})
	// A "tcp" listener on ":port" is dual-stack: an IPv4 peer is reported v4-mapped.
	l := listen(t, p.nb, "tcp", ":0")
	port := l.Addr().(*net.TCPAddr).Port
	ctx := testCtx(t)
	go func() {
		c, err := p.na.DialContext(ctx, "tcp", net.JoinHostPort(addrB[0].String(), itoa(port)))
		if err == nil {
			c.Close()
		}
	}()
	l.(*TCPListener).SetDeadline(time.Now().Add(dialTimeout))
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ra := c.RemoteAddr().(*net.TCPAddr)
	if !ra.AddrPort().Addr().Is4In6() || ra.AddrPort().Addr().Unmap() != addrA[0] || ra.IP.String() != addrA[0].String() {
		t.Fatalf("remote %v (%v)", ra, ra.AddrPort())
	}
	if la := c.LocalAddr().(*net.TCPAddr); la.AddrPort().Addr().Unmap() != addrB[0] || la.Port != port {
		t.Fatalf("local %v", la)
	}
	// "tcp4" reports plain IPv4.
	c2, _ := p.tcpPair(t, 0)
	if a := c2.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); a != addrB[0] {
		t.Fatalf("tcp4 remote %v", a)
	}
}

func TestTCPCloseUnblocks(t *testing.T) {
	p := newPair(t, pairConfig{})
	c, _ := p.tcpPair(t, 1)
	errc := make(chan error, 2)
	go func() {
		_, err := c.Read(make([]byte, 10))
		errc <- err
	}()
	go func() {
		var err error
		for err == nil {
			_, err = c.Write(make([]byte, 64<<10)) // fills the window: s never reads
		}
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	for range 2 {
		select {
		case err := <-errc:
			var oe *net.OpError
			if !errors.Is(err, net.ErrClosed) || !errors.As(err, &oe) {
				t.Fatalf("got %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not unblock")
		}
	}
}

func TestTCPDeadline(t *testing.T) {
	p := newPair(t, pairConfig{})
	c, _ := p.tcpPair(t, 0)
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("got %v", err)
	}
	// DialContext with a canceled context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = p.na.DialContext(ctx, "tcp", "198.18.0.2:9")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled dial: %v", err)
	}
}

// TestTCPStress has many goroutines read, write, set deadlines and close at once (run
// with -race); nothing may be left behind.
func TestTCPStress(t *testing.T) {
	p := newPair(t, pairConfig{})
	var wg sync.WaitGroup
	// hammer calls op with a buffer of size until it fails with more than a deadline.
	hammer := func(op func([]byte) (int, error), size int) {
		defer wg.Done()
		b := make([]byte, size)
		for {
			if _, err := op(b); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
		}
	}
	for range 8 {
		c, s := p.tcpPair(t, 0)
		for _, conn := range []*TCPConn{c, s} {
			for range 2 {
				wg.Add(2)
				go hammer(conn.Read, 1000)
				go hammer(conn.Write, 3000)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 50 {
					conn.SetDeadline(time.Now().Add(time.Duration(i%5) * time.Millisecond))
					conn.SetReadDeadline(time.Time{})
					conn.SetWriteDeadline(time.Now().Add(time.Millisecond))
					conn.Buffered()
					conn.GetsockoptInt(6, 1)
					time.Sleep(time.Millisecond)
				}
				conn.SetDeadline(time.Time{})
				conn.Close()
			}()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(dialTimeout):
		t.Fatal("readers or writers still blocked after every Close")
	}
}

func itoa(i int) string { return fmtInt(i) }
