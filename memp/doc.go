// Package memp provides wisp's fixed pools (lwIP's memp): typed pools of a size fixed when
// the stack starts. Get beyond capacity returns nil and counts an error; a pool never grows
// past its size. Each pool has an ID whose lwIP name (TCP_PCB, PBUF_POOL, ...) is used in
// stats.
//
// Small pools of pointer-free elements make all their elements at New. Pools whose
// elements hold pointers (PCBs, pbuf headers, multicast groups, queue nodes) are lazy
// (NewLazy, NewLazyShared: like lwIP's MEMP_MEM_MALLOC but still bounded): they make
// elements in chunks as their high-water mark rises and keep them, so an idle stack does
// not hold thousands of elements in the Go heap for the collector to scan. Per-packet pools
// free by index (PutIndex), which costs the same in either kind. The budget reserves every
// pool at its full size either way.
//
// Layer: memp (imports stats). Pools are safe for concurrent use: a pool's own small lock
// plays the part of lwIP's SYS_ARCH_PROTECT, because pbufs may be freed outside the core (by
// a link's delivery goroutine, or by a reader releasing a zero-copy buffer). An owner of
// several pools can make them share one lock (NewShared) and take it once for a batch of
// operations (Lock, GetLocked, PutLocked, Unlock): pbuf's allocator does, for its header
// pools and heap.
//
// wisp has no SYS_TIMEOUT pool: its timers are embedded in the objects that own them
// (clock.Timeout), so arming a timer can neither allocate nor fail.
package memp
