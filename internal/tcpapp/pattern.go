package tcpapp

import (
	"crypto/sha256"
	"encoding/binary"
)

// The pattern is word i = splitmix64(seed + i·γ) written little-endian at byte offset 8i:
// random-looking (so a shifted, repeated or dropped segment changes the checksum), cheap
// (~1 ns per 8 bytes) and computable at any offset without state.

const golden = 0x9e3779b97f4a7c15

func mix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// FillPattern fills b with the pattern of seed starting at stream offset off.
func FillPattern(b []byte, seed uint64, off int64) {
	if len(b) == 0 {
		return
	}
	w := uint64(off) / 8
	if r := int(uint64(off) % 8); r != 0 {
		var tmp [8]byte
		binary.LittleEndian.PutUint64(tmp[:], mix(seed+w*golden))
		n := copy(b, tmp[r:])
		b = b[n:]
		w++
	}
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, mix(seed+w*golden))
		b = b[8:]
		w++
	}
	if len(b) > 0 {
		var tmp [8]byte
		binary.LittleEndian.PutUint64(tmp[:], mix(seed+w*golden))
		copy(b, tmp[:])
	}
}

// Pattern reads the endless pattern of a seed (an io.Reader for peers outside wisp).
type Pattern struct {
	seed uint64
	off  int64
}

// NewPattern returns a reader of the pattern of seed from offset 0.
func NewPattern(seed uint64) *Pattern { return &Pattern{seed: seed} }

// Read fills b; it never fails.
func (p *Pattern) Read(b []byte) (int, error) {
	FillPattern(b, p.seed, p.off)
	p.off += int64(len(b))
	return len(b), nil
}

// PatternSum returns the SHA-256 of the first n bytes of the pattern of seed: what a
// receiver of a Send(…, n, seed) or of a Source(…, n, seed) connection must report.
func PatternSum(n int64, seed uint64) [32]byte {
	h := sha256.New()
	buf := make([]byte, 64<<10)
	for off := int64(0); off < n; {
		k := int(min(int64(len(buf)), n-off))
		FillPattern(buf[:k], seed, off)
		h.Write(buf[:k])
		off += int64(k)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}
