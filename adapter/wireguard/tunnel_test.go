package wireguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	addrA = netip.MustParseAddr("198.18.99.1")
	addrB = netip.MustParseAddr("198.18.99.2")
)

func wispAt(addr netip.Addr, dnsServers ...netip.Addr) func(*testing.T) side {
	return wispWith(Options{})(addr, dnsServers...)
}

// wispWith is wispAt with options.
func wispWith(o Options) func(netip.Addr, ...netip.Addr) func(*testing.T) side {
	return func(addr netip.Addr, dnsServers ...netip.Addr) func(*testing.T) side {
		return func(t *testing.T) side { return newWispSide(t, o, addr, dnsServers...) }
	}
}

func gvisorAt(addr netip.Addr, dnsServers ...netip.Addr) func(*testing.T) side {
	return func(t *testing.T) side { return newGvisorSide(t, addr, dnsServers...) }
}

// transferSize is a transfer's size: 64 MiB, less under the race detector; big ones (wisp
// to wisp, A to B: the 1 GB byte-exact transfer) and every one with WISP_WG_BIG=1
// are 1 GiB unless -short.
func transferSize(t *testing.T, big bool) int64 {
	switch {
	case raceEnabled:
		return 4 << 20
	case (big || os.Getenv("WISP_WG_BIG") != "") && !testing.Short():
		return 1 << 30
	}
	return 64 << 20
}

// tunnelSuite runs HTTP and ping both ways, name resolution through the tunnel against a
// DNS server on B, and a byte-exact transfer each way. A is always wisp, with options o.
func tunnelSuite(t *testing.T, o Options, b func(netip.Addr, ...netip.Addr) func(*testing.T) side) {
	sa, sb := pair(t, wispWith(o)(addrA, addrB), b(addrB, addrA))
	serveHTTP(t, sa.net, "A")
	serveHTTP(t, sb.net, "B")
	serveDNS(t, sb.net, map[string][]netip.Addr{
		"peer-b.wisp.test.": {addrB},
		"big.wisp.test.":    {netip.MustParseAddr("192.0.2.7")},
		"v6only.wisp.test.": {netip.MustParseAddr("2001:db8::7")},
	}, map[string]bool{"big.wisp.test.": true})

	t.Run("HTTP A to B", func(t *testing.T) {
		if got := httpGet(t, sa.net, "http://"+addrB.String()+"/"); !strings.HasPrefix(got, "hello from B to "+addrA.String()+":") {
			t.Errorf("body %q", got)
		}
	})
	t.Run("HTTP B to A", func(t *testing.T) {
		if got := httpGet(t, sb.net, "http://"+addrA.String()+"/"); !strings.Contains(got, "hello from A to ") || !strings.Contains(got, addrB.String()) {
			t.Errorf("body %q", got)
		}
	})
	t.Run("ping", func(t *testing.T) {
		if sa.wisp != nil {
			before := sa.wisp.Stats()
			defer func() {
				if t.Failed() {
					after := sa.wisp.Stats()
					t.Logf("A's counters during the pings: IP %+v -> %+v; ICMP %+v -> %+v; LINK %+v -> %+v",
						before.IP, after.IP, before.ICMP, after.ICMP, before.Link, after.Link)
				}
			}()
		}
		t.Logf("ping A→B %v, B→A %v", pingOnce(t, sa.net, addrB), pingOnce(t, sb.net, addrA))
	})
	t.Run("DNS", func(t *testing.T) {
		got, err := sa.net.LookupHost("peer-b.wisp.test")
		if err != nil || !reflect.DeepEqual(got, []string{addrB.String()}) {
			t.Fatalf("LookupHost = %v, %v", got, err)
		}
		// Truncated over UDP: retried over TCP through the tunnel.
		if got, err := sa.net.LookupHost("big.wisp.test"); err != nil || !reflect.DeepEqual(got, []string{"192.0.2.7"}) {
			t.Errorf("LookupHost(truncated) = %v, %v", got, err)
		}
		var de *net.DNSError
		if _, err := sa.net.LookupHost("missing.wisp.test"); !asDNSError(err, &de) || !de.IsNotFound {
			t.Errorf("LookupHost(missing) = %v", err)
		}
		// A has no IPv6 address: AAAA records are not asked for, as netstack.
		if _, err := sa.net.LookupHost("v6only.wisp.test"); !asDNSError(err, &de) || !de.IsNotFound {
			t.Errorf("LookupHost(v6only) = %v", err)
		}
		// Dial by name, as netstack programs do.
		if got := httpGet(t, sa.net, "http://peer-b.wisp.test/"); !strings.HasPrefix(got, "hello from B") {
			t.Errorf("body %q", got)
		}
	})
	t.Run("transfer A to B", func(t *testing.T) {
		size := transferSize(t, sb.wisp != nil)
		d := transfer(t, sa.net, sb.net, addrB, size)
		t.Logf("%d MiB A→B in %v: %.0f Mbit/s", size>>20, d.Round(time.Millisecond), float64(size)*8/d.Seconds()/1e6)
	})
	t.Run("transfer B to A", func(t *testing.T) {
		size := transferSize(t, false)
		d := transfer(t, sb.net, sa.net, addrA, size)
		t.Logf("%d MiB B→A in %v: %.0f Mbit/s", size>>20, d.Round(time.Millisecond), float64(size)*8/d.Seconds()/1e6)
	})
	if sa.wisp != nil {
		st := sa.wisp.Stats()
		tx, txd, rx, rxd := sa.wisp.Device().Stats()
		gf, gs, _ := sa.wisp.Device().OffloadStats()
		t.Logf("A: budget %d MiB, TCP xmit %d recv %d drop %d rtx %d; device tx %d (%d dropped) rx %d (%d dropped), %d large segments cut into %d; offload %+v",
			sa.wisp.Budget().Total>>20, st.TCP.Xmit, st.TCP.Recv, st.TCP.Drop, st.TCPExt.Retransmits, tx, txd, rx, rxd, gf, gs, st.Offload)
		// A sends 64 MiB: with offloads TCP hands the device large segments; without, none.
		if o.NoOffload != (gf == 0) {
			t.Errorf("NoOffload %v, yet the device cut %d large segments", o.NoOffload, gf)
		}
	}
}

