package ip

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/wire"
)

func addrState(n *Netif, a netip.Addr) (AddrInfo, bool) {
	for _, x := range n.Addrs() {
		if x.Prefix.Addr() == a {
			return x, true
		}
	}
	return AddrInfo{}, false
}

func TestLinkLocalAndDAD(t *testing.T) {
	p := newPair(t, link.MediumEthernet, 1500, testOptions())
	_ = p.nb.AddAddr(mustPrefix(v6B, 64))
	p.na.SetUp(true)
	p.nb.SetUp(true)
	ll := linkLocalFromMAC(p.na.HardwareAddr())
	if ll != mustAddr("fe80::ff:fe00:1") {
		t.Fatalf("link-local %v", ll)
	}
	if ai, ok := addrState(p.na, ll); !ok || ai.State != Tentative || ai.Origin != LinkLocal {
		t.Fatalf("link-local before DAD: %+v", ai)
	}
	p.advance(3 * time.Second)
	if ai, _ := addrState(p.na, ll); ai.State != Preferred {
		t.Fatalf("link-local after DAD: %v", ai.State)
	}
	if ai, _ := addrState(p.nb, v6B); ai.State != Preferred {
		t.Fatalf("B's address after DAD: %v", ai.State)
	}
	// A now claims B's address: B defends it, A marks it duplicated.
	if err := p.na.AddAddr(mustPrefix(v6B, 64)); err != nil {
		t.Fatal(err)
	}
	p.advance(2 * time.Second)
	if ai, _ := addrState(p.na, v6B); ai.State != Duplicated {
		t.Fatalf("duplicate not detected: %v", ai.State)
	}
	if ai, _ := addrState(p.nb, v6B); ai.State != Preferred {
		t.Fatalf("defender lost its address: %v", ai.State)
	}
	if p.a.l.IsLocal(v6B) {
		t.Fatal("a duplicated address is local")
	}
	// Idle: DAD over, no RA lifetimes, no neighbour in a timed state.
	p.advance(time.Minute)
	if p.a.timers.Len() != 0 || p.b.timers.Len() != 0 {
		t.Fatalf("idle layers have timers: %d %d", p.a.timers.Len(), p.b.timers.Len())
	}
}

