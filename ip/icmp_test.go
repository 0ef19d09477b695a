package ip

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/wire"
)

// host is one layer with one IP-medium netif holding v4A/24 and v6A/64, and a transport
// on UDP answering with port unreachable.
func host(t *testing.T) (*env, *Netif, *linktest.Capture, *recTransport) {
	e := newEnv(t, testOptions(), 1)
	ep := &linktest.Capture{}
	n := e.addNetif(ep, mustPrefix(v4A, 24), mustPrefix(v6A, 64))
	tr := &recTransport{l: e.l, unreach: true}
	e.l.RegisterTransport(wire.ProtoUDP, tr)
	return e, n, ep, tr
}

// icmp4Of decodes one frame as IPv4 + ICMP.
func icmp4Of(t *testing.T, f []byte) (wire.IPv4Repr, wire.ICMPv4Repr, []byte) {
	t.Helper()
	var ip wire.IPv4Repr
	if err := ip.Parse(f); err != nil || ip.Protocol != wire.ProtoICMP {
		t.Fatalf("not ICMP: %v %+v", err, ip)
	}
	var m wire.ICMPv4Repr
	pl := wire.IPv4(f).Payload()
	if err := m.Parse(pl); err != nil {
		t.Fatal(err)
	}
	return ip, m, pl[8:]
}

func icmp6Of(t *testing.T, f []byte) (wire.IPv6Repr, wire.ICMPv6Repr, []byte) {
	t.Helper()
	var ip wire.IPv6Repr
	if err := ip.Parse(f); err != nil || ip.NextHeader != wire.ProtoICMPv6 {
		t.Fatalf("not ICMPv6: %v %+v", err, ip)
	}
	var m wire.ICMPv6Repr
	pl := wire.IPv6(f).Payload()
	if err := m.Parse(pl, ip.Src, ip.Dst); err != nil {
		t.Fatal(err)
	}
	return ip, m, pl[8:]
}

func TestICMPErrorsHost(t *testing.T) {
	e, n, ep, tr := host(t)
	defer e.close()
	peer4, peer6 := v4B, v6B

	// Port unreachable, from the transport via SendUnreachable.
	pkt := ipv4Packet(peer4, v4A, wire.ProtoUDP, 64, udpish(20))
	e.inject(n, pkt)
	fr := ep.Take()
	if len(fr) != 1 || len(tr.inputs) != 1 {
		t.Fatalf("frames %d inputs %d", len(fr), len(tr.inputs))
	}
	ip, m, q := icmp4Of(t, fr[0])
	if ip.Src != v4A || ip.Dst != peer4 || m.Type != wire.ICMPv4DestUnreach || m.Code != wire.ICMPv4PortUnreach ||
		string(q) != string(pkt) {
		t.Fatalf("port unreachable: %+v %+v quoted %d", ip, m, len(q))
	}
	// Protocol unreachable.
	e.inject(n, ipv4Packet(peer4, v4A, 99, 64, udpish(4)))
	if _, m, _ = icmp4Of(t, ep.Take()[0]); m.Type != wire.ICMPv4DestUnreach || m.Code != wire.ICMPv4ProtoUnreach {
		t.Fatalf("proto unreachable: %+v", m)
	}
	// Nothing for a broadcast destination.
	e.inject(n, ipv4Packet(peer4, netip.MustParseAddr("198.18.0.255"), 99, 64, udpish(4)))
	if fr := ep.Take(); len(fr) != 0 {
		t.Fatalf("answered a broadcast")
	}
	// IPv6 port unreachable and unknown next header.
	pkt6 := ipv6Packet(peer6, v6A, wire.ProtoUDP, 64, udpish(20))
	e.inject(n, pkt6)
	ip6, m6, q6 := icmp6Of(t, ep.Take()[0])
	if ip6.Dst != peer6 || m6.Type != wire.ICMPv6DestUnreach || m6.Code != wire.ICMPv6PortUnreach || string(q6) != string(pkt6) {
		t.Fatalf("v6 port unreachable: %+v %+v", ip6, m6)
	}
	e.inject(n, ipv6Packet(peer6, v6A, 99, 64, udpish(4)))
	if _, m6, _ = icmp6Of(t, ep.Take()[0]); m6.Type != wire.ICMPv6ParamProblem || m6.Code != 1 || m6.Pointer != 6 {
		t.Fatalf("v6 unknown next header: %+v", m6)
	}
	// Errors about our packets reach the transport, and are never answered.
	inner := ipv4Packet(v4A, peer4, wire.ProtoUDP, 64, udpish(8))
	msg := make([]byte, 8+len(inner))
	copy(msg[8:], inner)
	r := wire.ICMPv4Repr{Type: wire.ICMPv4DestUnreach, Code: wire.ICMPv4FragNeeded, NextHopMTU: 1400, PayloadLen: len(inner)}
	_ = r.Emit(msg)
	e.inject(n, ipv4Packet(peer4, v4A, wire.ProtoICMP, 64, msg))
	inner6 := ipv6Packet(v6A, peer6, wire.ProtoUDP, 64, udpish(8))
	msg6 := make([]byte, 8+len(inner6))
	copy(msg6[8:], inner6)
	r6 := wire.ICMPv6Repr{Type: wire.ICMPv6PacketTooBig, MTU: 1280, PayloadLen: len(inner6)}
	_ = r6.Emit(msg6, peer6, v6A)
	e.inject(n, ipv6Packet(peer6, v6A, wire.ProtoICMPv6, 64, msg6))
	if len(tr.controls) != 2 || tr.controls[0] != ControlPacketTooBig || tr.mtus[0] != 1400 ||
		tr.controls[1] != ControlPacketTooBig || tr.mtus[1] != 1280 {
		t.Fatalf("controls %v %v", tr.controls, tr.mtus)
	}
	if fr := ep.Take(); len(fr) != 0 {
		t.Fatalf("answered an ICMP error")
	}
}

