package conformance

// F-RTO (RFC 5682 §3.2, SACK-enhanced, as Linux runs it): after a retransmission timeout
// the first ACKs decide whether it was spurious. A peer with SACK and without timestamps,
// so that Eifel (RFC 3522) cannot decide first.

import (
	"testing"
	"time"

	"github.com/wispstack/wisp/wire"
)

// frtoSetup opens a connection with a 50 ms RTT, queues 30 segments (10 go out, the
// initial window) and lets the retransmission timer fire once with no ACK (a tail loss
// probe of new data may go out first). It returns the segments of the first flight, the
// cwnd before the timeout, and the segments sent until the timeout's retransmission.
func frtoSetup(t *testing.T, e *env) (c *conn, segs []*rxSeg, cwnd int) {
	t.Helper()
	po := modern()
	po.ts = false
	c = e.activeOpenRTT(po, 50*time.Millisecond)
	if !c.sackOK || c.tsOK {
		t.Fatalf("want SACK without timestamps (sack %v ts %v)", c.sackOK, c.tsOK)
	}
	mss := c.segSize()
	c.write(pattern(30*mss, 7))
	segs = e.drain()
	if len(segs) != 10 {
		t.Fatalf("first flight: %d segments, want the initial window of 10", len(segs))
	}
	cwnd = c.pcb.Info().Cwnd
	for _, s := range segs {
		c.stackNxt = s.end()
	}
	// No ACK: a delay spike (or an outage). Wait for the RTO's retransmission of the head.
	for range 300 {
		e.advance(5 * time.Millisecond)
		for _, r := range e.drain() {
			if r.SeqNum == segs[0].SeqNum {
				if e.pending() != 0 {
					t.Fatalf("the timeout sent more than the head: %v", e.drain())
				}
				return c, segs, cwnd
			}
			if seqLT(r.SeqNum, segs[9].end()) {
				t.Fatalf("before the timeout: retransmission %v", r)
			}
			c.stackNxt = r.end() // a tail loss probe of new data
		}
	}
	t.Fatal("no retransmission timeout in 1.5 s")
	return
}

// A delay spike longer than the RTO and no loss: the first ACK (of the original head) is
// answered with new data, not with retransmissions; the next ACK covers a segment sent only
// once, which proves the timeout spurious: the window is restored and nothing of the first
// flight is sent again.
func TestFRTOSpuriousTimeout(t *testing.T) {
	e := newEnv(t, v4)
	c, segs, cwnd := frtoSetup(t, e)
	before := e.ext()
	c.ackTo(segs[1].SeqNum) // the original head's ACK, late
	sent := e.drain()
	if len(sent) == 0 || len(sent) > 2 {
		t.Fatalf("first ACK after the timeout: sent %v, want one or two new segments (F-RTO step 2b)", sent)
	}
	for _, r := range sent {
		if seqLT(r.SeqNum, c.stackNxt) {
			t.Fatalf("first ACK after the timeout: retransmitted %v (go-back-N), want new data", r)
		}
		c.stackNxt = r.end()
	}
	c.ackTo(segs[2].SeqNum) // segment 1, never retransmitted: the timeout was spurious
	x := e.ext()
	checkDelta(t, "SpuriousRTOs", before.SpuriousRTOs, x.SpuriousRTOs, 1)
	checkDelta(t, "Undos", before.Undos, x.Undos, 1)
	if in := c.pcb.Info(); in.Cwnd < cwnd || in.InRecovery {
		t.Errorf("after the spurious timeout: cwnd %d (before it %d), in recovery %v; want the window restored", in.Cwnd, cwnd, in.InRecovery)
	}
	// The rest of the first flight's ACKs arrive; nothing of it is ever sent again.
	for i := 3; i <= 10; i++ {
		if i < 10 {
			c.ackTo(segs[i].SeqNum)
		} else {
			c.ackTo(segs[9].end())
		}
		for _, r := range e.drain() {
			if seqLT(r.SeqNum, segs[9].end()) {
				t.Fatalf("after the spurious timeout: retransmitted %v", r)
			}
			c.stackNxt = seqMax(c.stackNxt, r.end())
		}
	}
	checkDelta(t, "Retransmits", before.Retransmits, e.ext().Retransmits, 0)
	c.ackTo(c.stackNxt)
	e.drain()
}

// An outage that lost the whole flight: the first ACK (of the retransmitted head) is
// answered with new data; the peer then SACKs that new data with the first flight still
// missing, so the loss was real: conventional recovery retransmits the flight, and the
// window stays reduced.
func TestFRTORealLoss(t *testing.T) {
	e := newEnv(t, v4)
	c, segs, cwnd := frtoSetup(t, e)
	before := e.ext()
	c.ackTo(segs[1].SeqNum) // the retransmitted head arrived
	sent := e.drain()
	if len(sent) == 0 || len(sent) > 2 {
		t.Fatalf("first ACK after the timeout: sent %v, want one or two new segments (F-RTO step 2b)", sent)
	}
	if seqLT(sent[0].SeqNum, c.stackNxt) {
		t.Fatalf("first ACK after the timeout: retransmitted %v, want new data", sent[0])
	}
	for _, r := range sent {
		c.stackNxt = r.end()
	}
	// A duplicate ACK SACKing the new data: segments 1-9 really are lost.
	s := c.seg(wire.TCPFlagACK, nil)
	s.ack = segs[1].SeqNum
	s.opts.SACKBlocks[0] = wire.SACKBlock{Left: sent[0].SeqNum, Right: sent[0].end()}
	s.opts.NumSACK = 1
	c.e.inject(s)
	got := e.drain()
	if len(got) == 0 || got[0].SeqNum != segs[1].SeqNum {
		t.Fatalf("after the SACK of new data: sent %v, want the retransmission of %v", got, segs[1])
	}
	x := e.ext()
	checkDelta(t, "SpuriousRTOs", before.SpuriousRTOs, x.SpuriousRTOs, 0)
	checkDelta(t, "Undos", before.Undos, x.Undos, 0)
	if in := c.pcb.Info(); in.Cwnd >= cwnd || !in.InRecovery {
		t.Errorf("real loss: cwnd %d (before the timeout %d), in recovery %v; want it reduced, in recovery", in.Cwnd, cwnd, in.InRecovery)
	}
	// Recovery completes: everything acknowledged.
	for range 20 {
		c.ackTo(c.stackNxt)
		for _, r := range e.drain() {
			c.stackNxt = seqMax(c.stackNxt, r.end())
		}
		if c.pcb.Info().Unacked == 0 {
			break
		}
	}
}
