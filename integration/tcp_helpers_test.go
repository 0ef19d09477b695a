package integration

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/internal/tcpapp"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/tun"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
)

// bigTransfer is the size of the kernel transfers: 100 MiB, shrunk under -short and -race.
func bigTransfer() int64 { return scaled[int64](100<<20, 8<<20) }

// scaled is a size for a test that moves data: full, or small under -short and under -race.
func scaled[T int | int64](full, small T) T {
	if testing.Short() || raceEnabled {
		return small
	}
	return full
}

// tcpEnv is a wisp stack on a TUN device whose kernel side lives in a namespace of the test:
// wisp has 198.18.<net>.2/24 and fd42:5eed:0:<net>::2/64, the kernel .1 and ::1.
type tcpEnv struct {
	ns         *netns
	s          *stack.Stack
	link       link.Endpoint // wisp's link: the TUN device, wrapped if wrap was given
	dev        *tun.Device
	wisp, kern [2]netip.Addr // [0] IPv4, [1] IPv6
}

var families = []struct {
	name string
	idx  int
	net  string
}{{"IPv4", 0, "tcp4"}, {"IPv6", 1, "tcp6"}}

// newTCPEnv builds the environment; wrap (may be nil) wraps the TUN link before the stack
// attaches it (impairment, capture). The stack is closed, its pools checked, the namespace
// removed and the goroutines counted when the test ends.
func newTCPEnv(t *testing.T, subnet int, wrap func(link.Endpoint) link.Endpoint) *tcpEnv {
	t.Helper()
	return newTCPEnvWith(t, subnet, opt.Tunnel(), wrap)
}

// newTCPEnvWith is newTCPEnv with the stack's options.
func newTCPEnvWith(t *testing.T, subnet int, o opt.Options, wrap func(link.Endpoint) link.Endpoint) *tcpEnv {
	t.Helper()
	return newTCPEnvTUN(t, subnet, o, tun.Config{MTU: 1500}, wrap)
}

// newTCPEnvTUN is newTCPEnvWith on a TUN device opened with cfg (its name is wisp0).
func newTCPEnvTUN(t *testing.T, subnet int, o opt.Options, cfg tun.Config, wrap func(link.Endpoint) link.Endpoint) *tcpEnv {
	t.Helper()
	ns := newNetns(t)
	stacktest.NoGoroutineLeak(t)
	e := &tcpEnv{ns: ns}
	e.wisp[0] = netip.MustParseAddr(fmt.Sprintf("198.18.%d.2", subnet))
	e.kern[0] = netip.MustParseAddr(fmt.Sprintf("198.18.%d.1", subnet))
	e.wisp[1] = netip.MustParseAddr(fmt.Sprintf("fd42:5eed:0:%x::2", subnet))
	e.kern[1] = netip.MustParseAddr(fmt.Sprintf("fd42:5eed:0:%x::1", subnet))
	var dev *tun.Device
	var err error
	cfg.Name = "wisp0"
	ns.do(t, func() { dev, err = tun.OpenConfig(cfg) })
	if err != nil {
		t.Fatal(err)
	}
	e.dev = dev
	var ep link.Endpoint = dev
	if wrap != nil {
		ep = wrap(dev)
	}
	e.link = ep
	if e.s, err = stack.New(stack.Config{Options: o}); err != nil {
		ep.Close()
		t.Fatal(err)
	}
	stacktest.Closed(t, e.s)
	if _, err := e.s.AddNetif(ep, stack.NetifConfig{Name: "wisp0", Addrs: []netip.Prefix{
		netip.PrefixFrom(e.wisp[0], 24), netip.PrefixFrom(e.wisp[1], 64)}}); err != nil {
		ep.Close()
		t.Fatal(err)
	}
	ns.run(t, "ip", "addr", "add", e.kern[0].String()+"/24", "dev", "wisp0")
	ns.run(t, "ip", "-6", "addr", "add", e.kern[1].String()+"/64", "dev", "wisp0", "nodad")
	ns.run(t, "ip", "link", "set", "wisp0", "up")
	return e
}

