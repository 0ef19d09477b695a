package integration

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/internal/ping"
	"github.com/wispstack/wisp/internal/tcpapp"
	"github.com/wispstack/wisp/link/tun"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
)

// kernelPings runs the system ping inside ns against every target, small and fragmented.
func kernelPings(t *testing.T, ns *netns, targets ...string) {
	t.Helper()
	for _, dst := range targets {
		for _, size := range []int{56, 4000} {
			out := ns.run(t, "ping", "-c", "3", "-i", "0.2", "-W", "3", "-s", strconv.Itoa(size), dst)
			if !strings.Contains(out, "3 received") {
				t.Fatalf("ping -s %d %s:\n%s", size, dst, out)
			}
		}
	}
}

// The kernel pings a wisp stack attached to a TUN device in a namespace: IPv4 and IPv6,
// small and fragmented.
func TestKernelPingsWispOverTUN(t *testing.T) {
	requireTool(t, "ping")
	ns := newNetns(t)
	stacktest.NoGoroutineLeak(t)
	var dev *tun.Device
	var err error
	ns.do(t, func() { dev, err = tun.Open("wisp0", 1500) })
	if err != nil {
		t.Fatal(err)
	}
	s, err := stack.New(stack.Config{Options: opt.Tunnel()})
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	stacktest.Closed(t, s)
	if _, err := s.AddNetif(dev, stack.NetifConfig{Name: "wisp0", Addrs: []netip.Prefix{
		netip.MustParsePrefix("198.18.1.2/24"), netip.MustParsePrefix("fd42:5eed:0:1::2/64")}}); err != nil {
		dev.Close()
		t.Fatal(err)
	}
	ns.run(t, "ip", "addr", "add", "198.18.1.1/24", "dev", "wisp0")
	ns.run(t, "ip", "-6", "addr", "add", "fd42:5eed:0:1::1/64", "dev", "wisp0", "nodad")
	ns.run(t, "ip", "link", "set", "wisp0", "up")
	kernelPings(t, ns, "198.18.1.2", "fd42:5eed:0:1::2")

	snap := s.Stats()
	if snap.ICMP.Xmit < 6 || snap.ICMP6.Xmit < 6 {
		t.Errorf("echo replies: icmp %d, icmp6 %d", snap.ICMP.Xmit, snap.ICMP6.Xmit)
	}
	if snap.IPFrag.Recv == 0 || snap.IP6Frag.Recv == 0 {
		t.Errorf("no fragments reassembled: %+v %+v", snap.IPFrag, snap.IP6Frag)
	}
	if snap.IPFrag.Xmit == 0 || snap.IP6Frag.Xmit == 0 {
		t.Errorf("no fragments sent: %+v %+v", snap.IPFrag, snap.IP6Frag)
	}
	// And wisp pings the kernel.
	ctx := t.Context()
	for _, dst := range []string{"198.18.1.1", "fd42:5eed:0:1::1"} {
		if _, err := ping.Once(ctx, endpoint.New(s), netip.MustParseAddr(dst), 3000); err != nil {
			t.Errorf("wisp pings kernel %s: %v", dst, err)
		}
	}
}

// wisp's ping sockets (endpoint.Net Dial "ping4"/"ping6", like wireguard-go's PingConn)
// ping the kernel through TUN: the replies carry the socket's identifier, the sequence
// number and the data, small and fragmented.
func TestPingSocketToKernel(t *testing.T) {
	e := newTCPEnv(t, 26, nil)
	n := endpoint.New(e.s)
	for _, f := range families {
		c, err := n.Dial([]string{"ping4", "ping6"}[f.idx], e.kern[f.idx].String())
		if err != nil {
			t.Fatalf("%s: dial: %v", f.name, err)
		}
		defer c.Close()
		pc := c.(*endpoint.PingConn)
		request, reply := []byte{8, 0}, byte(0) // ICMPv4 echo request, echo reply
		if f.idx == 1 {
			request, reply = []byte{128, 0}, 129 // ICMPv6
		}
		for seq, size := range []int{56, 3000} {
			msg := make([]byte, 8+size)
			copy(msg, request)
			binary.BigEndian.PutUint16(msg[6:], uint16(seq+1))
			tcpapp.FillPattern(msg[8:], uint64(seq), 0)
			if _, err := c.Write(msg); err != nil {
				t.Fatalf("%s: write: %v", f.name, err)
			}
			buf := make([]byte, 8+size+100)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, err := c.Read(buf)
			if err != nil {
				t.Fatalf("%s: %d-byte echo: read: %v", f.name, size, err)
			}
			got := buf[:k]
			if k != len(msg) || got[0] != reply || binary.BigEndian.Uint16(got[4:]) != pc.Ident() ||
				binary.BigEndian.Uint16(got[6:]) != uint16(seq+1) || !bytes.Equal(got[8:], msg[8:]) {
				t.Fatalf("%s: %d-byte echo: reply % x... (%d bytes), want type %d ident %#x seq %d",
					f.name, size, got[:min(k, 8)], k, reply, pc.Ident(), seq+1)
			}
		}
	}
}

