package ip

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

// kinds lists the kinds of msgs, for compact assertions.
func kinds(msgs []mcMsg) []string {
	var k []string
	for _, m := range msgs {
		k = append(k, m.kind)
	}
	return k
}

func TestIGMPv3JoinLeave(t *testing.T) {
	e, n, ep := mcEnv(t, testOptions())
	if err := e.l.JoinGroup(n, grp1); err != nil {
		t.Fatal(err)
	}
	e.l.Flush()
	msgs := mcMsgs(t, ep.Take(), link.MediumIP)
	// RFC 3376 §5.1: the State-Change Report goes out at once ...
	if len(msgs) != 1 || msgs[0].kind != "v3report" || msgs[0].dst != igmpv3Rtrs || msgs[0].src != v4A ||
		!slices.Equal(msgs[0].groups, []netip.Addr{grp1}) || msgs[0].recs[0] != recToEx {
		t.Fatalf("join: %+v", msgs)
	}
	// ... and once more (Robustness 2) within the Unsolicited Report Interval (1 s).
	e.run(time.Second)
	if msgs = mcMsgs(t, ep.Take(), link.MediumIP); len(msgs) != 1 || msgs[0].recs[0] != recToEx {
		t.Fatalf("retransmission: %+v", msgs)
	}
	e.run(5 * time.Second)
	if f := ep.Take(); len(f) != 0 || e.l.mcTmo.Pending() {
		t.Fatalf("idle after the reports: %d frames, timer %v", len(f), e.l.mcTmo.Pending())
	}
	// A second join only counts; the first leave only counts.
	_ = e.l.JoinGroup(n, grp1)
	_ = e.l.LeaveGroup(n, grp1)
	e.l.Flush()
	if f := ep.Take(); len(f) != 0 {
		t.Fatalf("refcounted join/leave sent %d frames", len(f))
	}
	if g := e.l.Groups(n); !slices.Equal(g, []netip.Addr{grp1}) {
		t.Fatalf("Groups = %v", g)
	}
	// The last leave: TO_IN{} twice, then the membership is gone.
	if err := e.l.LeaveGroup(n, grp1); err != nil {
		t.Fatal(err)
	}
	e.l.Flush()
	e.run(time.Second)
	msgs = mcMsgs(t, ep.Take(), link.MediumIP)
	if len(msgs) != 2 || msgs[0].recs[0] != recToIn || msgs[1].recs[0] != recToIn {
		t.Fatalf("leave: %+v", msgs)
	}
	if u := e.l.igmpPool.Stats().Used; u != 0 || len(e.l.Groups(n)) != 0 {
		t.Fatalf("after leave: pool used %d, groups %v", u, e.l.Groups(n))
	}
	if err := e.l.LeaveGroup(n, grp1); !errors.Is(err, errs.Val) {
		t.Fatalf("leave of a group not joined: %v", err)
	}
	if s := e.stats(); s.IGMP.Xmit != 4 {
		t.Fatalf("IGMP.Xmit = %d", s.IGMP.Xmit)
	}
}

