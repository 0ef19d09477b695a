package cc

import (
	"math"
	"testing"
	"time"
)

// RFC 9438 Eq. 1 and 2 at known points: K = cbrt((W_max − cwnd_epoch)/C), which is
// cbrt(W_max*(1−β)/C) when the stage starts at β*W_max; W_cubic(0) = cwnd_epoch,
// W_cubic(K) = W_max, and the curve is point-symmetric around (K, W_max).
func TestCubicKAndWCubic(t *testing.T) {
	for _, tc := range []struct {
		wMax, epoch float64 // segments
		k           float64 // seconds, computed by hand
	}{
		{100, 70, 4.217163326508746},          // cbrt(75)
		{10, 7, 1.9574338205844317},           // cbrt(7.5)
		{1000, 700, 9.085602964160698},        // cbrt(750)
		{85, 70, 3.3471647504108483},          // fast convergence: cbrt(37.5)
		{2, 1.4, 1.1447142425533319},          // cbrt(1.5)
		{70, 70, 0},                           // no plateau to approach
		{50, 70, 0},                           // above W_max: W_max moves up, K = 0
		{1 << 16, 1 << 15, 43.43068186551851}, // cbrt(2^15/0.4)
	} {
		c := new(CUBIC)
		c.Init(testMSS, testIW, t0)
		c.wMax = tc.wMax
		c.startEpoch(tc.epoch, t0)
		if math.Abs(c.k-tc.k) > 1e-6 {
			t.Errorf("W_max %v epoch %v: K = %v, want %v", tc.wMax, tc.epoch, c.k, tc.k)
		}
		if tc.wMax*(1-cubicBeta) == tc.wMax-tc.epoch {
			if want := math.Cbrt(tc.wMax * (1 - cubicBeta) / cubicC); math.Abs(c.k-want) > 1e-9 {
				t.Errorf("K %v != cbrt(W_max(1-β)/C) %v", c.k, want)
			}
		}
		wMax := max(tc.wMax, tc.epoch)
		for _, p := range []struct{ t, w float64 }{
			{0, tc.epoch},
			{c.k, wMax},
			{2 * c.k, 2*wMax - tc.epoch},
			{c.k + 1, wMax + cubicC},
			{c.k - 1, wMax - cubicC},
			{c.k + 10, wMax + 1000*cubicC},
		} {
			if got := c.wCubic(p.t); math.Abs(got-p.w) > 1e-6*max(1, p.w) && !(p.w < 0 && got == 0) {
				t.Errorf("W_max %v epoch %v: W_cubic(%v) = %v, want %v", tc.wMax, tc.epoch, p.t, got, p.w)
			}
		}
	}
	if math.Abs(cubicAlpha-0.5294117647058824) > 1e-12 {
		t.Errorf("α_cubic = %v", cubicAlpha)
	}
}

// cubicAfterLoss returns a CUBIC whose window was w segments when a loss with a full
// window struck, after the recovery, and the time.
func cubicAfterLoss(t *testing.T, w int) (*CUBIC, time.Time) {
	t.Helper()
	c := new(CUBIC)
	c.Init(testMSS, testIW, t0)
	now := growTo(t, c, w*testMSS, t0)
	c.OnCongestion(w*testMSS, now)
	if want := int(float64(w*testMSS) * cubicBeta); c.Ssthresh() != want || c.Cwnd() != want {
		t.Fatalf("after loss at %d segments: cwnd %d ssthresh %d, want %d", w, c.Cwnd(), c.Ssthresh(), want)
	}
	if c.wMax != float64(w) || c.cwndPrior != float64(w) {
		t.Fatalf("W_max %v cwnd_prior %v, want %d", c.wMax, c.cwndPrior, w)
	}
	now = now.Add(100 * time.Millisecond)
	c.OnRecoveryExit(now)
	return c, now
}

