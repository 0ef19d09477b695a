package main

import (
	"fmt"
	"net/netip"
	"sync"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stats"
)

// wispEngine is wisp with its tunnel preset (opt.Tunnel()), driven through the raw TCP API
// in core context (wconn). The only change to the preset: TCP_PCB is raised when a
// scenario holds more connections than the preset has PCBs, and the table says so.
type wispEngine struct{}

func (wispEngine) name() string    { return "wisp" }
func (wispEngine) missing() string { return "" }

type wispNet struct {
	a, b   *stack.Stack
	ea, eb *wispEndpoint
	l      *sharedLink
	adjust []string
}

func (wispEngine) open(cfg netConfig) (network, error) {
	if cfg.WireGuard != wgNone {
		return openWG(true, cfg)
	}
	if cfg.TUN != tunNone {
		return openTUN(cfg, openWispTUN(cfg.Offload))
	}
	o := opt.Tunnel()
	n := &wispNet{}
	// Each stack holds cfg.Conns connections; TIME-WAIT PCBs are recycled when the pool runs
	// out, so only live connections need a slot.
	if need := cfg.Conns + 64; need > o.MempNumTCPPCB {
		n.adjust = append(n.adjust, fmt.Sprintf("MempNumTCPPCB %d → %d (the scenario holds %d connections per stack)",
			o.MempNumTCPPCB, need, cfg.Conns))
		o.MempNumTCPPCB = need
	}
	mtu := cfg.MTU
	var off link.Offloads
	if cfg.LargeSegments {
		off = largeOffloads
		n.adjust = append(n.adjust, largeNote)
	}
	var err error
	if c := coresOf(); c > 1 {
		n.adjust = append(n.adjust, fmt.Sprintf("%d cores per stack (stack.Config.Cores)", c))
	}
	if n.a, err = stack.New(stack.Config{Options: o, Cores: coresOf()}); err != nil {
		return nil, err
	}
	if n.b, err = stack.New(stack.Config{Options: o, Cores: coresOf()}); err != nil {
		n.a.Close()
		return nil, err
	}
	n.ea = &wispEndpoint{mtu: mtu, off: off}
	n.eb = &wispEndpoint{mtu: mtu, off: off}
	n.l = newLink(linkConfig{MTU: mtu, Impair: cfg.Impair}, n.ea, n.eb)
	n.ea.out, n.eb.out = n.l.ab, n.l.ba
	for _, x := range []struct {
		s    *stack.Stack
		ep   *wispEndpoint
		addr netip.Addr
	}{{n.a, n.ea, addrA}, {n.b, n.eb, addrB}} {
		if _, err := x.s.AddNetif(x.ep, stack.NetifConfig{Name: "bench0", Addrs: []netip.Prefix{netip.PrefixFrom(x.addr, 24)}}); err != nil {
			n.close()
			return nil, err
		}
	}
	n.l.start()
	return n, nil
}

func (n *wispNet) listen(port uint16) (listener, error) {
	return wispListen(n.b, netip.AddrPortFrom(addrB, port))
}

func (n *wispNet) dial(port uint16) (conn, error) {
	return wispDial(n.a, netip.AddrPortFrom(addrB, port))
}

func (n *wispNet) packets() uint64 {
	return n.l.ab.stats.Packets.Load() + n.l.ba.stats.Packets.Load()
}

func (n *wispNet) linkSummary() string { return n.l.summary() }

func (n *wispNet) notes() []string { return n.adjust }

// memory sums both stacks' pools and heap: what is in use now and what was reserved.
func (n *wispNet) memory() engineMemory {
	var m engineMemory
	for _, s := range []*stack.Stack{n.a, n.b} {
		m.add(s)
	}
	return m
}

func (n *wispNet) close() error {
	if n.l != nil {
		n.l.close()
	}
	for _, s := range []*stack.Stack{n.a, n.b} {
		if s != nil {
			s.Close()
		}
	}
	return nil
}

var _ = stats.Snapshot{}

// largeOffloads is what wisp's side of the link offers in the large-segment variant: what
// a NIC with TSO (or a TUN with a virtio-net header) offers, and what gVisor's side asks
// for with host GSO (gvEndpoint).
var largeOffloads = link.Offloads{TxChecksum: true, TSO4: true, TSO6: true, GSOMax: 0xffff}

