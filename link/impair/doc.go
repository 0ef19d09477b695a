// Package impair wraps a link and degrades it the way real networks do, deterministically:
// random and bursty (Gilbert-Elliott) loss, duplication, reordering, delay with jitter,
// single-bit corruption, a token-bucket rate limit with a bounded queue, and an MTU clamp.
// Each direction has its own settings and its own seeded generator, so the same seed and the
// same traffic give the same decisions. Held frames are released by a timer on the injected
// clock.Clock: with clock.Fake a simulation is fully deterministic.
//
//	WritePackets ─▶ [TX: mtu, loss, corrupt, dup, rate, delay/reorder] ─▶ inner.WritePackets
//	Dispatcher   ◀─ [RX: mtu, loss, corrupt, dup, rate, delay/reorder] ◀─ inner delivery
//
// Layer: link (imports link, pbuf, clock, errs). A Link is safe for concurrent use; each
// direction has one mutex, held while it hands frames on (so frames leave in order). Close
// must not be called from inside DeliverPackets.
package impair
