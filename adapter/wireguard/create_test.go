package wireguard

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/wispstack/wisp/stack/stacktest"
)

// CreateNetTUN takes the MTUs IPv4 allows, [68, 65535], as netstack does; an IPv6 address
// needs 1280 (netstack accepts less and then sends no IPv6).
func TestCreateNetTUNMTURange(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	v4 := []netip.Addr{tunAddr}
	v6 := []netip.Addr{tunAddr, netip.MustParseAddr("fd42:77::1")}
	for _, c := range []struct {
		addrs []netip.Addr
		mtu   int
		err   string // "" for success
	}{
		{v4, 67, "MTU 67 out of range [68, 65535]"},
		{v4, 68, ""},
		{v4, 500, ""},
		{v4, 575, ""},
		{v4, 65535, ""},
		{v4, 65536, "MTU 65536 out of range [68, 65535]"},
		{v6, 500, "MTU 500 below IPv6's minimum of 1280"},
		{v6, 1279, "MTU 1279 below IPv6's minimum of 1280"},
		{v6, 1280, ""},
	} {
		td, n, err := CreateNetTUN(c.addrs, nil, c.mtu)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v MTU %d: err %v, want %q", c.addrs, c.mtu, err, c.err)
			}
			if td != nil || n != nil {
				t.Errorf("%v MTU %d: a device or Net came back with the error", c.addrs, c.mtu)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v MTU %d: %v", c.addrs, c.mtu, err)
			continue
		}
		if got, _ := td.MTU(); got != c.mtu {
			t.Errorf("device MTU %d, want %d", got, c.mtu)
		}
		if got := n.Stack().Netifs()[0].MTU(); got != c.mtu {
			t.Errorf("netif MTU %d, want %d", got, c.mtu)
		}
		td.Close()
		stacktest.PoolsZero(t, n.Stack())
	}
}

// mtuSide is a tunnel end with the given MTU: wisp (with options o), or netstack when
// gvisor.
func mtuSide(addr netip.Addr, mtu int, gvisor bool, o Options) func(*testing.T) side {
	return func(t *testing.T) side {
		t.Helper()
		if gvisor {
			td, n, err := netstack.CreateNetTUN([]netip.Addr{addr}, nil, mtu)
			if err != nil {
				t.Fatal(err)
			}
			return side{addr: addr, tun: td, net: gvisorNet{n}}
		}
		td, n, err := CreateNetTUNWithOptions([]netip.Addr{addr}, nil, mtu, o)
		if err != nil {
			t.Fatal(err)
		}
		return side{addr: addr, tun: td, net: wispNet{n}, wisp: n}
	}
}

// A 500-byte MTU tunnel, as wireguard-go's netstack accepts: ping, UDP datagrams larger
// than the MTU (fragmented and reassembled) and a byte-exact TCP transfer, both ways,
// wisp to wisp and wisp to netstack, with offloads and without.
func TestTunnelMTU500(t *testing.T) {
	for _, peer := range []struct {
		name   string
		gvisor bool
		o      Options
	}{
		{"wisp", false, Options{}}, {"netstack", true, Options{}},
		{"wisp no offload", false, Options{NoOffload: true}}, {"netstack no offload", true, Options{NoOffload: true}},
	} {
		t.Run(peer.name, func(t *testing.T) {
			sa, sb := pair(t, mtuSide(addrA, 500, false, peer.o), mtuSide(addrB, 500, peer.gvisor, peer.o))
			t.Logf("ping A→B %v, B→A %v", pingOnce(t, sa.net, addrB), pingOnce(t, sb.net, addrA))
			for _, size := range []int{400, 1400, 8000} {
				udpEcho(t, sa.net, sb.net, addrB, size)
				udpEcho(t, sb.net, sa.net, addrA, size)
			}
			const size = 1 << 20
			d := transfer(t, sa.net, sb.net, addrB, size)
			t.Logf("TCP 1 MiB A→B in %v", d.Round(time.Millisecond))
			d = transfer(t, sb.net, sa.net, addrA, size)
			t.Logf("TCP 1 MiB B→A in %v", d.Round(time.Millisecond))
			st := sa.wisp.Stats()
			t.Logf("A: IP frag %+v; TCP xmit %d recv %d", st.IPFrag, st.TCP.Xmit, st.TCP.Recv)
		})
	}
}

// udpEcho sends one size-byte datagram from one peer to an echo socket on the other and
// checks the echo, byte for byte (up to 5 tries, as one datagram may be lost).
func udpEcho(t *testing.T, from, to peerNet, toAddr netip.Addr, size int) {
	t.Helper()
	pc, err := to.listenUDP(7)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], addr)
		}
	}()
	defer func() { pc.Close(); <-done }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := from.DialContext(ctx, "udp", netip.AddrPortFrom(toAddr, 7).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = streamByte(int64(i))
	}
	buf := make([]byte, size+1)
	for try := 1; ; try++ {
		if _, err := c.Write(msg); err != nil {
			t.Fatalf("UDP %d bytes to %v: write: %v", size, toAddr, err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		if ne, ok := err.(net.Error); ok && ne.Timeout() && try < 5 {
			t.Logf("UDP %d bytes to %v: no echo within 1 s; sending again", size, toAddr)
			continue
		}
		if err != nil {
			t.Fatalf("UDP %d bytes to %v: read: %v", size, toAddr, err)
		}
		if !bytes.Equal(buf[:n], msg) {
			t.Fatalf("UDP %d bytes to %v: echo of %d bytes differs", size, toAddr, n)
		}
		return
	}
}

// At IPv4's minimum MTU of 68 every datagram larger than 68 bytes leaves in fragments of
// 48 payload bytes (68 less the 20-byte header, a multiple of 8): a 1400-byte UDP datagram
// (1408 bytes with its header) in exactly 30. With offloads and without.
func TestTunnelMTU68(t *testing.T) {
	t.Run("offload", func(t *testing.T) { tunnelMTU68(t, Options{}) })
	t.Run("no offload", func(t *testing.T) { tunnelMTU68(t, Options{NoOffload: true}) })
}

func tunnelMTU68(t *testing.T, o Options) {
	sa, sb := pair(t, mtuSide(addrA, 68, false, o), mtuSide(addrB, 68, false, o))
	t.Logf("ping A→B %v, B→A %v", pingOnce(t, sa.net, addrB), pingOnce(t, sb.net, addrA))
	udpEcho(t, sa.net, sb.net, addrB, 40) // 68 bytes: not fragmented
	if f := sa.wisp.Stats().IPFrag; f.Xmit != 0 {
		t.Fatalf("a 68-byte datagram was fragmented: %+v", f)
	}
	udpEcho(t, sa.net, sb.net, addrB, 1400)
	if f := sa.wisp.Stats().IPFrag; f.Xmit == 0 || f.Xmit%30 != 0 || f.Recv != f.Xmit {
		t.Fatalf("1400-byte datagrams and their echoes: %+v, want 30 fragments each", f)
	}
	// TCP's smallest MSS is transport/tcp's business; a transfer still arrives intact.
	before := sa.wisp.Stats().IPFrag.Xmit
	d := transfer(t, sa.net, sb.net, addrB, 64<<10)
	st := sa.wisp.Stats()
	t.Logf("TCP 64 KiB A→B in %v; A sent %d IPv4 fragments for it; TCP %+v; offload %+v",
		d.Round(time.Millisecond), st.IPFrag.Xmit-before, st.TCPExt, st.Offload)
}
