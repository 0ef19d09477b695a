package wire

import (
	"encoding/binary"
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

func TestChecksumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	for n := 0; n <= 300; n++ {
		for _, init := range []uint32{0, 1, 0xffff, 0xffffffff} {
			if got, want := Fold(Checksum(buf[:n], init)), refSum(buf[:n], init); got != want {
				t.Fatalf("len %d init %#x: got %#04x want %#04x", n, init, got, want)
			}
		}
	}
	// All-ones data stresses the carry chain.
	ones := make([]byte, 65536)
	for i := range ones {
		ones[i] = 0xff
	}
	for _, n := range []int{31, 32, 33, 1500, 65535, 65536} {
		if got, want := Fold(Checksum(ones[:n], 0xffffffff)), refSum(ones[:n], 0xffffffff); got != want {
			t.Fatalf("ones len %d: got %#04x want %#04x", n, got, want)
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
	f.Add([]byte{}, uint32(0), 0)
	f.Add([]byte{0xff}, uint32(0xffffffff), 1)
	f.Add([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7, 1, 2, 3}, uint32(7), 4)
	f.Fuzz(func(t *testing.T, b []byte, init uint32, cut int) {
		if got, want := Fold(Checksum(b, init)), refSum(b, init); got != want {
			t.Fatalf("got %#04x want %#04x", got, want)
		}
		if len(b) > 0 {
			cut = (cut & 0x7fffffff) % (len(b) + 1) &^ 1
			if got, want := Fold(Checksum(b[cut:], Checksum(b[:cut], init))), refSum(b, init); got != want {
				t.Fatalf("split at %d: got %#04x want %#04x", cut, got, want)
			}
		}
	})
}

func benchmarkChecksum(b *testing.B, n int) {
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	var s uint16
	for b.Loop() {
		s += Finish(Checksum(buf, 0))
	}
	_ = s
}

func BenchmarkChecksum64(b *testing.B)   { benchmarkChecksum(b, 64) }
func BenchmarkChecksum1500(b *testing.B) { benchmarkChecksum(b, 1500) }
func BenchmarkChecksum64K(b *testing.B)  { benchmarkChecksum(b, 65536) }

func BenchmarkChecksumReference1500(b *testing.B) {
	buf := make([]byte, 1500)
	b.SetBytes(1500)
	var s uint16
	for b.Loop() {
		s += refChecksum(buf)
	}
	_ = s
}
