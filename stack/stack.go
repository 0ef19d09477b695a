package stack

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/ip/gro"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/transport/raw"
	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/transport/udp"
	"github.com/wispstack/wisp/wire"
)

// Config creates a Stack.
type Config struct {
	// Options sizes everything; the zero value means opt.Tunnel().
	Options opt.Options
	// Clock drives timers; nil means clock.Real. Tests pass a clock.Fake.
	Clock clock.Clock
	// Seed seeds the stack's pseudo-random choices (IP IDs, ND delays); 0 picks one from
	// the clock so two stacks differ. Tests fix it.
	Seed uint64
}

// Stack is one instance of wisp.
type Stack struct {
	core    core
	opts    opt.Options
	alloc   *pbuf.Allocator
	pools   memp.Table
	timers  *clock.Timeouts
	ip      *ip.Layer
	tcp     *tcp.Proto
	udp     *udp.Proto
	raw     *raw.Proto
	netifs  []*Netif
	closed  bool
	onClose []func() // core context, run first by Close (OnClose)

	closeOnce sync.Once
}

// New creates a stack, reserving all its memory at once. It fails if the options do not
// validate.
func New(c Config) (*Stack, error) {
	o := c.Options
	if o == (opt.Options{}) {
		o = opt.Tunnel()
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if c.Clock == nil {
		c.Clock = clock.Real
	}
	// TCP's secrets (ISNs, SYN cookies, port choice; RFC 6528, RFC 4987, RFC 6056) must be
	// unpredictable: from crypto/rand unless a test fixed the seed.
	tcpSeed := c.Seed
	if tcpSeed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		tcpSeed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	if c.Seed == 0 {
		c.Seed = uint64(c.Clock.Now().UnixNano()) | 1
	}
	s := &Stack{opts: o}
	s.alloc = pbuf.NewAllocator(allocConfig(o))
	s.alloc.Register(&s.pools)
	s.timers = clock.NewTimeouts(c.Clock, &s.core)
	// A failure closes what was built so far, last first.
	var built []interface{ Close() }
	fail := func(err error) (*Stack, error) {
		for i := len(built) - 1; i >= 0; i-- {
			built[i].Close()
		}
		return nil, fmt.Errorf("wisp: %w", err)
	}
	l, err := ip.New(ip.Config{Options: o, Alloc: s.alloc, Timers: s.timers, Pools: &s.pools, Seed: c.Seed})
	if err != nil {
		return fail(err)
	}
	s.ip, built = l, append(built, l)
	// The transports are built from the layer's parts, each with its own seed.
	tc := ip.TransportConfig{Options: o, IP: l, Alloc: s.alloc, Timers: s.timers, Pools: &s.pools, Seed: tcpSeed}
	if s.tcp, err = tcp.New(tc); err != nil {
		return fail(err)
	}
	built = append(built, s.tcp)
	l.RegisterTransport(wire.ProtoTCP, s.tcp)
	// UDP's ephemeral ports (RFC 6056) are as secret as TCP's: the same seed, another key.
	tc.Seed = splitSeed(tcpSeed, 0x756470)
	if s.udp, err = udp.New(tc); err != nil {
		return fail(err)
	}
	built = append(built, s.udp)
	l.RegisterTransport(wire.ProtoUDP, s.udp)
	tc.Seed = splitSeed(tcpSeed, 0x726177)
	if s.raw, err = raw.New(tc); err != nil {
		return fail(err)
	}
	l.SetRaw(s.raw)
	s.core.flush = l.Flush
	return s, nil
}

// splitSeed derives an independent seed for one user of a stack's seed (splitmix64).
func splitSeed(seed, salt uint64) uint64 {
	z := seed + salt*0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func allocConfig(o opt.Options) pbuf.Config {
	return pbuf.Config{
		PoolCount:   o.PbufPoolSize,
		PoolBufSize: o.PbufPoolBufSize,
		HeapSize:    o.MemSize,
		RefCount:    o.MempNumPbuf,
		RAMCount:    o.MempNumPbufRAM,
	}
}

// Options returns the options the stack was created with.
func (s *Stack) Options() opt.Options { return s.opts }

// Allocator returns the stack's pbuf allocator (safe for concurrent use).
func (s *Stack) Allocator() *pbuf.Allocator { return s.alloc }

// Timers returns the stack's timer queue; use it in core context only.
func (s *Stack) Timers() *clock.Timeouts { return s.timers }

// IP returns the IP layer; use it in core context only (inside Callback or a protocol
// callback).
func (s *Stack) IP() *ip.Layer { return s.ip }

// TCP returns the stack's TCP; use its raw API in core context only (inside Lock/Unlock,
// Callback or a TCP callback).
func (s *Stack) TCP() *tcp.Proto { return s.tcp }

// UDP returns the stack's UDP; use its raw API in core context only (inside Lock/Unlock,
// Callback or a UDP callback).
func (s *Stack) UDP() *udp.Proto { return s.udp }

// Raw returns the stack's raw and ping PCBs; use them in core context only.
func (s *Stack) Raw() *raw.Proto { return s.raw }

// Pools returns the stack's pool table (safe for concurrent use).
func (s *Stack) Pools() *memp.Table { return &s.pools }

// Close removes every netif, closes their links, cancels every timer and frees every
// queued packet. After Close the stack's pools are back to zero unless a caller still holds
// a pbuf. Close is idempotent.
func (s *Stack) Close() error {
	var eps []link.Endpoint
	s.closeOnce.Do(func() {
		s.core.Lock()
		s.closed = true
		for _, n := range s.netifs {
			n.ep.Attach(nil)
			eps = append(eps, n.ep)
		}
		for _, fn := range s.onClose {
			fn()
		}
		s.onClose = nil
		s.tcp.Close()
		s.udp.Close()
		s.raw.Close()
		s.ip.Close()
		s.timers.Close()
		s.netifs = nil
		s.core.Unlock()
	})
	var errsOut []error
	for _, ep := range eps {
		if err := ep.Close(); err != nil {
			errsOut = append(errsOut, err)
		}
	}
	return errors.Join(errsOut...)
}

// NetifConfig configures a netif added with AddNetif.
type NetifConfig struct {
	// Name is the netif's name in stats and errors ("wisp0" style); empty picks one.
	Name string
	// MTU overrides the link's MTU when smaller; 0 uses the link's.
	MTU int
	// Addrs are added when the netif comes up.
	Addrs []netip.Prefix
	// Down leaves the netif down (default: up at once).
	Down bool
}

// Netif is a network interface of a stack. Its methods are safe for concurrent use.
type Netif struct {
	s        *Stack
	n        *ip.Netif
	ep       link.Endpoint
	rxMemErr atomic.Uint64
	gro      *gro.Engine // software GRO of delivered batches (Options.GRO, MediumIP); core context
}

// AddNetif attaches a link to the stack. The stack takes ownership of ep: it closes it on
// Close or RemoveNetif.
func (s *Stack) AddNetif(ep link.Endpoint, c NetifConfig) (*Netif, error) {
	s.core.Lock()
	defer s.core.Unlock()
	if s.closed {
		return nil, errs.Clsd
	}
	if c.Name == "" {
		c.Name = fmt.Sprintf("wisp%d", len(s.netifs))
	}
	n, err := s.ip.AddNetif(ep, ip.NetifConfig{Name: c.Name, MTU: c.MTU})
	if err != nil {
		return nil, fmt.Errorf("wisp: add netif %s: %w", c.Name, err)
	}
	nif := &Netif{s: s, n: n, ep: ep}
	if s.opts.GRO && ep.Medium() == link.MediumIP {
		nif.gro = new(gro.Engine)
	}
	for _, p := range c.Addrs {
		if err := n.AddAddr(p); err != nil {
			s.ip.RemoveNetif(n)
			return nil, fmt.Errorf("wisp: netif %s: address %v: %w", c.Name, p, err)
		}
	}
	if !c.Down {
		n.SetUp(true)
	}
	s.netifs = append(s.netifs, nif)
	ep.Attach(nif)
	return nif, nil
}

// RemoveNetif detaches and closes the netif's link. Its addresses go with it, and with them
// (unless Options.TCPKeepConnWhenIPChanges) the TCP connections bound to them.
func (s *Stack) RemoveNetif(nif *Netif) error {
	s.core.Lock()
	i := -1
	for j, n := range s.netifs {
		if n == nif {
			i = j
		}
	}
	if i < 0 {
		s.core.Unlock()
		return errs.Val
	}
	s.netifs = append(s.netifs[:i], s.netifs[i+1:]...)
	nif.ep.Attach(nil)
	addrs := nif.n.Addrs()
	err := s.ip.RemoveNetif(nif.n)
	if err == nil {
		for _, a := range addrs {
			s.addrRemoved(a.Prefix.Addr())
		}
	}
	s.core.Unlock()
	return errors.Join(err, nif.ep.Close())
}

// Netifs lists the stack's netifs.
func (s *Stack) Netifs() []*Netif {
	s.core.Lock()
	defer s.core.Unlock()
	return append([]*Netif(nil), s.netifs...)
}

// AllocRx implements link.Dispatcher: a POOL chain for one received frame, owned by the
// caller (the link) until it passes it to DeliverPackets; nil when the pool is exhausted
// (counted as a LINK memerr).
func (n *Netif) AllocRx(size int) *pbuf.Pbuf {
	p, err := n.s.alloc.Alloc(pbuf.LayerRaw, size, pbuf.POOL)
	if err != nil {
		n.rxMemErr.Add(1)
		return nil
	}
	return p
}

// DeliverPackets implements link.Dispatcher: the batch runs through the protocols under one
// hold of the core lock, and TCP acknowledges in-order data once per connection for the
// whole batch (tcp.Proto.BeginBatch). Takes ownership of every pbuf.
func (n *Netif) DeliverPackets(pkts []*pbuf.Pbuf) {
	s := n.s
	s.core.Lock()
	defer s.core.Unlock()
	if s.closed {
		for _, p := range pkts {
			p.Free()
		}
		return
	}
	if len(pkts) == 1 {
		n.countRxGSO(pkts)
		n.n.Input(pkts[0])
		return
	}
	n.countRxGSO(pkts)
	if n.gro != nil {
		pkts = n.gro.Coalesce(pkts, s.ip.OffloadStats())
	}
	s.tcp.BeginBatch()
	for _, p := range pkts {
		n.n.Input(p)
	}
	s.tcp.EndBatch()
}

// countRxGSO counts the coalesced packets the link delivered (a TUN's virtio-net GSO);
// core context.
func (n *Netif) countRxGSO(pkts []*pbuf.Pbuf) {
	st := n.s.ip.OffloadStats()
	for _, p := range pkts {
		if typ, _ := p.GSO(); typ != pbuf.GSONone {
			st.RxGSO++
		}
	}
}

// IP returns the ip-layer netif, for core-context code.
func (n *Netif) IP() *ip.Netif { return n.n }

// Name returns the netif's name.
func (n *Netif) Name() string { return n.n.Name() }

// Index returns the netif's index (1-based).
func (n *Netif) Index() int { return n.n.Index() }

// MTU returns the netif's MTU.
func (n *Netif) MTU() int {
	n.s.core.Lock()
	defer n.s.core.Unlock()
	return n.n.MTU()
}

// SetUp brings the netif up or down.
func (n *Netif) SetUp(up bool) {
	n.s.core.Lock()
	defer n.s.core.Unlock()
	n.n.SetUp(up)
}

// AddAddr adds an address with its prefix (198.18.0.1/24, fd42:5eed::1/64) and the
// connected route.
func (n *Netif) AddAddr(p netip.Prefix) error {
	n.s.core.Lock()
	defer n.s.core.Unlock()
	return n.n.AddAddr(p)
}

// RemoveAddr removes an address. Unless Options.TCPKeepConnWhenIPChanges, every TCP
// connection bound to it is aborted (its owner hears errs.Abrt).
func (n *Netif) RemoveAddr(a netip.Addr) error {
	n.s.core.Lock()
	defer n.s.core.Unlock()
	if err := n.n.RemoveAddr(a); err != nil {
		return err
	}
	n.s.addrRemoved(a)
	return nil
}

// addrRemoved runs in core context after address a left its netif: TCP connections bound
// to it are aborted unless the options keep them (esp-lwip's
// CONFIG_LWIP_TCP_KEEP_CONNECTION_WHEN_IP_CHANGES).
func (s *Stack) addrRemoved(a netip.Addr) {
	if !s.opts.TCPKeepConnWhenIPChanges {
		s.tcp.AbortLocal(a)
	}
}

// Addrs lists the netif's addresses with their state.
func (n *Netif) Addrs() []ip.AddrInfo {
	n.s.core.Lock()
	defer n.s.core.Unlock()
	return n.n.Addrs()
}

// Route is a routing table entry.
type Route struct {
	Dst     netip.Prefix
	Gateway netip.Addr // invalid: on-link
	Netif   *Netif
	Metric  int
}

// AddRoute adds a route (connected routes are added with addresses).
func (s *Stack) AddRoute(r Route) error {
	if r.Netif == nil {
		return errs.Arg
	}
	s.core.Lock()
	defer s.core.Unlock()
	return s.ip.AddRoute(ip.Route{Dst: r.Dst, Gateway: r.Gateway, Netif: r.Netif.n, Metric: r.Metric})
}

// RemoveRoute removes the route to dst through nif.
func (s *Stack) RemoveRoute(dst netip.Prefix, nif *Netif) error {
	s.core.Lock()
	defer s.core.Unlock()
	return s.ip.RemoveRoute(dst, nif.n)
}

// Routes lists the routing table.
func (s *Stack) Routes() []ip.Route {
	s.core.Lock()
	defer s.core.Unlock()
	return s.ip.Routes()
}

// TCPConns appends the Info of every TCP connection of the stack to dst and returns it:
// oldest first, TIME-WAIT included, listeners not, each with its armed timers named
// (Info.Timers) — what `ss -tin` shows of a kernel. It is the evidence a failing transfer
// test prints (stacktest.OnFail) and what a live view polls; it takes the core lock once
// for the whole list, so the connections are seen at one moment.
func (s *Stack) TCPConns(dst []tcp.Info) []tcp.Info {
	s.core.Lock()
	defer s.core.Unlock()
	s.tcp.Conns(func(i tcp.Info) { dst = append(dst, i) })
	return dst
}

// Stats returns a snapshot of every counter.
func (s *Stack) Stats() stats.Snapshot {
	s.core.Lock()
	defer s.core.Unlock()
	var snap stats.Snapshot
	s.ip.Stats(&snap)
	s.tcp.Stats(&snap)
	s.udp.Stats(&snap)
	for _, n := range s.netifs {
		m := n.rxMemErr.Load()
		snap.Link.Memerr += m
		snap.Link.Drop += m
	}
	snap.Heap = s.alloc.HeapStats()
	snap.Pools = s.pools.Snapshot(nil)
	snap.TimerWakeups = s.timers.Wakeups()
	return snap
}
