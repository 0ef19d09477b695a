package wire

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// refSum is the RFC 1071 textbook algorithm, one 16-bit word at a time.
func refSum(b []byte, initial uint32) uint16 {
	s := uint64(initial)
	for len(b) >= 2 {
		s += uint64(b[0])<<8 | uint64(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

func refChecksum(b []byte) uint16 { return ^refSum(b, 0) }

func TestChecksumRFC1071Example(t *testing.T) {
	// RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Fold(Checksum(b, 0)); got != 0xddf2 {
		t.Fatalf("Fold = %#04x, want 0xddf2", got)
	}
	if got := Finish(Checksum(b, 0)); got != 0x220d {
		t.Fatalf("Finish = %#04x, want 0x220d", got)
	}
}

// fill sets b to one of the patterns that stress a checksum: random bytes,
// all ones (every add carries), all zeros (the sum must stay 0, not become
// 0xffff) and alternating 0xff 0x00 (the byte order matters).
func fill(b []byte, pattern int, r *rand.Rand) {
	for i := range b {
		switch pattern {
		case 0:
			b[i] = byte(r.Uint32())
		case 1:
			b[i] = 0xff
		case 2:
			b[i] = 0
		case 3:
			b[i] = byte(^i & 1 * 0xff)
		}
	}
}

func TestChecksumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 65536+8)
	lengths := make([]int, 0, 320)
	for n := 0; n <= 300; n++ {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 511, 512, 513, 1459, 1460, 1500, 9000, 65535, 65536)
	for pattern := 0; pattern < 4; pattern++ {
		fill(buf, pattern, r)
		for _, n := range lengths {
			for off := 0; off < 8; off++ {
				b := buf[off : off+n]
				inits := []uint32{0, 1, 0xffff, 0x10000, 0xffffffff, r.Uint32(), r.Uint32()}
				if pattern == 2 {
					inits = append(inits, 0, 0) // an all-zero sum must fold to 0
				}
				for _, init := range inits {
					got := Checksum(b, init)
					if want := refSum(b, init); Fold(got) != want {
						t.Fatalf("pattern %d len %d off %d init %#x: got %#04x want %#04x",
							pattern, n, off, init, Fold(got), want)
					}
					if got > 0xffff {
						t.Fatalf("pattern %d len %d off %d init %#x: running sum %#x > 0xffff",
							pattern, n, off, init, got)
					}
				}
			}
		}
	}
}

// sumPieces sums b cut into pieces of the given lengths the way
// pbuf.(*Pbuf).Checksum sums a chain: each piece on its own from 0, folded,
// and byte-swapped when it starts at an odd position (RFC 1071 §2(B)).
func sumPieces(b []byte, cuts []int, initial uint32) uint16 {
	s := uint64(initial)
	odd := false
	for _, c := range cuts {
		c = min(c, len(b))
		p := Fold(Checksum(b[:c], 0))
		if odd {
			p = bits.ReverseBytes16(p)
		}
		s += uint64(p)
		odd = odd != (c%2 == 1)
		b = b[c:]
	}
	return Fold(fold64(s))
}

func TestChecksumOddPieces(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	buf := make([]byte, 3000)
	for iter := 0; iter < 20000; iter++ {
		fill(buf, iter%4, r)
		b := buf[r.IntN(8):][:r.IntN(len(buf)-8)]
		var cuts []int
		for rest := len(b); rest > 0; {
			c := 1 + r.IntN(min(rest, 1+r.IntN(200)))
			cuts = append(cuts, c)
			rest -= c
		}
		init := r.Uint32()
		if got, want := sumPieces(b, cuts, init), refSum(b, init); got != want {
			t.Fatalf("len %d cuts %v: got %#04x want %#04x", len(b), cuts, got, want)
		}
	}
}

func TestChecksumSplit(t *testing.T) {
	b := []byte("the quick brown fox jumps over the lazy dog, twice over.")
	whole := Finish(Checksum(b, 0))
	for cut := 0; cut <= len(b); cut += 2 {
		if got := Finish(Checksum(b[cut:], Checksum(b[:cut], 0))); got != whole {
			t.Fatalf("cut %d: %#04x != %#04x", cut, got, whole)
		}
	}
}

func TestPseudoHeaderChecksum(t *testing.T) {
	for _, tc := range []struct{ src, dst string }{
		{"10.0.0.1", "192.168.255.254"},
		{"fe80::1", "ff02::1:ff00:2"},
		{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "::"},
	} {
		src, dst := netip.MustParseAddr(tc.src), netip.MustParseAddr(tc.dst)
		var ph []byte
		if src.Is4() {
			// RFC 793: src, dst, zero, proto, TCP length.
			ph = append(src.AsSlice(), dst.AsSlice()...)
			ph = append(ph, 0, ProtoTCP, 0x05, 0xdc)
		} else {
			// RFC 8200 §8.1: src, dst, 32-bit length, 3 zero bytes, next header.
			ph = append(src.AsSlice(), dst.AsSlice()...)
			ph = append(ph, 0, 0, 0x05, 0xdc, 0, 0, 0, ProtoTCP)
		}
		if got, want := Fold(PseudoHeaderChecksum(ProtoTCP, src, dst, 1500)), refSum(ph, 0); got != want {
			t.Errorf("%s->%s: got %#04x want %#04x", src, dst, got, want)
		}
	}
}

