package wire

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"unsafe"
)

// The Internet checksum (RFC 1071) is the 16-bit one's complement of the one's
// complement sum of the data taken as big-endian 16-bit words.
//
// The API splits the work in two so that a checksum can span a pseudo-header,
// a header and a payload held in different buffers:
//
//	sum := PseudoHeaderChecksum(ProtoUDP, src, dst, uint32(len(udp)))
//	sum = Checksum(udp, sum)
//	csum := Finish(sum) // value for the checksum field; 0 when verifying
//
// Every buffer but the last passed to Checksum must have even length, since a
// trailing odd byte is taken as the high byte of a zero-padded word.

// Checksum adds b to the running one's complement sum initial and returns the
// new running sum. Any uint32 is a valid running sum; start with 0 or a
// pseudo-header sum. The result is at most 0xffff (folded, not complemented),
// so a caller may add a few 16-bit values to it, such as a length, with plain
// uint32 addition.
func Checksum(b []byte, initial uint32) uint32 {
	// RFC 1071 §2(B): the sum is independent of grouping, because 2^16 ≡ 1
	// (mod 2^16-1), and so is a sum of 64-bit words with each carry out of
	// bit 63 added back into bit 0 (2^64 ≡ 1 as well). It is also
	// independent of byte order: summing the data as little-endian words
	// gives the big-endian sum with its two bytes swapped. So load
	// little-endian words (a plain load on amd64 and arm64, no byte swap
	// per word) and swap once at the end. initial enters swapped too, as
	// initial<<8: multiplying by 2^8 modulo 2^16-1 swaps the bytes of the
	// 16-bit sum.
	//
	// Two add-with-carry chains of four words per 64-byte block, each
	// starting from a clear carry, with the carries out counted in cnt:
	// nothing but s0 and s1 is carried from one block to the next, and the
	// two chains overlap.
	s0 := uint64(initial) << 8
	var s1, cnt, c uint64
	// Every load below is a [k]byte read wholly inside b (o+k <= len(b)),
	// indexed from the slice's base pointer: the safe form, b = b[k:] after
	// each piece, costs about a third more at 1500 bytes on amd64 for the
	// slice updates and the registers they take. A [k]byte has no alignment,
	// and each load is explicitly little-endian, so this is right on every
	// architecture.
	p := unsafe.Pointer(unsafe.SliceData(b))
	n := len(b) &^ 63
	for o := 0; o < n; o += 64 {
		x := (*[64]byte)(unsafe.Add(p, o))
		s0, c = bits.Add64(s0, binary.LittleEndian.Uint64(x[0:8]), 0)
		s0, c = bits.Add64(s0, binary.LittleEndian.Uint64(x[8:16]), c)
		s0, c = bits.Add64(s0, binary.LittleEndian.Uint64(x[16:24]), c)
		s0, c = bits.Add64(s0, binary.LittleEndian.Uint64(x[24:32]), c)
		cnt += c
		s1, c = bits.Add64(s1, binary.LittleEndian.Uint64(x[32:40]), 0)
		s1, c = bits.Add64(s1, binary.LittleEndian.Uint64(x[40:48]), c)
		s1, c = bits.Add64(s1, binary.LittleEndian.Uint64(x[48:56]), c)
		s1, c = bits.Add64(s1, binary.LittleEndian.Uint64(x[56:64]), c)
		cnt += c
	}
	// The last 0..63 bytes, biggest pieces first; every piece starts at an
	// even offset, so its words line up with the blocks'.
	o, r := n, len(b)-n
	if r&32 != 0 {
		x := (*[32]byte)(unsafe.Add(p, o))
		s1, c = bits.Add64(s1, binary.LittleEndian.Uint64(x[0:8]), 0)
		s1, c = bits.Add64(s1, binary.LittleEndian.Uint64(x[8:16]), c)
		s1, c = bits.Add64(s1, binary.LittleEndian.Uint64(x[16:24]), c)
		s1, c = bits.Add64(s1, binary.LittleEndian.Uint64(x[24:32]), c)
		cnt += c
		o += 32
	}
	if r&16 != 0 {
		x := (*[16]byte)(unsafe.Add(p, o))
		s0, c = bits.Add64(s0, binary.LittleEndian.Uint64(x[0:8]), 0)
		s0, c = bits.Add64(s0, binary.LittleEndian.Uint64(x[8:16]), c)
		cnt += c
		o += 16
	}
	if r&8 != 0 {
		s1, c = bits.Add64(s1, binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(p, o))[:]), 0)
		cnt += c
		o += 8
	}
	var t uint64 // < 2^32 + 2^16 + 2^8: cannot overflow
	if r&4 != 0 {
		t = uint64(binary.LittleEndian.Uint32((*[4]byte)(unsafe.Add(p, o))[:]))
		o += 4
	}
	if r&2 != 0 {
		t += uint64(binary.LittleEndian.Uint16((*[2]byte)(unsafe.Add(p, o))[:]))
		o += 2
	}
	if r&1 != 0 {
		// RFC 1071 §4.1: an odd trailing byte is padded with a zero byte;
		// taken little-endian, it is the low byte of its word.
		t += uint64(*(*byte)(unsafe.Add(p, o)))
	}
	s0, c = bits.Add64(s0, t, 0)
	cnt += c
	s0, c = bits.Add64(s0, s1, 0)
	s0, c = bits.Add64(s0, cnt, c) // cnt is at most 2 per 64 bytes
	s0 += c                        // cannot carry again: s0 <= cnt if c is 1
	// Fold to 32 and then 16 bits by adding each value to itself rotated by
	// half its width: the high half gets hi+lo plus the carry out of lo+hi
	// in the low half, which is the end-around carry.
	s0 += bits.RotateLeft64(s0, 32)
	s := uint32(s0 >> 32)
	s += bits.RotateLeft32(s, 16)
	return uint32(bits.ReverseBytes16(uint16(s >> 16)))
}