func asDNSError(err error, de **net.DNSError) bool {
	for err != nil {
		if d, ok := err.(*net.DNSError); ok {
			*de = d
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func TestTunnelWispToWisp(t *testing.T) { tunnelSuite(t, Options{}, wispWith(Options{})) }

func TestTunnelWispToNetstack(t *testing.T) { tunnelSuite(t, Options{}, gvisorAt) }

// The same without offloads: MTU-sized packets with their checksums from the stack, as
// before offloads.
func TestTunnelWispToWispNoOffload(t *testing.T) {
	tunnelSuite(t, Options{NoOffload: true}, wispWith(Options{NoOffload: true}))
}

func TestTunnelWispToNetstackNoOffload(t *testing.T) {
	tunnelSuite(t, Options{NoOffload: true}, gvisorAt)
}

// TestNetstackResolvesThroughWisp: gVisor's netstack asks a DNS server that runs on wisp.
func TestNetstackResolvesThroughWisp(t *testing.T) {
	sa, sb := pair(t, wispAt(addrA), gvisorAt(addrB, addrA))
	serveDNS(t, sa.net, map[string][]netip.Addr{"peer-a.wisp.test.": {addrA}}, nil)
	got, err := sb.net.LookupHost("peer-a.wisp.test")
	if err != nil || !reflect.DeepEqual(got, []string{addrA.String()}) {
		t.Fatalf("LookupHost = %v, %v", got, err)
	}
}

// TestDialContextTriesEachAddress: a name with two addresses, the first refusing (nothing
// listens: RST), connects to the second, as netstack's DialContext does.
func TestDialContextTriesEachAddress(t *testing.T) {
	sa, sb := pair(t, wispAt(addrA, addrB), wispAt(addrB))
	other := netip.MustParseAddr("198.18.99.3") // B's second address, where nothing listens on 80
	if err := sb.wisp.Stack().Netifs()[0].AddAddr(netip.PrefixFrom(other, 32)); err != nil {
		t.Fatal(err)
	}
	serveDNS(t, sb.net, map[string][]netip.Addr{
		"multi.wisp.test.":   {other, addrB},
		"refused.wisp.test.": {other},
	}, nil)
	l, err := sb.wisp.ListenTCPAddrPort(netip.AddrPortFrom(addrB, 80))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sa.wisp.DialContext(ctx, "tcp", "multi.wisp.test:80")
	if err != nil {
		t.Fatalf("DialContext: %v", err)
	}
	if got := c.RemoteAddr().String(); got != netip.AddrPortFrom(addrB, 80).String() {
		t.Errorf("connected to %s", got)
	}
	c.Close()
	// One address, refused: the dial's error.
	if c, err := sa.wisp.DialContext(ctx, "tcp", "refused.wisp.test:80"); err == nil {
		c.Close()
		t.Fatal("dial to a port nobody listens on succeeded")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("refused: %v", err)
	}
	// partialDeadline shares the time left, never under 2 s unless less is left.
	now := time.Now()
	if d, _ := partialDeadline(now, now.Add(10*time.Second), 2); d.Sub(now) != 5*time.Second {
		t.Errorf("partialDeadline share %v", d.Sub(now))
	}
	if d, _ := partialDeadline(now, now.Add(3*time.Second), 3); d.Sub(now) != 2*time.Second {
		t.Errorf("partialDeadline minimum %v", d.Sub(now))
	}
	if _, err := partialDeadline(now, now.Add(-time.Second), 1); err == nil {
		t.Error("partialDeadline past the deadline")
	}
	if _, err := sa.wisp.Dial("sctp", "x:1"); err == nil {
		t.Error("unknown network accepted")
	}
	if _, err := sa.wisp.Dial("tcp6", addrB.String()+":80"); err == nil {
		t.Error("tcp6 to an IPv4 address accepted")
	}
}
