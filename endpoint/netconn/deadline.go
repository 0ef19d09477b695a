package netconn

import (
	"sync"
	"time"
)

// wake posts the one-slot wakeup channel ch without blocking. A waiter that finds the slot
// full on its next wait wakes at once and re-checks its condition, so wakeups are never
// lost and a stale one costs one extra check.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// deadline is one direction's deadline (net.Conn's SetReadDeadline and SetWriteDeadline).
// Its fields are guarded by mu, the owning connection's mutex. The timer is created on the
// first deadline in the future and reused after, so a connection that never sets one never
// pays for it.
type deadline struct {
	mu      *sync.Mutex
	ch      chan struct{} // the direction's wakeup channel
	t       time.Time     // zero: none
	expired bool
	timer   *time.Timer
}

func (d *deadline) init(mu *sync.Mutex, ch chan struct{}) { d.mu, d.ch = mu, ch }

// set arms the deadline t (zero clears it) and wakes the waiter so it re-evaluates. Called
// with mu held.
func (d *deadline) set(t time.Time) {
	d.t = t
	d.expired = false
	if d.timer != nil {
		d.timer.Stop()
	}
	if !t.IsZero() {
		if dur := time.Until(t); dur <= 0 {
			d.expired = true
		} else if d.timer == nil {
			d.timer = time.AfterFunc(dur, d.fire)
		} else {
			d.timer.Reset(dur)
		}
	}
	wake(d.ch)
}

// fire runs in the timer's goroutine. A timer that fired just as set re-armed it finds the
// new deadline still ahead and does nothing but a spurious wakeup.
func (d *deadline) fire() {
	d.mu.Lock()
	if !d.t.IsZero() && !time.Now().Before(d.t) {
		d.expired = true
	}
	d.mu.Unlock()
	wake(d.ch)
}

// stop releases the timer (on Close). Called with mu held.
func (d *deadline) stop() {
	if d.timer != nil {
		d.timer.Stop()
	}
}

// deadlines is the pair a connection embeds.
type deadlines struct {
	rd, wd deadline
}

// setDeadline, setRead and setWrite are the net.Conn setters; mu is the connection's mutex.
func (d *deadlines) setBoth(mu *sync.Mutex, t time.Time) {
	mu.Lock()
	d.rd.set(t)
	d.wd.set(t)
	mu.Unlock()
}

func (d *deadlines) setRead(mu *sync.Mutex, t time.Time) {
	mu.Lock()
	d.rd.set(t)
	mu.Unlock()
}

func (d *deadlines) setWrite(mu *sync.Mutex, t time.Time) {
	mu.Lock()
	d.wd.set(t)
	mu.Unlock()
}

func (d *deadlines) stop() {
	d.rd.stop()
	d.wd.stop()
}
