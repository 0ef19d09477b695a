package ip

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

// env is one Layer with its own allocator, pool table and fake clock: an iptest.Node, which
// these internal tests cannot import (ip/iptest imports ip) and which would hide what they
// read of the layer's internals (netif and group state, options, the clock). A test of ip
// through its exported API alone belongs in package ip_test on iptest (route_test.go);
// links that record are linktest.Capture.
type env struct {
	t      testing.TB
	clk    *clock.Fake
	core   sync.Mutex
	timers *clock.Timeouts
	alloc  *pbuf.Allocator
	pools  memp.Table
	l      *Layer
}

func testOptions() opt.Options {
	o := opt.Tunnel()
	o.PbufPoolSize = 256
	o.PbufPoolBufSize = 592 // full-size frames become chains
	o.MemSize = 512 << 10
	o.MempNumPbuf = 256
	o.MempNumPbufRAM = 256
	o.MempNumReassData = 8
	o.IPReassMaxPbufs = 64
	o.MempNumFragPbuf = 128
	o.ND6NumNeighbors = 8
	o.MempNumND6Queue = 16
	o.ICMPRateLimit = 1000
	o.ICMPRateBurst = 100
	o.IPv6AutoConfig = false
	return o
}

func newEnv(t testing.TB, o opt.Options, seed uint64) *env {
	t.Helper()
	e := &env{t: t, clk: clock.NewFake(time.Unix(1_000_000_000, 0))}
	e.timers = clock.NewTimeouts(e.clk, &e.core)
	e.alloc = pbuf.NewAllocator(pbuf.Config{PoolCount: o.PbufPoolSize, PoolBufSize: o.PbufPoolBufSize,
		HeapSize: o.MemSize, RefCount: o.MempNumPbuf, RAMCount: o.MempNumPbufRAM})
	e.alloc.Register(&e.pools)
	l, err := New(Config{Options: o, Alloc: e.alloc, Timers: e.timers, Pools: &e.pools, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	e.l = l
	return e
}

// close closes the layer and checks that nothing is left: pools, heap, timers.
func (e *env) close() {
	e.t.Helper()
	e.l.Close()
	if n := e.timers.Len(); n != 0 {
		e.t.Errorf("%d timers scheduled after Close", n)
	}
	linktest.CheckEmpty(e.t, &e.pools, e.alloc)
}

func (e *env) stats() stats.Snapshot {
	var s stats.Snapshot
	e.l.Stats(&s)
	return s
}

// addNetif adds a netif over ep with addrs and sets it up. A failure fails the test: a
// fuzz target whose setup broke must not pass.
func (e *env) addNetif(ep link.Endpoint, addrs ...netip.Prefix) *Netif {
	e.t.Helper()
	n, err := e.l.AddNetif(ep, NetifConfig{})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, a := range addrs {
		if err := n.AddAddr(a); err != nil {
			e.t.Fatalf("AddAddr %v: %v", a, err)
		}
	}
	n.SetUp(true)
	return n
}

// disp feeds a netif from a link, as the stack will.
type disp struct {
	e *env
	n *Netif
}

func (d *disp) AllocRx(n int) *pbuf.Pbuf {
	p, err := d.e.alloc.Alloc(pbuf.LayerRaw, n, pbuf.POOL)
	if err != nil {
		return nil
	}
	return p
}

func (d *disp) DeliverPackets(pkts []*pbuf.Pbuf) {
	d.e.core.Lock()
	defer d.e.core.Unlock()
	for _, p := range pkts {
		d.n.Input(p)
	}
	d.e.l.Flush()
}

// pair is two envs joined by a sync pipe whose writes are tapped.
type pair struct {
	a, b   *env
	na, nb *Netif
	ea, eb *pipe.End
	ta, tb *tapEP
}

func newPair(t *testing.T, medium link.Medium, mtu int, o opt.Options) *pair {
	t.Helper()
	return newPairSeeded(t, medium, mtu, o, 1, 2)
}

// newPairSeeded is newPair with the seeds of the two layers.
func newPairSeeded(t *testing.T, medium link.Medium, mtu int, o opt.Options, seedA, seedB uint64) *pair {
	t.Helper()
	base := linktest.Goroutines()
	p := &pair{a: newEnv(t, o, seedA), b: newEnv(t, o, seedB)}
	p.ea, p.eb = pipe.New(pipe.Config{MTU: mtu, Medium: medium, Sync: true})
	p.ta, p.tb = &tapEP{Endpoint: p.ea}, &tapEP{Endpoint: p.eb}
	var err error
	if p.na, err = p.a.l.AddNetif(p.ta, NetifConfig{}); err != nil {
		t.Fatal(err)
	}
	if p.nb, err = p.b.l.AddNetif(p.tb, NetifConfig{}); err != nil {
		t.Fatal(err)
	}
	p.ea.Attach(&disp{p.a, p.na})
	p.eb.Attach(&disp{p.b, p.nb})
	t.Cleanup(func() {
		p.ea.Close()
		p.a.close()
		p.b.close()
		linktest.CheckGoroutines(t, base)
	})
	return p
}

// pump flushes both layers and moves frames until the link is quiet (a few rounds: a
// delivery may queue looped packets for the next Flush).
func (p *pair) pump() {
	for range 4 {
		p.a.l.Flush()
		p.b.l.Flush()
		p.ea.Flush()
	}
}

// advance moves both clocks by d in 100 ms steps (running due timers), pumping after each.
func (p *pair) advance(d time.Duration) { p.steps(d, 100*time.Millisecond) }

// run moves both clocks by d in 10 ms steps, pumping after each.
func (p *pair) run(d time.Duration) { p.steps(d, 10*time.Millisecond) }

func (p *pair) steps(d, step time.Duration) {
	for s := time.Duration(0); s < d; s += step {
		p.a.clk.Advance(step)
		p.b.clk.Advance(step)
		p.pump()
	}
}

// inject delivers raw bytes to n as one received frame.
func (e *env) inject(n *Netif, b []byte) {
	e.t.Helper()
	p, err := e.alloc.Alloc(pbuf.LayerRaw, len(b), pbuf.POOL)
	if err != nil {
		e.t.Fatal(err)
	}
	_ = p.CopyIn(b, 0)
	n.Input(p)
	e.l.Flush()
}

var (
	v4A   = netip.MustParseAddr("198.18.0.1")
	v4B   = netip.MustParseAddr("198.18.0.2")
	v4Net = netip.MustParsePrefix("198.18.0.0/24")
	v6A   = netip.MustParseAddr("fd42:5eed::1")
	v6B   = netip.MustParseAddr("fd42:5eed::2")
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func mustPrefix(a netip.Addr, bits int) netip.Prefix { return netip.PrefixFrom(a, bits) }

// ipv4Packet builds an IPv4 packet with payload.
func ipv4Packet(src, dst netip.Addr, proto, ttl uint8, payload []byte) []byte {
	r := wire.IPv4Repr{TTL: ttl, Protocol: proto, Src: src, Dst: dst, PayloadLen: len(payload), ID: 7}
	b := make([]byte, r.HeaderLen()+len(payload))
	copy(b[r.HeaderLen():], payload)
	if err := r.Emit(b); err != nil {
		panic(err)
	}
	return b
}

// ipv6Packet builds an IPv6 packet; payload starts with the header named by nh.
func ipv6Packet(src, dst netip.Addr, nh, hop uint8, payload []byte) []byte {
	r := wire.IPv6Repr{NextHeader: nh, HopLimit: hop, Src: src, Dst: dst, PayloadLen: len(payload)}
	b := make([]byte, wire.IPv6HeaderLen+len(payload))
	copy(b[wire.IPv6HeaderLen:], payload)
	if err := r.Emit(b); err != nil {
		panic(err)
	}
	return b
}

// udpish is 8 bytes of fake transport header plus data.
func udpish(n int) []byte {
	b := make([]byte, 8+n)
	b[0], b[1], b[2], b[3] = 0x30, 0x39, 0x00, 0x35
	return b
}

// echo4 builds an ICMP echo request.
func echo4(id, seq uint16, data []byte) []byte {
	b := make([]byte, 8+len(data))
	copy(b[8:], data)
	r := wire.ICMPv4Repr{Type: wire.ICMPv4EchoRequest, Ident: id, Seq: seq, PayloadLen: len(data)}
	_ = r.Emit(b)
	return b
}

func echo6(src, dst netip.Addr, id, seq uint16, data []byte) []byte {
	b := make([]byte, 8+len(data))
	copy(b[8:], data)
	r := wire.ICMPv6Repr{Type: wire.ICMPv6EchoRequest, Ident: id, Seq: seq, PayloadLen: len(data)}
	_ = r.Emit(b, src, dst)
	return b
}

// recTransport records what a transport is given.
type recTransport struct {
	l        *Layer
	inputs   []Header
	data     [][]byte
	controls []ControlKind
	mtus     []int
	unreach  bool // answer every packet with port unreachable
}

func (r *recTransport) Input(h *Header, p *pbuf.Pbuf) {
	r.inputs = append(r.inputs, *h)
	r.data = append(r.data, p.Bytes(nil))
	if r.unreach {
		code := uint8(wire.ICMPv4PortUnreach)
		if h.Dst.Is6() {
			code = wire.ICMPv6PortUnreach
		}
		r.l.SendUnreachable(h, p, code)
	}
	p.Free()
}

func (r *recTransport) ControlInput(h *Header, kind ControlKind, mtu int, quoted []byte) {
	r.controls = append(r.controls, kind)
	r.mtus = append(r.mtus, mtu)
}

// sendUDP sends n bytes of fake transport data from e's layer.
func (e *env) sendUDP(src, dst netip.Addr, n int, o OutputOptions) error {
	p, err := e.alloc.Alloc(pbuf.LayerTransport, 8+n, pbuf.RAM)
	if err != nil {
		e.t.Fatal(err)
	}
	_ = p.CopyIn(udpish(n), 0)
	return e.l.Output(p, src, dst, wire.ProtoUDP, o)
}