// fold64 reduces a 64-bit one's complement sum to 32 bits.
func fold64(s uint64) uint32 {
	s = s>>32 + s&0xffffffff // < 2^33
	s = s>>32 + s&0xffffffff // < 2^32: a carry out leaves the low half <= 2^32-2
	return uint32(s)
}

// Fold reduces a running sum to the 16-bit one's complement sum, with the
// end-around carries added back. It is 0 only when every word summed was 0.
func Fold(sum uint32) uint16 {
	s := sum>>16 + sum&0xffff // <= 0x1fffe
	s = s>>16 + s&0xffff      // <= 0xffff
	return uint16(s)
}

// Finish folds a running sum and complements it: the value to store in a
// checksum field. Over data that includes a correct checksum field it is 0.
func Finish(sum uint32) uint16 {
	return ^Fold(sum)
}

// addrSum is the one's complement sum of an address's 16-bit words. IPv4
// addresses contribute their 4 bytes; anything else its 16-byte form.
func addrSum(a netip.Addr) uint64 {
	if a.Is4() {
		b := a.As4()
		return uint64(binary.BigEndian.Uint32(b[:]))
	}
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	s, c := bits.Add64(hi, lo, 0)
	return uint64(fold64(s)) + c
}

// PseudoHeaderChecksum returns the running sum of the pseudo-header used by
// TCP, UDP and ICMPv6: source and destination address, upper-layer protocol
// and upper-layer length (header plus payload). The IPv4 form (RFC 793 §3.1,
// RFC 768) and the IPv6 form (RFC 8200 §8.1) differ only in field widths,
// which do not change a one's complement sum, so one function serves both;
// the family is taken from each address. Like Checksum's, the result is at
// most 0xffff, so a length may be added to a sum taken with length 0.
func PseudoHeaderChecksum(proto uint8, src, dst netip.Addr, length uint32) uint32 {
	s := addrSum(src) + addrSum(dst) + uint64(length) + uint64(proto)
	return uint32(Fold(fold64(s)))
}

// ChecksumUpdate16 returns checksum hc updated for a 16-bit word of the
// covered data changing from old to new, without rescanning the data.
func ChecksumUpdate16(hc, old, new uint16) uint16 {
	// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). Unlike eqn. 2 this never
	// turns a checksum into 0x0000 where a full recompute would give 0xffff.
	return Finish(uint32(^hc) + uint32(^old) + uint32(new))
}

// ChecksumUpdate32 is ChecksumUpdate16 for an aligned 32-bit field (an IPv4
// address, a TCP sequence number) changing from old to new.
func ChecksumUpdate32(hc uint16, old, new uint32) uint16 {
	s := uint32(^hc) + uint32(^uint16(old>>16)) + uint32(^uint16(old)) +
		new>>16 + new&0xffff
	return Finish(s)
}

// ChecksumUpdateAddr is ChecksumUpdate16 for an address changing from old to
// new, as when NAT rewrites an IP header or a pseudo-header address. Both
// addresses should be of the same family.
func ChecksumUpdateAddr(hc uint16, old, new netip.Addr) uint16 {
	// One's complement negation distributes over the sum: ~(a+b) = ~a + ~b.
	s := uint32(^hc) + uint32(^Fold(fold64(addrSum(old)))) + uint32(Fold(fold64(addrSum(new))))
	return Finish(s)
}
