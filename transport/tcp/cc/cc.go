package cc

// TEMPORARY CONTRACT SKELETON: the interface is the contract between transport/tcp and the
// algorithms; the constructors panic until the implementation lands.

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

// CUBIC (RFC 9438) with fast convergence and the Reno-friendly region. The zero value
// followed by Init is ready: a PCB embeds one by value (no allocation per connection).
type CUBIC struct{ _ int }

// NewReno (RFC 5681, RFC 6582 window rules, RFC 3465 byte counting with L=2). The zero value
// followed by Init is ready.
type NewReno struct{ _ int }

// New returns a new controller by name ("cubic" or "newreno"), or false.
func New(name string) (Controller, bool) { panic("cc: unimplemented") }
