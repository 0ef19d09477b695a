package wire

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
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
// new running sum, not yet folded to 16 bits. Any uint32 is a valid running
// sum; start with 0 or a pseudo-header sum.
func Checksum(b []byte, initial uint32) uint32 {
	// RFC 1071 §2(B): the sum is independent of grouping, because 2^16 ≡ 1
	// (mod 2^16-1). So sum 64-bit big-endian words with carries kept, and
	// fold at the end: 2^64 ≡ 1 as well, so a carry out of bit 63 is added
	// back into bit 0.
	s := uint64(initial)
	var c uint64
	for len(b) >= 32 {
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[0:8]), c)
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[8:16]), c)
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[16:24]), c)
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[24:32]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[0:8]), c)
		b = b[8:]
	}
	if len(b) >= 4 {
		s, c = bits.Add64(s, uint64(binary.BigEndian.Uint32(b[0:4])), c)
		b = b[4:]
	}
	if len(b) >= 2 {
		s, c = bits.Add64(s, uint64(binary.BigEndian.Uint16(b[0:2])), c)
		b = b[2:]
	}
	if len(b) == 1 {
		// RFC 1071 §4.1: an odd trailing byte is padded with a zero byte.
		s, c = bits.Add64(s, uint64(b[0])<<8, c)
	}
	s, c = bits.Add64(s, 0, c)
	s += c // cannot carry again: s was 2^64-1 only if c is now 0
	return fold64(s)
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
// the family is taken from each address.
func PseudoHeaderChecksum(proto uint8, src, dst netip.Addr, length uint32) uint32 {
	s := addrSum(src) + addrSum(dst) + uint64(length) + uint64(proto)
	return fold64(s)
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
