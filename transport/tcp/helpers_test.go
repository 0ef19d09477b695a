package tcp

import (
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/impair"
	"github.com/wispstack/wisp/link/pcap"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

var (
	addrA  = netip.MustParseAddr("198.18.0.1")
	addrB  = netip.MustParseAddr("198.18.0.2")
	addrA6 = netip.MustParseAddr("fd42:5eed::1")
	addrB6 = netip.MustParseAddr("fd42:5eed::2")
)

// testOpts is a tunnel-like configuration sized for tests.
func testOpts() opt.Options {
	o := opt.Tunnel()
	o.MemSize = 8 << 20
	o.PbufPoolSize = 2048
	o.PbufPoolBufSize = 2048
	o.MempNumPbuf = 4096
	o.MempNumPbufRAM = 4096
	o.MempNumTCPPCB = 64
	o.MempNumTCPPCBListen = 8
	o.MempNumTCPSeg = 8192
	o.TCPSndBuf = 1 << 20
	o.TCPSndQueueLen = 4 * (1 << 20) / 1460
	o.MempNumReassData = 8
	o.IPReassMaxPbufs = 64
	o.MempNumFragPbuf = 64
	o.ND6NumNeighbors = 8
	o.MempNumND6Queue = 16
	o.ARPTableSize = 8
	o.MempNumARPQueue = 64
	o.IPv6AutoConfig = false
	o.IPv6DupAddrDetectTransmits = 0
	return o
}

// coreLock is a node's core lock: releasing it flushes the IP layer, as the stack's does.
type coreLock struct {
	mu sync.Mutex
	n  *node
}

func (c *coreLock) Lock() { c.mu.Lock() }
func (c *coreLock) Unlock() {
	if c.n.ip != nil {
		c.n.ip.Flush()
	}
	c.mu.Unlock()
}

// node is one TCP/IP instance: allocator, pools, timers, ip.Layer, Proto, one netif.
type node struct {
	t      testing.TB
	core   coreLock
	timers *clock.Timeouts
	alloc  *pbuf.Allocator
	pools  memp.Table
	ip     *ip.Layer
	tcp    *Proto
	nif    *ip.Netif
	opts   opt.Options
}

func newNode(t testing.TB, clk clock.Clock, o opt.Options, seed uint64) *node {
	t.Helper()
	n := &node{t: t, opts: o}
	n.core.n = n
	n.timers = clock.NewTimeouts(clk, &n.core)
	n.alloc = pbuf.NewAllocator(pbuf.Config{PoolCount: o.PbufPoolSize, PoolBufSize: o.PbufPoolBufSize,
		HeapSize: o.MemSize, RefCount: o.MempNumPbuf, RAMCount: o.MempNumPbufRAM})
	n.alloc.Register(&n.pools)
	l, err := ip.New(ip.Config{Options: o, Alloc: n.alloc, Timers: n.timers, Pools: &n.pools, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	n.ip = l
	p, err := New(Config{Options: o, IP: l, Alloc: n.alloc, Timers: n.timers, Pools: &n.pools, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	n.tcp = p
	l.RegisterTransport(wire.ProtoTCP, p)
	return n
}

// attach adds a netif over ep with the given addresses.
func (n *node) attach(ep link.Endpoint, addrs ...netip.Prefix) {
	n.t.Helper()
	n.core.Lock()
	defer n.core.Unlock()
	nif, err := n.ip.AddNetif(ep, ip.NetifConfig{})
	if err != nil {
		n.t.Fatal(err)
	}
	for _, a := range addrs {
		if err := nif.AddAddr(a); err != nil {
			n.t.Fatal(err)
		}
	}
	nif.SetUp(true)
	n.nif = nif
	ep.Attach(&disp{n})
}

// do runs fn in n's core context.
func (n *node) do(fn func()) {
	n.core.Lock()
	defer n.core.Unlock()
	fn()
}

// close closes TCP and IP and checks that nothing is left behind.
func (n *node) close() {
	n.t.Helper()
	n.core.Lock()
	n.tcp.Close()
	if c, l := n.tcp.NumPCBs(); c != 0 || l != 0 {
		n.t.Errorf("after Close: %d PCBs, %d listeners in use", c, l)
	}
	n.ip.Close()
	n.core.Unlock()
	n.timers.Close()
	for _, p := range n.pools.Snapshot(nil) {
		if p.Used != 0 {
			n.t.Errorf("pool %s: %d in use", p.Name, p.Used)
		}
	}
	if h := n.alloc.HeapStats(); h.Used != 0 {
		n.t.Errorf("heap: %d bytes in use", h.Used)
	}
}

func (n *node) stats() stats.Snapshot {
	var s stats.Snapshot
	n.core.Lock()
	n.tcp.Stats(&s)
	n.core.Unlock()
	return s
}

type disp struct{ n *node }

func (d *disp) AllocRx(size int) *pbuf.Pbuf {
	p, err := d.n.alloc.Alloc(pbuf.LayerRaw, size, pbuf.POOL)
	if err != nil {
		return nil
	}
	return p
}

func (d *disp) DeliverPackets(pkts []*pbuf.Pbuf) {
	d.n.core.Lock()
	defer d.n.core.Unlock()
	for _, p := range pkts {
		d.n.nif.Input(p)
	}
}

// world is two nodes joined by a sync pipe (optionally impaired), on one fake clock.
type world struct {
	t        testing.TB
	clk      *clock.Fake
	a, b     *node
	pa, pb   *pipe.End
	ia, ib   *impair.Link
	base     int
	closedUp bool
}

type worldCfg struct {
	opts   opt.Options
	optsB  *opt.Options
	mtu    int
	medium link.Medium
	impA   *impair.Config // impairment on a's side (TX = a→b)
}

func newWorld(t testing.TB, cfg worldCfg) *world {
	t.Helper()
	if cfg.opts == (opt.Options{}) {
		cfg.opts = testOpts()
	}
	if cfg.mtu == 0 {
		cfg.mtu = 1500
	}
	if cfg.medium == 0 {
		cfg.medium = link.MediumIP
	}
	w := &world{t: t, clk: clock.NewFake(time.Unix(1_700_000_000, 0)), base: runtime.NumGoroutine()}
	ob := cfg.opts
	if cfg.optsB != nil {
		ob = *cfg.optsB
	}
	w.a = newNode(t, w.clk, cfg.opts, 1)
	w.b = newNode(t, w.clk, ob, 2)
	w.pa, w.pb = pipe.New(pipe.Config{MTU: cfg.mtu, Medium: cfg.medium, Sync: true, QueueLen: 4096})
	var ea link.Endpoint = w.pa
	if cfg.impA != nil {
		c := *cfg.impA
		c.Alloc = w.a.alloc
		w.ia = impair.New(w.pa, w.clk, c)
		ea = w.ia
	}
	w.a.attach(ea, netip.PrefixFrom(addrA, 24), netip.PrefixFrom(addrA6, 64))
	var eb link.Endpoint = w.pb
	if f := os.Getenv("WISP_PCAP"); f != "" {
		// Debugging aid: capture what B sees (after impairment) and sends.
		fh, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		pl, err := pcap.Wrap(w.pb, fh, 128, pcap.WithClock(w.clk), pcap.WithNanoseconds())
		if err != nil {
			t.Fatal(err)
		}
		eb = pl
		t.Cleanup(func() { fh.Close() })
	}
	w.b.attach(eb, netip.PrefixFrom(addrB, 24), netip.PrefixFrom(addrB6, 64))
	t.Cleanup(w.close)
	return w
}

func (w *world) close() {
	if w.closedUp {
		return
	}
	w.closedUp = true
	w.pump()
	w.a.close()
	w.b.close()
	if w.ia != nil {
		w.ia.Close()
	} else {
		w.pa.Close()
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > w.base && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > w.base {
		w.t.Errorf("%d goroutines left", n-w.base)
	}
}

// pump moves frames until the pipe is quiet.
func (w *world) pump() {
	for i := 0; i < 100000; i++ {
		if w.pa.Flush() == 0 {
			return
		}
	}
}

// run advances the fake clock by d in steps no longer than the next timer, pumping frames
// in between.
func (w *world) run(d time.Duration) {
	end := w.clk.Now().Add(d)
	w.pump()
	for w.clk.Now().Before(end) {
		step := end.Sub(w.clk.Now())
		if next, ok := w.clk.Next(); ok && next < step {
			step = max(next, 0)
		}
		w.clk.Advance(step)
		w.pump()
	}
}

// until runs the clock until cond holds (checked after every step) or limit passes.
func (w *world) until(limit time.Duration, cond func() bool) bool {
	end := w.clk.Now().Add(limit)
	w.pump()
	for !cond() {
		if !w.clk.Now().Before(end) {
			return false
		}
		step := end.Sub(w.clk.Now())
		if next, ok := w.clk.Next(); ok && next < step {
			step = max(next, 0)
		}
		w.clk.Advance(step)
		w.pump()
	}
	return true
}
