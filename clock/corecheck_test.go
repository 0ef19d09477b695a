package clock

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type heldLock struct {
	sync.Mutex
	held atomic.Bool
}

func (l *heldLock) Lock()      { l.Mutex.Lock(); l.held.Store(true) }
func (l *heldLock) Unlock()    { l.held.Store(false); l.Mutex.Unlock() }
func (l *heldLock) Held() bool { return l.held.Load() }

// TestAssertCore: with the wispcheck tag (the test command's) AssertCore panics outside the
// core lock and passes inside it; without the tag it never panics.
func TestAssertCore(t *testing.T) {
	var l heldLock
	q := NewTimeouts(NewFake(time.Unix(0, 0)), &l)
	panicked := func() (p bool) {
		defer func() { p = recover() != nil }()
		q.AssertCore()
		return false
	}
	if got := panicked(); got != checkCore {
		t.Fatalf("AssertCore outside the core: panicked %v, want %v (wispcheck %v)", got, checkCore, checkCore)
	}
	l.Lock()
	defer l.Unlock()
	if panicked() {
		t.Fatal("AssertCore inside the core panicked")
	}
}
