package conformance

// Loss recovery driven by crafted ACKs: fast retransmit and NewReno (RFC 5681 §3.2, RFC
// 6582), SACK-based recovery (RFC 6675), the retransmission timer (RFC 6298), RACK-TLP
// (RFC 8985).

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/wire"
)

// activeOpenRTT completes an active open whose SYN-ACK arrives rtt after the SYN, so the
// first RTT sample is rtt.
func (e *env) activeOpenRTT(po peerOpts, rtt time.Duration) *conn {
	e.t.Helper()
	c, connected := e.connect(nil)
	e.advance(rtt)
	e.drain()
	e.synAck(c, po)
	c.expectAck("handshake ACK")
	if *connected != 1 {
		e.t.Fatal("not connected")
	}
	c.pcb.SetNoDelay(true)
	return c
}

// flight writes n full segments and returns them as sent.
func (c *conn) flight(n int) []*rxSeg {
	c.e.t.Helper()
	mss := c.segSize()
	c.write(pattern(n*mss, byte(n)))
	segs := c.e.drain()
	if len(segs) != n {
		c.e.t.Fatalf("wrote %d segments' worth, %d segments sent: %v", n, len(segs), segs)
	}
	for i, s := range segs {
		if s.SeqNum != c.stackNxt || len(s.data) != mss {
			c.e.t.Fatalf("segment %d: %v, want seq %d len %d", i, s, c.stackNxt, mss)
		}
		c.stackNxt += uint32(len(s.data))
	}
	return segs
}

// segSize is the payload of a full segment: the smaller of the peer's MSS and ours, less
// the timestamp option when in use (RFC 6691).
func (c *conn) segSize() int {
	mss := c.e.routeMSS()
	if c.po.mss != 0 {
		mss = min(mss, int(c.po.mss))
	}
	if c.tsOK {
		mss -= 12
	}
	return mss
}

// ackSACK sends an ACK for ack carrying the SACK blocks (pairs of segment indexes, [from,
// to) over segs).
func (c *conn) ackSACK(ack uint32, segs []*rxSeg, blocks ...[2]int) {
	c.e.t.Helper()
	s := c.seg(wire.TCPFlagACK, nil)
	s.ack = ack
	for i, b := range blocks {
		s.opts.SACKBlocks[i] = wire.SACKBlock{Left: segs[b[0]].SeqNum, Right: segs[b[1]-1].end()}
	}
	s.opts.NumSACK = len(blocks)
	c.e.inject(s)
}

// RFC 5681 §3.2: the third duplicate ACK triggers the retransmission of the first
// unacknowledged segment; the first two send nothing when no new data is queued.
func TestFastRetransmitOnThreeDupACKs(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c := e.activeOpenRTT(plain(), 50*time.Millisecond)
		segs := c.flight(10)
		before := e.ext()
		c.ackTo(segs[1].SeqNum) // segment 0 arrived, 1 lost
		e.expectNothing("new ACK with everything sent")
		for i := 1; i <= 2; i++ {
			c.ackTo(segs[1].SeqNum)
			e.expectNothing(fmt.Sprintf("duplicate ACK %d", i))
		}
		c.ackTo(segs[1].SeqNum)
		r := e.next()
		if r.SeqNum != segs[1].SeqNum || len(r.data) != len(segs[1].data) {
			t.Fatalf("third duplicate ACK: got %v, want the retransmission of %v", r, segs[1])
		}
		x := e.ext()
		checkDelta(t, "FastRetransmits", before.FastRetransmits, x.FastRetransmits, 1)
		checkDelta(t, "RenoRecoveries", before.RenoRecoveries, x.RenoRecoveries, 1)
		checkAtLeast(t, "Retransmits", before.Retransmits, x.Retransmits, 1)
		if !c.pcb.Info().InRecovery {
			t.Error("Info.InRecovery false after a fast retransmit")
		}
		// More duplicate ACKs do not retransmit the same segment again.
		for range 3 {
			c.ackTo(segs[1].SeqNum)
		}
		for _, s := range e.drain() {
			if s.SeqNum == segs[1].SeqNum {
				t.Errorf("segment retransmitted again on further duplicate ACKs: %v", s)
			}
		}
		c.ackTo(c.stackNxt)
		e.drain()
		if c.pcb.Info().InRecovery {
			t.Error("still in recovery after everything was acknowledged")
		}
	})
}

