package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/internal/tcpapp"
)

// udpSizes are the datagram sizes of the echo tests: tiny, one full 1500-byte packet,
// and sizes that IPv4 and IPv6 fragment (both ways).
var udpSizes = []int{1, 100, 1472, 3000, 8000, 20000, 65000}

// startSocat runs socat with args in ns until the test ends.
func startSocat(t *testing.T, ns *netns, args ...string) {
	t.Helper()
	out := newSyncBuffer()
	c := ns.cmd(append([]string{"socat"}, args...)...)
	c.Stdout, c.Stderr = out, out
	t.Cleanup(func() { // registered first: runs after startProc's Kill and wait
		if s := out.String(); s != "" {
			t.Logf("socat %v said:\n%s", args, s)
		}
	})
	startProc(t, c)
}

// udpRoundTrip writes b on c and reads the echo; it retries a few times (the echo server
// may not be bound yet: the kernel then answers port unreachable, which a connected socket
// reports on its next read).
func udpRoundTrip(c net.Conn, b []byte, tries int) ([]byte, error) {
	buf := make([]byte, 70000)
	var err error
	for range tries {
		if _, err = c.Write(b); err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		var k int
		if k, err = c.Read(buf); err == nil {
			return buf[:k], nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, err
}

// wisp's UDP sockets (endpoint.Net Dial "udp4"/"udp6") exchange datagrams with socat
// echo servers on the kernel side of a TUN device: every size comes back byte-exact,
// including datagrams both sides fragment.
func TestUDPWispToKernelSocat(t *testing.T) {
	requireTool(t, "socat")
	e := newTCPEnv(t, 22, nil)
	// One socat per family: UDP-LISTEN takes the first sender as its peer and echoes every
	// datagram from it (PIPE), datagrams up to 64 KiB (-b).
	startSocat(t, e.ns, "-b", "65536", fmt.Sprintf("UDP4-LISTEN:7007,bind=%v", e.kern[0]), "PIPE")
	startSocat(t, e.ns, "-b", "65536", fmt.Sprintf("UDP6-LISTEN:7008,bind=[%v]", e.kern[1]), "PIPE")
	n := endpoint.New(e.s)
	for _, f := range families {
		raddr := netip.AddrPortFrom(e.kern[f.idx], uint16(7007+f.idx))
		c, err := n.Dial([]string{"udp4", "udp6"}[f.idx], raddr.String())
		if err != nil {
			t.Fatalf("%s: dial %v: %v", f.name, raddr, err)
		}
		defer c.Close()
		if _, err := udpRoundTrip(c, []byte("hello"), 30); err != nil {
			t.Fatalf("%s: no echo from socat on %v: %v", f.name, raddr, err)
		}
		for i, size := range udpSizes {
			b := make([]byte, size)
			tcpapp.FillPattern(b, uint64(i), 0)
			got, err := udpRoundTrip(c, b, 3)
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("%s: %d-byte datagram: %v, echo of %d bytes differs", f.name, size, err, len(got))
			}
		}
	}
	snap := e.s.Stats()
	if snap.IPFrag.Xmit == 0 || snap.IP6Frag.Xmit == 0 || snap.IPFrag.Recv == 0 || snap.IP6Frag.Recv == 0 {
		t.Errorf("fragments: IPv4 %+v, IPv6 %+v", snap.IPFrag, snap.IP6Frag)
	}
}

// socat on the kernel side sends datagrams to `wisp serve --udp-echo 7` and gets them back
// byte-exact, over IPv4 and IPv6, small and fragmented.
func TestWispServeUDPEcho(t *testing.T) {
	requireTool(t, "socat")
	ns := newNetns(t)
	srv := startServe(t, ns, "198.18.23.1/24", "fd42:5eed:0:23::1/64",
		"--addr", "198.18.23.2/24", "--addr", "fd42:5eed:0:23::2/64", "--udp-echo", "7")
	waitFor(t, func() bool { return strings.Contains(srv.out.String(), "serving on") }, "wisp serve to start:\n"+srv.out.String())
	for _, f := range families {
		addr := []string{"UDP4:198.18.23.2:7", "UDP6:[fd42:5eed:0:23::2]:7"}[f.idx]
		for i, size := range []int{5, 1400, 3000} {
			// One write of at most 4 KiB (PIPE_BUF) reaches socat as one read: one datagram.
			b := make([]byte, size)
			tcpapp.FillPattern(b, uint64(i), 0)
			var got []byte
			var err error
			for range 3 { // the first datagram may race the TUN coming up
				c := ns.cmd("socat", "-t", "0.5", "-b", "65536", "-", addr)
				c.Stdin = bytes.NewReader(b)
				var stderr bytes.Buffer
				c.Stderr = &stderr
				if got, err = c.Output(); err == nil && bytes.Equal(got, b) {
					break
				}
				err = errors.Join(err, errors.New(stderr.String()))
			}
			if !bytes.Equal(got, b) {
				t.Fatalf("%s: socat → wisp udp echo, %d bytes: %v; got %d bytes back", f.name, size, err, len(got))
			}
		}
	}
	srv.stop(t)
	if s := srv.out.String(); !strings.Contains(s, "udp echo on port 7") {
		t.Errorf("wisp serve output lacks the udp echo line:\n%s", s)
	}
}

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

// liveCapture runs tshark on dev in ns until the test ends, printing fields (tab-separated,
// one line per packet, as each packet arrives) to the returned buffer.
func liveCapture(t *testing.T, ns *netns, dev string, fields ...string) *syncBuffer {
	t.Helper()
	args := []string{"-l", "-n", "-i", dev, "-T", "fields"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out := newSyncBuffer()
	startTshark(t, ns, out, args...)
	return out
}

// startTshark starts tshark with args in ns, its output to stdout, and returns once it
// captures (its stderr holds what it printed). tshark loads every dissector before it
// captures: on a loaded CI machine (go test runs packages in parallel) that takes well
// over waitFor's 10 s. "Capturing on" comes when dumpcap opened the device, "Capture
// started" when it captures (tshark 4.0 prints both; one without the second line is
// given 10 s more).
func startTshark(t *testing.T, ns *netns, stdout io.Writer, args ...string) (*exec.Cmd, *proc, *syncBuffer) {
	t.Helper()
	tshark := requireTool(t, "tshark")
	c := ns.cmd(append([]string{tshark}, args...)...)
	c.Stdout = stdout
	stderr := newSyncBuffer()
	c.Stderr = stderr
	p := startProc(t, c)
	deadline := time.Now().Add(90 * time.Second)
	started := func() bool {
		s := stderr.String()
		return strings.Contains(s, "Capture started") ||
			strings.Contains(s, "Capturing on") && time.Until(deadline) < 80*time.Second
	}
	for !started() {
		select {
		case <-p.done:
			t.Fatalf("tshark exited before capturing:\n%s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for tshark to start:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c, p, stderr
}

// captureLines returns the capture's lines split into fields.
func captureLines(out *syncBuffer) [][]string {
	var lines [][]string
	for _, l := range strings.Split(out.String(), "\n") {
		if l != "" {
			lines = append(lines, strings.Split(l, "\t"))
		}
	}
	return lines
}
