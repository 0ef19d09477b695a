package iptest

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/opt"
)

// The addresses of a Pair, index 0 IPv4 and 1 IPv6, as stacktest's: A is 198.18.0.1/24 and
// fd42:5eed::1/64, B .2 and ::2.
var (
	AddrA = [2]netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("fd42:5eed::1")}
	AddrB = [2]netip.Addr{netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("fd42:5eed::2")}
)

// PairConfig varies NewPair; the zero value is two nodes with Options() over a MediumIP
// pipe of MTU 1500.
type PairConfig struct {
	// Options of A, and of B unless OptionsB is set (zero: Options()).
	Options  opt.Options
	OptionsB *opt.Options
	Medium   link.Medium // zero: link.MediumIP
	MTU      int         // zero: 1500
	QueueLen int         // the pipe's queue per direction (zero: 4096)
	// Setup, when set, runs for each node before its netif is attached: register a
	// transport there (and its Close with OnClose).
	Setup func(n *Node)
	// WrapA, when set, wraps A's end of the pipe (an impairment, a capture).
	WrapA func(a *Node, ep link.Endpoint) link.Endpoint
	// Offloads of the pipe (pipe.Config.Offloads; zero: none).
	Offloads link.Offloads
}

// Pair is two Nodes joined by a synchronous pipe on one fake clock: nothing moves until the
// test calls Pump, Run or Until, so every run takes the same steps.
type Pair struct {
	T            testing.TB
	Clock        *clock.Fake
	A, B         *Node
	PipeA, PipeB *pipe.End
	// LinkA is A's link as its netif has it: WrapA's result, or PipeA.
	LinkA link.Endpoint

	base int
}

// Options is a small tunnel-like configuration without DAD or autoconfiguration, so an
// exchange completes within one Pump.
func Options() opt.Options {
	o := opt.Tunnel()
	o.MemSize = 4 << 20
	o.PbufPoolSize = 1024
	o.PbufPoolBufSize = 2048
	o.MempNumPbuf = 1024
	o.MempNumPbufRAM = 1024
	o.MempNumReassData = 8
	o.IPReassMaxPbufs = 128
	o.MempNumFragPbuf = 64
	o.ND6NumNeighbors = 8
	o.MempNumND6Queue = 16
	o.ARPTableSize = 8
	o.MempNumARPQueue = 64
	o.IPv6AutoConfig = false
	o.IPv6DupAddrDetectTransmits = 0
	return o
}

// NewPair joins two Nodes (seeds 1 and 2) by a synchronous pipe, with AddrA and AddrB.
// When the test ends it pumps what is left, closes both nodes (checking them) and the
// link, and fails if a goroutine was left behind.
func NewPair(t testing.TB, c PairConfig) *Pair {
	t.Helper()
	if c.Options == (opt.Options{}) {
		c.Options = Options()
	}
	ob := c.Options
	if c.OptionsB != nil {
		ob = *c.OptionsB
	}
	if c.Medium == 0 {
		c.Medium = link.MediumIP
	}
	if c.MTU == 0 {
		c.MTU = 1500
	}
	if c.QueueLen == 0 {
		c.QueueLen = 4096
	}
	p := &Pair{T: t, Clock: clock.NewFake(time.Unix(1_700_000_000, 0)), base: linktest.Goroutines()}
	p.A = NewNode(t, p.Clock, c.Options, 1)
	p.B = NewNode(t, p.Clock, ob, 2)
	if c.Setup != nil {
		c.Setup(p.A)
		c.Setup(p.B)
	}
	p.PipeA, p.PipeB = pipe.New(pipe.Config{MTU: c.MTU, Medium: c.Medium, Sync: true, QueueLen: c.QueueLen, Offloads: c.Offloads})
	p.LinkA = p.PipeA
	if c.WrapA != nil {
		p.LinkA = c.WrapA(p.A, p.PipeA)
	}
	t.Cleanup(p.close)
	p.A.Attach(p.LinkA, prefixes(AddrA)...)
	p.B.Attach(p.PipeB, prefixes(AddrB)...)
	return p
}

func prefixes(a [2]netip.Addr) []netip.Prefix {
	return []netip.Prefix{netip.PrefixFrom(a[0], 24), netip.PrefixFrom(a[1], 64)}
}

func (p *Pair) close() {
	p.Pump()
	p.A.Close()
	p.B.Close()
	_ = p.LinkA.Close() // a wrapper closes the pipe under it
	_ = p.PipeA.Close()
	if _, fuzz := p.T.(*testing.F); !fuzz { // the fuzzing engine runs goroutines of its own
		linktest.CheckGoroutines(p.T, p.base)
	}
}

// Pump moves frames both ways until the pipe is quiet.
func (p *Pair) Pump() {
	for range 100000 {
		if p.PipeA.Flush() == 0 {
			return
		}
	}
}

// Run advances the clock by d in steps no longer than the next timer, pumping frames in
// between.
func (p *Pair) Run(d time.Duration) { p.Until(d, func() bool { return false }) }

// Until runs the clock, as Run, until cond holds (checked after every step) or limit
// passes; it reports whether cond held.
func (p *Pair) Until(limit time.Duration, cond func() bool) bool {
	end := p.Clock.Now().Add(limit)
	p.Pump()
	for !cond() {
		if !p.Clock.Now().Before(end) {
			return false
		}
		step := end.Sub(p.Clock.Now())
		if next, ok := p.Clock.Next(); ok && next < step {
			step = max(next, 0)
		}
		p.Clock.Advance(step)
		p.Pump()
	}
	return true
}
