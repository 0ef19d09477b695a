package dhcp6_test

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/apps/dhcp6"
	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/transport/udp"
	"github.com/wispstack/wisp/wire"
	"github.com/wispstack/wisp/wire/dhcpv6"
)

var (
	macA    = [6]byte{0x02, 0, 0x5e, 0, 0, 0x0a}
	dnsAddr = netip.MustParseAddr("fd42:5eed::53")
)

// server is a DHCPv6 server written for the tests on stack B: it answers Information-
// Requests (unless silent) and records each one with when it came.
type server struct {
	s       *stack.Stack
	clk     *clock.Fake
	pcb     *udp.PCB
	silent  bool
	tweak   func(r *dhcpv6.Repr) // changes a Reply before it goes
	refresh uint32
	maxRT   uint32 // option 83 when not 0
	reqs    []dhcpv6.Repr
	srcs    []netip.AddrPort
	at      []time.Time
}

func (v *server) recv(c *udp.PCB, pb *pbuf.Pbuf, info *udp.RecvInfo) {
	b := pb.Bytes(nil)
	pb.Free()
	var r dhcpv6.Repr
	if r.Parse(b) != nil || r.Type != dhcpv6.InformationRequest || info.Dst != dhcpv6.AllServers {
		return
	}
	v.reqs, v.srcs, v.at = append(v.reqs, r), append(v.srcs, info.Src), append(v.at, v.clk.Now())
	if v.silent {
		return
	}
	rep := dhcpv6.Repr{Type: dhcpv6.Reply, TransactionID: r.TransactionID, ClientID: r.ClientID,
		ServerID: []byte{0, 3, 0, 1, 2, 0, 0, 0, 0, 0xb}, DNSServers: []netip.Addr{dnsAddr},
		DomainList: []string{"lab.example"}}
	if v.refresh != 0 {
		rep.InfoRefreshTime, rep.HasRefresh = v.refresh, true
	}
	if v.maxRT != 0 {
		rep.InfMaxRT, rep.HasInfMaxRT = v.maxRT, true
	}
	if v.tweak != nil {
		v.tweak(&rep)
	}
	out, err := v.s.Allocator().Alloc(pbuf.LayerTransport, rep.Len(), pbuf.RAM)
	if err != nil {
		return
	}
	_ = rep.Emit(out.Payload())
	_ = c.SendToFrom(out, info.Src, netip.Addr{}, info.IfIndex)
}

type rig struct {
	t          *testing.T
	clk        *clock.Fake
	a, b       *stack.Stack
	nifA, nifB *stack.Netif
	pa         *pipe.End
	srv        *server
}

// newRig joins stack A (DHCPv6 on) and stack B (the server, in ff02::1:2) by a synchronous
// Ethernet pipe on a fake clock.
func newRig(t *testing.T) *rig { return newRigWith(t, true) }

