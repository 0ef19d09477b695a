package stack

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/transport/raw"
	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/transport/udp"
	"github.com/wispstack/wisp/wire"
)

// MaxCores bounds Config.Cores.
const MaxCores = 64

// Core is one core of a stack: a core lock, a timer queue, an IP layer and TCP, with its
// share of the TCP pools. A stack with one core (the default) is lwIP's single core
// context. A stack with several spreads TCP connections over them by a symmetric hash of
// their 4-tuple (RSS): a link's frames are sorted by that hash as they are delivered, a
// connection is made on the core its 4-tuple hashes to, and a listener listens on every
// core. Core 0 also carries everything that is not a TCP connection: UDP, raw and ping
// PCBs, ICMP, fragments, and the control plane (netifs, addresses, routes).
//
// Concurrency: the methods that take the lock (Lock, Callback) are safe for concurrent
// use; the protocol layers a Core returns are core context of that core only. Locks of
// two cores are only ever nested in ascending order (Close holds all of them).
type Core struct {
	s      *Stack
	id     int
	lk     coreLock
	timers *clock.Timeouts
	ip     *ip.Layer
	tcp    *tcp.Proto
	udp    *udp.Proto // core 0 only
	raw    *raw.Proto // core 0 only
	pools  memp.Table
}

// ID is the core's index in Stack.Cores.
func (c *Core) ID() int { return c.id }

// Stack returns the stack the core belongs to.
func (c *Core) Stack() *Stack { return c.s }

// Lock takes the core's lock (see Stack.Lock); Unlock flushes what it queued and releases it.
func (c *Core) Lock() { c.lk.Lock() }

// Unlock flushes the frames the critical section queued, then releases the core's lock.
func (c *Core) Unlock() { c.lk.Unlock() }

// Callback runs fn in this core's context and returns when it has run.
func (c *Core) Callback(fn func()) {
	c.lk.Lock()
	defer c.lk.Unlock()
	fn()
}

// AssertCore panics unless the core's lock is held.
func (c *Core) AssertCore() {
	if !c.lk.held.Load() {
		panic("wisp: core lock not held")
	}
}

// TCP returns the core's TCP; its raw API is this core's context only.
func (c *Core) TCP() *tcp.Proto { return c.tcp }

// IP returns the core's IP layer; core context only.
func (c *Core) IP() *ip.Layer { return c.ip }

// Timers returns the core's timer queue; core context only.
func (c *Core) Timers() *clock.Timeouts { return c.timers }

// Cores returns the stack's cores (Config.Cores of them; the slice is shared, do not
// modify it).
func (s *Stack) Cores() []*Core { return s.cores }

// newCore builds core k of n: its lock, timers, IP layer and TCP; core 0 also UDP and raw.
// On an error it closes what it built.
func (s *Stack) newCore(k, n int, o opt.Options, clk clock.Clock, seed, tcpSeed uint64) (*Core, error) {
	c := &Core{s: s, id: k}
	// Every core sees the allocator's pools (TCP watches PBUF_POOL's pressure); they are
	// the stack's, counted once (mergePools).
	s.alloc.Register(&c.pools)
	c.timers = clock.NewTimeouts(clk, &c.lk)
	co := coreOptions(o, k, n)
	ipSeed := seed
	if k > 0 {
		ipSeed = splitSeed(seed, uint64(k))
	}
	l, err := ip.New(ip.Config{Options: co, Alloc: s.alloc, Timers: c.timers, Pools: &c.pools, Seed: ipSeed})
	if err != nil {
		return nil, err
	}
	c.ip = l
	// Every core's TCP has the same secrets (ISNs, SYN cookies): a connection's segments
	// all reach the core its 4-tuple hashes to, whichever core answered its SYN.
	tc := ip.TransportConfig{Options: co, IP: l, Alloc: s.alloc, Timers: c.timers, Pools: &c.pools, Seed: tcpSeed}
	if c.tcp, err = tcp.New(tc); err != nil {
		l.Close()
		return nil, err
	}
	if k == 0 {
		// UDP's ephemeral ports (RFC 6056) are as secret as TCP's: the same seed, another key.
		tc.Seed = splitSeed(tcpSeed, 0x756470)
		if c.udp, err = udp.New(tc); err != nil {
			c.tcp.Close()
			l.Close()
			return nil, err
		}
		l.RegisterTransport(wire.ProtoUDP, c.udp)
		tc.Seed = splitSeed(tcpSeed, 0x726177)
		if c.raw, err = raw.New(tc); err != nil {
			c.udp.Close()
			c.tcp.Close()
			l.Close()
			return nil, err
		}
		l.SetRaw(c.raw)
	}
	if n > 1 {
		// Connect picks only ephemeral ports whose 4-tuple hashes to this core.
		c.lk.Lock()
		c.tcp.SetPortFilter(func(local netip.Addr, remote netip.AddrPort, port uint16) bool {
			return s.coreFor(local, remote.Addr(), port, remote.Port()) == k
		})
		c.lk.Unlock()
	}
	if n > 1 && k == 0 {
		// Core 0 reassembles fragments: a reassembled segment of another core's
		// connection goes on to that core.
		l.RegisterTransport(wire.ProtoTCP, (*tcpSteer)(s))
	} else {
		l.RegisterTransport(wire.ProtoTCP, c.tcp)
	}
	c.lk.flush = l.Flush
	return c, nil
}

