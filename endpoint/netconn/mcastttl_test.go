package netconn_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/errs"
)

// SetMulticastTTL(0) (IP_MULTICAST_TTL 0) is accepted: the datagram reaches a member on
// the sender's own stack, with TTL 0, and never the peer stack, which gets the next
// datagram (TTL 1) first.
func TestUDPMulticastTTLZero(t *testing.T) {
	groups := []netip.Addr{netip.MustParseAddr("239.1.2.4"), netip.MustParseAddr("ff15::4321")}
	for fam, name := range fams {
		t.Run(name, func(t *testing.T) {
			a, b := newPair(t, tunnel())
			g := groups[fam]
			local, peer := mcastMember(t, a, 5354, g), mcastMember(t, b, 5354, g)
			cli := dialUDP(t, a, netip.AddrPortFrom(g, 5354))
			for _, bad := range []int{-1, 256} {
				if err := cli.SetMulticastTTL(bad); err != errs.Val {
					t.Errorf("SetMulticastTTL(%d) = %v, want errs.Val", bad, err)
				}
			}
			if err := cli.SetMulticastTTL(0); err != nil {
				t.Fatalf("SetMulticastTTL(0): %v", err)
			}
			if _, err := cli.Write([]byte("zero")); err != nil {
				t.Fatal(err)
			}
			if err := cli.SetMulticastTTL(1); err != nil {
				t.Fatal(err)
			}
			if _, err := cli.Write([]byte("one")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			read := func(c *netconn.UDPConn) (string, netconn.Meta) {
				t.Helper()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, m, err := c.ReadMsg(buf)
				if err != nil {
					t.Fatalf("ReadMsg: %v", err)
				}
				return string(buf[:n]), m
			}
			if s, m := read(local); s != "zero" || m.TTL != 0 || m.Dst != g {
				t.Fatalf("local member: %q %+v", s, m)
			}
			if s, m := read(local); s != "one" || m.TTL != 1 {
				t.Fatalf("local member, TTL 1: %q %+v", s, m)
			}
			if s, m := read(peer); s != "one" || m.TTL != 1 {
				t.Fatalf("peer got %q %+v first, want the TTL 1 datagram", s, m)
			}
		})
	}
}