// RFC 6582 §3.2 step 5: a partial ACK in recovery retransmits the next unacknowledged
// segment at once.
func TestNewRenoPartialACK(t *testing.T) {
	e := newEnv(t, v4)
	c := e.activeOpenRTT(plain(), 50*time.Millisecond)
	segs := c.flight(10)
	// Segments 1 and 5 lost.
	c.dupAcks(segs[1].SeqNum, 3)
	if r := e.next(); r.SeqNum != segs[1].SeqNum {
		t.Fatalf("fast retransmit: %v, want segment 1", r)
	}
	e.drain()
	c.ackTo(segs[5].SeqNum) // partial: up to the second hole
	var got bool
	for _, r := range e.drain() {
		if r.SeqNum == segs[5].SeqNum && len(r.data) == len(segs[5].data) {
			got = true
		} else if seqLT(r.SeqNum, segs[5].SeqNum) {
			t.Errorf("retransmitted acknowledged data: %v", r)
		}
	}
	if !got {
		t.Error("partial ACK did not retransmit segment 5 at once (RFC 6582 §3.2 step 5)")
	}
	if !c.pcb.Info().InRecovery {
		t.Error("a partial ACK ended recovery")
	}
	c.ackTo(c.stackNxt)
	e.drain()
}

// RFC 6675: SACK blocks drive recovery; exactly the holes are retransmitted, in order, and
// never a SACKed segment.
func TestSACKRecoveryRetransmitsHoles(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c := e.activeOpenRTT(modern(), 50*time.Millisecond)
		if !c.sackOK {
			t.Fatal("SACK not negotiated")
		}
		segs := c.flight(10)
		before := e.ext()
		una := segs[2].SeqNum
		var rtx []int
		idx := func(s *rxSeg) int {
			for i, g := range segs {
				if g.SeqNum == s.SeqNum {
					return i
				}
			}
			t.Fatalf("unexpected segment %v", s)
			return -1
		}
		collect := func() {
			for _, s := range e.drain() {
				rtx = append(rtx, idx(s))
			}
		}
		// Segments 2 and 5 lost.
		c.ackTo(una)
		collect()
		c.ackSACK(una, segs, [2]int{3, 4})
		collect()
		c.ackSACK(una, segs, [2]int{3, 5})
		collect()
		c.ackSACK(una, segs, [2]int{6, 7}, [2]int{3, 5})
		collect()
		if len(rtx) == 0 || rtx[0] != 2 {
			t.Fatalf("after three duplicate ACKs with SACK: retransmitted %v, want segment 2 first", rtx)
		}
		c.ackSACK(una, segs, [2]int{6, 8}, [2]int{3, 5})
		collect()
		c.ackSACK(una, segs, [2]int{6, 9}, [2]int{3, 5})
		collect()
		seen := map[int]int{}
		for _, i := range rtx {
			seen[i]++
		}
		for i, n := range seen {
			switch {
			case i == 2 || i == 5:
				if n != 1 {
					t.Errorf("segment %d retransmitted %d times, want once", i, n)
				}
			case i == 9: // a rescue retransmission of the tail is allowed
			default:
				t.Errorf("segment %d retransmitted (SACKed or acknowledged): all retransmissions %v", i, rtx)
			}
		}
		if seen[5] == 0 {
			t.Errorf("segment 5 never retransmitted although 3 segments above it were SACKed: %v", rtx)
		}
		x := e.ext()
		checkDelta(t, "SACKRecoveries", before.SACKRecoveries, x.SACKRecoveries, 1)
		checkAtLeast(t, "SACKBlocksRecv", before.SACKBlocksRecv, x.SACKBlocksRecv, 5)
		if x.RenoRecoveries != before.RenoRecoveries {
			t.Error("a SACK connection counted a Reno recovery")
		}
		c.ackTo(c.stackNxt)
		e.drain()
	})
}

