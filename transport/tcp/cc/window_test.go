package cc

import (
	"testing"
	"time"
)

// Rules NewReno and CUBIC share (RFC 5681, RFC 3465, RFC 6582), run against both.

func TestNew(t *testing.T) {
	for _, name := range []string{"cubic", "newreno"} {
		c, ok := New(name)
		if !ok || c.Name() != name {
			t.Fatalf("New(%q) = %v, %v", name, c, ok)
		}
	}
	if c, ok := New("bbr"); ok || c != nil {
		t.Fatalf("New(bbr) = %v, %v", c, ok)
	}
}

func TestInit(t *testing.T) {
	for _, tc := range []struct {
		mss, iw     int
		cwnd, ssthr int
	}{
		{1460, 10, 14600, MaxWindow},
		{536, 4, 2144, MaxWindow},
		{1000, 1, 1000, MaxWindow},
		{0, 10, 10, MaxWindow},                // mss clamps to 1
		{-5, -5, 1, MaxWindow},                // both clamp to 1
		{1 << 20, 2, 2 * MaxMSS, MaxWindow},   // mss clamps to MaxMSS
		{1460, 1 << 40, MaxWindow, MaxWindow}, // window clamps
	} {
		for _, c := range []Controller{new(NewReno), new(CUBIC)} {
			c.Init(tc.mss, tc.iw, t0)
			if c.Cwnd() != tc.cwnd || c.Ssthresh() != tc.ssthr {
				t.Errorf("%s Init(%d, %d): cwnd %d ssthresh %d, want %d %d",
					c.Name(), tc.mss, tc.iw, c.Cwnd(), c.Ssthresh(), tc.cwnd, tc.ssthr)
			}
			checkInvariants(t, c, "init")
		}
	}
}

// A zero value used without Init must not divide by zero.
func TestZeroValueWithoutInit(t *testing.T) {
	for _, c := range []Controller{new(NewReno), new(CUBIC)} {
		c.OnAck(1000, time.Millisecond, time.Millisecond, 0, true, t0)
		checkInvariants(t, c, c.Name()+" OnAck before Init")
	}
	for _, c := range []Controller{new(NewReno), new(CUBIC)} {
		c.OnCongestion(5000, t0)
		c.OnRecoveryExit(t0)
		c.OnRTO(5000, t0)
		c.Undo()
		c.OnIdle(time.Second, t0)
		c.SetMSS(1460)
		checkInvariants(t, c, c.Name()+" events before Init")
	}
}

// RFC 5681 §3.1 slow start with RFC 3465 byte counting: "cwnd += min (N, SMSS)" per ACK
// doubles the window each RTT when every segment is acknowledged, and L = 2 keeps the
// doubling with delayed ACKs (one ACK per two segments).
func TestSlowStartDoublesPerRTT(t *testing.T) {
	for _, per := range []int{testMSS, 2 * testMSS} {
		for _, c := range controllers() {
			now := t0
			want := testIW * testMSS
			for round := range 6 {
				if c.Cwnd() != want {
					t.Fatalf("%s acks of %d: round %d cwnd %d, want %d", c.Name(), per, round, c.Cwnd(), want)
				}
				now = ackRound(c, per, 100*time.Millisecond, now)
				want *= 2
			}
		}
	}
}

// RFC 3465 §2.2: "cwnd MUST NOT be increased by more than L*SMSS bytes" for one ACK, with
// L = 2 for NewReno; CUBIC's first slow start runs HyStart++, whose L is 8 (RFC 9406 §4.2).
func TestSlowStartABCLimit(t *testing.T) {
	limit := func(c Controller) int {
		if c.Name() == "cubic" {
			return 8
		}
		return 2
	}
	for _, acked := range []int{1, 500, testMSS, 2 * testMSS, 3 * testMSS, 8 * testMSS, 9 * testMSS, 100 * testMSS, 1 << 62, 0, -testMSS} {
		for _, c := range controllers() {
			want := max(0, min(acked, limit(c)*testMSS))
			before := c.Cwnd()
			c.OnAck(acked, 0, 0, before, true, t0)
			if got := c.Cwnd() - before; got != want {
				t.Errorf("%s ack of %d: cwnd grew %d, want %d", c.Name(), acked, got, want)
			}
		}
	}
	// ACKs of twice L segments grow the window by half per RTT, not double.
	for _, c := range controllers() {
		l := limit(c)
		c.Init(testMSS, 12*l, t0)
		ackRound(c, 2*l*testMSS, 100*time.Millisecond, t0)
		if want := 18 * l * testMSS; c.Cwnd() != want {
			t.Errorf("%s: cwnd %d after a round of %d-segment ACKs, want %d", c.Name(), c.Cwnd(), 2*l, want)
		}
	}
	// After a timeout CUBIC's slow start is RFC 3465's again: L = 2.
	c := &CUBIC{}
	c.Init(testMSS, 10, t0)
	c.OnRTO(10*testMSS, t0)
	before := c.Cwnd()
	c.OnAck(8*testMSS, 0, 0, before, true, t0)
	if got := c.Cwnd() - before; got != 2*testMSS {
		t.Errorf("cubic after RTO: an 8-segment ACK grew cwnd %d, want %d", got, 2*testMSS)
	}
}