// TCP and GSO take the pseudo-header sum once with length 0 and add each
// segment's length to it with plain uint32 addition, which is right only if
// the sum leaves room. Before sums were folded to 16 bits, this address pair
// gave 0xfffffa61, and adding 1500 wrapped and dropped a carry.
func TestPseudoHeaderChecksumAddLength(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	pairs := [][2]netip.Addr{
		{netip.MustParseAddr("2001:db8::6d73:96f9:528a:47f1"), netip.MustParseAddr("2001:db8::1")},
		{netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")},
		{netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("255.255.255.255")},
	}
	for range 1000 {
		var a, b [16]byte
		for i := range a {
			a[i], b[i] = byte(r.Uint32()), byte(r.Uint32())
		}
		pairs = append(pairs, [2]netip.Addr{netip.AddrFrom16(a), netip.AddrFrom16(b)})
	}
	for _, p := range pairs {
		for _, proto := range []uint8{ProtoTCP, ProtoUDP} {
			base := PseudoHeaderChecksum(proto, p[0], p[1], 0)
			if base > 0xffff {
				t.Fatalf("%s->%s: sum %#x > 0xffff", p[0], p[1], base)
			}
			for _, l := range []uint32{1, 1500, 65535} {
				if got, want := Fold(base+l), Fold(PseudoHeaderChecksum(proto, p[0], p[1], l)); got != want {
					t.Fatalf("%s->%s len %d: sum+len %#04x, sum with len %#04x", p[0], p[1], l, got, want)
				}
			}
		}
	}
}

func TestChecksumUpdate(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, 40)
	for iter := 0; iter < 10000; iter++ {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		b[0] |= 1 // never all zero: one's complement has two zeros
		binary.BigEndian.PutUint16(b[10:12], 0)
		binary.BigEndian.PutUint16(b[10:12], refChecksum(b))
		hc := binary.BigEndian.Uint16(b[10:12])

		// 16-bit field at offset 2, 32-bit field at offset 12.
		old16, new16 := binary.BigEndian.Uint16(b[2:4]), uint16(r.Uint32())
		binary.BigEndian.PutUint16(b[2:4], new16)
		hc = ChecksumUpdate16(hc, old16, new16)
		old32, new32 := binary.BigEndian.Uint32(b[12:16]), r.Uint32()
		if iter%7 == 0 {
			new32 = 0
		}
		binary.BigEndian.PutUint32(b[12:16], new32)
		hc = ChecksumUpdate32(hc, old32, new32)
		binary.BigEndian.PutUint16(b[10:12], hc)
		if refSum(b, 0) != 0xffff {
			t.Fatalf("iter %d: incremental checksum %#04x does not verify", iter, hc)
		}
		binary.BigEndian.PutUint16(b[10:12], 0)
		if want := refChecksum(b); hc != want {
			t.Fatalf("iter %d: incremental %#04x, recomputed %#04x", iter, hc, want)
		}
		binary.BigEndian.PutUint16(b[10:12], hc)
	}
}

func TestChecksumUpdateAddr(t *testing.T) {
	for _, tc := range []struct{ old, new string }{
		{"10.0.0.1", "203.0.113.77"},
		{"2001:db8::1", "fe80::dead:beef"},
	} {
		old, new := netip.MustParseAddr(tc.old), netip.MustParseAddr(tc.new)
		data := append([]byte{0xab, 0xcd}, old.AsSlice()...)
		hc := refChecksum(data)
		data = append([]byte{0xab, 0xcd}, new.AsSlice()...)
		if got, want := ChecksumUpdateAddr(hc, old, new), refChecksum(data); got != want {
			t.Errorf("%s->%s: got %#04x want %#04x", old, new, got, want)
		}
	}
}

func FuzzChecksum(f *testing.F) {
	f.Add([]byte{}, uint32(0), 0, uint8(0))
	f.Add([]byte{0xff}, uint32(0xffffffff), 1, uint8(0))
	f.Add([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7, 1, 2, 3}, uint32(7), 4, uint8(3))
	f.Add(make([]byte, 200), uint32(0), 77, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, init uint32, cut int, off uint8) {
		// Shift the data by off bytes to vary its alignment in memory.
		buf := make([]byte, int(off%8)+len(data))
		b := buf[off%8:]
		copy(b, data)
		want := refSum(b, init)
		got := Checksum(b, init)
		if Fold(got) != want || got > 0xffff {
			t.Fatalf("got %#x (folded %#04x) want %#04x", got, Fold(got), want)
		}
		if len(b) == 0 {
			return
		}
		cut = (cut & 0x7fffffff) % (len(b) + 1)
		if even := cut &^ 1; Fold(Checksum(b[even:], Checksum(b[:even], init))) != want {
			t.Fatalf("split at %d: got %#04x want %#04x", even, Fold(Checksum(b[even:], Checksum(b[:even], init))), want)
		}
		// Any cut, odd too, combined as pbuf chains combine their pieces.
		if got := sumPieces(b, []int{cut, len(b) - cut}, init); got != want {
			t.Fatalf("pieces %d+%d: got %#04x want %#04x", cut, len(b)-cut, got, want)
		}
	})
}

func BenchmarkChecksumReference1500(b *testing.B) {
	buf := make([]byte, 1500)
	b.SetBytes(1500)
	var s uint16
	for b.Loop() {
		s += refChecksum(buf)
	}
	_ = s
}
