package main

import (
	"sync"
	"time"
)

// delayLine is the wire of a delayed link: packets the delivery goroutine took off the queue
// wait here, copied into link memory, until they are due; a goroutine of its own delivers
// them, so a burst being delivered never keeps the queue from draining (a network carries
// packets in flight while the receiver works). The delay is constant, so the line is FIFO.
type delayLine struct {
	d      *direction
	delay  time.Duration
	signal chan struct{} // cap 1: the line became non-empty

	mu   sync.Mutex
	ring []frame  // guarded by mu
	head int      // guarded by mu
	n    int      // guarded by mu
	free [][]byte // link buffers, guarded by mu

	out []frame // owned by the line's goroutine
}

func newDelayLine(d *direction) *delayLine {
	l := &delayLine{d: d, delay: d.cfg.Impair.Delay, signal: make(chan struct{}, 1),
		ring: make([]frame, delayLineLen), out: make([]frame, maxBatch)}
	for i := range l.ring {
		l.ring[i].parts = make([][]byte, 1)
	}
	for i := range l.out {
		l.out[i].parts = make([][]byte, 1)
	}
	return l
}

// push copies f into link memory and appends it; a full line drops it (counted as Full).
// The caller still owns f and releases it.
func (l *delayLine) push(f *frame) {
	l.mu.Lock()
	if l.n == len(l.ring) {
		l.mu.Unlock()
		l.d.stats.Full.Add(1)
		return
	}
	var buf []byte
	if k := len(l.free); k > 0 {
		buf = l.free[k-1]
		l.free = l.free[:k-1]
	} else {
		buf = make([]byte, l.d.cfg.MTU)
	}
	if cap(buf) < f.size { // a GSO packet (no scenario delays them today)
		buf = make([]byte, f.size)
	}
	buf = buf[:f.size]
	off := 0
	for _, p := range f.parts {
		off += copy(buf[off:], p)
	}
	e := &l.ring[(l.head+l.n)%len(l.ring)]
	e.buf = buf
	e.size = f.size
	e.gso, e.gsoSize, e.linkCsum = f.gso, f.gsoSize, f.linkCsum
	e.at = time.Now().Add(l.delay)
	e.parts = append(e.parts[:0], buf)
	l.n++
	wasEmpty := l.n == 1
	l.mu.Unlock()
	if wasEmpty {
		select {
		case l.signal <- struct{}{}:
		default:
		}
	}
}

// run delivers due packets in batches until the direction closes.
func (l *delayLine) run() {
	defer l.d.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		l.mu.Lock()
		now := time.Now()
		k := 0
		for k < l.n && k < len(l.out) {
			i := (l.head + k) % len(l.ring)
			if l.ring[i].at.After(now) {
				break
			}
			l.out[k], l.ring[i] = l.ring[i], l.out[k]
			k++
		}
		l.head = (l.head + k) % len(l.ring)
		l.n -= k
		wait := time.Duration(-1)
		if k == 0 && l.n > 0 {
			wait = l.ring[l.head].at.Sub(now)
		}
		l.mu.Unlock()
		if k > 0 {
			out := l.out[:k]
			l.d.to.deliver(out)
			l.d.count(out)
			l.mu.Lock()
			for i := range out {
				l.free = append(l.free, out[i].buf[:cap(out[i].buf)])
				out[i].buf = nil
			}
			l.mu.Unlock()
			continue
		}
		var due <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			due = timer.C
		}
		select {
		case <-l.d.done:
			timer.Stop()
			return
		case <-l.signal:
		case <-due:
		}
		timer.Stop()
	}
}
