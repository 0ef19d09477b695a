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
			join(t, p.B, p.NetifB, g)
			join(t, p.A, p.NetifA, g)
			gp := netip.AddrPortFrom(netip.MustParseAddr(g), 5000)
			wild := "0.0.0.0:5000"
			uni := "198.18.0.2:5000"
			if gp.Addr().Is6() {
				wild, uni = "[::]:5000", "[fd42:5eed::2]:5000"
			}
			w, kw := reuseListen(t, p.B, wild)
			gr, kg := reuseListen(t, p.B, gp.String())
			u, ku := reuseListen(t, p.B, uni)
			self, ks := reuseListen(t, p.A, wild)
			var err error
			for _, loop := range []bool{true, false} {
				p.A.Callback(func() {
					self.SetMulticastLoop(loop)
					self.SetMulticastTTL(4)
					err = self.SendTo(payload(t, p.A, []byte("m")), gp)
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
			p.B.Callback(func() { _ = p.B.IP().LeaveGroup(p.NetifB.IP(), gp.Addr()) })
			p.A.Callback(func() { err = self.SendTo(payload(t, p.A, []byte("m")), gp) })
			p.flush()
			if err != nil || len(kw.got) != 2 {
				t.Errorf("after leave: err %v, got %d", err, len(kw.got))
			}
			p.B.Callback(func() { w.Close(); gr.Close(); u.Close() })
			p.A.Callback(self.Close)
		})
	}
}

// Multicast TTL 0 (IP_MULTICAST_TTL 0): the datagram reaches the sender's stack's members
// (loop on) with TTL 0 and never the link; with loop off it goes nowhere, without error.
func TestMulticastTTLZero(t *testing.T) {
	for _, g := range []string{"239.1.2.3", "ff15::1234"} {
		t.Run(g, func(t *testing.T) {
			p := newPair(t, pairConfig{})
			join(t, p.B, p.NetifB, g)
			join(t, p.A, p.NetifA, g)
			p.flush()
			gp := netip.AddrPortFrom(netip.MustParseAddr(g), 5000)
			wild := "0.0.0.0:5000"
			if gp.Addr().Is6() {
				wild = "[::]:5000"
			}
			peer, kp := reuseListen(t, p.B, wild)
			self, ks := reuseListen(t, p.A, wild)
			for _, loop := range []bool{true, false} {
				var err error
				var wire0, wire1 uint64
				p.A.Callback(func() { wire0 = p.NetifA.IP().Stats().Xmit })
				p.A.Callback(func() {
					self.SetMulticastTTL(0)
					self.SetMulticastLoop(loop)
					err = self.SendTo(payload(t, p.A, []byte("local")), gp)
				})
				p.flush()
				p.A.Callback(func() { wire1 = p.NetifA.IP().Stats().Xmit })
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
			if st := p.A.Stats().UDP; st.Drop != 0 || st.Xmit != 2 {
				t.Fatalf("UDP %+v", st)
			}
			p.B.Callback(peer.Close)
			p.A.Callback(self.Close)
		})
	}
}
