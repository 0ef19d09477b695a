package ip

import (
	"math/bits"

	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// ChainChecksum adds bytes [off, off+n) of chain p to the running Internet checksum sum
// initial and returns the new running sum (finish it with wire.Finish). It is correct
// across pbufs of odd length: a piece that starts at an odd position of the range is
// summed byte-swapped (RFC 1071 §2(B), byte order independence). p is borrowed. A range
// past the end of the chain is cut short.
func ChainChecksum(p *pbuf.Pbuf, off, n int, initial uint32) uint32 {
	q, o := p.Skip(off)
	sum := uint64(initial)
	odd := false
	for q != nil && n > 0 {
		b := q.Payload()[o:]
		if len(b) > n {
			b = b[:n]
		}
		s := uint64(wire.Fold(wire.Checksum(b, 0)))
		if odd {
			s = uint64(bits.ReverseBytes16(uint16(s)))
		}
		sum += s
		if len(b)%2 == 1 {
			odd = !odd
		}
		n -= len(b)
		q, o = q.Next(), 0
	}
	for sum > 0xffffffff {
		sum = sum>>32 + sum&0xffffffff
	}
	return uint32(sum)
}
