package conformance

// RACK-TLP (RFC 8985) walked through with crafted ACKs on the fake clock: the reordering
// detection of §6.2 step 3 and the TLP episode of §7.4.

import (
	"testing"
	"time"

	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/wire"
)

// RFC 8985 §6.2 step 3 walks the newly delivered segments in ascending order of end_seq:
// an ACK that cumulatively acknowledges segments whose own ACKs were lost, and SACKs
// segments above a hole, is not reordering. With DupThresh segments SACKed and no
// reordering seen, RACK.reo_wnd is 0 (step 4) and the hole is lost at once (§3.3's
// example: the loss is detected on the first ACK above it once RACK.rtt has passed).
func TestRACKLostACKsAreNotReordering(t *testing.T) {
	e := newEnv(t, v4, func(o *opt.Options) { o.TCPMinRTO, o.TCPInitRTO = time.Second, time.Second })
	const rtt = 50 * time.Millisecond
	c := e.activeOpenRTT(modern(), rtt)
	segs := c.flight(10)
	e.advance(rtt)
	before := e.ext()
	// The ACKs of segments 0-4 were lost; segment 5 was lost; 6-9 arrived.
	c.ackSACK(segs[5].SeqNum, segs, [2]int{6, 10})
	got := e.drain()
	if len(got) == 0 || got[0].SeqNum != segs[5].SeqNum {
		t.Fatalf("ACK of 0-4 with SACK of 6-9: sent %v, want the retransmission of segment 5 at once (RACK.reo_wnd 0: no reordering seen, 4 segments SACKed)", got)
	}
	checkDelta(t, "RACKLosses", before.RACKLosses, e.ext().RACKLosses, 1)
	c.ackTo(c.stackNxt)
	e.drain()
}

// tlpEpisode sends five segments with a 100 ms RTT and nothing queued behind them, and
// waits for the tail loss probe: the last segment again (RFC 8985 §7.3).
func tlpEpisode(t *testing.T, e *env) (*conn, []*rxSeg) {
	t.Helper()
	const rtt = 100 * time.Millisecond
	c := e.activeOpenRTT(modern(), rtt)
	c.flight(1)
	e.advance(rtt)
	c.ack()
	e.drain()
	segs := c.flight(5)
	e.advanceUntil(2*time.Second, 5*time.Millisecond)
	p := e.next()
	if p.SeqNum != segs[4].SeqNum || e.ext().TLPs != 1 {
		t.Fatalf("probe %v (TLPs %d), want the last segment %v again", p, e.ext().TLPs, segs[4])
	}
	return c, segs
}

// RFC 8985 §7.4.2: the ACK of the late original (exactly TLP.end_seq) and then a D-SACK
// of the probe: the retransmission was redundant, the window stays.
func TestTLPRedundantProbeKeepsWindow(t *testing.T) {
	e := newEnv(t, v4, func(o *opt.Options) { o.TCPMinRTO, o.TCPInitRTO = time.Second, time.Second })
	c, segs := tlpEpisode(t, e)
	in := c.pcb.Info()
	c.ackTo(c.stackNxt) // the original of segment 4, late
	s := c.seg(wire.TCPFlagACK, nil)
	s.opts.SACKBlocks[0] = wire.SACKBlock{Left: segs[4].SeqNum, Right: segs[4].end()}
	s.opts.NumSACK = 1
	c.e.inject(s) // the probe's D-SACK
	e.drain()
	if got := c.pcb.Info(); got.Cwnd < in.Cwnd || got.Ssthresh != in.Ssthresh {
		t.Errorf("redundant probe: cwnd %d ssthresh %d, before %d %d; want the window kept", got.Cwnd, got.Ssthresh, in.Cwnd, in.Ssthresh)
	}
}

// RFC 8985 §7.4.2: no D-SACK, and an ACK above TLP.end_seq: the probe repaired a single
// loss, and the window is reduced once.
func TestTLPRepairedLossReducesWindow(t *testing.T) {
	e := newEnv(t, v4, func(o *opt.Options) { o.TCPMinRTO, o.TCPInitRTO = time.Second, time.Second })
	c, _ := tlpEpisode(t, e)
	in := c.pcb.Info()
	c.ackTo(c.stackNxt) // the probe filled the hole
	e.drain()
	c.flight(1)
	c.ackTo(c.stackNxt) // above TLP.end_seq
	e.drain()
	if got := c.pcb.Info(); got.Ssthresh >= in.Ssthresh || got.Cwnd >= in.Cwnd+c.segSize() {
		t.Errorf("repaired loss: cwnd %d ssthresh %d, before %d %d; want them reduced", got.Cwnd, got.Ssthresh, in.Cwnd, in.Ssthresh)
	}
}

// In fast recovery with nothing but retransmissions in flight (here application-limited;
// a window-limited sender is the same), RACK cannot see a lost retransmission: no segment
// sent after it can be delivered. It is sent again a probe timeout (2·SRTT) after it left,
// not at the retransmission timeout.
func TestLostRetransmissionWithNothingAfterIt(t *testing.T) {
	e := newEnv(t, v4, func(o *opt.Options) { o.TCPMinRTO, o.TCPInitRTO = time.Second, time.Second })
	const rtt = 50 * time.Millisecond
	c := e.activeOpenRTT(modern(), rtt)
	segs := c.flight(4)
	e.advance(rtt)
	before := e.ext()
	c.ackSACK(segs[0].SeqNum, segs, [2]int{1, 4}) // segment 0 lost, 1-3 SACKed
	r := e.next()
	if r.SeqNum != segs[0].SeqNum {
		t.Fatalf("after the SACK of 1-3: %v, want the retransmission of segment 0", r)
	}
	// The retransmission is lost too: the next copy comes after about 2·SRTT.
	t0 := e.elapsed()
	for e.pending() == 0 && e.elapsed()-t0 < 900*time.Millisecond {
		e.advance(5 * time.Millisecond)
	}
	if e.pending() == 0 {
		t.Fatalf("lost retransmission not sent again within 900 ms (RTO 1 s)\n%v", c.pcb.Info())
	}
	r = e.next()
	if r.SeqNum != segs[0].SeqNum {
		t.Fatalf("%v, want segment 0 again", r)
	}
	if d := r.at - t0; d < 2*rtt-10*time.Millisecond || d > 3*rtt {
		t.Errorf("second retransmission %v after the first, want about 2·SRTT = %v", d, 2*rtt)
	}
	checkDelta(t, "RTOs", before.RTOs, e.ext().RTOs, 0)
	// Lost again: only once per segment; the next copy is the RTO's, with its backoff.
	t1 := e.elapsed()
	for e.pending() == 0 && e.elapsed()-t1 < 2*time.Second {
		e.advance(5 * time.Millisecond)
	}
	if r = e.next(); r.SeqNum != segs[0].SeqNum || r.at-t1 < 900*time.Millisecond {
		t.Fatalf("third copy %v after %v, want the RTO's (1 s)", r, r.at-t1)
	}
	checkDelta(t, "RTOs", before.RTOs, e.ext().RTOs, 1)
	c.ackTo(c.stackNxt)
	e.drain()
	if c.pcb.Info().InRecovery {
		t.Error("still in recovery after everything was acknowledged")
	}
}
