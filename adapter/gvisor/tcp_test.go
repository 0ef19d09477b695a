package gvisor_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/internal/tcpapp"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/impair"
	"github.com/wispstack/wisp/stack/stacktest"
)

const patternSeed = 0x5eed_9_1510

// transferBytes is the size of each bulk transfer: 24 MiB on a clean wire and 2 MiB on a
// lossy one (where both gVisor and wisp move about 20-30 Mbit/s at a 4 ms RTT, so 32 MiB take
// 12 s per transfer); 4 MiB and 1 MiB with -short or the race detector. WISP_GVISOR_MB sets
// both (WISP_GVISOR_MB=32 for the full run with loss).
func transferBytes(lossy bool) int64 {
	if s := os.Getenv("WISP_GVISOR_MB"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return int64(n) << 20
		}
	}
	small := testing.Short() || raceEnabled
	switch {
	case lossy && small:
		return 1 << 20
	case lossy:
		return 2 << 20
	case small:
		return 4 << 20
	}
	return 24 << 20
}

// lossy is, in each direction, seeded: 1% random loss, 1% of frames held back 3 ms (so
// that a few dozen later frames overtake them) and 2 ms of delay (a 4 ms RTT).
func lossy(seed uint64) *impair.Config {
	dir := func(s uint64) impair.Dir {
		return impair.Dir{Seed: s, Loss: 0.01, Reorder: 0.01, ReorderDelay: 3 * time.Millisecond,
			Delay: 2 * time.Millisecond}
	}
	return &impair.Config{TX: dir(seed), RX: dir(seed + 1)}
}

// gvDial connects from the gVisor stack and returns the connection and its endpoint (for
// Abort).
func gvDial(ctx context.Context, s *gstack.Stack, raddr netip.AddrPort) (*gonet.TCPConn, tcpip.Endpoint, error) {
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(tcp.ProtocolNumber, gvProto(raddr.Addr()), &wq)
	if terr != nil {
		return nil, nil, fmt.Errorf("endpoint: %v", terr)
	}
	we, ch := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&we)
	defer wq.EventUnregister(&we)
	terr = ep.Connect(gvAddr(raddr))
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		select {
		case <-ch:
			terr = ep.LastError()
		case <-ctx.Done():
			ep.Close()
			return nil, nil, ctx.Err()
		}
	}
	if terr != nil {
		ep.Close()
		return nil, nil, fmt.Errorf("connect %v: %v", raddr, terr)
	}
	return gonet.NewTCPConn(&wq, ep), ep, nil
}

