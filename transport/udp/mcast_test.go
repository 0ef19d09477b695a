package udp_test

import (
	"net/netip"
	"testing"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/udp"
)

// join joins group g on n's netif in core context.
func join(t *testing.T, s *stack.Stack, n *stack.Netif, g string) {
	t.Helper()
	var err error
	s.Callback(func() { err = s.IP().JoinGroup(n.IP(), netip.MustParseAddr(g)) })
	if err != nil {
		t.Fatalf("join %s: %v", g, err)
	}
}

// reuseListen binds a PCB with SO_REUSEADDR.
func reuseListen(t *testing.T, s *stack.Stack, addr string) (*udp.PCB, *sink) {
	t.Helper()
	var c *udp.PCB
	k := &sink{}
	s.Callback(func() {
		c, _ = s.UDP().NewPCB()
		c.SetReuseAddr(true)
		if err := c.Bind(netip.MustParseAddrPort(addr)); err != nil {
			t.Fatalf("bind %s: %v", addr, err)
		}
		c.OnRecv(k.recv)
	})
	return c, k
}

// Multicast goes to every PCB bound to the port with a wildcard or the group address, on a
// member netif; multicast loop delivers a copy to the sender's stack when it is a member.
func TestMulticastDeliveryAndLoop(t *testing.T) {
	for _, g := range []string{"239.1.2.3", "ff15::1234"} {
		t.Run(g, func(t *testing.T) {
			p := newPair(t, pairConfig{medium: link.MediumEthernet})
			join(t, p.b, p.nb, g)
			join(t, p.a, p.na, g)
			gp := netip.AddrPortFrom(netip.MustParseAddr(g), 5000)
			wild := "0.0.0.0:5000"
			uni := "198.18.0.2:5000"
			if gp.Addr().Is6() {
				wild, uni = "[::]:5000", "[fd42:5eed::2]:5000"
			}
			w, kw := reuseListen(t, p.b, wild)
			gr, kg := reuseListen(t, p.b, gp.String())
			u, ku := reuseListen(t, p.b, uni)
			self, ks := reuseListen(t, p.a, wild)
			var err error
			for _, loop := range []bool{true, false} {
				p.a.Callback(func() {
					self.SetMulticastLoop(loop)
					self.SetMulticastTTL(4)
					err = self.SendTo(payload(t, p.a, []byte("m")), gp)
				})
				if err != nil {
					t.Fatal(err)
				}
				p.flush()
			}
			if len(kw.got) != 2 || len(kg.got) != 2 || len(ku.got) != 0 {
				t.Fatalf("wildcard %d, group-bound %d, unicast-bound %d; want 2, 2, 0", len(kw.got), len(kg.got), len(ku.got))
			}
			in := kg.got[0].info
			if !in.Multicast || in.Dst.Unmap() != gp.Addr() || in.TTL != 4 {
				t.Errorf("info %+v", in)
			}
			if len(ks.got) != 1 {
				t.Errorf("loop: the sender's stack got %d copies, want 1 (loop on, then off)", len(ks.got))
			}
			// Not a member: nothing is delivered, and no port unreachable either.
			p.b.Callback(func() { _ = p.b.IP().LeaveGroup(p.nb.IP(), gp.Addr()) })
			p.a.Callback(func() { err = self.SendTo(payload(t, p.a, []byte("m")), gp) })
			p.flush()
			if err != nil || len(kw.got) != 2 {
				t.Errorf("after leave: err %v, got %d", err, len(kw.got))
			}
			p.b.Callback(func() { w.Close(); gr.Close(); u.Close() })
			p.a.Callback(self.Close)
		})
	}
}

// Multicast TTL 0 (IP_MULTICAST_TTL 0): the datagram reaches the sender's stack's members
// (loop on) with TTL 0 and never the link; with loop off it goes nowhere, without error.
func TestMulticastTTLZero(t *testing.T) {
	for _, g := range []string{"239.1.2.3", "ff15::1234"} {
		t.Run(g, func(t *testing.T) {
			p := newPair(t, pairConfig{})
			join(t, p.b, p.nb, g)
			join(t, p.a, p.na, g)
			p.flush()
			gp := netip.AddrPortFrom(netip.MustParseAddr(g), 5000)
			wild := "0.0.0.0:5000"
			if gp.Addr().Is6() {
				wild = "[::]:5000"
			}
			peer, kp := reuseListen(t, p.b, wild)
			self, ks := reuseListen(t, p.a, wild)
			for _, loop := range []bool{true, false} {
				var err error
				var wire0, wire1 uint64
				p.a.Callback(func() { wire0 = p.na.IP().Stats().Xmit })
				p.a.Callback(func() {
					self.SetMulticastTTL(0)
					self.SetMulticastLoop(loop)
					err = self.SendTo(payload(t, p.a, []byte("local")), gp)
				})
				p.flush()
				p.a.Callback(func() { wire1 = p.na.IP().Stats().Xmit })
				if err != nil || wire1 != wire0 {
					t.Fatalf("loop %v: err %v, %d frames on the link", loop, err, wire1-wire0)
				}
			}
			if len(ks.got) != 1 || string(ks.got[0].data) != "local" || ks.got[0].info.TTL != 0 {
				t.Fatalf("local member got %d datagrams (%+v), want 1 with TTL 0", len(ks.got), ks.got)
			}
			if len(kp.got) != 0 {
				t.Fatalf("the peer stack got %d datagrams", len(kp.got))
			}
			if st := p.a.Stats().UDP; st.Drop != 0 || st.Xmit != 2 {
				t.Fatalf("UDP %+v", st)
			}
			p.b.Callback(peer.Close)
			p.a.Callback(self.Close)
		})
	}
}
