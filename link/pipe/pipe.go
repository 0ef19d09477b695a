package pipe

import (
	"sync"
	"sync/atomic"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
)

// Config describes a pipe.
type Config struct {
	// MTU is the largest IP packet a frame carries (default 1500).
	MTU int
	// Medium is the framing (default link.MediumEthernet).
	Medium link.Medium
	// MACs are the Ends' hardware addresses for Ethernet; a zero address becomes the locally
	// administered 02:00:00:00:00:01 (End a) or 02:00:00:00:00:02 (End b).
	MACs [2][6]byte
	// QueueLen bounds each direction's queue (default 512).
	QueueLen int
	// Sync selects sync mode: no goroutines, frames move only when Flush is called.
	Sync bool
}

// DefaultQueueLen is the per-direction queue length when Config.QueueLen is zero.
const DefaultQueueLen = 512

// maxFlushRounds bounds Flush: two stacks answering each other forever (ping-pong) must not
// spin the caller forever.
const maxFlushRounds = 1000

// End is one side of a pipe; it implements link.Endpoint.
type End struct {
	cfg  Config
	mac  [6]byte
	tx   *queue // frames written here, delivered to the peer
	rx   *queue // frames written by the peer, delivered here
	peer *End
	sh   *shared

	dmu  sync.RWMutex
	disp link.Dispatcher // guarded by dmu
}

// shared is the state both Ends see.
type shared struct {
	closeOnce sync.Once
	wg        sync.WaitGroup
	done      chan struct{}
}

var _ link.Endpoint = (*End)(nil)

// New returns the two Ends of a new pipe. In async mode it starts one delivery goroutine per
// direction; Close on either End stops them.
func New(cfg Config) (a, b *End) {
	if cfg.MTU <= 0 {
		cfg.MTU = 1500
	}
	if cfg.Medium == 0 {
		cfg.Medium = link.MediumEthernet
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	sh := &shared{done: make(chan struct{})}
	a = &End{cfg: cfg, sh: sh}
	b = &End{cfg: cfg, sh: sh}
	a.peer, b.peer = b, a
	if cfg.Medium == link.MediumEthernet {
		a.mac, b.mac = cfg.MACs[0], cfg.MACs[1]
		if a.mac == ([6]byte{}) {
			a.mac = [6]byte{0x02, 0, 0, 0, 0, 1}
		}
		if b.mac == ([6]byte{}) {
			b.mac = [6]byte{0x02, 0, 0, 0, 0, 2}
		}
	}
	maxFrame := cfg.MTU + cfg.Medium.HeaderLen()
	a.tx = newQueue(cfg.QueueLen, maxFrame, b)
	b.tx = newQueue(cfg.QueueLen, maxFrame, a)
	a.rx, b.rx = b.tx, a.tx
	if !cfg.Sync {
		sh.wg.Add(2)
		go a.tx.run(sh)
		go b.tx.run(sh)
	}
	return a, b
}

// Medium implements link.Endpoint.
func (e *End) Medium() link.Medium { return e.cfg.Medium }

// MTU implements link.Endpoint.
func (e *End) MTU() int { return e.cfg.MTU }

// HardwareAddr implements link.Endpoint (zero for MediumIP).
func (e *End) HardwareAddr() [6]byte { return e.mac }

// Peer returns the other End.
func (e *End) Peer() *End { return e.peer }

// Attach implements link.Endpoint.
func (e *End) Attach(d link.Dispatcher) {
	e.dmu.Lock()
	e.disp = d
	e.dmu.Unlock()
	// Frames may have been queued before anyone listened.
	e.rx.wake()
}

func (e *End) dispatcher() link.Dispatcher {
	e.dmu.RLock()
	d := e.disp
	e.dmu.RUnlock()
	return d
}

// WritePackets implements link.Endpoint: it takes ownership of every pbuf in pkts. Frames
// are accepted in order until one fails: a frame longer than MTU plus the link header
// (errs.Val), a full queue (errs.WouldBlock) or a closed pipe (errs.Clsd); that frame and the
// rest are dropped and counted.
func (e *End) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	return e.tx.put(pkts)
}

// Flush delivers, in the caller's goroutine, every frame queued in both directions, again
// and again until both queues are empty or a bound on rounds is reached (two peers answering
// each other forever must not spin). It returns how many frames it took off the queues. It
// is meant for sync mode; in async mode it races harmlessly with the delivery goroutines. A
// Flush called from inside DeliverPackets skips a direction already being delivered.
func (e *End) Flush() int {
	return e.FlushRounds(maxFlushRounds)
}

