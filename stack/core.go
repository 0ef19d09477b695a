package stack

import (
	"sync"
	"sync/atomic"
)

// coreLock is a core's lock (lwIP's LOCK_TCPIP_CORE). Unlock first flushes what the
// critical section queued for output, so every entry point ends by writing its frames.
type coreLock struct {
	mu    sync.Mutex
	flush func()
	held  atomic.Bool
}

func (c *coreLock) Lock() {
	c.mu.Lock()
	c.held.Store(true)
}

// Held reports whether the lock is held (by anyone: Go has no goroutine identity).
func (c *coreLock) Held() bool { return c.held.Load() }

func (c *coreLock) Unlock() {
	if c.flush != nil {
		c.flush()
	}
	c.held.Store(false)
	c.mu.Unlock()
}

// Callback runs fn in core context and returns when it has run (lwIP's tcpip_callback, made
// synchronous: Go callers that want it asynchronous start a goroutine). fn may use the ip
// and transport layers directly. Callback must not be called from core context.
func (s *Stack) Callback(fn func()) {
	s.core.Lock()
	defer s.core.Unlock()
	fn()
}

// Lock takes the core lock (lwIP's LOCK_TCPIP_CORE) for code outside core context that
// drives the ip and transport layers directly, as the netconn layer does; Unlock flushes
// the frames the critical section queued, then releases it. Prefer Callback; never call
// Lock from core context (callbacks, timers), which already holds it.
func (s *Stack) Lock() { s.core.Lock() }

// Unlock flushes queued output and releases the core lock taken by Lock.
func (s *Stack) Unlock() { s.core.Unlock() }

// OnClose registers fn to run in core context when the stack closes, before its protocols
// free their PCBs (the upper layers use it to wake their blocked callers). It reports
// false, without registering, when the stack is already closed. Core context: call it
// inside Callback or between Lock and Unlock.
func (s *Stack) OnClose(fn func()) bool {
	if s.closed {
		return false
	}
	s.onClose = append(s.onClose, fn)
	return true
}

// AssertCore panics unless the core lock is held (lwIP's LWIP_ASSERT_CORE_LOCKED). It checks
// in every build; the protocol layers' own checks (clock.Timeouts.AssertCore at their
// exported entry points) run only in builds with the wispcheck tag, as the test command's.
func (s *Stack) AssertCore() {
	if !s.core.held.Load() {
		panic("wisp: core lock not held")
	}
}
