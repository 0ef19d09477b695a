package cc

import (
	"math"
	"time"
)

// RFC 9438 constants. The cubic function works in segments and seconds: C has the unit
// segments/second^3, so the window is converted from bytes at each use.
const (
	// cubicC: "C SHOULD be set to 0.4" (RFC 9438 §5.1).
	cubicC = 0.4
	// cubicBeta: "β_cubic SHOULD be set to 0.7" (RFC 9438 §4.6).
	cubicBeta = 0.7
	// cubicAlpha: "α_cubic = 3(1 − β_cubic)/(1 + β_cubic)" (RFC 9438 §4.3, Eq. 4).
	cubicAlpha = 3 * (1 - cubicBeta) / (1 + cubicBeta)
	// maxEpochSeconds caps t in W_cubic(t): C*t^3 stays finite in float64 whatever the
	// clock says, and 2^20 s (12 days) is far past any K (K <= cbrt(2^30/0.4) < 1400 s).
	maxEpochSeconds = 1 << 20
	// maxRTTSeconds caps the RTT added to t for the target (RFC 9438 §4.2).
	maxRTTSeconds = 1 << 10
)

// CUBIC (RFC 9438) with fast convergence and the Reno-friendly region. The zero value
// followed by Init is ready: a PCB embeds one by value (no allocation per connection).
//
// Slow start is RFC 5681 with byte counting, L = 8 under HyStart++ (RFC 9406 §4.2) the
// first time, which leaves slow start when the RTT rises. In congestion avoidance the
// window follows W_cubic(t) = C*(t-K)^3 + W_max (t: time since the stage began), or the
// Reno estimate W_est when that is larger. A loss sets ssthresh = 0.7*FlightSize and
// cwnd = ssthresh; W_max remembers the window before the loss, lowered when the window is
// shrinking (fast convergence). Time that the sender was application limited is left out
// of t (RFC 9438 §5.8).
type CUBIC struct {
	window
	cubicState
	// frac carries the sub-byte part of cwnd growth from one ACK to the next.
	frac float64
	// appLimitedSince is when an ACK first found the window unused in this stage; the
	// stage's epoch moves forward by that time when the window is used again.
	appLimitedSince time.Time
	// prior is the state before the last reduction, for Undo (RFC 9438 §4.9).
	prior cubicState
}

// cubicState is the part of CUBIC's state RFC 9438 §4.9 restores after a spurious
// congestion event. Windows are in segments, K in seconds.
type cubicState struct {
	wMax      float64   // W_max: the window before the last reduction (§4.6, §4.7)
	k         float64   // K: the time W_cubic takes to return to W_max (§4.2, Eq. 2)
	wEst      float64   // W_est: the Reno-friendly window (§4.3)
	cwndPrior float64   // cwnd_prior: cwnd before the last reduction (§4.6)
	epoch     time.Time // t_epoch: start of the congestion avoidance stage; zero: not begun
	afterRTO  bool      // the next stage follows a timeout (§4.8)
	hs        hystart   // RFC 9406 HyStart++ in the initial slow start
}

var _ Controller = (*CUBIC)(nil)

// Name returns "cubic".
func (c *CUBIC) Name() string { return "cubic" }

// Init starts the connection with cwnd = initCwnd*mss and an unbounded ssthresh.
func (c *CUBIC) Init(mss, initCwnd int, now time.Time) {
	*c = CUBIC{}
	c.init(mss, initCwnd)
}

// SetMSS changes SMSS; cwnd and ssthresh keep their segment counts (CUBIC's own state is
// kept in segments already).
func (c *CUBIC) SetMSS(mss int) {
	c.setMSS(mss)
	c.frac = 0
}

