package dhcp_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/apps/dhcp"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/wire/dhcpv4"
)

const (
	D = dhcpv4.Discover
	R = dhcpv4.Request
)

// TestLeaseCycle walks a lease through its life: DISCOVER, OFFER, REQUEST, ACK, the ARP
// probes, BOUND with the address, route and DNS servers installed; a renewal at T1 unicast
// to the server; a silent server: REBINDING at T2 by broadcast, then expiry, everything
// removed and DISCOVER again; the server back: a new lease.
func TestLeaseCycle(t *testing.T) {
	r := newRig(t, rigConfig{dhcpOnA: true, lease: 600})
	c := r.client()
	if c == nil {
		t.Fatal("no client")
	}
	start := r.clk.Now()
	r.runUntil(10*time.Second, "bound", func() bool { return r.state() == dhcp.Bound })
	if got := r.sv.types(); !typesEqual(got, D, R) {
		t.Fatalf("server heard %v", got)
	}
	first := r.sv.log[0]
	if first.Src != netip.MustParseAddrPort("0.0.0.0:68") || first.Dst != bcast || !first.Broadcast || !first.HasParams || !first.HasMaxSz {
		t.Fatalf("DISCOVER %+v", first)
	}
	if req := r.sv.log[1]; req.Requested != addr100 || req.ServerID != serverAddr || req.CIAddr.IsValid() || req.XID != first.XID {
		t.Fatalf("REQUEST in SELECTING %+v", req)
	}
	// RFC 5227: the probes took PROBE_WAIT + 2 gaps + ANNOUNCE_WAIT: between 4 and 7 s.
	if d := r.clk.Now().Sub(start); d < 4*time.Second || d > 8*time.Second {
		t.Fatalf("bound after %v: the ARP check did not run its course", d)
	}
	l, ok := c.Lease()
	want := netip.PrefixFrom(addr100, 24)
	if !ok || l.Addr != want || l.Router != serverAddr || l.Server != serverAddr || len(l.DNS) != 2 ||
		l.Lease != 600*time.Second || l.T1 != 300*time.Second || l.T2 != 525*time.Second {
		t.Fatalf("lease %+v %v", l, ok)
	}
	if got := r.addrsA(); len(got) != 1 || got[0] != want {
		t.Fatalf("A's addresses %v", got)
	}
	if gw, ok := r.defaultRouteA(); !ok || gw != serverAddr {
		t.Fatalf("A's default route %v %v", gw, ok)
	}

	// T1: RENEWING, unicast from the lease's address to the server, ciaddr set.
	r.run(l.Acquired.Add(l.T1).Sub(r.clk.Now()) + time.Second)
	ren := r.sv.last()
	if ren.Type != R || ren.Dst != serverAddr || ren.Src.Addr() != addr100 || ren.CIAddr != addr100 ||
		ren.Requested.IsValid() || ren.ServerID.IsValid() || ren.Broadcast {
		t.Fatalf("renewal %+v", ren)
	}
	if c.State() != dhcp.Bound || c.Stats().Renews != 1 {
		t.Fatalf("after renewal: %v %+v", c.State(), c.Stats())
	}
	l2, _ := c.Lease()
	if !l2.Acquired.After(l.Acquired) {
		t.Fatalf("renewal did not extend the lease: %v then %v", l.Acquired, l2.Acquired)
	}

	// The server goes silent: RENEWING at T1, retransmissions, REBINDING at T2 by
	// broadcast, and at the end of the lease everything goes.
	r.sv.set(func(sv *server) { sv.silent = true })
	r.run(l2.Acquired.Add(l2.T2).Sub(r.clk.Now()) + time.Second)
	if c.State() != dhcp.Rebinding {
		t.Fatalf("state %v at T2", c.State())
	}
	reb := r.sv.last()
	if reb.Type != R || reb.Dst != bcast || reb.CIAddr != addr100 || reb.Src.Addr() != addr100 {
		t.Fatalf("rebinding %+v", reb)
	}
	r.run(l2.Acquired.Add(l2.Lease).Sub(r.clk.Now()) + time.Second)
	if st := c.State(); st != dhcp.Selecting {
		t.Fatalf("state %v after the lease's end", st)
	}
	if _, ok := c.Lease(); ok || len(r.addrsA()) != 0 {
		t.Fatalf("lease still installed: %v", r.addrsA())
	}
	if _, ok := r.defaultRouteA(); ok {
		t.Fatal("default route left")
	}
	if s := c.Stats(); s.Expiries != 1 || s.Rebinds != 1 || s.Renews != 2 || s.Timeouts == 0 {
		t.Fatalf("stats %+v", s)
	}
	// The server answers again: a new lease.
	r.sv.set(func(sv *server) { sv.silent = false })
	r.runUntil(2*time.Minute, "bound again", func() bool { return r.state() == dhcp.Bound })
	if got := r.addrsA(); len(got) != 1 || got[0] != want {
		t.Fatalf("A's addresses %v", got)
	}
}

