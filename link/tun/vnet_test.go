package tun

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

var (
	src4, dst4 = netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	src6, dst6 = netip.MustParseAddr("fd42:5eed::1"), netip.MustParseAddr("fd42:5eed::2")
)

// tcpPacket builds an IP/TCP packet with gopacket: payload bytes after a TCP header with
// timestamps, the flags given, and the TCP checksum left partial (the folded
// pseudo-header sum, as a kernel with checksum offload leaves it).
func tcpPacket(t testing.TB, v6 bool, payload int, cwr bool) []byte {
	t.Helper()
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 5001, Seq: 1000, Ack: 2000, ACK: true, PSH: true, CWR: cwr,
		Window: 512, Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)}}}
	var ip gopacket.SerializableLayer
	src, dst := src4, dst4
	if v6 {
		src, dst = src6, dst6
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: net.IP(src.AsSlice()), DstIP: net.IP(dst.AsSlice())}
		tcp.SetNetworkLayerForChecksum(ip6)
		ip = ip6
	} else {
		ip4 := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment,
			SrcIP: net.IP(src.AsSlice()), DstIP: net.IP(dst.AsSlice())}
		tcp.SetNetworkLayerForChecksum(ip4)
		ip = ip4
	}
	buf := gopacket.NewSerializeBuffer()
	data := make([]byte, payload)
	for i := range data {
		data[i] = byte(i)
	}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, tcp, gopacket.Payload(data)); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	off := 20
	if v6 {
		off = 40
	}
	l4 := len(b) - off
	binary.BigEndian.PutUint16(b[off+16:], wire.Fold(wire.PseudoHeaderChecksum(wire.ProtoTCP, src, dst, uint32(l4))))
	return b
}

func hdr(flags, typ uint8, hdrLen, gsoSize, start, off uint16) []byte {
	b := make([]byte, wire.VirtioNetHdrLen)
	r := wire.VirtioNetHdrRepr{Flags: flags, GSOType: typ &^ wire.VirtioNetGSOECN, ECN: typ&wire.VirtioNetGSOECN != 0,
		HdrLen: hdrLen, GSOSize: gsoSize, CsumStart: start, CsumOffset: off}
	if err := r.Emit(b); err != nil {
		panic(err)
	}
	return b
}

func peek(b []byte) []byte { return b[:min(len(b), peekLen)] }

// metaCase is a virtio-net header h before a packet, and what reading it should give:
// accepted or dropped, and the packet's marks.
type metaCase struct {
	name  string
	h     []byte
	pkt   []byte
	ok    bool
	flags pbuf.Flags
	gso   pbuf.GSOType
}

func TestRxMeta(t *testing.T) {
	p4 := tcpPacket(t, false, 8000, false)
	p6 := tcpPacket(t, true, 8000, false)
	const nc, dv = wire.VirtioNetNeedsCsum, wire.VirtioNetDataValid
	for _, c := range []metaCase{
		{"plain", hdr(0, 0, 0, 0, 0, 0), p4, true, 0, pbuf.GSONone},
		{"tso4", hdr(nc, 1, 52, 1448, 20, 16), p4, true, pbuf.FlagChecksumOK | pbuf.FlagChecksumPartial, pbuf.GSOTCPv4},
		{"tso6", hdr(nc, 4, 72, 1428, 40, 16), p6, true, pbuf.FlagChecksumOK | pbuf.FlagChecksumPartial, pbuf.GSOTCPv6},
		{"tso4 data valid", hdr(dv, 1, 52, 1448, 0, 0), p4, true, pbuf.FlagChecksumOK, pbuf.GSOTCPv4},
		{"tso4 ecn", hdr(nc, 0x81, 52, 1448, 20, 16), p4, true, pbuf.FlagChecksumOK | pbuf.FlagChecksumPartial, pbuf.GSOTCPv4},
		{"partial", hdr(nc, 0, 0, 0, 20, 16), p4, true, pbuf.FlagChecksumOK | pbuf.FlagChecksumPartial, pbuf.GSONone},
		{"partial elsewhere", hdr(nc, 0, 0, 0, 24, 2), p4, true, 0, pbuf.GSONone},
		{"data valid", hdr(dv, 0, 0, 0, 0, 0), p6, true, pbuf.FlagChecksumOK, pbuf.GSONone},
		{"tso4 on ipv6", hdr(nc, 1, 72, 1428, 40, 16), p6, false, 0, 0},
		{"tso6 on ipv4", hdr(nc, 4, 52, 1448, 20, 16), p4, false, 0, 0},
		{"uso not asked for", hdr(nc, 5, 28, 1000, 20, 16), p4, false, 0, 0},
		{"tso csum start wrong", hdr(nc, 1, 52, 1448, 24, 16), p4, false, 0, 0},
		{"tso csum offset wrong", hdr(nc, 1, 52, 1448, 20, 6), p4, false, 0, 0},
		{"tso of a truncated packet", hdr(nc, 1, 52, 1448, 20, 16), p4[:4000], false, 0, 0},
		{"ufo", hdr(nc, 3, 52, 1448, 20, 6)[:10], p4, false, 0, 0},
		{"checksum outside", hdr(nc, 0, 0, 0, 8000, 16), p4[:8010], false, 0, 0},
		{"not ip", hdr(nc, 1, 52, 1448, 20, 16), make([]byte, 100), false, 0, 0},
	} {
		if c.name == "ufo" {
			c.h[1] = wire.VirtioNetGSOUDP
		}
		flags, gso, size, ok := rxMeta(c.h, peek(c.pkt), len(c.pkt), 0, false)
		if ok != c.ok || ok && (flags != c.flags || gso != c.gso) {
			t.Errorf("%s: flags %v gso %v/%d ok %v; want flags %v gso %v ok %v", c.name, flags, gso, size, ok, c.flags, c.gso, c.ok)
		}
		if ok && gso != pbuf.GSONone && size != int(binary.LittleEndian.Uint16(c.h[4:])) {
			t.Errorf("%s: size %d", c.name, size)
		}
	}
}