// retransmissions advances the clock in 10 ms steps for up to max and returns the times
// (since now) at which segment s was sent again, stopping when the connection dies.
func (c *conn) retransmissions(s *rxSeg, max time.Duration) []time.Duration {
	c.e.t.Helper()
	var at []time.Duration
	t0 := c.e.elapsed()
	for c.e.elapsed()-t0 < max && len(c.rec.errs) == 0 {
		c.e.advance(10 * time.Millisecond)
		for _, r := range c.e.drain() {
			if r.Flags.Has(wire.TCPFlagRST) {
				continue
			}
			if r.SeqNum != s.SeqNum {
				c.e.t.Fatalf("while waiting for retransmissions of %v: %v", s, r)
			}
			at = append(at, r.at-t0)
		}
	}
	return at
}

// RFC 6298 §5.5: each expiry doubles the RTO (up to TCPMaxRTO); after TCPMaxRtx
// retransmissions the connection is dropped with errs.Timeout.
func TestRTOBackoffThenTimeout(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c := e.activeOpenRTT(plain(), 50*time.Millisecond)
		segs := c.flight(1)
		before := e.ext()
		at := c.retransmissions(segs[0], 5*time.Minute)
		x := e.ext()
		tlps := int(x.TLPs - before.TLPs)
		if len(at)-tlps != e.o.TCPMaxRtx {
			t.Errorf("%d retransmissions (%d TLPs) at %v, want TCPMaxRtx = %d RTO retransmissions", len(at), tlps, at, e.o.TCPMaxRtx)
		}
		// Intervals between RTO retransmissions double.
		for i := tlps + 1; i+1 < len(at); i++ {
			prev, cur := at[i]-at[i-1], at[i+1]-at[i]
			want := min(2*prev, e.o.TCPMaxRTO)
			if cur < want-30*time.Millisecond || cur > want+30*time.Millisecond {
				t.Errorf("retransmission intervals do not double: %v then %v (times %v)", prev, cur, at)
			}
		}
		if !errors.Is(c.rec.err(), errs.Timeout) {
			t.Fatalf("ErrFunc got %v, want errs.Timeout", c.rec.errs)
		}
		checkAtLeast(t, "RTOs", before.RTOs, x.RTOs, uint64(e.o.TCPMaxRtx))
		checkDelta(t, "Timeouts", before.Timeouts, x.Timeouts, 1)
		e.expectConns(0, "after the timeout")
	})
}

// The first RTO is at least TCPMinRTO (RFC 6298 §2.4) and, for a fresh connection with a
// 50 ms RTT, close to it: RFC 6298 gives max(SRTT + 4·RTTVAR, TCPMinRTO) = 200 ms, Linux's
// SRTT + max(4·RTTVAR, TCPMinRTO) 250 ms; either is fine, a multiple of it is not.
func TestRTOFirstExpiryUsesMinRTO(t *testing.T) {
	e := newEnv(t, v4)
	c := e.activeOpenRTT(plain(), 50*time.Millisecond)
	segs := c.flight(1)
	before := e.ext()
	at := c.retransmissions(segs[0], 3*time.Second)
	if len(at) == 0 {
		t.Fatal("no retransmission in 3 s")
	}
	first := at[0]
	if e.ext().TLPs != before.TLPs && len(at) > 1 {
		first = at[1] - at[0] // the first was a tail loss probe; the RTO is re-armed after it
	}
	if first < e.o.TCPMinRTO-10*time.Millisecond || first > e.o.TCPMinRTO+e.o.TCPMinRTO/2 {
		t.Errorf("first RTO retransmission after %v (all %v), want about TCPMinRTO = %v", first, at, e.o.TCPMinRTO)
	}
	if rto := c.pcb.Info().RTO; rto < e.o.TCPMinRTO {
		t.Errorf("Info.RTO %v below TCPMinRTO %v", rto, e.o.TCPMinRTO)
	}
}