// TestIdleNoTimers: a layer with configured addresses and router solicitation done
// schedules nothing.
func TestIdleNoTimers(t *testing.T) {
	o := testOptions()
	o.IPv6AutoConfig = true
	p := newPair(t, link.MediumEthernet, 1500, o)
	_, got := p.setup(t, true)
	if err := p.a.sendEcho(v6B, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.a.sendEcho(v4B, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	p.pump()
	if len(*got) != 2 {
		t.Fatalf("%d replies", len(*got))
	}
	p.advance(20 * time.Second) // three solicitations, 4 s apart
	if s := p.a.stats(); s.ND6.Xmit < 5 {
		t.Fatalf("ND6 %+v", s.ND6)
	}
	p.advance(time.Minute) // neighbours go STALE; ARP entries live on (their own timer)
	if p.a.l.tmo.Pending() || p.b.l.tmo.Pending() {
		t.Fatalf("ip timer still armed")
	}
}

// TestNDResolutionFails: three unanswered solicitations, then the queued packet comes back
// as ICMPv6 address unreachable to its transport.
func TestNDResolutionFails(t *testing.T) {
	p := newPair(t, link.MediumEthernet, 1500, testOptions())
	p.setup(t, true)
	tr := &recTransport{l: p.a.l}
	p.a.l.RegisterTransport(wire.ProtoUDP, tr)
	gone := mustAddr("fd42:5eed::99")
	if err := p.a.sendUDP(netip.Addr{}, gone, 10, OutputOptions{}); err != nil {
		t.Fatal(err)
	}
	p.advance(4 * time.Second)
	if len(tr.controls) != 1 || tr.controls[0] != ControlHostUnreachable {
		t.Fatalf("controls %v; nd6 %+v", tr.controls, p.a.stats().ND6)
	}
	if s := p.a.stats(); s.ND6.Xmit < 3 {
		t.Fatalf("nd6 %+v", s.ND6)
	}
}

// raFrame builds an Ethernet frame carrying a router advertisement from fe80::99.
func raFrame(lifetime uint16, pfx netip.Prefix, valid, preferred uint32, mtu uint32) []byte {
	rmac := [6]byte{0x02, 0, 0, 0, 0, 0x99}
	msg := make([]byte, 16+8+8+32)
	r := wire.NDPRouterAdvertRepr{CurHopLimit: 42, RouterLifetime: lifetime}
	k, _ := r.Emit(msg)
	k2, _ := wire.EmitNDPLinkLayerOption(msg[k:], wire.NDPOptSourceLLAddr, rmac)
	k += k2
	k2, _ = wire.EmitNDPMTUOption(msg[k:], mtu)
	k += k2
	pi := wire.NDPPrefixInfoRepr{Prefix: pfx, OnLink: true, Autonomous: true, ValidLifetime: valid, PreferredLifetime: preferred}
	_, _ = pi.Emit(msg[k:])
	src, dst := mustAddr("fe80::99"), allNodes
	wire.ICMPv6(msg).SetChecksum(src, dst)
	ip := ipv6Packet(src, dst, wire.ProtoICMPv6, 255, msg)
	eth := make([]byte, 14, 14+len(ip))
	m := wire.IPv6MulticastMAC(dst)
	copy(eth, m[:])
	copy(eth[6:], rmac[:])
	eth[12], eth[13] = 0x86, 0xdd
	return append(eth, ip...)
}

func TestSLAAC(t *testing.T) {
	o := testOptions()
	o.IPv6AutoConfig = true
	e := newEnv(t, o, 3)
	defer e.close()
	ep := &linktest.Capture{Med: link.MediumEthernet, Mtu: 1500, HW: [6]byte{0x02, 0, 0, 0, 0, 1}}
	n := e.addNetif(ep)
	e.clk.Advance(2 * time.Second)
	pfx := netip.MustParsePrefix("fd42:5eed:0:7::/64")
	e.inject(n, raFrame(1800, pfx, 3*3600, 1800, 1400))
	want := mustAddr("fd42:5eed:0:7::ff:fe00:1")
	ai, ok := addrState(n, want)
	if !ok || ai.Origin != SLAAC || ai.State != Tentative {
		t.Fatalf("SLAAC address: %+v (%v)", ai, n.Addrs())
	}
	e.clk.Advance(2 * time.Second)
	if ai, _ = addrState(n, want); ai.State != Preferred || !ai.ValidUntil.Equal(e.clk.Now().Add(3*3600*time.Second-2*time.Second)) {
		t.Fatalf("after DAD: %+v", ai)
	}
	gw, nh, err := e.l.Lookup(mustAddr("fd42:5eed:0:99::1"))
	if err != nil || gw != n || nh != mustAddr("fe80::99") {
		t.Fatalf("default route: %v %v %v (%v)", gw, nh, err, e.l.Routes())
	}
	if n.mtuFor(true) != 1400 || n.hopLimit != 42 {
		t.Fatalf("mtu %d hop limit %d", n.mtuFor(true), n.hopLimit)
	}
	if s, err := e.l.SourceFor(mustAddr("fd42:5eed:0:99::1"), nil); s != want || err != nil {
		t.Fatalf("source %v %v", s, err)
	}
	// The two-hour rule: a 60 s valid lifetime only cuts the remaining 3 h down to 2 h.
	e.inject(n, raFrame(1800, pfx, 60, 30, 1400))
	if ai, _ = addrState(n, want); !ai.ValidUntil.Equal(e.clk.Now().Add(2 * time.Hour)) {
		t.Fatalf("two-hour rule: valid until %v, now %v", ai.ValidUntil, e.clk.Now())
	}
	e.clk.Advance(31 * time.Second)
	if ai, _ = addrState(n, want); ai.State != Deprecated {
		t.Fatalf("after the preferred lifetime: %v", ai.State)
	}
	// A zero router lifetime removes the default router.
	e.inject(n, raFrame(0, pfx, 7200, 0, 1400))
	if _, _, err := e.l.Lookup(mustAddr("fd42:5eed:0:99::1")); err == nil {
		t.Fatal("default route survived lifetime 0")
	}
	e.clk.Advance(2*time.Hour + time.Second)
	if _, ok := addrState(n, want); ok {
		t.Fatal("address outlived its valid lifetime")
	}
	// RS: up to three were sent, from :: while the link-local address was tentative.
	var rs int
	for _, f := range ep.Take() {
		if len(f) > 54 && f[12] == 0x86 && f[14+6] == wire.ProtoICMPv6 && f[54] == wire.ICMPv6RouterSolicit {
			rs++
		}
	}
	if rs == 0 || rs > 3 {
		t.Fatalf("%d router solicitations", rs)
	}
}
