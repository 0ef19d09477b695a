package cc

import (
	"testing"
	"time"
)

// Every method runs on the hot path of a connection: none may allocate.
func TestNoAllocs(t *testing.T) {
	for _, c := range controllers() {
		now := t0
		allocs := testing.AllocsPerRun(1000, func() {
			now = now.Add(time.Millisecond)
			c.OnAck(testMSS, time.Millisecond, time.Millisecond, c.Cwnd(), true, now)
			c.OnAck(testMSS, time.Millisecond, time.Millisecond, c.Cwnd(), false, now)
			c.OnCongestion(c.Cwnd(), now)
			c.OnRecoveryExit(now)
			c.Undo()
			c.OnRTO(c.Cwnd(), now)
			c.OnAck(testMSS, time.Millisecond, time.Millisecond, c.Cwnd(), true, now)
			c.OnIdle(time.Second, now)
			c.SetMSS(1460)
			c.SetMSS(testMSS)
			_ = c.Cwnd() + c.Ssthresh()
			_ = c.Name()
			c.Init(testMSS, testIW, now)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per run", c.Name(), allocs)
		}
	}
}

func BenchmarkOnAck(b *testing.B) {
	for _, c := range controllers() {
		b.Run(c.Name(), func(b *testing.B) {
			c.OnCongestion(c.Cwnd(), t0) // congestion avoidance: the common case
			c.OnRecoveryExit(t0)
			now := t0
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(10 * time.Microsecond)
				c.OnAck(1448, 20*time.Millisecond, 20*time.Millisecond, c.Cwnd(), true, now)
				if c.Cwnd() > 1<<24 {
					c.OnCongestion(c.Cwnd(), now)
					c.OnRecoveryExit(now)
				}
			}
		})
	}
}

func BenchmarkOnCongestion(b *testing.B) {
	for _, c := range controllers() {
		b.Run(c.Name(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.OnCongestion(c.Cwnd(), t0)
				c.OnRecoveryExit(t0)
				c.Undo()
			}
		})
	}
}