// At a long RTT the cubic function drives the window: concave up to W_max, reached K
// seconds into the stage, then convex.
func TestCubicReturnsToWmaxAfterK(t *testing.T) {
	const rtt = 100 * time.Millisecond
	const wMax = 1000
	c, now := cubicAfterLoss(t, wMax)
	k := math.Cbrt(wMax * (1 - cubicBeta) / cubicC)
	start := now
	var prevGrowth float64 = math.Inf(1)
	reached := time.Duration(0)
	for round := 0; round < 120; round++ {
		before := float64(c.Cwnd()) / testMSS
		now = ackRound(c, testMSS, rtt, now)
		after := float64(c.Cwnd()) / testMSS
		el := now.Sub(start).Seconds()
		if round == 0 && math.Abs(c.k-k) > 1e-9 {
			t.Fatalf("K = %v, want %v", c.k, k)
		}
		// Aiming one RTT ahead (the target is W_cubic(t+RTT)) and getting there over one
		// RTT, the window tracks W_cubic(t). W_est stays far below at this RTT.
		if w := c.wCubic(el); math.Abs(after-w) > 0.01*w+1 || c.wEst > w {
			t.Fatalf("round %d t=%.2fs: cwnd %.2f segments, W_cubic(t) %.2f, W_est %.2f", round, el, after, w, c.wEst)
		}
		growth := after - before
		if el+rtt.Seconds() < k-0.3 && growth > prevGrowth+0.05 {
			t.Fatalf("round %d: concave region accelerating (%.3f after %.3f)", round, growth, prevGrowth)
		}
		if el > k+0.5 && growth < prevGrowth-0.05 {
			t.Fatalf("round %d: convex region slowing (%.3f after %.3f)", round, growth, prevGrowth)
		}
		prevGrowth = growth
		if reached == 0 && after >= wMax {
			reached = now.Sub(start)
		}
	}
	if d := reached.Seconds() - k; d < -2*rtt.Seconds() || d > 2*rtt.Seconds() {
		t.Fatalf("cwnd returned to W_max after %v, K = %.3fs", reached, k)
	}
}

// At a short RTT, Reno would grow faster than the cubic curve: the Reno-friendly region
// (RFC 9438 §4.3) sets cwnd = W_est, α_cubic segments per RTT, then 1 past cwnd_prior.
func TestCubicRenoFriendlyRegion(t *testing.T) {
	const rtt = time.Millisecond
	c, now := cubicAfterLoss(t, 100)
	start := now
	for round := 1; round <= 200; round++ {
		now = ackRound(c, testMSS, rtt, now)
		cw := float64(c.Cwnd()) / testMSS
		if c.wCubic(now.Sub(start).Seconds()) >= c.wEst {
			t.Fatalf("round %d: W_cubic above W_est %v at t=%v", round, c.wEst, now.Sub(start))
		}
		// Expected: 70 + α per round up to 100, then one per round.
		want := 70 + cubicAlpha*float64(round)
		if want > 100 {
			over := float64(round) - 30/cubicAlpha
			want = 100 + over
		}
		if math.Abs(cw-want) > 0.02*want {
			t.Fatalf("round %d: cwnd %.2f segments, Reno-friendly %.2f", round, cw, want)
		}
	}
}

// RFC 9438 §4.7 fast convergence: a loss below the previous W_max lowers W_max further.
func TestCubicFastConvergence(t *testing.T) {
	c, now := cubicAfterLoss(t, 100)
	// Grow to 90 segments, still below W_max = 100.
	for c.Cwnd() < 90*testMSS {
		now = ackRound(c, testMSS, 100*time.Millisecond, now)
	}
	cw := float64(c.Cwnd()) / testMSS
	c.OnCongestion(c.Cwnd(), now)
	if want := cw * (1 + cubicBeta) / 2; math.Abs(c.wMax-want) > 1e-3 {
		t.Fatalf("W_max %v after loss at %v below 100, want %v", c.wMax, cw, want)
	}
	if want := int(cw * testMSS * cubicBeta); c.Cwnd() != want && c.Cwnd() != want-1 {
		t.Fatalf("cwnd %d, want %d", c.Cwnd(), want)
	}
	c.OnRecoveryExit(now)
	now = ackRound(c, testMSS, 100*time.Millisecond, now)
	wantK := math.Cbrt((cw*(1+cubicBeta)/2 - float64(c.Ssthresh())/testMSS) / cubicC)
	if math.Abs(c.k-wantK) > 0.01 {
		t.Fatalf("K %v, want %v", c.k, wantK)
	}
	// A loss above W_max keeps W_max = cwnd.
	for c.Cwnd() < 120*testMSS {
		now = ackRound(c, testMSS, 100*time.Millisecond, now)
	}
	cw = float64(c.Cwnd()) / testMSS
	c.OnCongestion(c.Cwnd(), now)
	if math.Abs(c.wMax-cw) > 1e-3 {
		t.Fatalf("W_max %v after loss at %v above the old W_max", c.wMax, cw)
	}
}

// The target is clamped to 1.5*cwnd per RTT (RFC 9438 §4.2) whatever t says.
func TestCubicTargetClamp(t *testing.T) {
	for _, back := range []time.Duration{time.Hour, 24 * time.Hour, 100 * 365 * 24 * time.Hour, math.MaxInt64} {
		c, now := cubicAfterLoss(t, 100)
		now = ackRound(c, testMSS, 100*time.Millisecond, now)
		c.epoch = now.Add(-back) // as if the stage began long ago
		before := c.Cwnd()
		now = ackRound(c, testMSS, 100*time.Millisecond, now)
		if c.Cwnd() > before*3/2+testMSS {
			t.Fatalf("epoch %v ago: cwnd %d -> %d in one RTT", back, before, c.Cwnd())
		}
		checkInvariants(t, c, "clamp")
	}
}

