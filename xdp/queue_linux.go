//go:build linux

package xdp

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
)

// pollTimeout bounds a receiver's wait, in milliseconds: a socket whose interface went away
// is not reported by poll (the kernel's xsk_poll returns no event), so an idle receiver
// probes it this often.
const pollTimeout = 250

// queue is one socket: its receiver goroutine and its transmit side.
//
// UMEM frames of a queue: [0, RxFrames) receive, [RxFrames, RxFrames+TxFrames) transmit.
// Receive frames are in the fill ring, the kernel, the RX ring, the receiver's rxFree, or
// lent to the stack (RxZeroCopy) until their Releaser puts them on the returns list.
// Transmit frames are in txFree, the TX ring, the kernel, or the completion ring.
type queue struct {
	l        *Link
	id       int
	x        *xsk
	fs       uint64 // frame size
	rxLimit  uint64 // first address past the RX frames
	lendMax  int32
	zeroCopy bool // lend received frames (Config.RxZeroCopy with an allocator)

	// receiver-owned
	rxFree framePool
	batch  []*pbuf.Pbuf

	// RxZeroCopy: frames lent to the stack and those given back.
	rel     []frameRef // one per RX frame: the Releaser of its REF pbuf
	lent    atomic.Int32
	rmu     sync.Mutex
	returns []uint64 // guarded by rmu
	spare   []uint64 // receiver-owned: swapped with returns
	umemMu  sync.Mutex
	closing bool // guarded by umemMu: unmap the UMEM when the last lent frame returns

	// transmit side
	tmu    sync.Mutex
	txFree framePool // guarded by tmu
	txRoom atomic.Int32
	kickc  chan struct{} // wakes the kicker (asyncKick); closed by Close under tmu

	dead    atomic.Bool
	deadErr atomic.Pointer[error]

	rxPackets, rxBytes, rxNoBuf, rxNoDisp, rxInvalid         atomic.Uint64
	rxBatches                                                atomic.Uint64 // receive calls that found frames
	txPackets, txBytes, txKicks, txFull, txTooBig, txInvalid atomic.Uint64
	final                                                    atomic.Pointer[unix.XDPStatistics] // at Close
}

// frameRef is the Releaser of one lent RX frame.
type frameRef struct {
	q    *queue
	addr uint64
}

// Release puts the frame on its queue's returns list (any goroutine).
func (r *frameRef) Release() {
	q := r.q
	q.rmu.Lock()
	q.returns = append(q.returns, r.addr)
	q.rmu.Unlock()
	if q.lent.Add(-1) == 0 {
		q.umemMu.Lock()
		if q.closing && q.x.umem != nil {
			unix.Munmap(q.x.umem)
			q.x.umem = nil
		}
		q.umemMu.Unlock()
	}
}

func newQueue(l *Link, id int, x *xsk) *queue {
	c := &l.cfg
	fs := uint64(c.FrameSize)
	q := &queue{
		l: l, id: id, x: x, fs: fs,
		rxLimit: uint64(c.RxFrames) * fs,
		lendMax: int32(c.RxFrames / 2),
		rxFree:  newFramePool(0, c.RxFrames, fs),
		batch:   make([]*pbuf.Pbuf, 0, c.Batch),
		txFree:  newFramePool(uint64(c.RxFrames)*fs, c.TxFrames, fs),
	}
	q.zeroCopy = c.RxZeroCopy && c.Alloc != nil
	if q.zeroCopy {
		q.rel = make([]frameRef, c.RxFrames)
		for i := range q.rel {
			q.rel[i] = frameRef{q: q, addr: uint64(i) * fs}
		}
		q.returns = make([]uint64, 0, c.RxFrames)
		q.spare = make([]uint64, 0, c.RxFrames)
	}
	q.txRoom.Store(int32(min(c.TxFrames, c.RingSize)))
	q.refill() // the fill ring is full before any traffic
	return q
}

// refill moves free RX frames to the fill ring, in one publication.
func (q *queue) refill() {
	n := uint32(q.rxFree.len())
	if n == 0 {
		return
	}
	i, got := q.x.fill.reserve(n)
	for k := range got {
		a, _ := q.rxFree.get()
		*q.x.fill.addr(i + k) = a
	}
	if got > 0 {
		q.x.fill.submit()
	}
}

// takeReturns moves the frames the stack gave back to rxFree.
func (q *queue) takeReturns() {
	if !q.zeroCopy {
		return
	}
	q.rmu.Lock()
	q.returns, q.spare = q.spare[:0], q.returns
	q.rmu.Unlock()
	for _, a := range q.spare {
		q.rxFree.put(a)
	}
}

