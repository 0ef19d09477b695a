package integration

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint"
)

// wisp's UDP sockets join 239.1.2.3 and ff15::1:2345 (endpoint's JoinGroup): tshark on the kernel's side of
// the TUN sees the IGMPv3 and MLDv2 reports that announce them, and the kernel's datagrams
// to the groups reach wisp's sockets bound to the port.
func TestMulticastJoinSeenByKernel(t *testing.T) {
	e := newTCPEnv(t, 24, nil)
	groups := []netip.Addr{netip.MustParseAddr("239.1.2.3"), netip.MustParseAddr("ff15::1:2345")}
	const (
		fVersion = iota // IGMP version (3 for an IGMPv3 report)
		fIGMPType
		fIGMPGroups
		fICMP6Type // 143: MLDv2 report
		fMLDGroups
		fUDPPort
	)
	capture := liveCapture(t, e.ns, "wisp0", "igmp.version", "igmp.type", "igmp.maddr",
		"icmpv6.type", "icmpv6.mldr.mar.multicast_address", "udp.dstport")
	seen := func(match func(f []string) bool) bool {
		for _, f := range captureLines(capture) {
			if len(f) > fUDPPort && match(f) {
				return true
			}
		}
		return false
	}
	// tshark says "Capturing on" before it really captures: the kernel sends probes to
	// wisp's discard port until one shows.
	probe := netip.AddrPortFrom(e.wisp[0], 9)
	waitFor(t, func() bool {
		e.ns.do(t, func() {
			if c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(probe)); err == nil {
				c.Write([]byte("probe"))
				c.Close()
			}
		})
		time.Sleep(50 * time.Millisecond)
		return seen(func(f []string) bool { return f[fUDPPort] == "9" })
	}, "the capture to show a probe")

	n := endpoint.New(e.s)
	var pcs [2]net.PacketConn
	for _, f := range families {
		pc, err := n.ListenPacket([]string{"udp4", "udp6"}[f.idx], ":5000")
		if err != nil {
			t.Fatalf("%s: listen: %v", f.name, err)
		}
		defer pc.Close()
		pcs[f.idx] = pc
		// IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP on the default interface.
		if err := pc.(*endpoint.UDPConn).JoinGroup(groups[f.idx], 0); err != nil {
			t.Fatalf("%s: join %v: %v", f.name, groups[f.idx], err)
		}
	}
	// The first reports leave at once (RFC 3376 §5.1, RFC 3810 §6.1).
	for _, r := range []struct {
		what  string
		match func(f []string) bool
	}{
		{"an IGMPv3 report for " + groups[0].String(), func(f []string) bool {
			return f[fVersion] == "3" && strings.Contains(f[fIGMPGroups], groups[0].String())
		}},
		{"an MLDv2 report for " + groups[1].String(), func(f []string) bool {
			return f[fICMP6Type] == "143" && strings.Contains(f[fMLDGroups], groups[1].String())
		}},
	} {
		deadline := time.Now().Add(5 * time.Second)
		for !seen(r.match) {
			if time.Now().After(deadline) {
				t.Fatalf("the capture shows no %s; it has (igmp version, type, groups, icmpv6 type, groups, udp port):\n%s",
					r.what, capture.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Kernel sockets of the namespace send to the groups out of wisp0 (a host route for the
	// IPv4 group, the zone for the IPv6 one); wisp's sockets receive.
	e.ns.run(t, "ip", "route", "add", groups[0].String()+"/32", "dev", "wisp0")
	for _, f := range families {
		msg := []byte("to the group " + groups[f.idx].String())
		dst := &net.UDPAddr{IP: groups[f.idx].AsSlice(), Port: 5000}
		if f.idx == 1 {
			dst.Zone = "wisp0"
		}
		var err error
		e.ns.do(t, func() {
			var c *net.UDPConn
			if c, err = net.DialUDP([]string{"udp4", "udp6"}[f.idx], nil, dst); err == nil {
				_, err = c.Write(msg)
				c.Close()
			}
		})
		if err != nil {
			t.Fatalf("%s: kernel sends to %v: %v", f.name, dst, err)
		}
		buf := make([]byte, 2048)
		pcs[f.idx].SetReadDeadline(time.Now().Add(5 * time.Second))
		k, from, err := pcs[f.idx].ReadFrom(buf)
		if err != nil || !bytes.Equal(buf[:k], msg) {
			t.Fatalf("%s: wisp reads the group's datagram: %v, %q from %v", f.name, err, buf[:k], from)
		}
		if ap := from.(*net.UDPAddr).AddrPort(); ap.Addr().Unmap() != e.kern[f.idx] {
			t.Errorf("%s: datagram from %v, want the kernel's %v", f.name, ap, e.kern[f.idx])
		}
	}
}
