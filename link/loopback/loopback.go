package loopback

import (
	"sync"
	"sync/atomic"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
)

// Config describes a loopback link.
type Config struct {
	// MTU is the largest packet (default 65535).
	MTU int
	// QueueLen bounds the queue (default 512).
	QueueLen int
	// Sync selects sync mode: no goroutine; frames come back only when Flush is called.
	Sync bool
}

// maxFlushRounds bounds Flush, so a dispatcher that answers every packet with another
// cannot spin the caller forever.
const maxFlushRounds = 1000

// Link is a loopback link; it implements link.Endpoint.
type Link struct {
	mtu    int
	signal chan struct{} // cap 1: wakes the delivery goroutine
	done   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once

	dmu  sync.RWMutex
	disp link.Dispatcher // guarded by dmu

	mu     sync.Mutex
	ring   []*pbuf.Pbuf // guarded by mu
	head   int          // guarded by mu
	n      int          // guarded by mu
	closed bool         // guarded by mu

	// deliverMu serializes deliveries and owns the scratch slices.
	deliverMu sync.Mutex
	batch     []*pbuf.Pbuf
	out       []*pbuf.Pbuf

	delivered atomic.Uint64
	dropped   atomic.Uint64
}

var _ link.Endpoint = (*Link)(nil)

// New returns a loopback link; in async mode it starts its delivery goroutine.
func New(cfg Config) *Link {
	if cfg.MTU <= 0 {
		cfg.MTU = 65535
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 512
	}
	l := &Link{
		mtu:    cfg.MTU,
		signal: make(chan struct{}, 1),
		done:   make(chan struct{}),
		ring:   make([]*pbuf.Pbuf, cfg.QueueLen),
		batch:  make([]*pbuf.Pbuf, link.MaxBatch),
		out:    make([]*pbuf.Pbuf, 0, link.MaxBatch),
	}
	if !cfg.Sync {
		l.wg.Add(1)
		go l.run()
	}
	return l
}

// Medium implements link.Endpoint: bare IP packets.
func (l *Link) Medium() link.Medium { return link.MediumIP }

// MTU implements link.Endpoint.
func (l *Link) MTU() int { return l.mtu }

// HardwareAddr implements link.Endpoint; a loopback has none.
func (l *Link) HardwareAddr() [6]byte { return [6]byte{} }

// Attach implements link.Endpoint.
func (l *Link) Attach(d link.Dispatcher) {
	l.dmu.Lock()
	l.disp = d
	l.dmu.Unlock()
	l.wake()
}

// Stats returns the frames delivered back and those dropped (queue full, too long, closed,
// no dispatcher, no rx buffer).
func (l *Link) Stats() (delivered, dropped uint64) { return l.delivered.Load(), l.dropped.Load() }

// WritePackets implements link.Endpoint; it takes ownership of every pbuf in pkts. Frames
// are accepted in order until one fails (errs.Val: longer than the MTU, errs.WouldBlock:
// queue full, errs.Clsd); that one and the rest are dropped and counted.
func (l *Link) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	var err error
	i := 0
	l.mu.Lock()
	for ; i < len(pkts); i++ {
		switch {
		case l.closed:
			err = errs.Clsd
		case pkts[i].TotLen() > l.mtu:
			err = errs.Val
		case l.n == len(l.ring):
			err = errs.WouldBlock
		}
		if err != nil {
			break
		}
		l.ring[(l.head+l.n)%len(l.ring)] = pkts[i]
		l.n++
	}
	l.mu.Unlock()
	if i > 0 {
		l.wake()
	}
	for _, p := range pkts[i:] {
		p.Free()
		l.dropped.Add(1)
	}
	return i, err
}

// Flush delivers queued frames in the caller's goroutine, again until the queue is empty or
// a bound on rounds is reached, and returns how many it took. Meant for sync mode; a Flush
// from inside DeliverPackets returns 0.
func (l *Link) Flush() int {
	if !l.deliverMu.TryLock() {
		return 0
	}
	defer l.deliverMu.Unlock()
	total := 0
	for r := 0; r < maxFlushRounds; r++ {
		n := 0
		for want := l.queued(); n < want; {
			k := l.deliverOne()
			if k == 0 {
				break
			}
			n += k
		}
		if n == 0 {
			break
		}
		total += n
	}
	return total
}

// Close implements link.Endpoint: it stops the goroutine, waits for a delivery in progress
// and frees every queued frame. Idempotent.
func (l *Link) Close() error {
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		close(l.done)
		l.wg.Wait()
		l.deliverMu.Lock()
		l.mu.Lock()
		for ; l.n > 0; l.n-- {
			l.ring[l.head].Free()
			l.ring[l.head] = nil
			l.head = (l.head + 1) % len(l.ring)
			l.dropped.Add(1)
		}
		l.mu.Unlock()
		l.deliverMu.Unlock()
	})
	return nil
}

func (l *Link) wake() {
	select {
	case l.signal <- struct{}{}:
	default:
	}
}

func (l *Link) queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func (l *Link) run() {
	defer l.wg.Done()
	for {
		select {
		case <-l.done:
			return
		case <-l.signal:
		}
		for {
			select {
			case <-l.done:
				return
			default:
			}
			l.deliverMu.Lock()
			k := l.deliverOne()
			l.deliverMu.Unlock()
			if k == 0 {
				break
			}
		}
	}
}

// deliverOne delivers up to MaxBatch frames; deliverMu is held. The written pbufs belong to
// the writer's layers (they may be REF pbufs of user memory), so each frame is copied into a
// receive chain from the dispatcher, as a real link would.
func (l *Link) deliverOne() int {
	l.mu.Lock()
	k := min(l.n, len(l.batch))
	for i := 0; i < k; i++ {
		l.batch[i] = l.ring[l.head]
		l.ring[l.head] = nil
		l.head = (l.head + 1) % len(l.ring)
	}
	l.n -= k
	l.mu.Unlock()
	if k == 0 {
		return 0
	}
	l.dmu.RLock()
	d := l.disp
	l.dmu.RUnlock()
	out := l.out[:0]
	for i, p := range l.batch[:k] {
		l.batch[i] = nil
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
			l.dropped.Add(1)
			continue
		}
		if r.TotLen() > p.TotLen() {
			r.Shrink(p.TotLen())
		}
		_ = pbuf.Copy(r, p) // r is as long as p
		p.Free()
		out = append(out, r)
	}
	if len(out) > 0 {
		l.delivered.Add(uint64(len(out)))
		d.DeliverPackets(out)
		clear(out)
	}
	return k
}