// OnAck grows the window: slow start below ssthresh, RFC 9438 §4.2–4.5 above.
func (c *CUBIC) OnAck(acked int, rtt, minRTT time.Duration, inflight int, cwndLimited bool, now time.Time) {
	c.ready()
	if acked <= 0 {
		return
	}
	c.inLoss = false
	if !cwndLimited {
		// RFC 9438 §5.8: "CUBIC does not increase its congestion window if a flow is
		// application limited", and §4.2: "The elapsed time t in Figure 1 MUST NOT include
		// periods during which cwnd has not been updated due to application-limited
		// behavior": the stage's epoch moves forward by the pause.
		if !c.epoch.IsZero() && c.appLimitedSince.IsZero() {
			c.appLimitedSince = now
		}
		return
	}
	if !c.appLimitedSince.IsZero() {
		if d := now.Sub(c.appLimitedSince); d > 0 && !c.epoch.IsZero() {
			c.epoch = c.epoch.Add(d)
		}
		c.appLimitedSince = time.Time{}
	}
	if c.cwnd < c.ssthresh {
		// RFC 5681 slow start: HyStart++ (L = 8) the first time, RFC 3465 (L = 2) after.
		c.cwnd = min(c.cwnd+c.hs.onAck(&c.window, acked, rtt, inflight), c.ssthresh)
		c.frac = 0
		return
	}
	// RFC 9438 §4.2 uses the smoothed RTT for the target; the minimum RTT keeps queueing
	// delay from inflating the target while the queue builds.
	r := minRTT
	if r <= 0 {
		r = rtt
	}
	c.avoid(acked, r, now)
}

// avoid is one ACK of congestion avoidance (RFC 9438 §4.2–4.5).
func (c *CUBIC) avoid(acked int, rtt time.Duration, now time.Time) {
	mss := float64(c.mss)
	cw := (float64(c.cwnd) + c.frac) / mss
	if c.epoch.IsZero() || now.Before(c.epoch) {
		// A clock that went backwards restarts the stage rather than freezing t at 0.
		c.startEpoch(cw, now)
	}
	t := min(max(now.Sub(c.epoch).Seconds(), 0), maxEpochSeconds)
	// An ACK acknowledges at most one window's worth of growth.
	segs := min(float64(acked)/mss, cw)

	// §4.3: "W_est = W_est + α_cubic * segments_acked / cwnd", and "once W_est has grown
	// to reach the cwnd at the time of most recently setting ssthresh ... the sender
	// SHOULD set α_cubic to 1".
	alpha := cubicAlpha
	if c.wEst >= c.cwndPrior {
		alpha = 1
	}
	c.wEst = min(c.wEst+alpha*segs/cw, c.maxSegs())

	var next float64
	if c.wCubic(t) < c.wEst {
		// §4.3: "If W_cubic(t) is less than W_est, then the protocol is in the
		// Reno-friendly region and cwnd SHOULD be set to W_est at each reception of a
		// new ACK."
		next = max(cw, c.wEst)
	} else {
		// §4.2: target = W_cubic(t + RTT), clamped to [cwnd, 1.5*cwnd]; §4.4/4.5: "cwnd
		// MUST be incremented by (target − cwnd)/cwnd for each received new ACK".
		rs := min(max(rtt.Seconds(), 0), maxRTTSeconds)
		target := min(max(c.wCubic(t+rs), cw), 1.5*cw)
		next = cw + (target-cw)/cw*segs
	}
	c.setCwndSegs(next)
}

// startEpoch begins a congestion avoidance stage with cwnd = cw segments (RFC 9438 §4.2).
func (c *CUBIC) startEpoch(cw float64, now time.Time) {
	c.epoch = now
	c.appLimitedSince = time.Time{}
	// §4.3: "W_est is set equal to cwnd_epoch at the start of the congestion avoidance
	// stage."
	c.wEst = cw
	if c.afterRTO || c.wMax <= cw {
		// §4.8: after a timeout "K is set to 0, and W_max is set to the congestion window
		// size at the beginning of the current congestion avoidance stage". A stage that
		// starts at or above W_max (slow start ended without a loss) has no plateau to
		// approach either: it probes from here.
		c.wMax = cw
		c.k = 0
	} else {
		// §4.2, Eq. 2: K = cubic_root((W_max − cwnd_epoch)/C).
		c.k = math.Cbrt((c.wMax - cw) / cubicC)
	}
	c.afterRTO = false
}

// wCubic is RFC 9438 Eq. 1, W_cubic(t) = C*(t − K)^3 + W_max, in segments, kept inside
// [0, MaxWindow/SMSS].
func (c *CUBIC) wCubic(t float64) float64 {
	d := t - c.k
	w := cubicC*d*d*d + c.wMax
	return min(max(w, 0), c.maxSegs())
}

