package tcp

import (
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/ip/iptest"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/impair"
	"github.com/wispstack/wisp/link/pcap"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

// The nodes' addresses: a world's a and b are iptest.Pair's A and B.
var (
	addrA, addrA6 = iptest.AddrA[0], iptest.AddrA[1]
	addrB, addrB6 = iptest.AddrB[0], iptest.AddrB[1]
)

// testOpts is iptest's configuration with room for bulk TCP transfers.
func testOpts() opt.Options {
	o := iptest.Options()
	o.MemSize = 8 << 20
	o.PbufPoolSize = 2048
	o.MempNumPbuf = 4096
	o.MempNumPbufRAM = 4096
	o.IPReassMaxPbufs = 64
	o.MempNumTCPPCB = 64
	o.MempNumTCPPCBListen = 8
	o.MempNumTCPSeg = 8192
	o.TCPSndBuf = 1 << 20
	o.TCPSndQueueLen = 4 * (1 << 20) / 1460
	return o
}

// node is one TCP/IP instance: an iptest.Node (allocator, pools, timers, core lock, IP
// layer) with a Proto registered on it. Closing it closes TCP first and checks that no PCB
// is left.
type node struct {
	*iptest.Node
	tcp *Proto
}

func newNode(t testing.TB, clk clock.Clock, o opt.Options, seed uint64) *node {
	t.Helper()
	return addTCP(t, iptest.NewNode(t, clk, o, seed), seed)
}

// addTCP registers a Proto (keyed by seed) on n.
func addTCP(t testing.TB, n *iptest.Node, seed uint64) *node {
	t.Helper()
	p, err := New(n.TransportConfig(seed))
	if err != nil {
		t.Fatal(err)
	}
	n.IP.RegisterTransport(wire.ProtoTCP, p)
	n.OnClose(func() {
		p.Close()
		if c, l := p.NumPCBs(); c != 0 || l != 0 {
			t.Errorf("after Close: %d PCBs, %d listeners in use", c, l)
		}
		if k := p.colds.Stats().Used; k != 0 {
			t.Errorf("after Close: %d cold parts in use", k) // not in the pool table
		}
	})
	return &node{Node: n, tcp: p}
}

// conns is how many connections (TIME-WAIT included) n's TCP holds.
func (n *node) conns() (c int) {
	n.Do(func() { c, _ = n.tcp.NumPCBs() })
	return c
}

// state is c's state, read in n's core context.
func (n *node) state(c *PCB) (s State) {
	n.Do(func() { s = c.State() })
	return s
}

func (n *node) stats() stats.Snapshot {
	var s stats.Snapshot
	n.Do(func() { n.IP.Stats(&s); n.tcp.Stats(&s) })
	return s
}

// world is two nodes joined by a sync pipe (optionally impaired), on one fake clock: an
// iptest.Pair with TCP on both nodes.
type world struct {
	*iptest.Pair
	a, b *node
	ia   *impair.Link // a's impairment (worldCfg.impA), or nil
}

type worldCfg struct {
	opts   opt.Options
	optsB  *opt.Options
	mtu    int
	medium link.Medium
	impA   *impair.Config // impairment on a's side (TX = a→b)
	// offloads of the pipe; wrapA wraps a's end last (after impA).
	offloads link.Offloads
	wrapA    func(ep link.Endpoint) link.Endpoint
}

func newWorld(t testing.TB, cfg worldCfg) *world {
	t.Helper()
	if cfg.opts == (opt.Options{}) {
		cfg.opts = testOpts()
	}
	w := &world{}
	pc := iptest.PairConfig{Options: cfg.opts, OptionsB: cfg.optsB, MTU: cfg.mtu, Medium: cfg.medium, Offloads: cfg.offloads}
	pc.Setup = func(n *iptest.Node) {
		if w.a == nil {
			w.a = addTCP(t, n, 1)
		} else {
			w.b = addTCP(t, n, 2)
		}
	}
	pc.WrapA = func(a *iptest.Node, ep link.Endpoint) link.Endpoint {
		if cfg.impA != nil {
			c := *cfg.impA
			c.Alloc = a.Alloc
			w.ia = impair.New(ep, a.Timers.Clock(), c)
			ep = w.ia
		}
		if f := os.Getenv("WISP_PCAP"); f != "" {
			// Debugging aid: capture what A sends (before impairment) and receives.
			fh, err := os.Create(f)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { fh.Close() })
			pl, err := pcap.Wrap(ep, fh, 128, pcap.WithClock(a.Timers.Clock()), pcap.WithNanoseconds())
			if err != nil {
				t.Fatal(err)
			}
			ep = pl
		}
		if cfg.wrapA != nil {
			ep = cfg.wrapA(ep)
		}
		return ep
	}
	w.Pair = iptest.NewPair(t, pc)
	return w
}

// connect starts srv, an app on b listening on port 80, and cli, an app on a connected to
// it, and runs the handshake: cli.c is the client's PCB (nil if it did not connect).
func (w *world) connect() (srv, cli *app) {
	w.T.Helper()
	srv, cli = newApp(w.b), newApp(w.a)
	listen(w.T, w.b, 80, srv)
	dial(w.T, w.a, netip.AddrPortFrom(addrB, 80), cli)
	w.Run(time.Millisecond)
	return srv, cli
}
