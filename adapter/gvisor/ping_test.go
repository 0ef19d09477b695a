package gvisor_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/internal/ping"
	"github.com/wispstack/wisp/link"
)

var wires = []netConfig{
	{medium: link.MediumIP},
	{medium: link.MediumEthernet},
	{medium: link.MediumIP, fd: true},
	{medium: link.MediumEthernet, fd: true},
}

// TestPing pings both ways, IPv4 and IPv6, between wisp and gVisor: over a pipe with
// NewEndpoint on gVisor's end, and over a socketpair with gVisor's fdbased on both ends and
// NewLink on wisp's.
func TestPing(t *testing.T) {
	for _, c := range wires {
		t.Run(c.String(), func(t *testing.T) {
			n := newNet(t, c)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for _, dst := range []netip.Addr{gvV4.Addr(), gvV6.Addr()} {
				for _, size := range []int{0, 56, 1400, 4000} { // 4000: fragmented both ways
					if _, err := ping.Once(ctx, endpoint.New(n.ws), dst, size); err != nil {
						t.Fatalf("wisp → gVisor %v size %d: %v", dst, size, err)
					}
				}
			}
			for _, dst := range []netip.Addr{wispV4.Addr(), wispV6.Addr()} {
				for _, size := range []int{0, 56, 1400, 4000} {
					if err := gvPing(ctx, n.gs, dst, size); err != nil {
						t.Fatalf("gVisor → wisp %v size %d: %v", dst, size, err)
					}
				}
			}
			st := n.ws.Stats()
			if st.ICMP.Recv == 0 || st.ICMP6.Recv == 0 {
				t.Errorf("wisp ICMP counters did not move: %+v %+v", st.ICMP, st.ICMP6)
			}
			if c.medium == link.MediumEthernet && st.Etharp.Recv == 0 {
				t.Errorf("no ARP on Ethernet: %+v", st.Etharp)
			}
			if n.gep != nil {
				t.Logf("gVisor endpoint: %+v", n.gep.Stats())
			}
			if n.wl != nil {
				t.Logf("wisp link: %+v", n.wl.Stats())
			}
		})
	}
}
