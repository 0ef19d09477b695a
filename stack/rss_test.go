package stack

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/wispstack/wisp/ip/iptest"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/wire"
)

// tcpPacket is an IP packet carrying a TCP SYN from src:sp to dst:dp.
func tcpPacket(t *testing.T, src, dst netip.Addr, sp, dp uint16) []byte {
	t.Helper()
	r := wire.TCPRepr{SrcPort: sp, DstPort: dp, SeqNum: 1, Flags: wire.TCPFlagSYN, Window: 65535}
	seg := make([]byte, r.HeaderLen())
	if err := r.Emit(seg, src, dst); err != nil {
		t.Fatal(err)
	}
	return iptest.Packet(wire.ProtoTCP, src, dst, seg)
}

// icmpError wraps quoted (a packet this stack sent) in an ICMP(v6) destination unreachable
// from the peer.
func icmpError(from, to netip.Addr, quoted []byte) []byte {
	msg := make([]byte, 8+len(quoted))
	copy(msg[8:], quoted)
	if from.Is4() {
		msg[0] = 3
		return iptest.Packet(wire.ProtoICMP, from, to, msg)
	}
	msg[0] = 1
	return iptest.Packet(wire.ProtoICMPv6, from, to, msg)
}

// closeClean closes s and fails the test if a pool still has an element in use.
func closeClean(t testing.TB, s *Stack) {
	t.Helper()
	s.Close()
	for _, p := range s.Stats().Pools {
		if p.Used != 0 {
			t.Errorf("after Close: %s has %d in use", p.Name, p.Used)
		}
	}
}

func (s *Stack) steerBytes(t *testing.T, b []byte) int {
	t.Helper()
	return s.steerFrame(t, b, false)
}

// steerFrame steers b, an Ethernet frame when eth.
func (s *Stack) steerFrame(t *testing.T, b []byte, eth bool) int {
	t.Helper()
	p, err := s.alloc.Alloc(pbuf.LayerRaw, len(b), pbuf.POOL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Free()
	if err := p.CopyIn(b, 0); err != nil {
		t.Fatal(err)
	}
	return s.steer(p, eth)
}

// ethFrame puts an IP packet (or an ARP message) in an Ethernet frame.
func ethFrame(typ wire.EtherType, b []byte) []byte {
	f := make([]byte, wire.EthernetHeaderLen, wire.EthernetHeaderLen+len(b))
	copy(f, []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2})
	binary.BigEndian.PutUint16(f[12:], uint16(typ))
	return append(f, b...)
}