// receiver is the queue's receive goroutine: it waits for frames, delivers them in
// batches and refills the fill ring, until Close or the interface goes away.
func (q *queue) receiver() {
	l := q.l
	defer l.wg.Done()
	fds := []unix.PollFd{{Fd: int32(q.x.fd), Events: unix.POLLIN}, {Fd: int32(l.evfd), Events: unix.POLLIN}}
	woken := false
	for !l.closed.Load() {
		q.takeReturns()
		q.refill()
		if q.receive() > 0 {
			woken = false
			// Let the goroutines the batch woke (a socket's reader) run: under a steady
			// flow this loop never blocks, and a reader on the same P would wait for
			// preemption while its mailbox overflowed (bench: 60-byte UDP 78k -> 550k/s).
			runtime.Gosched()
			continue
		}
		if q.x.fill.needWakeup() || l.cfg.BusyPoll || woken {
			// A wake-up that found nothing may be the interface going away, which poll
			// does not report: recvfrom does (ENXIO).
			if err := q.x.wakeRx(); err != nil {
				q.die(err)
				return
			}
			if l.cfg.BusyPoll && q.receive() > 0 {
				woken = false
				continue
			}
		}
		_, err := unix.Poll(fds, pollTimeout)
		if err != nil && !errors.Is(err, unix.EINTR) {
			q.die(err)
			return
		}
		if fds[1].Revents != 0 {
			return // Close
		}
		woken = true
	}
}

// die marks the queue dead: it delivers nothing more and its writes fail with errs.Clsd.
func (q *queue) die(err error) {
	q.deadErr.Store(&err)
	q.dead.Store(true)
}

// receive takes up to a batch of RX descriptors, turns them into pbufs and delivers them;
// it returns how many descriptors it took.
func (q *queue) receive() int {
	x := q.x
	i, n := x.rx.peek(uint32(cap(q.batch)))
	if n == 0 {
		return 0
	}
	disp := q.l.dispatcher()
	var bytes uint64
	for k := range n {
		d := x.rx.desc(i + k)
		addr, ln := d.Addr, uint64(d.Len)
		base := addr &^ (q.fs - 1)
		if base >= q.rxLimit || addr+ln > base+q.fs || ln == 0 {
			q.rxInvalid.Add(1)
			if base < q.rxLimit {
				q.rxFree.put(base)
			}
			continue
		}
		if disp == nil {
			q.rxNoDisp.Add(1)
			q.rxFree.put(base)
			continue
		}
		frame := x.umem[addr : addr+ln : addr+ln]
		var p *pbuf.Pbuf
		if q.zeroCopy && q.lent.Load() < q.lendMax {
			var err error
			p, err = q.l.cfg.Alloc.AllocRef(frame, pbuf.REF, &q.rel[base/q.fs])
			if err == nil {
				q.lent.Add(1)
				p.SetFlags(pbuf.FlagWritable) // the frame is the stack's alone until released
			}
		}
		if p == nil {
			p = disp.AllocRx(int(ln))
			if p == nil {
				q.rxNoBuf.Add(1)
				q.rxFree.put(base)
				continue
			}
			p.CopyIn(frame, 0)
			q.rxFree.put(base)
		}
		bytes += ln
		q.batch = append(q.batch, p)
	}
	x.rx.release()
	q.refill()
	q.rxBatches.Add(1)
	if len(q.batch) > 0 {
		q.rxPackets.Add(uint64(len(q.batch)))
		q.rxBytes.Add(bytes)
		disp.DeliverPackets(q.batch)
		clear(q.batch)
		q.batch = q.batch[:0]
	}
	return int(n)
}

// reap moves completed TX frames back to txFree; tmu is held.
func (q *queue) reap() {
	c := &q.x.comp
	i, n := c.peek(c.size)
	if n == 0 {
		return
	}
	for k := range n {
		q.txFree.put(*c.addr(i + k) &^ (q.fs - 1))
	}
	c.release()
}

// write is WriteQueue on this queue.
func (q *queue) write(pkts []*pbuf.Pbuf) (int, error) {
	// Every pbuf is freed at the end (after tmu is released), in one pass under the
	// allocator's lock (FreeAll), not one lock per frame: with two cores writing, that lock
	// was a tenth of the time.
	defer func() {
		pbuf.FreeAll(pkts)
		clear(pkts)
	}()
	q.tmu.Lock()
	defer q.tmu.Unlock()
	if q.l.closed.Load() || q.dead.Load() || q.x.umem == nil {
		return 0, errs.Clsd
	}
	x := q.x
	q.reap()
	var err error
	sent := 0
	var bytes uint64
	for k, p := range pkts {
		n := p.TotLen()
		if uint64(n) > q.fs || n < 14 {
			if n < 14 {
				q.txInvalid.Add(1) // not even an Ethernet header
			} else {
				q.txTooBig.Add(1)
			}
			err = errs.Val
			continue
		}
		a, ok := q.txFree.get()
		if !ok {
			q.reap()
			a, ok = q.txFree.get()
		}
		var i, got uint32
		if ok {
			if i, got = x.tx.reserve(1); got == 0 {
				q.txFree.put(a)
			}
		}
		if got == 0 {
			// Out of frames or ring entries: drop the rest, as a full NIC queue does.
			q.txFull.Add(uint64(len(pkts) - k))
			err = errs.WouldBlock
			break
		}
		p.CopyOut(x.umem[a:a+uint64(n)], 0)
		d := x.tx.desc(i)
		d.Addr, d.Len, d.Options = a, uint32(n), 0
		sent++
		bytes += uint64(n)
	}
	if sent > 0 {
		x.tx.submit()
		q.txPackets.Add(uint64(sent))
		q.txBytes.Add(bytes)
		if q.kickc != nil {
			select {
			case q.kickc <- struct{}{}:
			default: // a wake-up is pending: the kicker sees these frames too
			}
		} else if x.tx.needWakeup() {
			// Copy mode sends at most the skb budget per kick (32 without
			// XDP_MAX_TX_SKB_BUDGET).
			budget := max(x.budget, 32)
			for s := 0; s < sent; s += budget {
				q.txKicks.Add(1)
				if kerr := x.kick(); kerr != nil {
					q.die(kerr)
					break
				}
			}
		}
	}
	q.txRoom.Store(int32(min(uint32(q.txFree.len()), x.tx.free())))
	return sent, err
}

