package frag

import (
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/pbuf"
)

// Fragmenter splits outgoing datagrams into zero-copy views whose headers come from the
// FRAG_PBUF pool (lwIP's MEMP_FRAG_PBUF). Core context.
type Fragmenter struct {
	a    *pbuf.Allocator
	pool *memp.Pool[pbuf.Pbuf]
}

// NewFragmenter returns a Fragmenter with a FRAG_PBUF pool of maxFragPbufs headers,
// registered in pools (nil allowed). A Reassembler builds one already (Reassembler.
// Fragmenter); building a second with the same table panics, as the pool is registered
// twice.
func NewFragmenter(a *pbuf.Allocator, pools *memp.Table, maxFragPbufs int) *Fragmenter {
	f := &Fragmenter{a: a, pool: memp.New[pbuf.Pbuf](memp.FragPbuf, max(0, maxFragPbufs), 0)}
	if pools != nil {
		pools.Register(memp.FragPbuf, f.pool)
	}
	return f
}

// Pool returns the FRAG_PBUF pool (for stats and tests).
func (f *Fragmenter) Pool() *memp.Pool[pbuf.Pbuf] { return f.pool }

// MaxData returns the most fragment data that fits an mtu after hdrLen bytes of headers,
// rounded down to a multiple of 8 (RFC 791 §2.3: fragments break "on 8 octet boundaries";
// RFC 8200 §4.5 likewise). It is less than 8 when no fragment fits.
func MaxData(mtu, hdrLen int) int { return max(0, mtu-hdrLen) &^ 7 }

// Split borrows payload (the fragmentable part of a datagram, after its headers) and appends
// to out one chain per fragment: REF views of at most maxData bytes each (maxData is rounded
// down to a multiple of 8; errs.Val if that leaves less than 8, or if payload is empty). The
// views share payload's memory and hold references to its pbufs, so payload may be freed
// while they are in flight. The caller owns the appended chains and prepends a header to
// each (a RAM pbuf, pbuf.Cat); fragment i carries data at byte offset i*maxData (the sum of
// the previous lengths) and has more set unless it is the last. On errs.Mem (FRAG_PBUF
// exhausted) every chain appended by this call is freed and out is returned as it was.
func (f *Fragmenter) Split(payload *pbuf.Pbuf, maxData int, out []*pbuf.Pbuf) ([]*pbuf.Pbuf, error) {
	maxData &^= 7
	if maxData < 8 || payload == nil || payload.TotLen() == 0 {
		return out, errs.Val
	}
	start := len(out)
	total := payload.TotLen()
	for off := 0; off < total; off += maxData {
		v, err := f.a.RefRange(f.pool, payload, off, min(maxData, total-off))
		if err != nil {
			for i := start; i < len(out); i++ {
				out[i].Free()
				out[i] = nil
			}
			return out[:start], err
		}
		out = append(out, v)
	}
	return out, nil
}
