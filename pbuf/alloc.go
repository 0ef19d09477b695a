package pbuf

import (
	"sync"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/stats"
)

// Config sizes an Allocator (the stack fills it from opt.Options).
type Config struct {
	PoolCount   int // PbufPoolSize: POOL pbufs
	PoolBufSize int // PbufPoolBufSize: bytes per POOL pbuf
	HeapSize    int // MemSize: the RAM heap in bytes
	RefCount    int // MempNumPbuf: REF/ROM headers
	RAMCount    int // MempNumPbufRAM: RAM headers
}

// Allocator owns one stack's pbuf memory: the POOL pool and its arena, the RAM heap, and
// the header pools. Safe for concurrent use.
type Allocator struct {
	// mu guards the three header pools and the heap together, so that allocating a chain,
	// a RAM pbuf (a header and a block) or freeing a chain takes it once, not once per
	// pool operation: the lock's atomics were the largest cost of pbufs per packet.
	mu      sync.Mutex
	pool    *memp.Pool[Pbuf]
	arena   []byte
	bufSize int
	refPool *memp.Pool[Pbuf]
	ramPool *memp.Pool[Pbuf]
	heap    *heap
}

// NewAllocator reserves all pbuf memory at once.
func NewAllocator(c Config) *Allocator {
	a := &Allocator{
		bufSize: c.PoolBufSize,
		heap:    newHeap(c.HeapSize),
	}
	a.arena = newArena(a, c.PoolCount*c.PoolBufSize)
	// Headers hold pointers, so they live in the Go heap: made as the high-water mark
	// rises, an idle stack does not hold tens of thousands of them.
	a.pool = memp.NewLazyShared[Pbuf](memp.PbufPool, c.PoolCount, c.PoolBufSize, &a.mu)
	a.refPool = memp.NewLazyShared[Pbuf](memp.Pbuf, c.RefCount, 0, &a.mu)
	a.ramPool = memp.NewLazyShared[Pbuf](memp.PbufRAM, c.RAMCount, 0, &a.mu)
	a.heap.mu = &a.mu
	return a
}

// Register adds the allocator's pools to a stack's pool table.
func (a *Allocator) Register(t *memp.Table) {
	t.Register(memp.Pbuf, a.refPool)
	t.Register(memp.PbufRAM, a.ramPool)
	t.Register(memp.PbufPool, a.pool)
}

// HeapStats reports the RAM heap.
func (a *Allocator) HeapStats() stats.Heap { return a.heap.stats() }

// PoolBufSize returns the payload size of one POOL pbuf.
func (a *Allocator) PoolBufSize() int { return a.bufSize }

// HeapReserved is the memory the RAM heap holds: its arena and bookkeeping.
func (a *Allocator) HeapReserved() int { return len(a.heap.arena) + len(a.heap.meta) }

// Alloc returns a new chain of typ POOL or RAM with length payload bytes and layer bytes of
// header room in its first pbuf (lwIP pbuf_alloc). A POOL chain uses as many chunks as
// needed; a RAM chain is one pbuf unless length exceeds MaxRAMBlock or the heap has no
// single free block large enough (then it is a chain of the largest free blocks). The caller owns the
// result. On exhaustion it returns errs.Mem and holds nothing.
func (a *Allocator) Alloc(layer Layer, length int, typ Type) (*Pbuf, error) {
	if length < 0 || int(layer) < 0 {
		return nil, errs.Val
	}
	switch typ {
	case POOL:
		if int(layer) >= a.bufSize {
			return nil, errs.Val
		}
	case RAM:
		if int(layer) >= MaxRAMBlock {
			return nil, errs.Val
		}
	default:
		return nil, errs.Val
	}
	var head, tail *Pbuf
	room := int(layer)
	rem := length
	// One lock for the whole chain. The pbufs are not visible to anyone else until Alloc
	// returns, so their fields (the count included) are written without atomics.
	a.mu.Lock()
	for {
		var p *Pbuf
		if typ == POOL {
			q, i := a.pool.GetLocked()
			if q == nil {
				a.mu.Unlock()
				head.Free()
				return nil, errs.Mem
			}
			q.mem = a.arena[i*a.bufSize : (i+1)*a.bufSize : (i+1)*a.bufSize]
			q.idx = int32(i)
			q.len = int32(min(rem, a.bufSize-room))
			p = q
		} else {
			n := min(room+rem, MaxRAMBlock)
			q, qi := a.ramPool.GetLocked()
			if q == nil {
				a.mu.Unlock()
				head.Free()
				return nil, errs.Mem
			}
			u, k := a.heap.allocLocked(n)
			if u < 0 {
				// No single block is free: take the largest free blocks as a chain (the
				// first must hold the header room and a byte), so a small or fragmented
				// heap is used in full, as lwIP's first-fit heap would be.
				u, k = a.heap.allocLargestLocked(orderFor(n)-1, orderFor(room+1))
			}
			if u < 0 {
				a.ramPool.PutIndexLocked(q, qi)
				a.mu.Unlock()
				head.Free()
				return nil, errs.Mem
			}
			q.mem, q.blk, q.order, q.idx = a.heap.bytes(u, k), u, int8(k), int32(qi)
			q.len = int32(min(n, heapUnit<<k) - room)
			p = q
		}
		p.typ, p.a, p.off = typ, a, int32(room)
		p.ref = 1
		rem -= int(p.len)
		if head == nil {
			head = p
		} else {
			tail.next = p
		}
		tail = p
		room = 0
		if rem == 0 {
			break
		}
	}
	a.mu.Unlock()
	// tot_len from the back.
	tot := int32(length)
	for p := head; p != nil; p = p.next {
		p.totLen = tot
		tot -= p.len
	}
	return head, nil
}

