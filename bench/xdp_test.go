package main

import (
	"bytes"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/wispstack/wisp/wire"
)

func TestUDPFrame(t *testing.T) {
	src, dst := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	mac1, mac2 := [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}
	for _, eth := range []bool{true, false} {
		for _, size := range []int{60, 1514, udpFrameMin} {
			spec := frameSpec{eth: eth, srcMAC: mac1, dstMAC: mac2, src: src, dst: dst, dport: 5003, size: size}
			b, err := udpFrame(spec, 40007)
			if err != nil {
				t.Fatalf("eth %v size %d: %v", eth, size, err)
			}
			want := size
			ip := wire.IPv4(b)
			if eth {
				if !bytes.Equal(b[0:6], mac2[:]) || !bytes.Equal(b[6:12], mac1[:]) || b[12] != 0x08 || b[13] != 0 {
					t.Fatalf("Ethernet header % x", b[:14])
				}
				ip = wire.IPv4(b[ethHdrLen:])
			} else {
				want -= ethHdrLen
			}
			if len(b) != want {
				t.Fatalf("eth %v size %d: %d bytes", eth, size, len(b))
			}
			if err := wire.CheckIPv4(ip); err != nil {
				t.Fatalf("IPv4: %v", err)
			}
			if !ip.ValidChecksum() || ip.Src() != src || ip.Dst() != dst || ip.Protocol() != 17 || int(ip.TotalLength()) != len(ip) {
				t.Fatalf("IPv4 header % x", ip[:20])
			}
			u := wire.UDP(ip.Payload())
			if err := wire.CheckUDP(u); err != nil {
				t.Fatalf("UDP: %v", err)
			}
			if !u.ValidChecksum(src, dst) || u.SrcPort() != 40007 || u.DstPort() != 5003 || int(u.Length()) != len(u) {
				t.Fatalf("UDP header % x (checksum valid %v)", u[:8], u.ValidChecksum(src, dst))
			}
		}
	}
}

func TestUDPFrameRefuses(t *testing.T) {
	in := netip.MustParseAddr("198.19.255.1")
	for _, spec := range []frameSpec{
		{src: in, dst: netip.MustParseAddr("127.0.0.1"), size: 60, eth: true},    // outside 198.18.0.0/15
		{src: netip.MustParseAddr("127.0.0.2"), dst: in, size: 60, eth: true},    // outside, as source
		{src: in, dst: netip.MustParseAddr("fd42:5eed::1"), size: 60, eth: true}, // IPv6
		{src: in, dst: in, size: udpFrameMin - 1, eth: true},
		{src: in, dst: in, size: 1515, eth: true},
	} {
		if _, err := udpFrame(spec, 1); err == nil {
			t.Errorf("%+v: no error", spec)
		}
	}
}

const vethStats = `NIC statistics:
     peer_ifindex: 3
     rx_queue_0_xdp_packets: 120
     rx_queue_0_xdp_bytes: 7200
     rx_queue_0_drops: 4
     rx_queue_0_xdp_redirect: 100
     rx_queue_0_xdp_drops: 16
     rx_queue_0_xdp_tx: 0
     rx_queue_1_xdp_redirect: 23
     rx_queue_1_xdp_drops: 1
     tx_queue_0_xdp_xmit: 9
     tx_queue_0_xdp_xmit_errors: 5
`

func TestParseVethXDPStats(t *testing.T) {
	r, d := parseVethXDPStats(vethStats)
	if r != 123 || d != 21 {
		t.Fatalf("redirect %d drops %d, want 123 and 21", r, d)
	}
	if r, d := parseVethXDPStats("garbage\nrx_queue_0_xdp_redirect: x\n"); r != 0 || d != 0 {
		t.Fatalf("garbage: %d %d", r, d)
	}
}

func FuzzParseVethXDPStats(f *testing.F) {
	f.Add(vethStats)
	f.Add("rx_queue_0_xdp_redirect: 18446744073709551615\n")
	f.Fuzz(func(t *testing.T, s string) { parseVethXDPStats(s) })
}

// TestXDPScenarioIDs pins the family's ids (what -run selects) and its derived rows'
// references to scenarios that exist.
func TestXDPScenarioIDs(t *testing.T) {
	n := xdpQueuesN()
	if n < 2 || n > xdpMaxQueues {
		t.Fatalf("N = %d", n)
	}
	ids := map[string]bool{}
	for _, sc := range scenarios() {
		if ids[sc.id] {
			t.Fatalf("duplicate id %s", sc.id)
		}
		ids[sc.id] = true
	}
	re := regexp.MustCompile(`^xdp/(udp-(60|1514)/(1q|\dq|tun)|tcp-(in|out)/(1q|\dq))$`)
	var got []string
	for _, sc := range xdpScenarios() {
		if !re.MatchString(sc.id) || sc.open == nil || sc.skip == nil {
			t.Errorf("bad scenario %s", sc.id)
		}
		got = append(got, sc.id)
	}
	if len(got) != 10 {
		t.Fatalf("%d scenarios: %v", len(got), got)
	}
	for _, want := range []string{"xdp/udp-60/1q", "xdp/udp-1514/tun", "xdp/tcp-out/1q", "tun/in", "tun/out"} {
		if !ids[want] {
			t.Errorf("no scenario %s", want)
		}
	}
}

// TestXDPFamilySmoke runs the family's smallest rows end to end (root and AF_XDP only):
// every engine with a column produces figures and nothing is left behind.
func TestXDPFamilySmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	if why := xdpMissing(); why != "" {
		t.Skip(why)
	}
	g0 := runtime.NumGoroutine()
	var out, progress bytes.Buffer
	o := options{smoke: true, run: `^xdp/(udp-60/1q|tcp-in/1q|tcp-out/1q)$`, engines: `^(wisp|netstack|kernel)$`, out: &out, progress: &progress}
	if err := run(o); err != nil {
		t.Fatal(err)
	}
	table := out.String()
	t.Logf("%s\n%s", progress.String(), table)
	if strings.Contains(table, "FAIL") {
		t.Errorf("a run failed")
	}
	if strings.Contains(table, "goroutines left") {
		t.Errorf("goroutines left after close")
	}
	for _, ns := range []string{xdpNSK, xdpNSE} {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			t.Errorf("namespace %s left", ns)
		}
	}
	if g := waitGoroutines(g0); g > g0 {
		t.Errorf("%d goroutines left", g-g0)
	}
}
