package integration

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

// The malformed barrage's size and seed.
const (
	malformedPackets      = 30_000
	malformedPacketsShort = 5_000
	malformedSeed         = 62
	malformedMaxTime      = 30 * time.Second
)

// malformedGen builds one malformed packet aimed at wisp.
type malformedGen struct {
	name string
	fn   func(g *malformed) []byte
}

// malformed is the barrage's state: the addresses and the seeded source of randomness.
type malformed struct {
	rng            *rand.Rand
	wisp, kern     [2]netip.Addr
	listen, closed uint16 // a port with a wisp listener, one without
}

func newMalformed(e *attackEnv, seed uint64) *malformed {
	return &malformed{rng: rand.New(rand.NewPCG(seed, 0x5eed)), wisp: e.wisp, kern: e.kern, listen: 7, closed: 9}
}

func (g *malformed) v6() bool { return g.rng.UintN(2) == 1 }

// src is a source the kernel does not own (so answers die in the namespace) or, one time
// in four, the kernel's own address (so ICMP errors reach a real stack).
func (g *malformed) src(v6 bool) netip.Addr {
	i := 0
	if v6 {
		i = 1
	}
	if g.rng.UintN(4) == 0 {
		return g.kern[i]
	}
	if v6 {
		a := g.wisp[1].As16()
		binary.BigEndian.PutUint64(a[8:], g.rng.Uint64()|1<<63)
		return netip.AddrFrom16(a)
	}
	a := g.wisp[0].As4()
	a[3] = byte(10 + g.rng.UintN(240))
	return netip.AddrFrom4(a)
}

func (g *malformed) dst(v6 bool) netip.Addr {
	if v6 {
		return g.wisp[1]
	}
	return g.wisp[0]
}

// addrs picks a family (v6), then a source in it (src) and wisp's address (dst).
func (g *malformed) addrs() (src, dst netip.Addr) {
	v6 := g.v6()
	return g.src(v6), g.dst(v6)
}

func (g *malformed) port() uint16 {
	if g.rng.UintN(2) == 0 {
		return g.listen
	}
	return g.closed
}

func (g *malformed) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.rng.UintN(256))
	}
	return b
}

// syn is a well-formed TCP SYN (header and options) from src to dst.
func (g *malformed) syn(src, dst netip.Addr, port uint16) []byte {
	s := tcpSeg{src: netip.AddrPortFrom(src, uint16(1024+g.rng.UintN(60000))), dst: netip.AddrPortFrom(dst, port),
		seq: g.rng.Uint32(), flags: wire.TCPFlagSYN, wnd: 64240, opts: linuxSYNOptions(g.rng.Uint32())}
	return s.tcpBytes()
}

// echo is a well-formed ICMP or ICMPv6 echo request from src to dst.
// badEcho is an echo request to wisp that is truncated, has a bad checksum or has a type
// that is not an ICMP (v6: ICMPv6) message wisp knows.
func (g *malformed) badEcho(v6 bool) []byte {
	src, dst, proto, id := g.src(v6), g.wisp[0], uint8(wire.ProtoICMP), uint16(1)
	if v6 {
		dst, proto, id = g.wisp[1], wire.ProtoICMPv6, 0
	}
	b := g.echo(src, dst, 8)
	switch g.rng.UintN(3) {
	case 0:
		if v6 {
			b = b[:1+g.rng.UintN(3)]
		} else {
			b = b[:1+g.rng.UintN(7)]
		}
	case 1:
		b[2] ^= 0xa5
	case 2:
		if v6 {
			b[0] = []byte{byte(5 + g.rng.UintN(123)), byte(160 + g.rng.UintN(96))}[g.rng.UintN(2)]
			wire.ICMPv6(b).SetChecksum(src, dst)
		} else {
			b[0] = byte(42 + g.rng.UintN(214))
			wire.ICMPv4(b).SetChecksum()
		}
	}
	return ipPacket(src, dst, proto, id, b)
}

func (g *malformed) echo(src, dst netip.Addr, n int) []byte {
	b := make([]byte, 8+n)
	copy(b[8:], g.bytes(n))
	if src.Is4() {
		r := wire.ICMPv4Repr{Type: wire.ICMPv4EchoRequest, Ident: uint16(g.rng.UintN(65536)), Seq: 1, PayloadLen: n}
		r.Emit(b)
	} else {
		r := wire.ICMPv6Repr{Type: wire.ICMPv6EchoRequest, Ident: uint16(g.rng.UintN(65536)), Seq: 1, PayloadLen: n}
		r.Emit(b, src, dst)
	}
	return b
}

