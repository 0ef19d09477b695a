package stacktest

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/ip/iptest"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
)

// The addresses of a Pair, those of an ip/iptest.Pair (one address plan for every test),
// index 0 IPv4 and 1 IPv6: A is 198.18.0.1/24 and fd42:5eed::1/64, B .2 and ::2.
var (
	AddrA = iptest.AddrA
	AddrB = iptest.AddrB
)

// PairConfig varies NewPair; the zero value is two stacks with the default options over an
// asynchronous MediumIP pipe of MTU 1500, on the real clock.
type PairConfig struct {
	// Options of both stacks (zero: opt.Tunnel(), as stack.New).
	Options opt.Options
	// Medium of the pipe (zero: link.MediumIP).
	Medium link.Medium
	// MTU of the pipe (zero: 1500).
	MTU int
	// QueueLen is the pipe's queue per direction (zero: the pipe's default).
	QueueLen int
	// Clock, when set, drives both stacks and makes the pipe synchronous (the test drives
	// it); nil: the real clock and an asynchronous pipe.
	Clock clock.Clock
	// WrapA, when set, wraps A's end of the pipe (an impairment, a capture, a link that
	// drops); it is given stack A (an impairment takes its allocator), as an iptest.Pair's
	// WrapA is given node A. The evidence prints the wrapper and then the pipe end.
	WrapA func(a *stack.Stack, ep link.Endpoint) link.Endpoint
	// Offloads of the pipe (pipe.Config.Offloads; zero: none).
	Offloads link.Offloads
	// Cores of both stacks (stack.Config.Cores; zero: one).
	Cores int
}

// Pair is two stacks joined by a pipe, each with one netif holding its addresses (AddrA,
// AddrB).
type Pair struct {
	A, B           *stack.Stack
	NetifA, NetifB *stack.Netif
	PipeA, PipeB   *pipe.End
	// LinkA is A's link as its netif has it: WrapA's result, or PipeA.
	LinkA link.Endpoint
	// Ev prints both stacks' connections, counters and links if the test fails: close a
	// test's connections with Ev.Close so that they show as they stood.
	Ev *Evidence
}

// NewPair joins two stacks by a pipe (seeds 1 and 2; netifs "a0" and "b0"). When the test
// ends, the evidence prints if it failed (OnFail, p.Ev), then both stacks are closed and
// checked (Closed: pools at zero) and no goroutine may be left (NoGoroutineLeak). It does
// not wait for duplicate address detection: see WaitReady.
func NewPair(t testing.TB, c PairConfig) *Pair {
	t.Helper()
	NoGoroutineLeak(t)
	if c.Medium == 0 {
		c.Medium = link.MediumIP
	}
	if c.MTU == 0 {
		c.MTU = 1500
	}
	p := &Pair{}
	p.PipeA, p.PipeB = pipe.New(pipe.Config{MTU: c.MTU, Medium: c.Medium, QueueLen: c.QueueLen, Sync: c.Clock != nil, Offloads: c.Offloads})
	var err error
	if p.A, err = stack.New(stack.Config{Options: c.Options, Clock: c.Clock, Seed: 1, Cores: c.Cores}); err != nil {
		t.Fatal(err)
	}
	Closed(t, p.A)
	if p.B, err = stack.New(stack.Config{Options: c.Options, Clock: c.Clock, Seed: 2, Cores: c.Cores}); err != nil {
		t.Fatal(err)
	}
	Closed(t, p.B)
	p.LinkA = p.PipeA
	linksA := []any{p.PipeA}
	if c.WrapA != nil {
		p.LinkA = c.WrapA(p.A, p.PipeA)
		linksA = []any{p.LinkA, p.PipeA}
	}
	// After Closed: the evidence prints while the stacks are still open.
	p.Ev = OnFail(t, Side{Name: "A " + AddrA[0].String(), Stack: p.A, Links: linksA},
		Side{Name: "B " + AddrB[0].String(), Stack: p.B, Links: []any{p.PipeB}})
	if p.NetifA, err = p.A.AddNetif(p.LinkA, stack.NetifConfig{Name: "a0", Addrs: prefixes(AddrA)}); err != nil {
		t.Fatal(err)
	}
	if p.NetifB, err = p.B.AddNetif(p.PipeB, stack.NetifConfig{Name: "b0", Addrs: prefixes(AddrB)}); err != nil {
		t.Fatal(err)
	}
	return p
}

// prefixes are a Pair side's netif prefixes: /24 and /64.
func prefixes(a [2]netip.Addr) []netip.Prefix {
	return []netip.Prefix{netip.PrefixFrom(a[0], 24), netip.PrefixFrom(a[1], 64)}
}

// Inject delivers pkt to n as one frame received from its link (for a MediumIP netif, a bare
// IP packet: iptest.Packet).
func Inject(t testing.TB, n *stack.Netif, pkt []byte) {
	t.Helper()
	p := n.AllocRx(len(pkt))
	if p == nil {
		t.Fatalf("AllocRx of %d bytes failed", len(pkt))
	}
	if err := p.CopyIn(pkt, 0); err != nil {
		t.Fatal(err)
	}
	n.DeliverPackets([]*pbuf.Pbuf{p})
}

// WaitReady waits, on the real clock, until none of the netifs' addresses is tentative
// (duplicate address detection done); it fails the test after 10 s.
func WaitReady(t testing.TB, ns ...*stack.Netif) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range ns {
		for tentative(n) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: DAD did not finish: %+v", n.Name(), n.Addrs())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func tentative(n *stack.Netif) bool {
	for _, a := range n.Addrs() {
		if a.State == ip.Tentative {
			return true
		}
	}
	return false
}
