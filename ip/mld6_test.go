package ip

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

func TestMLDv2JoinQueryLeave(t *testing.T) {
	e, n, ep := mcEnv(t, testOptions())
	_ = e.l.JoinGroup(n, grp6b)
	_ = e.l.JoinGroup(n, mustAddr("ff01::7")) // interface-local: never reported
	e.l.Flush()
	e.run(time.Second)
	msgs := mcMsgs(t, ep.Take(), link.MediumIP)
	// RFC 3810 §6.1: TO_EX{} at once and once more; from the link-local address.
	if len(msgs) != 2 {
		t.Fatalf("join: %v", kinds(msgs))
	}
	for _, m := range msgs {
		if m.kind != "mldv2report" || m.dst != mldv2Routers || m.src != ll6A ||
			!slices.Equal(m.groups, []netip.Addr{grp6b}) || m.recs[0] != recToEx {
			t.Fatalf("join report %+v", m)
		}
	}
	// General MLDv2 query, Maximum Response Code 2000 ms.
	e.inject(n, mldQueryPkt(ll6Q, allNodes, true, 2000, netip.Addr{}, 1, true))
	e.run(2 * time.Second)
	msgs = mcMsgs(t, ep.Take(), link.MediumIP)
	if len(msgs) != 1 || !slices.Equal(msgs[0].groups, []netip.Addr{grp6b}) || msgs[0].recs[0] != recIsEx {
		t.Fatalf("general query: %+v", msgs)
	}
	_ = e.l.LeaveGroup(n, grp6b)
	e.l.Flush()
	e.run(time.Second)
	msgs = mcMsgs(t, ep.Take(), link.MediumIP)
	if len(msgs) != 2 || msgs[0].recs[0] != recToIn || msgs[1].recs[0] != recToIn {
		t.Fatalf("leave: %+v", msgs)
	}
	if s := e.stats(); s.MLD6.Xmit != 5 || s.MLD6.Recv != 1 {
		t.Fatalf("MLD6 %+v", s.MLD6)
	}
}

func TestMLDv1Compatibility(t *testing.T) {
	e, n, ep := joinedEnv(t, grp6a, grp6b)
	// A group-specific MLDv1 query (to the group): an MLDv1 report for it within 1 s.
	e.inject(n, mldQueryPkt(ll6Q, grp6a, false, 1000, grp6a, 1, true))
	e.run(time.Second)
	msgs := mcMsgs(t, ep.Take(), link.MediumIP)
	if len(msgs) != 1 || msgs[0].kind != "mldv1report" || msgs[0].dst != grp6a || msgs[0].groups[0] != grp6a {
		t.Fatalf("v1 query: %+v", msgs)
	}
	// MLDv1 mode: the leave is a Done to ff02::2 (this host reported last).
	_ = e.l.LeaveGroup(n, grp6a)
	e.l.Flush()
	msgs = mcMsgs(t, ep.Take(), link.MediumIP)
	if len(msgs) != 1 || msgs[0].kind != "done" || msgs[0].dst != allRouters || msgs[0].groups[0] != grp6a {
		t.Fatalf("done: %+v", msgs)
	}
	// Another host's report suppresses ours.
	e.inject(n, mldQueryPkt(ll6Q, allNodes, false, 5000, netip.Addr{}, 1, true))
	rep := make([]byte, 24)
	rep[0] = wire.ICMPv6MLDReport
	a := grp6b.As16()
	copy(rep[8:], a[:])
	e.inject(n, mldPkt(mustAddr("fe80::77"), grp6b, rep, 1, true))
	e.run(6 * time.Second)
	if msgs = mcMsgs(t, ep.Take(), link.MediumIP); len(msgs) != 0 {
		t.Fatalf("suppressed report sent: %+v", msgs)
	}
	// Not the last reporter: leaving sends no Done.
	_ = e.l.LeaveGroup(n, grp6b)
	e.l.Flush()
	if msgs = mcMsgs(t, ep.Take(), link.MediumIP); len(msgs) != 0 {
		t.Fatalf("leave after suppression: %+v", msgs)
	}
}