// router is a forwarding layer between two IP netifs: n1 198.18.0.1/24 fd42:5eed::1/64,
// n2 (MTU 1280) 198.19.0.1/24 fd42:5eed:0:1::1/64.
func router(t *testing.T) (*env, *Netif, *Netif, *linktest.Capture, *linktest.Capture) {
	o := testOptions()
	o.IPForward = true
	e := newEnv(t, o, 1)
	ep1, ep2 := &linktest.Capture{}, &linktest.Capture{Mtu: 1280}
	n1, _ := e.l.AddNetif(ep1, NetifConfig{})
	n2, _ := e.l.AddNetif(ep2, NetifConfig{})
	_ = n1.AddAddr(netip.MustParsePrefix("198.18.0.1/24"))
	_ = n1.AddAddr(netip.MustParsePrefix("fd42:5eed::1/64"))
	_ = n2.AddAddr(netip.MustParsePrefix("198.19.0.1/24"))
	_ = n2.AddAddr(netip.MustParsePrefix("fd42:5eed:0:1::1/64"))
	n1.SetUp(true)
	n2.SetUp(true)
	return e, n1, n2, ep1, ep2
}

func TestForwardingErrors(t *testing.T) {
	e, n1, _, ep1, ep2 := router(t)
	defer e.close()
	src4, dst4 := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.19.0.2")
	src6, dst6 := netip.MustParseAddr("fd42:5eed::2"), netip.MustParseAddr("fd42:5eed:0:1::2")

	e.inject(n1, ipv4Packet(src4, dst4, wire.ProtoUDP, 64, udpish(10)))
	fr := ep2.Take()
	if len(fr) != 1 || wire.IPv4(fr[0]).TTL() != 63 || wire.CheckIPv4(fr[0]) != nil {
		t.Fatalf("forwarded: %d frames", len(fr))
	}
	// TTL exceeded.
	e.inject(n1, ipv4Packet(src4, dst4, wire.ProtoUDP, 1, udpish(10)))
	ip, m, _ := icmp4Of(t, ep1.Take()[0])
	if ip.Dst != src4 || ip.Src != netip.MustParseAddr("198.18.0.1") || m.Type != wire.ICMPv4TimeExceeded || m.Code != 0 {
		t.Fatalf("ttl: %+v %+v", ip, m)
	}
	// Fragmentation needed with DF, fragmentation without.
	big := ipv4Packet(src4, dst4, wire.ProtoUDP, 64, udpish(1400))
	big[6] |= 0x40
	wire.IPv4(big).SetChecksum()
	e.inject(n1, big)
	if _, m, _ = icmp4Of(t, ep1.Take()[0]); m.Type != wire.ICMPv4DestUnreach || m.Code != wire.ICMPv4FragNeeded || m.NextHopMTU != 1280 {
		t.Fatalf("frag needed: %+v", m)
	}
	e.inject(n1, ipv4Packet(src4, dst4, wire.ProtoUDP, 64, udpish(1400)))
	if fr := ep2.Take(); len(fr) != 2 || !wire.IPv4(fr[0]).MoreFragments() || wire.IPv4(fr[1]).FragmentOffset() != 1256 {
		t.Fatalf("fragments: %d", len(fr))
	}
	// No route.
	e.inject(n1, ipv4Packet(src4, netip.MustParseAddr("198.20.0.1"), wire.ProtoUDP, 64, udpish(10)))
	if _, m, _ = icmp4Of(t, ep1.Take()[0]); m.Type != wire.ICMPv4DestUnreach || m.Code != wire.ICMPv4NetUnreach {
		t.Fatalf("no route: %+v", m)
	}

	// IPv6: forwarded, hop limit exceeded, packet too big.
	e.inject(n1, ipv6Packet(src6, dst6, wire.ProtoUDP, 64, udpish(10)))
	if fr := ep2.Take(); len(fr) != 1 || wire.IPv6(fr[0]).HopLimit() != 63 {
		t.Fatalf("v6 forwarded: %d", len(fr))
	}
	e.inject(n1, ipv6Packet(src6, dst6, wire.ProtoUDP, 1, udpish(10)))
	if _, m6, _ := icmp6Of(t, ep1.Take()[0]); m6.Type != wire.ICMPv6TimeExceeded || m6.Code != 0 {
		t.Fatalf("hop limit: %+v", m6)
	}
	e.inject(n1, ipv6Packet(src6, dst6, wire.ProtoUDP, 64, udpish(1300)))
	ip6, m6, q := icmp6Of(t, ep1.Take()[0])
	if ip6.Dst != src6 || m6.Type != wire.ICMPv6PacketTooBig || m6.MTU != 1280 || len(q) != maxQuote {
		t.Fatalf("ptb: %+v %+v %d", ip6, m6, len(q))
	}
	s := e.stats()
	if s.IP.Fw != 2 || s.IP6.Fw != 1 || s.ICMP.Xmit != 3 || s.ICMP6.Xmit != 2 {
		t.Fatalf("stats %+v %+v %+v %+v", s.IP, s.IP6, s.ICMP, s.ICMP6)
	}
}

