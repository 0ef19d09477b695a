package ip

import (
	"encoding/binary"
	"testing"

	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

func TestBadPackets(t *testing.T) {
	good4 := ipv4Packet(v4B, v4A, wire.ProtoUDP, 64, udpish(8))
	good6 := ipv6Packet(v6B, v6A, wire.ProtoUDP, 64, udpish(8))
	mod := func(b []byte, f func(b []byte)) []byte { c := append([]byte(nil), b...); f(c); return c }
	ext := func(nh uint8, hdrs ...[]byte) []byte {
		var pl []byte
		for _, h := range hdrs {
			pl = append(pl, h...)
		}
		pl = append(pl, udpish(8)...)
		return ipv6Packet(v6B, v6A, nh, 64, pl)
	}
	cases := []struct {
		name  string
		pkt   []byte
		field func(s *stats.Snapshot) uint64
		icmp  bool // an ICMP error is expected
	}{
		{"v4 checksum", mod(good4, func(b []byte) { b[10] ^= 1 }), func(s *stats.Snapshot) uint64 { return s.IP.Chkerr }, false},
		{"v4 truncated", good4[:15], func(s *stats.Snapshot) uint64 { return s.IP.Lenerr }, false},
		{"v4 total length", mod(good4, func(b []byte) {
			wire.IPv4(b).SetTotalLength(200)
		}), func(s *stats.Snapshot) uint64 { return s.IP.Lenerr }, false},
		{"v4 ihl", mod(good4, func(b []byte) { b[0] = 0x44; wire.IPv4(b[:20]).SetChecksum() }), func(s *stats.Snapshot) uint64 { return s.IP.Lenerr }, false},
		{"bad version", mod(good4, func(b []byte) { b[0] = 0x55 }), func(s *stats.Snapshot) uint64 { return s.IP.Err }, false},
		{"v4 multicast source", ipv4Packet(mustAddr("224.0.0.1"), v4A, wire.ProtoUDP, 64, udpish(8)), func(s *stats.Snapshot) uint64 { return s.IP.Err }, false},
		{"v4 our own address as source (land)", ipv4Packet(v4A, v4A, wire.ProtoUDP, 64, udpish(8)), func(s *stats.Snapshot) uint64 { return s.IP.Err }, false},
		{"v6 our own address as source (land)", ipv6Packet(v6A, v6A, wire.ProtoUDP, 64, udpish(8)), func(s *stats.Snapshot) uint64 { return s.IP6.Err }, false},
		{"v4 not for us", ipv4Packet(v4B, v4B, wire.ProtoUDP, 64, udpish(8)), func(s *stats.Snapshot) uint64 { return s.IP.Err }, false},
		{"v6 truncated", good6[:30], func(s *stats.Snapshot) uint64 { return s.IP6.Lenerr }, false},
		{"v6 payload length", mod(good6, func(b []byte) { binary.BigEndian.PutUint16(b[4:], 500) }), func(s *stats.Snapshot) uint64 { return s.IP6.Lenerr }, false},
		{"v6 hop-by-hop not first", ext(wire.ProtoIPv6DstOpts, []byte{0, 0, 1, 4, 0, 0, 0, 0}, []byte{17, 0, 1, 4, 0, 0, 0, 0}),
			func(s *stats.Snapshot) uint64 { return s.IP6.Opterr }, true},
		{"v6 ext header truncated", ext(wire.ProtoIPv6DstOpts, []byte{17, 9, 1, 4, 0, 0, 0, 0}),
			func(s *stats.Snapshot) uint64 { return s.IP6.Opterr }, true},
		{"v6 unknown option, discard", ext(wire.ProtoIPv6DstOpts, []byte{17, 0, 0x41, 4, 0, 0, 0, 0}),
			func(s *stats.Snapshot) uint64 { return s.IP6.Opterr }, false},
		{"v6 unknown option, icmp", ext(wire.ProtoIPv6DstOpts, []byte{17, 0, 0x81, 4, 0, 0, 0, 0}),
			func(s *stats.Snapshot) uint64 { return s.IP6.Opterr }, true},
		{"v6 routing header", ext(wire.ProtoIPv6Route, []byte{17, 0, 0, 1, 0, 0, 0, 0}),
			func(s *stats.Snapshot) uint64 { return s.IP6.Opterr }, true},
		{"v6 multicast source", ipv6Packet(allNodes, v6A, wire.ProtoUDP, 64, udpish(8)), func(s *stats.Snapshot) uint64 { return s.IP6.Err }, false},
		{"v6 misaligned fragment", ipv6Packet(v6B, v6A, wire.ProtoIPv6Frag, 64, []byte{17, 0, 0, 1, 0, 0, 0, 9, 1, 2, 3, 4, 5}),
			func(s *stats.Snapshot) uint64 { return s.IP6.Lenerr }, true},
		{"icmp checksum", ipv4Packet(v4B, v4A, wire.ProtoICMP, 64, mod(echo4(1, 1, []byte("abc")), func(b []byte) { b[9] ^= 1 })),
			func(s *stats.Snapshot) uint64 { return s.ICMP.Chkerr }, false},
		{"icmp6 checksum", ipv6Packet(v6B, v6A, wire.ProtoICMPv6, 64, mod(echo6(v6B, v6A, 1, 1, []byte("abc")), func(b []byte) { b[9] ^= 1 })),
			func(s *stats.Snapshot) uint64 { return s.ICMP6.Chkerr }, false},
	}
	for _, c := range cases {
		if c.field == nil {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			e, n, ep, tr := host(t)
			defer e.close()
			e.inject(n, c.pkt)
			s := e.stats()
			if got := c.field(&s); got != 1 {
				t.Errorf("counter = %d; IP %+v IP6 %+v", got, s.IP, s.IP6)
			}
			if len(tr.inputs) != 0 {
				t.Errorf("delivered")
			}
			if fr := ep.Take(); (len(fr) == 1) != c.icmp || len(fr) > 1 {
				t.Errorf("%d ICMP errors sent", len(fr))
			}
		})
	}
}

