package cc

import (
	"math"
	"testing"
	"time"
)

// A fluid model of one flow over a bottleneck: rate bytes/s, a base RTT and a drop-tail
// queue of buf bytes. Each round the sender fills its window; what exceeds the
// bandwidth-delay product waits in the queue (stretching the RTT), and a window larger
// than BDP + buf overflows the queue: one loss, one round of recovery.
type path struct {
	rate float64 // bytes per second
	base time.Duration
	buf  int
}

func (p path) bdp() int { return int(p.rate * p.base.Seconds()) }

// round is one round trip of the simulation.
type round struct {
	start    time.Duration // since the simulation began
	cwnd     int           // window used in this round
	loss     bool          // the queue overflowed: OnCongestion, recovery, OnRecoveryExit
	wMax, k  float64       // CUBIC's state after the round (0 for NewReno)
	epochAge float64       // seconds since the CUBIC stage began, after the round
}

// lossRounds returns the indexes of the rounds that ended in a loss; fewer than atLeast
// fail the test (the path never filled its queue).
func lossRounds(t *testing.T, rs []round, atLeast int) []int {
	t.Helper()
	var losses []int
	for i, r := range rs {
		if r.loss {
			losses = append(losses, i)
		}
	}
	if len(losses) < atLeast {
		t.Fatalf("only %d losses", len(losses))
	}
	return losses
}

func simulate(c Controller, p path, rounds int) []round {
	const mss = testMSS
	out := make([]round, 0, rounds)
	now := t0
	for range rounds {
		w := c.Cwnd()
		rtt := p.base + time.Duration(float64(max(0, w-p.bdp()))/p.rate*float64(time.Second))
		r := round{start: now.Sub(t0), cwnd: w}
		if w > p.bdp()+p.buf {
			r.loss = true
			c.OnCongestion(w, now)
			now = now.Add(rtt)
			c.OnRecoveryExit(now)
		} else {
			// Delayed ACKs: one per two segments, spread over the round.
			n := (w + 2*mss - 1) / (2 * mss)
			step := rtt / time.Duration(n)
			for left := w; left > 0; left -= 2 * mss {
				now = now.Add(step)
				c.OnAck(min(2*mss, left), rtt, p.base, w, true, now)
			}
		}
		if cu, ok := c.(*CUBIC); ok {
			r.wMax, r.k = cu.wMax, cu.k
			if !cu.epoch.IsZero() {
				r.epochAge = now.Sub(cu.epoch).Seconds()
			}
		}
		out = append(out, r)
	}
	return out
}

// utilization is the fraction of the bottleneck the flow kept busy.
func utilization(p path, rs []round) float64 {
	var sent, secs float64
	for _, r := range rs {
		rtt := p.base.Seconds() + float64(max(0, r.cwnd-p.bdp()))/p.rate
		sent += float64(r.cwnd)
		secs += rtt
	}
	return sent / secs / p.rate
}

