package clock

import (
	"math/rand"
	"sync"
	"testing"
	"time"
)

func TestFakeRunsInDeadlineOrder(t *testing.T) {
	c := NewFake(time.Time{})
	var got []int
	c.AfterFunc(3*time.Second, func() { got = append(got, 3) })
	c.AfterFunc(1*time.Second, func() {
		got = append(got, 1)
		c.AfterFunc(time.Second, func() { got = append(got, 2) }) // due at 2s, inside this Advance
	})
	stop := c.AfterFunc(2500*time.Millisecond, func() { got = append(got, 99) })
	if !stop.Stop() {
		t.Fatal("Stop of an armed timer reported false")
	}
	c.Advance(5 * time.Second)
	if want := []int{1, 2, 3}; len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("ran %v, want %v", got, want)
	}
	if c.Now().Sub(time.Time{}) != 5*time.Second || c.Pending() != 0 {
		t.Fatalf("now %v pending %d", c.Now(), c.Pending())
	}
}

func TestTimeoutsHeap(t *testing.T) {
	c := NewFake(time.Time{})
	var mu sync.Mutex
	q := NewTimeouts(c, &mu)
	rng := rand.New(rand.NewSource(1))
	ts := make([]Timeout, 200)
	var fired []time.Duration
	for i := range ts {
		ts[i].Init(func() { fired = append(fired, c.Now().Sub(time.Time{})) })
	}
	mu.Lock()
	for i := range ts {
		q.Schedule(&ts[i], time.Duration(rng.Intn(1000))*time.Millisecond)
	}
	for i := 0; i < len(ts); i += 3 {
		q.Cancel(&ts[i])
	}
	for i := 1; i < len(ts); i += 7 {
		q.Schedule(&ts[i], time.Duration(rng.Intn(1000))*time.Millisecond) // re-arm in place
	}
	n := q.Len()
	mu.Unlock()
	c.Advance(2 * time.Second)
	if len(fired) != n {
		t.Fatalf("fired %d of %d", len(fired), n)
	}
	for i := 1; i < len(fired); i++ {
		if fired[i] < fired[i-1] {
			t.Fatalf("out of order at %d: %v", i, fired)
		}
	}
	if c.Pending() != 0 || q.Len() != 0 {
		t.Fatalf("clock timers %d, queue %d after everything ran", c.Pending(), q.Len())
	}
}

// An idle queue arms no clock timer, so an idle stack never wakes up.
func TestTimeoutsIdleNeverWakes(t *testing.T) {
	c := NewFake(time.Time{})
	var mu sync.Mutex
	q := NewTimeouts(c, &mu)
	var tm Timeout
	runs := 0
	tm.Init(func() { runs++ })
	mu.Lock()
	q.Schedule(&tm, time.Second)
	mu.Unlock()
	c.Advance(time.Second)
	if runs != 1 || q.Wakeups() != 1 {
		t.Fatalf("runs %d wakeups %d", runs, q.Wakeups())
	}
	c.Advance(24 * time.Hour)
	if c.Pending() != 0 || q.Wakeups() != 1 {
		t.Fatalf("idle queue: %d clock timers, %d wakeups", c.Pending(), q.Wakeups())
	}
	mu.Lock()
	q.Schedule(&tm, time.Hour)
	q.Cancel(&tm)
	mu.Unlock()
	if c.Pending() != 0 {
		t.Fatal("cancelling the last timeout left the clock timer armed")
	}
}

func TestTimeoutsRealClock(t *testing.T) {
	var mu sync.Mutex
	q := NewTimeouts(Real, &mu)
	done := make(chan struct{})
	var tm Timeout
	tm.Init(func() { close(done) })
	mu.Lock()
	q.Schedule(&tm, 5*time.Millisecond)
	mu.Unlock()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("real timer did not fire")
	}
	mu.Lock()
	q.Close()
	mu.Unlock()
}
