package ip

import (
	"net/netip"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

// Multicast group membership, the host side of IGMP (RFC 3376 with the RFC 2236 and RFC
// 1112 compatibility modes) and MLD (RFC 3810 with RFC 2710 compatibility), any-source
// only: every joined group is in EXCLUDE mode with an empty source list.
//
// A membership is one (netif, group) element of the IGMP_GROUP or MLD6_GROUP pool,
// refcounted by JoinGroup/LeaveGroup and linked into its netif's list for the family. The
// engine in mcengine.go is family-neutral; igmp.go and mld6.go parse and build the
// messages. One clock.Timeout (Layer.mcTmo) serves every pending report, armed only while
// one is.
//
// The solicited-node groups of a netif's IPv6 addresses (snm.go) are memberships in the
// same list, reported like joined ones, but held by the addresses rather than by
// JoinGroup: their elements come from the Go heap with the address (an address is a heap
// object already, and their number is the number of addresses, not something
// MempNumMLD6Group could bound), so the MLD6_GROUP pool counts only what JoinGroup took.

// mcMode is a netif's host compatibility mode for a family (RFC 3376 §7.2.1, RFC 3810
// §8.2.1).
type mcMode uint8

const (
	modeV3 mcMode = iota // IGMPv3 / MLDv2
	modeV2               // IGMPv2 / MLDv1
	modeV1               // IGMPv1
)

// Protocol defaults (RFC 3376 §8, RFC 3810 §9).
const (
	defaultRobustness = 2
	defaultQueryIntvl = 125 * time.Second
	defaultQueryResp  = 10 * time.Second
	// Unsolicited Report Interval: 1 s for IGMPv3 and MLDv2 (RFC 3376 §8.11, RFC 3810
	// §9.11), 10 s for IGMPv1/v2 and MLDv1 (RFC 2236 §8.10, RFC 2710 §7.10).
	unsolicitedV3 = time.Second
	unsolicitedV2 = 10 * time.Second
)

// group is one membership: an element of the IGMP_GROUP or MLD6_GROUP pool.
type group struct {
	n    *Netif
	next *group
	addr netip.Addr
	refs int32 // JoinGroup calls not yet left; 0 while a v3 leave is still being reported
	// snm: the solicited-node group of one of n's addresses (snm.go), a membership
	// whatever refs says. heap: the element is not from the MLD6_GROUP pool (it was
	// created for a solicited-node group).
	snm, heap bool

	// State-change (unsolicited) reports still to send and when the next is due; leaving
	// makes them v3 TO_IN{} records instead of joins.
	changeLeft uint8
	leaving    bool
	changeAt   time.Time
	// respAt is when the report answering a query is due (zero: none pending): the v3
	// group timer, or the v1/v2 delay timer.
	respAt time.Time
	// lastReporter: we sent the last v1/v2 report for the group (RFC 2236 §3), so the
	// leave is ours to send.
	lastReporter bool
}

// joined reports whether e is a membership now: joined by JoinGroup, or the solicited-node
// group of an address. false while only a leave is still being reported.
func (e *group) joined() bool { return e.refs > 0 || e.snm }

// mcFamily is one netif's multicast state for IPv4 or IPv6.
type mcFamily struct {
	groups *group
	count  int
	// Older Version Querier Present timers (RFC 3376 §7.2.1, RFC 3810 §8.2.1): until when
	// an IGMPv1 / IGMPv2 or MLDv1 querier is assumed present. Evaluated lazily: no timer.
	v1Until, v2Until time.Time
	// genAt is the v3 interface timer: when the answer to a general query is due (zero:
	// none).
	genAt time.Time
	qrv   uint8         // Robustness Variable from the last v3 query (0: the default)
	qi    time.Duration // Query Interval from the last v3 query's QQIC (0: the default)
}

// robustness is the family's Robustness Variable.
func (f *mcFamily) robustness() int {
	if f.qrv != 0 {
		return int(f.qrv)
	}
	return defaultRobustness
}

// olderQuerierTimeout is the Older Version Querier Present Timeout: Robustness times the
// Query Interval plus the Query Response Interval (RFC 3376 §8.12, RFC 3810 §9.12).
func (f *mcFamily) olderQuerierTimeout() time.Duration {
	qi := f.qi
	if qi == 0 {
		qi = defaultQueryIntvl
	}
	return time.Duration(f.robustness())*qi + defaultQueryResp
}

// mode is the host compatibility mode now: v1 while an IGMPv1 querier is present, else v2
// while an IGMPv2 (MLDv1) querier is, else v3.
func (f *mcFamily) mode(now time.Time) mcMode {
	switch {
	case now.Before(f.v1Until):
		return modeV1
	case now.Before(f.v2Until):
		return modeV2
	}
	return modeV3
}

// find returns the membership of g (joined or still leaving), or nil.
func (f *mcFamily) find(g netip.Addr) *group {
	for e := f.groups; e != nil; e = e.next {
		if e.addr == g {
			return e
		}
	}
	return nil
}

// member reports whether g is joined (refs > 0).
func (f *mcFamily) member(g netip.Addr) bool {
	for e := f.groups; e != nil; e = e.next {
		if e.addr == g {
			return e.refs > 0
		}
	}
	return false
}

var (
	allSystems4  = netip.AddrFrom4([4]byte{224, 0, 0, 1})
	allRouters4  = netip.AddrFrom4([4]byte{224, 0, 0, 2})
	igmpv3Rtrs   = netip.AddrFrom4([4]byte{224, 0, 0, 22})
	mldv2Routers = netip.MustParseAddr("ff02::16")
)

// implicitGroup reports whether every netif is always a member of g without joining:
// 224.0.0.1, the permanent group of all IP hosts (RFC 1112 §4), and the IPv6 all-nodes
// groups (RFC 4291 §2.7.1). Joins and leaves of them do nothing.
func implicitGroup(g netip.Addr) bool {
	return g == allSystems4 || g == allNodes || g == allNodesIface
}

// reportable reports whether IGMP/MLD messages are sent for g: never for 224.0.0.1 (RFC
// 3376 §5: "the all-systems multicast address, 224.0.0.1, is handled as a special case"),
// ff02::1, and "multicast addresses whose scope is 0 (reserved) or 1 (node-local)" (RFC
// 3810 §6).
func reportable(g netip.Addr) bool {
	if g.Is4() {
		return g != allSystems4
	}
	return g != allNodes && scope6(g) > 1
}

// mc returns n's state, the pool and the counters of g's family.
func (l *Layer) mc(n *Netif, v6 bool) (*mcFamily, *memp.Pool[group], *stats.Proto) {
	if v6 {
		return &n.mc6, l.mldPool, &l.mld6
	}
	return &n.mc4, l.igmpPool, &l.igmp
}

// JoinGroup joins multicast group g on n, refcounted per (netif, group): the first join
// makes the netif accept packets to g and sends unsolicited reports ([Robustness Variable]
// of them, the first at once, the others at random intervals up to the Unsolicited Report
// Interval); later joins only count. n nil picks NetifForGroup(g, 0). Joins of the implicit
// groups (224.0.0.1, ff02::1, ff01::1) succeed and do nothing; a join of a solicited-node
// group an address of n already holds only counts (no pool element, no report). errs.Val: g is not multicast,
// or n is not a netif of this layer; errs.Mem: the group table (MempNumIGMPGroup /
// MempNumMLD6Group) is full, counted in the family's Memerr; errs.Rte: no netif for g;
// errs.Clsd after Close. Core context.
func (l *Layer) JoinGroup(n *Netif, g netip.Addr) error {
	l.timers.AssertCore()
	g = g.Unmap().WithZone("")
	switch {
	case l.closed:
		return errs.Clsd
	case !g.IsMulticast():
		return errs.Val
	case n == nil:
		if n = l.NetifForGroup(g, 0); n == nil {
			return errs.Rte
		}
	case n.l != l || l.netifs[n.index] != n:
		return errs.Val
	}
	if implicitGroup(g) {
		return nil
	}
	f, pool, st := l.mc(n, g.Is6())
	if e := f.find(g); e != nil {
		was := e.joined()
		e.refs++
		if !was {
			// Rejoined while the leave was still being reported.
			l.changed()
			l.stateChange(n, f, e, false)
		}
		return nil
	}
	e := pool.Get()
	if e == nil {
		st.Memerr++
		return errs.Mem
	}
	*e = group{n: n, addr: g, refs: 1, next: f.groups}
	f.groups = e
	f.count++
	l.changed() // the input caches remember accepted destinations
	l.stateChange(n, f, e, false)
	return nil
}

// LeaveGroup drops one join of g on n (nil: the netif NetifForGroup(g, 0) picks if it
// joined g, else the first netif that did). The last leave stops accepting g and reports
// it: IGMPv3/MLDv2 send TO_IN{} state-change records [Robustness Variable] times, IGMPv2
// and MLDv1 a Leave Group / Done when this host sent the last report, IGMPv1 nothing.
// errs.Val if g was not joined there. Leaves of the implicit groups succeed. Core context.
func (l *Layer) LeaveGroup(n *Netif, g netip.Addr) error {
	l.timers.AssertCore()
	g = g.Unmap().WithZone("")
	if !g.IsMulticast() || n != nil && (n.l != l || l.netifs[n.index] != n) {
		return errs.Val
	}
	if implicitGroup(g) {
		return nil
	}
	if n == nil {
		if m := l.NetifForGroup(g, 0); m != nil {
			if f, _, _ := l.mc(m, g.Is6()); f.member(g) {
				n = m
			}
		}
		for _, m := range l.list {
			if f, _, _ := l.mc(m, g.Is6()); n == nil && f.member(g) {
				n = m
			}
		}
		if n == nil {
			return errs.Val
		}
	}
	f, _, _ := l.mc(n, g.Is6())
	e := f.find(g)
	if e == nil || e.refs == 0 {
		return errs.Val
	}
	e.refs--
	if e.joined() {
		return nil // more joins, or the solicited-node group of an address, hold it
	}
	l.changed()
	l.stateChange(n, f, e, true)
	return nil
}

// Groups returns the groups joined on n (nil: on every netif), IPv4 and IPv6, newest
// first per netif; the implicit groups and the solicited-node groups the addresses hold
// (unless JoinGroup joined them too) are not listed. A new slice.
func (l *Layer) Groups(n *Netif) []netip.Addr {
	l.timers.AssertCore()
	var out []netip.Addr
	add := func(m *Netif) {
		for _, f := range [2]*mcFamily{&m.mc4, &m.mc6} {
			for e := f.groups; e != nil; e = e.next {
				if e.refs > 0 {
					out = append(out, e.addr)
				}
			}
		}
	}
	if n != nil {
		add(n)
		return out
	}
	for _, m := range l.list {
		add(m)
	}
	return out
}

// NetifForGroup picks the netif for sending to or joining group g (IP_MULTICAST_IF,
// IPV6_MULTICAST_IF, IP_ADD_MEMBERSHIP): ifIndex > 0 names it (nil if there is no such netif
// or it is down); 0 takes the netif of the route to g (a zone on g names it too), else the
// first up netif with an assigned address of g's family. nil when there is none.
func (l *Layer) NetifForGroup(g netip.Addr, ifIndex int) *Netif {
	l.timers.AssertCore()
	if ifIndex > 0 {
		if n := l.NetifByIndex(ifIndex); n != nil && n.up {
			return n
		}
		return nil
	}
	g = g.Unmap()
	if n, _, err := l.Lookup(g); err == nil {
		return n
	}
	for _, n := range l.list {
		if !n.up {
			continue
		}
		for _, a := range n.addrs {
			if a.prefix.Addr().Is6() == g.Is6() && a.usable() {
				return n
			}
		}
	}
	return nil
}

// isMember reports whether n accepts packets to multicast group g: the implicit groups, the
// solicited-node groups of its IPv6 addresses, and joined groups.
func (n *Netif) isMember(g netip.Addr) bool {
	if g.Is4() {
		return g == allSystems4 || n.mc4.member(g)
	}
	return n.inGroup(g) || n.mc6.member(g)
}

// loopMcast queues a copy of a multicast packet for local delivery at Flush
// (IP_MULTICAST_LOOP): hdr (may be empty) followed by p, which is borrowed. When the copy
// cannot be made or queued, the IP record counts a drop (Memerr); the packet still goes out.
func (l *Layer) loopMcast(n *Netif, hdr []byte, p *pbuf.Pbuf) {
	st := &l.ip
	if len(hdr) > 0 && hdr[0]>>4 == 6 || len(hdr) == 0 && l.ipStats(p) == &l.ip6 {
		st = &l.ip6
	}
	q, err := l.alloc.Alloc(pbuf.LayerLink, len(hdr)+p.TotLen(), pbuf.RAM)
	if err != nil {
		st.Drop++
		st.Memerr++
		return
	}
	b := q.Payload()
	copy(b, hdr)
	p.CopyOut(b[len(hdr):], 0)
	_ = l.loopback(n, q)
}

// generalOrMulticast checks q's group: unspecified, a general query (the group is then
// made invalid), or multicast; false for anything else, which the query is dropped for.
func (q *mcQuery) generalOrMulticast() bool {
	if q.group.IsUnspecified() {
		q.group = netip.Addr{}
		return true
	}
	return q.group.IsMulticast()
}

// report is the layout of an IGMPv3 or MLDv2 Membership Report: the IP headers in front of
// the message, the report header, a record without sources, the message type and where
// reports go.
type report struct {
	hdr, head, rec int
	typ            uint8
	to             netip.Addr
}

var reports = [2]report{
	{hdr: igmpHdrLen, head: wire.IGMPHeaderLen, rec: wire.IGMPv3RecordLen, typ: wire.IGMPv3Report, to: igmpv3Rtrs},
	{hdr: mldHdrLen, head: wire.MLDv2ReportHeaderLen, rec: wire.MLDv2RecordLen, typ: wire.ICMPv6MLDv2Report, to: mldv2Routers},
}

// sendRecord sends IGMPv3 or MLDv2 Membership Reports (RFC 3376 §4.2.14, RFC 3810 §5.2.14):
// one record of type typ for g, or, g invalid, a record for every reportable joined group
// of n, as many per packet as the MTU allows.
func (l *Layer) sendRecord(n *Netif, v6 bool, g netip.Addr, typ uint8) {
	if n.follower {
		return // the leading netif reports
	}
	f, mc, mtu := &reports[0], &n.mc4, n.mtu
	if v6 {
		f, mc, mtu = &reports[1], &n.mc6, n.mtuFor(true)
	}
	per := max((mtu-f.hdr-f.head)/f.rec, 1)
	e := mc.groups
	for {
		k := 1
		if !g.IsValid() {
			for ; e != nil && (!e.joined() || !reportable(e.addr)); e = e.next {
			}
			if e == nil {
				return
			}
			k = 0
			for x := e; x != nil && k < per; x = x.next {
				if x.joined() && reportable(x.addr) {
					k++
				}
			}
		}
		p := l.mcAlloc(v6, f.head+k*f.rec)
		if p == nil {
			return
		}
		msg := p.Payload()[f.hdr:]
		if v6 {
			wire.MLD(msg).SetType(f.typ)
			wire.MLD(msg).SetNumRecords(k)
		} else {
			wire.IGMP(msg).SetType(f.typ)
			wire.IGMP(msg).SetNumRecords(k)
		}
		for i := 0; i < k; i++ {
			a := g
			if !g.IsValid() {
				for !e.joined() || !reportable(e.addr) {
					e = e.next
				}
				a, e = e.addr, e.next
			}
			b := msg[f.head+i*f.rec:]
			rec := wire.IGMPv3Record(b)
			if v6 {
				rec = wire.MLDv2Record(b)
			}
			rec.SetType(typ)
			rec.SetGroup(a)
		}
		if v6 {
			l.mldSend(n, p, f.to)
		} else {
			l.igmpSend(n, p, f.to)
		}
		if g.IsValid() {
			return
		}
	}
}

// mcAlloc allocates an IGMP (MLD) packet with mlen bytes of zeroed message and room for its
// IP headers, owned by the caller; nil (counted) when out of memory.
func (l *Layer) mcAlloc(v6 bool, mlen int) *pbuf.Pbuf {
	hdr, st := igmpHdrLen, &l.igmp
	if v6 {
		hdr, st = mldHdrLen, &l.mld6
	}
	p, err := l.alloc.Alloc(pbuf.LayerLink, hdr+mlen, pbuf.RAM)
	if err != nil {
		st.Drop++
		st.Memerr++
		return nil
	}
	clear(p.Payload())
	return p
}