// RFC 9438 §4.8: after a timeout the next stage starts with K = 0 and W_max = cwnd_epoch.
func TestCubicAfterRTO(t *testing.T) {
	c := new(CUBIC)
	c.Init(testMSS, testIW, t0)
	now := growTo(t, c, 100*testMSS, t0)
	c.OnRTO(100*testMSS, now)
	if c.Cwnd() != testMSS || c.Ssthresh() != 70*testMSS {
		t.Fatalf("after RTO cwnd %d ssthresh %d", c.Cwnd(), c.Ssthresh())
	}
	for c.Cwnd() < c.Ssthresh() {
		now = now.Add(time.Millisecond)
		c.OnAck(2*testMSS, 0, 0, c.Cwnd(), true, now)
	}
	if !c.epoch.IsZero() {
		t.Fatal("stage began during slow start")
	}
	now = now.Add(time.Millisecond)
	c.OnAck(testMSS, 100*time.Millisecond, 100*time.Millisecond, c.Cwnd(), true, now)
	if c.k != 0 || c.wMax != 70 || c.wEst < 70 || c.wEst > 70.1 || !c.epoch.Equal(now) {
		t.Fatalf("stage after RTO: K %v W_max %v W_est %v epoch %v", c.k, c.wMax, c.wEst, c.epoch)
	}
	// Convex from the start: growth accelerates.
	g1 := c.Cwnd()
	now = ackRound(c, testMSS, 100*time.Millisecond, now.Add(time.Second))
	g2 := c.Cwnd()
	now = ackRound(c, testMSS, 100*time.Millisecond, now.Add(time.Second))
	if c.Cwnd()-g2 <= g2-g1 {
		t.Fatalf("not convex after RTO: %d %d %d", g1, g2, c.Cwnd())
	}
}

// RFC 9438 §4.9: Undo restores W_max, K, t_epoch and W_est with the window.
func TestCubicUndoRestoresState(t *testing.T) {
	c, now := cubicAfterLoss(t, 100)
	for range 10 {
		now = ackRound(c, testMSS, 100*time.Millisecond, now)
	}
	saved := c.cubicState
	cw, ss := c.Cwnd(), c.Ssthresh()
	for _, event := range []func(){
		func() { c.OnCongestion(c.Cwnd(), now) },
		func() { c.OnCongestion(c.Cwnd(), now); c.OnRecoveryExit(now) },
		func() { c.OnRTO(c.Cwnd(), now) },
		func() { c.OnRTO(c.Cwnd(), now); c.OnRTO(c.Cwnd(), now.Add(time.Second)) },
	} {
		event()
		c.Undo()
		if c.cubicState != saved || c.Cwnd() != cw || c.Ssthresh() != ss {
			t.Fatalf("undo gave %+v cwnd %d ssthresh %d, want %+v %d %d", c.cubicState, c.Cwnd(), c.Ssthresh(), saved, cw, ss)
		}
	}
}

// RFC 9438 §5.8: time the sender is application limited is not part of t.
func TestCubicAppLimitedPause(t *testing.T) {
	const rtt = 100 * time.Millisecond
	a, now := cubicAfterLoss(t, 100)
	b, _ := cubicAfterLoss(t, 100)
	for range 5 {
		ackRound(a, testMSS, rtt, now)
		now = ackRound(b, testMSS, rtt, now)
	}
	// b pauses: 100 RTTs of ACKs of a window it does not fill.
	nowB := now
	for range 100 {
		nowB = nowB.Add(rtt)
		b.OnAck(testMSS, rtt, rtt, testMSS, false, nowB)
	}
	nowA := now
	for range 20 {
		nowA = ackRound(a, testMSS, rtt, nowA)
		nowB = ackRound(b, testMSS, rtt, nowB)
	}
	if d := math.Abs(float64(a.Cwnd()-b.Cwnd())) / float64(a.Cwnd()); d > 0.01 {
		t.Fatalf("after a pause cwnd %d, without %d", b.Cwnd(), a.Cwnd())
	}
}

// Time running backwards restarts the stage; forwards by years is capped.
func TestCubicTimeJumps(t *testing.T) {
	c, now := cubicAfterLoss(t, 100)
	now = ackRound(c, testMSS, 100*time.Millisecond, now)
	for _, d := range []time.Duration{-10 * 365 * 24 * time.Hour, math.MinInt64, 20 * 365 * 24 * time.Hour, math.MaxInt64, -time.Second} {
		now = now.Add(d)
		before := c.Cwnd()
		now = ackRound(c, testMSS, 100*time.Millisecond, now)
		checkInvariants(t, c, "time jump")
		if c.Cwnd() > before*3/2+testMSS || c.Cwnd() < before {
			t.Fatalf("jump %v: cwnd %d -> %d", d, before, c.Cwnd())
		}
	}
}
