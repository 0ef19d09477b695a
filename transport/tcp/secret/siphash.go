package secret

import (
	"encoding/binary"
	"math/bits"
)

// SipHash-2-4, written from "SipHash: a fast short-input PRF" (Aumasson, Bernstein, 2012):
// two compression rounds per 8-byte message word, four finalization rounds, a 128-bit key
// and a 64-bit output.

// sipKey is a SipHash key as the two little-endian words k0 and k1 of the paper.
type sipKey struct{ k0, k1 uint64 }

// sipKeyFrom reads a 16-byte key the way the paper does (little-endian words).
func sipKeyFrom(b [16]byte) sipKey {
	return sipKey{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
}

// sum64 is SipHash-2-4 of m under k.
func (k sipKey) sum64(m []byte) uint64 {
	// Initialization: v0..v3 are the key xored with "somepseudorandomlygeneratedbytes".
	v0 := k.k0 ^ 0x736f6d6570736575
	v1 := k.k1 ^ 0x646f72616e646f6d
	v2 := k.k0 ^ 0x6c7967656e657261
	v3 := k.k1 ^ 0x7465646279746573

	n := len(m)
	for len(m) >= 8 {
		mi := binary.LittleEndian.Uint64(m)
		v3 ^= mi
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= mi
		m = m[8:]
	}
	// The last word holds the remaining bytes and, in its top byte, len(m) mod 256.
	last := uint64(n) << 56
	for i := len(m) - 1; i >= 0; i-- {
		last |= uint64(m[i]) << (8 * uint(i))
	}
	v3 ^= last
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= last

	// Finalization: xor 0xff into v2, then d = 4 rounds.
	v2 ^= 0xff
	for range 4 {
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	}
	return v0 ^ v1 ^ v2 ^ v3
}

// sipRound is the paper's SipRound: add-rotate-xor on the four state words.
func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13)
	v1 ^= v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16)
	v3 ^= v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21)
	v3 ^= v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17)
	v1 ^= v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}
