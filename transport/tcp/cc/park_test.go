package cc

import (
	"testing"
	"time"
)

type parker interface {
	Controller
	Parked(mss, initCwnd int) (cwnd, ssthresh int, exact bool)
	Resume(mss, initCwnd, cwnd, ssthresh int)
}

// A fresh controller (Init, then the handshake's SetMSS) parks exactly; one that has run
// congestion avoidance does not, and Resume gives back its window either way.
func TestParkResume(t *testing.T) {
	for _, p := range []parker{new(CUBIC), new(NewReno)} {
		p.Init(536, testIW, t0)
		p.SetMSS(1448)
		cwnd, ss, exact := p.Parked(1448, testIW)
		if !exact || cwnd != p.Cwnd() || ss != p.Ssthresh() {
			t.Errorf("%s fresh: Parked = %d, %d, %v; cwnd %d ssthresh %d", p.Name(), cwnd, ss, exact, p.Cwnd(), p.Ssthresh())
		}
		now := t0
		p.OnCongestion(p.Cwnd(), now)
		p.OnRecoveryExit(now)
		for range 50 {
			now = now.Add(10 * time.Millisecond)
			p.OnAck(1448, 10*time.Millisecond, 10*time.Millisecond, p.Cwnd(), true, now)
		}
		cwnd, ss, exact = p.Parked(1448, testIW)
		if cwnd != p.Cwnd() || ss != p.Ssthresh() {
			t.Errorf("%s: Parked window %d/%d, want %d/%d", p.Name(), cwnd, ss, p.Cwnd(), p.Ssthresh())
		}
		if p.Name() == "cubic" && exact {
			t.Errorf("cubic in congestion avoidance parks exactly: its epoch and W_max would be lost unseen")
		}
		p.Resume(1448, testIW, cwnd, ss)
		if p.Cwnd() != cwnd || p.Ssthresh() != ss {
			t.Errorf("%s: Resume gave %d/%d, want %d/%d", p.Name(), p.Cwnd(), p.Ssthresh(), cwnd, ss)
		}
		if _, _, exact := p.Parked(1448, testIW); !exact {
			t.Errorf("%s: a resumed controller does not park exactly", p.Name())
		}
	}
}
