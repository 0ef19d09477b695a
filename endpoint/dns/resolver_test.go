package dns_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	adns "github.com/wispstack/wisp/apps/dns"
	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/endpoint/dns/dnstest"
	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack/stacktest"
)

// The three API levels on two stacks over a pipe, with dnstest's server on B (over B's
// sockets): the raw call answers from the table, netconn.LookupHost blocks, and the socket
// layer's LookupHost / LookupNetIP answer with package net's errors; a truncated answer is
// asked again over TCP and then answered from the one table.
func TestLookupThroughStack(t *testing.T) {
	o := opt.Client()
	o.DNSRetryInterval = 200 * time.Millisecond
	p := stacktest.NewPair(t, stacktest.PairConfig{Options: o})
	stacktest.WaitReady(t, p.NetifA, p.NetifB)
	srv := netip.AddrPortFrom(stacktest.AddrB[0], 53)
	nb := endpoint.New(p.B)
	pc, err := nb.ListenUDPAddrPort(srv)
	if err != nil {
		t.Fatal(err)
	}
	l, err := nb.ListenTCPAddrPort(srv)
	if err != nil {
		t.Fatal(err)
	}
	v4, v6 := netip.MustParseAddr("198.18.1.7"), netip.MustParseAddr("fd42:5eed::7")
	s := &dnstest.Server{
		Zone: map[string][]netip.Addr{"host.wisp.test.": {v6, v4}, "big.wisp.test.": {v4},
			"b.wisp.test.": {stacktest.AddrB[0]}},
		TCPOnly: map[string]bool{"big.wisp.test.": true},
	}
	s.ServeUDP(t, pc)
	s.ServeTCP(t, l)
	p.A.Lock()
	_ = p.A.DNS().SetServer(0, netip.MustParseAddrPort("198.18.0.99:53")) // dead: no such host
	_ = p.A.DNS().SetServer(1, srv)
	p.A.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	na := endpoint.New(p.A)
	got, err := na.LookupHost(ctx, "host.wisp.test")
	if err != nil || !slices.Equal(got, []string{v4.String(), v6.String()}) {
		t.Fatalf("LookupHost = %v, %v", got, err)
	}
	if a, err := netconn.LookupHost(p.A, ctx, "host.wisp.test", adns.IPv4); err != nil || !slices.Equal(a, []netip.Addr{v4}) {
		t.Errorf("netconn.LookupHost(IPv4) = %v, %v", a, err)
	}
	n := s.Queries()
	p.A.Lock()
	a, err := p.A.DNS().GetHostByName("host.wisp.test", adns.Any, func(string, []netip.Addr, error) { t.Error("callback of a cache hit") })
	p.A.Unlock()
	if err != nil || len(a) != 2 || s.Queries() != n {
		t.Errorf("raw cache hit: %v, %v (%d queries more)", a, err, s.Queries()-n)
	}
	// Truncated over UDP: asked over TCP, then answered from the table.
	if a, err := na.LookupNetIP(ctx, "ip4", "big.wisp.test"); err != nil || !slices.Equal(a, []netip.Addr{v4}) {
		t.Fatalf("LookupNetIP(truncated) = %v, %v", a, err)
	}
	n = s.Queries()
	if a, err := na.LookupNetIP(ctx, "ip4", "big.wisp.test"); err != nil || !slices.Equal(a, []netip.Addr{v4}) || s.Queries() != n {
		t.Errorf("again: %v, %v, %d queries more", a, err, s.Queries()-n)
	}
	var de *net.DNSError
	if _, err := na.LookupHost(ctx, "missing.wisp.test"); !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("missing: %v", err)
	}
	// Dial by name: resolved by the stack's resolver (B's DNS server's TCP port is open).
	if c, err := na.DialContext(ctx, "tcp", "b.wisp.test:53"); err != nil {
		t.Errorf("Dial by name: %v", err)
	} else {
		c.Close()
	}
	if _, err := na.DialContext(ctx, "tcp", "missing.wisp.test:53"); !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("Dial of a missing name: %v", err)
	}
	if _, err := na.LookupNetIP(ctx, "ip6", "198.18.0.1"); err == nil {
		t.Errorf("an IPv4 literal for ip6")
	}
	// Cancellation: a name only the dead server is asked for first; the context ends first.
	cctx, ccancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer ccancel()
	start := time.Now()
	if _, err := na.LookupHost(cctx, "slow.wisp.test"); !errors.As(err, &de) || !de.IsTimeout {
		t.Errorf("canceled: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cancellation took %v", d)
	}
	if st := p.A.Stats().DNS; st.Answers < 2 || st.CacheHits < 2 || st.Servers != 2 {
		t.Errorf("stats %+v", st)
	}
	// The stack's close ends a lookup in flight (the dead server alone now).
	p.A.Lock()
	_ = p.A.DNS().SetServer(1, netip.AddrPort{})
	p.A.Unlock()
	done := make(chan error, 1)
	go func() {
		_, err := netconn.LookupHost(p.A, context.Background(), "late.wisp.test")
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	p.A.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("LookupHost still blocked after Close")
	}
}
