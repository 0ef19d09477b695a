package cc

import "time"

// Controller sizes one connection's congestion window. Loss detection and recovery
// (fast retransmit, RFC 6675 pipe, NewReno partial ACKs, RACK-TLP) belong to the caller;
// a Controller only decides cwnd and ssthresh. All sizes are bytes. Methods are called in
// core context and must not allocate.
type Controller interface {
	// Name is "cubic" or "newreno".
	Name() string
	// Init starts the connection: cwnd = initCwnd segments of mss bytes (RFC 6928/5681),
	// ssthresh = "arbitrarily high".
	Init(mss, initCwnd int, now time.Time)
	// SetMSS changes the segment size (PMTU); cwnd keeps its segment count.
	SetMSS(mss int)
	// Cwnd and Ssthresh return the current values.
	Cwnd() int
	Ssthresh() int
	// OnAck reports acked newly acknowledged bytes outside loss recovery, with the latest
	// RTT sample (0 if none), the smoothed minimum RTT seen, and the bytes in flight before
	// the ACK; cwndLimited says the sender was using the full window (RFC 7661: do not grow
	// an unused window).
	OnAck(acked int, rtt, minRTT time.Duration, inflight int, cwndLimited bool, now time.Time)
	// OnCongestion reports a loss detected by duplicate ACKs, SACK or RACK: the caller
	// enters recovery. The controller sets ssthresh and the window to use during recovery.
	OnCongestion(inflight int, now time.Time)
	// OnRecoveryExit reports that recovery ended (the recovery point was acknowledged):
	// cwnd becomes ssthresh (RFC 6582 §3.2 step 3 "deflate").
	OnRecoveryExit(now time.Time)
	// OnRTO reports a retransmission timeout: ssthresh from flight size, cwnd = 1 segment
	// (RFC 5681 §3.1 eq. 4).
	OnRTO(inflight int, now time.Time)
	// Undo restores the state before the last OnCongestion/OnRTO, when it proved spurious
	// (RFC 3522 Eifel, RFC 5682 F-RTO, or DSACK).
	Undo()
	// OnIdle reports that the connection was idle longer than an RTO before sending again
	// (RFC 5681 §4.1 restart window).
	OnIdle(rto time.Duration, now time.Time)
}

// Limits every Controller enforces, whatever its inputs.
const (
	// MaxWindow bounds cwnd and ssthresh (bytes). The cap keeps every product of a window
	// and a segment size inside int64 and far from float64 trouble; a 1 GiB window is
	// already 8.6 Gbit/s at a 1 s RTT. (gVisor once overflowed CUBIC's window: gvisor#11632.)
	MaxWindow = 1 << 30
	// MaxMSS bounds the segment size accepted by Init and SetMSS (the MSS option is 16 bits).
	MaxMSS = 65535
	// DefaultMSS is used when a method runs before Init (RFC 9293 §3.7.1: 536 when the
	// peer sent no MSS option).
	DefaultMSS = 536
	// DefaultInitCwnd is the initial window, in segments, of a Controller used before Init
	// (RFC 3390: 4 segments of 536 bytes).
	DefaultInitCwnd = 4
)

// abcL is RFC 3465's limit L: "cwnd MUST NOT be increased by more than L*SMSS bytes" per
// ACK in slow start; L = 2*SMSS is the largest it allows.
const abcL = 2

// New returns a new controller by name ("cubic" or "newreno"), or false. A PCB should
// rather embed CUBIC or NewReno by value; New allocates.
func New(name string) (Controller, bool) {
	switch name {
	case "cubic":
		return new(CUBIC), true
	case "newreno":
		return new(NewReno), true
	}
	return nil, false
}

// window is the state and the rules NewReno and CUBIC share: segment size, cwnd, ssthresh,
// RFC 3465 byte counting, the recovery and loss flags and the values Undo restores.
type window struct {
	mss      int // SMSS, in [1, MaxMSS]; 0 before Init
	iw       int // initial window in segments, for the RFC 5681 §4.1 restart window
	cwnd     int // in [mss, MaxWindow]
	ssthresh int // in [2*mss, MaxWindow]
	// acc is RFC 3465's bytes_acked: congestion avoidance adds SMSS per cwnd bytes acked.
	acc int
	// inRecovery: between OnCongestion and OnRecoveryExit; a second OnCongestion in the
	// same episode does not reduce again (RFC 6582 §3.2: one reduction per window of data).
	inRecovery bool
	// inLoss: after OnRTO until an ACK acknowledges new data; a repeated timeout keeps
	// ssthresh (RFC 5681 §3.1: "the value of ssthresh is held constant").
	inLoss bool
	// canUndo: priorCwnd and priorSsthresh hold the state before the last reduction.
	canUndo       bool
	priorCwnd     int
	priorSsthresh int
}

