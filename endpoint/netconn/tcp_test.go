package netconn_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/tcp"
)

// A transfer both ways, byte-exact, with odd read sizes, in both families.
func TestTCPTransfer(t *testing.T) {
	inBothFamilies(t, func(t *testing.T, fam int, a, b *stack.Stack) {
		c, s := connPair(t, a, b, fam)
		if got, want := c.RemoteAddr(), s.LocalAddr(); got != want {
			t.Errorf("client RemoteAddr %v, server LocalAddr %v", got, want)
		}
		if got, want := s.RemoteAddr(), c.LocalAddr(); got != want {
			t.Errorf("server RemoteAddr %v, client LocalAddr %v", got, want)
		}
		const n = 3 << 20
		up, down := pattern(n, 1), pattern(n, 2)
		var wg sync.WaitGroup
		var gotUp, gotDown []byte
		var errUp, errDown error
		wg.Add(4)
		go func() { defer wg.Done(); _, err := c.Write(up); c.CloseWrite(); _ = err }()
		go func() { defer wg.Done(); _, err := s.Write(down); s.CloseWrite(); _ = err }()
		go func() { defer wg.Done(); gotUp, errUp = readAll(s, 1000) }()
		go func() { defer wg.Done(); gotDown, errDown = readAll(c, 7000) }()
		wg.Wait()
		if errUp != nil || errDown != nil {
			t.Fatal(errUp, errDown)
		}
		if !bytes.Equal(gotUp, up) || !bytes.Equal(gotDown, down) {
			t.Fatalf("transfer corrupted: %d/%d bytes up, %d/%d down", len(gotUp), n, len(gotDown), n)
		}
	})
}

// readAll reads until EOF in chunks of size.
func readAll(c *netconn.TCPConn, size int) ([]byte, error) {
	var out []byte
	buf := make([]byte, size)
	for {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// Zero-copy receive and WriteRef: the data arrives intact and every pbuf goes back.
func TestTCPRecvWriteRef(t *testing.T) {
	a, b := newPair(t, tunnel())
	c, s := connPair(t, a, b, 0)
	const n = 2 << 20
	data := pattern(n, 3)
	done := make(chan error, 1)
	go func() {
		for off := 0; off < n; off += 100_000 {
			k, err := c.WriteRef(data[off:min(off+100_000, n)])
			if err != nil {
				done <- err
				return
			}
			if k != min(100_000, n-off) {
				done <- errors.New("short WriteRef")
				return
			}
		}
		done <- c.CloseWrite()
	}()
	h := sha256.New()
	total := 0
	for {
		buf, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range buf.Bytes() {
			h.Write(v)
		}
		total += buf.Len()
		buf.Release()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	if total != n || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("received %d bytes, want %d (sha mismatch %v)", total, n, !bytes.Equal(h.Sum(nil), want[:]))
	}
}

// Read and Write deadlines expire with os.ErrDeadlineExceeded; a past deadline fails at
// once, and clearing it lets the call go on.
func TestTCPDeadlines(t *testing.T) {
	a, b := newPair(t, tunnel())
	c, s := connPair(t, a, b, 0)
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read: %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 2*time.Second {
		t.Errorf("deadline took %v", d)
	}
	c.SetReadDeadline(time.Now().Add(-time.Second))
	s.Write([]byte("x"))
	time.Sleep(20 * time.Millisecond)
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read with past deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	if n, err := c.Read(make([]byte, 10)); n != 1 || err != nil {
		t.Fatalf("Read after clearing: %d %v", n, err)
	}
	// A reader blocked without deadline is released by setting one.
	errc := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 10)); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	c.SetReadDeadline(time.Now())
	if err := waitErr(t, errc, "Read released by a deadline"); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("blocked Read: %v", err)
	}
	// Writes: fill the peer's window (s does not read) until the deadline stops us.
	c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 64<<10)
	total := 0
	var err error
	for err == nil {
		var n int
		n, err = c.Write(buf)
		total += n
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write: %v after %d bytes", err, total)
	}
	// Accept deadline.
	l := listenTCP(t, b, netip.AddrPortFrom(addrB[0], 0), nil)
	l.SetDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := l.Accept(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Accept: %v", err)
	}
}