// newRigWith is newRig with A's stack client on or off.
func newRigWith(t *testing.T, client bool) *rig {
	stacktest.NoGoroutineLeak(t)
	g := &rig{t: t, clk: clock.NewFake(time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC))}
	var pb *pipe.End
	g.pa, pb = pipe.New(pipe.Config{MTU: 1500, Medium: link.MediumEthernet, Sync: true, MACs: [2][6]byte{macA}})
	var err error
	if g.a, err = stack.New(stack.Config{Clock: g.clk, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, g.a)
	if g.b, err = stack.New(stack.Config{Clock: g.clk, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, g.b)
	stacktest.OnFail(t, stacktest.Side{Name: "A (client)", Stack: g.a, Links: []any{g.pa}},
		stacktest.Side{Name: "B (server)", Stack: g.b, Links: []any{pb}})
	if g.nifA, err = g.a.AddNetif(g.pa, stack.NetifConfig{Name: "a0", DHCPv6: client}); err != nil {
		t.Fatal(err)
	}
	if g.nifB, err = g.b.AddNetif(pb, stack.NetifConfig{Name: "b0"}); err != nil {
		t.Fatal(err)
	}
	g.srv = &server{s: g.b, clk: g.clk}
	g.b.Lock()
	defer g.b.Unlock()
	if err := g.b.IP().JoinGroup(g.nifB.IP(), dhcpv6.AllServers); err != nil {
		t.Fatal(err)
	}
	if g.srv.pcb, err = g.b.UDP().NewPCB(); err != nil {
		t.Fatal(err)
	}
	if err := g.srv.pcb.Bind(netip.AddrPortFrom(netip.IPv6Unspecified(), dhcpv6.ServerPort)); err != nil {
		t.Fatal(err)
	}
	g.srv.pcb.OnRecv(g.srv.recv)
	t.Cleanup(func() {
		g.b.Lock()
		g.srv.pcb.Close()
		g.b.Unlock()
	})
	return g
}

// drive moves frames and time in steps until done or d has passed.
func (g *rig) drive(step, d time.Duration, done func() bool) {
	end := g.clk.Now().Add(d)
	for g.clk.Now().Before(end) && (done == nil || !done()) {
		g.pa.Flush()
		g.clk.Advance(step)
		g.pa.Flush()
	}
}

// ra injects into A a Router Advertisement from fe80::99 with flags (lifetime 0: no
// default route).
func (g *rig) ra(flags uint8) {
	msg := make([]byte, 16)
	r := wire.NDPRouterAdvertRepr{CurHopLimit: 64, Flags: flags}
	if _, err := r.Emit(msg); err != nil {
		g.t.Fatal(err)
	}
	src, dst := netip.MustParseAddr("fe80::99"), netip.MustParseAddr("ff02::1")
	wire.ICMPv6(msg).SetChecksum(src, dst)
	pkt := make([]byte, 14+wire.IPv6HeaderLen+len(msg))
	h := wire.IPv6Repr{NextHeader: wire.ProtoICMPv6, HopLimit: 255, Src: src, Dst: dst, PayloadLen: len(msg)}
	if err := h.Emit(pkt[14:]); err != nil {
		g.t.Fatal(err)
	}
	copy(pkt[14+wire.IPv6HeaderLen:], msg)
	m := wire.IPv6MulticastMAC(dst)
	copy(pkt, m[:])
	copy(pkt[6:], []byte{2, 0, 0, 0, 0, 0x99})
	pkt[12], pkt[13] = 0x86, 0xdd
	stacktest.Inject(g.t, g.nifA, pkt)
}

// servers are stack A's resolver's servers.
func (g *rig) servers() []netip.AddrPort {
	g.a.Lock()
	defer g.a.Unlock()
	return g.a.DNS().Servers()
}

func (g *rig) ready() {
	g.drive(10*time.Millisecond, 5*time.Second, func() bool {
		for _, n := range []*stack.Netif{g.nifA, g.nifB} {
			ll := false
			for _, a := range n.Addrs() {
				if a.State == ip.Tentative {
					return false
				}
				ll = ll || a.Prefix.Addr().IsLinkLocalUnicast()
			}
			if !ll {
				return false
			}
		}
		return true
	})
}

func TestInformationRequest(t *testing.T) {
	g := newRig(t)
	c := g.nifA.DHCPv6()
	if c == nil || g.nifB.DHCPv6() != nil {
		t.Fatal("DHCPv6 clients: want one on a0 only")
	}
	g.ready()
	// No RA, or an RA with neither M nor O: nothing is sent.
	g.ra(0)
	g.drive(10*time.Millisecond, 3*time.Second, nil)
	if len(g.srv.reqs) != 0 || c.State() != dhcp6.Idle {
		t.Fatalf("sent without O: %d, %v", len(g.srv.reqs), c.State())
	}
	g.srv.refresh = 700
	t0 := g.clk.Now()
	g.ra(wire.NDPRAOther)
	g.drive(10*time.Millisecond, 3*time.Second, func() bool { return c.State() == dhcp6.Informed })
	if len(g.srv.reqs) != 1 {
		t.Fatalf("requests %d, state %v, stats %+v", len(g.srv.reqs), c.State(), c.Stats())
	}
	// RFC 8415 §18.2.6: the first message waits a random time up to INF_MAX_DELAY.
	if d := g.srv.at[0].Sub(t0); d > dhcp6.InfMaxDelay+10*time.Millisecond {
		t.Errorf("first request after %v", d)
	}
	req, src := g.srv.reqs[0], g.srv.srcs[0]
	var duid [10]byte
	if !src.Addr().IsLinkLocalUnicast() || src.Port() != dhcpv6.ClientPort ||
		!bytes.Equal(req.ClientID, dhcpv6.DUIDLL(duid[:], macA)) || !req.HasElapsed || req.ElapsedTime != 0 ||
		len(req.ORO) != 4 || req.ServerID != nil {
		t.Fatalf("request from %v: %+v", src, req)
	}
	inf, ok := c.Info()
	if !ok || len(inf.DNS) != 1 || inf.DNS[0] != dnsAddr || len(inf.Domains) != 1 || inf.Domains[0] != "lab.example" ||
		inf.Refresh != 700*time.Second || len(inf.Server) != 10 {
		t.Fatalf("info %+v %v", inf, ok)
	}
	if srv := g.servers(); len(srv) != 1 || srv[0] != netip.AddrPortFrom(dnsAddr, 53) {
		t.Errorf("resolver's servers %v", srv)
	}
	// More RAs while informed change nothing; the refresh time asks again, with a new
	// transaction ID and no initial delay.
	g.ra(wire.NDPRAOther | wire.NDPRAManaged)
	g.drive(time.Second, 699*time.Second, nil)
	if len(g.srv.reqs) != 1 {
		t.Fatalf("asked again before the refresh time: %d", len(g.srv.reqs))
	}
	g.drive(10*time.Millisecond, 2*time.Second, func() bool { return len(g.srv.reqs) == 2 })
	if len(g.srv.reqs) != 2 || g.srv.reqs[1].TransactionID == req.TransactionID {
		t.Fatalf("refresh: %d requests", len(g.srv.reqs))
	}
	if st := c.Stats(); st.Refreshes != 1 || st.Replies != 2 || st.Retransmits != 0 || st.Bogus != 0 {
		t.Errorf("stats %+v", st)
	}
	// A refresh time below IRT_MINIMUM is raised to it; infinity means never.
	g.srv.refresh = 5
	g.drive(time.Second, 701*time.Second, func() bool { return len(g.srv.reqs) == 3 })
	g.drive(10*time.Millisecond, time.Second, nil)
	if inf, _ := c.Info(); inf.Refresh != dhcp6.IRTMinimum {
		t.Errorf("refresh 5 s taken as %v", inf.Refresh)
	}
	g.srv.refresh = 0xffffffff
	g.drive(time.Second, 601*time.Second, func() bool { return len(g.srv.reqs) == 4 })
	g.drive(10*time.Millisecond, time.Second, nil)
	if inf, _ := c.Info(); inf.Refresh != 0 {
		t.Errorf("infinite refresh taken as %v", inf.Refresh)
	}
	n := len(g.srv.reqs)
	g.drive(time.Minute, 48*time.Hour, nil)
	if len(g.srv.reqs) != n {
		t.Errorf("asked again after an infinite refresh time")
	}
	// RemoveNetif stops the client (its PCB and timer go: pools are checked at cleanup).
	if err := g.a.RemoveNetif(g.nifA); err != nil {
		t.Fatal(err)
	}
	if c.State() != dhcp6.Off || g.nifA.DHCPv6() != nil || len(g.servers()) != 0 {
		t.Errorf("after RemoveNetif: %v, resolver's servers %v", c.State(), g.servers())
	}
}

// A silent server: retransmissions per RFC 8415 §15 — each timeout 2·RT·(1±0.1) from
// INF_TIMEOUT, up to INF_MAX_RT·(1±0.1) — with the Elapsed Time of the exchange.
func TestRetransmission(t *testing.T) {
	g := newRig(t)
	c := g.nifA.DHCPv6()
	g.ready()
	g.srv.silent = true
	g.ra(wire.NDPRAOther)
	g.drive(10*time.Millisecond, 10*time.Minute, func() bool { return len(g.srv.reqs) == 10 })
	t.Logf("%d requests by %v; stats %+v", len(g.srv.reqs), g.srv.at[len(g.srv.at)-1].Sub(g.srv.at[0]), c.Stats())
	xid := g.srv.reqs[0].TransactionID
	prev := time.Duration(0)
	for i, r := range g.srv.reqs {
		if r.TransactionID != xid {
			t.Fatalf("retransmission %d changed the transaction ID", i)
		}
		el := time.Duration(r.ElapsedTime) * 10 * time.Millisecond
		if i == 0 && el != 0 {
			t.Fatalf("first Elapsed Time %v", el)
		}
		if i >= 1 {
			rt := el - prev
			lo, hi := 900*time.Millisecond, 1100*time.Millisecond
			if i >= 2 {
				last := prev - time.Duration(g.srv.reqs[i-2].ElapsedTime)*10*time.Millisecond
				lo, hi = last*18/10-20*time.Millisecond, last*22/10+20*time.Millisecond
			}
			if rt < lo || rt > hi {
				t.Fatalf("retransmission %d after %v, want %v..%v", i, rt, lo, hi)
			}
		}
		prev = el
	}
	// The cap: after ~4 h, about one request an hour (INF_MAX_RT ± 10 %).
	g.drive(10*time.Second, 4*time.Hour, nil)
	n := len(g.srv.reqs)
	g.drive(10*time.Second, 3*time.Hour, nil)
	if d := len(g.srv.reqs) - n; d < 2 || d > 4 {
		t.Errorf("%d requests in 3 h at the cap", d)
	}
	last := g.srv.reqs[len(g.srv.reqs)-1]
	if last.ElapsedTime != 0xffff {
		t.Errorf("Elapsed Time after hours: %d", last.ElapsedTime)
	}
	// The server answers: the next retransmission is taken.
	g.srv.silent = false
	g.drive(10*time.Second, 2*time.Hour, func() bool { return c.State() == dhcp6.Informed })
	if st := c.Stats(); c.State() != dhcp6.Informed || st.Retransmits != st.Requests-1 {
		t.Fatalf("state %v stats %+v", c.State(), st)
	}
}

// Replies that do not answer this client's transaction are refused and counted.
func TestBogusReplies(t *testing.T) {
	for name, tweak := range map[string]func(*dhcpv6.Repr){
		"transaction": func(r *dhcpv6.Repr) { r.TransactionID ^= 1 },
		"client ID":   func(r *dhcpv6.Repr) { r.ClientID = []byte{0, 3, 0, 1, 9, 9, 9, 9, 9, 9} },
		"no client":   func(r *dhcpv6.Repr) { r.ClientID = nil },
		"no server":   func(r *dhcpv6.Repr) { r.ServerID = nil },
		"status":      func(r *dhcpv6.Repr) { r.HasStatus, r.Status = true, dhcpv6.StatusUnspecFail },
		"type":        func(r *dhcpv6.Repr) { r.Type = dhcpv6.Advertise },
	} {
		t.Run(name, func(t *testing.T) {
			g := newRig(t)
			c := g.nifA.DHCPv6()
			g.ready()
			g.srv.tweak = tweak
			g.ra(wire.NDPRAOther)
			g.drive(10*time.Millisecond, 4*time.Second, nil)
			if st := c.Stats(); c.State() != dhcp6.Requesting || st.Bogus < 2 || st.Replies != 0 || st.Retransmits < 1 {
				t.Fatalf("state %v stats %+v", c.State(), st)
			}
			if _, ok := c.Info(); ok {
				t.Fatal("info from a bogus reply")
			}
		})
	}
}

// Config.Always asks without an RA (once the link-local address is ready); the server's
// INF_MAX_RT (option 83) then caps the retransmissions of later exchanges.
func TestAlwaysAndInfMaxRT(t *testing.T) {
	g := newRigWith(t, false)
	var got []dhcp6.Info
	var dns [][]netip.Addr
	var c *dhcp6.Client
	g.a.Lock()
	c, err := dhcp6.New(dhcp6.Env{UDP: g.a.UDP(), Timers: g.a.Timers(), Alloc: g.a.Allocator(), Netif: g.nifA.IP(), Seed: 7,
		SetDNS: func(s []netip.Addr, _ []string) { dns = append(dns, s) }},
		dhcp6.Config{Always: true, OnChange: func(i dhcp6.Info) { got = append(got, i) }})
	g.a.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		g.a.Lock()
		c.Stop()
		c.Stop()
		g.a.Unlock()
		if c.State() != dhcp6.Off || len(dns) != 2 || dns[1] != nil {
			t.Errorf("after Stop: %v, SetDNS calls %v", c.State(), dns)
		}
	}()
	g.srv.maxRT, g.srv.refresh = 60, 600
	g.drive(10*time.Millisecond, 5*time.Second, func() bool { return c.State() == dhcp6.Informed })
	if len(got) != 1 || len(dns) != 1 || dns[0][0] != dnsAddr {
		t.Fatalf("state %v, OnChange %v, SetDNS %v, stats %+v", c.State(), got, dns, c.Stats())
	}
	if c.Stats().NoLinkLocal == 0 {
		t.Error("sent before the link-local address was ready?")
	}
	g.srv.silent = true
	g.drive(time.Second, 600*time.Second+30*time.Minute, nil)
	// 1+2+4+8+16+32 s, then every 60 s ± 10 %: the last gaps are at the cap.
	at := g.srv.at
	for i := len(at) - 5; i < len(at); i++ {
		if d := at[i].Sub(at[i-1]); d < 53*time.Second || d > 67*time.Second {
			t.Fatalf("gap %v at the cap of 60 s (requests at %v)", d, at)
		}
	}
}
