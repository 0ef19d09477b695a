package integration

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
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
	srv := startServe(t, ns, "198.18.23.1/24", "fd42:5eed:23::1/64",
		"--addr", "198.18.23.2/24", "--addr", "fd42:5eed:23::2/64", "--udp-echo", "7")
	waitFor(t, func() bool { return strings.Contains(srv.out.String(), "serving on") }, "wisp serve to start:\n"+srv.out.String())
	for _, f := range families {
		addr := []string{"UDP4:198.18.23.2:7", "UDP6:[fd42:5eed:23::2]:7"}[f.idx]
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

// liveCapture runs tshark on dev in ns until the test ends, printing fields (tab-separated,
// one line per packet, as each packet arrives) to the returned buffer.
func liveCapture(t *testing.T, ns *netns, dev string, fields ...string) *syncBuffer {
	t.Helper()
	tshark := requireTool(t, "tshark")
	out := newSyncBuffer()
	args := []string{tshark, "-l", "-n", "-i", dev, "-T", "fields"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	c := ns.cmd(args...)
	c.Stdout = out
	stderr := newSyncBuffer()
	c.Stderr = stderr
	p := startProc(t, c)
	// tshark loads every dissector before it captures: on a loaded CI machine (go test runs
	// packages in parallel) that takes well over waitFor's 10 s.
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(stderr.String(), "Capturing on") {
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
	return out
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