// close frees the core's protocols; its lock is held.
func (c *Core) close() {
	c.tcp.Close()
	if c.udp != nil {
		c.udp.Close()
	}
	if c.raw != nil {
		c.raw.Close()
	}
	c.ip.Close()
	c.timers.Close()
}

// coreOptions is core k's share of o: the connection pools (TCP_PCB, TCP_SEG) divided
// between the cores so that together they reserve what o says; every core has o's
// listener pool, as a listener listens on every core. Cores other than 0 carry only TCP
// connections, so their UDP, raw, reassembly and multicast pools are empty; the queues of
// packets waiting for a neighbour are shared out too.
func coreOptions(o opt.Options, k, n int) opt.Options {
	if n == 1 {
		return o
	}
	c := o
	c.MempNumTCPPCB = share(o.MempNumTCPPCB, k, n)
	c.MempNumTCPSeg = share(o.MempNumTCPSeg, k, n)
	if k > 0 {
		c.MempNumUDPPCB, c.MempNumRawPCB = 0, 0
		c.MempNumReassData, c.IPReassMaxPbufs, c.MempNumFragPbuf = 0, 0, 0
		c.MempNumIGMPGroup, c.MempNumMLD6Group = 0, 0
	}
	// Every core keeps its own view of an Ethernet link's neighbours (tables per netif, as
	// on one core) and its share of the packets waiting for them.
	c.MempNumARPQueue = share(o.MempNumARPQueue, k, n)
	c.MempNumND6Queue = share(o.MempNumND6Queue, k, n)
	return c
}

// share is core k's part of n things divided between cores: the first n%cores cores
// get one more.
func share(n, k, cores int) int {
	s := n / cores
	if k < n%cores {
		s++
	}
	return s
}

// checkCores validates Config.Cores against the options.
func checkCores(n int, o opt.Options) error {
	if n < 1 || n > MaxCores {
		return fmt.Errorf("Cores %d: want 1 to %d", n, MaxCores)
	}
	if n > 1 && (o.MempNumTCPPCB < n || o.MempNumTCPSeg < n) {
		return fmt.Errorf("Cores %d: MempNumTCPPCB (%d) and MempNumTCPSeg (%d) must give every core at least one",
			n, o.MempNumTCPPCB, o.MempNumTCPSeg)
	}
	return nil
}

// sumPool reports several cores' pools of one ID as one.
type sumPool []memp.Stater

func (ps sumPool) Stats() stats.Pool {
	var t stats.Pool
	for i, p := range ps {
		st := p.Stats()
		if i == 0 {
			t.Name, t.Size = st.Name, st.Size
		}
		t.Avail += st.Avail
		t.Used += st.Used
		t.Max += st.Max
		t.Err += st.Err
	}
	return t
}