// TestRetransmitBackoff: DISCOVERs to a silent server are spaced 4, 8, 16, 32, 64, 64 s
// (each ±1 s).
func TestRetransmitBackoff(t *testing.T) {
	r := newRig(t, rigConfig{})
	r.sv.silent = true
	startClient(t, r, dhcp.Config{})
	r.run(250 * time.Second)
	r.sv.mu.Lock()
	log := append([]seen(nil), r.sv.log...)
	r.sv.mu.Unlock()
	want := []time.Duration{4, 8, 16, 32, 64, 64}
	if len(log) < len(want)+1 {
		t.Fatalf("%d DISCOVERs", len(log))
	}
	for i, w := range want {
		gap := log[i+1].At.Sub(log[i].At)
		if log[i].Type != D || gap < (w-1)*time.Second || gap > (w+1)*time.Second {
			t.Fatalf("gap %d: %v (want %v s ±1 s)", i, gap, w)
		}
	}
}

// startClient builds a client on A's netif by hand (what stack/dhcp.go does), so that a
// test can give it a Config; the lease goes on A's netif directly.
func startClient(t *testing.T, r *rig, cfg dhcp.Config) *dhcp.Client {
	t.Helper()
	r.a.Lock()
	defer r.a.Unlock()
	n := r.nifA.IP()
	c, err := dhcp.New(dhcp.Env{UDP: r.a.UDP(), Timers: r.a.Timers(), Netif: n, Alloc: r.a.Allocator(), Core: r.a,
		Seed: 7, ACD: r.a.Options().DHCPDoesACDCheck,
		Install: func(l dhcp.Lease) error { return n.AddAddr(l.Addr) },
		Remove:  func(l dhcp.Lease) { _ = n.RemoveAddr(l.Addr.Addr()) },
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.a.Lock()
		c.Stop()
		r.a.Unlock()
	})
	return c
}

// TestNakRestart: a NAK of the REQUEST sends the client back to DISCOVER at once; a NAK of
// a renewal takes the address away first.
func TestNakRestart(t *testing.T) {
	r := newRig(t, rigConfig{dhcpOnA: true, noACD: true, lease: 600})
	r.sv.set(func(sv *server) { sv.naks = 1 })
	r.runUntil(10*time.Second, "bound", func() bool { return r.state() == dhcp.Bound })
	if got := r.sv.types(); !typesEqual(got, D, R, D, R) {
		t.Fatalf("server heard %v", got)
	}
	c := r.client()
	if c.Stats().Naks != 1 {
		t.Fatalf("stats %+v", c.Stats())
	}
	// NAK of the renewal: the address goes (OnChange is the stack's; the server's log
	// shows the DISCOVER that follows), and a new lease comes.
	r.sv.set(func(sv *server) { sv.naks = 1 })
	if err := c.Renew(); err != nil {
		t.Fatal(err)
	}
	r.pa.Flush()
	r.runUntil(10*time.Second, "bound again", func() bool { return r.state() == dhcp.Bound })
	if got := r.sv.types(); !typesEqual(got, D, R, D, R, R, D, R) {
		t.Fatalf("server heard %v", got)
	}
	if c.Stats().Naks != 2 {
		t.Fatalf("stats %+v", c.Stats())
	}
}

