package pbuf

import (
	"math/bits"

	"github.com/wispstack/wisp/wire"
)

// Checksum adds bytes [off, off+n) of the chain to the running Internet checksum sum
// initial and returns the new running sum (finish it with wire.Finish). It is correct
// across pbufs of odd length: a piece that starts at an odd position of the range is
// summed byte-swapped (RFC 1071 §2(B), byte order independence). A range past the end of
// the chain is cut short. The one chain checksum: IP, the transports, GSO and GRO use it.
func (p *Pbuf) Checksum(off, n int, initial uint32) uint32 {
	q, o := p.Skip(off)
	sum := uint64(initial)
	odd := false
	for ; q != nil && n > 0; q, o = q.Next(), 0 {
		b := q.Payload()[o:]
		b = b[:min(len(b), n)]
		s := wire.Fold(wire.Checksum(b, 0))
		if odd {
			s = bits.ReverseBytes16(s)
		}
		sum += uint64(s)
		odd = odd != (len(b)%2 == 1)
		n -= len(b)
	}
	for sum > 0xffffffff {
		sum = sum>>32 + sum&0xffffffff
	}
	return uint32(sum)
}
