package cc

import "time"

// NewReno (RFC 5681, RFC 6582 window rules, RFC 3465 byte counting with L=2). The zero value
// followed by Init is ready.
//
// Slow start adds min(acked, 2*SMSS) per ACK; congestion avoidance adds one SMSS per cwnd
// bytes acknowledged; a loss sets ssthresh = max(FlightSize/2, 2*SMSS) and cwnd = ssthresh
// for the recovery; a timeout sets cwnd to one segment.
type NewReno struct {
	window
}

var _ Controller = (*NewReno)(nil)

// Name returns "newreno".
func (r *NewReno) Name() string { return "newreno" }

// Init starts the connection with cwnd = initCwnd*mss and an unbounded ssthresh.
func (r *NewReno) Init(mss, initCwnd int, now time.Time) { r.init(mss, initCwnd) }

// SetMSS changes SMSS; cwnd and ssthresh keep their segment counts.
func (r *NewReno) SetMSS(mss int) { r.setMSS(mss) }

// OnAck grows the window: slow start below ssthresh, congestion avoidance above.
func (r *NewReno) OnAck(acked int, rtt, minRTT time.Duration, inflight int, cwndLimited bool, now time.Time) {
	r.ready()
	if acked <= 0 {
		return
	}
	r.inLoss = false
	// RFC 7661 §4.1: a window the sender does not fill is not validated by its ACKs.
	if !cwndLimited {
		return
	}
	if r.slowStart(acked) {
		return
	}
	// RFC 3465 §2.1: "When bytes_acked becomes greater than or equal to the value of the
	// congestion window, bytes_acked is reduced by the value of cwnd. Next, cwnd is
	// incremented by a full-sized segment (SMSS)." One ACK counts for at most one cwnd,
	// so a huge ACK still adds at most one SMSS.
	r.acc += min(acked, r.cwnd)
	if r.acc >= r.cwnd {
		r.acc -= r.cwnd
		r.cwnd = r.clampCwnd(int64(r.cwnd) + int64(r.mss))
	}
}

// OnCongestion enters recovery: RFC 5681 eq. 4, "ssthresh = max (FlightSize / 2, 2*SMSS)",
// and cwnd = ssthresh (the caller inflates with its own pipe, RFC 6675/6582). A second
// call before OnRecoveryExit, or one before any ACK after a timeout, changes nothing.
func (r *NewReno) OnCongestion(inflight int, now time.Time) {
	r.ready()
	if r.inRecovery || r.inLoss {
		return
	}
	r.save()
	r.ssthresh = r.clampSsthresh(int64(r.flight(inflight) / 2))
	r.cwnd = r.clampCwnd(int64(r.ssthresh))
	r.acc = 0
	r.inRecovery = true
}

// OnRecoveryExit deflates the window to ssthresh (RFC 6582 §3.2 step 3, option 2). It does
// nothing outside a recovery begun by OnCongestion (after OnRTO or Undo, cwnd stays).
func (r *NewReno) OnRecoveryExit(now time.Time) {
	r.ready()
	r.exitRecovery()
}

// OnRTO sets ssthresh per RFC 5681 eq. 4 and cwnd to the loss window: "LW is equal to 1
// full-sized segment". A timeout during recovery, or a repeated one, keeps ssthresh.
func (r *NewReno) OnRTO(inflight int, now time.Time) {
	r.ready()
	if !r.inLoss && !r.inRecovery {
		r.save()
		r.ssthresh = r.clampSsthresh(int64(r.flight(inflight) / 2))
	}
	r.enterLoss()
}

// Undo restores cwnd and ssthresh from before the last reduction (never shrinking them)
// and ends the recovery, so a later OnRecoveryExit does not deflate.
func (r *NewReno) Undo() { r.undo() }

// OnIdle shrinks cwnd to the restart window min(IW, cwnd) (RFC 5681 §4.1). The idle
// time is not needed: the caller calls OnIdle only after more than one RTO of silence.
func (r *NewReno) OnIdle(rto time.Duration, now time.Time) { r.restart() }
