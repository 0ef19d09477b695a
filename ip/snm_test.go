package ip

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/wire"
)

// nsTarget returns the target of a Neighbor Solicitation in an Ethernet frame.
func nsTarget(f []byte) (netip.Addr, bool) {
	const ip6, icmp = 14, 14 + wire.IPv6HeaderLen
	if len(f) < icmp+24 || f[12] != 0x86 || f[13] != 0xdd || f[ip6+6] != wire.ProtoICMPv6 ||
		f[icmp] != wire.ICMPv6NeighborSolicit {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16([16]byte(f[icmp+8 : icmp+24])), true
}

// ethMLD wraps an IPv6 MLD packet in an Ethernet frame to its multicast MAC.
func ethMLD(pkt []byte) []byte {
	dst := netip.AddrFrom16([16]byte(pkt[24:40]))
	mac := wire.IPv6MulticastMAC(dst)
	f := append(mac[:], 0x02, 0, 0, 0, 0, 0x99, 0x86, 0xdd)
	return append(f, pkt...)
}

// snmReports returns, per group, the record types of the MLDv2 reports in msgs (in order),
// and fails on any other message.
func snmReports(t *testing.T, msgs []mcMsg) map[netip.Addr][]uint8 {
	t.Helper()
	out := map[netip.Addr][]uint8{}
	for _, m := range msgs {
		if m.kind != "mldv2report" {
			t.Fatalf("unexpected %+v", m)
		}
		for i, g := range m.groups {
			out[g] = append(out[g], m.recs[i])
		}
	}
	return out
}

// TestMLDSolicitedNode: the solicited-node groups of an Ethernet netif's addresses are
// reported like joined groups (RFC 4861 §7.2.1, RFC 3810 §6): from the first DAD probe on,
// in answers to queries, left with the last address using them; none takes an MLD6_GROUP
// pool element. The pipe's MAC 02:00:00:00:00:01 gives the link-local address the group
// of fd42::1, ff02::1:ff00:1: the two share it.
func TestMLDSolicitedNode(t *testing.T) {
	o := testOptions()
	o.IPv6DupAddrDetectTransmits = 1
	p := newMcPair(t, link.MediumEthernet, o)
	ll, ula := linkLocalFromMAC(p.na.hw), mustAddr("fd42::1")
	g1 := solicitedNode(ll)
	if solicitedNode(ula) != g1 {
		t.Fatalf("%v and %v do not share a group", ll, ula)
	}
	pool := func() int { return p.a.l.mldPool.Stats().Used }

	// Coming up: the group reported twice (Robustness 2), the first report in the same
	// tick as the first DAD probe (RFC 4862 §5.4.2 delays both), from :: while the
	// link-local address is tentative (RFC 3590).
	firstNS, firstRep := -1, -1
	var reps []mcMsg
	for step := range 300 {
		p.a.clk.Advance(10 * time.Millisecond)
		p.b.clk.Advance(10 * time.Millisecond)
		p.pump()
		for _, f := range p.ta.Take() {
			if tg, ok := nsTarget(f); ok && (tg == ll || tg == ula) && firstNS < 0 {
				firstNS = step
			}
			if m, ok := decodeMc(t, f, link.MediumEthernet); ok {
				if firstRep < 0 {
					firstRep = step
				}
				reps = append(reps, m)
			}
		}
	}
	if len(reps) != 2 || !slices.Equal(reps[0].groups, []netip.Addr{g1}) || !slices.Equal(reps[1].groups, []netip.Addr{g1}) ||
		reps[0].recs[0] != recToEx || reps[1].recs[0] != recToEx || reps[0].src != unspecified6 {
		t.Fatalf("coming up: %+v", reps)
	}
	if firstNS < 0 || firstRep != firstNS {
		t.Errorf("first report at step %d, first probe at %d", firstRep, firstNS)
	}
	if pool() != 0 {
		t.Fatalf("MLD6_GROUP pool: %d used by solicited-node groups", pool())
	}

	// A new address: TO_EX at once (DAD starts now), from the link-local address, and
	// once more.
	a2 := mustAddr("fd42::77")
	g2 := solicitedNode(a2)
	if err := p.na.AddAddr(mustPrefix(a2, 64)); err != nil {
		t.Fatal(err)
	}
	p.pump()
	msgs := mcMsgs(t, p.ta.Take(), link.MediumEthernet)
	if len(msgs) != 1 || msgs[0].src != ll || !slices.Equal(msgs[0].groups, []netip.Addr{g2}) || msgs[0].recs[0] != recToEx {
		t.Fatalf("new address: %+v", msgs)
	}
	p.run(3 * time.Second)
	if r := snmReports(t, mcMsgs(t, p.ta.Take(), link.MediumEthernet)); len(r) != 1 || !slices.Equal(r[g2], []uint8{recToEx}) {
		t.Fatalf("retransmission: %v", r)
	}

	// A general MLDv2 query: IS_EX for both, never ff02::1.
	p.a.inject(p.na, ethMLD(mldQueryPkt(ll6Q, allNodes, true, 500, netip.Addr{}, 1, true)))
	p.run(time.Second)
	msgs = mcMsgs(t, p.ta.Take(), link.MediumEthernet)
	if len(msgs) != 1 || msgs[0].src != ll || !sameSet(msgs[0].groups, []netip.Addr{g1, g2}) ||
		msgs[0].recs[0] != recIsEx || msgs[0].recs[1] != recIsEx {
		t.Fatalf("general query: %+v", msgs)
	}
	// A group-specific query for one of them.
	p.a.inject(p.na, ethMLD(mldQueryPkt(ll6Q, g2, true, 500, g2, 1, true)))
	p.run(time.Second)
	if r := snmReports(t, mcMsgs(t, p.ta.Take(), link.MediumEthernet)); len(r) != 1 || !slices.Equal(r[g2], []uint8{recIsEx}) {
		t.Fatalf("group query: %v", r)
	}

	// JoinGroup of a group an address holds only counts: no pool element, no report;
	// its LeaveGroup reports nothing either, a second one is errs.Val.
	if err := p.a.l.JoinGroup(p.na, g2); err != nil || pool() != 0 {
		t.Fatalf("JoinGroup(snm): %v, pool %d", err, pool())
	}
	if g := p.a.l.Groups(p.na); !slices.Equal(g, []netip.Addr{g2}) {
		t.Fatalf("Groups: %v", g)
	}
	if err := p.a.l.LeaveGroup(p.na, g2); err != nil {
		t.Fatal(err)
	}
	if err := p.a.l.LeaveGroup(p.na, g2); err != errs.Val {
		t.Fatalf("second LeaveGroup: %v", err)
	}
	p.run(2 * time.Second)
	if msgs := mcMsgs(t, p.ta.Take(), link.MediumEthernet); len(msgs) != 0 || len(p.a.l.Groups(nil)) != 0 {
		t.Fatalf("join/leave of a held group: %+v", msgs)
	}

	// A sharer of g2 adds nothing; removing one of the two keeps the group; the last one
	// leaves it: TO_IN{} twice. The same for the link-local address's group.
	a3 := mustAddr("fd43::77")
	if err := p.na.AddAddr(mustPrefix(a3, 64)); err != nil {
		t.Fatal(err)
	}
	p.run(3 * time.Second)
	_ = p.na.RemoveAddr(a2)
	_ = p.na.RemoveAddr(ula)
	p.run(2 * time.Second)
	if msgs := mcMsgs(t, p.ta.Take(), link.MediumEthernet); len(msgs) != 0 {
		t.Fatalf("shared groups: %+v", msgs)
	}
	_ = p.na.RemoveAddr(a3)
	p.run(2 * time.Second)
	if r := snmReports(t, mcMsgs(t, p.ta.Take(), link.MediumEthernet)); len(r) != 1 || !slices.Equal(r[g2], []uint8{recToIn, recToIn}) {
		t.Fatalf("last address removed: %v", r)
	}

	// DAD failure: b owns fd42::2, so a's copy is duplicated and its group left.
	dup := mustAddr("fd42::2")
	if err := p.na.AddAddr(mustPrefix(dup, 64)); err != nil {
		t.Fatal(err)
	}
	p.run(3 * time.Second)
	r := snmReports(t, mcMsgs(t, p.ta.Take(), link.MediumEthernet))
	if len(r) != 1 || !slices.Equal(r[solicitedNode(dup)], []uint8{recToEx, recToIn, recToIn}) {
		t.Fatalf("duplicate: %v", r)
	}
	if s := p.a.addrState(dup); s != Duplicated {
		t.Fatalf("fd42::2 is %v on a", s)
	}
	if pool() != 0 {
		t.Fatalf("MLD6_GROUP pool: %d used", pool())
	}
}

// TestMLDv1SolicitedNode: with an MLDv1 querier the solicited-node groups are reported
// with MLDv1 reports and left with a Done.
func TestMLDv1SolicitedNode(t *testing.T) {
	o := testOptions()
	o.IPv6DupAddrDetectTransmits = 1
	p := newMcPair(t, link.MediumEthernet, o)
	a2 := mustAddr("fd42::77")
	_ = p.na.AddAddr(mustPrefix(a2, 64))
	p.run(3 * time.Second)
	p.ta.Take()
	ll := linkLocalFromMAC(p.na.hw)
	p.a.inject(p.na, ethMLD(mldQueryPkt(ll6Q, allNodes, false, 1000, netip.Addr{}, 1, true)))
	p.run(time.Second)
	var got []netip.Addr
	for _, m := range mcMsgs(t, p.ta.Take(), link.MediumEthernet) {
		if m.kind != "mldv1report" || m.dst != m.groups[0] {
			t.Fatalf("v1 answer %+v", m)
		}
		got = append(got, m.groups[0])
	}
	if !sameSet(got, []netip.Addr{solicitedNode(ll), solicitedNode(a2)}) {
		t.Fatalf("v1 reports for %v", got)
	}
	_ = p.na.RemoveAddr(a2)
	p.pump()
	msgs := mcMsgs(t, p.ta.Take(), link.MediumEthernet)
	if len(msgs) != 1 || msgs[0].kind != "done" || msgs[0].dst != allRouters || msgs[0].groups[0] != solicitedNode(a2) {
		t.Fatalf("done: %+v", msgs)
	}
}

// TestSolicitedNodeDownUp: a netif going down reports nothing and frees the groups of the
// addresses it drops; coming back up reports the groups again. No IP-medium netif reports
// them (mcEnv's tests count every MLD message).
func TestSolicitedNodeDownUp(t *testing.T) {
	o := testOptions()
	o.IPv6DupAddrDetectTransmits = 0 // no DAD: reports at once on up
	p := newMcPair(t, link.MediumEthernet, o)
	a2 := mustAddr("fd42::77")
	_ = p.na.AddAddr(mustPrefix(a2, 64))
	ll := linkLocalFromMAC(p.na.hw)
	p.run(3 * time.Second)
	p.ta.Take()
	// fd42::1 and the link-local address share a group: both gone, it goes unreported.
	_ = p.na.RemoveAddr(mustAddr("fd42::1"))
	p.na.SetUp(false)
	p.pump()
	if msgs := mcMsgs(t, p.ta.Take(), link.MediumEthernet); len(msgs) != 0 {
		t.Fatalf("down: %+v", msgs)
	}
	var held []netip.Addr
	for e := p.na.mc6.groups; e != nil; e = e.next {
		held = append(held, e.addr)
	}
	if !slices.Equal(held, []netip.Addr{solicitedNode(a2)}) {
		t.Fatalf("held while down: %v", held)
	}
	p.na.SetUp(true)
	p.pump()
	msgs := mcMsgs(t, p.ta.Take(), link.MediumEthernet)
	r := snmReports(t, msgs)
	if len(msgs) != 2 || msgs[0].src != ll || len(r) != 2 ||
		!slices.Equal(r[solicitedNode(ll)], []uint8{recToEx}) || !slices.Equal(r[solicitedNode(a2)], []uint8{recToEx}) {
		t.Fatalf("up: %+v", msgs)
	}
}

// addrState returns the state of address a on e's netifs (0: none).
func (e *env) addrState(a netip.Addr) AddrState {
	for _, n := range e.l.list {
		if x := n.findAddr(a); x != nil {
			return x.state
		}
	}
	return 0
}

func sameSet(a, b []netip.Addr) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.SortFunc(x, netip.Addr.Compare)
	slices.SortFunc(y, netip.Addr.Compare)
	return slices.Equal(x, y)
}