func TestIGMPv3Queries(t *testing.T) {
	e, n, ep := joinedEnv(t, grp1, grp2)

	// General query, Max Resp Code 50 (5 s): one report with both groups, IS_EX{}.
	e.inject(n, igmpQueryPkt(allSystems4, 3, 50, netip.Addr{}, 2, 125, true))
	if f := ep.Take(); len(f) != 0 {
		t.Fatal("answered a query without delay")
	}
	e.run(5 * time.Second)
	msgs := mcMsgs(t, ep.Take(), link.MediumIP)
	if len(msgs) != 1 || len(msgs[0].groups) != 2 || msgs[0].recs[0] != recIsEx || msgs[0].recs[1] != recIsEx {
		t.Fatalf("general query: %+v", msgs)
	}
	// A group-specific query (to the group) is answered for that group only. Max Resp
	// Code 0x8f in the exponent form: (0xf|0x10) << 3 = 248 tenths (wire's TestIGMPQuery).
	e.inject(n, igmpQueryPkt(grp2, 3, 0x8f, grp2, 0, 0, true))
	e.run(25 * time.Second)
	msgs = mcMsgs(t, ep.Take(), link.MediumIP)
	if len(msgs) != 1 || !slices.Equal(msgs[0].groups, []netip.Addr{grp2}) || msgs[0].recs[0] != recIsEx {
		t.Fatalf("group query: %+v", msgs)
	}
	// A query for a group not joined is not even accepted (not a member).
	before := e.stats().IP.Err
	e.inject(n, igmpQueryPkt(grp3, 3, 10, grp3, 0, 0, true))
	e.run(2 * time.Second)
	if len(ep.Take()) != 0 || e.stats().IP.Err != before+1 {
		t.Fatal("answered a query for a group not joined")
	}
	// QRV 3 from the querier: joins are now reported three times.
	e.inject(n, igmpQueryPkt(allSystems4, 3, 10, netip.Addr{}, 3, 125, true))
	e.run(2 * time.Second)
	ep.Take()
	_ = e.l.JoinGroup(n, grp3)
	e.l.Flush()
	e.run(3 * time.Second)
	if msgs = mcMsgs(t, ep.Take(), link.MediumIP); len(msgs) != 3 {
		t.Fatalf("robustness 3: %v", kinds(msgs))
	}
}

func TestIGMPCompatibilityModes(t *testing.T) {
	e, n, ep := joinedEnv(t, grp1)

	// An IGMPv2 querier: v2 reports to the group within Max Resp Time (10 s).
	e.inject(n, igmpQueryPkt(allSystems4, 2, 100, netip.Addr{}, 0, 0, true))
	e.run(10 * time.Second)
	msgs := mcMsgs(t, ep.Take(), link.MediumIP)
	if len(msgs) != 1 || msgs[0].kind != "v2report" || msgs[0].dst != grp1 {
		t.Fatalf("v2 query: %+v", msgs)
	}
	// Joins and leaves speak v2 now: a report (twice), then a Leave to 224.0.0.2.
	_ = e.l.JoinGroup(n, grp2)
	e.l.Flush()
	e.run(10 * time.Second)
	_ = e.l.LeaveGroup(n, grp2)
	e.l.Flush()
	msgs = mcMsgs(t, ep.Take(), link.MediumIP)
	if !slices.Equal(kinds(msgs), []string{"v2report", "v2report", "leave"}) || msgs[2].dst != allRouters4 ||
		msgs[2].groups[0] != grp2 {
		t.Fatalf("v2 join/leave: %+v", msgs)
	}
	// An IGMPv1 querier: v1 reports; leaving sends nothing.
	e.inject(n, igmpQueryPkt(allSystems4, 1, 0, netip.Addr{}, 0, 0, false))
	e.run(10 * time.Second)
	_ = e.l.LeaveGroup(n, grp1)
	e.l.Flush()
	if msgs = mcMsgs(t, ep.Take(), link.MediumIP); !slices.Equal(kinds(msgs), []string{"v1report"}) {
		t.Fatalf("v1: %v", kinds(msgs))
	}
	// After the Older Version Querier Present Timeout (2*125+10 s) without older
	// queries, the host speaks IGMPv3 again.
	e.clk.Advance(261 * time.Second)
	_ = e.l.JoinGroup(n, grp3)
	e.l.Flush()
	if msgs = mcMsgs(t, ep.Take(), link.MediumIP); len(msgs) != 1 || msgs[0].kind != "v3report" {
		t.Fatalf("back to v3: %v", kinds(msgs))
	}
}

