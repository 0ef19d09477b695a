package ip

import (
	"net/netip"
	"testing"
)

// TestMulticastLoopOnly: OutputOptions.LoopOnly (IP_MULTICAST_TTL 0) delivers a multicast
// packet to a local member, with TTL / hop limit 0 and unfragmented, and puts nothing on
// the link; without loop or membership it vanishes without error or drop counter; unicast
// ignores it.
func TestMulticastLoopOnly(t *testing.T) {
	e, n, ep, tr := loopEnv(t)
	before := e.stats()
	for _, c := range []struct {
		dst       netip.Addr
		loop      bool
		size      int
		wantLocal int
	}{
		{grp1, true, 100, 1},
		{grp1, true, 3000, 1}, // over the MTU: delivered whole, nothing fragmented
		{grp1, false, 100, 0},
		{grp2, true, 100, 0}, // not a member
		{allSystems4, true, 100, 1},
		{grp6b, true, 100, 1},
		{grp6b, true, 3000, 1},
		{grp6b, false, 100, 0},
		{mustAddr("ff05::db8:2"), true, 100, 0},
	} {
		if err := e.sendUDP(netip.Addr{}, c.dst, c.size, OutputOptions{Netif: n, TTL: 9, MulticastLoop: c.loop, LoopOnly: true}); err != nil {
			t.Fatalf("%v: %v", c.dst, err)
		}
		e.l.Flush()
		if f := ep.Take(); len(tr.inputs) != c.wantLocal || len(f) != 0 {
			t.Fatalf("%v loop %v size %d: %d local, %d frames", c.dst, c.loop, c.size, len(tr.inputs), len(f))
		}
		if c.wantLocal == 1 && (len(tr.data[0]) != 8+c.size || tr.inputs[0].TTL != 0) {
			t.Fatalf("%v: looped %d bytes, TTL %d", c.dst, len(tr.data[0]), tr.inputs[0].TTL)
		}
		tr.inputs, tr.data = nil, nil
	}
	s := e.stats()
	if s.IP.Drop != before.IP.Drop || s.IP6.Drop != before.IP6.Drop {
		t.Fatalf("drops counted: IP %d→%d, IP6 %d→%d", before.IP.Drop, s.IP.Drop, before.IP6.Drop, s.IP6.Drop)
	}
	// Unicast ignores LoopOnly: sent with the default TTL.
	for _, dst := range []netip.Addr{v4B, v6B} {
		if err := e.sendUDP(netip.Addr{}, dst, 10, OutputOptions{LoopOnly: true}); err != nil {
			t.Fatal(err)
		}
		e.l.Flush()
		f := ep.Take()
		ttl := f[0][8]
		if dst.Is6() {
			ttl = f[0][7]
		}
		if len(f) != 1 || ttl != e.l.opts.IPDefaultTTL {
			t.Fatalf("unicast %v: %d frames, TTL %d", dst, len(f), ttl)
		}
	}
}
