package stack

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/wispstack/wisp/apps/dhcp"
	"github.com/wispstack/wisp/apps/dhcp6"
	"github.com/wispstack/wisp/apps/dns"
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
	// Cores is how many cores carry the stack's TCP connections (see Core): 0 or 1 is
	// lwIP's single core context; more let connections run in parallel, each core with its
	// own lock, timers and share of the TCP_PCB and TCP_SEG pools. A link with several
	// transmit queues (link.MultiQueue) gets one core per queue on the way out; on an
	// Ethernet link every core keeps its own neighbour tables (see AddNetif).
	Cores int
}

// Stack is one instance of wisp.
type Stack struct {
	core     *coreLock // cores[0].lk: the lock of the netifs, routes, UDP, raw and Close
	cores    []*Core
	hashKey  uint64        // keys the flow hash that picks a connection's core
	nextCore atomic.Uint32 // the core ConnectOn tries next for a connection with no local endpoint
	opts     opt.Options
	alloc    *pbuf.Allocator
	pools    memp.Table // every core's pools, one line per ID
	// Core 0's parts, which a stack with one core is.
	timers  *clock.Timeouts
	ip      *ip.Layer
	tcp     *tcp.Proto
	udp     *udp.Proto
	raw     *raw.Proto
	netifs  []*Netif
	closed  bool
	onClose []func()                     // core context, run first by Close (OnClose)
	dns     atomic.Pointer[dns.Resolver] // the resolver (apps/dns) on core 0; nil after Close

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
	if c.Cores == 0 {
		c.Cores = 1
	}
	if err := checkCores(c.Cores, o); err != nil {
		return nil, fmt.Errorf("wisp: %w", err)
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
	s := &Stack{opts: o, hashKey: splitSeed(tcpSeed, 0x727373)}
	s.alloc = pbuf.NewAllocator(allocConfig(o))
	for k := range c.Cores {
		core, err := s.newCore(k, c.Cores, o, c.Clock, c.Seed, tcpSeed)
		if err != nil {
			for _, b := range slices.Backward(s.cores) {
				b.lk.Lock()
				b.close()
				b.lk.Unlock()
			}
			return nil, fmt.Errorf("wisp: %w", err)
		}
		s.cores = append(s.cores, core)
	}
	c0 := s.cores[0]
	s.mergePools()
	s.core = &c0.lk
	s.timers, s.ip, s.tcp, s.udp, s.raw = c0.timers, c0.ip, c0.tcp, c0.udp, c0.raw
	if err := s.initDNS(); err != nil {
		s.Close()
		return nil, fmt.Errorf("wisp: %w", err)
	}
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
		for _, c := range s.cores {
			c.lk.Lock()
		}
		s.closed = true
		for _, n := range s.netifs {
			n.closeApps()
			n.ep.Attach(nil)
			eps = append(eps, n.ep)
		}
		for _, fn := range s.onClose {
			fn()
		}
		s.onClose = nil
		for _, c := range slices.Backward(s.cores) {
			c.close()
		}
		s.netifs = nil
		for _, c := range slices.Backward(s.cores) {
			c.lk.Unlock()
		}
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
	// Intercept makes the netif take packets to addresses the stack does not own, for a
	// TUN proxy (package forwarder): unicast packets to destinations within it are delivered
	// to the transports as if the address were local (ip.Intercept says which). nil: off.
	Intercept *ip.Intercept
	// DHCP runs a DHCPv4 client on the netif (package apps/dhcp; an Ethernet link only):
	// the lease's address, netmask, router and DNS servers are installed on the netif and
	// removed when it ends. Netif.DHCP returns the client.
	DHCP bool
	// DHCPConfig configures that client: host name, client identifier, a remembered
	// address (INIT-REBOOT), a function told of every lease change.
	DHCPConfig dhcp.Config
	// DHCPv6 asks for other configuration (DNS servers) with a stateless DHCPv6
	// Information-Request (RFC 8415 §18.2.6) when a Router Advertisement sets the O flag,
	// beside SLAAC (package apps/dhcp6). Netif.DHCPv6 returns the client.
	DHCPv6 bool
}

// Netif is a network interface of a stack. Its methods are safe for concurrent use.
type Netif struct {
	s        *Stack
	n        *ip.Netif   // core 0's
	per      []*ip.Netif // every core's view of the link, per[0] == n; core 0's lock
	ep       link.Endpoint
	rxMemErr atomic.Uint64
	gro      []*gro.Engine                // per core: software GRO of delivered batches (Options.GRO, MediumIP)
	dhcp     atomic.Pointer[dhcpRun]      // the DHCPv4 client (NetifConfig.DHCP), nil when off
	dhcp6    atomic.Pointer[dhcp6.Client] // the DHCPv6 client (NetifConfig.DHCPv6), nil when off
}

// AddNetif attaches a link to the stack. The stack takes ownership of ep: it closes it on
// Close or RemoveNetif. On a stack with several cores every core writes to the link: to
// transmit queue k mod N of a link with N queues (link.MultiQueue), else through one lock
// (coreLink). Of an Ethernet link every core keeps its own neighbour tables, learning from
// every ARP and ND message (steer gives them to all cores); core 0's view of the link
// answers and announces, the others follow (ip.NetifConfig.Follower).
func (s *Stack) AddNetif(ep link.Endpoint, c NetifConfig) (*Netif, error) {
	s.core.Lock()
	defer s.core.Unlock()
	if s.closed {
		return nil, errs.Clsd
	}
	if c.Name == "" {
		c.Name = fmt.Sprintf("wisp%d", len(s.netifs))
	}
	outs := coreLinks(ep, len(s.cores))
	nif := &Netif{s: s, ep: ep}
	undo := func() {
		for k, n := range nif.per {
			s.withCore(k, func(c *Core) { _ = c.ip.RemoveNetif(n) })
		}
	}
	for k := range s.cores {
		var n *ip.Netif
		var err error
		s.withCore(k, func(core *Core) {
			n, err = core.ip.AddNetif(outs[k], ip.NetifConfig{Name: c.Name, MTU: c.MTU, Follower: k > 0, Shared: len(outs) > 1,
				Intercept: c.Intercept})
		})
		if err != nil {
			undo()
			return nil, fmt.Errorf("wisp: add netif %s: %w", c.Name, err)
		}
		nif.per = append(nif.per, n)
	}
	nif.n = nif.per[0]
	if s.opts.GRO {
		nif.gro = make([]*gro.Engine, len(s.cores))
		for k := range nif.gro {
			nif.gro[k] = new(gro.Engine)
		}
	}
	for _, p := range c.Addrs {
		if err := nif.addAddrLocked(p); err != nil {
			undo()
			return nil, fmt.Errorf("wisp: netif %s: address %v: %w", c.Name, p, err)
		}
	}
	if !c.Down {
		nif.eachCore(func(n *ip.Netif) { n.SetUp(true) })
	}
	s.netifs = append(s.netifs, nif)
	ep.Attach(nif)
	var err error
	if c.DHCP {
		if err = nif.startDHCP(c.DHCPConfig); err != nil {
			err = fmt.Errorf("wisp: netif %s: dhcp: %w", c.Name, err)
		}
	}
	if c.DHCPv6 && err == nil {
		if err = nif.startDHCPv6(); err != nil {
			err = fmt.Errorf("wisp: netif %s: dhcpv6: %w", c.Name, err)
		}
	}
	if err != nil {
		// The link stays the caller's, as on every other failure of AddNetif.
		_ = s.removeNetifLocked(nif)
		return nil, err
	}
	return nif, nil
}

// withCore runs fn with core k's lock held; core 0's is held by the caller, and another
// core's is taken inside it (ascending order).
func (s *Stack) withCore(k int, fn func(c *Core)) {
	c := s.cores[k]
	if k > 0 {
		c.lk.Lock()
		defer c.lk.Unlock()
	}
	fn(c)
}

// eachCore runs fn on every core's view of the netif, each under its core's lock (core
// 0's held by the caller).
func (n *Netif) eachCore(fn func(*ip.Netif)) {
	for k, in := range n.per {
		n.s.withCore(k, func(*Core) { fn(in) })
	}
}

// RemoveNetif detaches and closes the netif's link. Its addresses go with it, and with them
// (unless Options.TCPKeepConnWhenIPChanges) the TCP connections bound to them.
func (s *Stack) RemoveNetif(nif *Netif) error {
	s.core.Lock()
	err := s.removeNetifLocked(nif)
	s.core.Unlock()
	if err == errs.Val {
		return err
	}
	return errors.Join(err, nif.ep.Close())
}

// removeNetifLocked detaches nif (core 0's lock held): its DHCP clients stop (a RELEASE
// leaves first), its addresses go on every core. errs.Val when nif is not the stack's. The
// caller closes the link.
func (s *Stack) removeNetifLocked(nif *Netif) error {
	i := slices.Index(s.netifs, nif)
	if i < 0 {
		return errs.Val
	}
	nif.stopDHCP()
	nif.stopDHCPv6()
	s.netifs = slices.Delete(s.netifs, i, i+1)
	nif.ep.Attach(nil)
	addrs := nif.n.Addrs()
	var err error
	for k, n := range nif.per {
		s.withCore(k, func(c *Core) {
			e := c.ip.RemoveNetif(n)
			if e == nil {
				for _, a := range addrs {
					s.addrRemoved(c, a.Prefix.Addr())
				}
			}
			if k == 0 {
				err = e
			}
		})
	}
	return err
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
// whole batch (tcp.Proto.BeginBatch). On a stack with several cores the batch is first
// sorted by core (steer), and each core's part runs under that core's lock; links with
// several queues deliver from several goroutines, and each core's parts then run in
// parallel. Takes ownership of every pbuf.
func (n *Netif) DeliverPackets(pkts []*pbuf.Pbuf) {
	s := n.s
	if len(s.cores) == 1 {
		n.deliver(0, pkts)
		return
	}
	eth := n.ep.Medium() == link.MediumEthernet
	all := uint64(1)<<len(s.cores) - 1
	for len(pkts) > 0 {
		batch := pkts[:min(len(pkts), link.MaxBatch)]
		pkts = pkts[len(batch):]
		var which [link.MaxBatch]uint8
		var mask uint64
		for i, p := range batch {
			k := s.steer(p, eth)
			which[i] = uint8(k)
			if k == allCores {
				mask = all
			} else {
				mask |= 1 << k
			}
		}
		// Descending, so that a frame for every core is still whole when the cores above
		// 0 get their copies; core 0 gets the frame itself.
		var part [link.MaxBatch]*pbuf.Pbuf
		for k := len(s.cores) - 1; k >= 0; k-- {
			if mask&(1<<k) == 0 {
				continue
			}
			m := 0
			for i, p := range batch {
				switch {
				case int(which[i]) == k:
					part[m] = p
					m++
				case which[i] == allCores && k == 0:
					part[m] = p
					m++
				case which[i] == allCores:
					// A copy for a following core: ARP and ND are rare and small. Without
					// memory this core does not learn from it, as if it had been lost.
					c, err := s.alloc.Clone(pbuf.LayerRaw, pbuf.POOL, p)
					if err != nil {
						n.rxMemErr.Add(1)
						continue
					}
					part[m] = c
					m++
				}
			}
			n.deliver(k, part[:m])
		}
	}
}

// deliver runs pkts through core k; it takes ownership of every pbuf (the slice is
// borrowed).
func (n *Netif) deliver(k int, pkts []*pbuf.Pbuf) {
	c := n.s.cores[k]
	c.lk.Lock()
	defer c.lk.Unlock()
	if n.s.closed || len(n.per) <= k {
		for _, p := range pkts {
			p.Free()
		}
		return
	}
	in := n.per[k]
	n.countRxGSO(c, pkts)
	if len(pkts) == 1 {
		in.Input(pkts[0])
		return
	}
	eth := n.ep.Medium() == link.MediumEthernet
	if n.gro != nil {
		if eth {
			pkts = unframe(in, pkts)
		}
		pkts = n.gro[k].Coalesce(pkts, c.ip.OffloadStats())
	}
	c.tcp.BeginBatch()
	for _, p := range pkts {
		if eth && n.gro != nil {
			in.InputIP(p)
		} else {
			in.Input(p)
		}
	}
	c.tcp.EndBatch()
}

// unframe readies a batch of Ethernet frames for software GRO: the IP packets unicast to
// the netif lose their Ethernet header and are returned, in order, in pkts' backing array;
// every other frame (ARP, broadcast, multicast, a header split across pbufs) goes through
// the netif's Ethernet input at once. Takes ownership of every pbuf; core context.
func unframe(in *ip.Netif, pkts []*pbuf.Pbuf) []*pbuf.Pbuf {
	m := 0
	for _, p := range pkts {
		if in.Unframe(p) {
			pkts[m] = p
			m++
			continue
		}
		in.Input(p)
	}
	clear(pkts[m:])
	return pkts[:m]
}

// countRxGSO counts the coalesced packets the link delivered (a TUN's virtio-net GSO);
// core c's context.
func (n *Netif) countRxGSO(c *Core, pkts []*pbuf.Pbuf) {
	st := c.ip.OffloadStats()
	for _, p := range pkts {
		if typ, _ := p.GSO(); typ != pbuf.GSONone {
			st.RxGSO++
		}
	}
}

// IP returns core 0's ip-layer netif, for core-context code.
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
	n.eachCore(func(in *ip.Netif) { in.SetUp(up) })
}

// SetIntercept turns interception on (with ic's prefixes) or off (nil) on every core's view
// of the netif (NetifConfig.Intercept). errs.Val for an invalid prefix.
func (n *Netif) SetIntercept(ic *ip.Intercept) error {
	n.s.core.Lock()
	defer n.s.core.Unlock()
	var err error
	n.eachCore(func(in *ip.Netif) {
		if err == nil {
			err = in.SetIntercept(ic)
		}
	})
	return err
}

// Intercept returns the netif's interception (a copy), nil when off.
func (n *Netif) Intercept() *ip.Intercept {
	n.s.core.Lock()
	defer n.s.core.Unlock()
	return n.n.Intercept()
}

// AddAddr adds an address with its prefix (198.18.0.1/24, fd42:5eed::1/64) and the
// connected route.
func (n *Netif) AddAddr(p netip.Prefix) error {
	n.s.core.Lock()
	defer n.s.core.Unlock()
	return n.addAddrLocked(p)
}

// addAddrLocked adds p on every core (core 0's lock held): core 0 decides, the others
// follow.
func (n *Netif) addAddrLocked(p netip.Prefix) error {
	if err := n.n.AddAddr(p); err != nil {
		return err
	}
	for k := 1; k < len(n.per); k++ {
		n.s.withCore(k, func(*Core) { _ = n.per[k].AddAddr(p) })
	}
	return nil
}

// RemoveAddr removes an address. Unless Options.TCPKeepConnWhenIPChanges, every TCP
// connection bound to it is aborted (its owner hears errs.Abrt).
func (n *Netif) RemoveAddr(a netip.Addr) error {
	n.s.core.Lock()
	defer n.s.core.Unlock()
	if err := n.n.RemoveAddr(a); err != nil {
		return err
	}
	n.s.addrRemoved(n.s.cores[0], a)
	for k := 1; k < len(n.per); k++ {
		n.s.withCore(k, func(c *Core) {
			_ = n.per[k].RemoveAddr(a)
			n.s.addrRemoved(c, a)
		})
	}
	return nil
}

// addrRemoved runs in core c's context after address a left its netif: TCP connections
// bound to it are aborted unless the options keep them (esp-lwip's
// CONFIG_LWIP_TCP_KEEP_CONNECTION_WHEN_IP_CHANGES).
func (s *Stack) addrRemoved(c *Core, a netip.Addr) {
	if !s.opts.TCPKeepConnWhenIPChanges {
		c.tcp.AbortLocal(a)
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
	if err := s.ip.AddRoute(ip.Route{Dst: r.Dst, Gateway: r.Gateway, Netif: r.Netif.n, Metric: r.Metric}); err != nil {
		return err
	}
	for k := 1; k < len(s.cores); k++ {
		s.withCore(k, func(c *Core) {
			_ = c.ip.AddRoute(ip.Route{Dst: r.Dst, Gateway: r.Gateway, Netif: r.Netif.per[k], Metric: r.Metric})
		})
	}
	return nil
}

// RemoveRoute removes the route to dst through nif.
func (s *Stack) RemoveRoute(dst netip.Prefix, nif *Netif) error {
	s.core.Lock()
	defer s.core.Unlock()
	if err := s.ip.RemoveRoute(dst, nif.n); err != nil {
		return err
	}
	for k := 1; k < len(s.cores); k++ {
		s.withCore(k, func(c *Core) { _ = c.ip.RemoveRoute(dst, nif.per[k]) })
	}
	return nil
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
	for _, c := range s.cores {
		c.lk.Lock()
	}
	for _, c := range s.cores {
		c.tcp.Conns(func(i tcp.Info) { dst = append(dst, i) })
	}
	for _, c := range slices.Backward(s.cores) {
		c.lk.Unlock()
	}
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
	snap.TimerWakeups = s.timers.Wakeups()
	for k := 1; k < len(s.cores); k++ {
		s.withCore(k, func(c *Core) { addSnapshot(&snap, c) })
	}
	for _, n := range s.netifs {
		m := n.rxMemErr.Load()
		snap.Link.Memerr += m
		snap.Link.Drop += m
		if d, ok := n.ep.(link.DeviceStater); ok {
			snap.Devices = append(snap.Devices, stats.Device{Name: n.n.Name(), Queues: d.DeviceStats(nil)})
		}
	}
	snap.Heap = s.alloc.HeapStats()
	snap.Pools = s.pools.Snapshot(nil)
	s.dnsStats(&snap)
	s.timerStats(&snap)
	return snap
}
