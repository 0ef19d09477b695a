package ethernet

import (
	"net/netip"
	"testing"

	"github.com/wispstack/wisp/wire"
)

// TestProbeAndWatch: Request with sender 0.0.0.0 is an RFC 5227 probe; the owner of the
// address answers it, and the prober's watch hears the answer; a probe for the watched
// address from another station is heard too; unrelated ARP is not.
func TestProbeAndWatch(t *testing.T) {
	v := newEnv(t)
	a := v.node(macA, netip.Addr{}, v.cfg()) // A has no address yet
	b := v.node(macB, ipB, v.cfg())
	c := v.node(macC, ipC, v.cfg())
	var heard [][6]byte
	a.e.Watch(ipB, func(hw [6]byte) { heard = append(heard, hw) })
	a.e.Request(ipB, netip.IPv4Unspecified())
	f := a.take()
	if len(f) != 1 {
		t.Fatalf("%d frames", len(f))
	}
	eth, arp := parseARP(t, f[0])
	if eth.Dst != wire.BroadcastMAC || arp.Operation != wire.ARPRequest || !arp.SPA.IsUnspecified() ||
		arp.TPA != ipB || arp.THA != (wire.MAC{}) || arp.SHA != macA {
		t.Fatalf("probe %+v %+v", eth, arp)
	}
	b.e.Input(v.rx(f[0]))
	if v.deliver(b, a) != 1 || len(heard) != 1 || heard[0] != macB {
		t.Fatalf("the owner's reply was not heard: %x", heard)
	}
	// B learnt nothing from a probe (sender 0.0.0.0).
	if _, ok := b.e.Lookup(netip.IPv4Unspecified()); ok {
		t.Fatal("learnt 0.0.0.0")
	}
	// C probing for the same address conflicts too; C asking for someone else does not.
	a.e.Input(v.rx(arpFrame(wire.ARPRequest, wire.BroadcastMAC, macC, netip.IPv4Unspecified(), wire.MAC{}, ipB)))
	a.e.Input(v.rx(arpFrame(wire.ARPRequest, wire.BroadcastMAC, macC, ipC, wire.MAC{}, ipA)))
	if len(heard) != 2 || heard[1] != macC {
		t.Fatalf("heard %x", heard)
	}
	// The watch ends.
	a.e.Watch(netip.Addr{}, nil)
	b.e.Announce(ipB)
	v.deliver(b, a)
	if len(heard) != 2 {
		t.Fatalf("heard after the watch ended: %x", heard)
	}
	// A Quiet Iface sends no probe.
	q := v.cfg()
	q.Quiet = true
	d := v.node([6]byte{2, 0, 0, 0, 0, 0xd}, netip.Addr{}, q)
	d.e.Request(ipB, netip.IPv4Unspecified())
	if len(d.out) != 0 {
		t.Fatal("a quiet Iface probed")
	}
	v.finish(a, b, c, d)
}
