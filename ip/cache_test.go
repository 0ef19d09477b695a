package ip

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/wire"
)

// TestInputCacheInvalidated checks that the one-entry input caches never let a packet
// through once the configuration that accepted the last one has changed.
func TestInputCacheInvalidated(t *testing.T) {
	e := newEnv(t, testOptions(), 1)
	defer e.close()
	ep := &linktest.Capture{Discard: true}
	n, _ := e.l.AddNetif(ep, NetifConfig{})
	rec := &recTransport{l: e.l}
	e.l.RegisterTransport(wire.ProtoUDP, rec)
	_ = n.AddAddr(netip.PrefixFrom(v4A, 24))
	_ = n.AddAddr(netip.PrefixFrom(v6A, 64))
	n.SetUp(true)
	p4 := ipv4Packet(v4B, v4A, wire.ProtoUDP, 64, udpish(8))
	p6 := ipv6Packet(v6B, v6A, wire.ProtoUDP, 64, udpish(8))
	deliver := func(want int, what string) {
		t.Helper()
		rec.inputs = rec.inputs[:0]
		e.inject(n, p4)
		e.inject(n, p6)
		if len(rec.inputs) != want {
			t.Fatalf("%s: %d packets delivered, want %d", what, len(rec.inputs), want)
		}
	}
	deliver(2, "configured")
	deliver(2, "again (cached)")
	_ = n.RemoveAddr(v4A)
	_ = n.RemoveAddr(v6A)
	deliver(0, "addresses removed")
	_ = n.AddAddr(netip.PrefixFrom(v4A, 24))
	_ = n.AddAddr(netip.PrefixFrom(v6A, 64))
	deliver(2, "addresses back")
	n.SetUp(false)
	deliver(0, "netif down")
	n.SetUp(true)
	deliver(2, "netif up")
	// 198.18.0.7 becomes the directed broadcast of a /30 on n: as a source it is dropped.
	from7 := ipv4Packet(mustAddr("198.18.0.7"), v4A, wire.ProtoUDP, 64, udpish(8))
	rec.inputs = rec.inputs[:0]
	e.inject(n, from7)
	if len(rec.inputs) != 1 {
		t.Fatal("packet from 198.18.0.7 not delivered")
	}
	if err := n.AddAddr(netip.MustParsePrefix("198.18.0.5/30")); err != nil {
		t.Fatal(err)
	}
	e.inject(n, from7)
	if len(rec.inputs) != 1 {
		t.Fatal("packet from a broadcast address delivered")
	}
	// An address going tentative (DAD restarted) no longer receives (RFC 4862 §5.4).
	a := n.findAddr(v6A)
	e.l.setState(a, Tentative)
	rec.inputs = rec.inputs[:0]
	e.inject(n, p6)
	if len(rec.inputs) != 0 {
		t.Fatal("packet to a tentative address delivered")
	}
	e.l.setState(a, Preferred)
	e.inject(n, p6)
	if len(rec.inputs) != 1 {
		t.Fatal("packet to a preferred address not delivered")
	}
}

// TestRouteCacheInvalidated checks that Output follows route and address changes at once.
func TestRouteCacheInvalidated(t *testing.T) {
	e := newEnv(t, testOptions(), 1)
	defer e.close()
	ep1 := &linktest.Capture{}
	ep2 := &linktest.Capture{}
	n1, _ := e.l.AddNetif(ep1, NetifConfig{})
	n2, _ := e.l.AddNetif(ep2, NetifConfig{})
	_ = n1.AddAddr(netip.MustParsePrefix("198.18.0.1/24"))
	_ = n2.AddAddr(netip.MustParsePrefix("198.19.0.1/24"))
	n1.SetUp(true)
	n2.SetUp(true)
	dst := mustAddr("203.0.113.9")
	if err := e.l.AddRoute(Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: mustAddr("198.18.0.254"), Netif: n1}); err != nil {
		t.Fatal(err)
	}
	send := func(want *linktest.Capture, what string) {
		t.Helper()
		ep1.Take()
		ep2.Take()
		for range 2 { // the second send is served from the cache
			if err := e.sendUDP(netip.Addr{}, dst, 8, OutputOptions{}); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		e.l.Flush()
		if want != nil && len(want.Frames) != 2 || len(ep1.Frames)+len(ep2.Frames) != 2 {
			t.Fatalf("%s: frames on n1 %d, n2 %d", what, len(ep1.Frames), len(ep2.Frames))
		}
	}
	send(ep1, "default route")
	if err := e.l.AddRoute(Route{Dst: netip.MustParsePrefix("203.0.113.0/24"), Gateway: mustAddr("198.19.0.254"), Netif: n2}); err != nil {
		t.Fatal(err)
	}
	send(ep2, "more specific route")
	n2.SetUp(false)
	send(ep1, "its netif down")
	n2.SetUp(true)
	send(ep2, "its netif up")
	if err := e.l.RemoveRoute(netip.MustParsePrefix("203.0.113.0/24"), n2); err != nil {
		t.Fatal(err)
	}
	send(ep1, "route removed")
	// The destination becomes a local address: looped back, not sent.
	_ = n2.AddAddr(netip.PrefixFrom(dst, 32))
	ep1.Take()
	if err := e.sendUDP(netip.Addr{}, dst, 8, OutputOptions{}); err != nil {
		t.Fatal(err)
	}
	e.l.Flush()
	if len(ep1.Frames) != 0 || len(ep2.Frames) != 0 {
		t.Fatal("packet to a local address sent out")
	}
	_ = n2.RemoveAddr(dst)
	_ = e.l.RemoveRoute(netip.MustParsePrefix("0.0.0.0/0"), nil)
	if err := e.sendUDP(netip.Addr{}, dst, 8, OutputOptions{}); !errors.Is(err, errs.Rte) {
		t.Fatalf("no route: %v", err)
	}
}