// After a backoff, an ACK of new data ends it: the next segment's first retransmission comes
// after the normal RTO again, not the backed-off one.
func TestRTOBackoffResetsOnNewACK(t *testing.T) {
	e := newEnv(t, v4, func(o *opt.Options) { o.TCPMaxRtx = 12 })
	c := e.activeOpenRTT(plain(), 50*time.Millisecond)
	segs := c.flight(1)
	at := c.retransmissions(segs[0], 3*time.Second)
	if len(at) < 3 {
		t.Fatalf("retransmissions at %v in 3 s, want at least 3", at)
	}
	base := at[0]
	backedOff := c.pcb.Info().RTO
	c.ackTo(c.stackNxt)
	e.drain()
	if in := c.pcb.Info(); in.RTO >= backedOff && backedOff > 2*e.o.TCPMinRTO {
		t.Errorf("Info.RTO still %v after a new ACK (backed off: %v)", in.RTO, backedOff)
	}
	segs = c.flight(1)
	at2 := c.retransmissions(segs[0], 3*time.Second)
	if len(at2) == 0 {
		t.Fatal("no retransmission of the second segment")
	}
	if at2[0] > 2*base+20*time.Millisecond {
		t.Errorf("first retransmission of new data after %v, before the backoff it took %v: the backoff (or a Karn-violating RTT sample) survived the new ACK", at2[0], base)
	}
	c.ackTo(c.stackNxt)
}

// RFC 8985 §7: with data outstanding and no ACK, a tail loss probe goes out after PTO =
// 2·SRTT, well before the RTO.
func TestTLPProbeAfterPTO(t *testing.T) {
	bothFamilies(t, func(t *testing.T, f family) {
		e := newEnv(t, f, func(o *opt.Options) { o.TCPMinRTO, o.TCPInitRTO = time.Second, time.Second })
		const rtt = 100 * time.Millisecond
		c := e.activeOpenRTT(modern(), rtt)
		// A second RTT sample of 100 ms.
		c.flight(1)
		e.advance(rtt)
		c.ack()
		e.drain()
		segs := c.flight(5)
		before := e.ext()
		t0 := e.elapsed()
		waited := e.advanceUntil(2*time.Second, 5*time.Millisecond)
		if e.pending() == 0 {
			t.Fatal("nothing sent in 2 s")
		}
		p := e.next()
		if p.SeqNum != segs[4].SeqNum {
			t.Errorf("probe %v, want the last segment %v", p, segs[4])
		}
		if d := p.at - t0; d < 2*rtt-20*time.Millisecond || d > 2*rtt+rtt {
			t.Errorf("probe after %v (waited %v), want PTO ≈ 2·SRTT = %v (RTO is %v)", d, waited, 2*rtt, c.pcb.Info().RTO)
		}
		checkDelta(t, "TLPs", before.TLPs, e.ext().TLPs, 1)
		c.ackTo(c.stackNxt)
		e.drain()
	})
}

// RFC 8985 §6: RACK marks a segment lost once a segment sent after it is delivered and a
// reordering window has passed — with a single SACK, where DupThresh would still wait.
func TestRACKDetectsLossWithOneSACK(t *testing.T) {
	e := newEnv(t, v4, func(o *opt.Options) { o.TCPMinRTO, o.TCPInitRTO = time.Second, time.Second })
	const rtt = 100 * time.Millisecond
	c := e.activeOpenRTT(modern(), rtt)
	segs := c.flight(4)
	t0 := segs[0].at
	e.advance(rtt)
	before := e.ext()
	c.ackSACK(segs[1].SeqNum, segs, [2]int{3, 4}) // 0 delivered, 1 and 2 missing, 3 SACKed
	var rtx []*rxSeg
	for e.elapsed()-t0 < 900*time.Millisecond && len(rtx) < 2 {
		for _, s := range e.drain() {
			switch s.SeqNum {
			case segs[1].SeqNum, segs[2].SeqNum:
				rtx = append(rtx, s)
			case segs[0].SeqNum:
				t.Errorf("retransmitted acknowledged segment 0: %v", s)
			}
		}
		e.advance(5 * time.Millisecond)
	}
	if len(rtx) < 2 {
		t.Fatalf("RACK: segments 1 and 2 not retransmitted within 900 ms (before the 1 s RTO); got %v", rtx)
	}
	for _, s := range rtx {
		if d := s.at - t0; d < rtt {
			t.Errorf("retransmitted %v %v after sending, before the ACK that revealed the loss", s, d)
		}
	}
	checkAtLeast(t, "RACKLosses", before.RACKLosses, e.ext().RACKLosses, 2)
	c.ackTo(c.stackNxt)
	e.drain()
}

