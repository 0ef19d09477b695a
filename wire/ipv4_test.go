package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// The well-known example header (UDP, 192.168.0.1 -> 192.168.0.199, DF,
// total length 0x73) whose checksum is 0xb861.
var ipv4Fixture = []byte{
	0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61,
	0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
}

func ipv4FixturePacket() []byte {
	b := make([]byte, 0x73+4) // 4 bytes of link padding past TotalLength
	copy(b, ipv4Fixture)
	return b
}

func TestIPv4Fixture(t *testing.T) {
	b := ipv4FixturePacket()
	if err := CheckIPv4(b); err != nil {
		t.Fatal(err)
	}
	ip := IPv4(b)
	if ip.Version() != 4 || ip.IHL() != 5 || ip.HeaderLen() != 20 || ip.TOS() != 0 ||
		ip.TotalLength() != 0x73 || ip.ID() != 0 || !ip.DontFragment() || ip.MoreFragments() ||
		ip.FragmentOffset() != 0 || ip.IsFragment() || ip.TTL() != 64 || ip.Protocol() != ProtoUDP ||
		ip.HeaderChecksum() != 0xb861 {
		t.Fatalf("fields wrong: % x", b[:20])
	}
	if ip.Src() != netip.MustParseAddr("192.168.0.1") || ip.Dst() != netip.MustParseAddr("192.168.0.199") {
		t.Fatalf("addrs %v %v", ip.Src(), ip.Dst())
	}
	if len(ip.Payload()) != 0x73-20 || len(ip.Options()) != 0 {
		t.Fatalf("payload %d options %d", len(ip.Payload()), len(ip.Options()))
	}
	if ip.ComputeChecksum() != 0xb861 {
		t.Fatalf("ComputeChecksum %#04x", ip.ComputeChecksum())
	}

	var r IPv4Repr
	if err := r.Parse(b); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 20)
	if err := r.Emit(out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, ipv4Fixture) {
		t.Fatalf("emit\n% x\nwant\n% x", out, ipv4Fixture)
	}
}

func TestIPv4Setters(t *testing.T) {
	b := ipv4FixturePacket()
	ip := IPv4(b)
	ip.SetTTL(63)
	ip.SetSrc(netip.MustParseAddr("203.0.113.9"))
	ip.SetDst(netip.MustParseAddr("198.51.100.255"))
	ip.SetTotalLength(0x60)
	if !ip.ValidChecksum() {
		t.Fatalf("incremental checksum %#04x invalid, want %#04x", ip.HeaderChecksum(), ip.ComputeChecksum())
	}
	if ip.TTL() != 63 || ip.Src() != netip.MustParseAddr("203.0.113.9") || ip.TotalLength() != 0x60 {
		t.Fatalf("setters did not stick: % x", b[:20])
	}
	for ttl := 255; ttl >= 0; ttl-- {
		ip.SetTTL(uint8(ttl))
		if ip.HeaderChecksum() != ip.ComputeChecksum() {
			t.Fatalf("ttl %d: %#04x != %#04x", ttl, ip.HeaderChecksum(), ip.ComputeChecksum())
		}
	}
}

func TestIPv4Fragments(t *testing.T) {
	r := IPv4Repr{
		ID: 0xbeef, MoreFragments: true, FragmentOffset: 1480, TTL: 1, Protocol: ProtoICMP,
		Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"),
		Options:    []byte{0x94, 0x04, 0x00, 0x00}, // Router Alert, RFC 2113
		PayloadLen: 8,
	}
	b := make([]byte, r.HeaderLen()+r.PayloadLen)
	if err := r.Emit(b); err != nil {
		t.Fatal(err)
	}
	ip := IPv4(b)
	if err := CheckIPv4(b); err != nil {
		t.Fatal(err)
	}
	if ip.FragmentOffset() != 1480 || !ip.MoreFragments() || !ip.IsFragment() || ip.HeaderLen() != 24 ||
		!bytes.Equal(ip.Options(), r.Options) {
		t.Fatalf("% x", b)
	}
	for name, bad := range map[string]IPv4Repr{
		"odd offset":  {FragmentOffset: 3, Src: r.Src, Dst: r.Dst},
		"big offset":  {FragmentOffset: 65536, Src: r.Src, Dst: r.Dst},
		"odd options": {Options: []byte{1}, Src: r.Src, Dst: r.Dst},
		"too long":    {PayloadLen: 65516, Src: r.Src, Dst: r.Dst},
	} {
		if err := bad.Emit(make([]byte, 64)); !errors.Is(err, ErrRepr) {
			t.Errorf("%s: %v", name, err)
		}
	}
	v6 := IPv4Repr{Src: netip.MustParseAddr("::1"), Dst: r.Dst}
	if err := v6.Emit(make([]byte, 20)); !errors.Is(err, ErrAddress) {
		t.Errorf("v6 src: %v", err)
	}
}

