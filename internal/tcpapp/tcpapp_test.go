package tcpapp_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/internal/tcpapp"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/impair"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
)

var (
	addrA = stacktest.AddrA
	addrB = stacktest.AddrB
	fams  = []string{"IPv4", "IPv6"}
)

// newPair joins two stacks by an asynchronous IP pipe (no ARP or DAD to wait for); both are
// closed and checked for leaks when the test ends (stacktest.NewPair).
func newPair(t *testing.T, o opt.Options) (a, b *stack.Stack) {
	return newImpairedPair(t, o, nil)
}

// newImpairedPair is newPair with a's end of the pipe wrapped by impair (if cfg is set).
// Transfers here end by themselves or with the stacks: nothing to close before the evidence.
func newImpairedPair(t *testing.T, o opt.Options, cfg *impair.Config) (a, b *stack.Stack) {
	t.Helper()
	c := stacktest.PairConfig{Options: o}
	if cfg != nil {
		c.WrapA = func(_ *stack.Stack, l link.Endpoint) link.Endpoint { return impair.New(l, clock.Real, *cfg) }
	}
	p := stacktest.NewPair(t, c)
	return p.A, p.B
}

// echoOn starts an echo server on addr of s; it closes when the test ends.
func echoOn(t *testing.T, s *stack.Stack, addr netip.AddrPort) {
	t.Helper()
	l, err := tcpapp.Echo(s, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcpapp.CloseListener(s, l) })
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// wait waits for tr and fails the test unless it ends cleanly.
func wait(t *testing.T, ctx context.Context, what string, tr *tcpapp.Transfer) (int64, [32]byte) {
	t.Helper()
	n, sum, err := tr.Wait(ctx)
	if err != nil {
		t.Fatalf("%s: %v (%s)", what, err, tr.State())
	}
	return n, sum
}

// waitReceived waits until tr has received more than n bytes.
func waitReceived(t *testing.T, ctx context.Context, tr *tcpapp.Transfer, n int64) {
	t.Helper()
	for {
		_, r := tr.Progress()
		if r > n {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%v: received %d bytes, waiting for more than %d: %v", tr, r, n, ctx.Err())
		}
		time.Sleep(time.Millisecond)
	}
}

func want(t *testing.T, what string, n int64, sum [32]byte, wantN int64, seed uint64) {
	t.Helper()
	if n != wantN || sum != tcpapp.PatternSum(wantN, seed) {
		t.Fatalf("%s: received %d bytes (sha256 %x), want %d of seed %d", what, n, sum[:4], wantN, seed)
	}
}