// TestIGMPv2Suppression: two hosts in the group answer an IGMPv2 query; the first report,
// heard by the other, suppresses the other's.
func TestIGMPv2Suppression(t *testing.T) {
	for _, medium := range []link.Medium{link.MediumIP, link.MediumEthernet} {
		t.Run(medium.String(), func(t *testing.T) {
			p := newMcPair(t, medium, testOptions())
			_ = p.a.l.JoinGroup(p.na, grp1)
			_ = p.b.l.JoinGroup(p.nb, grp1)
			p.run(2 * time.Second)
			p.ta.Take()
			p.tb.Take()
			q := igmpQueryPkt(allSystems4, 2, 100, netip.Addr{}, 0, 0, true)
			if medium == link.MediumEthernet {
				q = append([]byte{0x01, 0, 0x5e, 0, 0, 1, 0x02, 0, 0, 0, 0, 0x99, 0x08, 0}, q...)
			}
			p.a.inject(p.na, q)
			p.b.inject(p.nb, q)
			p.run(10 * time.Second)
			ma, mb := mcMsgs(t, p.ta.Take(), medium), mcMsgs(t, p.tb.Take(), medium)
			if len(ma)+len(mb) != 1 {
				t.Fatalf("reports: a %v, b %v", kinds(ma), kinds(mb))
			}
			m := append(ma, mb...)[0]
			if m.kind != "v2report" || m.dst != grp1 {
				t.Fatalf("report %+v", m)
			}
			if medium == link.MediumEthernet && m.ethDst != [6]byte{0x01, 0, 0x5e, 1, 1, 1} {
				t.Fatalf("destination MAC %x", m.ethDst)
			}
		})
	}
}

func TestIGMPBadInput(t *testing.T) {
	e, n, ep := joinedEnv(t, grp1)
	badSum := igmpQueryPkt(allSystems4, 2, 100, netip.Addr{}, 0, 0, true)
	badSum[len(badSum)-1] ^= 1
	odd := igmpPkt(query4, allSystems4, make([]byte, 10), true, 1)
	odd[24] = wire.IGMPQuery
	odd = igmpPkt(query4, allSystems4, odd[24:], true, 1)
	unknown := igmpPkt(query4, allSystems4, []byte{0x99, 0, 0, 0, 0, 0, 0, 0}, true, 1)
	srcs := igmpQueryPkt(allSystems4, 3, 10, netip.Addr{}, 0, 0, true, grp1)
	srcs = igmpPkt(query4, allSystems4, srcs[24:len(srcs)-4], true, 1) // says 1 source, has none
	notGroup := igmpQueryPkt(allSystems4, 2, 100, v4B, 0, 0, true)
	cases := []badInput{
		{"checksum", badSum, func(s *stats.Snapshot) uint64 { return s.IGMP.Chkerr }},
		{"no router alert", igmpQueryPkt(allSystems4, 2, 100, netip.Addr{}, 0, 0, false), func(s *stats.Snapshot) uint64 { return s.IGMP.Opterr }},
		{"short", igmpPkt(query4, allSystems4, []byte{wire.IGMPQuery, 0, 0, 0}, true, 1), func(s *stats.Snapshot) uint64 { return s.IGMP.Lenerr }},
		{"length 10", odd, func(s *stats.Snapshot) uint64 { return s.IGMP.Lenerr }},
		{"sources missing", srcs, func(s *stats.Snapshot) uint64 { return s.IGMP.Lenerr }},
		{"unknown type", unknown, func(s *stats.Snapshot) uint64 { return s.IGMP.Proterr }},
		{"group not multicast", notGroup, func(s *stats.Snapshot) uint64 { return s.IGMP.Proterr }},
	}
	checkDrops(t, e, n, cases, func(s *stats.Snapshot) uint64 { return s.IGMP.Drop })
	// Nothing above was a query: no report, still v3.
	e.run(12 * time.Second)
	if f := ep.Take(); len(f) != 0 {
		t.Fatalf("%d frames after bad queries", len(f))
	}
	if n.mc4.mode(e.l.now()) != modeV3 {
		t.Fatal("bad queries changed the compatibility mode")
	}
}

