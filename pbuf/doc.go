// Package pbuf implements wisp's packet buffers, lwIP's pbuf chains in Go.
//
// A packet is a chain of *Pbuf linked by Next, with the invariant written in lwIP's words:
// for every pbuf p in a chain, p.TotLen() == p.Len() + p.Next().TotLen(), and the last one
// has TotLen() == Len(). A chain is one packet; wisp never queues packets by linking chains
// (queues hold chains in their own structures).
//
// Kinds, as in lwIP:
//   - POOL: fixed chunks of PbufPoolBufSize bytes from the PBUF_POOL pool; received frames.
//   - RAM: one contiguous block from the stack's heap of MemSize bytes; outgoing data.
//   - REF: points at caller memory (zero-copy send); the caller's Releaser hears when wisp
//     is done with it.
//   - ROM: points at memory that never changes (constants); nothing is told on release.
//
// Payload bytes live in arenas allocated once and holding no pointers, so the garbage
// collector never scans packet data and an allocation can never grow memory. On Linux the
// arenas are anonymous mappings outside the Go heap (arena_linux.go), so a stack's
// reservation neither moves the collector's heap goal nor costs memory until it is used. Pbuf headers
// come from lazy memp pools sharing the allocator's lock: made as the high-water mark rises,
// and freed by the index each header keeps (no search), so an idle stack holds few headers.
//
// Header room: Alloc reserves room in front of the payload for the headers of the layers
// below (Layer), so AddHeader prepends a header without copying.
//
// Ownership: a *Pbuf reference is owned by exactly one holder, who must Free it or pass it
// on. Every function that takes or returns a pbuf says which. Ref adds a reference (to the
// first pbuf only, as lwIP's pbuf_ref); Free drops one and releases every pbuf of the chain
// whose count reaches zero.
//
// Layer: pbuf (imports memp, stats, errs). Allocation and Free are safe for concurrent use;
// a given chain is used by one goroutine at a time unless it is only read.
package pbuf
