package ip

import (
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip/frag"
	"github.com/wispstack/wisp/link/ethernet"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
)

// Config is what a Layer needs from its stack.
type Config struct {
	Options opt.Options
	Alloc   *pbuf.Allocator
	// Timers carries every timer of the layer; Timers.Now() is the time.
	Timers *clock.Timeouts
	// Pools receives the ND6_QUEUE pool, and the pools of ethernet and frag.
	Pools *memp.Table
	// Seed seeds IPv4 IDs, IPv6 fragment IDs (RFC 7739) and ND random delays, so tests
	// are deterministic.
	Seed uint64
}

// TransportConfig wires a transport above the layer (TCP, UDP, raw) to its stack: the layer
// and what the transport shares with it. Each transport's New says what its Seed seeds and
// which pools it registers in Pools; UDP and raw have no timers.
type TransportConfig struct {
	Options opt.Options
	IP      *Layer
	Alloc   *pbuf.Allocator
	Timers  *clock.Timeouts
	Pools   *memp.Table
	Seed    uint64
}

// Transport is a protocol above IP (TCP, UDP, raw), registered by the stack.
type Transport interface {
	// Input takes ownership of p, which starts at the transport header. h is borrowed for
	// the call.
	Input(h *Header, p *pbuf.Pbuf)
	// ControlInput reports an ICMP error about a packet this stack sent. h describes the
	// quoted (inner) packet: Src is our address, Dst the peer, Proto the transport,
	// HeaderLen the quoted IP header length, Netif where the error arrived. quoted is
	// borrowed: the inner IP header and at least 8 bytes after it. mtu is set for
	// ControlPacketTooBig.
	ControlInput(h *Header, kind ControlKind, mtu int, quoted []byte)
}

// Raw sees packets before their protocol does, as lwIP's raw_input: raw PCBs and ICMP echo
// (ping) sockets. The stack registers one with SetRaw; the Layer calls it only for protocols
// switched on with RawListen, so the hot path pays one array load.
type Raw interface {
	// RawInput is offered every packet of a listened protocol that is addressed to this
	// stack, after IP validation and reassembly, before the protocol handles it. p starts
	// at the transport (or ICMP) header; h is borrowed for the call, p is borrowed unless
	// RawInput returns true ("eaten"), in which case it took ownership and the packet goes
	// no further. Raw PCBs that only want a copy clone or reference p and return false.
	RawInput(h *Header, p *pbuf.Pbuf) bool
}

// ControlKind is the kind of an ICMP error reported to a transport.
type ControlKind uint8

// The ICMP errors transports hear about.
const (
	ControlNetUnreachable   ControlKind = iota + 1 // v4 net unreachable, v6 no route
	ControlHostUnreachable                         // v4 host unreachable, v6 address unreachable
	ControlProtoUnreachable                        // v4 protocol unreachable, v6 parameter problem code 1
	ControlPortUnreachable                         // port unreachable (both)
	ControlAdminProhibited                         // administratively prohibited (both)
	ControlPacketTooBig                            // v4 fragmentation needed, v6 packet too big; mtu set
	ControlTimeExceeded                            // TTL / hop limit or reassembly time exceeded
	ControlParamProblem                            // parameter problem
)

var controlNames = [...]string{"", "net-unreachable", "host-unreachable", "proto-unreachable",
	"port-unreachable", "admin-prohibited", "packet-too-big", "time-exceeded", "param-problem"}

func (k ControlKind) String() string {
	if int(k) < len(controlNames) && k != 0 {
		return controlNames[k]
	}
	return "control(?)"
}

// Header describes a received packet to a transport.
type Header struct {
	Src, Dst  netip.Addr
	Proto     uint8
	TTL       uint8
	TOS       uint8
	HeaderLen int // all IP header bytes, extension headers included
	Netif     *Netif
	// Broadcast and Multicast: the destination was a broadcast or multicast address.
	Broadcast, Multicast bool
	// Intercepted: Dst is not this stack's; Netif intercepts it (NetifConfig.Intercept) and
	// delivered it to the transports, which answer from Dst as if it were theirs.
	Intercepted bool

	nhOff int // IPv6: offset of the Next Header field naming Proto (for Parameter Problem)
}

