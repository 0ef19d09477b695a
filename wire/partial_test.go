package wire

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// partialPacket builds an IP packet (v4 or v6, optionally with an IPv6 destination options
// header) carrying a TCP or UDP segment of n payload bytes whose checksum field holds the
// folded pseudo-header sum, and returns it with the checksum a full computation gives.
func partialPacket(t testing.TB, v6, ext bool, proto uint8, n int) ([]byte, uint16) {
	t.Helper()
	src4, dst4 := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	src6, dst6 := netip.MustParseAddr("fd42:5eed::1"), netip.MustParseAddr("fd42:5eed::2")
	thl := 20
	if proto == ProtoUDP {
		thl = UDPHeaderLen
	}
	l4 := make([]byte, thl+n)
	for i := range l4 {
		l4[i] = byte(i*31 + 7)
	}
	co := ChecksumOffset(proto)
	if proto == ProtoTCP {
		l4[12] = 5 << 4
	} else {
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	}
	var b []byte
	src, dst := src4, dst4
	if v6 {
		src, dst = src6, dst6
		hdr := make([]byte, IPv6HeaderLen)
		nh, ehl := proto, 0
		if ext {
			nh, ehl = ProtoIPv6DstOpts, 8
		}
		r := IPv6Repr{NextHeader: nh, HopLimit: 64, Src: src, Dst: dst, PayloadLen: ehl + len(l4)}
		if err := r.Emit(hdr); err != nil {
			t.Fatal(err)
		}
		b = hdr
		if ext {
			b = append(b, proto, 0, 1, 4, 0, 0, 0, 0) // a PadN option fills it
		}
	} else {
		hdr := make([]byte, IPv4MinHeaderLen)
		r := IPv4Repr{TTL: 64, Protocol: proto, Src: src, Dst: dst, PayloadLen: len(l4)}
		if err := r.Emit(hdr); err != nil {
			t.Fatal(err)
		}
		b = hdr
	}
	l4[co], l4[co+1] = 0, 0
	want := Finish(Checksum(l4, PseudoHeaderChecksum(proto, src, dst, uint32(len(l4)))))
	if want == 0 && proto == ProtoUDP {
		want = 0xffff
	}
	binary.BigEndian.PutUint16(l4[co:], Fold(PseudoHeaderChecksum(proto, src, dst, uint32(len(l4)))))
	return append(b, l4...), want
}

// CompleteChecksum gives the checksum a full computation gives, for TCP and UDP over IPv4,
// IPv6 and IPv6 with an extension header, and refuses what it must not touch.
func TestCompleteChecksum(t *testing.T) {
	for _, c := range []struct {
		v6, ext bool
		proto   uint8
	}{{false, false, ProtoTCP}, {false, false, ProtoUDP}, {true, false, ProtoTCP}, {true, false, ProtoUDP}, {true, true, ProtoTCP}} {
		b, want := partialPacket(t, c.v6, c.ext, c.proto, 1001)
		off, proto, end, ok := IPTransport(b)
		if !ok || proto != c.proto || end != len(b) {
			t.Fatalf("%+v: IPTransport = %d, %d, %d, %v", c, off, proto, end, ok)
		}
		if !CompleteChecksum(b) {
			t.Fatalf("%+v: not completed", c)
		}
		if got := binary.BigEndian.Uint16(b[off+ChecksumOffset(proto):]); got != want {
			t.Errorf("%+v: checksum %#04x, want %#04x", c, got, want)
		}
	}
	b, _ := partialPacket(t, false, false, ProtoTCP, 100)
	frag := append([]byte(nil), b...)
	frag[6] |= 0x20 // MF
	short := b[:len(b)-1]
	icmp := append([]byte(nil), b...)
	icmp[9] = ProtoICMP
	for name, p := range map[string][]byte{"fragment": frag, "truncated": short, "icmp": icmp, "empty": nil} {
		before := append([]byte(nil), p...)
		if CompleteChecksum(p) || string(p) != string(before) {
			t.Errorf("%s: completed, or changed", name)
		}
	}
}

func FuzzCompleteChecksum(f *testing.F) {
	for _, v6 := range []bool{false, true} {
		b, _ := partialPacket(f, v6, v6, ProtoTCP, 40)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		off, proto, end, ok := IPTransport(b)
		if ok && (off > len(b) || off < IPv4MinHeaderLen) {
			t.Fatalf("IPTransport = %d, %d, %d for %d bytes", off, proto, end, len(b))
		}
		CompleteChecksum(b) // must not panic
	})
}
