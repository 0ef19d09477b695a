package netconn_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
)

var (
	addrA, addrB = stacktest.AddrA, stacktest.AddrB // index 0 IPv4, 1 IPv6
	fams         = []string{"IPv4", "IPv6"}
)

// A stall must fail the test, with the evidence (stacktest.OnFail), long before the suite's
// timeout: ioTimeout is the deadline of every read and write on the connections connPair
// returns, dialTimeout bounds a connect and an accept. Both are generous for -race on a
// loaded machine.
const (
	ioTimeout   = time.Minute
	dialTimeout = 30 * time.Second
)

// evidences holds, for each stack of a live pair, the Evidence newPair registered.
var evidences sync.Map // *stack.Stack → *stacktest.Evidence

// evidenceOf returns the Evidence of the test whose pair holds s (newPair): close a
// connection with its Later or Close so that a failure shows it as it stood.
func evidenceOf(s *stack.Stack) *stacktest.Evidence {
	ev, _ := evidences.Load(s)
	return ev.(*stacktest.Evidence)
}

// newPair joins two stacks by an asynchronous IP pipe (stacktest.NewPair): both are closed
// and checked for leaks (pools at zero, no goroutine left) when the test ends. If the test
// failed, both stacks' connections, counters and the pipe are logged first (see
// evidenceOf).
func newPair(t *testing.T, o opt.Options) (a, b *stack.Stack) {
	t.Helper()
	p := stacktest.NewPair(t, stacktest.PairConfig{Options: o})
	evidences.Store(p.A, p.Ev)
	evidences.Store(p.B, p.Ev)
	p.Ev.Later(func() { evidences.Delete(p.A); evidences.Delete(p.B) }) // runs last
	return p.A, p.B
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// connPair returns an established connection from a to b's listener (fam 0 IPv4, 1 IPv6),
// the listener already closed. Both conns have ioTimeout as their deadline and are closed
// when the test ends, after the evidence.
func connPair(t *testing.T, a, b *stack.Stack, fam int) (client, server *netconn.TCPConn) {
	t.Helper()
	l, err := netconn.ListenTCP(b, netip.AddrPortFrom(addrB[fam], 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dial := func() (*netconn.TCPConn, error) {
		return netconn.DialTCP(ctxFor(t, dialTimeout), a, netip.AddrPort{}, l.Addr(), nil)
	}
	return stacktest.Connect(t, evidenceOf(a), ioTimeout, dial, l.Accept)
}

// closeReleasesRead runs read, which blocks on c, and checks that c.Close releases it with
// net.ErrClosed.
func closeReleasesRead(t *testing.T, c io.Closer, read func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- read() }()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	wantClosed(t, errc, 1, "read released by Close")
}

// wantClosed waits for n calls blocked in goroutines to send their errors on errc (each
// within dialTimeout) and checks that each is net.ErrClosed; what names the calls.
func wantClosed(t *testing.T, errc <-chan error, n int, what string) {
	t.Helper()
	for range n {
		if err := waitErr(t, errc, what); !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s: %v, want net.ErrClosed", what, err)
		}
	}
}

// listenTCP returns a listener of s on laddr with options o, closed when the test ends.
func listenTCP(t *testing.T, s *stack.Stack, laddr netip.AddrPort, o *netconn.ListenOptions) *netconn.TCPListener {
	t.Helper()
	l, err := netconn.ListenTCP(s, laddr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// waitErr is stacktest.WaitErr with dialTimeout.
func waitErr(t testing.TB, errc <-chan error, what string) error {
	t.Helper()
	return stacktest.WaitErr(t, errc, dialTimeout, what)
}

// udpPair returns a UDP socket listening on b (fam 0 IPv4, 1 IPv6) and one on a connected
// to it. Both are closed when the test ends.
func udpPair(t *testing.T, a, b *stack.Stack, fam int) (srv, cli *netconn.UDPConn) {
	t.Helper()
	srv, err := netconn.ListenUDP(b, netip.AddrPortFrom(addrB[fam], 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cli, err = netconn.DialUDP(a, netip.AddrPort{}, srv.LocalAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return srv, cli
}

// mcastMember returns a UDP socket of s on port (every address) that joined group g on
// the route's netif; it is closed when the test ends.
func mcastMember(t *testing.T, s *stack.Stack, port uint16, g netip.Addr) *netconn.UDPConn {
	t.Helper()
	c, err := netconn.ListenUDP(s, netip.AddrPortFrom(netip.Addr{}, port), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.JoinGroup(g, 0); err != nil {
		t.Fatalf("JoinGroup: %v", err)
	}
	return c
}

// dialUDP returns a UDP socket of s connected to raddr, closed when the test ends.
func dialUDP(t *testing.T, s *stack.Stack, raddr netip.AddrPort) *netconn.UDPConn {
	t.Helper()
	c, err := netconn.DialUDP(s, netip.AddrPort{}, raddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// msgConn is the side of a datagram conn (UDP, ping, raw) the exchange tests use.
type msgConn interface {
	Write(b []byte) (int, error)
	ReadMsg(b []byte) (int, netconn.Meta, error)
}

// zeroAllocs checks that a Write of 512 bytes on cli and a ReadMsg on srv allocate
// nothing in steady state; what names them in the failure.
func zeroAllocs(t *testing.T, what string, srv, cli msgConn) {
	t.Helper()
	msg := pattern(512, 3)
	buf := make([]byte, 1500)
	round := func() {
		if _, err := cli.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, _, err := srv.ReadMsg(buf); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		round()
	}
	if n := testing.AllocsPerRun(300, round); n != 0 {
		t.Errorf("%.2f allocations per %s Write+ReadMsg, want 0", n, what)
	}
}

// pattern returns n seeded pseudo-random bytes.
func pattern(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// tunnel is the Tunnel preset with small windows so tests run fast.
func tunnel() opt.Options {
	o := opt.Tunnel()
	o.TCPWnd, o.TCPMaxWnd, o.TCPSndBuf = 256<<10, 256<<10, 256<<10
	o.TCPSndQueueLen = 4 * o.TCPSndBuf / 1460
	return o
}

// inBothFamilies runs test as a subtest per family (fam 0 IPv4, 1 IPv6), each on a new
// pair of stacks with the tunnel options.
func inBothFamilies(t *testing.T, test func(t *testing.T, fam int, a, b *stack.Stack)) {
	for fam, name := range fams {
		t.Run(name, func(t *testing.T) {
			a, b := newPair(t, tunnel())
			test(t, fam, a, b)
		})
	}
}