// Close from another goroutine unblocks Read, Write and Accept with net.ErrClosed.
func TestTCPCloseUnblocks(t *testing.T) {
	a, b := newPair(t, tunnel())
	c, _ := connPair(t, a, b, 1)
	l, err := netconn.ListenTCP(b, netip.AddrPortFrom(addrB[1], 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 3)
	go func() { _, err := c.Read(make([]byte, 10)); errc <- err }()
	go func() {
		buf := make([]byte, 1<<20)
		for {
			if _, err := c.Write(buf); err != nil {
				errc <- err
				return
			}
		}
	}()
	go func() { _, err := l.Accept(); errc <- err }()
	time.Sleep(100 * time.Millisecond)
	c.Close()
	l.Close()
	wantClosed(t, errc, 3, "a blocked call released by Close")
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

// Half-close: after CloseWrite the peer reads EOF and can still answer.
func TestTCPHalfClose(t *testing.T) {
	a, b := newPair(t, tunnel())
	c, s := connPair(t, a, b, 0)
	c.Write([]byte("request"))
	c.CloseWrite()
	got, err := readAll(s, 100)
	if err != nil || string(got) != "request" {
		t.Fatalf("server read %q %v", got, err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, errs.Clsd) {
		t.Errorf("Write after CloseWrite: %v", err)
	}
	s.Write([]byte("response"))
	s.Close()
	got, err = readAll(c, 100)
	if err != nil || string(got) != "response" {
		t.Fatalf("client read %q %v", got, err)
	}
}

// A reset reaches the peer's Read, Write and Err.
func TestTCPReset(t *testing.T) {
	a, b := newPair(t, tunnel())
	c, s := connPair(t, a, b, 0)
	s.SetLinger(0)
	s.Close()
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, errs.Rst) {
		t.Fatalf("Read after RST: %v", err)
	}
	if err := c.Err(); !errors.Is(err, errs.Rst) {
		t.Errorf("Err: %v", err)
	}
	if err := c.Err(); err != nil {
		t.Errorf("Err not cleared: %v", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, errs.Rst) {
		t.Errorf("Write after RST: %v", err)
	}
}

// Connecting to a port nobody listens on fails with errs.Refused; a cancelled context
// aborts a connect that gets no answer.
func TestTCPDialErrors(t *testing.T) {
	a, b := newPair(t, tunnel())
	_ = b
	_, err := netconn.DialTCP(ctxFor(t, 5*time.Second), a, netip.AddrPort{}, netip.AddrPortFrom(addrB[0], 9), nil)
	if !errors.Is(err, errs.Refused) {
		t.Fatalf("dial to a closed port: %v", err)
	}
	// Nobody at 198.18.0.99: the SYN goes unanswered (the pipe is IP, no ARP).
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = netconn.DialTCP(ctx, a, netip.AddrPort{}, netip.MustParseAddrPort("198.18.0.99:80"), nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial with a context deadline: %v", err)
	}
	ctx, cancel = context.WithCancel(t.Context())
	go func() { time.Sleep(30 * time.Millisecond); cancel() }()
	_, err = netconn.DialTCP(ctx, a, netip.AddrPort{}, netip.MustParseAddrPort("198.18.0.99:80"), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("dial cancelled: %v", err)
	}
}

// Closing the stack releases every blocked call with net.ErrClosed and leaks nothing.
func TestTCPStackClose(t *testing.T) {
	a, b := newPair(t, tunnel())
	c, _ := connPair(t, a, b, 0)
	l := listenTCP(t, a, netip.AddrPortFrom(addrA[0], 0), nil)
	errc := make(chan error, 2)
	go func() { _, err := c.Read(make([]byte, 10)); errc <- err }()
	go func() { _, err := l.Accept(); errc <- err }()
	time.Sleep(50 * time.Millisecond)
	a.Close()
	wantClosed(t, errc, 2, "a blocked call released by the stack's Close")
	if _, err := netconn.DialTCP(t.Context(), a, netip.AddrPort{}, netip.AddrPortFrom(addrB[0], 9), nil); !errors.Is(err, errs.Clsd) {
		t.Errorf("dial on a closed stack: %v", err)
	}
}

// The accept mailbox is bounded: beyond AcceptMboxSize connections are reset and counted.
func TestTCPAcceptMbox(t *testing.T) {
	o := tunnel()
	o.AcceptMboxSize = 2
	a, b := newPair(t, o)
	l := listenTCP(t, b, netip.AddrPortFrom(addrB[0], 0), nil)
	var conns []*netconn.TCPConn
	for range 4 {
		c, err := netconn.DialTCP(ctxFor(t, 5*time.Second), a, netip.AddrPort{}, l.Addr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		defer c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.Overflows() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if l.Pending() != 2 || l.Overflows() != 2 {
		t.Fatalf("pending %d, overflows %d; want 2 and 2", l.Pending(), l.Overflows())
	}
	reset := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); errors.Is(err, errs.Rst) {
			reset++
		}
	}
	if reset != 2 {
		t.Errorf("%d clients were reset, want 2", reset)
	}
}

// MempNumNetconn bounds the connections of a stack.
func TestNetconnLimit(t *testing.T) {
	o := tunnel()
	o.MempNumNetconn = 2
	a, _ := newPair(t, o)
	l1, err := netconn.ListenTCP(a, netip.AddrPortFrom(addrA[0], 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := netconn.ListenTCP(a, netip.AddrPortFrom(addrA[0], 2), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := netconn.ListenTCP(a, netip.AddrPortFrom(addrA[0], 3), nil); !errors.Is(err, errs.Mem) {
		t.Fatalf("third netconn: %v, want errs.Mem", err)
	}
	l1.Close()
	l3, err := netconn.ListenTCP(a, netip.AddrPortFrom(addrA[0], 3), nil)
	if err != nil {
		t.Fatalf("after a Close: %v", err)
	}
	l2.Close()
	l3.Close()
}

// Linger > 0 waits for the FIN's acknowledgment.
func TestTCPLinger(t *testing.T) {
	a, b := newPair(t, tunnel())
	c, s := connPair(t, a, b, 0)
	c.Write(pattern(100_000, 4))
	c.SetLinger(5)
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	got, err := readAll(s, 4096)
	if err != nil || len(got) != 100_000 {
		t.Fatalf("read %d %v", len(got), err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("lingering Close did not return")
	}
}

// The embedded preset: a window of four segments (Recved after every segment's worth) and
// a two-slot mailbox (later chains are concatenated), byte-exact.
func TestTCPEmbedded(t *testing.T) {
	o := opt.Embedded()
	o.TCPRecvMboxSize = 2 // beyond two queued chains, they are concatenated
	a, b := newPair(t, o)
	c, s := connPair(t, a, b, 0)
	const n = 100_000
	data := pattern(n, 11)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		c.CloseWrite()
		errc <- err
	}()
	// Let the mailbox fill before reading, so chains get concatenated.
	time.Sleep(50 * time.Millisecond)
	if s.Buffered() == 0 {
		t.Error("nothing buffered after 50ms")
	}
	got, err := readAll(s, 333)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes (%v), want %d exact", len(got), err, n)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// CloseRead drops what is queued and what comes later without resetting; options reach
// the PCB.
func TestTCPCloseReadOptions(t *testing.T) {
	a, b := newPair(t, tunnel())
	c, s := connPair(t, a, b, 0)
	ka := netconn.KeepAlive{On: true, Idle: time.Second, Intvl: 2 * time.Second, Cnt: 3}
	if err := c.SetKeepAlive(ka); err != nil {
		t.Fatal(err)
	}
	if got := c.Sockopts().KeepAlive; got != ka {
		t.Errorf("KeepAlive %+v", got)
	}
	if err := c.SetKeepAlive(netconn.KeepAlive{On: true}); !errors.Is(err, errs.Val) {
		t.Errorf("SetKeepAlive without parameters: %v", err)
	}
	if !c.Sockopts().NoDelay {
		t.Error("NoDelay off by default")
	}
	c.SetNoDelay(false)
	if c.Sockopts().NoDelay {
		t.Error("SetNoDelay(false) ignored")
	}
	if i := c.Info(); i.State != tcp.StateEstablished {
		t.Errorf("Info state %v", i.State)
	}
	s.Write([]byte("dropped"))
	time.Sleep(20 * time.Millisecond)
	if c.Buffered() != 7 {
		t.Errorf("Buffered %d, want 7", c.Buffered())
	}
	c.CloseRead()
	if n, err := c.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("Read after CloseRead: %d %v", n, err)
	}
	s.Write([]byte("more"))
	time.Sleep(20 * time.Millisecond)
	// The connection still works the other way.
	c.Write([]byte("hello"))
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 10)
	if n, err := s.Read(buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("server read %q %v", buf[:n], err)
	}
	if err := s.Err(); err != nil {
		t.Errorf("server got an error: %v", err)
	}
}
