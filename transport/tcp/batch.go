package tcp

// ACKs for a batch of segments delivered together.
//
// A link that hands the stack several frames at once (a TUN or WireGuard device's batch, a
// pipe's queue, a gVisor endpoint's burst) delivers them in one DeliverPackets, which the
// stack brackets with BeginBatch and EndBatch. Within a batch, the ACK that RFC 5681 §4.2's
// every-second-full-sized-segment rule owes a connection is sent once, at the end, covering
// every in-order segment of the batch, as Linux acknowledges a burst merged by GRO. ACKs
// that carry news are not deferred: out-of-order segments (duplicate ACKs with SACK),
// filled holes, FINs and window updates still go at once. One ACK never covers more than
// ackStretch full-sized segments, so a sender whose slow start counts at most RFC 9406's
// L = 8 segments per ACK still doubles its window each round trip.
//
// Fewer ACKs matter most where each packet is dear: through a WireGuard tunnel every ACK
// is encrypted, sent, decrypted and held in a 64 KiB buffer like any data packet.

const (
	// ackStretch is the most full-sized segments one batched ACK acknowledges.
	ackStretch = 8
	// ackBatchMax bounds the connections owed an ACK within one batch; beyond it they are
	// ACKed at once.
	ackBatchMax = 64
)

// ackRef is a connection owed an ACK at the end of the batch, and its generation then.
type ackRef struct {
	c   *PCB
	gen uint32
}

// BeginBatch starts an input batch: segments until EndBatch arrived together. Core context.
func (t *Proto) BeginBatch() {
	t.timers.AssertCore()
	t.batching = true
}

// EndBatch ends an input batch and sends the ACKs it deferred. Core context.
func (t *Proto) EndBatch() {
	t.timers.AssertCore()
	t.batching = false
	if len(t.ackq) == 0 {
		return
	}
	held := t.holdClock()
	for i, r := range t.ackq {
		t.ackq[i] = ackRef{}
		// A connection that sent an ACK since (with data, a window update) or died is
		// skipped; fAckBatch was cleared with it.
		if c := r.c; c.alive(r.gen) && c.flags&fAckBatch != 0 {
			c.enter()
			c.flags &^= fAckBatch
			c.ackNow()
			c.output()
			c.notifyLowat(r.gen)
			c.leave(r.gen)
			t.checkPCB(c)
		}
	}
	t.ackq = t.ackq[:0]
	t.releaseClock(held)
}

// deferAck queues c's ACK for the end of the batch; false when the queue is full (the
// caller ACKs at once).
func (c *PCB) deferAck() bool {
	if c.flags&fAckBatch != 0 {
		return true
	}
	t := c.t
	if len(t.ackq) == cap(t.ackq) {
		return false
	}
	c.flags |= fAckBatch
	t.ackq = append(t.ackq, ackRef{c: c, gen: c.gen()})
	return true
}
