package gvisor_test

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/wispstack/wisp/adapter/gvisor"
	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/impair"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
)

var (
	wispV4 = netip.MustParsePrefix("198.18.99.1/24")
	gvV4   = netip.MustParsePrefix("198.18.99.2/24")
	wispV6 = netip.MustParsePrefix("fd42:5eed:0:99::1/64")
	gvV6   = netip.MustParsePrefix("fd42:5eed:0:99::2/64")
)

const gvNIC tcpip.NICID = 1

// testNet is a wisp stack and a gVisor stack on one wire.
type testNet struct {
	ws   *stack.Stack
	wnif *stack.Netif
	gs   *gstack.Stack
	gep  *gvisor.Endpoint // pipe wires: the gVisor side of the pipe
	wl   *gvisor.Link     // fdbased wires: the wisp side
	imp  *impair.Link     // pipe wires with impairment: between wisp and the pipe

	wlink  link.Endpoint // wisp's link as its netif has it (impairment, capture, pipe or Link)
	gprobe *gvProbe      // the last state of each gVisor connection (evidence)
}

// netConfig describes a wire.
type netConfig struct {
	medium  link.Medium
	fd      bool           // a socketpair driven by gVisor's fdbased on both ends (NewLink)
	impair  *impair.Config // pipe wires: impairment between wisp and the pipe
	options opt.Options    // wisp's options (zero: opt.Tunnel())
	mtu     int            // 0: 1500
	noSACK  bool           // gVisor without SACK (its own default)
	// fd wires only. gso: both fdbased endpoints do host GSO (a virtio-net header on every
	// frame of the socketpair, GSOMaxSize 65536) and report the receive checksums valid
	// (RXChecksumOffload: what a host does for packets its local sender left partial).
	// viaEndpoint: the gVisor stack's NIC is NewEndpoint over NewLink over its fdbased end,
	// so its packets cross both adapters (GSO included) before the wire.
	gso, viaEndpoint bool
}

func (c netConfig) String() string {
	s := "pipe"
	if c.fd {
		s = "fdbased"
	}
	if c.gso {
		s += "-gso"
	}
	if c.viaEndpoint {
		s += "-via-endpoint"
	}
	return s + "/" + c.medium.String()
}

// newNet builds a wire, registers its teardown (gVisor Close+Wait, wisp Close, pools zero
// on both wisp allocators, no goroutine left) and waits until both stacks' addresses are
// usable.
func newNet(t *testing.T, c netConfig) *testNet {
	t.Helper()
	stacktest.NoGoroutineLeak(t)
	if c.mtu == 0 {
		c.mtu = 1500
	}
	n := &testNet{}
	var err error
	n.ws, err = stack.New(stack.Config{Options: c.options, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, n.ws)

	var wispLink link.Endpoint
	var gvLink gstack.LinkEndpoint
	if c.fd {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
		eth := c.medium == link.MediumEthernet
		mk := func(fd int, mac string) gstack.LinkEndpoint {
			o := &fdbased.Options{FDs: []int{fd}, MTU: uint32(c.mtu), EthernetHeader: eth}
			if c.gso {
				// RecvMMsg is the dispatcher that reports RXChecksumOffload; one processor
				// per channel, because gVisor's New starts the processors of a readv
				// dispatcher before replacing it with the recvmmsg one and never stops
				// them (only more than one runs in goroutines).
				o.GSOMaxSize, o.RXChecksumOffload = 1<<16, true
				o.PacketDispatchMode, o.ProcessorsPerChannel = fdbased.RecvMMsg, 1
				// Room for bursts of 64 KiB packets (the default, about 200 KiB, holds three).
				if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20); err != nil {
					_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
				}
			}
			if eth {
				o.Address = tcpip.LinkAddress(mac)
			}
			ep, err := fdbased.New(o)
			if err != nil {
				t.Fatal(err)
			}
			return ep
		}
		wep := mk(fds[0], "\x02\x00\x00\x00\x99\x01")
		gvLink = mk(fds[1], "\x02\x00\x00\x00\x99\x02")
		if c.viaEndpoint {
			gl, err := gvisor.NewLink(gvLink, gvisor.LinkConfig{})
			if err != nil {
				t.Fatal(err)
			}
			alloc, pools := gvAllocator()
			t.Cleanup(func() { allocZero(t, "gVisor side", alloc, pools) })
			n.gep = gvisor.NewEndpoint(gl, alloc)
			gvLink = n.gep
		}
		if n.wl, err = gvisor.NewLink(wep, gvisor.LinkConfig{}); err != nil {
			t.Fatal(err)
		}
		if n.wl.Medium() != c.medium {
			t.Fatalf("NewLink inferred %v, want %v", n.wl.Medium(), c.medium)
		}
		wispLink = capture(t, n.wl)
	} else {
		a, b := pipe.New(pipe.Config{MTU: c.mtu, Medium: c.medium, QueueLen: 4096})
		wispLink = capture(t, a)
		if c.impair != nil {
			n.imp = impair.New(wispLink, clock.Real, *c.impair)
			wispLink = n.imp
		}
		alloc, pools := gvAllocator()
		t.Cleanup(func() { allocZero(t, "gVisor side", alloc, pools) })
		n.gep = gvisor.NewEndpoint(b, alloc)
		gvLink = n.gep
	}

	n.gs, n.gprobe = newGVisorStack(t, !c.noSACK)
	if err := n.gs.CreateNIC(gvNIC, gvLink); err != nil {
		t.Fatalf("CreateNIC: %v", err)
	}
	for _, p := range []netip.Prefix{gvV4, gvV6} {
		proto := ipv4.ProtocolNumber
		if p.Addr().Is6() {
			proto = ipv6.ProtocolNumber
		}
		pa := tcpip.ProtocolAddress{Protocol: proto, AddressWithPrefix: tcpip.AddressWithPrefix{
			Address: tcpip.AddrFromSlice(p.Addr().AsSlice()), PrefixLen: p.Bits()}}
		if err := n.gs.AddProtocolAddress(gvNIC, pa, gstack.AddressProperties{}); err != nil {
			t.Fatalf("AddProtocolAddress %v: %v", p, err)
		}
	}
	n.gs.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: gvNIC},
		{Destination: header.IPv6EmptySubnet, NIC: gvNIC},
	})

	n.wlink = wispLink
	n.wnif, err = n.ws.AddNetif(wispLink, stack.NetifConfig{Name: "gv0", Addrs: []netip.Prefix{wispV4, wispV6}})
	if err != nil {
		t.Fatal(err)
	}
	stacktest.WaitReady(t, n.wnif)
	return n
}

