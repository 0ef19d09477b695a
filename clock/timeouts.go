package clock

import (
	"sync"
	"time"
)

// Timeout is one protocol timer, embedded in the object it belongs to (an ARP table, a
// reassembly queue, a PCB), so arming it never allocates and never fails. The zero value is
// idle; Init sets the function it runs.
type Timeout struct {
	fn   func()
	when time.Time
	idx  int // position in the queue's heap, plus one; 0 when not scheduled
}

// Init sets the function t runs, in core context, when it falls due.
func (t *Timeout) Init(fn func()) { t.fn = fn }

// Pending reports whether t is scheduled.
func (t *Timeout) Pending() bool { return t.idx != 0 }

// When returns the deadline of a pending t.
func (t *Timeout) When() time.Time { return t.when }

// Timeouts is a stack's timer queue: a min-heap of Timeouts and one clock timer armed for
// the earliest of them. When the clock timer fires, the queue takes the core lock and runs
// every due Timeout. With nothing scheduled no clock timer is armed.
//
// Schedule, Cancel and Now are called in core context (with core held).
type Timeouts struct {
	clk     Clock
	core    sync.Locker
	heap    []*Timeout
	timer   Timer
	armed   bool
	armedAt time.Time
	wakeups uint64
	late    uint64        // wakeups at least LateWakeup after the earliest deadline they ran
	maxLate time.Duration // the worst lateness of a wakeup
	closed  bool
}

// LateWakeup is the lateness from which a wakeup counts in Late: a queue that fires this
// long after a deadline had its core held (or its process starved) that long. It equals
// stats.LateTimer (clock cannot import stats; a test keeps the two equal).
const LateWakeup = 100 * time.Millisecond

// NewTimeouts returns a queue driven by clk whose functions run with core held.
func NewTimeouts(clk Clock, core sync.Locker) *Timeouts {
	return &Timeouts{clk: clk, core: core, heap: make([]*Timeout, 0, 64)}
}

// CoreLocker is a core lock that can tell whether it is held; a stack's core lock is one.
type CoreLocker interface {
	sync.Locker
	Held() bool
}

// AssertCore panics unless the core lock given to NewTimeouts is held (lwIP's
// LWIP_ASSERT_CORE_LOCKED). The protocol layers call it at their exported entry points. It
// checks only in builds with the wispcheck tag, as the test command runs; in production it
// is empty and costs nothing. A core that is not a CoreLocker is never checked.
func (q *Timeouts) AssertCore() {
	if checkCore {
		if c, ok := q.core.(CoreLocker); ok && !c.Held() {
			panic("wisp: core lock not held")
		}
	}
}

// Now returns the clock's time.
func (q *Timeouts) Now() time.Time { return q.clk.Now() }

// Clock returns the clock that drives the queue.
func (q *Timeouts) Clock() Clock { return q.clk }

// Wakeups reports how often the queue's clock timer has fired.
func (q *Timeouts) Wakeups() uint64 { return q.wakeups }

// Late reports how many wakeups ran at least LateWakeup after the earliest deadline they
// ran, and the worst lateness of any wakeup: how long timers waited for the core (a
// caller holding the lock, a long callback) or for the process to be scheduled. Core
// context.
func (q *Timeouts) Late() (n uint64, worst time.Duration) { return q.late, q.maxLate }

// Len reports how many Timeouts are scheduled.
func (q *Timeouts) Len() int { return len(q.heap) }

// Schedule (re)arms t to run d from now. A non-positive d runs it at the next wakeup.
func (q *Timeouts) Schedule(t *Timeout, d time.Duration) {
	if t.fn == nil {
		panic("clock: Schedule of a Timeout without Init")
	}
	t.when = q.clk.Now().Add(d)
	if t.idx != 0 {
		i := t.idx - 1
		q.up(i)
		q.down(t.idx - 1)
	} else {
		q.heap = append(q.heap, t)
		t.idx = len(q.heap)
		q.up(len(q.heap) - 1)
	}
	q.arm()
}

// Cancel unschedules t; it is a no-op for an idle t.
func (q *Timeouts) Cancel(t *Timeout) {
	if t.idx == 0 {
		return
	}
	i := t.idx - 1
	last := len(q.heap) - 1
	q.swap(i, last)
	q.heap[last] = nil
	q.heap = q.heap[:last]
	t.idx = 0
	if i < last {
		q.up(i)
		q.down(i)
	}
	if len(q.heap) == 0 && q.armed {
		q.timer.Stop()
		q.armed = false
	}
}

// Close stops the clock timer and unschedules everything; later Schedules are ignored.
func (q *Timeouts) Close() {
	for len(q.heap) > 0 {
		q.Cancel(q.heap[0])
	}
	if q.timer != nil {
		q.timer.Stop()
	}
	q.armed = false
	q.closed = true
}

// arm makes sure the clock timer fires no later than the earliest deadline.
func (q *Timeouts) arm() {
	if q.closed || len(q.heap) == 0 {
		return
	}
	first := q.heap[0].when
	if q.armed && !first.Before(q.armedAt) {
		return
	}
	d := first.Sub(q.clk.Now())
	if d < 0 {
		d = 0
	}
	q.armedAt = first
	q.armed = true
	if q.timer == nil {
		q.timer = q.clk.AfterFunc(d, q.fire)
	} else {
		q.timer.Reset(d)
	}
}

// fire runs in the clock's goroutine.
func (q *Timeouts) fire() {
	q.core.Lock()
	defer q.core.Unlock()
	if q.closed {
		return
	}
	q.wakeups++
	q.armed = false
	now := q.clk.Now()
	if len(q.heap) > 0 {
		// The earliest deadline is the one that waited longest.
		if late := now.Sub(q.heap[0].when); late > 0 {
			if late >= LateWakeup {
				q.late++
			}
			q.maxLate = max(q.maxLate, late)
		}
	}
	for len(q.heap) > 0 && !q.heap[0].when.After(now) {
		t := q.heap[0]
		q.Cancel(t)
		t.fn()
	}
	q.arm()
}

func (q *Timeouts) less(i, j int) bool { return q.heap[i].when.Before(q.heap[j].when) }

func (q *Timeouts) swap(i, j int) {
	q.heap[i], q.heap[j] = q.heap[j], q.heap[i]
	q.heap[i].idx = i + 1
	q.heap[j].idx = j + 1
}

func (q *Timeouts) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			return
		}
		q.swap(i, p)
		i = p
	}
}

func (q *Timeouts) down(i int) {
	n := len(q.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && q.less(r, l) {
			m = r
		}
		if !q.less(m, i) {
			return
		}
		q.swap(i, m)
		i = m
	}
}
