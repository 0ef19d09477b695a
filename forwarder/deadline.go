package forwarder

import (
	"sync"
	"time"
)

// wake posts the one-slot channel ch without blocking: a waiter re-checks its condition.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// deadline is one direction's net.Conn deadline of a session, on the wall clock as
// package net's (the idle timeout, a protocol timer, runs on the stack's clock instead).
// Its fields are guarded by mu, the session's mutex; the timer is made on first use.
type deadline struct {
	mu      *sync.Mutex
	ch      chan struct{}
	t       time.Time
	expired bool
	timer   *time.Timer
}

func (d *deadline) init(mu *sync.Mutex, ch chan struct{}) { d.mu, d.ch = mu, ch }

// set arms t (zero clears it) and wakes the waiter; mu held.
func (d *deadline) set(t time.Time) {
	d.t, d.expired = t, false
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

func (d *deadline) fire() {
	d.mu.Lock()
	if !d.t.IsZero() && !time.Now().Before(d.t) {
		d.expired = true
	}
	d.mu.Unlock()
	wake(d.ch)
}

// stop stops the timer (Close); mu held.
func (d *deadline) stop() {
	if d.timer != nil {
		d.timer.Stop()
	}
}
