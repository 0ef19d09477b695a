// Package pipe is an in-memory pair of links: what one End writes, the other End's
// dispatcher receives. It is the wire of simulations and tests.
//
// Each direction is a bounded queue from link/internal/fifo. In async mode one delivery
// goroutine per direction takes up to link.MaxBatch frames at a time, copies each into a
// POOL chain from the receiving dispatcher's AllocRx (a frame belongs to the sender's
// allocator; the receiver never holds the sender's memory), frees the sender's pbuf and
// calls DeliverPackets once per batch. In sync mode there is no goroutine: Flush delivers in
// the caller's goroutine, for deterministic tests.
//
//	End A ──WritePackets──▶ [queue A→B] ──deliver──▶ B's Dispatcher
//	A's Dispatcher ◀──deliver── [queue B→A] ◀──WritePackets── End B
//
// Layer: link (imports link, link/internal/fifo, pbuf). Ends are safe for concurrent use.
// Close must not be called from inside DeliverPackets (it waits for the delivery in
// progress).
package pipe