// gvListen listens on the gVisor stack.
func gvListen(t *testing.T, s *gstack.Stack, addr netip.AddrPort) *gonet.TCPListener {
	t.Helper()
	l, err := gonet.ListenTCP(s, gvAddr(addr), gvProto(addr.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// dialWisp serves on wisp at dst (tcpapp.Serve: a sink when size is 0, else a source of
// size bytes of the pattern) and connects to it from gVisor; it returns the server, the
// connection and its endpoint (for Abort). Both close after the evidence (ev.Close).
func (nt *testNet) dialWisp(ctx context.Context, t *testing.T, ev *stacktest.Evidence, dst netip.Addr, size int64) (*tcpapp.Server, *gonet.TCPConn, tcpip.Endpoint) {
	t.Helper()
	srv, err := tcpapp.Serve(nt.ws, netip.AddrPortFrom(dst, 0), size, patternSeed)
	if err != nil {
		t.Fatal(err)
	}
	ev.Close(srv)
	c, ep, err := gvDial(ctx, nt.gs, srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	ev.Close(c)
	return srv, c, ep
}

// result is what one side of a transfer saw.
type result struct {
	n   int64
	sum [32]byte
	err error
}

func (r result) check(t *testing.T, who string, n int64) {
	t.Helper()
	if r.err != nil {
		t.Errorf("%s: %v", who, r.err)
		return
	}
	if r.n != n {
		t.Errorf("%s: %d bytes, want %d", who, r.n, n)
		return
	}
	if want := tcpapp.PatternSum(n, patternSeed); r.sum != want {
		t.Errorf("%s: sha256 %x, want %x", who, r.sum[:8], want[:8])
	}
}

// testTimeout bounds each transfer test (its context, and the deadline of every read and
// write): far more than a transfer takes under -race on a loaded machine, far less than the
// suite's timeout, so a stall fails the test with its evidence.
const testTimeout = 2 * time.Minute

// deadlineOf is ctx's deadline (every test context here has one).
func deadlineOf(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(testTimeout)
}

// readAll reads c to EOF into a SHA-256; a read still waiting at deadline fails.
func readAll(c net.Conn, deadline time.Time) result {
	var r result
	if r.err = c.SetReadDeadline(deadline); r.err != nil {
		return r
	}
	h := sha256.New()
	r.n, r.err = io.Copy(h, c)
	copy(r.sum[:], h.Sum(nil))
	return r
}

// writePattern writes n bytes of the pattern to c and half-closes it; a write still
// waiting at deadline fails.
func writePattern(c *gonet.TCPConn, n int64, deadline time.Time) error {
	if err := c.SetWriteDeadline(deadline); err != nil {
		return err
	}
	if w, err := io.Copy(c, io.LimitReader(tcpapp.NewPattern(patternSeed), n)); err != nil {
		return fmt.Errorf("after %d of %d bytes: %w", w, n, err)
	}
	return c.CloseWrite()
}

// waitTransfer waits for a wisp transfer, logging its state if it stalls.
func waitTransfer(ctx context.Context, t *testing.T, tr *tcpapp.Transfer) result {
	t.Helper()
	n, sum, err := tr.Wait(ctx)
	if err != nil && ctx.Err() != nil {
		t.Logf("%v stalled: %s", tr, tr.State())
	}
	return result{n, sum, err}
}

// The four bulk transfers: who connects and which way the data goes.

// gVisor connects and uploads to a wisp sink.
func gvUpload(ctx context.Context, t *testing.T, nt *testNet, dst netip.Addr, size int64) {
	ev := nt.evidence(t)
	srv, c, _ := nt.dialWisp(ctx, t, ev, dst, 0)
	if err := writePattern(c, size, deadlineOf(ctx)); err != nil {
		t.Fatalf("gVisor write: %v", err)
	}
	tr, err := srv.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTransfer(ctx, t, tr).check(t, "wisp sink", size)
	if r := readAll(c, deadlineOf(ctx)); r.err != nil || r.n != 0 { // wisp's FIN
		t.Errorf("gVisor after upload: %d bytes, %v", r.n, r.err)
	}
}

// gVisor connects and downloads from a wisp source.
func gvDownload(ctx context.Context, t *testing.T, nt *testNet, dst netip.Addr, size int64) {
	ev := nt.evidence(t)
	srv, c, _ := nt.dialWisp(ctx, t, ev, dst, size)
	r := readAll(c, deadlineOf(ctx))
	if r.err != nil {
		t.Fatalf("gVisor download: after %d bytes: %v", r.n, r.err)
	}
	c.Close() // the FIN the wisp source waits for
	r.check(t, "gVisor download", size)
	tr, err := srv.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := waitTransfer(ctx, t, tr); r.err != nil {
		t.Errorf("wisp source: %v", r.err)
	}
}

// wisp connects and uploads to a gVisor sink.
func wispUpload(ctx context.Context, t *testing.T, nt *testNet, dst netip.Addr, size int64) {
	ev := nt.evidence(t)
	l := gvListen(t, nt.gs, netip.AddrPortFrom(dst, 5001))
	defer l.Close()
	got := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		r := readAll(c, deadlineOf(ctx))
		if r.err == nil {
			c.Close() // the FIN the wisp sender waits for
		} else {
			ev.Close(c)
		}
		got <- r
	}()
	tr := tcpapp.Send(nt.ws, netip.AddrPortFrom(dst, 5001), size, patternSeed)
	if r := waitTransfer(ctx, t, tr); r.err != nil {
		t.Errorf("wisp upload: %v", r.err)
	}
	select {
	case r := <-got:
		r.check(t, "gVisor sink", size)
	case <-ctx.Done():
		t.Error("gVisor sink did not finish")
	}
}

// wisp connects and downloads from a gVisor source.
func wispDownload(ctx context.Context, t *testing.T, nt *testNet, dst netip.Addr, size int64) {
	l := gvListen(t, nt.gs, netip.AddrPortFrom(dst, 5002))
	defer l.Close()
	ev := nt.evidence(t)
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		ev.Close(c)
		if err := writePattern(c.(*gonet.TCPConn), size, deadlineOf(ctx)); err != nil {
			done <- fmt.Errorf("write: %w", err)
			return
		}
		if r := readAll(c, deadlineOf(ctx)); r.err != nil { // until wisp's FIN
			done <- fmt.Errorf("read: %w", r.err)
			return
		}
		done <- c.Close()
	}()
	tr := tcpapp.Recv(nt.ws, netip.AddrPortFrom(dst, 5002))
	waitTransfer(ctx, t, tr).check(t, "wisp download", size)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("gVisor source: %v", err)
		}
	case <-ctx.Done():
		t.Error("gVisor source did not finish")
	}
}

var bulk = []struct {
	name string
	fn   func(context.Context, *testing.T, *testNet, netip.Addr, int64)
	wisp bool // the destination is the wisp stack
}{
	{"gvisor-dials/upload", gvUpload, true},
	{"gvisor-dials/download", gvDownload, true},
	{"wisp-dials/upload", wispUpload, false},
	{"wisp-dials/download", wispDownload, false},
}