func TestJoinGroupErrors(t *testing.T) {
	o := testOptions()
	o.MempNumIGMPGroup = 2
	o.MempNumMLD6Group = 1
	e, n, ep := mcEnv(t, o)
	if err := e.l.JoinGroup(n, v4B); !errors.Is(err, errs.Val) {
		t.Fatalf("unicast: %v", err)
	}
	// Implicit groups: nothing to do, nothing reported, nothing used.
	for _, g := range []netip.Addr{allSystems4, allNodes} {
		if err := e.l.JoinGroup(n, g); err != nil {
			t.Fatalf("%v: %v", g, err)
		}
		if err := e.l.LeaveGroup(n, g); err != nil {
			t.Fatalf("%v: %v", g, err)
		}
	}
	_ = e.l.JoinGroup(n, grp1)
	_ = e.l.JoinGroup(n, grp2)
	if err := e.l.JoinGroup(n, grp3); !errors.Is(err, errs.Mem) {
		t.Fatalf("third IGMP group: %v", err)
	}
	if err := e.l.JoinGroup(n, grp1); err != nil {
		t.Fatalf("rejoin with a full table: %v", err)
	}
	_ = e.l.JoinGroup(n, grp6b)
	if err := e.l.JoinGroup(n, mustAddr("ff05::2")); !errors.Is(err, errs.Mem) {
		t.Fatalf("second MLD group: %v", err)
	}
	s := e.stats()
	if s.IGMP.Memerr != 1 || s.MLD6.Memerr != 1 {
		t.Fatalf("Memerr: igmp %d mld %d", s.IGMP.Memerr, s.MLD6.Memerr)
	}
	// Joining with no netif named: the route's netif, else the first with an address.
	if err := e.l.JoinGroup(nil, grp3); !errors.Is(err, errs.Mem) {
		t.Fatalf("nil netif: %v", err)
	}
	if got := e.l.NetifForGroup(grp3, 0); got != n {
		t.Fatalf("NetifForGroup = %v", got)
	}
	if got := e.l.NetifForGroup(grp3, 7); got != nil {
		t.Fatalf("NetifForGroup(7) = %v", got)
	}
	if err := e.l.LeaveGroup(nil, grp2); err != nil {
		t.Fatalf("leave, nil netif: %v", err)
	}
	e.l.Flush()
	ep.Take()
	n.SetUp(false)
	if got := e.l.NetifForGroup(grp3, 0); got != nil {
		t.Fatalf("NetifForGroup with the netif down = %v", got)
	}
	if err := e.l.JoinGroup(nil, grp3); !errors.Is(err, errs.Rte) {
		t.Fatalf("no netif: %v", err)
	}
	// Joined groups survive down/up and are reported again when up.
	n.SetUp(true)
	e.l.Flush()
	msgs := mcMsgs(t, ep.Take(), link.MediumIP)
	var got []netip.Addr
	for _, m := range msgs {
		got = append(got, m.groups...)
	}
	slices.SortFunc(got, func(a, b netip.Addr) int { return a.Compare(b) })
	if !slices.Equal(got, []netip.Addr{grp1, grp6b}) {
		t.Fatalf("reported after up: %v", got)
	}
	e.l.Close()
	if err := e.l.JoinGroup(n, grp2); !errors.Is(err, errs.Clsd) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestMulticastInputFilter: multicast reaches transports only for groups the netif joined,
// and 224.0.0.1 / ff02::1 always.
func TestMulticastInputFilter(t *testing.T) {
	e, n, _ := mcEnv(t, testOptions())
	tr := &recTransport{l: e.l}
	e.l.RegisterTransport(wire.ProtoUDP, tr)
	for _, g := range []netip.Addr{grp1, grp6b} {
		src := v4B
		if g.Is6() {
			src = v6B
		}
		e.inject(n, udpTo(src, g))
		if len(tr.inputs) != 0 {
			t.Fatalf("%v delivered before the join", g)
		}
		_ = e.l.JoinGroup(n, g)
		e.inject(n, udpTo(src, g))
		if len(tr.inputs) != 1 || !tr.inputs[0].Multicast || tr.inputs[0].Dst != g {
			t.Fatalf("%v after the join: %+v", g, tr.inputs)
		}
		_ = e.l.LeaveGroup(n, g)
		e.inject(n, udpTo(src, g))
		if len(tr.inputs) != 1 {
			t.Fatalf("%v delivered after the leave", g)
		}
		tr.inputs = nil
	}
	e.inject(n, udpTo(v4B, allSystems4))
	e.inject(n, udpTo(v6B, allNodes))
	if len(tr.inputs) != 2 {
		t.Fatalf("implicit groups: %d delivered", len(tr.inputs))
	}
	s := e.stats()
	if s.IP.Err != 2 || s.IP6.Err != 2 {
		t.Fatalf("filtered: IP.Err %d IP6.Err %d", s.IP.Err, s.IP6.Err)
	}
}

func TestMulticastLoop(t *testing.T) {
	e, n, ep, tr := loopEnv(t)
	for _, c := range []struct {
		dst        netip.Addr
		loop       bool
		size       int
		wantLocal  int
		wantFrames int
	}{
		{grp1, true, 100, 1, 1},
		{grp1, false, 100, 0, 1},
		{grp2, true, 100, 0, 1}, // not a member
		{allSystems4, true, 100, 1, 1},
		{grp1, true, 3000, 1, 3}, // fragmented out, whole locally
		{grp6b, true, 100, 1, 1},
		{grp6b, false, 100, 0, 1},
		{grp6b, true, 3000, 1, 3},
	} {
		if err := e.sendUDP(netip.Addr{}, c.dst, c.size, OutputOptions{Netif: n, TTL: 1, MulticastLoop: c.loop}); err != nil {
			t.Fatal(err)
		}
		e.l.Flush()
		if f := ep.Take(); len(tr.inputs) != c.wantLocal || len(f) != c.wantFrames {
			t.Fatalf("%v loop %v size %d: %d local, %d frames", c.dst, c.loop, c.size, len(tr.inputs), len(f))
		}
		if c.wantLocal == 1 && len(tr.data[0]) != 8+c.size {
			t.Fatalf("%v: looped %d bytes", c.dst, len(tr.data[0]))
		}
		tr.inputs, tr.data = nil, nil
	}
}

// TestMulticastInputAllocs pins multicast input to a joined group at zero allocations.
func TestMulticastInputAllocs(t *testing.T) {
	e, n, tr := hotEnv(t)
	defer e.close()
	_ = e.l.JoinGroup(n, grp1)
	_ = e.l.JoinGroup(n, grp2)
	_ = e.l.JoinGroup(n, grp6b)
	e.l.Flush()
	for _, pkt := range [][]byte{udpTo(v4B, grp2), udpTo(v6B, grp6b)} {
		in := input(e, n, pkt)
		if a := testing.AllocsPerRun(200, in); a != 0 {
			t.Errorf("%v: %v allocs per packet", pkt[0]>>4, a)
		}
	}
	// Alternating groups miss the input cache: the membership lookup itself is free too.
	in1, in2 := input(e, n, udpTo(v4B, grp1)), input(e, n, udpTo(v4B, grp2))
	in3 := input(e, n, udpTo(v6B, grp6b))
	before := tr.n
	if a := testing.AllocsPerRun(200, func() { in1(); in2(); in3() }); a != 0 {
		t.Errorf("alternating groups: %v allocs", a)
	}
	if tr.n-before != 3*201 {
		t.Errorf("delivered %d of %d", tr.n-before, 3*201)
	}
	// Queries, read through wire's views (their answers wait for timers not run here).
	for _, q := range [][]byte{igmpQueryPkt(allSystems4, 3, 50, netip.Addr{}, 2, 125, true),
		mldQueryPkt(ll6Q, allNodes, true, 2000, netip.Addr{}, 1, true)} {
		if a := testing.AllocsPerRun(200, input(e, n, q)); a != 0 {
			t.Errorf("query %v: %v allocs", q[0]>>4, a)
		}
	}
	if s := e.stats(); s.IGMP.Recv != 201 || s.MLD6.Recv != 201 || s.IGMP.Drop+s.MLD6.Drop != 0 {
		t.Errorf("IGMP %+v MLD %+v", s.IGMP, s.MLD6)
	}
}