const largeNote = "large-segment variant: a 1500-byte MTU link that takes GSO packets of up to 64 KiB whole (TSO4/TSO6, checksum offload: link.Offloader); the link completes their checksum at delivery and the receiver gets each as one coalesced segment (pbuf.SetGSO, FlagChecksumOK)"

// wispEndpoint is wisp's side of the shared link: a link.Endpoint (MediumIP, like a TUN) that
// puts the stack's frames on the link by reference and receives by copying into POOL chains
// from the stack's AllocRx. In the large-segment variant it offers TSO (off): GSO packets
// cross the link whole, and on delivery their partial checksum is completed (what the NIC
// would do, and what gvEndpoint does for gVisor) and they are marked as coalesced segments
// whose checksum is known good, as a virtio-net receive path marks them.
type wispEndpoint struct {
	mtu int
	off link.Offloads
	out *direction

	mu   sync.RWMutex
	disp link.Dispatcher // guarded by mu
	rx   []*pbuf.Pbuf    // delivery scratch; used by the delivery goroutine only
}

var (
	_ link.Endpoint  = (*wispEndpoint)(nil)
	_ link.TxRoomer  = (*wispEndpoint)(nil)
	_ link.Offloader = (*wispEndpoint)(nil)
)

// Offloads implements link.Offloader: none but in the large-segment variant.
func (e *wispEndpoint) Offloads() link.Offloads { return e.off }

// TxRoom implements link.TxRoomer, as wisp's own links (pipe, impair, the WireGuard device)
// do: the free slots of the link's queue, so TCP waits instead of overflowing it.
func (e *wispEndpoint) TxRoom() int {
	d := e.out
	d.lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0
	}
	return len(d.ring) - d.n
}

func (e *wispEndpoint) Medium() link.Medium   { return link.MediumIP }
func (e *wispEndpoint) MTU() int              { return e.mtu }
func (e *wispEndpoint) HardwareAddr() [6]byte { return [6]byte{} }
func (e *wispEndpoint) Close() error          { return nil }
func (e *wispEndpoint) release(owner any)     { owner.(*pbuf.Pbuf).Free() }
func (e *wispEndpoint) Attach(d link.Dispatcher) {
	e.mu.Lock()
	e.disp = d
	e.mu.Unlock()
}

// WritePackets takes ownership of every frame: queued by reference, or freed when the
// queue is full (counted by the link; errs.WouldBlock).
func (e *wispEndpoint) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	d := e.out
	n := 0
	var err error
	d.lock()
	for _, p := range pkts {
		typ, size := p.GSO()
		f := d.slot(p.TotLen(), typ != pbuf.GSONone)
		if f == nil {
			p.Free()
			err = errs.WouldBlock
			continue
		}
		for q := p; q != nil; q = q.Next() {
			if q.Len() > 0 {
				f.parts = append(f.parts, q.Payload())
			}
		}
		f.gso, f.gsoSize = typ, size
		f.linkCsum = p.Flags()&pbuf.FlagChecksumPartial != 0
		f.owner = p
		n++
	}
	d.unlock()
	return n, err
}

// deliver copies each frame into a POOL chain of the receiving stack (the one copy) and
// delivers the batch under one hold of its core lock.
func (e *wispEndpoint) deliver(frames []frame) {
	e.mu.RLock()
	d := e.disp
	e.mu.RUnlock()
	if d == nil {
		return
	}
	out := e.rx[:0]
	for i := range frames {
		f := &frames[i]
		p := d.AllocRx(f.size)
		if p == nil {
			continue // counted by the stack as a LINK memerr
		}
		if p.TotLen() > f.size {
			p.Shrink(f.size)
		}
		off := 0
		for _, part := range f.parts {
			_ = p.CopyIn(part, off)
			off += len(part)
		}
		if f.linkCsum && ip.CompleteChecksum(p, 0) {
			// The work a NIC does, as gVisor's side does in prepareGSO; a packet it cannot
			// parse stays unmarked, and the receiver drops it for its checksum.
			p.SetFlags(p.Flags() | pbuf.FlagChecksumOK)
		}
		if f.gso != pbuf.GSONone {
			p.SetGSO(f.gso, f.gsoSize)
		}
		out = append(out, p)
	}
	if len(out) > 0 {
		d.DeliverPackets(out)
		clear(out)
	}
	e.rx = out[:0]
}
