// Package fifo is the queue behind link/pipe and link/loopback: a bounded ring of frames
// from writers to one receiving link.Dispatcher, with an optional delivery goroutine (async
// mode) and Drain for delivery in the caller's goroutine (sync mode).
//
// Delivery takes up to link.MaxBatch frames at a time, copies each into a POOL chain from
// the dispatcher's AllocRx (a written frame belongs to the writer's allocator and layers,
// and may be a REF pbuf of user memory; the receiver never holds it), frees the written
// pbuf and calls DeliverPackets once per batch. Frames refused, or dropped for want of a
// dispatcher or an rx buffer, are freed and counted.
//
//	Put ──▶ [ring under mu] ──take──▶ copy into AllocRx chains ──▶ DeliverPackets
//
// Layer: link (imports link, pbuf, errs, ring); internal to link/... so only links use it.
// Concurrency: a Queue is safe for concurrent use. Deliveries (the goroutine, Drain,
// DrainRounds, Close) are serialized by one mutex and DeliverPackets is called with it held,
// so a Drain from inside DeliverPackets returns 0 instead of deadlocking, and Close must not
// be called from inside DeliverPackets (it waits for the delivery in progress).
package fifo
