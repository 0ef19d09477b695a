package endpoint

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
)

var (
	addrA = [2]netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("fd42:5eed::1")}
	addrB = [2]netip.Addr{netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("fd42:5eed::2")}
)

// pairConfig varies newPair.
type pairConfig struct {
	opts     opt.Options
	queueLen int         // pipe queue per direction (0: default)
	medium   link.Medium // 0: MediumIP
	// wrapA, when set, wraps A's end of the pipe (a link that drops, for example).
	wrapA func(link.Endpoint) link.Endpoint
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

// pair is two stacks joined by an asynchronous pipe, with a Net on each.
type pair struct {
	a, b       *stack.Stack
	na, nb     *Net
	nifA, nifB *stack.Netif
	// ev prints both stacks' connections, counters and the pipe if the test fails; close
	// connections with ev.Close (as connect does) so that they show as they stood.
	ev *stacktest.Evidence
}

// newPair joins two stacks by an asynchronous pipe; when the test ends both are closed and
// checked: pools at zero, no goroutine left; if the test failed, both stacks' connections,
// counters and the pipe are logged first (stacktest.OnFail, p.ev).
func newPair(t testing.TB, c pairConfig) *pair {
	t.Helper()
	stacktest.NoGoroutineLeak(t)
	if c.opts == (opt.Options{}) {
		c.opts = opt.Tunnel()
	}
	if c.medium == 0 {
		c.medium = link.MediumIP
	}
	pa, pb := pipe.New(pipe.Config{MTU: 1500, Medium: c.medium, QueueLen: c.queueLen})
	p := &pair{}
	var err error
	if p.a, err = stack.New(stack.Config{Options: c.opts, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, p.a)
	if p.b, err = stack.New(stack.Config{Options: c.opts, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, p.b)
	var epA link.Endpoint = pa
	linksA := []any{pa}
	if c.wrapA != nil {
		epA = c.wrapA(pa)
		linksA = []any{epA, pa}
	}
	// After Closed: the evidence prints while the stacks are still open.
	p.ev = stacktest.OnFail(t, stacktest.Side{Name: "A " + addrA[0].String(), Stack: p.a, Links: linksA},
		stacktest.Side{Name: "B " + addrB[0].String(), Stack: p.b, Links: []any{pb}})
	if p.nifA, err = p.a.AddNetif(epA, stack.NetifConfig{Name: "a0", Addrs: []netip.Prefix{
		netip.PrefixFrom(addrA[0], 24), netip.PrefixFrom(addrA[1], 64)}}); err != nil {
		t.Fatal(err)
	}
	if p.nifB, err = p.b.AddNetif(pb, stack.NetifConfig{Name: "b0", Addrs: []netip.Prefix{
		netip.PrefixFrom(addrB[0], 24), netip.PrefixFrom(addrB[1], 64)}}); err != nil {
		t.Fatal(err)
	}
	p.na, p.nb = New(p.a), New(p.b)
	waitUsable(t, p.a, addrA[1])
	waitUsable(t, p.b, addrB[1])
	return p
}

// waitUsable waits for duplicate address detection to finish on a.
func waitUsable(t testing.TB, s *stack.Stack, a netip.Addr) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.Lock()
		ok := s.IP().IsLocal(a)
		s.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v never became usable", a)
		}
		time.Sleep(5 * time.Millisecond)
	}
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

// connect runs dial while l accepts and returns both ends, each with ioTimeout as its
// deadline and closed after the evidence when the test ends (p.ev); the caller closes l.
func (p *pair) connect(t testing.TB, l *TCPListener, dial func() (*TCPConn, error)) (client, server *TCPConn) {
	t.Helper()
	type res struct {
		c   *TCPConn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := l.AcceptTCP()
		ch <- res{c, err}
	}()
	client, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	p.ev.Close(client)
	var r res
	select {
	case r = <-ch:
	case <-time.After(dialTimeout):
		t.Fatalf("no connection accepted on %v within %v of the dial from %v", l.Addr(), dialTimeout, client.LocalAddr())
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	p.ev.Close(r.c)
	deadline := time.Now().Add(ioTimeout)
	client.SetDeadline(deadline)
	r.c.SetDeadline(deadline)
	return client, r.c
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
