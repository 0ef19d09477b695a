package clock

import (
	"sync"
	"testing"
	"time"
)

// A wakeup that waits for the core is late by the time it waited, measured from the
// earliest deadline it runs; one on time is not counted.
func TestTimeoutsLate(t *testing.T) {
	c := NewFake(time.Unix(1e9, 0))
	var mu sync.Mutex
	q := NewTimeouts(c, &mu)
	var a, b Timeout
	a.Init(func() {})
	b.Init(func() {})
	mu.Lock()
	q.Schedule(&a, 10*time.Millisecond)
	mu.Unlock()
	c.Advance(time.Second)
	mu.Lock()
	if n, worst := q.Late(); n != 0 || worst != 0 {
		t.Fatalf("a wakeup on time: late %d, worst %v", n, worst)
	}
	// The core is held while a is due: the wakeup blocks on the lock inside Advance, and
	// time moves on (a second Advance) before the lock is released.
	q.Schedule(&a, 10*time.Millisecond)
	q.Schedule(&b, 20*time.Millisecond)
	fired := make(chan struct{})
	go func() {
		c.Advance(10 * time.Millisecond)
		close(fired)
	}()
	for c.Pending() != 0 { // the wakeup has been taken off the clock: it waits for mu
		time.Sleep(time.Millisecond)
	}
	c.Advance(time.Second)
	mu.Unlock()
	<-fired
	mu.Lock()
	defer mu.Unlock()
	n, worst := q.Late()
	if n != 1 || worst != time.Second {
		t.Fatalf("a wakeup held for 1 s: late %d, worst %v; want 1, 1s", n, worst)
	}
	if a.Pending() || b.Pending() {
		t.Fatal("the late wakeup did not run every due timeout")
	}
	q.Close()
}