func TestEcho(t *testing.T) {
	for i, fam := range fams {
		t.Run(fam, func(t *testing.T) {
			a, b := newPair(t, opt.Tunnel())
			l, err := tcpapp.Echo(b, netip.AddrPortFrom(addrB[i], 7))
			if err != nil {
				t.Fatal(err)
			}
			ctx := ctxFor(t, 30*time.Second)
			const n = 8 << 20
			start := time.Now()
			tr := tcpapp.Send(a, netip.AddrPortFrom(addrB[i], 7), n, 1)
			got, sum := wait(t, ctx, "echo", tr)
			t.Logf("%d MiB echoed in %v", n>>20, time.Since(start))
			want(t, "echo", got, sum, n, 1)
			// State, for a failure message: everything queued and received, the PCB gone.
			if st, w := tr.State(), fmt.Sprintf("queued %d, received %d; open false", n, n); !strings.HasPrefix(st, w) {
				t.Errorf("State after the end: %q, want %q...", st, w)
			}
			if err := tcpapp.CloseListener(b, l); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSinkSourceDiscard(t *testing.T) {
	for i, fam := range fams {
		t.Run(fam, func(t *testing.T) {
			a, b := newPair(t, opt.Tunnel())
			ctx := ctxFor(t, 30*time.Second)
			const n = 4 << 20

			sink, err := tcpapp.Sink(b, netip.AddrPortFrom(addrB[i], 0))
			if err != nil {
				t.Fatal(err)
			}
			if sink.Addr().Port() == 0 {
				t.Fatal("Sink on port 0 did not get a port")
			}
			up := tcpapp.Send(a, sink.Addr(), n, 2)
			srv, err := sink.Accept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got, sum := wait(t, ctx, "sink", srv)
			want(t, "sink", got, sum, n, 2)
			if got, _ := wait(t, ctx, "upload", up); got != 0 {
				t.Fatalf("the sink sent %d bytes", got)
			}
			sink.Close()

			src, err := tcpapp.Source(b, netip.AddrPortFrom(addrB[i], 19), n, 3)
			if err != nil {
				t.Fatal(err)
			}
			got, sum = wait(t, ctx, "download", tcpapp.Recv(a, src.Addr()))
			want(t, "download", got, sum, n, 3)
			srvT, err := src.Accept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wait(t, ctx, "source", srvT)
			src.Close()

			l, err := tcpapp.Discard(b, netip.AddrPortFrom(addrB[i], 9))
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := wait(t, ctx, "discard", tcpapp.Send(a, netip.AddrPortFrom(addrB[i], 9), n, 4)); got != 0 {
				t.Fatalf("discard sent %d bytes", got)
			}
			tcpapp.CloseListener(b, l)
		})
	}
}

// Both directions at once on one connection.
func TestFullDuplex(t *testing.T) {
	a, b := newPair(t, opt.Tunnel())
	ctx := ctxFor(t, 30*time.Second)
	srv, err := tcpapp.Serve(b, netip.AddrPortFrom(addrB[1], 5000), 6<<20, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cl := tcpapp.Send(a, srv.Addr(), 5<<20, 6)
	st, err := srv.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, sum := wait(t, ctx, "server", st)
	want(t, "server", got, sum, 5<<20, 6)
	got, sum = wait(t, ctx, "client", cl)
	want(t, "client", got, sum, 6<<20, 5)
}

// Many connections at once through one echo listener.
func TestEchoConcurrent(t *testing.T) {
	a, b := newPair(t, opt.Tunnel())
	ctx := ctxFor(t, 30*time.Second)
	echoOn(t, b, netip.AddrPortFrom(addrB[0], 7))
	var trs []*tcpapp.Transfer
	for i := range 32 {
		trs = append(trs, tcpapp.Send(a, netip.AddrPortFrom(addrB[0], 7), int64(i+1)*10007, uint64(i)))
	}
	for i, tr := range trs {
		got, sum := wait(t, ctx, tr.String(), tr)
		want(t, tr.String(), got, sum, int64(i+1)*10007, uint64(i))
	}
}

// Echo and the transfers stay byte-exact over a lossy, duplicating, reordering link, in both
// directions at once.
func TestEchoImpaired(t *testing.T) {
	dir := func(seed uint64) impair.Dir {
		return impair.Dir{Seed: seed, Loss: 0.02, Duplicate: 0.01, Reorder: 0.02, Delay: time.Millisecond}
	}
	a, b := newImpairedPair(t, opt.Tunnel(), &impair.Config{TX: dir(1), RX: dir(2)})
	ctx := ctxFor(t, 30*time.Second)
	echoOn(t, b, netip.AddrPortFrom(addrB[1], 7))
	const n = 2 << 20
	got, sum := wait(t, ctx, "echo", tcpapp.Send(a, netip.AddrPortFrom(addrB[1], 7), n, 10))
	want(t, "echo", got, sum, n, 10)
	if x := b.Stats().TCPExt; x.Retransmits == 0 || x.OOOQueued == 0 {
		t.Errorf("the echo side neither retransmitted nor reordered: %+v", x)
	}
}

// Many echo connections share too few TCP_SEG records (and, with heap set, too small a
// heap): writes fail with ERR_MEM, and Echo and Send retry (on SentFunc or their poll) until
// every byte is back.
func TestSharedSegmentsExhausted(t *testing.T) {
	testSharedMemoryExhausted(t, false)
}

func TestSharedHeapExhausted(t *testing.T) {
	testSharedMemoryExhausted(t, true)
}

func testSharedMemoryExhausted(t *testing.T, heap bool) {
	o := opt.Tunnel()
	o.TCPWnd, o.TCPMaxWnd, o.TCPSndBuf = 64<<10, 64<<10, 64<<10
	o.TCPMSS = 1460
	o.TCPSndQueueLen = 2*o.TCPSndBuf/o.TCPMSS + 1
	o.MempNumTCPSeg = o.TCPSndQueueLen + 8
	if heap {
		o.MemSize = 256 << 10 // less than the 8 send buffers
	}
	a, b := newPair(t, o)
	ctx := ctxFor(t, 20*time.Second)
	echoOn(t, b, netip.AddrPortFrom(addrB[0], 7))
	const n = 1 << 20
	var trs []*tcpapp.Transfer
	for i := range 8 {
		trs = append(trs, tcpapp.Send(a, netip.AddrPortFrom(addrB[0], 7), n, uint64(100+i)))
	}
	for i, tr := range trs {
		got, sum, err := tr.Wait(ctx)
		if err != nil {
			for _, tr := range trs {
				t.Logf("%v: %s", tr, tr.State())
			}
			sa, sb := a.Stats(), b.Stats()
			var ta, tb strings.Builder
			sa.WriteTable(&ta)
			sb.WriteTable(&tb)
			t.Fatalf("%v: %v\nclient:\n%s\necho:\n%s", tr, err, ta.String(), tb.String())
		}
		want(t, tr.String(), got, sum, n, uint64(100+i))
	}
	for name, s := range map[string]*stack.Stack{"client": a, "echo": b} {
		snap := s.Stats()
		seg, _ := snap.Pool("TCP_SEG")
		t.Logf("%s: TCP memerr %d, TCP_SEG max %d of %d (refused %d), heap max %d of %d (refused %d), writes refused for the heap's fair share %d",
			name, snap.TCP.Memerr, seg.Max, seg.Avail, seg.Err, snap.Heap.Max, snap.Heap.Avail, snap.Heap.Err, snap.TCPExt.SndShareClamped)
	}
	// Short memory shows as ERR_MEM from the pools or the heap, or (heap) as writes the
	// heap's fair shares refused before it ran out: the same errs.Mem for the application.
	sa, sb := a.Stats(), b.Stats()
	shares := sa.TCPExt.SndShareClamped + sb.TCPExt.SndShareClamped
	if sa.TCP.Memerr+sb.TCP.Memerr+shares == 0 || heap && sa.Heap.Err+shares == 0 {
		t.Errorf("memory never ran short: the test did not test what it should")
	}
}

// lwIP's embedded defaults: a 1600-byte heap, 16 POOL pbufs, a 1072-byte send buffer.
// Echo and Send must get through on short memory (splitting chains, waiting for room,
// retrying on ERR_MEM) without losing or repeating a byte.
func TestSmallMemory(t *testing.T) {
	o := opt.Embedded()
	a, b := newPair(t, o)
	ctx := ctxFor(t, 30*time.Second)
	echoOn(t, b, netip.AddrPortFrom(addrB[0], 7))
	const n = 256 << 10
	got, sum := wait(t, ctx, "echo", tcpapp.Send(a, netip.AddrPortFrom(addrB[0], 7), n, 8))
	want(t, "echo", got, sum, n, 8)
}

func TestErrors(t *testing.T) {
	a, b := newPair(t, opt.Tunnel())
	ctx := ctxFor(t, 30*time.Second)
	// Nothing listens: the peer's RST refuses the connection.
	if _, _, err := tcpapp.Send(a, netip.AddrPortFrom(addrB[0], 1), 10, 1).Wait(ctx); !errors.Is(err, errs.Refused) {
		t.Errorf("connect to a closed port: %v, want %v", err, errs.Refused)
	}
	// No route: ENETUNREACH, as Linux's connect(2).
	if _, _, err := tcpapp.Recv(a, netip.MustParseAddrPort("198.19.0.1:7")).Wait(ctx); !errors.Is(err, errs.NetUnreach) {
		t.Errorf("connect with no route: %v, want %v", err, errs.NetUnreach)
	}
	// Abort resets: the client reports errs.Abrt, the server errs.Rst.
	sink, err := tcpapp.Sink(b, netip.AddrPortFrom(addrB[0], 9))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	cl := tcpapp.Send(a, sink.Addr(), 1<<40, 1)
	srv, err := sink.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitReceived(t, ctx, srv, 1<<20)
	cl.Abort()
	if _, _, err := cl.Wait(ctx); !errors.Is(err, errs.Abrt) {
		t.Errorf("aborted transfer: %v, want %v", err, errs.Abrt)
	}
	if _, _, err := srv.Wait(ctx); !errors.Is(err, errs.Rst) {
		t.Errorf("peer of an aborted transfer: %v, want %v", err, errs.Rst)
	}
	// Closing the stack ends what is still open with errs.Abrt, and frees everything.
	cl = tcpapp.Send(a, sink.Addr(), 1<<40, 1)
	if srv, err = sink.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	waitReceived(t, ctx, srv, 1<<20)
	a.Close()
	if _, _, err := cl.Wait(ctx); !errors.Is(err, errs.Abrt) {
		t.Errorf("transfer of a closed stack: %v, want %v", err, errs.Abrt)
	}
	b.Close()
	if _, _, err := srv.Wait(ctx); err == nil {
		t.Errorf("transfer of a closed stack ended without error")
	}
}
