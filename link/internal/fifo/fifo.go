package fifo

import (
	"sync"
	"sync/atomic"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/ring"
)

// Queue is one direction of a link: a bounded ring of frames and their delivery.
type Queue struct {
	maxFrame int
	gsoMax   int           // GSO packets up to this size are let through (SetGSOMax)
	signal   chan struct{} // cap 1: wakes the delivery goroutine
	done     chan struct{} // closed by Close: stops the delivery goroutine
	wg       sync.WaitGroup
	once     sync.Once

	dmu  sync.RWMutex
	disp link.Dispatcher // guarded by dmu

	mu     sync.Mutex
	ring   ring.Ring[*pbuf.Pbuf] // guarded by mu
	closed bool                  // guarded by mu

	// deliverMu serializes deliveries (the goroutine, Drain, Close) and owns the scratch
	// slices.
	deliverMu sync.Mutex
	batch     []*pbuf.Pbuf
	out       []*pbuf.Pbuf

	delivered atomic.Uint64
	dropped   atomic.Uint64
}

// New returns a queue of n frames of at most maxFrame bytes each. It starts no goroutine:
// call Start for async delivery, or Drain.
func New(n, maxFrame int) *Queue {
	return &Queue{
		maxFrame: maxFrame,
		signal:   make(chan struct{}, 1),
		done:     make(chan struct{}),
		ring:     ring.New[*pbuf.Pbuf](n),
		batch:    make([]*pbuf.Pbuf, link.MaxBatch),
		out:      make([]*pbuf.Pbuf, 0, link.MaxBatch),
	}
}

// Start starts the delivery goroutine; Close stops it. Call it at most once, before Close.
func (q *Queue) Start() {
	q.wg.Add(1)
	go q.run()
}

// Attach sets the dispatcher that receives the frames (nil detaches) and wakes the delivery
// goroutine: frames may have been queued before anyone listened.
func (q *Queue) Attach(d link.Dispatcher) {
	q.dmu.Lock()
	q.disp = d
	q.dmu.Unlock()
	q.wake()
}

func (q *Queue) dispatcher() link.Dispatcher {
	q.dmu.RLock()
	d := q.disp
	q.dmu.RUnlock()
	return d
}

func (q *Queue) wake() {
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// Len returns how many frames wait.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ring.Len()
}

// Stats returns the frames that reached the dispatcher and those dropped (queue full, too
// long, closed, no dispatcher, no rx buffer, freed by Close).
func (q *Queue) Stats() (delivered, dropped uint64) {
	return q.delivered.Load(), q.dropped.Load()
}

// Room returns how many more frames Put would accept now (0 once closed).
func (q *Queue) Room() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0
	}
	return q.ring.Cap() - q.ring.Len()
}

// Put takes ownership of every pbuf in pkts, whatever it returns; the slice is borrowed.
// Frames are accepted in order until one fails: a closed queue (errs.Clsd), a frame longer
// than maxFrame (errs.Val) or a full queue (errs.WouldBlock); that frame and the rest are
// freed and counted as dropped. It returns how many were accepted.
func (q *Queue) Put(pkts []*pbuf.Pbuf) (int, error) {
	var err error
	i := 0
	q.mu.Lock()
	for ; i < len(pkts); i++ {
		p := pkts[i]
		switch {
		case q.closed:
			err = errs.Clsd
		case p.TotLen() > q.maxFrame && !q.gsoFits(p):
			err = errs.Val
		case !q.ring.Push(p): // queues p when there is room
			err = errs.WouldBlock
		}
		if err != nil {
			break
		}
	}
	q.mu.Unlock()
	if i > 0 {
		q.wake()
	}
	for _, p := range pkts[i:] {
		p.Free()
		q.dropped.Add(1)
	}
	return i, err
}

// SetGSOMax lets GSO packets (pbuf.GSO) of up to n bytes through a queue whose frames are
// otherwise bounded by maxFrame. Call it before the queue is used.
func (q *Queue) SetGSOMax(n int) { q.gsoMax = n }

// gsoFits reports whether p is a GSO packet the queue takes.
func (q *Queue) gsoFits(p *pbuf.Pbuf) bool {
	typ, _ := p.GSO()
	return typ != pbuf.GSONone && p.TotLen() <= q.gsoMax
}

