package xdp

import (
	"sync/atomic"
	"unsafe"
)

// desc is an RX or TX ring entry (struct xdp_desc).
type desc struct {
	Addr    uint64
	Len     uint32
	Options uint32
}

// ring is this side's view of one AF_XDP ring: a power-of-two array of entries (8-byte
// UMEM addresses for the fill and completion rings, 16-byte descs for RX and TX) with a
// producer and a consumer index shared with the kernel, each written by one side only.
//
// Index discipline: the other side's index is read with an atomic (acquire) load and only
// when the cached copy says there is not enough; our own index advances privately (local)
// and is published with one atomic (release) store per batch (submit/release), which
// orders the entries written or read before it. Indices are free-running uint32s: their
// difference is the fill level, correct across wrap-around.
type ring struct {
	producer *uint32
	consumer *uint32
	flags    *uint32
	entries  unsafe.Pointer
	mask     uint32
	size     uint32
	local    uint32 // our index, not yet published (producer or consumer side)
	cached   uint32 // the other side's index as last loaded
}

// newRing returns a ring over entries in shared memory. For a producer-side ring (fill,
// TX) the cached consumer starts a whole ring behind, so that every entry is free.
func newRing(producer, consumer, flags *uint32, entries unsafe.Pointer, size uint32, prodSide bool) ring {
	r := ring{producer: producer, consumer: consumer, flags: flags, entries: entries, mask: size - 1, size: size}
	if prodSide {
		r.local = atomic.LoadUint32(producer)
		r.cached = atomic.LoadUint32(consumer) + size
	} else {
		r.local = atomic.LoadUint32(consumer)
		r.cached = atomic.LoadUint32(producer)
	}
	return r
}

// reserve (producer side) claims up to n free entries and returns the index of the first
// and how many it got; the caller fills them and calls submit.
func (r *ring) reserve(n uint32) (uint32, uint32) {
	free := r.cached - r.local
	if free < n {
		r.cached = atomic.LoadUint32(r.consumer) + r.size
		free = r.cached - r.local
	}
	n = min(n, free)
	i := r.local
	r.local += n
	return i, n
}

// free (producer side) is how many entries reserve could claim now.
func (r *ring) free() uint32 {
	r.cached = atomic.LoadUint32(r.consumer) + r.size
	return r.cached - r.local
}

// submit (producer side) publishes the entries reserved so far.
func (r *ring) submit() { atomic.StoreUint32(r.producer, r.local) }

// peek (consumer side) takes up to n available entries and returns the index of the
// first and how many; the caller reads them and calls release.
func (r *ring) peek(n uint32) (uint32, uint32) {
	avail := r.cached - r.local
	if avail < n {
		r.cached = atomic.LoadUint32(r.producer)
		avail = r.cached - r.local
	}
	n = min(n, avail)
	i := r.local
	r.local += n
	return i, n
}

// release (consumer side) gives back the entries peeked so far.
func (r *ring) release() { atomic.StoreUint32(r.consumer, r.local) }

// needWakeup reports the kernel's XDP_RING_NEED_WAKEUP flag.
func (r *ring) needWakeup() bool { return atomic.LoadUint32(r.flags)&xdpRingNeedWakeup != 0 }

// xdpRingNeedWakeup is XDP_RING_NEED_WAKEUP.
const xdpRingNeedWakeup = 1

// addr returns the 8-byte entry i of a fill or completion ring.
func (r *ring) addr(i uint32) *uint64 {
	return (*uint64)(unsafe.Add(r.entries, uintptr(i&r.mask)*8))
}

// desc returns the 16-byte entry i of an RX or TX ring.
func (r *ring) desc(i uint32) *desc {
	return (*desc)(unsafe.Add(r.entries, uintptr(i&r.mask)*16))
}

// framePool is a stack of free UMEM frame addresses, owned by one goroutine at a time.
type framePool struct {
	addrs []uint64
}

func newFramePool(first uint64, n int, size uint64) framePool {
	p := framePool{addrs: make([]uint64, n)}
	for i := range n {
		p.addrs[i] = first + uint64(n-1-i)*size
	}
	return p
}

func (p *framePool) len() int { return len(p.addrs) }

func (p *framePool) get() (uint64, bool) {
	n := len(p.addrs)
	if n == 0 {
		return 0, false
	}
	a := p.addrs[n-1]
	p.addrs = p.addrs[:n-1]
	return a, true
}

// put returns a frame; the pool never holds more than it was made with.
func (p *framePool) put(a uint64) {
	if len(p.addrs) == cap(p.addrs) {
		panic("xdp: frame returned twice to its pool")
	}
	p.addrs = append(p.addrs, a)
}