// loopCap bounds the packets looped back to local addresses between two Flushes.
const loopCap = 128

// maxLoopRounds bounds the delivery rounds of one Flush: a looped packet may make a transport
// answer with another.
const maxLoopRounds = 8

type loopItem struct {
	p *pbuf.Pbuf
	n *Netif
}

// Layer is one stack's IP layer, lwIP's IP globals. Every method is core context.
type Layer struct {
	opts   opt.Options
	alloc  *pbuf.Allocator
	timers *clock.Timeouts
	pools  *memp.Table
	rng    *rand.Rand

	netifs     [256]*Netif // by index; 0 unused
	list       []*Netif    // in index order
	routes     []routeEntry
	transports [256]Transport
	raw        Raw
	rawListen  [256]int32                    // per protocol: how many raw listeners want it (RawListen)
	echoMode   EchoMode                      // echo requests to intercepted destinations (SetInterceptEcho)
	echoHook   func(h *Header, p *pbuf.Pbuf) // EchoHost's receiver

	loopq, loopNext []loopItem

	reass   *frag.Reassembler
	frags   *frag.Fragmenter
	fragOut []*pbuf.Pbuf // scratch for Fragmenter.Split

	ip4ID uint16

	// ICMP error token bucket (RFC 4443 §2.4(f), RFC 1812 §4.3.2.8).
	icmpTokens  int
	icmpLast    time.Time
	rateLimited uint64

	nd  ndState
	tmo clock.Timeout

	// Multicast memberships (mcast.go): the IGMP_GROUP and MLD6_GROUP pools and the one
	// timer of every pending report.
	igmpPool, mldPool *memp.Pool[group]
	mcTmo             clock.Timeout

	ip, icmp, ip6, icmp6, nd6, igmp, mld6 stats.Proto
	offload                               stats.Offload // GSO here, GRO by whoever calls gro (stack)

	// Scratch headers passed to transports: a pointer to a local would escape through the
	// interface call and allocate on the hot path.
	inHdr, ctlHdr Header
	scratch       []byte // chained quotes, grown on the slow path
	closed        bool

	// Caches of per-packet answers (cache.go), valid while gen is unchanged.
	gen    uint64
	in4    inCache
	in6    inCache
	route4 routeCache
	route6 routeCache
}

// New builds a Layer. It registers the ND6_QUEUE pool (and, through frag, REASSDATA and
// FRAG_PBUF) in cfg.Pools.
func New(cfg Config) (*Layer, error) {
	if cfg.Alloc == nil || cfg.Timers == nil {
		return nil, errs.Val
	}
	o := cfg.Options
	if o.IPDefaultTTL == 0 {
		o.IPDefaultTTL = 64
	}
	l := &Layer{
		opts:     o,
		alloc:    cfg.Alloc,
		timers:   cfg.Timers,
		pools:    cfg.Pools,
		rng:      rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		loopq:    make([]loopItem, 0, loopCap),
		loopNext: make([]loopItem, 0, loopCap),
		fragOut:  make([]*pbuf.Pbuf, 0, 64),
	}
	l.ip4ID = uint16(l.rng.Uint32())
	l.icmpTokens = max(o.ICMPRateBurst, 0)
	l.icmpLast = cfg.Timers.Now()
	r, err := frag.NewReassembler(frag.Config{
		Alloc: cfg.Alloc, Timers: cfg.Timers, Pools: cfg.Pools,
		MaxDatagrams: o.MempNumReassData, MaxPbufs: o.IPReassMaxPbufs, MaxAge: o.IPReassMaxAge,
		MaxFragPbufs: o.MempNumFragPbuf, Expired: l.reassExpired,
	})
	if err != nil {
		return nil, err
	}
	l.reass, l.frags = r, r.Fragmenter()
	l.nd.init(l)
	l.tmo.Init(l.onTimer)
	l.mcTmo.Init(l.mcTimer)
	l.igmpPool = memp.NewLazy[group](memp.IGMPGroup, max(o.MempNumIGMPGroup, 0), 0)
	l.mldPool = memp.NewLazy[group](memp.MLD6Group, max(o.MempNumMLD6Group, 0), 0)
	if cfg.Pools != nil {
		cfg.Pools.Register(memp.IGMPGroup, l.igmpPool)
		cfg.Pools.Register(memp.MLD6Group, l.mldPool)
		// The ARP queue pool is shared by every Ethernet netif; creating it now makes the
		// stack's reservation independent of which netifs are added later.
		ethernet.RegisterQueue(cfg.Pools, o.MempNumARPQueue)
	}
	return l, nil
}