// Slow start stops at ssthresh (RFC 5681 §3.1: slow start while cwnd < ssthresh).
func TestSlowStartStopsAtSsthresh(t *testing.T) {
	for _, c := range controllers() {
		c.OnRTO(30*testMSS, t0) // ssthresh = 15 or 21 segments, cwnd = 1
		ss := c.Ssthresh()
		now := t0
		for c.Cwnd() < ss {
			now = now.Add(time.Millisecond)
			c.OnAck(2*testMSS, 0, 0, c.Cwnd(), true, now)
		}
		if c.Cwnd() != ss {
			t.Fatalf("%s: slow start jumped past ssthresh %d to %d", c.Name(), ss, c.Cwnd())
		}
	}
}

// RFC 7661: ACKs of a window the sender did not fill do not grow it.
func TestNotCwndLimitedDoesNotGrow(t *testing.T) {
	for _, c := range controllers() {
		before := c.Cwnd()
		for i := range 100 {
			c.OnAck(testMSS, time.Millisecond, time.Millisecond, testMSS, false, t0.Add(time.Duration(i)*time.Millisecond))
		}
		if c.Cwnd() != before {
			t.Errorf("%s: app-limited ACKs grew cwnd %d -> %d", c.Name(), before, c.Cwnd())
		}
	}
}

// RFC 5681 eq. 4 (NewReno, β = 1/2) and RFC 9438 §4.6 (CUBIC, β = 0.7): ssthresh from the
// flight size, never below 2*SMSS; cwnd = ssthresh for the recovery.
func TestSsthreshAfterLoss(t *testing.T) {
	for _, tc := range []struct {
		name     string
		inflight int // in segments
	}{
		{"full window", 40},
		{"half used", 20},
		{"tiny flight", 1},
		{"nothing in flight", 0},
		{"negative", -7},
		{"more than cwnd", 400},
	} {
		for _, c := range controllers() {
			growTo(t, c, 40*testMSS, t0)
			cwnd := c.Cwnd()
			c.OnCongestion(tc.inflight*testMSS, t0)
			flight := max(0, min(tc.inflight*testMSS, cwnd))
			want := max(int(float64(flight)*beta(c)), 2*testMSS)
			if c.Ssthresh() != want || c.Cwnd() != want {
				t.Errorf("%s %s: ssthresh %d cwnd %d, want both %d", c.Name(), tc.name, c.Ssthresh(), c.Cwnd(), want)
			}
			checkInvariants(t, c, tc.name)
		}
	}
}

// RFC 6582 §3.2: one reduction per recovery episode; exit deflates to ssthresh.
func TestRecovery(t *testing.T) {
	for _, c := range controllers() {
		now := growTo(t, c, 40*testMSS, t0)
		c.OnCongestion(40*testMSS, now)
		ss := c.Ssthresh()
		c.OnCongestion(c.Cwnd(), now) // same episode: ignored
		if c.Ssthresh() != ss || c.Cwnd() != ss {
			t.Fatalf("%s: second OnCongestion in one recovery changed ssthresh %d -> %d", c.Name(), ss, c.Ssthresh())
		}
		c.OnRecoveryExit(now)
		if c.Cwnd() != ss {
			t.Fatalf("%s: cwnd %d after recovery, want ssthresh %d", c.Name(), c.Cwnd(), ss)
		}
		// Outside recovery, OnRecoveryExit does nothing.
		now = ackRound(c, testMSS, 100*time.Millisecond, now)
		cw := c.Cwnd()
		c.OnRecoveryExit(now)
		if c.Cwnd() != cw {
			t.Fatalf("%s: OnRecoveryExit outside recovery changed cwnd %d -> %d", c.Name(), cw, c.Cwnd())
		}
		// The next episode reduces again.
		c.OnCongestion(c.Cwnd(), now)
		if c.Ssthresh() >= ss {
			t.Fatalf("%s: a new episode did not reduce ssthresh (%d)", c.Name(), c.Ssthresh())
		}
	}
}