// buildWisp builds cmd/wisp once per test binary.
func buildWisp(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wisp")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/wispstack/wisp/cmd/wisp")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// `wisp serve` answers the kernel's pings, prints stats on SIGUSR1, writes a capture that
// decodes, and stops cleanly on SIGTERM.
func TestWispServeCLI(t *testing.T) {
	requireTool(t, "ping")
	ns := newNetns(t)
	capture := filepath.Join(t.TempDir(), "serve.pcap")
	srv := startServe(t, ns, "198.18.2.1/24", "fd42:5eed:0:2::1/64",
		"--addr", "198.18.2.2/24", "--addr", "fd42:5eed:0:2::2/64", "--pcap", capture)
	out := srv.out
	kernelPings(t, ns, "198.18.2.2", "fd42:5eed:0:2::2")

	srv.cmd.Process.Signal(syscall.SIGUSR1)
	waitFor(t, func() bool { return strings.Contains(out.String(), "ICMPv6") }, "stats on SIGUSR1:\n"+out.String())
	srv.stop(t)

	// The capture decodes: IPv4 and IPv6 echo replies with valid structure.
	f, err := os.Open(capture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var replies4, replies6 int
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		first := layers.LayerTypeIPv4
		if data[0]>>4 == 6 {
			first = layers.LayerTypeIPv6
		}
		pkt := gopacket.NewPacket(data, first, gopacket.Default)
		if el := pkt.ErrorLayer(); el != nil {
			t.Errorf("capture has a packet that does not decode: %v", el.Error())
		}
		if l, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok && l.TypeCode.Type() == layers.ICMPv4TypeEchoReply {
			replies4++
		}
		if l, ok := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok && l.TypeCode.Type() == layers.ICMPv6TypeEchoReply {
			replies6++
		}
	}
	if replies4 < 3 || replies6 < 3 {
		t.Errorf("capture holds %d IPv4 and %d IPv6 echo replies", replies4, replies6)
	}
	// And Wireshark's own dissectors agree.
	tshark := requireTool(t, "tshark")
	summary, err := exec.Command(tshark, "-n", "-r", capture).CombinedOutput()
	if err != nil {
		t.Fatalf("tshark -r: %v\n%s", err, summary)
	}
	if strings.Contains(string(summary), "Malformed") {
		t.Errorf("tshark finds malformed packets:\n%s", summary)
	}
	if !strings.Contains(string(summary), "Echo (ping) reply") {
		t.Errorf("tshark sees no echo replies:\n%s", summary)
	}
}

func TestWispServeBadFlags(t *testing.T) {
	bin := buildWisp(t)
	checkBadFlags(t, bin, nil, []badFlags{
		{[]string{"serve", "--addr", "198.18.0.1/24"}, "--tun NAME is required"},
		{[]string{"serve", "--tun", "x"}, "at least one --addr"},
		{[]string{"serve", "--tun", "x", "--addr", "198.18.0.1"}, "has no prefix length"},
		{[]string{"serve", "--tun", "x", "--addr", "nonsense"}, "not an address"},
		{[]string{"serve", "--tun", "x", "--addr", "198.18.0.1/24", "--queues", "0"}, "--queues 0 out of range"},
		{[]string{"serve", "--tun", "x", "--addr", "198.18.0.1/24", "--cores", "0"}, "--cores 0 out of range"},
		{[]string{"budget", "--preset", "huge"}, "unknown preset"},
		{[]string{"frobnicate"}, "unknown command"},
	})
	if os.Geteuid() != 0 {
		out, err := exec.Command(bin, "serve", "--tun", "wispx", "--addr", "198.18.0.1/24").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "root") {
			t.Errorf("serve without permission: %v\n%s", err, out)
		}
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