// Close frees queued packets, cancels timers and closes the ethernet interfaces and the
// reassembler. The Layer is unusable afterwards.
func (l *Layer) Close() {
	l.timers.AssertCore()
	if l.closed {
		return
	}
	for _, n := range l.list {
		n.shutdown()
	}
	l.nd.flush(nil)
	for _, it := range l.loopq {
		it.p.Free()
	}
	l.loopq = l.loopq[:0]
	l.reass.Close()
	l.timers.Cancel(&l.tmo)
	l.timers.Cancel(&l.mcTmo)
	l.closed = true
}

// AssertCore panics unless the core lock is held, in builds with the wispcheck tag
// (clock.Timeouts.AssertCore); the layers above call it at their entry points. Every
// exported method of a Layer starts with it, except those the stack calls while it builds
// the layer (RegisterTransport, SetRaw, Tables).
func (l *Layer) AssertCore() { l.timers.AssertCore() }

// RegisterTransport sets the handler of protocol proto (nil removes it). ICMP (1) and ICMPv6
// (58) are the Layer's own; a transport registered for them is ignored.
func (l *Layer) RegisterTransport(proto uint8, t Transport) { l.transports[proto] = t }

// SetRaw registers the raw hook (nil removes it).
func (l *Layer) SetRaw(r Raw) { l.raw = r }

// RawListen adds (on) or removes one raw listener for protocol proto; packets of proto are
// offered to the Raw hook while at least one listener remains.
func (l *Layer) RawListen(proto uint8, on bool) {
	l.timers.AssertCore()
	if on {
		l.rawListen[proto]++
	} else if l.rawListen[proto] > 0 {
		l.rawListen[proto]--
	}
}

// RateLimited reports how many ICMP errors the token bucket suppressed.
func (l *Layer) RateLimited() uint64 {
	l.timers.AssertCore()
	return l.rateLimited
}

// Stats fills the IP, ICMP, IGMP, IPFrag, IP6, ICMP6, MLD6, IP6Frag, ND6, Etharp (sum of
// the ethernet interfaces) and Link (sum of the netifs) records of s.
func (l *Layer) Stats(s *stats.Snapshot) {
	l.timers.AssertCore()
	s.IP, s.ICMP, s.IP6, s.ICMP6, s.ND6 = l.ip, l.icmp, l.ip6, l.icmp6, l.nd6
	s.IGMP, s.MLD6 = l.igmp, l.mld6
	s.Offload = l.offload
	s.IPFrag, s.IP6Frag = *l.reass.Stats4(), *l.reass.Stats6()
	s.Etharp, s.Link = stats.Proto{}, stats.Proto{}
	for _, n := range l.list {
		s.Link.Add(&n.stats)
		if n.eth != nil {
			s.Etharp.Add(n.eth.Stats())
		}
	}
}