// runBulk runs the four bulk transfers of size bytes, IPv4 and IPv6, each a subtest with
// its deadline, and logs each one's throughput.
func runBulk(t *testing.T, nt *testNet, size int64) {
	for _, v6 := range []bool{false, true} {
		for _, b := range bulk {
			dst := map[bool]netip.Prefix{false: gvV4, true: gvV6}[v6].Addr()
			if b.wisp {
				dst = map[bool]netip.Prefix{false: wispV4, true: wispV6}[v6].Addr()
			}
			fam := map[bool]string{false: "v4", true: "v6"}[v6]
			t.Run(fam+"/"+b.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				defer cancel()
				start := time.Now()
				b.fn(ctx, t, nt, dst, size)
				d := time.Since(start)
				t.Logf("%d KiB in %v: %.0f Mbit/s", size>>10, d.Round(time.Millisecond), float64(size)*8/d.Seconds()/1e6)
			})
		}
	}
}

// TestTCP moves transferBytes(lossy) byte-exact (SHA-256) in each of the four directions, IPv4 and
// IPv6, over each wire, with and without loss, and logs the throughput.
func TestTCP(t *testing.T) {
	configs := []netConfig{
		{medium: link.MediumIP},
		{medium: link.MediumEthernet},
		{medium: link.MediumEthernet, fd: true},
		{medium: link.MediumIP, impair: lossy(1)},
		{medium: link.MediumEthernet, impair: lossy(3)},
	}
	for _, c := range configs {
		name := c.String()
		if c.impair != nil {
			name += "/lossy"
		}
		t.Run(name, func(t *testing.T) {
			nt := newNet(t, c)
			runBulk(t, nt, transferBytes(c.impair != nil))
			if nt.imp != nil {
				tx, rx := nt.imp.Stats()
				t.Logf("impairment: tx %+v rx %+v", tx, rx)
			}
			st := nt.ws.Stats()
			t.Logf("wisp TCP: %+v", st.TCP)
			// None of these wires offers offloads: nothing large may have crossed.
			if o := st.Offload; o.GSOOut+o.TSOOut+o.GSOSoft+o.CsumCompleted+o.RxGSO != 0 {
				t.Errorf("offload counters moved on a wire without offloads: %+v", o)
			}
			if nt.wl != nil {
				if l := nt.wl.Stats(); l.RxGSO+l.TxGSO+l.TxCsum != 0 {
					t.Errorf("Link offload counters moved without host GSO: %+v", l)
				}
			}
		})
	}
}

// TestTCPManyConnections runs 50 short connections at once each way, on a clean and on a
// lossy wire: gVisor clients against a wisp echo server, wisp clients against a gVisor sink.
func TestTCPManyConnections(t *testing.T) {
	for _, c := range []netConfig{{medium: link.MediumEthernet}, {medium: link.MediumIP, impair: lossy(5)}} {
		name := c.String()
		if c.impair != nil {
			name += "/lossy"
		}
		t.Run(name, func(t *testing.T) { manyConnections(t, c) })
	}
}