// evidence registers the evidence of a transfer test (stacktest.OnFail): wisp's
// connections, counters and link, and the kernel's sockets (ss) and TUN counters. Register
// it after dial and kernelServe, whose cleanups close the kernel's sockets: then it runs
// first and shows them as they stood.
func (e *tcpEnv) evidence(t *testing.T) {
	t.Helper()
	stacktest.OnFail(t,
		stacktest.Side{Name: "wisp", Stack: e.s, Links: []any{e.link}},
		stacktest.Side{Name: "kernel (namespace " + e.ns.name + ")", More: e.ns.writeKernel})
}

// writeKernel prints the namespace's TCP sockets with their internals (`ss -tino`: state,
// queues, cwnd, RTO, unacked, retransmissions, timers) and the counters of its links.
func (ns *netns) writeKernel(w io.Writer) {
	for _, args := range [][]string{{"ss", "-tino"}, {"ip", "-s", "link", "show"}} {
		out, err := ns.cmd(args...).CombinedOutput()
		fmt.Fprintf(w, "$ %s\n%s", strings.Join(args, " "), out)
		if err != nil {
			fmt.Fprintf(w, "(%v)\n", err)
		}
	}
}

// listen opens a kernel listener inside the namespace; it is closed when the test ends.
func (ns *netns) listen(t *testing.T, network string, addr netip.AddrPort) *net.TCPListener {
	t.Helper()
	var l *net.TCPListener
	var err error
	ns.do(t, func() { l, err = net.ListenTCP(network, net.TCPAddrFromAddrPort(addr)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// dial connects a kernel socket of the namespace to addr.
func (ns *netns) dial(t *testing.T, network string, addr netip.AddrPort) *net.TCPConn {
	t.Helper()
	var c *net.TCPConn
	var err error
	ns.do(t, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var conn net.Conn
		conn, err = (&net.Dialer{}).DialContext(ctx, network, addr.String())
		if err == nil {
			c = conn.(*net.TCPConn)
		}
	})
	if err != nil {
		t.Fatalf("kernel dials %v: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() }) // unblocks a kernelPeer left behind by a failure
	return c
}

// peerResult is what a kernel peer saw.
type peerResult struct {
	sent, recv int64
	sum        [32]byte
	err        error
}

// kernelPeer is the kernel-side mirror of tcpapp.Transfer: it writes n bytes of the pattern
// of seed then half-closes (n > 0), while it reads and checksums everything until end of
// file; with n == 0 it half-closes after end of file. Every read and write has the
// deadline. It closes conn when it succeeds; after an error the test's cleanup does (dial,
// kernelServe), after the evidence.
func kernelPeer(conn *net.TCPConn, n int64, seed uint64, deadline time.Time) (res peerResult) {
	defer func() {
		if res.err == nil {
			conn.Close()
		}
	}()
	conn.SetDeadline(deadline)
	werr := make(chan error, 1)
	go func() {
		if n == 0 {
			werr <- nil
			return
		}
		buf := make([]byte, 256<<10)
		for res.sent < n {
			k := int(min(int64(len(buf)), n-res.sent))
			tcpapp.FillPattern(buf[:k], seed, res.sent)
			w, err := conn.Write(buf[:k])
			res.sent += int64(w)
			if err != nil {
				werr <- fmt.Errorf("kernel write after %d bytes: %w", res.sent, err)
				return
			}
		}
		werr <- conn.CloseWrite()
	}()
	h := sha256.New()
	buf := make([]byte, 256<<10)
	var rerr error
	for {
		k, err := conn.Read(buf)
		h.Write(buf[:k])
		res.recv += int64(k)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			rerr = fmt.Errorf("kernel read after %d bytes: %w", res.recv, err)
			break
		}
	}
	if n == 0 && rerr == nil {
		rerr = conn.CloseWrite()
	}
	res.err = errors.Join(rerr, <-werr)
	h.Sum(res.sum[:0])
	return res
}

// kernelServe accepts one connection on l and runs kernelPeer on it. The connection is
// closed when the test ends, so a failure leaves no goroutine behind.
func kernelServe(t *testing.T, l *net.TCPListener, n int64, seed uint64, deadline time.Time) <-chan peerResult {
	ch := make(chan peerResult, 1)
	conn := make(chan *net.TCPConn, 1)
	t.Cleanup(func() {
		l.Close()
		select {
		case c := <-conn:
			c.Close()
		default:
		}
	})
	go func() {
		l.SetDeadline(deadline)
		c, err := l.AcceptTCP()
		if err != nil {
			ch <- peerResult{err: fmt.Errorf("kernel accept: %w", err)}
			return
		}
		conn <- c
		ch <- kernelPeer(c, n, seed, deadline)
	}()
	return ch
}

// waitTransfer waits for a wisp transfer and fails the test, with the connection's state,
// if it does not end cleanly in time.
func waitTransfer(t *testing.T, ctx context.Context, what string, tr *tcpapp.Transfer) (int64, [32]byte) {
	t.Helper()
	n, sum, err := tr.Wait(ctx)
	if err != nil {
		t.Fatalf("%s: wisp side: %v (%s)", what, err, tr.State())
	}
	return n, sum
}

// checkPeer fails the test unless the kernel peer ended cleanly having received want bytes
// with sum wantSum.
func checkPeer(t *testing.T, what string, res peerResult, want int64, wantSum [32]byte) {
	t.Helper()
	if res.err != nil {
		t.Fatalf("%s: kernel side: %v (sent %d, received %d)", what, res.err, res.sent, res.recv)
	}
	if res.recv != want || res.sum != wantSum {
		t.Fatalf("%s: kernel received %d bytes (sha256 %x), want %d (%x)", what, res.recv, res.sum[:8], want, wantSum[:8])
	}
}

// checkSum fails the test unless wisp received want bytes with sum wantSum.
func checkSum(t *testing.T, what string, n int64, sum [32]byte, want int64, wantSum [32]byte) {
	t.Helper()
	if n != want || sum != wantSum {
		t.Fatalf("%s: wisp received %d bytes (sha256 %x), want %d (%x)", what, n, sum[:8], want, wantSum[:8])
	}
}

// logRate logs a transfer's throughput.
func logRate(t *testing.T, what string, bytes int64, d time.Duration) {
	t.Helper()
	t.Logf("%s: %d MiB in %v = %.0f Mbit/s", what, bytes>>20, d.Round(time.Millisecond), float64(bytes)*8/d.Seconds()/1e6)
}

// sums caches PatternSum, which costs a pass over the bytes.
var sums = map[[2]uint64][32]byte{}

func patternSum(n int64, seed uint64) [32]byte {
	k := [2]uint64{uint64(n), seed}
	if s, ok := sums[k]; ok {
		return s
	}
	s := tcpapp.PatternSum(n, seed)
	sums[k] = s
	return s
}

// withDeadline returns a context that ends after d (or with the test) and its deadline, the
// deadline of a test's reads and writes, so that a stall fails the test with its evidence.
func withDeadline(t *testing.T, d time.Duration) (context.Context, time.Time) {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	deadline, _ := ctx.Deadline()
	return ctx, deadline
}

// serveTCP starts a tcpapp server on addr that sends n bytes of the pattern of seed on every
// connection (a sink when n is 0); it closes when the test ends.
func serveTCP(t *testing.T, s *stack.Stack, addr netip.AddrPort, n int64, seed uint64) *tcpapp.Server {
	t.Helper()
	srv, err := tcpapp.Serve(s, addr, n, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// echoServers starts a tcpapp echo server on each of addrs; they close when the test ends.
func echoServers(t *testing.T, s *stack.Stack, addrs ...netip.AddrPort) {
	t.Helper()
	for _, a := range addrs {
		l, err := tcpapp.Echo(s, a)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tcpapp.CloseListener(s, l) })
	}
}
