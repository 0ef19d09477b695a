package cc

import (
	"testing"
	"time"
)

// hsRounds runs rounds of slow start with the given RTT per round (one ACK per segment,
// inflight = the window at the round's start, as the caller reports it) and returns cwnd
// in segments after each round.
func hsRounds(c *CUBIC, now time.Time, rtts ...time.Duration) ([]float64, time.Time) {
	var out []float64
	for _, rtt := range rtts {
		now = ackRound(c, testMSS, rtt, now)
		out = append(out, float64(c.Cwnd())/testMSS)
	}
	return out, now
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// RFC 9406: a round whose minimum RTT is RttThresh above the last round's moves to
// Conservative Slow Start (growth divided by 4); after CSS_ROUNDS rounds ssthresh = cwnd.
func TestHyStartExitThroughCSS(t *testing.T) {
	c := new(CUBIC)
	c.Init(testMSS, testIW, t0)
	w, now := hsRounds(c, t0, ms(100), ms(100), ms(100))
	if w[2] != 80 || c.hs.css {
		t.Fatalf("steady RTT: cwnd %v, css %v", w, c.hs.css)
	}
	// +20 ms >= 100/8 = 12.5 ms: CSS after the round's 8th sample.
	w, now = hsRounds(c, now, ms(120))
	if !c.hs.css || w[0] != 80+8+72/4 {
		t.Fatalf("after the RTT rise: cwnd %v segments, css %v", w, c.hs.css)
	}
	prev := w[0]
	for round := 1; round < hsCSSRounds; round++ {
		w, now = hsRounds(c, now, ms(120))
		if g := w[0] / prev; g < 1.24 || g > 1.26 || !c.hs.css {
			t.Fatalf("CSS round %d: cwnd %v -> %v (x%.3f)", round, prev, w[0], g)
		}
		prev = w[0]
	}
	if c.Ssthresh() != MaxWindow {
		t.Fatalf("ssthresh %d set too early", c.Ssthresh())
	}
	// The first ACK of the next round completes CSS_ROUNDS: congestion avoidance.
	now = now.Add(ms(1))
	c.OnAck(testMSS, ms(120), ms(100), c.Cwnd(), true, now)
	if !c.hs.done || c.hs.css || c.Ssthresh() != int(prev*testMSS) {
		t.Fatalf("after CSS: ssthresh %d (cwnd was %v segments), done %v", c.Ssthresh(), prev, c.hs.done)
	}
	// Congestion avoidance from here: no more doubling.
	before := c.Cwnd()
	hsRounds(c, now, ms(120))
	if g := float64(c.Cwnd()) / float64(before); g > 1.05 {
		t.Fatalf("grew x%.2f in a round after HyStart++ ended", g)
	}
}

// A CSS round whose minimum RTT falls back below the baseline was a false alarm: slow
// start resumes, with HyStart++.
func TestHyStartSpuriousExit(t *testing.T) {
	c := new(CUBIC)
	c.Init(testMSS, testIW, t0)
	_, now := hsRounds(c, t0, ms(100), ms(100), ms(100), ms(120))
	if !c.hs.css {
		t.Fatal("no CSS")
	}
	w, now := hsRounds(c, now, ms(100))
	if c.hs.css || c.hs.done {
		t.Fatalf("RTT back to normal: css %v done %v", c.hs.css, c.hs.done)
	}
	w2, _ := hsRounds(c, now, ms(100))
	if w2[0] != 2*w[0] {
		t.Fatalf("slow start did not resume: %v -> %v", w[0], w2[0])
	}
}

// No exit below the threshold, nor with fewer than N_RTT_SAMPLE samples in a round, nor
// without RTT samples or inflight information; RttThresh is clamped to [4 ms, 16 ms].
func TestHyStartNoExit(t *testing.T) {
	for _, tc := range []struct {
		name string
		base time.Duration
		rise time.Duration
		iw   int
		exit bool
	}{
		{"rise below base/8", ms(100), ms(12), testIW, false},
		{"rise at base/8", ms(100), ms(13), testIW, true},
		{"small RTT: 4 ms floor", ms(8), ms(3), testIW, false},
		{"small RTT: at the floor", ms(8), ms(4), testIW, true},
		{"large RTT: 16 ms cap", ms(400), ms(16), testIW, true},
		{"large RTT: below the cap", ms(400), ms(15), testIW, false},
		{"too few samples", ms(100), ms(50), 1, false}, // rounds of 1, 2, 4 ACKs
	} {
		c := new(CUBIC)
		c.Init(testMSS, tc.iw, t0)
		_, now := hsRounds(c, t0, tc.base, tc.base)
		hsRounds(c, now, tc.base+tc.rise)
		if c.hs.css != tc.exit {
			t.Errorf("%s: css %v, want %v", tc.name, c.hs.css, tc.exit)
		}
	}
	// No RTT samples, or no inflight: standard slow start.
	for _, inflight := range []int{-1, 0} {
		c := new(CUBIC)
		c.Init(testMSS, testIW, t0)
		now := t0
		for i := range 200 {
			rtt := ms(100 + 10*i)
			if inflight < 0 {
				rtt = 0
			}
			now = now.Add(ms(1))
			c.OnAck(testMSS, rtt, ms(100), max(inflight, 0), true, now)
		}
		if c.hs.css || c.Cwnd() != (testIW+200)*testMSS {
			t.Errorf("inflight %d: css %v cwnd %d", inflight, c.hs.css, c.Cwnd())
		}
	}
}

// A loss or a timeout ends HyStart++ for good; the slow start after a timeout is the
// standard one. Undo of that loss gives HyStart++ back.
func TestHyStartStopsOnLoss(t *testing.T) {
	c := new(CUBIC)
	c.Init(testMSS, testIW, t0)
	_, now := hsRounds(c, t0, ms(100), ms(100))
	c.OnCongestion(c.Cwnd(), now)
	if !c.hs.done {
		t.Fatal("HyStart++ still on after a loss")
	}
	c.Undo()
	if c.hs.done {
		t.Fatal("undo did not give HyStart++ back")
	}
	c.OnRTO(c.Cwnd(), now)
	if !c.hs.done {
		t.Fatal("HyStart++ still on after a timeout")
	}
	c.OnAck(testMSS, ms(100), ms(100), testMSS, true, now)
	w, _ := hsRounds(c, now, ms(100), ms(100), ms(200), ms(300))
	for i := 1; i < len(w) && w[i] < float64(c.Ssthresh())/testMSS; i++ {
		if w[i] != 2*w[i-1] {
			t.Fatalf("slow start after RTO not standard: %v", w)
		}
	}
}