func manyConnections(t *testing.T, c netConfig) {
	const conns, size = 50, 32 << 10
	nt := newNet(t, c)

	t.Run("gvisor-to-wisp-echo", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		dl := deadlineOf(ctx)
		ev := nt.evidence(t)
		for _, a := range []netip.Addr{wispV4.Addr(), wispV6.Addr()} {
			l, err := tcpapp.Echo(nt.ws, netip.AddrPortFrom(a, 7))
			if err != nil {
				t.Fatal(err)
			}
			defer tcpapp.CloseListener(nt.ws, l)
		}
		var wg sync.WaitGroup
		errc := make(chan error, 2*conns)
		for i := range conns {
			dst := wispV4.Addr()
			if i%2 == 1 {
				dst = wispV6.Addr()
			}
			wg.Go(func() {
				c, _, err := gvDial(ctx, nt.gs, netip.AddrPortFrom(dst, 7))
				if err != nil {
					errc <- fmt.Errorf("conn %d: %w", i, err)
					return
				}
				ev.Close(c)
				werr := make(chan error, 1)
				go func() { werr <- writePattern(c, size, dl) }()
				r := readAll(c, dl)
				if err := <-werr; err != nil {
					errc <- fmt.Errorf("conn %d %v: write: %w", i, c.LocalAddr(), err)
				}
				if ne, ok := r.err.(net.Error); ok && ne.Timeout() {
					if why, ok := nt.gvSenderStalled(c); ok {
						t.Logf("conn %d %v: %s", i, c.LocalAddr(), why)
						return
					}
				}
				if r.err != nil || r.n != size || r.sum != tcpapp.PatternSum(size, patternSeed) {
					errc <- fmt.Errorf("conn %d %v: echo of %d bytes: got %d, %v", i, c.LocalAddr(), size, r.n, r.err)
				}
			})
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
	})

	t.Run("wisp-to-gvisor-sink", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		dl := deadlineOf(ctx)
		ev := nt.evidence(t)
		l := gvListen(t, nt.gs, netip.AddrPortFrom(gvV6.Addr(), 9))
		defer l.Close()
		defer context.AfterFunc(ctx, l.Shutdown)() // an Accept still waiting at the deadline fails
		var wg sync.WaitGroup
		got := make(chan result, conns)
		wg.Go(func() {
			var inner sync.WaitGroup
			for range conns {
				c, err := l.Accept()
				if err != nil {
					got <- result{err: err}
					break
				}
				inner.Go(func() {
					r := readAll(c, dl)
					if r.err == nil {
						c.Close() // the FIN the wisp sender waits for
					} else {
						r.err = fmt.Errorf("%v: %w", c.RemoteAddr(), r.err)
						ev.Close(c)
					}
					got <- r
				})
			}
			inner.Wait()
		})
		trs := make([]*tcpapp.Transfer, conns)
		for i := range trs {
			trs[i] = tcpapp.Send(nt.ws, netip.AddrPortFrom(gvV6.Addr(), 9), size, patternSeed)
		}
		for i, tr := range trs {
			if r := waitTransfer(ctx, t, tr); r.err != nil {
				t.Errorf("wisp conn %d: %v", i, r.err)
			}
		}
		for range conns {
			select {
			case r := <-got:
				r.check(t, "gVisor sink", size)
			case <-ctx.Done():
				t.Fatal("gVisor sink did not finish")
			}
		}
		wg.Wait()
	})
}

// TestTCPReset aborts a connection from each side: the other side sees the reset.
func TestTCPReset(t *testing.T) {
	nt := newNet(t, netConfig{medium: link.MediumIP})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("gvisor-aborts", func(t *testing.T) {
		ev := nt.evidence(t)
		srv, c, ep := nt.dialWisp(ctx, t, ev, wispV4.Addr(), 0)
		c.SetDeadline(deadlineOf(ctx))
		if _, err := io.Copy(c, io.LimitReader(tcpapp.NewPattern(patternSeed), 100<<10)); err != nil {
			t.Fatal(err)
		}
		tr, err := srv.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := tr.Progress(); r < 100<<10; _, r = tr.Progress() { // everything arrived
			if ctx.Err() != nil {
				t.Fatalf("wisp received %d of %d bytes", r, 100<<10)
			}
			time.Sleep(time.Millisecond)
		}
		ep.Abort() // RST
		if _, _, err := tr.Wait(ctx); !errors.Is(err, errs.Rst) {
			t.Errorf("wisp after gVisor's abort: %v, want ERR_RST", err)
		}
	})

	t.Run("wisp-aborts", func(t *testing.T) {
		ev := nt.evidence(t)
		srv, c, _ := nt.dialWisp(ctx, t, ev, wispV6.Addr(), 0)
		c.SetWriteDeadline(deadlineOf(ctx))
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		tr, err := srv.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tr.Abort()
		if _, _, err := tr.Wait(ctx); !errors.Is(err, errs.Abrt) {
			t.Errorf("wisp Abort: %v, want ERR_ABRT", err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Read(make([]byte, 10))
		// gonet wraps tcpip errors as errors.New(err.String()), not as syscall.Errno:
		// compare the text of ECONNRESET's tcpip error.
		reset := (&tcpip.ErrConnectionReset{}).String()
		var oe interface{ Unwrap() error }
		if err == nil || !errors.As(err, &oe) || oe.Unwrap() == nil || oe.Unwrap().Error() != reset {
			t.Errorf("gonet read after wisp's abort: %v, want %q", err, reset)
		}
	})

	t.Run("refused", func(t *testing.T) {
		// Nothing listens: wisp answers gVisor's SYN with RST, gVisor answers wisp's.
		if _, _, err := gvDial(ctx, nt.gs, netip.AddrPortFrom(wispV4.Addr(), 1)); err == nil ||
			!bytes.Contains([]byte(err.Error()), []byte((&tcpip.ErrConnectionRefused{}).String())) {
			t.Errorf("gVisor dial to a closed wisp port: %v", err)
		}
		tr := tcpapp.Recv(nt.ws, netip.AddrPortFrom(gvV4.Addr(), 1))
		if _, _, err := tr.Wait(ctx); !errors.Is(err, errs.Refused) {
			t.Errorf("wisp dial to a closed gVisor port: %v, want ERR_REFUSED", err)
		}
	})
}