// FlushRounds is Flush with an explicit bound: each round delivers what both queues hold
// when it starts.
func (e *End) FlushRounds(rounds int) int {
	total := 0
	for r := 0; r < rounds; r++ {
		n := e.tx.drain() + e.rx.drain()
		total += n
		if n == 0 {
			break
		}
	}
	return total
}

// Queued returns how many frames wait in each direction: written here, and written by the
// peer.
func (e *End) Queued() (out, in int) { return e.tx.len(), e.rx.len() }

// Stats returns the frames written on this End that reached the peer's dispatcher, and
// those dropped on the way (queue full, too long, closed, no dispatcher, no rx buffer).
func (e *End) Stats() (delivered, dropped uint64) {
	return e.tx.delivered.Load(), e.tx.dropped.Load()
}

// Close implements link.Endpoint; it closes both Ends. It stops the delivery goroutines,
// waits for a delivery in progress and frees every queued frame. It is idempotent.
func (e *End) Close() error {
	e.sh.closeOnce.Do(func() {
		e.tx.close()
		e.rx.close()
		close(e.sh.done)
		e.sh.wg.Wait()
		e.tx.freeAll()
		e.rx.freeAll()
	})
	return nil
}

// queue is one direction: a bounded ring of frames and their delivery.
type queue struct {
	to       *End // receiving End
	maxFrame int
	signal   chan struct{} // cap 1: wakes the delivery goroutine

	mu     sync.Mutex
	ring   []*pbuf.Pbuf // guarded by mu
	head   int          // guarded by mu
	n      int          // guarded by mu
	closed bool         // guarded by mu

	// deliverMu serializes deliveries of this direction (the goroutine, Flush, Close) and
	// owns the scratch slices.
	deliverMu sync.Mutex
	batch     []*pbuf.Pbuf
	out       []*pbuf.Pbuf

	delivered atomic.Uint64
	dropped   atomic.Uint64
}

func newQueue(n, maxFrame int, to *End) *queue {
	return &queue{
		to:       to,
		maxFrame: maxFrame,
		signal:   make(chan struct{}, 1),
		ring:     make([]*pbuf.Pbuf, n),
		batch:    make([]*pbuf.Pbuf, link.MaxBatch),
		out:      make([]*pbuf.Pbuf, 0, link.MaxBatch),
	}
}

func (q *queue) wake() {
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// put takes ownership of every pbuf in pkts.
func (q *queue) put(pkts []*pbuf.Pbuf) (int, error) {
	var err error
	i := 0
	q.mu.Lock()
	for ; i < len(pkts); i++ {
		p := pkts[i]
		switch {
		case q.closed:
			err = errs.Clsd
		case p.TotLen() > q.maxFrame:
			err = errs.Val
		case q.n == len(q.ring):
			err = errs.WouldBlock
		}
		if err != nil {
			break
		}
		q.ring[(q.head+q.n)%len(q.ring)] = p
		q.n++
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

// take moves up to MaxBatch frames into q.batch; deliverMu is held.
func (q *queue) take() int {
	q.mu.Lock()
	k := min(q.n, len(q.batch))
	for i := 0; i < k; i++ {
		q.batch[i] = q.ring[q.head]
		q.ring[q.head] = nil
		q.head = (q.head + 1) % len(q.ring)
	}
	q.n -= k
	q.mu.Unlock()
	return k
}

// deliverOne delivers one batch; deliverMu is held. It returns the frames taken.
func (q *queue) deliverOne() int {
	k := q.take()
	if k == 0 {
		return 0
	}
	d := q.to.dispatcher()
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

// drain delivers what the queue holds now (for Flush); it skips a direction whose delivery
// is already in progress, so a Flush from inside DeliverPackets cannot deadlock.
func (q *queue) drain() int {
	if !q.deliverMu.TryLock() {
		return 0
	}
	defer q.deliverMu.Unlock()
	total := 0
	for want := q.len(); total < want; {
		k := q.deliverOne()
		if k == 0 {
			break
		}
		total += k
	}
	return total
}

// run is the delivery goroutine of an async pipe.
func (q *queue) run(sh *shared) {
	defer sh.wg.Done()
	for {
		select {
		case <-sh.done:
			return
		case <-q.signal:
		}
		for {
			select {
			case <-sh.done:
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

func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

// freeAll frees every queued frame, after the goroutines stopped; it waits for a Flush in
// progress.
func (q *queue) freeAll() {
	q.deliverMu.Lock()
	defer q.deliverMu.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.n > 0 {
		q.ring[q.head].Free()
		q.ring[q.head] = nil
		q.head = (q.head + 1) % len(q.ring)
		q.n--
		q.dropped.Add(1)
	}
}
