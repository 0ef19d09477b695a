package ip

import (
	"net/netip"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// Protocol constants of RFC 4861 §10 and RFC 4862.
const (
	maxMulticastSolicit     = 3
	maxUnicastSolicit       = 3
	delayFirstProbeTime     = 5 * time.Second
	maxRtrSolicitationDelay = time.Second
	rtrSolicitationInterval = 4 * time.Second
	maxRtrSolicitations     = 3
	minRandomFactor         = 0.5
	maxRandomFactor         = 1.5
	ndHopLimit              = 255
	twoHours                = 2 * time.Hour
	infiniteLifetime        = 0xffffffff
	ndOptLLALen             = 8
)

// nState is a neighbour cache entry's reachability state (RFC 4861 §7.3.2).
type nState uint8

const (
	nFree nState = iota
	nIncomplete
	nReachable
	nStale
	nDelay
	nProbe
)

var nStateNames = [...]string{"FREE", "INCOMPLETE", "REACHABLE", "STALE", "DELAY", "PROBE"}

func (s nState) String() string { return nStateNames[s] }

// neighbor is one neighbour cache entry.
type neighbor struct {
	state  nState
	n      *Netif
	addr   netip.Addr
	mac    [6]byte
	router bool
	probes int       // solicitations sent in INCOMPLETE or PROBE
	next   time.Time // INCOMPLETE/PROBE: next solicitation; REACHABLE: STALE; DELAY: PROBE
	src    netip.Addr
	used   time.Time
	q      pbuf.Queue // packets waiting for the link-layer address (ND6_QUEUE nodes)
}

// ndState is the neighbour cache of a layer (lwIP's nd6.c), fixed at
// Options.ND6NumNeighbors entries, with its queue pool.
type ndState struct {
	l     *Layer
	cache []neighbor
	queue *memp.Pool[pbuf.QueueNode]
}

func (d *ndState) init(l *Layer) {
	d.l = l
	d.cache = make([]neighbor, max(l.opts.ND6NumNeighbors, 0))
	d.queue = memp.NewLazy[pbuf.QueueNode](memp.ND6Queue, max(l.opts.MempNumND6Queue, 0), 0)
	if l.pools != nil {
		l.pools.Register(memp.ND6Queue, d.queue)
	}
}

// flush frees the entries of netif n (nil: all) and their queued packets.
func (d *ndState) flush(n *Netif) {
	for i := range d.cache {
		e := &d.cache[i]
		if e.state != nFree && (n == nil || e.n == n) {
			d.free(e)
		}
	}
}

// free empties an entry, freeing its queue.
func (d *ndState) free(e *neighbor) {
	e.q.Clear(d.queue)
	*e = neighbor{}
}

// find returns the entry for addr on n, or nil.
func (d *ndState) find(n *Netif, addr netip.Addr) *neighbor {
	for i := range d.cache {
		e := &d.cache[i]
		if e.state != nFree && e.n == n && e.addr == addr {
			return e
		}
	}
	return nil
}

// alloc returns a fresh entry: a free one, else the least recently used STALE one, else
// the oldest other entry without queued packets; nil when every entry is resolving.
func (d *ndState) alloc(n *Netif, addr netip.Addr) *neighbor {
	var victim *neighbor
	for i := range d.cache {
		e := &d.cache[i]
		if e.state == nFree {
			victim = e
			break
		}
		if !e.q.Empty() || e.state == nIncomplete {
			continue
		}
		if victim == nil || (e.state == nStale) != (victim.state == nStale) && e.state == nStale ||
			(e.state == nStale) == (victim.state == nStale) && e.used.Before(victim.used) {
			victim = e
		}
	}
	if victim == nil {
		return nil
	}
	if victim.state != nFree {
		if victim.router {
			d.l.setRARoute(victim.n, defaultRoute6, victim.addr, time.Time{}, true)
		}
		d.free(victim)
	}
	*victim = neighbor{n: n, addr: addr, used: d.l.now()}
	return victim
}

var defaultRoute6 = netip.PrefixFrom(netip.IPv6Unspecified(), 0)

// output sends IPv6 packet p to the on-link neighbour nh, resolving its MAC address (RFC
// 4861 §7.2.2); it takes ownership.
func (d *ndState) output(n *Netif, p *pbuf.Pbuf, nh netip.Addr) error {
	l := d.l
	e := d.find(n, nh)
	if e == nil {
		if e = d.alloc(n, nh); e == nil {
			l.dropPkt(p, &l.nd6.Memerr)
			return errs.Mem
		}
		// "When a node has a unicast packet to send to a neighbor, but does not know the
		// neighbor's link-layer address, it performs address resolution": a new INCOMPLETE
		// entry, the packet queued, a multicast solicitation.
		e.state = nIncomplete
		if b, ok := p.Header(wire.IPv6HeaderLen); ok {
			e.src = wire.IPv6(b).Src()
		}
		err := d.enqueue(e, p)
		d.solicit(e, true)
		l.rearm()
		return err
	}
	e.used = l.now()
	switch e.state {
	case nIncomplete:
		return d.enqueue(e, p)
	case nStale:
		// RFC 4861 §7.3.3: "The first time a node sends a packet to a neighbor whose entry is
		// STALE, the sender changes the state to DELAY and sets a timer to expire in
		// DELAY_FIRST_PROBE_TIME seconds."
		e.state = nDelay
		e.next = l.now().Add(delayFirstProbeTime)
		l.rearm()
	}
	l.nd6.Cachehit++
	return n.eth.Output(p, e.mac, uint16(wire.EtherTypeIPv6))
}

// enqueue adds p to e's queue, dropping e's oldest packet when the pool is empty (lwIP
// does the same).
func (d *ndState) enqueue(e *neighbor, p *pbuf.Pbuf) error {
	n, err := e.q.Push(d.queue, p)
	d.l.nd6.Drop += uint64(n)
	d.l.nd6.Memerr += uint64(n)
	return err
}

// sendQueue sends the packets waiting for e, now resolved.
func (d *ndState) sendQueue(e *neighbor) {
	for p := e.q.Pop(d.queue); p != nil; p = e.q.Pop(d.queue) {
		_ = e.n.eth.Output(p, e.mac, uint16(wire.EtherTypeIPv6))
	}
}

// solicit sends a Neighbor Solicitation for e: multicast to the solicited-node group while
// resolving, unicast to the cached address when probing.
func (d *ndState) solicit(e *neighbor, multicast bool) {
	l := d.l
	e.probes++
	e.next = l.now().Add(d.retrans(e.n))
	// RFC 4861 §7.2.2: "If the source address of the packet prompting the solicitation is
	// the same as one of the addresses assigned to the outgoing interface, that address
	// SHOULD be placed in the IP Source Address of the outgoing solicitation."
	src := e.src
	if a := e.n.findAddr(src); a == nil || !a.usable() {
		var err error
		if src, err = l.SourceFor(e.addr, e.n); err != nil {
			return // no usable address yet (link-local still tentative): try again later
		}
	}
	dst := e.addr
	if multicast {
		dst = solicitedNode(e.addr)
	}
	d.sendNS(e.n, src, dst, e.addr)
}

// sendNS sends a Neighbor Solicitation for target from src (unspecified for DAD: no source
// link-layer address option then, RFC 4861 §4.3).
func (d *ndState) sendNS(n *Netif, src, dst, target netip.Addr) {
	d.sendSolicit(n, src, dst, target)
}

// sendSolicit sends a Router Solicitation (target invalid; RFC 4861 §4.1) or a Neighbor
// Solicitation for target from src to dst, with our link-layer address unless src is
// unspecified ("MUST NOT be included when the source IP address is the unspecified
// address").
func (d *ndState) sendSolicit(n *Netif, src, dst, target netip.Addr) {
	size := wire.NDPNeighborSolicitLen
	if !target.IsValid() {
		size = wire.NDPRouterSolicitLen
	}
	if !src.IsUnspecified() {
		size += ndOptLLALen
	}
	q, err := d.l.alloc.Alloc(pbuf.LayerIP, size, pbuf.RAM)
	if err != nil {
		d.l.nd6.Memerr++
		d.l.nd6.Drop++
		return
	}
	b := q.Payload()
	var k int
	if target.IsValid() {
		k, _ = wire.EmitNDPNeighborSolicit(b, target)
	} else {
		k, _ = wire.EmitNDPRouterSolicit(b)
	}
	if !src.IsUnspecified() {
		_, _ = wire.EmitNDPLinkLayerOption(b[k:], wire.NDPOptSourceLLAddr, n.hw)
	}
	d.send(n, q, src, dst)
}

// sendNA sends a Neighbor Advertisement for our address target with our link-layer
// address.
func (d *ndState) sendNA(n *Netif, target, dst netip.Addr, flags uint8) {
	q, err := d.l.alloc.Alloc(pbuf.LayerIP, wire.NDPNeighborAdvertLen+ndOptLLALen, pbuf.RAM)
	if err != nil {
		d.l.nd6.Memerr++
		d.l.nd6.Drop++
		return
	}
	b := q.Payload()
	k, _ := wire.EmitNDPNeighborAdvert(b, flags, target)
	_, _ = wire.EmitNDPLinkLayerOption(b[k:], wire.NDPOptTargetLLAddr, n.hw)
	d.send(n, q, target, dst)
}

// send checksums ND message q (owned) and sends it with hop limit 255 (RFC 4861: every ND
// message is sent with Hop Limit 255 so receivers can tell it was not forwarded).
func (d *ndState) send(n *Netif, q *pbuf.Pbuf, src, dst netip.Addr) {
	wire.ICMPv6(q.Payload()).SetChecksum(src, dst)
	d.l.nd6.Xmit++
	d.l.icmp6.Xmit++
	_ = d.l.send6Hdr(n, q, src, dst, dst, wire.ProtoICMPv6, OutputOptions{TTL: ndHopLimit, Netif: n}, false)
}

// retrans is RetransTimer for n (an RA may have set it).
func (d *ndState) retrans(n *Netif) time.Duration {
	if n.retrans > 0 {
		return n.retrans
	}
	return max(d.l.opts.ND6RetransTimer, time.Millisecond)
}

// reachableTime draws ReachableTime: "a uniformly distributed random value between
// MIN_RANDOM_FACTOR and MAX_RANDOM_FACTOR times BaseReachableTime" (RFC 4861 §6.3.2).
func (d *ndState) reachableTime(n *Netif) time.Duration {
	base := d.l.opts.ND6ReachableTime
	if n.reachable > 0 {
		base = n.reachable
	}
	if base <= 0 {
		base = 30 * time.Second
	}
	f := minRandomFactor + d.l.rng.Float64()*(maxRandomFactor-minRandomFactor)
	return time.Duration(float64(base) * f)
}

// input handles an ND message (RS, RA, NS, NA, Redirect); p is positioned at the IPv6
// header (h.HeaderLen) and owned.
func (d *ndState) input(h *Header, p *pbuf.Pbuf) {
	l := d.l
	l.nd6.Recv++
	n := h.Netif
	if n.eth == nil {
		p.Free() // no link-layer addresses to resolve on an IP-medium netif
		return
	}
	m := l.contiguous(p, h.HeaderLen, p.TotLen()-h.HeaderLen)
	// RFC 4861 §6.1, §7.1: "The IP Hop Limit field has a value of 255, i.e., the packet
	// could not possibly have been forwarded by a router."
	if h.TTL != ndHopLimit {
		l.dropPkt(p, &l.nd6.Proterr)
		return
	}
	switch m[0] {
	case wire.ICMPv6NeighborSolicit:
		d.inputNS(h, n, m)
	case wire.ICMPv6NeighborAdvert:
		d.inputNA(h, n, m)
	case wire.ICMPv6RouterAdvert:
		d.inputRA(h, n, m)
	default:
		// Router Solicitations are for routers; Redirects are not implemented.
	}
	p.Free()
}

// inputNS validates (RFC 4861 §7.1.1) and answers (§7.2.3, RFC 4862 §5.4.3) a Neighbor
// Solicitation. m is borrowed.
func (d *ndState) inputNS(h *Header, n *Netif, m []byte) {
	l := d.l
	if wire.CheckNDPNeighborSolicit(m) != nil {
		l.nd6.Drop++
		l.nd6.Proterr++
		return
	}
	ns := wire.NDPNeighborSolicit(m)
	target := ns.TargetAddress()
	mac, hasLLA := findLLA(ns.Options(), wire.NDPOptSourceLLAddr)
	unspec := h.Src.IsUnspecified()
	// "If the IP source address is the unspecified address, the IP destination address is a
	// solicited-node multicast address" and "there is no source link-layer address option".
	if unspec && (!isSolicitedNode(h.Dst) || hasLLA) {
		l.nd6.Drop++
		l.nd6.Proterr++
		return
	}
	a := n.findAddr(target)
	if a == nil || a.state == Duplicated || target.Is4() {
		return // not ours: another node's solicitation sharing our solicited-node group
	}
	if a.state == Tentative {
		// RFC 4862 §5.4.3: "If the source address of the Neighbor Solicitation is the
		// unspecified address, the solicitation is from a node performing Duplicate Address
		// Detection" for the same address: ours is a duplicate. Otherwise the sender is
		// resolving the tentative address and "the solicitation should be silently ignored".
		if unspec {
			d.dadFailed(n, a)
		}
		return
	}
	if !unspec && hasLLA {
		d.update(n, h.Src, mac, false, false)
	}
	if n.follower {
		return // the leading netif answers
	}
	// RFC 4861 §7.2.4: answer to the source, solicited, with the override flag (the target
	// is not anycast); to all-nodes without S when the source was unspecified.
	if unspec {
		d.sendNA(n, target, allNodes, wire.NDPNAOverride)
	} else {
		d.sendNA(n, target, h.Src, wire.NDPNASolicited|wire.NDPNAOverride)
	}
}

// update records a link-layer address learned from an NS or RA (RFC 4861 §7.2.3, §6.3.4):
// a new entry is STALE, a changed address makes an entry STALE, an INCOMPLETE entry is
// resolved and its queue sent.
func (d *ndState) update(n *Netif, addr netip.Addr, mac [6]byte, router, setRouter bool) {
	e := d.find(n, addr)
	if e == nil {
		if e = d.alloc(n, addr); e == nil {
			return
		}
		e.state, e.mac = nStale, mac
	} else if e.state == nIncomplete {
		e.state, e.mac = nStale, mac
		d.sendQueue(e)
	} else if e.mac != mac {
		e.state, e.mac = nStale, mac
	}
	if setRouter {
		e.router = router
	}
	d.l.rearm()
}

// inputNA validates (RFC 4861 §7.1.2) and applies (§7.2.5) a Neighbor Advertisement.
func (d *ndState) inputNA(h *Header, n *Netif, m []byte) {
	l := d.l
	if wire.CheckNDPNeighborAdvert(m) != nil {
		l.nd6.Drop++
		l.nd6.Proterr++
		return
	}
	na := wire.NDPNeighborAdvert(m)
	// "If the IP Destination Address is a multicast address the Solicited flag is zero."
	if h.Dst.IsMulticast() && na.Solicited() {
		l.nd6.Drop++
		l.nd6.Proterr++
		return
	}
	target := na.TargetAddress()
	if a := n.findAddr(target); a != nil {
		// RFC 4862 §5.4.4: an advertisement for a tentative address means it is a
		// duplicate; for an assigned one it is another node's misconfiguration (ignored).
		if a.state == Tentative {
			d.dadFailed(n, a)
		}
		return
	}
	e := d.find(n, target)
	mac, hasLLA := findLLA(na.Options(), wire.NDPOptTargetLLAddr)
	if e == nil {
		// "There is no need to create an entry if none exists", except on a shared link:
		// the advertisement answers another core's solicitation, and every core is given it.
		if !n.shared || !hasLLA {
			return
		}
		if e = d.alloc(n, target); e == nil {
			return
		}
		e.state = nIncomplete
	}
	now := l.now()
	if e.state == nIncomplete {
		if !hasLLA {
			return
		}
		e.mac = mac
		if na.Solicited() {
			e.state, e.next = nReachable, now.Add(d.reachableTime(n))
		} else {
			e.state = nStale
		}
		e.router = na.Router()
		d.sendQueue(e)
		l.rearm()
		return
	}
	same := !hasLLA || mac == e.mac
	if !na.Override() && !same {
		// "If the Override flag is clear and the supplied link-layer address differs from
		// that in the cache ... if the state of the entry is REACHABLE, set it to STALE, but
		// do not update the entry in any other way."
		if e.state == nReachable {
			e.state = nStale
		}
		return
	}
	if hasLLA {
		e.mac = mac
	}
	if na.Solicited() {
		e.state, e.next = nReachable, now.Add(d.reachableTime(n))
	} else if !same {
		e.state = nStale
	}
	// "In those cases where the IsRouter flag changes from TRUE to FALSE ... the node MUST
	// remove that router from the Default Router List".
	if e.router && !na.Router() {
		l.setRARoute(n, defaultRoute6, target, time.Time{}, true)
	}
	e.router = na.Router()
	l.rearm()
}

// findLLA returns the link-layer address option of type typ.
func findLLA(o wire.NDPOptions, typ uint8) ([6]byte, bool) {
	it := o.Iter()
	for {
		opt, ok := it.Next()
		if !ok {
			return [6]byte{}, false
		}
		if opt.Type() == typ {
			mac, ok := opt.LinkLayerAddr()
			return mac, ok
		}
	}
}

func isSolicitedNode(a netip.Addr) bool {
	b := a.As16()
	return a.Is6() && b[0] == 0xff && b[1] == 0x02 && b[11] == 0x01 && b[12] == 0xff &&
		b[2]|b[3]|b[4]|b[5]|b[6]|b[7]|b[8]|b[9]|b[10] == 0
}

// startDAD makes a tentative and schedules its probes (RFC 4862 §5.4). When the netif has
// just come up the first probe waits a random delay of up to MAX_RTR_SOLICITATION_DELAY
// (§5.4.2).
func (d *ndState) startDAD(n *Netif, a *ifAddr, ifUp bool) {
	if a.prefix.Addr().Is4() {
		return
	}
	if d.l.opts.IPv6DupAddrDetectTransmits <= 0 || n.follower {
		if a.state == Tentative {
			d.l.setState(a, Preferred)
		}
		return
	}
	d.l.setState(a, Tentative)
	a.dadLeft = d.l.opts.IPv6DupAddrDetectTransmits
	a.dadNext = d.l.now()
	if ifUp {
		a.dadNext = a.dadNext.Add(d.l.randDur(maxRtrSolicitationDelay))
	}
}

// dadFailed marks a duplicate (RFC 4862 §5.4.5): it is never used.
func (d *ndState) dadFailed(n *Netif, a *ifAddr) {
	d.l.setState(a, Duplicated)
	a.dadLeft = 0
	d.l.snmSync(n, true) // its solicited-node group goes unless another address holds it
	d.l.nd6.Err++
	d.l.rearm()
}

// randDur returns a uniformly random duration in [0, max).
func (l *Layer) randDur(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return time.Duration(l.rng.Int64N(int64(max)))
}
