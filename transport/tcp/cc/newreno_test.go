package cc

import (
	"testing"
	"time"
)

// RFC 5681 §3.1 congestion avoidance with RFC 3465 §2.1 byte counting: one SMSS per
// window of acknowledged bytes, whatever the ACK size.
func TestNewRenoCongestionAvoidance(t *testing.T) {
	for _, per := range []int{1, 100, testMSS, 2 * testMSS, 7 * testMSS} {
		r := new(NewReno)
		r.Init(testMSS, 20, t0)
		r.OnCongestion(40*testMSS, t0) // ssthresh = cwnd = 10 segments... of 20 in flight
		r.OnRecoveryExit(t0)
		if r.Cwnd() != 10*testMSS {
			t.Fatalf("cwnd %d after recovery", r.Cwnd())
		}
		now := t0
		for round := range 20 {
			want := (10 + round) * testMSS
			if r.Cwnd() != want {
				t.Fatalf("acks of %d: round %d cwnd %d, want %d", per, round, r.Cwnd(), want)
			}
			// Acknowledge exactly one window in ACKs of per bytes (the last one smaller).
			for left := r.Cwnd(); left > 0; left -= per {
				now = now.Add(time.Millisecond)
				r.OnAck(min(per, left), 0, 0, r.Cwnd(), true, now)
			}
		}
	}
}

// One ACK, however large, adds at most one SMSS in congestion avoidance.
func TestNewRenoHugeAck(t *testing.T) {
	r := new(NewReno)
	r.Init(testMSS, 10, t0)
	r.OnRTO(20*testMSS, t0) // ssthresh 5 segments
	r.OnAck(2*testMSS, 0, 0, 0, true, t0)
	r.OnAck(2*testMSS, 0, 0, 0, true, t0)
	if r.Cwnd() != r.Ssthresh() {
		t.Fatalf("cwnd %d, ssthresh %d", r.Cwnd(), r.Ssthresh())
	}
	for i := range 10 {
		before := r.Cwnd()
		r.OnAck(1<<62, 0, 0, 0, true, t0)
		if d := r.Cwnd() - before; d > testMSS {
			t.Fatalf("huge ACK %d grew cwnd by %d", i, d)
		}
	}
}

// The classic sawtooth in rounds: after each loss the window halves and then climbs one
// segment per RTT.
func TestNewRenoSawtoothRounds(t *testing.T) {
	r := new(NewReno)
	r.Init(testMSS, 10, t0)
	now := t0
	const limit = 60 * testMSS // the path drops when cwnd exceeds this
	var losses []int
	for round := range 400 {
		if r.Cwnd() > limit {
			w := r.Cwnd()
			r.OnCongestion(w, now)
			if r.Cwnd() != w/2 {
				t.Fatalf("cwnd %d after loss at %d", r.Cwnd(), w)
			}
			now = now.Add(100 * time.Millisecond)
			r.OnRecoveryExit(now)
			losses = append(losses, round)
			continue
		}
		before := r.Cwnd()
		now = ackRound(r, testMSS, 100*time.Millisecond, now)
		if r.Ssthresh() < MaxWindow && r.Cwnd()-before != testMSS {
			t.Fatalf("congestion avoidance round grew cwnd %d -> %d", before, r.Cwnd())
		}
	}
	// Steady state: just above 60 segments -> half of that -> +1 per round until above 60
	// again: 30 or 31 rounds of growth plus one of recovery.
	if len(losses) < 10 {
		t.Fatalf("losses at rounds %v", losses)
	}
	for i := 2; i < len(losses); i++ {
		if d := losses[i] - losses[i-1]; d != 31 && d != 32 {
			t.Fatalf("sawtooth period %d rounds, want 31 or 32 (losses at %v)", d, losses)
		}
	}
}
