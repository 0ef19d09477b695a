package dnstest_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint/dns"
	"github.com/wispstack/wisp/endpoint/dns/dnstest"
)

// TestServer resolves through a Server on the loopback: both families of a name, a name
// answered only over TCP, and an unknown name.
func TestServer(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(pc.LocalAddr().String())
	l, err := net.Listen("tcp", addr.String())
	if err != nil {
		pc.Close()
		t.Skipf("TCP on the UDP server's port: %v", err)
	}
	s := &dnstest.Server{
		Zone: map[string][]netip.Addr{
			"both.wisp.test.": {netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("fd00::1")},
			"big.wisp.test.":  {netip.MustParseAddr("198.18.0.2")},
		},
		TCPOnly: map[string]bool{"big.wisp.test.": true},
	}
	s.ServeUDP(t, pc)
	s.ServeTCP(t, l)

	r := &dns.Resolver{Servers: []netip.AddrPort{addr}, Timeout: 10 * time.Second, CacheSize: -1}
	ctx := context.Background()
	for host, want := range map[string][]string{
		"both.wisp.test": {"198.18.0.1", "fd00::1"},
		"big.wisp.test":  {"198.18.0.2"},
	} {
		got, err := r.LookupHost(ctx, host)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("LookupHost(%q) = %v, %v; want %v", host, got, err, want)
		}
	}
	var de *net.DNSError
	if _, err := r.LookupHost(ctx, "none.wisp.test"); !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("LookupHost of an unknown name: %v; want not found", err)
	}
}