// v4 is a well-formed IPv4 packet carrying a SYN or an echo request.
func (g *malformed) v4() []byte {
	src, dst := g.src(false), g.wisp[0]
	if g.rng.UintN(2) == 0 {
		return ipPacket(src, dst, wire.ProtoTCP, uint16(g.rng.UintN(65536)), g.syn(src, dst, g.port()))
	}
	return ipPacket(src, dst, wire.ProtoICMP, uint16(g.rng.UintN(65536)), g.echo(src, dst, int(g.rng.UintN(64))))
}

func v4Sum(p []byte) {
	p[10], p[11] = 0, 0
	hl := int(p[0]&0xf) * 4
	if hl < 20 || hl > len(p) {
		hl = 20
	}
	binary.BigEndian.PutUint16(p[10:12], wire.Finish(wire.Checksum(p[:hl], 0)))
}

// v6ext wraps an upper-layer payload in IPv6 with the given extension headers (each with
// its Next Header byte filled in here).
func v6ext(src, dst netip.Addr, proto uint8, exts [][]byte, payload []byte) []byte {
	var body []byte
	first := proto
	if len(exts) > 0 {
		first = exts[0][0]
		for i, x := range exts {
			h := slices.Clone(x)
			h[0] = proto
			if i+1 < len(exts) {
				h[0] = exts[i+1][0]
			}
			body = append(body, h...)
		}
	}
	body = append(body, payload...)
	return ipPacket(src, dst, first, 0, body)
}

// ext builds an extension header of type typ (its first byte, replaced by v6ext) with
// the options or data in body, padded to a multiple of 8 with a PadN.
func ext(typ uint8, body []byte) []byte {
	h := append([]byte{typ, 0}, body...)
	if pad := (8 - len(h)%8) % 8; pad == 1 {
		h = append(h, wire.IPv6OptPad1)
	} else if pad > 1 {
		h = append(h, wire.IPv6OptPadN, byte(pad-2))
		h = append(h, make([]byte, pad-2)...)
	}
	h[1] = byte(len(h)/8 - 1)
	return h
}