func TestICMPRateLimit(t *testing.T) {
	o := testOptions()
	o.ICMPRateLimit, o.ICMPRateBurst = 2, 3
	e := newEnv(t, o, 1)
	defer e.close()
	ep := &linktest.Capture{}
	n := e.addNetif(ep, mustPrefix(v4A, 24))
	send := func(k int) int {
		for i := 0; i < k; i++ {
			e.inject(n, ipv4Packet(v4B, v4A, 99, 64, udpish(4)))
		}
		return len(ep.Take())
	}
	if got := send(10); got != 3 {
		t.Fatalf("burst: %d errors", got)
	}
	if e.l.RateLimited() != 7 || e.stats().ICMP.Err != 7 {
		t.Fatalf("limited %d %+v", e.l.RateLimited(), e.stats().ICMP)
	}
	e.clk.Advance(time.Second)
	if got := send(10); got != 2 {
		t.Fatalf("after 1s: %d errors", got)
	}
	e.clk.Advance(time.Hour)
	if got := send(10); got != 3 {
		t.Fatalf("after an hour: %d errors (bucket depth)", got)
	}
	// Echo replies are not limited.
	for i := 0; i < 10; i++ {
		e.inject(n, ipv4Packet(v4B, v4A, wire.ProtoICMP, 64, echo4(1, uint16(i), []byte("x"))))
	}
	if got := len(ep.Take()); got != 10 {
		t.Fatalf("echo replies: %d", got)
	}
}

// TestReassemblyTimeout: an incomplete datagram whose first fragment arrived times out with
// ICMP Time Exceeded code 1; extension headers that are fine are walked and delivered.
func TestReassemblyTimeout(t *testing.T) {
	e, n, ep, tr := host(t)
	tr.unreach = false
	defer e.close()
	first := ipv4Packet(v4B, v4A, wire.ProtoUDP, 64, udpish(24))
	first[6] |= 0x20 // MF
	wire.IPv4(first).SetChecksum()
	e.inject(n, first)
	frag6 := ipv6Packet(v6B, v6A, wire.ProtoIPv6Frag, 64, append([]byte{17, 0, 0, 1, 0, 0, 0, 5}, udpish(24)...))
	e.inject(n, frag6)
	if len(ep.Take()) != 0 || len(tr.inputs) != 0 {
		t.Fatal("incomplete datagram answered or delivered")
	}
	e.clk.Advance(e.l.opts.IPReassMaxAge + time.Second)
	fr := ep.Take()
	if len(fr) != 2 {
		t.Fatalf("%d frames", len(fr))
	}
	if _, m, _ := icmp4Of(t, fr[0]); m.Type != wire.ICMPv4TimeExceeded || m.Code != wire.ICMPv4ReassemblyExceeded {
		t.Fatalf("v4: %+v", m)
	}
	if _, m, _ := icmp6Of(t, fr[1]); m.Type != wire.ICMPv6TimeExceeded || m.Code != wire.ICMPv6ReassemblyTimeout {
		t.Fatalf("v6: %+v", m)
	}
	// Hop-by-hop with a router alert and PadN, a destination options header with an option
	// to skip, then an atomic fragment: delivered with the right header length.
	pl := []byte{wire.ProtoIPv6DstOpts, 0, wire.IPv6OptRouterAlert, 2, 0, 0, 1, 0,
		wire.ProtoIPv6Frag, 0, 0x1e, 4, 0, 0, 0, 0,
		wire.ProtoUDP, 0, 0, 0, 0, 0, 0, 9}
	e.inject(n, ipv6Packet(v6B, v6A, wire.ProtoHopByHop, 64, append(pl, udpish(4)...)))
	if len(tr.inputs) != 1 || tr.inputs[0].HeaderLen != 40+16 || len(tr.data[0]) != 12 {
		t.Fatalf("inputs %+v", tr.inputs)
	}
}
