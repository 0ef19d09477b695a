package raw_test

import (
	"net/netip"
	"testing"

	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/raw"
)

// Multicast TTL 0 (IP_MULTICAST_TTL 0): a raw datagram to a group reaches a member on the
// sender's stack (loop on) with TTL 0 and never the link; with loop off it goes nowhere,
// without error.
func TestMulticastTTLZero(t *testing.T) {
	for _, g := range []netip.Addr{netip.MustParseAddr("239.1.2.3"), netip.MustParseAddr("ff15::1234")} {
		t.Run(g.String(), func(t *testing.T) {
			p := newPair(t)
			v6 := g.Is6()
			var rxA, rxB, tx *raw.PCB
			ka, kb := &sink{}, &sink{}
			for _, x := range []struct {
				s *stack.Stack
				n *stack.Netif
			}{{p.A, p.NetifA}, {p.B, p.NetifB}} {
				var err error
				x.s.Callback(func() { err = x.s.IP().JoinGroup(x.n.IP(), g) })
				if err != nil {
					t.Fatal(err)
				}
			}
			p.B.Callback(func() {
				rxB, _ = p.B.Raw().NewRaw(v6, 253)
				rxB.OnRecv(kb.recv)
			})
			p.A.Callback(func() {
				rxA, _ = p.A.Raw().NewRaw(v6, 253)
				rxA.OnRecv(ka.recv)
				tx, _ = p.A.Raw().NewRaw(v6, 253)
			})
			p.PipeA.Flush()
			for _, loop := range []bool{true, false} {
				var err error
				var wire0, wire1 uint64
				p.A.Callback(func() { wire0 = p.NetifA.IP().Stats().Xmit })
				p.A.Callback(func() {
					tx.SetMulticastTTL(0)
					tx.SetMulticastLoop(loop)
					err = tx.SendTo(buf(t, p.A, []byte("local")), g)
				})
				p.PipeA.Flush()
				p.A.Callback(func() { wire1 = p.NetifA.IP().Stats().Xmit })
				if err != nil || wire1 != wire0 {
					t.Fatalf("loop %v: err %v, %d frames on the link", loop, err, wire1-wire0)
				}
			}
			if len(ka.got) != 1 || string(ka.got[0].b) != "local" || ka.got[0].info.TTL != 0 {
				t.Fatalf("local member got %d datagrams (%+v), want 1 with TTL 0", len(ka.got), ka.got)
			}
			if len(kb.got) != 0 {
				t.Fatalf("the peer stack got %d datagrams", len(kb.got))
			}
			p.A.Callback(func() { rxA.Close(); tx.Close() })
			p.B.Callback(rxB.Close)
		})
	}
}