// asyncKick makes each queue's sendto kicks run on a goroutine of their own (the kicker),
// not on the writer's: in copy mode the kick is where the kernel does its whole transmit
// (an skb per frame, the veth, and the peer's receive in softirq, up to its TCP), so a
// writer that kicks itself does the kernel's work serially with its own.
var asyncKick = true

// kicker is a queue's kick goroutine: woken by write, it kicks until the kernel has taken
// every posted descriptor (or refuses more for now), until Close closes kickc.
func (q *queue) kicker() {
	defer q.l.kwg.Done()
	x := q.x
	for range q.kickc {
		// Copy mode sends at most the skb budget per kick, so kick until the kernel has
		// taken every posted frame. A kick that takes nothing (EAGAIN, ENOBUFS: out of
		// skbs for now) is retried after a growing pause instead of leaving the frames in
		// the ring until some later write: the last frames of a transfer have none. After
		// about 100 ms without progress (a link that is down) the next write retries.
		pause := time.Microsecond
		for !q.l.closed.Load() {
			cons := atomic.LoadUint32(x.tx.consumer)
			if cons == atomic.LoadUint32(x.tx.producer) || !x.tx.needWakeup() {
				break
			}
			q.txKicks.Add(1)
			if err := x.kick(); err != nil {
				q.die(err)
				break
			}
			if atomic.LoadUint32(x.tx.consumer) != cons {
				pause = time.Microsecond
				continue
			}
			if pause > 64*time.Millisecond {
				break
			}
			time.Sleep(pause)
			pause *= 2
		}
	}
}

// room reports the frames write would accept now.
func (q *queue) room() int {
	q.tmu.Lock()
	defer q.tmu.Unlock()
	if q.l.closed.Load() || q.dead.Load() || q.x.umem == nil {
		return 0
	}
	q.reap()
	return int(min(uint32(q.txFree.len()), q.x.tx.free()))
}

// stats returns the queue's counters with the socket's XDP_STATISTICS.
func (q *queue) stats() stats.Queue {
	s := stats.Queue{
		// A frame that arrived with no dispatcher attached had no pbuf either.
		RxPackets: q.rxPackets.Load(), RxBytes: q.rxBytes.Load(), RxNoBuf: q.rxNoBuf.Load() + q.rxNoDisp.Load(),
		TxPackets: q.txPackets.Load(), TxBytes: q.txBytes.Load(), TxKicks: q.txKicks.Load(),
		TxFull: q.txFull.Load(), TxTooBig: q.txTooBig.Load(),
	}
	var xs unix.XDPStatistics
	if f := q.final.Load(); f != nil {
		xs = *f
	} else {
		q.tmu.Lock() // the socket stays open while held
		if !q.l.closed.Load() {
			xs, _ = q.x.statistics()
		}
		q.tmu.Unlock()
	}
	s.RxDropped = xs.Rx_dropped
	s.RxRingFull = xs.Rx_ring_full
	s.FillRingEmpty = xs.Rx_fill_ring_empty_descs
	s.RxInvalid = xs.Rx_invalid_descs + q.rxInvalid.Load()
	s.TxInvalid = xs.Tx_invalid_descs + q.txInvalid.Load()
	s.TxRingEmpty = xs.Tx_ring_empty_descs
	return s
}

// close closes the socket; the UMEM stays mapped until the last lent frame comes back.
func (q *queue) close() {
	q.tmu.Lock()
	defer q.tmu.Unlock()
	if q.x.fd >= 0 {
		if xs, err := q.x.statistics(); err == nil {
			q.final.Store(&xs)
		} else {
			q.final.Store(&unix.XDPStatistics{})
		}
	}
	x := q.x
	for _, m := range x.maps {
		unix.Munmap(m)
	}
	x.maps = nil
	if x.fd >= 0 {
		unix.Close(x.fd)
		x.fd = -1
	}
	q.umemMu.Lock()
	q.closing = true
	if q.lent.Load() == 0 && x.umem != nil {
		unix.Munmap(x.umem)
		x.umem = nil
	}
	q.umemMu.Unlock()
}