func (c *CUBIC) maxSegs() float64 { return MaxWindow / float64(c.mss) }

// setCwndSegs sets cwnd from a window in segments, clamped to [SMSS, MaxWindow]; a NaN
// (never expected) leaves cwnd as it is.
func (c *CUBIC) setCwndSegs(segs float64) {
	b := segs * float64(c.mss)
	if b != b {
		return
	}
	b = min(max(b, float64(c.mss)), MaxWindow)
	whole := math.Floor(b)
	c.cwnd = c.clampCwnd(int64(whole))
	c.frac = b - whole
}

// OnCongestion enters recovery (RFC 9438 §4.6, §4.7). A second call before
// OnRecoveryExit, or one before any ACK after a timeout, changes nothing.
func (c *CUBIC) OnCongestion(inflight int, now time.Time) {
	c.ready()
	if c.inRecovery || c.inLoss {
		return
	}
	c.saveCubic()
	c.hs.stop()
	cw := (float64(c.cwnd) + c.frac) / float64(c.mss)
	// §4.7: "if (cwnd < W_max AND fast convergence enabled) W_max = cwnd * (1 + β_cubic)
	// / 2; else W_max = cwnd".
	if cw < c.wMax {
		c.wMax = cw * (1 + cubicBeta) / 2
	} else {
		c.wMax = cw
	}
	// §4.6: "ssthresh = flight_size * β_cubic; cwnd_prior = cwnd; cwnd = max(ssthresh,
	// 2); ssthresh = max(ssthresh, 2)".
	c.cwndPrior = cw
	ss := c.clampSsthresh(int64(float64(c.flight(inflight)) * cubicBeta))
	c.ssthresh = ss
	c.cwnd = c.clampCwnd(int64(ss))
	c.frac = 0
	c.acc = 0
	c.epoch = time.Time{}
	c.appLimitedSince = time.Time{}
	c.afterRTO = false
	c.inRecovery = true
}

// OnRecoveryExit deflates cwnd to ssthresh; the next ACK starts the congestion avoidance
// stage. It does nothing outside a recovery begun by OnCongestion.
func (c *CUBIC) OnRecoveryExit(now time.Time) {
	c.ready()
	if c.exitRecovery() {
		c.frac = 0
		c.epoch = time.Time{}
	}
}

// OnRTO follows RFC 9438 §4.8: "CUBIC follows Reno to reduce cwnd [RFC5681] but sets
// ssthresh using β_cubic". A timeout during recovery, or a repeated one, keeps ssthresh
// (RFC 5681 §3.1).
func (c *CUBIC) OnRTO(inflight int, now time.Time) {
	c.ready()
	if !c.inLoss && !c.inRecovery {
		c.saveCubic()
		c.hs.stop()
		c.cwndPrior = (float64(c.cwnd) + c.frac) / float64(c.mss)
		c.ssthresh = c.clampSsthresh(int64(float64(c.flight(inflight)) * cubicBeta))
	}
	c.enterLoss()
	c.frac = 0
	c.epoch = time.Time{}
	c.appLimitedSince = time.Time{}
	c.afterRTO = true
}

func (c *CUBIC) saveCubic() {
	c.save()
	c.prior = c.cubicState
}

// Undo restores the state from before the last reduction (RFC 9438 §4.9: cwnd, ssthresh,
// W_max, K, t_epoch and W_est), never shrinking cwnd or ssthresh, and ends the recovery.
func (c *CUBIC) Undo() {
	if c.undo() {
		c.cubicState = c.prior
		c.frac = 0
		c.appLimitedSince = time.Time{}
	}
}

// OnIdle shrinks cwnd to the restart window min(IW, cwnd) (RFC 5681 §4.1) and ends the
// congestion avoidance stage: slow start climbs back and a new stage heads for the old
// W_max, with t counted from its own start (RFC 9438 §5.8).
func (c *CUBIC) OnIdle(rto time.Duration, now time.Time) {
	c.restart()
	c.frac = 0
	c.epoch = time.Time{}
	c.hs.roundLeft = 0 // the rounds before the pause say nothing about the path now
	c.appLimitedSince = time.Time{}
}