// take moves up to MaxBatch frames into q.batch; deliverMu is held.
func (q *Queue) take() int {
	q.mu.Lock()
	k := min(q.ring.Len(), len(q.batch))
	for i := range k {
		q.batch[i], _ = q.ring.Pop()
	}
	q.mu.Unlock()
	return k
}

// deliverOne delivers one batch; deliverMu is held. It returns the frames taken. Each frame
// is copied into a receive chain from the dispatcher, as a real link would, and the written
// pbuf is freed.
func (q *Queue) deliverOne() int {
	k := q.take()
	if k == 0 {
		return 0
	}
	d := q.dispatcher()
	out := q.out[:0]
	for i, p := range q.batch[:k] {
		q.batch[i] = nil
		var r *pbuf.Pbuf
		if d != nil {
			r = d.AllocRx(p.TotLen())
		}
		if r != nil && r.TotLen() < p.TotLen() {
			r.Free()
			r = nil
		}
		if r == nil {
			p.Free()
			q.dropped.Add(1)
			continue
		}
		if r.TotLen() > p.TotLen() {
			r.Shrink(p.TotLen())
		}
		_ = pbuf.Copy(r, p) // cannot fail: r is as long as p
		if typ, size := p.GSO(); typ != pbuf.GSONone || p.Flags()&pbuf.FlagChecksumPartial != 0 {
			// What a virtio-net link hands the receiver of a local sender's packet: the
			// segment whole, its checksum left partial and so to be trusted.
			r.SetGSO(typ, size)
			r.SetFlags(pbuf.FlagChecksumOK | p.Flags()&pbuf.FlagChecksumPartial)
		}
		p.Free()
		out = append(out, r)
	}
	if len(out) > 0 {
		q.delivered.Add(uint64(len(out)))
		d.DeliverPackets(out)
		clear(out)
	}
	return k
}

// drainLocked delivers what the queue holds when it starts; deliverMu is held. Frames put
// meanwhile (a dispatcher answering) wait for the next round.
func (q *Queue) drainLocked() int {
	total := 0
	for want := q.Len(); total < want; {
		k := q.deliverOne()
		if k == 0 {
			break
		}
		total += k
	}
	return total
}

// Drain delivers, in the caller's goroutine, what the queue holds now (one round) and
// returns how many frames it took. It returns 0 when a delivery is in progress (the
// goroutine's, or the one whose DeliverPackets calls Drain), so it cannot deadlock.
func (q *Queue) Drain() int {
	if !q.deliverMu.TryLock() {
		return 0
	}
	defer q.deliverMu.Unlock()
	return q.drainLocked()
}

// DrainRounds is Drain repeated until a round finds the queue empty or rounds rounds ran; it
// holds off other deliveries for the whole call. The bound keeps a dispatcher that answers
// every frame with another from spinning the caller forever.
func (q *Queue) DrainRounds(rounds int) int {
	if !q.deliverMu.TryLock() {
		return 0
	}
	defer q.deliverMu.Unlock()
	total := 0
	for r := 0; r < rounds; r++ {
		n := q.drainLocked()
		if n == 0 {
			break
		}
		total += n
	}
	return total
}

// run is the delivery goroutine.
func (q *Queue) run() {
	defer q.wg.Done()
	for {
		select {
		case <-q.done:
			return
		case <-q.signal:
		}
		for {
			select {
			case <-q.done:
				return
			default:
			}
			q.deliverMu.Lock()
			k := q.deliverOne()
			q.deliverMu.Unlock()
			if k == 0 {
				break
			}
		}
	}
}

// Shut makes later Puts fail with errs.Clsd; frames already queued stay until Close. A link
// with several queues shuts them all before closing any, so none accepts frames while
// another is being closed.
func (q *Queue) Shut() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

// Close shuts the queue, stops the delivery goroutine, waits for a delivery in progress
// (the goroutine's or a Drain's) and frees every queued frame, counting it as dropped. It is
// idempotent; it must not be called from inside DeliverPackets.
func (q *Queue) Close() {
	q.once.Do(func() {
		q.Shut()
		close(q.done)
		q.wg.Wait()
		q.deliverMu.Lock()
		defer q.deliverMu.Unlock()
		q.mu.Lock()
		defer q.mu.Unlock()
		for p, ok := q.ring.Pop(); ok; p, ok = q.ring.Pop() {
			p.Free()
			q.dropped.Add(1)
		}
	})
}