func (w *window) init(mss, initCwnd int) {
	*w = window{}
	w.mss = clampMSS(mss)
	if initCwnd < 1 {
		initCwnd = 1
	}
	if initCwnd > MaxWindow {
		initCwnd = MaxWindow
	}
	w.iw = initCwnd
	w.cwnd = w.clampCwnd(int64(initCwnd) * int64(w.mss))
	// RFC 5681 §3.1: "The initial value of ssthresh SHOULD be set arbitrarily high".
	w.ssthresh = MaxWindow
}

// ready initializes a Controller used before Init, so no method divides by a zero MSS.
func (w *window) ready() {
	if w.mss == 0 {
		w.init(DefaultMSS, DefaultInitCwnd)
	}
}

func (w *window) Cwnd() int     { return w.cwnd }
func (w *window) Ssthresh() int { return w.ssthresh }

// setMSS rescales every byte quantity so that it keeps its segment count.
func (w *window) setMSS(mss int) {
	w.ready()
	mss = clampMSS(mss)
	old := w.mss
	if mss == old {
		return
	}
	scale := func(v int) int64 { return int64(v) * int64(mss) / int64(old) }
	w.mss = mss
	w.cwnd = w.clampCwnd(scale(w.cwnd))
	if w.ssthresh < MaxWindow {
		w.ssthresh = w.clampSsthresh(scale(w.ssthresh))
	}
	w.ssthresh = w.clampSsthresh(int64(w.ssthresh)) // 2*SMSS may have grown
	w.acc = int(min(scale(w.acc), int64(w.cwnd)))
	w.priorCwnd = w.clampCwnd(scale(w.priorCwnd))
	w.priorSsthresh = w.clampSsthresh(scale(w.priorSsthresh))
}

// slowStart grows cwnd by RFC 5681 eq. 2 with RFC 3465 byte counting and reports whether
// the connection was in slow start. "cwnd += min(N, SMSS)" becomes min(N, L*SMSS) with
// L = 2 (RFC 3465 §2.2), and cwnd stops at ssthresh.
func (w *window) slowStart(acked int) bool {
	if w.cwnd >= w.ssthresh {
		return false
	}
	inc := min(acked, abcL*w.mss)
	w.cwnd = min(w.cwnd+inc, w.ssthresh)
	return true
}

// save records the state a spurious reduction must give back.
func (w *window) save() {
	w.canUndo = true
	w.priorCwnd = w.cwnd
	w.priorSsthresh = w.ssthresh
}

// flight is the FlightSize a reduction is computed from: never negative and never above
// cwnd, so that a congestion signal cannot raise the window.
func (w *window) flight(inflight int) int {
	return max(0, min(inflight, w.cwnd))
}

// undo gives back the saved window. max, not assignment: if cwnd has grown past the
// saved value since the reduction, the undo must not shrink it.
func (w *window) undo() bool {
	if !w.canUndo {
		return false
	}
	w.canUndo = false
	w.cwnd = max(w.cwnd, w.priorCwnd)
	w.ssthresh = max(w.ssthresh, w.priorSsthresh)
	w.inRecovery = false
	w.inLoss = false
	w.acc = 0
	return true
}

// restart applies RFC 5681 §4.1: "cwnd to no more than RW before beginning
// transmission", RW = min(IW, cwnd). ssthresh keeps three quarters of the old window
// (RFC 2861 §3), so slow start climbs back to most of it instead of crawling up in
// congestion avoidance.
func (w *window) restart() {
	w.ready()
	w.ssthresh = w.clampSsthresh(max(int64(w.ssthresh), int64(w.cwnd)/4*3))
	rw := min(int64(w.iw)*int64(w.mss), int64(w.cwnd))
	w.cwnd = w.clampCwnd(rw)
	w.acc = 0
}

// exitRecovery ends a recovery begun by OnCongestion: cwnd deflates to ssthresh. false
// (nothing changed) outside one.
func (w *window) exitRecovery() bool {
	if !w.inRecovery {
		return false
	}
	w.inRecovery = false
	w.cwnd = w.clampCwnd(int64(w.ssthresh))
	w.acc = 0
	return true
}

// enterLoss sets the window of a retransmission timeout, "LW is equal to 1 full-sized
// segment" (RFC 5681 §3.1), and the loss state that holds ssthresh across repeated
// timeouts until an ACK acknowledges new data.
func (w *window) enterLoss() {
	w.cwnd = w.mss
	w.acc = 0
	w.inRecovery = false
	w.inLoss = true
}

func (w *window) clampCwnd(v int64) int {
	return int(max(int64(w.mss), min(v, MaxWindow)))
}

func (w *window) clampSsthresh(v int64) int {
	return int(max(2*int64(w.mss), min(v, MaxWindow)))
}

func clampMSS(mss int) int {
	return max(1, min(mss, MaxMSS))
}