// RFC 5681 §3.1: a timeout sets cwnd to the loss window (1 SMSS) and ssthresh from the
// flight size; "when ... the given segment has already been retransmitted by way of the
// retransmission timer at least once, the value of ssthresh is held constant".
func TestRTO(t *testing.T) {
	for _, c := range controllers() {
		now := growTo(t, c, 40*testMSS, t0)
		c.OnRTO(40*testMSS, now)
		want := int(40 * testMSS * beta(c))
		if c.Cwnd() != testMSS || c.Ssthresh() != want {
			t.Fatalf("%s: after RTO cwnd %d ssthresh %d, want %d %d", c.Name(), c.Cwnd(), c.Ssthresh(), testMSS, want)
		}
		c.OnRTO(testMSS, now.Add(time.Second)) // backoff: same segment again
		if c.Cwnd() != testMSS || c.Ssthresh() != want {
			t.Fatalf("%s: repeated RTO changed ssthresh to %d", c.Name(), c.Ssthresh())
		}
		// A loss signal before anything is acknowledged belongs to the same episode.
		c.OnCongestion(testMSS, now.Add(time.Second))
		if c.Cwnd() != testMSS || c.Ssthresh() != want {
			t.Fatalf("%s: OnCongestion right after RTO: cwnd %d ssthresh %d", c.Name(), c.Cwnd(), c.Ssthresh())
		}
		// Progress ends the episode: slow start resumes from 1 SMSS.
		c.OnAck(testMSS, 0, 0, testMSS, true, now.Add(2*time.Second))
		if c.Cwnd() != 2*testMSS {
			t.Fatalf("%s: cwnd %d after the first ACK past RTO", c.Name(), c.Cwnd())
		}
	}
}

// A timeout during fast recovery keeps the ssthresh the recovery set.
func TestRTODuringRecovery(t *testing.T) {
	for _, c := range controllers() {
		now := growTo(t, c, 40*testMSS, t0)
		c.OnCongestion(40*testMSS, now)
		ss := c.Ssthresh()
		c.OnRTO(c.Cwnd(), now.Add(time.Second))
		if c.Cwnd() != testMSS || c.Ssthresh() != ss {
			t.Fatalf("%s: cwnd %d ssthresh %d, want %d %d", c.Name(), c.Cwnd(), c.Ssthresh(), testMSS, ss)
		}
		c.OnRecoveryExit(now) // recovery ended with the timeout: no jump to ssthresh
		if c.Cwnd() != testMSS {
			t.Fatalf("%s: OnRecoveryExit after RTO set cwnd %d", c.Name(), c.Cwnd())
		}
		c.Undo() // undo restores the state before the recovery
		if c.Cwnd() != 40*testMSS || c.Ssthresh() != MaxWindow {
			t.Fatalf("%s: undo gave cwnd %d ssthresh %d", c.Name(), c.Cwnd(), c.Ssthresh())
		}
	}
}