func TestTxHdr(t *testing.T) {
	var r wire.VirtioNetHdrRepr
	p4 := tcpPacket(t, false, 8000, true)
	if err := txHdr(&r, peek(p4), len(p4), 0, pbuf.GSOTCPv4, 1448, true); err != nil {
		t.Fatal(err)
	}
	if want := (wire.VirtioNetHdrRepr{Flags: wire.VirtioNetNeedsCsum, GSOType: wire.VirtioNetGSOTCPv4, ECN: true,
		HdrLen: 52, GSOSize: 1448, CsumStart: 20, CsumOffset: 16}); r != want {
		t.Fatalf("%+v, want %+v", r, want)
	}
	p6 := tcpPacket(t, true, 100, false)
	if err := txHdr(&r, peek(p6), len(p6), 0, pbuf.GSOTCPv6, 1428, true); err != nil ||
		r != (wire.VirtioNetHdrRepr{Flags: 1, GSOType: 4, HdrLen: 72, GSOSize: 1428, CsumStart: 40, CsumOffset: 16}) {
		t.Fatalf("%+v %v", r, err)
	}
	if err := txHdr(&r, peek(p6), len(p6), 0, pbuf.GSONone, 0, true); err != nil ||
		r != (wire.VirtioNetHdrRepr{Flags: 1, HdrLen: 58, CsumStart: 40, CsumOffset: 16}) {
		t.Fatalf("%+v %v", r, err)
	}
	if err := txHdr(&r, peek(p6), len(p6), 0, pbuf.GSONone, 0, false); err != nil || r != (wire.VirtioNetHdrRepr{}) {
		t.Fatalf("%+v %v", r, err)
	}
	// What the header read back says is what was written.
	h := make([]byte, wire.VirtioNetHdrLen)
	txHdr(&r, peek(p4), len(p4), 0, pbuf.GSOTCPv4, 1448, true)
	r.Emit(h)
	if flags, gso, size, ok := rxMeta(h, peek(p4), len(p4), 0, false); !ok || gso != pbuf.GSOTCPv4 || size != 1448 ||
		flags != pbuf.FlagChecksumOK|pbuf.FlagChecksumPartial {
		t.Fatal(flags, gso, size, ok)
	}
	for name, f := range map[string]func() error{
		"uso":          func() error { return txHdr(&r, peek(p4), len(p4), 0, pbuf.GSOUDPL4, 1000, true) },
		"wrong family": func() error { return txHdr(&r, peek(p4), len(p4), 0, pbuf.GSOTCPv6, 1000, true) },
		"no size":      func() error { return txHdr(&r, peek(p4), len(p4), 0, pbuf.GSOTCPv4, 0, true) },
		"length":       func() error { return txHdr(&r, peek(p4), len(p4)-1, 0, pbuf.GSOTCPv4, 1448, true) },
		"not ip":       func() error { return txHdr(&r, make([]byte, 80), 100, 0, pbuf.GSONone, 0, true) },
	} {
		if f() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzRxMeta: whatever header and packet the kernel hands over, rxMeta does not panic, and
// what it accepts with a GSO mark is a TCP packet of that family whose partial checksum
// field is inside it.
func FuzzRxMeta(f *testing.F) {
	p4 := tcpPacket(f, false, 3000, false)
	p6 := tcpPacket(f, true, 3000, false)
	f.Add(hdr(1, 1, 52, 1448, 20, 16), p4[:peekLen], len(p4))
	f.Add(hdr(1, 4, 72, 1428, 40, 16), p6[:peekLen], len(p6))
	f.Add(hdr(2, 0, 0, 0, 0, 0), p6[:peekLen], len(p6))
	f.Add(hdr(1, 0, 0, 0, 20, 16), p4[:peekLen], len(p4))
	f.Add(hdr(1, 1, 66, 1448, 34, 16), ethFrame(p4)[:peekLen], len(p4)+14)
	f.Fuzz(func(t *testing.T, h, b []byte, n int) {
		if len(b) > peekLen {
			b = b[:peekLen]
		}
		if n < len(b) { // the packet holds at least the bytes looked at
			n = len(b)
		}
		lh := 0
		if len(b) > 0 && b[0] == 0x02 { // a TAP frame: the MAC address ethFrame writes
			lh = wire.EthernetHeaderLen
		}
		flags, gso, size, ok := rxMeta(h, b, n, lh, true)
		if !ok {
			return
		}
		if gso != pbuf.GSONone {
			ver, off, proto, tok := frameTransport(b, n, lh)
			if !tok || proto != wire.ProtoTCP || size <= 0 || (gso == pbuf.GSOTCPv4) != (ver == 4) || off+wire.TCPMinHeaderLen > n {
				t.Fatalf("accepted gso %v/%d on %x (%d bytes)", gso, size, b, n)
			}
			if flags&pbuf.FlagChecksumOK == 0 {
				t.Fatal("gso without FlagChecksumOK")
			}
		}
		if flags&pbuf.FlagChecksumPartial != 0 {
			r := wire.VirtioNetHdr(h)
			if int(r.CsumStart())+int(r.CsumOffset())+2 > n {
				t.Fatal("partial checksum outside the packet")
			}
		}
	})
}

// ethFrame puts pkt (IPv4 or IPv6) behind an Ethernet header, as a TAP carries it.
func ethFrame(pkt []byte) []byte {
	b := make([]byte, wire.EthernetHeaderLen+len(pkt))
	copy(b, []byte{0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2})
	et := wire.EtherTypeIPv4
	if pkt[0]>>4 == 6 {
		et = wire.EtherTypeIPv6
	}
	binary.BigEndian.PutUint16(b[12:], uint16(et))
	copy(b[wire.EthernetHeaderLen:], pkt)
	return b
}

// On a TAP the virtio-net header's offsets count from the frame's start, the Ethernet
// header included, and the EtherType must say the IP version the packet has.
func TestVnetTAPFrames(t *testing.T) {
	const lh = wire.EthernetHeaderLen
	f4 := ethFrame(tcpPacket(t, false, 8000, true))
	f6 := ethFrame(tcpPacket(t, true, 8000, false))
	var r wire.VirtioNetHdrRepr
	if err := txHdr(&r, peek(f4), len(f4), lh, pbuf.GSOTCPv4, 1448, true); err != nil ||
		r != (wire.VirtioNetHdrRepr{Flags: 1, GSOType: 1, ECN: true, HdrLen: 66, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}) {
		t.Fatalf("%+v %v", r, err)
	}
	if err := txHdr(&r, peek(f6), len(f6), lh, pbuf.GSONone, 0, true); err != nil ||
		r != (wire.VirtioNetHdrRepr{Flags: 1, HdrLen: 72, CsumStart: 54, CsumOffset: 16}) {
		t.Fatalf("%+v %v", r, err)
	}
	const nc = wire.VirtioNetNeedsCsum
	for _, c := range []metaCase{
		{"tso4", hdr(nc, 1, 66, 1448, 34, 16), f4, true, pbuf.FlagChecksumOK | pbuf.FlagChecksumPartial, pbuf.GSOTCPv4},
		{"tso6", hdr(nc, 4, 86, 1428, 54, 16), f6, true, pbuf.FlagChecksumOK | pbuf.FlagChecksumPartial, pbuf.GSOTCPv6},
		{"partial", hdr(nc, 0, 0, 0, 54, 16), f6, true, pbuf.FlagChecksumOK | pbuf.FlagChecksumPartial, pbuf.GSONone},
		{"tso4 offsets of a TUN", hdr(nc, 1, 52, 1448, 20, 16), f4, false, 0, 0},
		{"partial offsets of a TUN", hdr(nc, 0, 0, 0, 40, 16), f6, true, 0, pbuf.GSONone},
		{"wrong ethertype", hdr(nc, 1, 66, 1448, 34, 16), append(append([]byte{}, f4[:12]...), append([]byte{0x86, 0xdd}, f4[14:]...)...), false, 0, 0},
		{"short", hdr(nc, 1, 66, 1448, 34, 16), f4[:10], false, 0, 0},
	} {
		flags, gso, _, ok := rxMeta(c.h, peek(c.pkt), len(c.pkt), lh, false)
		if ok != c.ok || ok && (flags != c.flags || gso != c.gso) {
			t.Errorf("%s: flags %v gso %v ok %v; want flags %v gso %v ok %v", c.name, flags, gso, ok, c.flags, c.gso, c.ok)
		}
	}
	// An ARP frame (no IP behind the header) gets no header fields.
	arp := make([]byte, 42)
	binary.BigEndian.PutUint16(arp[12:], uint16(wire.EtherTypeARP))
	if err := txHdr(&r, arp, len(arp), lh, pbuf.GSONone, 0, false); err != nil || r != (wire.VirtioNetHdrRepr{}) {
		t.Fatalf("%+v %v", r, err)
	}
	if err := txHdr(&r, arp, len(arp), lh, pbuf.GSONone, 0, true); err == nil {
		t.Fatal("partial checksum of an ARP frame accepted")
	}
}
