package cc

import (
	"math"
	"testing"
	"time"
)

// t0 is an arbitrary start time; the controllers only ever see differences.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	testMSS = 1000
	testIW  = 10
)

// controllers returns one fresh Controller of each kind, initialized.
func controllers() []Controller {
	return []Controller{initialized(new(NewReno)), initialized(new(CUBIC))}
}

func initialized(c Controller) Controller {
	c.Init(testMSS, testIW, t0)
	return c
}

// beta is the multiplicative decrease factor of c.
func beta(c Controller) float64 {
	if c.Name() == "cubic" {
		return cubicBeta
	}
	return 0.5
}

// ackRound acknowledges one round trip's worth of data: cwnd bytes in ACKs of per bytes
// each (the last one smaller), spread evenly over rtt, with the window fully used. It returns the new time.
func ackRound(c Controller, per int, rtt time.Duration, now time.Time) time.Time {
	w := c.Cwnd()
	n := (w + per - 1) / per
	step := rtt / time.Duration(n)
	for left := w; left > 0; left -= per {
		now = now.Add(step)
		c.OnAck(min(per, left), rtt, rtt, w, true, now)
	}
	return now
}

// growTo drives c in slow start until cwnd >= target (ssthresh must be above target).
func growTo(t *testing.T, c Controller, target int, now time.Time) time.Time {
	t.Helper()
	for i := 0; c.Cwnd() < target; i++ {
		if i > 1000 {
			t.Fatalf("cwnd stuck at %d below %d", c.Cwnd(), target)
		}
		now = now.Add(time.Millisecond)
		c.OnAck(min(2*testMSS, target-c.Cwnd()), 0, 0, c.Cwnd(), true, now)
	}
	return now
}

// checkInvariants verifies the bounds every Controller promises after any event.
func checkInvariants(t testing.TB, c Controller, what string) {
	t.Helper()
	var w *window
	switch c := c.(type) {
	case *NewReno:
		w = &c.window
	case *CUBIC:
		w = &c.window
		for _, f := range []float64{c.wMax, c.k, c.wEst, c.cwndPrior, c.frac,
			c.prior.wMax, c.prior.k, c.prior.wEst, c.prior.cwndPrior} {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				t.Fatalf("%s: non-finite CUBIC state %+v", what, c.cubicState)
			}
		}
		if c.frac < 0 || c.frac >= 1 {
			t.Fatalf("%s: frac %v outside [0, 1)", what, c.frac)
		}
	}
	if w.mss < 1 || w.mss > MaxMSS {
		t.Fatalf("%s: mss %d", what, w.mss)
	}
	if cw := c.Cwnd(); cw < w.mss || cw > MaxWindow {
		t.Fatalf("%s: cwnd %d outside [%d, %d]", what, cw, w.mss, MaxWindow)
	}
	if ss := c.Ssthresh(); ss < 2*w.mss || ss > MaxWindow {
		t.Fatalf("%s: ssthresh %d outside [%d, %d]", what, ss, 2*w.mss, MaxWindow)
	}
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol*math.Abs(want) }
