package iptest

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
)

// Core is a Node's core lock, as the stack's: Unlock first flushes the IP layer (each
// netif's batch, looped packets), and Held lets clock.Timeouts.AssertCore check that the
// layers are called with it held (in builds with the wispcheck tag).
type Core struct {
	mu   sync.Mutex
	held atomic.Bool
	ip   *ip.Layer
}

// Lock takes the lock.
func (c *Core) Lock() {
	c.mu.Lock()
	c.held.Store(true)
}

// Unlock flushes the IP layer and releases the lock.
func (c *Core) Unlock() {
	if c.ip != nil {
		c.ip.Flush()
	}
	c.held.Store(false)
	c.mu.Unlock()
}

// Held reports whether the lock is held (clock.CoreLocker).
func (c *Core) Held() bool { return c.held.Load() }

// Node is one IP instance with its own allocator, pool table, timers and core lock: what
// stack.New builds, without the transports. A test registers its transport on IP, closes
// it with OnClose, and attaches links with Attach.
type Node struct {
	T      testing.TB
	Core   Core
	Timers *clock.Timeouts
	Alloc  *pbuf.Allocator
	Pools  memp.Table
	IP     *ip.Layer
	// Netif is the first netif Attach added.
	Netif *ip.Netif
	Opts  opt.Options

	closers []func()
	closed  bool
}

// TransportConfig is what a transport (TCP, UDP, raw) above n's layer is built with; seed
// is the transport's own.
func (n *Node) TransportConfig(seed uint64) ip.TransportConfig {
	return ip.TransportConfig{Options: n.Opts, IP: n.IP, Alloc: n.Alloc, Timers: n.Timers, Pools: &n.Pools, Seed: seed}
}

// NewNode builds a Node with options o on clk; seed seeds the IP layer (IDs, ND delays).
func NewNode(t testing.TB, clk clock.Clock, o opt.Options, seed uint64) *Node {
	t.Helper()
	n := &Node{T: t, Opts: o}
	n.Timers = clock.NewTimeouts(clk, &n.Core)
	n.Alloc = pbuf.NewAllocator(pbuf.Config{PoolCount: o.PbufPoolSize, PoolBufSize: o.PbufPoolBufSize,
		HeapSize: o.MemSize, RefCount: o.MempNumPbuf, RAMCount: o.MempNumPbufRAM})
	n.Alloc.Register(&n.Pools)
	l, err := ip.New(ip.Config{Options: o, Alloc: n.Alloc, Timers: n.Timers, Pools: &n.Pools, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	n.IP = l
	n.Core.ip = l
	return n
}

// Attach adds an up netif over ep with addrs, attaches ep to a dispatcher that feeds it
// (in core context) and returns it. A failure fails the test.
func (n *Node) Attach(ep link.Endpoint, addrs ...netip.Prefix) *ip.Netif {
	n.T.Helper()
	n.Core.Lock()
	defer n.Core.Unlock()
	nif, err := n.IP.AddNetif(ep, ip.NetifConfig{})
	if err != nil {
		n.T.Fatal(err)
	}
	for _, a := range addrs {
		if err := nif.AddAddr(a); err != nil {
			n.T.Fatalf("AddAddr %v: %v", a, err)
		}
	}
	nif.SetUp(true)
	if n.Netif == nil {
		n.Netif = nif
	}
	ep.Attach(&dispatcher{n: n, nif: nif})
	return nif
}

// Do runs fn in n's core context.
func (n *Node) Do(fn func()) {
	n.Core.Lock()
	defer n.Core.Unlock()
	fn()
}

// OnClose registers fn (a transport's Close) to run in core context when n closes, before
// the IP layer closes; the last registered runs first.
func (n *Node) OnClose(fn func()) { n.closers = append(n.closers, fn) }

// Close closes what OnClose registered and the IP layer, then checks that nothing is left:
// no timer scheduled, every pool and the heap empty. Closing twice does nothing.
func (n *Node) Close() {
	n.T.Helper()
	if n.closed {
		return
	}
	n.closed = true
	n.Core.Lock()
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
	n.IP.Close()
	n.Core.Unlock()
	if k := n.Timers.Len(); k != 0 {
		n.T.Errorf("%d timers scheduled after Close", k)
	}
	n.Timers.Close()
	linktest.CheckEmpty(n.T, &n.Pools, n.Alloc)
}

// Inject delivers b to nif as one received frame, in core context.
func (n *Node) Inject(nif *ip.Netif, b []byte) {
	n.T.Helper()
	p, err := n.Alloc.Alloc(pbuf.LayerRaw, len(b), pbuf.POOL)
	if err != nil {
		n.T.Fatalf("a %d-byte frame: %v", len(b), err)
	}
	_ = p.CopyIn(b, 0)
	n.Do(func() { nif.Input(p) })
}

// dispatcher feeds a netif from its link, as the stack's does.
type dispatcher struct {
	n   *Node
	nif *ip.Netif
}

func (d *dispatcher) AllocRx(size int) *pbuf.Pbuf {
	p, err := d.n.Alloc.Alloc(pbuf.LayerRaw, size, pbuf.POOL)
	if err != nil {
		return nil
	}
	return p
}

func (d *dispatcher) DeliverPackets(pkts []*pbuf.Pbuf) {
	d.n.Core.Lock()
	defer d.n.Core.Unlock()
	for _, p := range pkts {
		d.nif.Input(p)
	}
}