// CUBIC's characteristic curve on a long fat pipe (100 Mbit/s, 100 ms, queue of 20% of
// the BDP): after each loss the window climbs concavely back to W_max, gets there K
// seconds into the stage, lingers, then probes convexly until the queue overflows again.
func TestSimCubicCurve(t *testing.T) {
	p := path{rate: 12.5e6, base: 100 * time.Millisecond, buf: 250 * testMSS}
	c := new(CUBIC)
	c.Init(testMSS, testIW, t0)
	rs := simulate(c, p, 1500)
	losses := lossRounds(t, rs, 4)
	checked := 0
	for j := 1; j+1 < len(losses); j++ {
		lossAt, next := losses[j], losses[j+1]
		wAtLoss := float64(rs[lossAt].cwnd) / testMSS
		// The stage that follows: W_max and K as the controller set them.
		first := lossAt + 1
		wMax, k := rs[first].wMax, rs[first].k
		if wMax > wAtLoss+0.01 || wMax < wAtLoss*(1+cubicBeta)/2-0.01 {
			t.Fatalf("loss %d at %.1f segments: W_max %.1f", j, wAtLoss, wMax)
		}
		// W_cubic(0) is the window after the reduction: K from Eq. 2.
		if want := math.Cbrt((wMax - wAtLoss*cubicBeta) / cubicC); math.Abs(k-want) > 0.05 {
			t.Fatalf("loss %d: K %.3f, want %.3f", j, k, want)
		}
		// Back at W_max K seconds into the stage. The curve is flat there: W_cubic is
		// within half a segment of W_max from about K-1.1 s, so that is the window.
		// Stages cut short by the queue before K (W_max above the path's limit) say nothing.
		if rs[next].start.Seconds()-rs[first].start.Seconds() > k+0.3 {
			checked++
			back := -1.0
			for i := first; i < next; i++ {
				if float64(rs[i].cwnd)/testMSS >= wMax-0.5 {
					back = rs[i].start.Seconds() - rs[first].start.Seconds()
					break
				}
			}
			if back < k-1.2 || back > k+0.3 {
				t.Fatalf("loss %d: back at W_max %.1f after %.2fs, K = %.2fs", j, wMax, back, k)
			}
		}
		// Concave then convex: growth per round shrinks on the way up to W_max and grows
		// past it (ignoring the rounds right at the plateau).
		for i := first + 2; i < next; i++ {
			g0 := rs[i-1].cwnd - rs[i-2].cwnd
			g1 := rs[i].cwnd - rs[i-1].cwnd
			age := rs[i].epochAge
			switch {
			case age < k-0.5 && g1 > g0+testMSS/10:
				t.Fatalf("loss %d round %d: concave region accelerates %d -> %d", j, i, g0, g1)
			case age > k+0.5 && g1 < g0-testMSS/10:
				t.Fatalf("loss %d round %d: convex region slows %d -> %d", j, i, g0, g1)
			}
		}
	}
	if checked < 2 {
		t.Fatalf("only %d stages lasted past K", checked)
	}
	t.Logf("%d losses in %d rounds, %d stages checked against K", len(losses), len(rs), checked)
	// CUBIC keeps a long fat pipe nearly full.
	if u := utilization(p, rs[losses[1]:]); u < 0.95 {
		t.Fatalf("utilization %.3f", u)
	}
}

// NewReno's sawtooth on a small path (10 Mbit/s, 100 ms, 20% queue): halve on loss, one
// segment per RTT after, so each cycle lasts about W/2 rounds.
func TestSimNewRenoSawtooth(t *testing.T) {
	p := path{rate: 1.25e6, base: 100 * time.Millisecond, buf: 25 * testMSS}
	r := new(NewReno)
	r.Init(testMSS, testIW, t0)
	rs := simulate(r, p, 600)
	losses := lossRounds(t, rs, 5)
	for j := 1; j+1 < len(losses); j++ {
		lossAt, next := losses[j], losses[j+1]
		w := rs[lossAt].cwnd
		if got := rs[lossAt+1].cwnd; got != w/2 {
			t.Fatalf("cycle %d: cwnd %d after loss at %d, want %d", j, got, w, w/2)
		}
		for i := lossAt + 2; i < next; i++ {
			if d := rs[i].cwnd - rs[i-1].cwnd; d != testMSS {
				t.Fatalf("cycle %d round %d: cwnd grew %d, want one segment", j, i, d)
			}
		}
		// From just above BDP+buf, half of it, back up one segment per round.
		want := (p.bdp()+p.buf-w/2)/testMSS + 1
		if got := next - lossAt - 1; got < want-1 || got > want+1 {
			t.Fatalf("cycle %d: %d rounds of growth, want %d", j, got, want)
		}
	}
	// Halving to 75 segments from 150 leaves a 125-segment pipe partly idle.
	if u := utilization(p, rs[losses[1]:]); u < 0.8 || u > 0.97 {
		t.Fatalf("utilization %.3f", u)
	}
}

// On a long fat pipe CUBIC uses more of the bottleneck than NewReno: the reason it is
// the default.
func TestSimCubicBeatsNewRenoOnLongFatPipe(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	p := path{rate: 12.5e6, base: 100 * time.Millisecond, buf: 125 * testMSS}
	cu := new(CUBIC)
	cu.Init(testMSS, testIW, t0)
	re := new(NewReno)
	re.Init(testMSS, testIW, t0)
	uc := utilization(p, simulate(cu, p, 1500)[200:])
	ur := utilization(p, simulate(re, p, 1500)[200:])
	if uc < ur+0.05 {
		t.Fatalf("utilization: cubic %.3f, newreno %.3f", uc, ur)
	}
	t.Logf("utilization over 100 Mbit/s x 100 ms: cubic %.3f, newreno %.3f", uc, ur)
}