// TestLinkPadding: bytes after Total Length / Payload Length are trimmed, not delivered.
func TestLinkPadding(t *testing.T) {
	e, n, _, tr := host(t)
	tr.unreach = false
	defer e.close()
	e.inject(n, append(ipv4Packet(v4B, v4A, wire.ProtoUDP, 64, udpish(2)), 0, 0, 0, 0, 0, 0))
	e.inject(n, append(ipv6Packet(v6B, v6A, wire.ProtoUDP, 64, udpish(2)), 0, 0, 0))
	if len(tr.data) != 2 || len(tr.data[0]) != 10 || len(tr.data[1]) != 10 {
		t.Fatalf("data %v", tr.data)
	}
}

// TestAllocs pins the hot paths: echo request in, reply out; transport packet out.
func TestAllocs(t *testing.T) {
	e := newEnv(t, testOptions(), 1)
	defer e.close()
	ep := &linktest.Capture{Discard: true}
	n := e.addNetif(ep, mustPrefix(v4A, 24), mustPrefix(v6A, 64))
	req4 := ipv4Packet(v4B, v4A, wire.ProtoICMP, 64, echo4(1, 1, make([]byte, 56)))
	req6 := ipv6Packet(v6B, v6A, wire.ProtoICMPv6, 64, echo6(v6B, v6A, 1, 1, make([]byte, 56)))
	for _, req := range [][]byte{req4, req6} {
		in := func() {
			p, _ := e.alloc.Alloc(pbuf.LayerRaw, len(req), pbuf.POOL)
			_ = p.CopyIn(req, 0)
			n.Input(p)
			e.l.Flush()
		}
		before := ep.Count
		if a := testing.AllocsPerRun(100, in); a != 0 {
			t.Errorf("echo input: %v allocs", a)
		}
		if ep.Count-before != 101 {
			t.Errorf("%d replies", ep.Count-before)
		}
	}
	for _, pair := range [][2]string{{"198.18.0.1", "198.18.0.2"}, {"fd42:5eed::1", "fd42:5eed::2"}} {
		src, dst := mustAddr(pair[0]), mustAddr(pair[1])
		out := func() {
			p, _ := e.alloc.Alloc(pbuf.LayerTransport, 100, pbuf.RAM)
			if err := e.l.Output(p, src, dst, wire.ProtoUDP, OutputOptions{}); err != nil {
				t.Fatal(err)
			}
			e.l.Flush()
		}
		if a := testing.AllocsPerRun(100, out); a != 0 {
			t.Errorf("output %s: %v allocs", pair[1], a)
		}
	}
}