// TestDeclineConflict: the server offers an address stack B already has; the ARP probe
// hears B answer, the client DECLINEs, waits ten seconds, and takes the next address.
func TestDeclineConflict(t *testing.T) {
	r := newRig(t, rigConfig{dhcpOnA: true, extraB: []netip.Prefix{netip.PrefixFrom(addr77, 24)},
		pool: []netip.Addr{addr77, addr100}})
	r.runUntil(30*time.Second, "bound", func() bool { return r.state() == dhcp.Bound })
	if got := r.sv.types(); !typesEqual(got, D, R, dhcpv4.Decline, D, R) {
		t.Fatalf("server heard %v", got)
	}
	r.sv.mu.Lock()
	dec, again := r.sv.log[2], r.sv.log[3]
	r.sv.mu.Unlock()
	if dec.Requested != addr77 || dec.ServerID != serverAddr || dec.CIAddr.IsValid() || dec.Src.Addr() != netip.IPv4Unspecified() {
		t.Fatalf("DECLINE %+v", dec)
	}
	if w := again.At.Sub(dec.At); w < 10*time.Second {
		t.Fatalf("DISCOVER %v after the DECLINE (RFC 2131 §3.1.5: at least 10 s)", w)
	}
	if l, _ := r.client().Lease(); l.Addr.Addr() != addr100 {
		t.Fatalf("lease %+v", l)
	}
	if s := r.client().Stats(); s.Declines != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestReleaseOnRemove: removing the netif releases the lease (unicast to the server, with
// ciaddr) and the client is gone.
func TestReleaseOnRemove(t *testing.T) {
	r := newRig(t, rigConfig{dhcpOnA: true, noACD: true})
	r.runUntil(10*time.Second, "bound", func() bool { return r.state() == dhcp.Bound })
	if err := r.a.RemoveNetif(r.nifA); err != nil {
		t.Fatal(err)
	}
	r.pa.Flush()
	rel := r.sv.last()
	if rel.Type != dhcpv4.Release || rel.CIAddr != addr100 || rel.ServerID != serverAddr || rel.Dst != serverAddr ||
		rel.Src.Addr() != addr100 || rel.Requested.IsValid() {
		t.Fatalf("RELEASE %+v (server heard %v)", rel, r.sv.types())
	}
	if r.nifA.DHCP() != nil {
		t.Fatal("DHCP() after RemoveNetif")
	}
}

// TestInitReboot: with a remembered address the client asks for it back (REQUEST without
// a server identifier) and is bound without DISCOVER; a NAK sends it to DISCOVER.
func TestInitReboot(t *testing.T) {
	r := newRig(t, rigConfig{noACD: true})
	var changes []dhcp.Lease
	c := startClient(t, r, dhcp.Config{Addr: addr100, Hostname: "wisp-test", OnChange: func(l dhcp.Lease) { changes = append(changes, l) }})
	if c.State() != dhcp.Rebooting {
		t.Fatalf("state %v", c.State())
	}
	r.runUntil(5*time.Second, "bound", func() bool { return c.State() == dhcp.Bound })
	req := r.sv.last()
	if got := r.sv.types(); !typesEqual(got, R) || req.Requested != addr100 || req.ServerID.IsValid() || req.CIAddr.IsValid() ||
		req.Hostname != "wisp-test" {
		t.Fatalf("server heard %v, %+v", got, req)
	}
	if len(changes) != 1 || changes[0].Addr.Addr() != addr100 {
		t.Fatalf("OnChange %+v", changes)
	}

	r2 := newRig(t, rigConfig{noACD: true})
	r2.sv.naks = 1
	c2 := startClient(t, r2, dhcp.Config{Addr: addr77})
	r2.runUntil(5*time.Second, "bound", func() bool { return c2.State() == dhcp.Bound })
	if got := r2.sv.types(); !typesEqual(got, R, D, R) {
		t.Fatalf("server heard %v", got)
	}
	if l, _ := c2.Lease(); l.Addr.Addr() != addr100 {
		t.Fatalf("lease %+v", l)
	}
}

// TestUnicastReply: a server that ignores the BROADCAST flag sends OFFER and ACK to the
// offered address and the client's MAC; the netif without an address takes them
// (ip.Netif.SetAcceptUDPPort).
func TestUnicastReply(t *testing.T) {
	r := newRig(t, rigConfig{noACD: true})
	r.sv.inject = true
	c := startClient(t, r, dhcp.Config{})
	r.runUntil(5*time.Second, "bound", func() bool { return c.State() == dhcp.Bound })
	if got := r.sv.types(); !typesEqual(got, D, R) {
		t.Fatalf("server heard %v", got)
	}
}

// TestMediumIPRefused: DHCP on a TUN (no broadcast, no MAC) is refused clearly.
func TestMediumIPRefused(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	s, err := stack.New(stack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, s)
	a, b := pipe.New(pipe.Config{Medium: link.MediumIP, Sync: true})
	defer b.Close()
	_, err = s.AddNetif(a, stack.NetifConfig{DHCP: true})
	if !errors.Is(err, errs.Val) {
		t.Fatalf("AddNetif of a MediumIP link with DHCP: %v", err)
	}
	t.Log(err)
}

// TestReceiveAllocs: a DHCP broadcast of another transaction costs the client no
// allocation.
func TestReceiveAllocs(t *testing.T) {
	r := newRig(t, rigConfig{noACD: true})
	r.sv.silent = true
	c := startClient(t, r, dhcp.Config{})
	reply := dhcpv4.Repr{Op: dhcpv4.OpReply, XID: 1, Type: dhcpv4.Offer, CHAddr: r.pa.HardwareAddr(), YIAddr: addr100, ServerID: serverAddr}
	out := make([]byte, reply.Len())
	if _, err := reply.Emit(out); err != nil {
		t.Fatal(err)
	}
	frame := broadcastFrame(t, r, out)
	batch := make([]*pbuf.Pbuf, 1)
	before := c.Stats().Drops
	if n := testing.AllocsPerRun(100, func() {
		p := r.nifA.AllocRx(len(frame))
		_ = p.CopyIn(frame, 0)
		batch[0] = p
		r.nifA.DeliverPackets(batch)
	}); n != 0 {
		t.Fatalf("%v allocations per received DHCP message", n)
	}
	if c.Stats().Drops-before < 100 {
		t.Fatalf("the client did not see them: %+v", c.Stats())
	}
	r.pa.Flush()
	stacktest.BuffersZero(t, r.a)
}

// TestLeaseEndAbortsConnections: a lease that ends removes its address by the stack's
// path, so TCP connections bound to it are aborted, unless TCPKeepConnWhenIPChanges keeps
// them.
func TestLeaseEndAbortsConnections(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(map[bool]string{false: "abort", true: "keep"}[keep], func(t *testing.T) {
			r := newRig(t, rigConfig{dhcpOnA: true, noACD: true, lease: 600, keepConns: keep})
			r.runUntil(10*time.Second, "bound", func() bool { return r.state() == dhcp.Bound })
			var lsn *tcp.Listener
			var accepted []*tcp.PCB
			r.b.Callback(func() {
				c, _ := r.b.TCP().NewPCB()
				if err := c.Bind(netip.AddrPortFrom(serverAddr, 80)); err != nil {
					t.Error(err)
				}
				lsn, _ = c.Listen(2)
				lsn.OnAccept(func(_ *tcp.Listener, c *tcp.PCB) { accepted = append(accepted, c) })
			})
			var conn *tcp.PCB
			var got []error
			r.a.Callback(func() {
				conn, _ = r.a.TCP().NewPCB()
				conn.OnErr(func(_ *tcp.PCB, err error) { got = append(got, err) })
				_ = conn.Connect(netip.AddrPortFrom(serverAddr, 80), nil)
			})
			r.run(time.Second)
			if len(accepted) != 1 {
				t.Fatal("not connected")
			}
			r.sv.set(func(sv *server) { sv.silent = true })
			l, _ := r.client().Lease()
			defer r.b.Callback(func() {
				for _, c := range accepted {
					c.Abort()
				}
				_ = lsn.Close()
			})
			r.run(l.Acquired.Add(l.Lease).Sub(r.clk.Now()) + time.Second)
			if _, ok := r.client().Lease(); ok {
				t.Fatal("lease did not end")
			}
			var n int
			r.a.Callback(func() { n, _ = r.a.TCP().NumPCBs() })
			if keep {
				if len(got) != 0 && got[0] == errs.Abrt {
					t.Errorf("kept: errors %v", got)
				}
				r.a.Callback(conn.Abort)
			} else if len(got) != 1 || got[0] != errs.Abrt || n != 0 {
				t.Errorf("aborted: errors %v, %d connections", got, n)
			}
		})
	}
}

// TestTwoCores: on a stack with two cores the lease is installed on both and released at
// removal.
func TestTwoCores(t *testing.T) {
	r := newRig(t, rigConfig{dhcpOnA: true, cores: 2})
	r.runUntil(10*time.Second, "bound", func() bool { return r.state() == dhcp.Bound })
	if got := r.addrsA(); len(got) != 1 || got[0].Addr() != addr100 {
		t.Fatalf("A's addresses %v", got)
	}
	if gw, ok := r.defaultRouteA(); !ok || gw != serverAddr {
		t.Fatalf("A's default route %v %v", gw, ok)
	}
	if err := r.a.RemoveNetif(r.nifA); err != nil {
		t.Fatal(err)
	}
	r.pa.Flush()
	if got := r.sv.types(); !typesEqual(got, D, R, dhcpv4.Release) {
		t.Fatalf("server heard %v", got)
	}
}

// TestAcceptPortNarrow: the netif takes unicast UDP to port 68 for an address it does not
// have only while it has no IPv4 address, and no other port.
func TestAcceptPortNarrow(t *testing.T) {
	r := newRig(t, rigConfig{noACD: true})
	r.sv.silent = true
	c := startClient(t, r, dhcp.Config{})
	reply := dhcpv4.Repr{Op: dhcpv4.OpReply, XID: 1, Type: dhcpv4.Offer, CHAddr: r.pa.HardwareAddr(), YIAddr: addr100}
	out := make([]byte, reply.Len())
	if _, err := reply.Emit(out); err != nil {
		t.Fatal(err)
	}
	other := netip.MustParseAddr("198.18.0.200")
	drops := func() uint64 { return c.Stats().Drops }
	stacktest.Inject(t, r.nifA, frameTo(t, r, r.pa.HardwareAddr(), other, dhcpv4.ClientPort, out))
	if drops() != 1 {
		t.Fatalf("unicast to port 68 without an address not taken: %+v", c.Stats())
	}
	recv := r.a.Stats().UDP.Recv
	stacktest.Inject(t, r.nifA, frameTo(t, r, r.pa.HardwareAddr(), other, 69, out))
	if r.a.Stats().UDP.Recv != recv {
		t.Fatal("unicast to port 69 taken")
	}
	if err := r.nifA.AddAddr(netip.MustParsePrefix("198.18.0.9/24")); err != nil {
		t.Fatal(err)
	}
	stacktest.Inject(t, r.nifA, frameTo(t, r, r.pa.HardwareAddr(), other, dhcpv4.ClientPort, out))
	if drops() != 1 || r.a.Stats().UDP.Recv != recv {
		t.Fatalf("unicast to another address taken with an address configured: %+v", c.Stats())
	}
	r.pa.Flush()
}

// TestRenewNewRouter: a renewal that brings another router changes the default route and
// keeps the address (Env.Change): nothing is removed.
func TestRenewNewRouter(t *testing.T) {
	r := newRig(t, rigConfig{dhcpOnA: true, noACD: true})
	r.runUntil(10*time.Second, "bound", func() bool { return r.state() == dhcp.Bound })
	gw2 := netip.MustParseAddr("198.18.0.254")
	r.sv.set(func(sv *server) { sv.router = gw2 })
	if err := r.client().Renew(); err != nil {
		t.Fatal(err)
	}
	r.pa.Flush()
	if gw, ok := r.defaultRouteA(); !ok || gw != gw2 {
		t.Fatalf("default route %v %v", gw, ok)
	}
	if l, _ := r.client().Lease(); l.Router != gw2 || r.state() != dhcp.Bound {
		t.Fatalf("lease %+v", l)
	}
	if got := r.addrsA(); len(got) != 1 || got[0].Addr() != addr100 {
		t.Fatalf("A's addresses %v", got)
	}
}