// Flush is the core's exit: it delivers packets looped back to local addresses (bounded
// rounds; what a last round produces waits for the next Flush), then writes each netif's
// batched frames with WritePackets.
func (l *Layer) Flush() {
	l.timers.AssertCore()
	for round := 0; round < maxLoopRounds && len(l.loopq) > 0; round++ {
		cur := l.loopq
		l.loopq = l.loopNext[:0]
		for i, it := range cur {
			cur[i] = loopItem{}
			if it.n.up {
				l.ipInput(it.n, it.p, true)
			} else {
				l.dropPkt(it.p, &l.ipStats(it.p).Err)
			}
		}
		l.loopNext = cur[:0]
	}
	l.flushLinks()
}

// flushLinks writes every netif's batch. Timer functions call it: they run outside the
// core's Flush, and must not deliver looped packets (that could re-enter the reassembler
// or the neighbour cache in the middle of their work).
func (l *Layer) flushLinks() {
	for _, n := range l.list {
		n.flush()
	}
}

// loopback queues p, a whole IP packet to a local address of n, for delivery at Flush. It
// takes ownership. The packet is copied into one RAM pbuf (as lwIP's netif_loop_output)
// so the input path finds its headers contiguous and the sender's REF memory is released.
func (l *Layer) loopback(n *Netif, p *pbuf.Pbuf) error {
	if len(l.loopq) == cap(l.loopq) {
		l.dropPkt(p, &l.ipStats(p).Memerr)
		return errs.Mem
	}
	q := p
	if p.Next() != nil || p.Type() != pbuf.RAM {
		c, err := l.alloc.Clone(pbuf.LayerLink, pbuf.RAM, p)
		if err != nil {
			l.dropPkt(p, &l.ipStats(p).Memerr)
			return errs.Mem
		}
		p.Free()
		q = c
	}
	q.SetFlags(0)
	q.SetIfIndex(n.index)
	l.loopq = append(l.loopq, loopItem{q, n})
	return nil
}

// ipStats returns the IP record of p's family (by its version nibble).
func (l *Layer) ipStats(p *pbuf.Pbuf) *stats.Proto {
	if b, ok := p.ByteAt(0); ok && b>>4 == 6 {
		return &l.ip6
	}
	return &l.ip
}

// messageLen counts the message after h's headers in p as received under st (ICMP, IGMP,
// MLD) and returns its length. p is borrowed, except that a message shorter than minLen is
// dropped: p is freed (st.Lenerr) and ok is false.
func (l *Layer) messageLen(h *Header, p *pbuf.Pbuf, st *stats.Proto, minLen int) (mlen int, ok bool) {
	st.Recv++
	mlen = p.TotLen() - h.HeaderLen
	if mlen < minLen {
		l.dropPkt(p, &st.Lenerr)
		return 0, false
	}
	return mlen, true
}

// dropPkt frees p and counts a drop under reason in the record reason belongs to. The
// record is found from the reason's address.
func (l *Layer) dropPkt(p *pbuf.Pbuf, reason *uint64) {
	p.Free() // nil-safe
	*reason++
	switch {
	case l.in(reason, &l.ip):
		l.ip.Drop++
	case l.in(reason, &l.ip6):
		l.ip6.Drop++
	case l.in(reason, &l.icmp):
		l.icmp.Drop++
	case l.in(reason, &l.icmp6):
		l.icmp6.Drop++
	case l.in(reason, &l.nd6):
		l.nd6.Drop++
	case l.in(reason, &l.igmp):
		l.igmp.Drop++
	case l.in(reason, &l.mld6):
		l.mld6.Drop++
	}
}

// in reports whether field points into record s.
func (l *Layer) in(field *uint64, s *stats.Proto) bool {
	return field == &s.Lenerr || field == &s.Chkerr || field == &s.Err || field == &s.Proterr ||
		field == &s.Opterr || field == &s.Rterr || field == &s.Memerr
}

// now is the core's time.
func (l *Layer) now() time.Time { return l.timers.Now() }