// AllocRef returns a one-pbuf chain of typ REF or ROM whose payload is b itself: no copy.
// For REF, owner (may be nil) is told when wisp has released the last reference; until then
// the caller must not modify b. ROM memory must never change. Header room is zero: the
// layers below chain a header pbuf in front. Caller owns the result; errs.Mem when no header
// is free.
func (a *Allocator) AllocRef(b []byte, typ Type, owner Releaser) (*Pbuf, error) {
	if typ != REF && typ != ROM {
		return nil, errs.Val
	}
	p, i := a.refPool.GetIndex()
	if p == nil {
		return nil, errs.Mem
	}
	p.typ, p.a, p.mem, p.pool, p.idx = typ, a, b[:len(b):len(b)], a.refPool, int32(i)
	p.len, p.totLen = int32(len(b)), int32(len(b))
	p.owner = owner
	p.ref = 1 // not yet shared: no atomic needed
	return p, nil
}

// Clone returns a copy of chain p in new memory of typ, with layer header room (lwIP
// pbuf_clone). The caller keeps p and owns the copy.
func (a *Allocator) Clone(layer Layer, typ Type, p *Pbuf) (*Pbuf, error) {
	q, err := a.Alloc(layer, p.TotLen(), typ)
	if err != nil {
		return nil, err
	}
	if err := Copy(q, p); err != nil {
		q.Free()
		return nil, err
	}
	q.CopyMeta(p)
	return q, nil
}

// RefRange returns a new chain of REF pbufs that share the memory of bytes [off, off+n) of
// chain src: zero-copy views, as lwIP's FRAG_PBUF custom pbufs for IP fragmentation. Each
// holds a reference on the src pbuf it views, so src's memory lives until every view is
// freed. Headers come from pool (nil: the allocator's PBUF pool). src is borrowed; the
// caller owns the result. On errs.Mem nothing is held.
func (a *Allocator) RefRange(pool *memp.Pool[Pbuf], src *Pbuf, off, n int) (*Pbuf, error) {
	if off < 0 || n <= 0 || off+n > src.TotLen() {
		return nil, errs.Arg
	}
	if pool == nil {
		pool = a.refPool
	}
	q, o := src.Skip(off)
	var head, tail *Pbuf
	rem := n
	pool.Lock() // once for all the views
	for rem > 0 {
		t, ti := pool.GetLocked()
		if t == nil {
			pool.Unlock()
			head.Free()
			return nil, errs.Mem
		}
		take := min(rem, int(q.len)-o)
		t.typ, t.a, t.pool, t.idx = REF, a, pool, int32(ti)
		t.mem = q.mem
		t.off = q.off + int32(o)
		t.len = int32(take)
		t.parent = q
		q.Ref()   // q may be shared: atomic
		t.ref = 1 // t is not: plain
		if head == nil {
			head = t
		} else {
			tail.next = t
		}
		tail = t
		rem -= take
		q, o = q.next, 0
	}
	pool.Unlock()
	tot := int32(n)
	for t := head; t != nil; t = t.next {
		t.totLen = tot
		tot -= t.len
	}
	return head, nil
}

// PoolDecls declares the pools NewAllocator(c) creates, for the budget report.
func PoolDecls(c Config) []memp.Decl {
	return []memp.Decl{
		memp.DeclFor[Pbuf](memp.Pbuf, c.RefCount, 0),
		memp.DeclFor[Pbuf](memp.PbufRAM, c.RAMCount, 0),
		memp.DeclFor[Pbuf](memp.PbufPool, c.PoolCount, c.PoolBufSize),
	}
}

// HeapBytes is the memory NewAllocator(c) reserves for the RAM heap: the arena (rounded down
// to 64-byte blocks) and its bookkeeping.
func HeapBytes(c Config) int {
	size := c.HeapSize &^ (heapUnit - 1)
	return size + HeapMetaBytes(size)
}