// mergePools registers in s.pools every core's pools, one line per ID.
func (s *Stack) mergePools() {
	for id := memp.ID(0); id < memp.NumIDs; id++ {
		var ps sumPool
		for _, c := range s.cores {
			if c.id > 0 && (id == memp.Pbuf || id == memp.PbufRAM || id == memp.PbufPool) {
				break // the allocator's, shared by every core
			}
			if p := c.pools.Lookup(id); p != nil {
				ps = append(ps, p)
			}
		}
		switch len(ps) {
		case 0:
		case 1:
			s.pools.Register(id, ps[0])
		default:
			s.pools.Register(id, ps)
		}
	}
}

// addSnapshot adds core c's IP-layer and TCP counters to snap (core c's lock held).
func addSnapshot(snap *stats.Snapshot, c *Core) {
	var o stats.Snapshot
	c.ip.Stats(&o)
	c.tcp.Stats(snap)
	for _, f := range [...]struct{ dst, src *stats.Proto }{
		{&snap.Link, &o.Link}, {&snap.Etharp, &o.Etharp}, {&snap.IPFrag, &o.IPFrag},
		{&snap.IP, &o.IP}, {&snap.ICMP, &o.ICMP}, {&snap.IGMP, &o.IGMP}, {&snap.ND6, &o.ND6},
		{&snap.IP6Frag, &o.IP6Frag}, {&snap.IP6, &o.IP6}, {&snap.ICMP6, &o.ICMP6},
		{&snap.MLD6, &o.MLD6},
	} {
		f.dst.Add(f.src)
	}
	snap.Offload.Add(&o.Offload)
	snap.TimerWakeups += c.timers.Wakeups()
}

// Ephemeral ports ConnectOn picks from on a stack with several cores (RFC 6335's dynamic
// range; with one core, TCP picks its own).
const ephemeralFirst, ephemeralCount = 49152, 16384

// ConnectOn makes a TCP connection's PCB on the core its 4-tuple hashes to: it calls open
// with that core's lock held and the local endpoint to bind, and returns the core. On a
// stack with one core it passes laddr unchanged (TCP chooses what it leaves unspecified).
// On a stack with several: with laddr's port given, the core is the 4-tuple's; with
// neither address nor port given, the cores take turns and each core's TCP picks only
// ephemeral ports that hash to it (Proto.SetPortFilter); with an address but no port,
// the port is picked here at random, tried again while open fails with errs.Use. Must not
// be called from core context.
func (s *Stack) ConnectOn(laddr, raddr netip.AddrPort, open func(k *Core, local netip.AddrPort) error) (*Core, error) {
	if len(s.cores) == 1 {
		k := s.cores[0]
		k.lk.Lock()
		defer k.lk.Unlock()
		return k, open(k, laddr)
	}
	src := laddr.Addr()
	if laddr.Port() == 0 && (!src.IsValid() || src.IsUnspecified()) {
		k := s.cores[int(s.nextCore.Add(1))%len(s.cores)]
		k.lk.Lock()
		defer k.lk.Unlock()
		return k, open(k, laddr)
	}
	if !src.IsValid() || src.IsUnspecified() {
		var err error
		s.core.Lock()
		src, err = s.ip.SourceFor(raddr.Addr(), nil)
		s.core.Unlock()
		if err != nil {
			return nil, err
		}
		if raddr.Addr().Is4In6() && src.Is4() {
			src = netip.AddrFrom16(src.As16())
		}
	}
	try := func(port uint16) (*Core, error) {
		from := netip.AddrPortFrom(src, port)
		k := s.CoreFor(from, raddr)
		k.lk.Lock()
		defer k.lk.Unlock()
		return k, open(k, from)
	}
	if laddr.Port() != 0 {
		return try(laddr.Port())
	}
	start := rand.IntN(ephemeralCount)
	for i := range ephemeralCount {
		k, err := try(uint16(ephemeralFirst + (start+i)%ephemeralCount))
		if !errors.Is(err, errs.Use) {
			return k, err
		}
	}
	return nil, errs.Use
}