func TestMLDBadInput(t *testing.T) {
	e, n, ep := joinedEnv(t, grp6b)
	q := func(src netip.Addr, hop uint8, ra bool) []byte {
		return mldQueryPkt(src, allNodes, true, 100, netip.Addr{}, hop, ra)
	}
	odd := make([]byte, 26)
	odd[0] = wire.ICMPv6MLDQuery
	cases := []badInput{
		{"global source", q(v6B, 1, true), func(s *stats.Snapshot) uint64 { return s.MLD6.Err }},
		{"hop limit 2", q(ll6Q, 2, true), func(s *stats.Snapshot) uint64 { return s.MLD6.Err }},
		{"no router alert", q(ll6Q, 1, false), func(s *stats.Snapshot) uint64 { return s.MLD6.Opterr }},
		{"length 26", mldPkt(ll6Q, allNodes, odd, 1, true), func(s *stats.Snapshot) uint64 { return s.MLD6.Lenerr }},
		{"short", mldPkt(ll6Q, allNodes, odd[:20], 1, true), func(s *stats.Snapshot) uint64 { return s.MLD6.Lenerr }},
	}
	checkDrops(t, e, n, cases, func(s *stats.Snapshot) uint64 { return s.MLD6.Drop })
	e.run(2 * time.Second)
	if f := ep.Take(); len(f) != 0 {
		t.Fatalf("%d frames after bad queries", len(f))
	}
}

// TestMulticastEthernet: two stacks over Ethernet. Reports go to the mapped MACs; MLD
// uses :: while the link-local address is tentative (RFC 3590); datagrams to a group reach
// the member and are filtered at the non-member.
func TestMulticastEthernet(t *testing.T) {
	o := testOptions()
	o.IPv6DupAddrDetectTransmits = 1
	p := newMcPair(t, link.MediumEthernet, o)
	_ = p.a.l.JoinGroup(p.na, grp6b)
	p.pump()
	msgs := mcMsgs(t, p.ta.Take(), link.MediumEthernet)
	if len(msgs) == 0 || msgs[0].src != unspecified6 || msgs[0].ethDst != [6]byte{0x33, 0x33, 0, 0, 0, 0x16} {
		t.Fatalf("MLD during DAD: %+v", msgs)
	}
	p.run(3 * time.Second)
	p.ta.Take()
	_ = p.a.l.JoinGroup(p.na, grp1)
	_ = p.a.l.JoinGroup(p.na, grp6a)
	p.pump()
	msgs = mcMsgs(t, p.ta.Take(), link.MediumEthernet)
	if len(msgs) != 2 || msgs[0].ethDst != [6]byte{0x01, 0, 0x5e, 0, 0, 22} || msgs[1].src != linkLocalFromMAC(p.na.hw) {
		t.Fatalf("after DAD: %+v", msgs)
	}
	tr := &recTransport{l: p.a.l}
	p.a.l.RegisterTransport(wire.ProtoUDP, tr)
	before := p.a.stats()
	for _, g := range []netip.Addr{grp1, grp2, grp6a, grp6b, mustAddr("ff02::1:4")} {
		if err := p.b.sendUDP(netip.Addr{}, g, 10, OutputOptions{Netif: p.nb, TTL: 1}); err != nil {
			t.Fatal(err)
		}
	}
	p.pump()
	var got []netip.Addr
	for _, h := range tr.inputs {
		got = append(got, h.Dst)
	}
	if !slices.Equal(got, []netip.Addr{grp1, grp6a, grp6b}) {
		t.Fatalf("delivered to a: %v", got)
	}
	s := p.a.stats()
	if s.IP.Err-before.IP.Err != 1 || s.IP6.Err-before.IP6.Err != 1 {
		t.Fatalf("filtered: %d %d", s.IP.Err-before.IP.Err, s.IP6.Err-before.IP6.Err)
	}
}
