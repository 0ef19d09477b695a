package udp_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/wispstack/wisp/ip/iptest"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

// datagram is an IP packet from src to dst carrying udp (a UDP header and payload, as is:
// the caller sets or breaks the checksum).
func datagram(src, dst netip.Addr, udp []byte) []byte {
	return iptest.Packet(wire.ProtoUDP, src, dst, udp)
}

// udpHeader builds a UDP datagram with a correct checksum for src and dst.
func udpHeader(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	b := make([]byte, wire.UDPHeaderLen+len(payload))
	copy(b[wire.UDPHeaderLen:], payload)
	r := wire.UDPRepr{SrcPort: sport, DstPort: dport, PayloadLen: len(payload)}
	if err := r.Emit(b, src, dst); err != nil {
		panic(err)
	}
	return b
}

func TestInputValidation(t *testing.T) {
	p := newPair(t, pairConfig{})
	srv, k := listen(t, p.B, "[::]:9")
	defer p.B.Callback(srv.Close)
	type tc struct {
		name    string
		src     netip.Addr
		dst     netip.Addr
		udp     func(src, dst netip.Addr) []byte
		deliver string // payload expected, "" for a drop
		reason  func(s *stats.Proto) uint64
	}
	good := func(src, dst netip.Addr) []byte { return udpHeader(src, dst, 1000, 9, []byte("hello")) }
	cases := []tc{
		{"v4 good", addrA, addrB, good, "hello", nil},
		{"v6 good", addrA6, addrB6, good, "hello", nil},
		{"v4 bad checksum", addrA, addrB, func(s, d netip.Addr) []byte {
			b := good(s, d)
			b[9] ^= 1
			return b
		}, "", func(s *stats.Proto) uint64 { return s.Chkerr }},
		{"v6 bad checksum", addrA6, addrB6, func(s, d netip.Addr) []byte {
			b := good(s, d)
			b[6] ^= 0x80
			return b
		}, "", func(s *stats.Proto) uint64 { return s.Chkerr }},
		{"v4 zero checksum is none", addrA, addrB, func(s, d netip.Addr) []byte {
			b := good(s, d)
			b[6], b[7] = 0, 0
			return b
		}, "hello", nil},
		{"v6 zero checksum is refused", addrA6, addrB6, func(s, d netip.Addr) []byte {
			b := good(s, d)
			b[6], b[7] = 0, 0
			return b
		}, "", func(s *stats.Proto) uint64 { return s.Chkerr }},
		{"length below 8", addrA, addrB, func(s, d netip.Addr) []byte {
			b := good(s, d)
			binary.BigEndian.PutUint16(b[4:], 7)
			return b
		}, "", func(s *stats.Proto) uint64 { return s.Lenerr }},
		{"length past the packet", addrA, addrB, func(s, d netip.Addr) []byte {
			b := good(s, d)
			binary.BigEndian.PutUint16(b[4:], 14)
			return b
		}, "", func(s *stats.Proto) uint64 { return s.Lenerr }},
		{"truncated header", addrA, addrB, func(s, d netip.Addr) []byte { return good(s, d)[:6] },
			"", func(s *stats.Proto) uint64 { return s.Lenerr }},
		{"bytes after Length are not data", addrA6, addrB6, func(s, d netip.Addr) []byte {
			b := udpHeader(s, d, 1000, 9, []byte("hel"))
			return append(b, "lo"...)
		}, "hel", nil},
	}
	for _, c := range cases {
		before := p.B.Stats().UDP
		n := len(k.got)
		stacktest.Inject(t, p.NetifB, datagram(c.src, c.dst, c.udp(c.src, c.dst)))
		after := p.B.Stats().UDP
		if c.deliver != "" {
			if len(k.got) != n+1 || string(k.got[n].data) != c.deliver {
				t.Errorf("%s: not delivered", c.name)
			}
			continue
		}
		if len(k.got) != n || after.Drop != before.Drop+1 || c.reason(&after) != c.reason(&before)+1 {
			t.Errorf("%s: want one drop under its reason: before %+v after %+v", c.name, before, after)
		}
	}
	p.flush()
}

// FuzzInput feeds arbitrary UDP datagrams (checksum fixed or not) over both families to a
// stack with PCBs on a few ports; whatever happens, every pbuf comes back.
func FuzzInput(f *testing.F) {
	f.Add(udpHeader(addrA, addrB, 1, 9, []byte("x")), false, true)
	f.Add(udpHeader(addrA6, addrB6, 1, 9, nil), true, true)
	f.Add([]byte{0, 1, 0, 9, 0, 8, 0, 0}, false, false)
	f.Add([]byte{0, 1, 0, 10, 0, 9, 0, 0, 1}, true, true)
	p := newPair(f, pairConfig{})
	srv, _ := listen(f, p.B, "[::]:9")
	conn, _ := listen(f, p.B, "198.18.0.2:10")
	p.B.Callback(func() { _ = conn.Connect(netip.MustParseAddrPort("198.18.0.1:1")) })
	defer p.B.Callback(func() { srv.Close(); conn.Close() })
	f.Fuzz(func(t *testing.T, b []byte, v6, fix bool) {
		if len(b) > 60000 {
			return
		}
		src, dst := addrA, addrB
		if v6 {
			src, dst = addrA6, addrB6
		}
		b = append([]byte(nil), b...)
		if fix && len(b) >= 8 {
			l := int(binary.BigEndian.Uint16(b[4:]))
			if l >= 8 && l <= len(b) {
				wire.UDP(b).SetChecksum(src, dst)
			}
		}
		stacktest.Inject(t, p.NetifB, datagram(src, dst, b))
		p.flush()
		stacktest.BuffersZero(t, p.B)
	})
}
