package conformance

// Congestion control as seen on the wire: the initial window (RFC 6928), slow start (RFC
// 5681 §3.1), the loss window after an RTO (RFC 5681 §3.1: "LW = 1 full-sized segment"),
// and what counts as a duplicate ACK (RFC 5681 §2).

import (
	"testing"
	"time"

	"github.com/wispstack/wisp/wire"
)

// The first flight is TCPInitCwnd segments; each ACK in slow start releases what it acked
// plus growth.
func TestInitialWindowAndSlowStart(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c := e.activeOpenRTT(plain(), 20*time.Millisecond)
		mss := c.segSize()
		c.write(pattern(30*mss, 1))
		first := e.drain()
		if len(first) != e.o.TCPInitCwnd {
			t.Fatalf("first flight of %d segments, want TCPInitCwnd = %d", len(first), e.o.TCPInitCwnd)
		}
		for _, s := range first {
			c.stackNxt = s.end()
		}
		e.advance(20 * time.Millisecond)
		c.ackTo(first[1].end()) // two segments acknowledged
		next := e.drain()
		// 2 freed + growth of 1 (RFC 5681: min(N, SMSS)) or 2 (RFC 3465 L=2).
		if len(next) < 3 || len(next) > 4 {
			t.Errorf("an ACK of 2 segments in slow start released %d segments, want 3 or 4", len(next))
		}
		if cw := c.pcb.Info().Cwnd; cw < (e.o.TCPInitCwnd+1)*mss || cw > (e.o.TCPInitCwnd+2)*mss {
			t.Errorf("Cwnd %d after acknowledging 2 segments from %d, want %d..%d", cw, e.o.TCPInitCwnd*mss, (e.o.TCPInitCwnd+1)*mss, (e.o.TCPInitCwnd+2)*mss)
		}
	})
}

// After an RTO the loss window is one segment: only the first unacknowledged segment is
// retransmitted; each ACK then grows the window again (slow start from 1).
func TestRTOLossWindowIsOneSegment(t *testing.T) {
	e := newEnv(t, v4)
	c := e.activeOpenRTT(plain(), 20*time.Millisecond)
	segs := c.flight(8)
	before := e.ext()
	var after []*rxSeg
	for e.elapsed() < 5*time.Second {
		e.advance(10 * time.Millisecond)
		if e.ext().RTOs > before.RTOs {
			after = e.drain()
			break
		}
		e.drain() // a TLP before the RTO is allowed
	}
	if len(after) != 1 || after[0].SeqNum != segs[0].SeqNum {
		t.Fatalf("after the RTO: sent %v, want only the first segment %v", after, segs[0])
	}
	if cw := c.pcb.Info().Cwnd; cw != c.segSize() {
		t.Errorf("Cwnd %d after an RTO, want one segment (%d)", cw, c.segSize())
	}
	c.ackTo(segs[1].SeqNum)
	next := e.drain()
	if len(next) != 2 || next[0].SeqNum != segs[1].SeqNum || next[1].SeqNum != segs[2].SeqNum {
		t.Errorf("ACK after the RTO retransmission released %v, want segments 1 and 2", next)
	}
	if ss := c.pcb.Info().Ssthresh; ss > 4*c.segSize() || ss < 2*c.segSize() {
		t.Errorf("Ssthresh %d after an RTO with 8 segments in flight, want max(FlightSize/2, 2·SMSS) = %d", ss, 4*c.segSize())
	}
}

// RFC 5681 §2: an ACK that changes the window is not a duplicate; three of them trigger
// nothing.
func TestWindowUpdatesAreNotDupACKs(t *testing.T) {
	e := newEnv(t, v4)
	c := e.activeOpenRTT(plain(), 20*time.Millisecond)
	segs := c.flight(6)
	c.ackTo(segs[1].SeqNum)
	for i := range 3 {
		c.wnd = uint16(30000 + 1000*i)
		c.ackTo(segs[1].SeqNum)
	}
	for _, s := range e.drain() {
		if s.SeqNum == segs[1].SeqNum {
			t.Fatalf("window updates were taken for duplicate ACKs: fast retransmit %v", s)
		}
	}
	if c.pcb.Info().InRecovery {
		t.Error("in recovery after window updates")
	}
	// ACKs carrying data are not duplicates either.
	for range 3 {
		s := c.seg(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("d"))
		s.ack = segs[1].SeqNum
		e.inject(s)
		c.peerNxt++
	}
	for _, s := range e.drain() {
		if s.SeqNum == segs[1].SeqNum && len(s.data) > 0 {
			t.Fatalf("ACKs with data were taken for duplicate ACKs: %v", s)
		}
	}
}

// Retransmitted bytes are the original bytes.
func TestRetransmissionContent(t *testing.T) {
	e := newEnv(t, v6)
	c := e.activeOpenRTT(plain(), 20*time.Millisecond)
	segs := c.flight(4)
	c.dupAcks(segs[1].SeqNum, 3)
	r := e.next()
	if r.SeqNum != segs[1].SeqNum || string(r.data) != string(segs[1].data) {
		t.Fatalf("retransmission %v differs from the original %v", r, segs[1])
	}
	e.drain()
}
