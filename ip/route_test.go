package ip_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/ip/iptest"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
)

// TestRouting drives one layer through its exported API only, in core context (an
// iptest.Node whose lock the test holds).
func TestRouting(t *testing.T) {
	node := iptest.NewNode(t, clock.NewFake(time.Unix(1e9, 0)), iptest.Options(), 1)
	defer node.Close()
	node.Core.Lock()
	defer node.Core.Unlock()
	l := node.IP
	n1, _ := l.AddNetif(&linktest.Capture{}, ip.NetifConfig{})
	n2, _ := l.AddNetif(&linktest.Capture{}, ip.NetifConfig{Name: "wg0"})
	if n1.Index() != 1 || n2.Index() != 2 || n1.Name() != "ip1" || n2.Name() != "wg0" {
		t.Fatalf("netifs %d %s %d %s", n1.Index(), n1.Name(), n2.Index(), n2.Name())
	}
	if _, err := l.AddNetif(&linktest.Capture{}, ip.NetifConfig{Name: "wg0"}); !errors.Is(err, errs.Use) {
		t.Fatalf("duplicate name: %v", err)
	}
	_ = n1.AddAddr(netip.MustParsePrefix("198.18.0.1/24"))
	_ = n2.AddAddr(netip.MustParsePrefix("198.19.0.1/16"))
	gw1, gw2 := netip.MustParseAddr("198.18.0.254"), netip.MustParseAddr("198.19.0.254")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.AddRoute(ip.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: gw1, Netif: n1, Metric: 10}))
	must(l.AddRoute(ip.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: gw2, Netif: n2, Metric: 5}))
	must(l.AddRoute(ip.Route{Dst: netip.MustParsePrefix("198.19.7.0/24"), Gateway: gw1, Netif: n1}))
	if err := l.AddRoute(ip.Route{Dst: netip.MustParsePrefix("198.19.7.9/24"), Gateway: gw1, Netif: n1}); !errors.Is(err, errs.Use) {
		t.Fatalf("duplicate route: %v", err)
	}
	if _, _, err := l.Lookup(netip.MustParseAddr("198.18.0.9")); !errors.Is(err, errs.Rte) {
		t.Fatalf("routes through down netifs used: %v", err)
	}
	n1.SetUp(true)
	n2.SetUp(true)
	cases := []struct {
		dst string
		n   *ip.Netif
		nh  string
	}{
		{"198.18.0.9", n1, "198.18.0.9"},   // connected /24
		{"198.19.7.1", n1, "198.18.0.254"}, // /24 beats the connected /16
		{"198.19.8.1", n2, "198.19.8.1"},   // connected /16
		{"198.20.0.1", n2, "198.19.0.254"}, // default, lower metric
	}
	for _, c := range cases {
		n, nh, err := l.Lookup(netip.MustParseAddr(c.dst))
		if err != nil || n != c.n || nh != netip.MustParseAddr(c.nh) {
			t.Errorf("Lookup(%s) = %v %v %v, want %s %s", c.dst, n.Name(), nh, err, c.n.Name(), c.nh)
		}
	}
	n2.SetUp(false)
	if n, nh, _ := l.Lookup(netip.MustParseAddr("198.20.0.1")); n != n1 || nh != gw1 {
		t.Errorf("with n2 down: %v %v", n, nh)
	}
	n2.SetUp(true)
	must(l.RemoveRoute(netip.MustParsePrefix("0.0.0.0/0"), n2))
	if n, _, _ := l.Lookup(netip.MustParseAddr("198.20.0.1")); n != n1 {
		t.Errorf("after removal: %v", n)
	}
	must(l.RemoveRoute(netip.MustParsePrefix("0.0.0.0/0"), nil))
	if _, _, err := l.Lookup(netip.MustParseAddr("198.20.0.1")); !errors.Is(err, errs.Rte) {
		t.Errorf("no route: %v", err)
	}
	// Output without a route fails with errs.Rte, counted, and frees the packet.
	p, _ := node.Alloc.Alloc(pbuf.LayerTransport, 10, pbuf.RAM)
	if err := l.Output(p, netip.Addr{}, netip.MustParseAddr("198.20.0.1"), 17, ip.OutputOptions{}); !errors.Is(err, errs.Rte) {
		t.Fatalf("Output: %v", err)
	}
	var s stats.Snapshot
	l.Stats(&s)
	if s.IP.Rterr != 1 {
		t.Errorf("rterr %d", s.IP.Rterr)
	}
	// Zones pick the netif of link-local destinations.
	ll := netip.MustParseAddr("fe80::1")
	if n, nh, err := l.Lookup(ll.WithZone("wg0")); n != n2 || nh != ll || err != nil {
		t.Errorf("zoned lookup: %v %v %v", n, nh, err)
	}
	if n, _, err := l.Lookup(ll.WithZone("1")); n != n1 || err != nil {
		t.Errorf("zoned by index: %v %v", n, err)
	}
	// Source selection.
	_ = n1.AddAddr(netip.MustParsePrefix("fd42:5eed::1/64"))
	_ = n1.AddAddr(netip.MustParsePrefix("fe80::1/64"))
	if s, err := l.SourceFor(netip.MustParseAddr("fd42:5eed::99"), nil); s != netip.MustParseAddr("fd42:5eed::1") || err != nil {
		t.Errorf("SourceFor global: %v %v", s, err)
	}
	if s, err := l.SourceFor(netip.MustParseAddr("fe80::2"), n1); s != netip.MustParseAddr("fe80::1") || err != nil {
		t.Errorf("SourceFor link-local: %v %v", s, err)
	}
	// Address validation.
	for _, bad := range []string{"0.0.0.0/8", "224.0.0.1/32", "::/64", "ff02::1/128", "::ffff:198.18.0.1/128", "198.18.0.255/24"} {
		if err := n1.AddAddr(netip.MustParsePrefix(bad)); !errors.Is(err, errs.Val) {
			t.Errorf("AddAddr(%s) = %v", bad, err)
		}
	}
	if err := n2.AddAddr(netip.MustParsePrefix("198.18.0.1/24")); !errors.Is(err, errs.Use) {
		t.Errorf("duplicate address: %v", err)
	}
	must(n1.RemoveAddr(netip.MustParseAddr("198.18.0.1")))
	if _, _, err := l.Lookup(netip.MustParseAddr("198.18.0.9")); !errors.Is(err, errs.Rte) {
		t.Errorf("connected route survived its address: %v", err)
	}
	must(l.RemoveNetif(n2))
	if len(l.Netifs()) != 1 {
		t.Fatal("RemoveNetif")
	}
}