// capture records the frames on the wire (what gVisor receives and sends: after impairment
// towards gVisor, before it towards wisp) in $WISP_GVISOR_PCAP/<test>.pcap when that
// variable names a directory.
func capture(t *testing.T, l link.Endpoint) link.Endpoint {
	return stacktest.CaptureTo(t, l, os.Getenv("WISP_GVISOR_PCAP"), 256)
}

// newGVisorStack returns a gVisor stack set up as wireguard-go's netstack sets up its own
// (IPv4, IPv6, TCP with SACK, UDP, ICMP), plus ARP for Ethernet wires, and TCP's probe for
// the evidence of failing tests (tcp.NewProtocolProbe is tcp.NewProtocol, Reno, with the
// probe). Close and Wait run when the test ends.
func newGVisorStack(t *testing.T, sack bool) (*gstack.Stack, *gvProbe) {
	probe := newGVProbe()
	s := gstack.New(gstack.Options{
		NetworkProtocols: []gstack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol, arp.NewProtocol},
		TransportProtocols: []gstack.TransportProtocolFactory{tcp.NewProtocolProbe(probe.record),
			udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
		HandleLocal: true,
	})
	opt := tcpip.TCPSACKEnabled(sack)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &opt); err != nil {
		t.Fatalf("SACK: %v", err)
	}
	t.Cleanup(func() {
		s.Close()
		s.Wait() // removes the NICs: closes the link endpoints
	})
	return s, probe
}

// gvAllocator is the pbuf memory of the gVisor side of a pipe wire.
func gvAllocator() (*pbuf.Allocator, *memp.Table) {
	a := pbuf.NewAllocator(pbuf.Config{PoolCount: 4096, PoolBufSize: 1600, HeapSize: 4 << 20,
		RefCount: 64, RAMCount: 4096})
	t := new(memp.Table)
	a.Register(t)
	return a, t
}

func allocZero(t *testing.T, name string, a *pbuf.Allocator, pools *memp.Table) {
	t.Helper()
	for _, p := range pools.Snapshot(nil) {
		if p.Used != 0 {
			t.Errorf("%s: pool %s: %d elements still in use", name, p.Name, p.Used)
		}
	}
	if u := a.HeapStats().Used; u != 0 {
		t.Errorf("%s: heap: %d bytes still in use", name, u)
	}
}

// gvPing sends one echo request from the gVisor stack to dst through a ping socket and
// waits for the reply carrying the same data.
func gvPing(ctx context.Context, s *gstack.Stack, dst netip.Addr, size int) error {
	netProto, icmpProto, req, rep := ipv4.ProtocolNumber, icmp.ProtocolNumber4,
		byte(header.ICMPv4Echo), byte(header.ICMPv4EchoReply)
	if dst.Is6() {
		netProto, icmpProto = ipv6.ProtocolNumber, icmp.ProtocolNumber6
		req, rep = byte(header.ICMPv6EchoRequest), byte(header.ICMPv6EchoReply)
	}
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(icmpProto, netProto, &wq)
	if terr != nil {
		return fmt.Errorf("ping endpoint: %v", terr)
	}
	defer ep.Close()
	we, ready := waiter.NewChannelEntry(waiter.ReadableEvents)
	wq.EventRegister(&we)
	defer wq.EventUnregister(&we)
	if terr := ep.Connect(tcpip.FullAddress{NIC: gvNIC, Addr: tcpip.AddrFromSlice(dst.AsSlice())}); terr != nil {
		return fmt.Errorf("connect: %v", terr)
	}
	msg := make([]byte, header.ICMPv4MinimumSize+size)
	msg[0] = req
	for i := range size {
		msg[header.ICMPv4MinimumSize+i] = byte(i * 7)
	}
	retry := time.NewTicker(time.Second) // the first request may wait for ARP/NDP
	defer retry.Stop()
	for {
		var r bytes.Reader
		r.Reset(msg)
		if _, terr := ep.Write(&r, tcpip.WriteOptions{}); terr != nil {
			return fmt.Errorf("write: %v", terr)
		}
	read:
		for {
			var got bytes.Buffer
			_, terr := ep.Read(&got, tcpip.ReadOptions{})
			switch terr.(type) {
			case nil:
				b := got.Bytes()
				if len(b) == len(msg) && b[0] == rep && bytes.Equal(b[8:], msg[8:]) {
					return nil
				}
				continue
			case *tcpip.ErrWouldBlock:
			default:
				return fmt.Errorf("read: %v", terr)
			}
			select {
			case <-ready:
			case <-retry.C:
				break read
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// gvAddr converts an address and port to gVisor's form.
func gvAddr(ap netip.AddrPort) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: gvNIC, Addr: tcpip.AddrFromSlice(ap.Addr().AsSlice()), Port: ap.Port()}
}

func gvProto(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Is4() {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}
