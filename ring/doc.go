// Package ring is wisp's one bounded FIFO: Ring, a generic queue of at most a fixed number
// of elements, oldest first. The link queues (link/internal/fifo), the WireGuard device's
// outbound queue and netconn's mailboxes (TCP receive queue, datagram mailbox, accept
// queue) are all Rings.
//
// A ring made by New holds all its slots from the start; one made by NewLazy allocates them
// as it fills (4, then doubling up to its capacity) and keeps them, for queues that are
// usually short but may be long, one per connection. Once the slots exist, Push and Pop
// allocate nothing. A Ring never grows past its capacity: Push on a full ring refuses.
//
// Layer: base (imports nothing but the standard library). Concurrency: a Ring is not safe
// for concurrent use and has no locking of its own; its owner guards it with its own mutex
// and does its own wake-ups. A Ring is a value: keep it in a field and do not copy it.
package ring