var malformedGens = []malformedGen{
	// IPv4 headers.
	{"v4 truncated header", func(g *malformed) []byte { return g.v4()[:1+g.rng.UintN(19)] }},
	{"v4 bad version", func(g *malformed) []byte {
		p := g.v4()
		p[0] = []byte{0, 1, 2, 3, 5, 7, 8, 15}[g.rng.UintN(8)]<<4 | p[0]&0xf
		return p
	}},
	{"v4 IHL below 5", func(g *malformed) []byte {
		p := g.v4()
		p[0] = 4<<4 | byte(g.rng.UintN(5))
		v4Sum(p)
		return p
	}},
	{"v4 IHL past the packet", func(g *malformed) []byte {
		p := g.v4()[:20+g.rng.UintN(8)]
		p[0] = 4<<4 | 15
		binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
		return p
	}},
	{"v4 total length past the packet", func(g *malformed) []byte {
		p := g.v4()
		binary.BigEndian.PutUint16(p[2:4], uint16(len(p)+1+int(g.rng.UintN(1000))))
		v4Sum(p)
		return p
	}},
	{"v4 total length below the header", func(g *malformed) []byte {
		p := g.v4()
		binary.BigEndian.PutUint16(p[2:4], uint16(g.rng.UintN(20)))
		v4Sum(p)
		return p
	}},
	{"v4 bad header checksum", func(g *malformed) []byte {
		p := g.v4()
		p[10] ^= byte(1 + g.rng.UintN(255))
		return p
	}},
	{"v4 garbage options", func(g *malformed) []byte {
		src := g.src(false)
		icmp := g.echo(src, g.wisp[0], 16)
		opts := g.bytes(4 * int(1+g.rng.UintN(10)))
		switch g.rng.UintN(3) {
		case 0:
			opts[0], opts[1] = 7, 0 // record route, length 0
		case 1:
			opts[0], opts[1] = 68, byte(len(opts)+4+int(g.rng.UintN(40))) // timestamp past the header
		}
		r := wire.IPv4Repr{ID: 1, TTL: injectTTL, Protocol: wire.ProtoICMP, Src: src, Dst: g.wisp[0], Options: opts, PayloadLen: len(icmp)}
		p := make([]byte, r.HeaderLen()+len(icmp))
		r.Emit(p)
		copy(p[r.HeaderLen():], icmp)
		return p
	}},
	{"v4 fragment past 64 KiB", func(g *malformed) []byte {
		p := g.v4()
		binary.BigEndian.PutUint16(p[6:8], uint16(g.rng.UintN(2))<<13|8191) // the last 8 bytes of 64 KiB, and more
		v4Sum(p)
		return p
	}},
	{"v4 fragment of odd length with MF", func(g *malformed) []byte {
		src := g.src(false)
		p := ipPacket(src, g.wisp[0], wire.ProtoUDP, uint16(g.rng.UintN(65536)), g.bytes(8*int(1+g.rng.UintN(8))+1+int(g.rng.UintN(7))))
		binary.BigEndian.PutUint16(p[6:8], 1<<13)
		v4Sum(p)
		return p
	}},
	{"v4 martian source (land, multicast, broadcast, loopback)", func(g *malformed) []byte {
		src := []netip.Addr{g.wisp[0], netip.MustParseAddr("224.0.0.1"), netip.MustParseAddr("255.255.255.255"),
			netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("0.0.0.0"), netip.AddrFrom4([4]byte{198, 18, g.wisp[0].As4()[2], 255})}[g.rng.UintN(6)]
		return ipPacket(src, g.wisp[0], wire.ProtoTCP, 1, g.syn(src, g.wisp[0], g.listen))
	}},
	{"v4 SYN to a broadcast address", func(g *malformed) []byte {
		src := g.src(false)
		dst := []netip.Addr{netip.MustParseAddr("255.255.255.255"), netip.AddrFrom4([4]byte{198, 18, g.wisp[0].As4()[2], 255})}[g.rng.UintN(2)]
		return ipPacket(src, dst, wire.ProtoTCP, 1, g.syn(src, dst, g.listen))
	}},
	{"v4 unknown protocol", func(g *malformed) []byte {
		return ipPacket(g.src(false), g.wisp[0], uint8(143+g.rng.UintN(110)), 1, g.bytes(int(g.rng.UintN(64))))
	}},

	// TCP, over both families.
	{"TCP data offset below 5", func(g *malformed) []byte {
		src, dst := g.addrs()
		b := g.syn(src, dst, g.port())
		b[12] = byte(g.rng.UintN(5)) << 4
		wire.TCP(b).SetChecksum(src, dst)
		return ipPacket(src, dst, wire.ProtoTCP, 1, b)
	}},
	{"TCP data offset past the segment", func(g *malformed) []byte {
		src, dst := g.addrs()
		b := g.syn(src, dst, g.port())[:20]
		b[12] = byte(6+g.rng.UintN(10)) << 4
		wire.TCP(b).SetChecksum(src, dst)
		return ipPacket(src, dst, wire.ProtoTCP, 1, b)
	}},
	{"TCP bad checksum", func(g *malformed) []byte {
		src, dst := g.addrs()
		b := g.syn(src, dst, g.port())
		b[16] ^= byte(1 + g.rng.UintN(255))
		return ipPacket(src, dst, wire.ProtoTCP, 1, b)
	}},
	{"TCP header truncated", func(g *malformed) []byte {
		src, dst := g.addrs()
		return ipPacket(src, dst, wire.ProtoTCP, 1, g.syn(src, dst, g.port())[:g.rng.UintN(20)])
	}},
	{"TCP option garbage", func(g *malformed) []byte {
		src, dst := g.addrs()
		bad := [][]byte{
			{2, 0}, {2, 1}, {2, 3, 5}, {2, 5, 5, 180, 0}, {3, 2}, {3, 4, 7, 0}, {4, 3, 0}, {4, 0},
			{5, 3, 0}, {5, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {8, 9, 0, 0, 0, 0, 0, 0, 0}, {8, 0},
			{200, 0}, {200, 1}, {200, 40}, {1, 1, 1, 2}, {1, 3, 3}, {254, 255, 0},
		}[g.rng.UintN(18)]
		opts := append(slices.Clone(bad), make([]byte, (4-len(bad)%4)%4)...)
		if g.rng.UintN(2) == 0 { // behind valid options
			opts = append([]byte{2, 4, 5, 180, 1, 1, 4, 2}, opts...)
		}
		hdr := g.syn(src, dst, g.port())[:20]
		b := append(hdr, opts...)
		b[12] = byte(len(b)/4) << 4
		wire.TCP(b).SetChecksum(src, dst)
		return ipPacket(src, dst, wire.ProtoTCP, 1, b)
	}},
	{"TCP impossible flags", func(g *malformed) []byte {
		src, dst := g.addrs()
		b := g.syn(src, dst, g.port())
		b[13] = []byte{0x03, 0x05, 0x07, 0x3f, 0xff, 0x00, 0x29, 0x01}[g.rng.UintN(8)] // SYN|FIN, SYN|RST, ..., xmas, null, FIN|PSH|URG, FIN
		wire.TCP(b).SetChecksum(src, dst)
		return ipPacket(src, dst, wire.ProtoTCP, 1, b)
	}},

	// UDP.
	{"UDP bad length or checksum", func(g *malformed) []byte {
		src, dst := g.addrs()
		b := make([]byte, 8+g.rng.UintN(64))
		u := wire.UDP(b)
		u.SetSrcPort(uint16(1024 + g.rng.UintN(60000)))
		u.SetDstPort(uint16(g.rng.UintN(65536)))
		binary.BigEndian.PutUint16(b[4:6], uint16(len(b)))
		u.SetChecksum(src, dst)
		switch g.rng.UintN(4) {
		case 0:
			binary.BigEndian.PutUint16(b[4:6], uint16(len(b)+1+int(g.rng.UintN(100))))
		case 1:
			binary.BigEndian.PutUint16(b[4:6], uint16(g.rng.UintN(8)))
		case 2:
			b[6] ^= 0x55
		case 3:
			if src.Is6() {
				b[6], b[7] = 0, 0 // "none" is not allowed over IPv6
			} else {
				b = b[:1+g.rng.UintN(7)]
			}
		}
		return ipPacket(src, dst, wire.ProtoUDP, 1, b)
	}},

	// ICMPv4.
	{"ICMP truncated, bad checksum or unknown type", func(g *malformed) []byte { return g.badEcho(false) }},
	{"ICMP error quoting garbage", func(g *malformed) []byte {
		src := g.src(false)
		quoted := g.v4()
		switch g.rng.UintN(3) {
		case 0:
			quoted = quoted[:g.rng.UintN(28)]
		case 1:
			quoted[0] = 4<<4 | 15
		}
		b := make([]byte, 8+len(quoted))
		copy(b[8:], quoted)
		r := wire.ICMPv4Repr{Type: []uint8{wire.ICMPv4DestUnreach, wire.ICMPv4TimeExceeded, wire.ICMPv4ParamProblem, wire.ICMPv4Redirect}[g.rng.UintN(4)],
			Code: uint8(g.rng.UintN(16)), NextHopMTU: uint16(g.rng.UintN(600)), Gateway: g.src(false), PayloadLen: len(quoted)}
		r.Emit(b)
		return ipPacket(src, g.wisp[0], wire.ProtoICMP, 1, b)
	}},

	// IPv6 headers and extension headers.
	{"v6 truncated header", func(g *malformed) []byte {
		src := g.src(true)
		return ipPacket(src, g.wisp[1], wire.ProtoICMPv6, 0, g.echo(src, g.wisp[1], 8))[:1+g.rng.UintN(39)]
	}},
	{"v6 payload length past the packet", func(g *malformed) []byte {
		src := g.src(true)
		p := ipPacket(src, g.wisp[1], wire.ProtoICMPv6, 0, g.echo(src, g.wisp[1], 8))
		binary.BigEndian.PutUint16(p[4:6], uint16(len(p)-40+1+int(g.rng.UintN(2000))))
		return p
	}},
	{"v6 long extension header chain", func(g *malformed) []byte {
		src := g.src(true)
		exts := make([][]byte, 20+g.rng.UintN(150))
		for i := range exts {
			exts[i] = ext(wire.ProtoIPv6DstOpts, nil)
		}
		return v6ext(src, g.wisp[1], wire.ProtoICMPv6, exts, g.echo(src, g.wisp[1], 8))
	}},
	{"v6 Hop-by-Hop not first", func(g *malformed) []byte {
		src := g.src(true)
		return v6ext(src, g.wisp[1], wire.ProtoICMPv6,
			[][]byte{ext(wire.ProtoIPv6DstOpts, nil), ext(wire.ProtoHopByHop, nil)}, g.echo(src, g.wisp[1], 8))
	}},
	{"v6 extension header length past the packet", func(g *malformed) []byte {
		src := g.src(true)
		h := ext([]uint8{wire.ProtoHopByHop, wire.ProtoIPv6DstOpts, wire.ProtoIPv6Route}[g.rng.UintN(3)], nil)
		h[1] = byte(1 + g.rng.UintN(255))
		return v6ext(src, g.wisp[1], wire.ProtoICMPv6, [][]byte{h}, g.echo(src, g.wisp[1], 8))
	}},
	{"v6 unknown option (each action)", func(g *malformed) []byte {
		src := g.src(true)
		typ := byte(g.rng.UintN(4))<<6 | byte(0x10+g.rng.UintN(0x20)) // none of Pad1, PadN, router alert, jumbo
		opt := append([]byte{typ, byte(g.rng.UintN(6))}, g.bytes(6)...)
		opt = opt[:2+opt[1]]
		dst := g.wisp[1]
		if g.rng.UintN(4) == 0 {
			dst = netip.MustParseAddr("ff02::1")
		}
		return v6ext(src, dst, wire.ProtoICMPv6, [][]byte{ext([]uint8{wire.ProtoHopByHop, wire.ProtoIPv6DstOpts}[g.rng.UintN(2)], opt)},
			g.echo(src, dst, 8))
	}},
	{"v6 PadN past its header", func(g *malformed) []byte {
		src := g.src(true)
		h := []byte{wire.ProtoIPv6DstOpts, 0, wire.IPv6OptPadN, byte(5 + g.rng.UintN(250)), 0, 0, 0, 0}
		return v6ext(src, g.wisp[1], wire.ProtoICMPv6, [][]byte{h}, g.echo(src, g.wisp[1], 8))
	}},
	{"v6 routing header with segments left", func(g *malformed) []byte {
		src := g.src(true)
		body := append([]byte{byte(g.rng.UintN(5)), byte(1 + g.rng.UintN(5)), 0, 0, 0, 0}, make([]byte, 16)...)
		return v6ext(src, g.wisp[1], wire.ProtoICMPv6, [][]byte{ext(wire.ProtoIPv6Route, body)}, g.echo(src, g.wisp[1], 8))
	}},
	{"v6 unknown next header", func(g *malformed) []byte {
		src := g.src(true)
		exts := [][]byte{}
		if g.rng.UintN(2) == 0 {
			exts = append(exts, ext(wire.ProtoIPv6DstOpts, nil))
		}
		return v6ext(src, g.wisp[1], uint8(143+g.rng.UintN(110)), exts, g.bytes(16))
	}},
	{"v6 bad fragment", func(g *malformed) []byte {
		src := g.src(true)
		data := g.bytes(8 * int(1+g.rng.UintN(8)))
		fh := make([]byte, 8)
		next := uint8(wire.ProtoUDP)
		id := g.rng.Uint32()
		switch g.rng.UintN(3) {
		case 0: // M set, length not a multiple of 8
			data = data[:len(data)-1-int(g.rng.UintN(7))]
			wire.EmitIPv6Fragment(fh, next, 0, true, id)
		case 1: // past 64 KiB
			wire.EmitIPv6Fragment(fh, next, 65528, false, id)
		case 2: // an atomic fragment holding another Fragment header
			next = wire.ProtoIPv6Frag
			inner := make([]byte, 8)
			wire.EmitIPv6Fragment(inner, wire.ProtoUDP, 0, false, id+1)
			data = append(inner, data...)
			wire.EmitIPv6Fragment(fh, next, 0, false, id)
		}
		fh[0] = wire.ProtoIPv6Frag // its own type, for v6ext; v6ext writes next there
		return v6ext(src, g.wisp[1], next, [][]byte{fh}, data)
	}},
	{"v6 martian source (land, multicast, loopback)", func(g *malformed) []byte {
		src := []netip.Addr{g.wisp[1], netip.MustParseAddr("ff02::1"), netip.MustParseAddr("::1"), netip.IPv6Unspecified()}[g.rng.UintN(4)]
		return ipPacket(src, g.wisp[1], wire.ProtoTCP, 0, g.syn(src, g.wisp[1], g.listen))
	}},

	// ICMPv6 and NDP.
	{"ICMPv6 truncated, bad checksum or unknown type", func(g *malformed) []byte { return g.badEcho(true) }},
	{"ICMPv6 error quoting garbage", func(g *malformed) []byte {
		src := g.src(true)
		quoted := g.bytes(int(g.rng.UintN(80)))
		if len(quoted) > 0 {
			quoted[0] = 6 << 4
		}
		b := make([]byte, 8+len(quoted))
		copy(b[8:], quoted)
		r := wire.ICMPv6Repr{Type: uint8(1 + g.rng.UintN(4)), Code: uint8(g.rng.UintN(8)), MTU: uint32(g.rng.UintN(1400)),
			Pointer: g.rng.Uint32(), PayloadLen: len(quoted)}
		r.Emit(b, src, g.wisp[1])
		return ipPacket(src, g.wisp[1], wire.ProtoICMPv6, 0, b)
	}},
	{"NDP with a bad hop limit, bad options or a bad source", func(g *malformed) []byte {
		src := netip.MustParseAddr("fe80::1")
		dst := g.wisp[1]
		typ := uint8(wire.ICMPv6RouterSolicit + g.rng.UintN(5))
		body := make([]byte, 4) // reserved / flags
		switch typ {
		case wire.ICMPv6NeighborSolicit, wire.ICMPv6NeighborAdvert:
			t := g.wisp[1].As16()
			if g.rng.UintN(3) == 0 {
				t = netip.MustParseAddr("ff02::1").As16()
			}
			body = append(body, t[:]...)
		case wire.ICMPv6RouterAdvert:
			body = append(body, 0, 0, 0, 0, 0, 0, 0, 0) // reachable, retrans
		case wire.ICMPv6Redirect:
			t, d := g.kern[1].As16(), g.src(true).As16()
			body = append(append(body, t[:]...), d[:]...)
		}
		hop := uint8(255)
		switch g.rng.UintN(4) {
		case 0:
			hop = uint8(g.rng.UintN(255)) // RFC 4861: anything but 255 is discarded
			body = append(body, 1, 1, 2, 0, 0, 0, 0, 1)
		case 1:
			body = append(body, byte(1+g.rng.UintN(5)), 0) // an option of length 0
		case 2:
			body = append(body, 1, byte(2+g.rng.UintN(200)), 2, 0, 0, 0, 0, 1) // past the end
		case 3:
			src = g.src(true) // a router advertisement or redirect must come from a link-local source
			if typ == wire.ICMPv6NeighborSolicit {
				src = netip.IPv6Unspecified() // DAD probe with a source link-layer option
			}
			body = append(body, 1, 1, 2, 0, 0, 0, 0, 1)
		}
		if typ == wire.ICMPv6RouterSolicit || g.rng.UintN(4) == 0 {
			dst = netip.MustParseAddr("ff02::1")
		}
		b := make([]byte, 4+len(body))
		b[0] = typ
		copy(b[4:], body)
		wire.ICMPv6(b).SetChecksum(src, dst)
		p := ipPacket(src, dst, wire.ProtoICMPv6, 0, b)
		p[7] = hop
		return p
	}},
}

// A seeded barrage of malformed IPv4/IPv6 headers, extension-header chains, TCP option
// garbage, UDP lengths and ICMP/ICMPv6/NDP messages aimed at wisp's addresses. wisp must
// survive it (answer pings, move TCP data byte-exact), count its drops, and hold nothing
// once the half-open connections the valid-looking SYNs made have expired.
func TestAttackMalformed(t *testing.T) {
	requireTool(t, "ping")
	o := attackOptions()
	o.IPReassMaxAge = 2 * time.Second // fragments that look valid wait this long
	e := newAttackEnv(t, 62, o)
	_, deadline := withDeadline(t, 90*time.Second)
	echoServers(t, e.s, netip.AddrPortFrom(e.wisp[0], 7), netip.AddrPortFrom(e.wisp[1], 7))
	n := malformedPackets
	if testing.Short() {
		n = malformedPacketsShort
	}
	g := newMalformed(e, malformedSeed)
	j := newInjector(t, e)
	before := e.s.Stats()
	perKind := make([]int, len(malformedGens))
	start := time.Now()
	stopAt := start.Add(malformedMaxTime)
	batch := make([][]byte, 0, 256)
	for sent := 0; sent < n; {
		batch = batch[:0]
		for range min(cap(batch), n-sent) {
			k := g.rng.IntN(len(malformedGens))
			p := malformedGens[k].fn(g)
			if len(p) == 0 || len(p) > 1500 {
				t.Fatalf("generator %q made a packet of %d bytes", malformedGens[k].name, len(p))
			}
			perKind[k]++
			batch = append(batch, p)
		}
		if err := j.send(batch, stopAt); err != nil {
			t.Fatalf("after %d packets: %v", sent, err)
		}
		sent += len(batch)
	}
	pollUntil(5*time.Second, func() bool { return e.framesRead()-j.base >= j.sent })
	took := time.Since(start)
	var kinds strings.Builder
	for k, c := range perKind {
		kinds.WriteString("\n  ")
		kinds.WriteString(malformedGens[k].name)
		kinds.WriteString(": ")
		kinds.WriteString(strconv.Itoa(c))
	}
	t.Logf("%d malformed packets (seed %d) in %v; wisp read %d frames:%s", j.sent, malformedSeed,
		took.Round(time.Millisecond), e.framesRead()-j.base, kinds.String())

	// wisp still works: pings (small and fragmented) and TCP both ways.
	kernelPings(t, e.ns, e.wisp[0].String(), e.wisp[1].String())
	for _, f := range families {
		const size = 4 << 20
		c := e.ns.dial(t, f.net, netip.AddrPortFrom(e.wisp[f.idx], 7))
		res := kernelPeer(c, size, 62, deadline)
		checkPeer(t, f.name+" echo after the barrage", res, size, patternSum(size, 62))
	}

	after := e.s.Stats()
	d := func(get func(*stats.Snapshot) uint64) uint64 { return get(&after) - get(&before) }
	drops := []struct {
		name string
		get  func(*stats.Snapshot) uint64
	}{
		{"IP.Drop", func(s *stats.Snapshot) uint64 { return s.IP.Drop }},
		{"IP.Chkerr", func(s *stats.Snapshot) uint64 { return s.IP.Chkerr }},
		{"IP.Lenerr", func(s *stats.Snapshot) uint64 { return s.IP.Lenerr }},
		{"IPv6.Drop", func(s *stats.Snapshot) uint64 { return s.IP6.Drop }},
		{"IPv6.Lenerr", func(s *stats.Snapshot) uint64 { return s.IP6.Lenerr }},
		{"IPv6.Opterr", func(s *stats.Snapshot) uint64 { return s.IP6.Opterr }},
		{"ICMP.Drop", func(s *stats.Snapshot) uint64 { return s.ICMP.Drop }},
		{"ICMPv6.Drop", func(s *stats.Snapshot) uint64 { return s.ICMP6.Drop }},
		{"UDP.Drop", func(s *stats.Snapshot) uint64 { return s.UDP.Drop }},
		{"TCP.Drop", func(s *stats.Snapshot) uint64 { return s.TCP.Drop }},
		{"TCPExt.DropBadChecksum", func(s *stats.Snapshot) uint64 { return s.TCPExt.DropBadChecksum }},
		{"TCPExt.DropBadHeader", func(s *stats.Snapshot) uint64 { return s.TCPExt.DropBadHeader }},
		{"TCPExt.DropBadOption", func(s *stats.Snapshot) uint64 { return s.TCPExt.DropBadOption }},
	}
	var moved strings.Builder
	for _, c := range drops {
		moved.WriteString(" " + c.name + " " + strconv.FormatUint(d(c.get), 10))
	}
	t.Logf("drops:%s; ICMP errors sent %d / ICMPv6 %d", moved.String(),
		after.ICMP.Xmit-before.ICMP.Xmit, after.ICMP6.Xmit-before.ICMP6.Xmit)
	for _, c := range drops {
		if d(c.get) == 0 {
			t.Errorf("%s did not move during the barrage", c.name)
		}
	}

	// The SYNs with valid-looking headers made half-open connections and the fragments
	// that looked valid wait for the rest; both expire, and then only the two listeners
	// remain.
	idle := func() []string {
		var busy []string
		snap := e.s.Stats()
		for _, p := range snap.PoolsInUse() {
			if p.Name != "TCP_PCB_LISTEN" || p.Used != 2 {
				busy = append(busy, p.Name+"="+strconv.Itoa(p.Used))
			}
		}
		return busy
	}
	if _, ok := pollUntil(max(o.TCPSynRcvdTimeout, o.IPReassMaxAge)+2*time.Second, func() bool { return len(idle()) == 0 }); !ok {
		t.Errorf("pools still in use after the barrage: %v", idle())
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("wisp stats:\n%s", statsTable(e.s))
	}
}