// TestSteer: both directions of a connection, and the ICMP errors that quote it, go to the
// core its 4-tuple hashes to; fragments and other protocols go to core 0; the hash uses
// every core.
func TestSteer(t *testing.T) {
	s, err := New(Config{Cores: 4, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer closeClean(t, s)
	rng := rand.New(rand.NewPCG(1, 2))
	hits := make([]int, 4)
	for i := range 400 {
		var a, b netip.Addr
		if i%2 == 0 {
			a = netip.AddrFrom4([4]byte{198, 18, byte(rng.IntN(256)), byte(rng.IntN(256))})
			b = netip.AddrFrom4([4]byte{198, 19, byte(rng.IntN(256)), byte(rng.IntN(256))})
		} else {
			var x, y [16]byte
			copy(x[:], []byte{0xfd, 0x42, 0x5e, 0xed})
			copy(y[:], []byte{0xfd, 0x42, 0x5e, 0xed})
			binary.BigEndian.PutUint64(x[8:], rng.Uint64())
			binary.BigEndian.PutUint64(y[8:], rng.Uint64())
			a, b = netip.AddrFrom16(x), netip.AddrFrom16(y)
		}
		pa, pb := uint16(rng.IntN(65536)), uint16(rng.IntN(65536))
		want := s.coreFor(a, b, pa, pb)
		hits[want]++
		out := tcpPacket(t, a, b, pa, pb)
		if got := s.steerBytes(t, out); got != want {
			t.Fatalf("%v:%d → %v:%d steered to %d, hash says %d", a, pa, b, pb, got, want)
		}
		if got := s.steerBytes(t, tcpPacket(t, b, a, pb, pa)); got != want {
			t.Fatalf("answer %v:%d → %v:%d steered to %d, the connection is on %d", b, pb, a, pa, got, want)
		}
		if got := s.steerBytes(t, icmpError(b, a, out)); got != want {
			t.Fatalf("ICMP error quoting %v:%d → %v:%d steered to %d, want %d", a, pa, b, pb, got, want)
		}
		if a.Is4() {
			frag := append([]byte(nil), out...)
			wire.IPv4(frag).SetFragment(false, true, 0)
			wire.IPv4(frag).SetChecksum()
			if got := s.steerBytes(t, frag); got != 0 {
				t.Fatalf("first fragment steered to %d, want core 0", got)
			}
		}
		if got := s.steerBytes(t, iptest.Packet(wire.ProtoUDP, a, b, make([]byte, 8))); got != 0 {
			t.Fatalf("UDP steered to %d, want core 0", got)
		}
		// In an Ethernet frame the same; ARP and neighbour discovery go to every core.
		typ := wire.EtherTypeIPv4
		if a.Is6() {
			typ = wire.EtherTypeIPv6
		}
		if got := s.steerFrame(t, ethFrame(typ, out), true); got != want {
			t.Fatalf("Ethernet %v:%d → %v:%d steered to %d, hash says %d", a, pa, b, pb, got, want)
		}
		if a.Is6() {
			for typ := uint8(133); typ <= 137; typ++ {
				nd := iptest.Packet(wire.ProtoICMPv6, a, b, []byte{typ, 0, 0, 0, 0, 0, 0, 0})
				if got := s.steerFrame(t, ethFrame(wire.EtherTypeIPv6, nd), true); got != allCores {
					t.Fatalf("ND type %d steered to %d, want every core", typ, got)
				}
			}
			echo := iptest.Packet(wire.ProtoICMPv6, a, b, []byte{128, 0, 0, 0, 0, 0, 0, 0})
			if got := s.steerFrame(t, ethFrame(wire.EtherTypeIPv6, echo), true); got != 0 {
				t.Fatalf("ICMPv6 echo steered to %d, want core 0", got)
			}
		} else if got := s.steerFrame(t, ethFrame(wire.EtherTypeARP, make([]byte, 28)), true); got != allCores {
			t.Fatalf("ARP steered to %d, want every core", got)
		}
	}
	for k, n := range hits {
		if n < 50 {
			t.Errorf("core %d got %d of 400 flows: %v", k, n, hits)
		}
	}
}

// TestSteerReassembled: a SYN that arrives in two fragments is reassembled by core 0 and
// answered by the core its connection hashes to, where the listener's PCB on that core
// makes the half-open connection.
func TestSteerReassembled(t *testing.T) {
	s, err := New(Config{Cores: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer closeClean(t, s)
	a, b := pipe.New(pipe.Config{MTU: 1500, Medium: link.MediumIP})
	defer b.Close()
	local := netip.MustParseAddr("198.18.0.2")
	peer := netip.MustParseAddr("198.18.0.1")
	nif, err := s.AddNetif(a, NetifConfig{Addrs: []netip.Prefix{netip.PrefixFrom(local, 24)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range s.cores {
		c.Callback(func() {
			pcb, err := c.tcp.NewPCB()
			if err != nil {
				t.Fatal(err)
			}
			if err := pcb.Bind(netip.AddrPortFrom(local, 80)); err != nil {
				t.Fatal(err)
			}
			l, err := pcb.Listen(4)
			if err != nil {
				t.Fatal(err)
			}
			l.OnAccept(func(*tcp.Listener, *tcp.PCB) {})
		})
	}
	// A source port whose connection lives on core 1.
	sp := uint16(40000)
	for s.coreFor(peer, local, sp, 80) != 1 {
		sp++
	}
	// A SYN with 16 bytes of data (RFC 9293 allows it; the data waits for the handshake).
	r := wire.TCPRepr{SrcPort: sp, DstPort: 80, SeqNum: 1, Flags: wire.TCPFlagSYN, Window: 65535, PayloadLen: 16}
	seg := make([]byte, r.HeaderLen()+16)
	if err := r.Emit(seg, peer, local); err != nil {
		t.Fatal(err)
	}
	pkt := iptest.Packet(wire.ProtoTCP, peer, local, seg)
	hl := wire.IPv4MinHeaderLen
	// Fragment one: the IP header, the TCP header and 4 bytes of data; two: the rest.
	f1 := append([]byte(nil), pkt[:hl+24]...)
	wire.IPv4(f1).SetFragment(false, true, 0)
	wire.IPv4(f1).SetTotalLength(uint16(len(f1)))
	wire.IPv4(f1).SetChecksum()
	f2 := append(append([]byte(nil), pkt[:hl]...), pkt[hl+24:]...)
	wire.IPv4(f2).SetFragment(false, false, 24)
	wire.IPv4(f2).SetTotalLength(uint16(len(f2)))
	wire.IPv4(f2).SetChecksum()
	for _, f := range [][]byte{f1, f2} {
		p := nif.AllocRx(len(f))
		if err := p.CopyIn(f, 0); err != nil {
			t.Fatal(err)
		}
		nif.DeliverPackets([]*pbuf.Pbuf{p})
	}
	for k, c := range s.cores {
		var conns int
		c.Callback(func() { conns, _ = c.tcp.NumPCBs() })
		if want := map[bool]int{true: 1, false: 0}[k == 1]; conns != want {
			t.Errorf("core %d holds %d connections, want %d (the reassembled SYN belongs to core 1)", k, conns, want)
		}
	}
	snap := s.Stats()
	if snap.IPFrag.Recv == 0 {
		t.Errorf("no fragment counted: %+v", snap.IPFrag)
	}
}

// FuzzSteer: any frame steers to a core of the stack, without panicking.
func FuzzSteer(f *testing.F) {
	f.Add([]byte{0x45})
	s, err := New(Config{Cores: 3, Seed: 1})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	a, b := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	a6, b6 := netip.MustParseAddr("fd42:5eed::1"), netip.MustParseAddr("fd42:5eed::2")
	f.Add(iptest.Packet(wire.ProtoTCP, a, b, make([]byte, 20)))
	f.Add(iptest.Packet(wire.ProtoTCP, a6, b6, make([]byte, 20)))
	f.Add(icmpError(b, a, iptest.Packet(wire.ProtoTCP, a, b, make([]byte, 20))))
	f.Add(icmpError(b6, a6, iptest.Packet(wire.ProtoTCP, a6, b6, make([]byte, 20))))
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) == 0 || len(frame) > 2000 {
			return
		}
		if k := s.steerBytes(t, frame); k < 0 || k >= len(s.cores) {
			t.Fatalf("steered to core %d of %d", k, len(s.cores))
		}
		if k := s.steerFrame(t, frame, true); (k < 0 || k >= len(s.cores)) && k != allCores {
			t.Fatalf("Ethernet frame steered to core %d of %d", k, len(s.cores))
		}
	})
}
