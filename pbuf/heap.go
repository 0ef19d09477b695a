package pbuf

import (
	"encoding/binary"
	"math/bits"
	"sync"

	"github.com/wispstack/wisp/stats"
)

// Heap block geometry: blocks are powers of two from 64 bytes to 64 KiB.
const (
	heapUnitShift = 6
	heapUnit      = 1 << heapUnitShift
	heapMaxOrder  = 10 // 64 << 10 = 64 KiB
	// MaxRAMBlock is the largest single RAM pbuf; larger allocations are chains.
	MaxRAMBlock = heapUnit << heapMaxOrder
	heapNone    = -1
	heapUsedBit = 0x80
	heapNoBlock = 0 // meta of a unit that starts no block: zeroed memory needs no init
)

// heap is a buddy allocator over one pointer-free arena (the RAM pbuf heap, lwIP's mem.c).
// Free-list links are stored in the free blocks themselves as 32-bit unit indices; the only
// side table is one byte per 64-byte unit (order and in-use bit of the block starting there).
//
// Neither the arena nor meta is written until used, so an idle heap costs no resident
// memory: both are mapped zeroed (newArena), zero meta means "no block starts here", and the
// 64 KiB roots from top on are carved only when a root is first needed (carving them all
// would touch a page in every root).
type heap struct {
	mu    *sync.Mutex // the allocator's lock (its own in tests); guards meta, free, top, st and the links
	own   sync.Mutex
	arena []byte
	meta  []uint8 // per unit: heapNoBlock, or order+1, | heapUsedBit if used
	free  [heapMaxOrder + 1]int32
	top   int32 // first unit of the uncarved roots, which end at roots
	roots int32
	st    stats.Heap
}

// HeapMetaBytes is the bookkeeping a heap of size bytes reserves beside its arena.
func HeapMetaBytes(size int) int { return size >> heapUnitShift }

func newHeap(size int) *heap {
	size &^= heapUnit - 1
	h := &heap{}
	h.arena = newArena(h, size)
	h.meta = newArena(h, size>>heapUnitShift)
	h.mu = &h.own
	for i := range h.free {
		h.free[i] = heapNone
	}
	// The arena is the largest aligned blocks that fit; they are the roots that buddies
	// merge back into. Whole 64 KiB roots are carved on demand (top); the few smaller ones
	// of the tail now.
	units := len(h.meta)
	h.roots = int32(units &^ (1<<heapMaxOrder - 1))
	for u := int(h.roots); u < units; {
		k := heapMaxOrder
		for k > 0 && (u&(1<<k-1) != 0 || u+1<<k > units) {
			k--
		}
		h.push(int32(u), k)
		u += 1 << k
	}
	h.st.Avail = size
	return h
}

func (h *heap) link(u int32) []byte { return h.arena[int(u)<<heapUnitShift:] }
func (h *heap) next(u int32) int32  { return int32(binary.LittleEndian.Uint32(h.link(u))) }
func (h *heap) prev(u int32) int32  { return int32(binary.LittleEndian.Uint32(h.link(u)[4:])) }
func (h *heap) setNext(u, v int32)  { binary.LittleEndian.PutUint32(h.link(u), uint32(v)) }
func (h *heap) setPrev(u, v int32)  { binary.LittleEndian.PutUint32(h.link(u)[4:], uint32(v)) }

func (h *heap) push(u int32, k int) {
	h.meta[u] = uint8(k + 1)
	head := h.free[k]
	h.setNext(u, head)
	h.setPrev(u, heapNone)
	if head != heapNone {
		h.setPrev(head, u)
	}
	h.free[k] = u
}

func (h *heap) unlink(u int32, k int) {
	n, p := h.next(u), h.prev(u)
	if p != heapNone {
		h.setNext(p, n)
	} else {
		h.free[k] = n
	}
	if n != heapNone {
		h.setPrev(n, p)
	}
}

// pop takes a free block of order k off its list, or carves a root; heapNone if neither.
func (h *heap) pop(k int) int32 {
	if u := h.free[k]; u != heapNone {
		h.unlink(u, k)
		return u
	}
	if k == heapMaxOrder && h.top < h.roots {
		u := h.top
		h.top += 1 << heapMaxOrder
		return u
	}
	return heapNone
}

// orderFor returns the order of the smallest block holding n bytes.
func orderFor(n int) int {
	if n <= heapUnit {
		return 0
	}
	return bits.Len(uint((n - 1) >> heapUnitShift))
}

// alloc returns the first unit of a block of at least n bytes (n ≤ MaxRAMBlock) and its
// order, or -1 when no block is free.
func (h *heap) alloc(n int) (int32, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.allocLocked(n)
}

// allocLocked is alloc with h.mu held.
func (h *heap) allocLocked(n int) (int32, int) {
	want := orderFor(n)
	k := want
	u := h.pop(k)
	for u == heapNone && k < heapMaxOrder {
		k++
		u = h.pop(k)
	}
	if u == heapNone {
		h.st.Err++
		return -1, 0
	}
	for k > want { // split, keeping the lower half
		k--
		h.push(u+1<<k, k)
	}
	h.meta[u] = uint8(k+1) | heapUsedBit
	h.st.Used += heapUnit << k
	if h.st.Used > h.st.Max {
		h.st.Max = h.st.Used
	}
	return u, k
}

// allocLargestLocked takes the largest free block of order at most k and at least minK, whole,
// or returns -1. It is the fallback that lets a RAM allocation use a fragmented or small
// heap as a chain of blocks.
// h.mu must be held.
func (h *heap) allocLargestLocked(k, minK int) (int32, int) {
	for ; k >= minK; k-- {
		if u := h.pop(k); u != heapNone {
			h.meta[u] = uint8(k+1) | heapUsedBit
			h.st.Used += heapUnit << k
			if h.st.Used > h.st.Max {
				h.st.Max = h.st.Used
			}
			return u, k
		}
	}
	h.st.Err++
	return -1, 0
}

// release returns a block and merges it with free buddies.
func (h *heap) release(u int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.releaseLocked(u)
}

// releaseLocked is release with h.mu held.
func (h *heap) releaseLocked(u int32) {
	m := h.meta[u]
	if m&heapUsedBit == 0 {
		h.st.Illegal++
		panic("pbuf: heap free of a block that is not allocated")
	}
	k := int(m&^heapUsedBit) - 1
	h.st.Used -= heapUnit << k
	units := int32(len(h.meta))
	for k < heapMaxOrder {
		b := u ^ 1<<k
		parent := min(u, b)
		if parent+1<<(k+1) > units || h.meta[b] != uint8(k+1) {
			break
		}
		h.unlink(b, k)
		h.meta[b] = heapNoBlock
		h.meta[max(u, b)] = heapNoBlock
		u = parent
		k++
	}
	h.push(u, k)
}

func (h *heap) bytes(u int32, k int) []byte {
	o := int(u) << heapUnitShift
	return h.arena[o : o+heapUnit<<k : o+heapUnit<<k]
}

func (h *heap) stats() stats.Heap {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.st
}