func TestIPv4Malformed(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func([]byte) []byte
		want   error
	}{
		"short":        {func(b []byte) []byte { return b[:19] }, ErrTruncated},
		"version":      {func(b []byte) []byte { b[0] = 0x65; return b }, ErrVersion},
		"ihl 4":        {func(b []byte) []byte { b[0] = 0x44; return b }, ErrHeaderLen},
		"ihl past end": {func(b []byte) []byte { b[0] = 0x4f; return b[:40] }, ErrTruncated},
		"tl < ihl":     {func(b []byte) []byte { b[3] = 19; return b }, ErrLength},
		"tl > len":     {func(b []byte) []byte { return b[:0x72] }, ErrTruncated},
		"checksum":     {func(b []byte) []byte { b[11]++; return b }, ErrChecksum},
	} {
		b := tc.mutate(ipv4FixturePacket())
		if err := CheckIPv4(b); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v want %v", name, err, tc.want)
		}
	}
}

func ipv4ReprEqual(a, b IPv4Repr) bool {
	return a.TOS == b.TOS && a.ID == b.ID && a.DontFragment == b.DontFragment &&
		a.MoreFragments == b.MoreFragments && a.FragmentOffset == b.FragmentOffset &&
		a.TTL == b.TTL && a.Protocol == b.Protocol && a.Src == b.Src && a.Dst == b.Dst &&
		a.PayloadLen == b.PayloadLen && bytes.Equal(a.Options, b.Options)
}

func FuzzIPv4(f *testing.F) {
	f.Add(ipv4FixturePacket())
	f.Add([]byte{0x46, 0, 0, 28, 0, 1, 0x20, 0x10, 1, 2, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x94, 4, 0, 0, 1, 2, 3, 4})
	f.Add([]byte{0x45, 0, 0, 20})
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = CheckIPv4(data) // must not panic
		b := append([]byte(nil), data...)
		if checkIPv4Structure(b) == nil {
			IPv4(b).SetChecksum() // let the fuzzer past the checksum
		}
		var r IPv4Repr
		if err := r.Parse(b); err != nil {
			return
		}
		ip := IPv4(b)
		_, _, _, _ = ip.Payload(), ip.Options(), ip.Src(), ip.FragmentOffset()
		if r.HeaderLen()+r.PayloadLen != int(ip.TotalLength()) {
			t.Fatalf("lengths: %d+%d != %d", r.HeaderLen(), r.PayloadLen, ip.TotalLength())
		}
		out := make([]byte, r.HeaderLen()+r.PayloadLen)
		copy(out[r.HeaderLen():], ip.Payload())
		if err := r.Emit(out); err != nil {
			t.Fatal(err)
		}
		var r2 IPv4Repr
		if err := r2.Parse(out); err != nil {
			t.Fatal(err)
		}
		if !ipv4ReprEqual(r, r2) {
			t.Fatalf("round trip:\n%+v\n%+v", r, r2)
		}
		// Only the reserved flag bit and the checksum it covers may differ.
		h := append([]byte(nil), b[:r.HeaderLen()]...)
		h[6] &^= 0x80
		IPv4(h).SetChecksum()
		if !bytes.Equal(out[:r.HeaderLen()], h) {
			t.Fatalf("re-emit differs:\n% x\n% x", out[:r.HeaderLen()], h)
		}
	})
}
