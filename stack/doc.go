// Package stack ties wisp together: a Stack owns the options, the pools and heap, the
// timers, the netifs and routes, and the core lock every entry point takes.
//
// Layer: stack (imports everything above it: opt, stats, clock, errs, wire, memp, pbuf, link,
// ip, transport). Concurrency: every exported method of Stack and Netif is safe for
// concurrent use; each takes the core lock for its duration. Code that is already in core
// context (protocol callbacks, timers, Callback functions) must use the ip/transport layers
// directly and must not call these methods, which would deadlock.
//
// The core: one mutex. Links deliver batches through DeliverPackets, which takes the lock,
// runs the whole batch through the protocols and, before releasing it, flushes the frames
// the batch produced to the links in batches (so a TCP ACK storm becomes one WritePackets
// per link). Timers and Callback go through the same lock, so protocol code never races.
//
// A stack with several cores (Config.Cores, see Core) has one such lock per core; Stack's
// own methods and Lock/Callback are core 0's, which also holds the netifs, routes, UDP and
// raw PCBs; TCP connections live on the core their 4-tuple hashes to.
package stack