// SACK blocks outside [SND.UNA, SND.NXT] are ignored (RFC 6675 §4 / RFC 2018 §3: blocks
// must lie in the sent data), a D-SACK block below the ACK is counted and harmless (RFC
// 2883), and nothing is retransmitted because of either.
func TestSACKBlocksOutsideWindowIgnored(t *testing.T) {
	e := newEnv(t, v4)
	c := e.activeOpenRTT(modern(), 50*time.Millisecond)
	segs := c.flight(4)
	c.ackTo(segs[1].SeqNum)
	for _, blk := range []wire.SACKBlock{
		{Left: c.stackNxt + 1000, Right: c.stackNxt + 3000}, // beyond SND.NXT
		{Left: segs[3].SeqNum, Right: c.stackNxt + 5000},    // straddles SND.NXT
		{Left: segs[2].end(), Right: segs[2].SeqNum},        // reversed
		{Left: c.iss - 50000, Right: c.iss - 40000},         // far below SND.UNA
	} {
		s := c.seg(wire.TCPFlagACK, nil)
		s.ack = segs[1].SeqNum
		s.opts.NumSACK, s.opts.SACKBlocks[0] = 1, blk
		e.inject(s)
	}
	for _, r := range e.drain() {
		t.Errorf("bogus SACK blocks made the stack send %v", r)
	}
	// D-SACK: the first block reports a duplicate of segment 0 (below the ACK).
	before := e.ext()
	s := c.seg(wire.TCPFlagACK, nil)
	s.ack = segs[1].SeqNum
	s.opts.NumSACK, s.opts.SACKBlocks[0] = 1, wire.SACKBlock{Left: segs[0].SeqNum, Right: segs[0].end()}
	e.inject(s)
	checkDelta(t, "DSACKRecv", before.DSACKRecv, e.ext().DSACKRecv, 1)
	for _, r := range e.drain() {
		t.Errorf("a D-SACK made the stack send %v", r)
	}
	if c.pcb.Info().InRecovery {
		t.Error("bogus SACK blocks started a recovery")
	}
	c.ackTo(c.stackNxt)
	e.drain()
}

// RFC 3042 (limited transmit): the first two duplicate ACKs each release one new segment when
// data is waiting and the receive window allows.
func TestLimitedTransmit(t *testing.T) {
	e := newEnv(t, v4)
	c := e.activeOpenRTT(plain(), 50*time.Millisecond)
	mss := c.segSize()
	c.write(pattern(14*mss, 1)) // 10 go out (initial window), 4 wait
	segs := e.drain()
	if len(segs) != e.o.TCPInitCwnd {
		t.Fatalf("first flight %d segments", len(segs))
	}
	for _, s := range segs {
		c.stackNxt = s.end()
	}
	c.ackTo(segs[1].SeqNum)
	e.drain() // the new ACK releases more data
	next := c.stackNxt
	for _, s := range e.drain() {
		next = s.end()
	}
	_ = next
	for i := 1; i <= 2; i++ {
		c.ackTo(segs[1].SeqNum)
		got := e.drain()
		if len(got) != 1 || len(got[0].data) == 0 || seqLT(got[0].SeqNum, segs[len(segs)-1].end()) {
			t.Errorf("duplicate ACK %d: sent %v, want one new segment (RFC 3042)", i, got)
		}
	}
}