// Undo (RFC 3522, RFC 5682, DSACK) restores the window from before the reduction.
func TestUndo(t *testing.T) {
	type step func(c Controller, now time.Time)
	loss := func(c Controller, now time.Time) { c.OnCongestion(c.Cwnd(), now) }
	rto := func(c Controller, now time.Time) { c.OnRTO(c.Cwnd(), now) }
	exit := func(c Controller, now time.Time) { c.OnRecoveryExit(now) }
	ack := func(c Controller, now time.Time) { c.OnAck(testMSS, 0, 0, c.Cwnd(), true, now) }
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"during recovery", []step{loss}},
		{"after recovery", []step{loss, exit}},
		{"after recovery and growth", []step{loss, exit, ack, ack}},
		{"after RTO", []step{rto}},
		{"after RTO and ACKs", []step{rto, ack, ack, ack}},
	} {
		for _, c := range controllers() {
			now := growTo(t, c, 40*testMSS, t0)
			c.OnCongestion(40*testMSS, now) // an earlier, genuine episode
			c.OnRecoveryExit(now)
			now = ackRound(c, testMSS, 100*time.Millisecond, now)
			cw, ss := c.Cwnd(), c.Ssthresh()
			for _, s := range tc.steps {
				now = now.Add(10 * time.Millisecond)
				s(c, now)
			}
			c.Undo()
			if c.Cwnd() != cw || c.Ssthresh() != ss {
				t.Errorf("%s %s: undo gave cwnd %d ssthresh %d, want %d %d", c.Name(), tc.name, c.Cwnd(), c.Ssthresh(), cw, ss)
			}
			// Undone recovery: a late OnRecoveryExit must not deflate.
			c.OnRecoveryExit(now)
			if c.Cwnd() != cw {
				t.Errorf("%s %s: OnRecoveryExit after undo set cwnd %d", c.Name(), tc.name, c.Cwnd())
			}
			// A second Undo has nothing to restore.
			c.OnCongestion(c.Cwnd(), now)
			c.OnRecoveryExit(now)
			red := c.Cwnd()
			c.Undo()
			c.Undo()
			if c.Cwnd() != cw {
				t.Errorf("%s %s: cwnd %d after undoing the next episode, want %d", c.Name(), tc.name, c.Cwnd(), cw)
			}
			c.OnCongestion(c.Cwnd(), now)
			if c.Cwnd() != red {
				t.Errorf("%s %s: a new episode gave cwnd %d, want %d", c.Name(), tc.name, c.Cwnd(), red)
			}
			checkInvariants(t, c, tc.name)
		}
	}
	// Undo with nothing to undo changes nothing.
	for _, c := range controllers() {
		c.Undo()
		if c.Cwnd() != testIW*testMSS || c.Ssthresh() != MaxWindow {
			t.Errorf("%s: Undo on a fresh controller: cwnd %d ssthresh %d", c.Name(), c.Cwnd(), c.Ssthresh())
		}
	}
}

// RFC 5681 §4.1: after an idle period longer than an RTO, "cwnd to no more than RW",
// RW = min(IW, cwnd).
func TestIdleRestart(t *testing.T) {
	for _, c := range controllers() {
		now := growTo(t, c, 80*testMSS, t0)
		c.OnCongestion(80*testMSS, now)
		c.OnRecoveryExit(now)
		cw := c.Cwnd()
		c.OnIdle(time.Second, now.Add(10*time.Second))
		if c.Cwnd() != testIW*testMSS {
			t.Fatalf("%s: idle restart cwnd %d, want IW %d", c.Name(), c.Cwnd(), testIW*testMSS)
		}
		if c.Ssthresh() < cw*3/4 {
			t.Fatalf("%s: ssthresh %d forgot the window %d", c.Name(), c.Ssthresh(), cw)
		}
	}
	// A window already below IW stays.
	for _, c := range controllers() {
		c.OnRTO(testIW*testMSS, t0)
		c.OnAck(testMSS, 0, 0, testMSS, true, t0)
		c.OnIdle(time.Second, t0.Add(time.Minute))
		if c.Cwnd() != 2*testMSS {
			t.Fatalf("%s: idle restart grew cwnd to %d", c.Name(), c.Cwnd())
		}
	}
}

// SetMSS keeps the window's segment count (RFC 5681: windows are counted in SMSS).
func TestSetMSS(t *testing.T) {
	for _, c := range controllers() {
		now := growTo(t, c, 40*testMSS, t0)
		c.OnCongestion(40*testMSS, now)
		c.OnRecoveryExit(now)
		cwSegs, ssSegs := c.Cwnd()/testMSS, c.Ssthresh()/testMSS
		c.SetMSS(500)
		if c.Cwnd() != cwSegs*500 || c.Ssthresh() != ssSegs*500 {
			t.Fatalf("%s: SetMSS(500): cwnd %d ssthresh %d, want %d %d", c.Name(), c.Cwnd(), c.Ssthresh(), cwSegs*500, ssSegs*500)
		}
		c.SetMSS(1460)
		if c.Cwnd() != cwSegs*1460 || c.Ssthresh() != ssSegs*1460 {
			t.Fatalf("%s: SetMSS(1460): cwnd %d ssthresh %d", c.Name(), c.Cwnd(), c.Ssthresh())
		}
		c.SetMSS(0)
		checkInvariants(t, c, "SetMSS(0)")
		c.SetMSS(1 << 40)
		checkInvariants(t, c, "SetMSS(huge)")
	}
	// An unbounded ssthresh stays unbounded.
	for _, c := range controllers() {
		c.SetMSS(100)
		if c.Ssthresh() != MaxWindow {
			t.Fatalf("%s: SetMSS shrank the initial ssthresh to %d", c.Name(), c.Ssthresh())
		}
	}
}
