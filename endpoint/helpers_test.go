package endpoint

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
)

// The addresses of the pair, stacktest's: index 0 IPv4, 1 IPv6.
var addrA, addrB = stacktest.AddrA, stacktest.AddrB

// pairConfig varies newPair.
type pairConfig struct {
	opts     opt.Options
	queueLen int         // pipe queue per direction (0: default)
	medium   link.Medium // 0: MediumIP
	// wrapA, when set, wraps A's end of the pipe (a link that drops, for example).
	wrapA func(a *stack.Stack, ep link.Endpoint) link.Endpoint
	// offloads of the pipe (zero: none).
	offloads link.Offloads
}

// A stall must fail the test, with the evidence (stacktest.OnFail), long before the suite's
// timeout: ioTimeout is the deadline of every read and write on a connection the helpers
// return, dialTimeout bounds a connect and an accept. Both are generous for -race on a
// loaded machine.
const (
	ioTimeout   = time.Minute
	dialTimeout = 30 * time.Second
)

// testCtx is a context for a dial or a wait of t: canceled after dialTimeout or when the
// test ends.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	t.Cleanup(cancel)
	return ctx
}

// pair is two stacks joined by an asynchronous pipe (stacktest.Pair), with a Net on each.
type pair struct {
	a, b       *stack.Stack
	na, nb     *Net
	nifA, nifB *stack.Netif
	// ev prints both stacks' connections, counters and the pipe if the test fails; close
	// connections with ev.Close (as connect does) so that they show as they stood.
	ev *stacktest.Evidence
}

// newPair joins two stacks by an asynchronous pipe (stacktest.NewPair: when the test ends
// both are closed and checked, pools at zero and no goroutine left, after the evidence if
// it failed) and waits for duplicate address detection.
func newPair(t testing.TB, c pairConfig) *pair {
	t.Helper()
	sp := stacktest.NewPair(t, stacktest.PairConfig{Options: c.opts, Medium: c.medium, QueueLen: c.queueLen, WrapA: c.wrapA, Offloads: c.offloads})
	p := &pair{a: sp.A, b: sp.B, na: New(sp.A), nb: New(sp.B), nifA: sp.NetifA, nifB: sp.NetifB, ev: sp.Ev}
	stacktest.WaitReady(t, p.nifA, p.nifB)
	return p
}

// tcpPair returns an established TCP connection from p.a to p.b (fam 0 IPv4, 1 IPv6),
// as connect does; the listener is closed before it returns.
func (p *pair) tcpPair(t testing.TB, fam int) (client, server *TCPConn) {
	t.Helper()
	l, err := p.nb.ListenTCPAddrPort(netip.AddrPortFrom(addrB[fam], 0))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return p.connect(t, l, func() (*TCPConn, error) {
		return p.na.DialContextTCPAddrPort(testCtx(t), netip.AddrPortFrom(addrB[fam], l.Addr().(*net.TCPAddr).AddrPort().Port()))
	})
}

// connect runs dial while l accepts and returns both ends (stacktest.Connect: each with
// ioTimeout as its deadline and closed after the evidence when the test ends); the caller
// closes l.
func (p *pair) connect(t testing.TB, l *TCPListener, dial func() (*TCPConn, error)) (client, server *TCPConn) {
	t.Helper()
	return stacktest.Connect(t, p.ev, ioTimeout, dial, l.AcceptTCP)
}

// dialAccept dials addr ("tcp") from p.na and accepts the connection on l (a
// *TCPListener): both ends, as connect returns them.
func (p *pair) dialAccept(t *testing.T, l net.Listener, addr string) (c, accepted net.Conn) {
	t.Helper()
	return p.connect(t, l.(*TCPListener), func() (*TCPConn, error) {
		c, err := p.na.DialContext(testCtx(t), "tcp", addr)
		if err != nil {
			return nil, err
		}
		return c.(*TCPConn), nil
	})
}

// waitErr is stacktest.WaitErr with dialTimeout.
func waitErr(t testing.TB, errc <-chan error, what string) error {
	t.Helper()
	return stacktest.WaitErr(t, errc, dialTimeout, what)
}

// shortOpts are options with fast TCP timers, for failure scenarios.
func shortOpts() opt.Options {
	o := opt.Tunnel()
	o.TCPInitRTO = 20 * time.Millisecond
	o.TCPMinRTO = 20 * time.Millisecond
	o.TCPSynMaxRtx = 2
	o.TCPMaxRtx = 3
	return o
}

func fmtInt(i int) string { return strconv.Itoa(i) }

// listen is n.Listen, failing t on an error; the listener is closed when the test ends.
func listen(t testing.TB, n *Net, network, address string) net.Listener {
	t.Helper()
	l, err := n.Listen(network, address)
	return opened(t, l, err, "listen", network, address)
}

// listenPacket is n.ListenPacket, failing t on an error; the socket is closed when the
// test ends.
func listenPacket(t testing.TB, n *Net, network, address string) net.PacketConn {
	t.Helper()
	c, err := n.ListenPacket(network, address)
	return opened(t, c, err, "listen", network, address)
}

// dial is n.Dial, failing t on an error; the conn is closed when the test ends.
func dial(t testing.TB, n *Net, network, address string) net.Conn {
	t.Helper()
	c, err := n.Dial(network, address)
	return opened(t, c, err, "dial", network, address)
}

// opened returns c, what op on network and address opened, or fails t with err; c is
// closed when the test ends.
func opened[C io.Closer](t testing.TB, c C, err error, op, network, address string) C {
	t.Helper()
	if err != nil {
		t.Fatalf("%s %s %s: %v", op, network, address, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sockopt is an int option and a value.
type sockopt struct{ level, name, v int }

// setGet sets each option on c and checks that it reads back the value set.
func setGet(t testing.TB, c interface {
	SetsockoptInt(level, name, v int) error
	GetsockoptInt(level, name int) (int, error)
}, opts []sockopt) {
	t.Helper()
	for _, o := range opts {
		if err := c.SetsockoptInt(o.level, o.name, o.v); err != nil {
			t.Fatalf("set %d/%d: %v", o.level, o.name, err)
		}
		if v, err := c.GetsockoptInt(o.level, o.name); err != nil || v != o.v {
			t.Fatalf("get %d/%d = %d %v, want %d", o.level, o.name, v, err, o.v)
		}
	}
}
