package wireguard

// The device between wireguard-go and the stack:
//
//	wireguard-go ──Write(bufs)──▶ AllocRx + CopyIn ──DeliverPackets(batch)──▶ stack core
//	wireguard-go ◀──Read(bufs)─── CopyOut + Free ◀── ring ◀──WritePackets──── stack core
//	                                  ▲ wake (cap 1)            │
//	                                  └─────────────────────────┘
//
// Inbound packets cost one copy (wireguard-go's decrypted buffer into a POOL chain) and one
// DeliverPackets per Write call. Outbound frames wait as pbufs in a fixed ring until Read
// copies them into wireguard-go's buffers; the stack never blocks on the ring (a full ring
// drops, as a full NIC queue does) and Read sleeps on a one-slot wake channel, so there is no
// channel operation per packet.

import (
	"os"
	"sync"
	"sync/atomic"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/ring"
)

// Device is wireguard-go's tun.Device over a wisp stack. wireguard-go reads the packets the
// stack sends and writes the packets it decrypts. Link returns the same device seen from
// the stack (a link.Endpoint, MediumIP): the two interfaces cannot share one type because
// both have an MTU method with a different signature.
//
// Concurrency: Read, Write and every other method are safe for concurrent use. Close (of
// the tun.Device) closes the stack, unblocks Read (os.ErrClosed) and makes Write fail with
// os.ErrClosed.
type Device struct {
	mtu    int
	batch  int
	events chan tun.Event
	done   chan struct{} // closed by shutdown: Read returns
	wake   chan struct{} // cap 1: a frame was queued while the ring was empty
	closer func() error  // closes the stack (set by CreateNetTUNWithOptions)

	disp atomic.Pointer[dispatcher] // nil: detached

	// life guards the delivery path against shutdown: Write holds it shared while it
	// delivers, shutdown takes it exclusively to set dead and wait for deliveries to end.
	life sync.RWMutex
	dead bool // guarded by life

	// The ring of frames the stack sent, oldest at head.
	mu     sync.Mutex
	ring   ring.Ring[*pbuf.Pbuf] // guarded by mu; QueueLen frames
	closed bool                  // guarded by mu: WritePackets refuses, the ring is empty

	// rmu serializes readers, so one scratch slice serves every Read.
	rmu  sync.Mutex
	rbuf []*pbuf.Pbuf // guarded by rmu

	// wmu serializes writers for the same reason.
	wmu  sync.Mutex
	wbuf []*pbuf.Pbuf // guarded by wmu

	shutOnce   sync.Once
	eventsOnce sync.Once

	txFrames, txDropped, rxFrames, rxDropped, tooBig atomic.Uint64
}

// dispatcher boxes the link.Dispatcher so that it can be swapped atomically.
type dispatcher struct{ d link.Dispatcher }

var _ tun.Device = (*Device)(nil)

// newDevice returns a device with a ring of queueLen frames and batches of batch packets.
func newDevice(mtu, batch, queueLen int) *Device {
	d := &Device{
		mtu:    mtu,
		batch:  batch,
		events: make(chan tun.Event, 4),
		done:   make(chan struct{}),
		wake:   make(chan struct{}, 1),
		ring:   ring.New[*pbuf.Pbuf](queueLen),
		rbuf:   make([]*pbuf.Pbuf, 0, batch),
		wbuf:   make([]*pbuf.Pbuf, 0, batch),
	}
	d.events <- tun.EventUp
	return d
}

// File implements tun.Device: there is no file.
func (d *Device) File() *os.File { return nil }

// Name implements tun.Device.
func (d *Device) Name() (string, error) { return "wisp", nil }

// MTU implements tun.Device.
func (d *Device) MTU() (int, error) { return d.mtu, nil }

// Events implements tun.Device: EventUp, sent at creation; the channel closes with the
// device.
func (d *Device) Events() <-chan tun.Event { return d.events }

// BatchSize implements tun.Device: how many packets one Read returns at most, and the
// batch wireguard-go hands to Write.
func (d *Device) BatchSize() int { return d.batch }

// Link returns the device as the stack's link.
func (d *Device) Link() link.Endpoint { return (*linkEP)(d) }

// Stats returns the packets the stack sent (read by wireguard-go), the ones dropped on the
// way out (ring full or closed, or larger than wireguard-go's buffer), the packets
// wireguard-go wrote and the ones dropped on the way in (no receive buffer, detached).
func (d *Device) Stats() (tx, txDropped, rx, rxDropped uint64) {
	return d.txFrames.Load(), d.txDropped.Load() + d.tooBig.Load(), d.rxFrames.Load(), d.rxDropped.Load()
}

// Read implements tun.Device: it waits until the stack has sent at least one packet and
// copies up to len(bufs) of them, each into bufs[i][offset:], setting sizes[i]. After Close
// it returns os.ErrClosed. A packet longer than its buffer is dropped and counted.
func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	d.rmu.Lock()
	defer d.rmu.Unlock()
	for {
		batch, closed := d.pop(min(len(bufs), cap(d.rbuf)))
		if len(batch) > 0 {
			n := 0
			for _, p := range batch {
				if dst := bufs[n][offset:]; p.TotLen() <= len(dst) {
					sizes[n] = p.CopyOut(dst, 0)
					n++
				} else {
					d.tooBig.Add(1)
				}
				p.Free()
			}
			clear(batch)
			d.rbuf = batch[:0]
			d.txFrames.Add(uint64(n))
			if n > 0 {
				return n, nil
			}
			continue
		}
		if closed {
			return 0, os.ErrClosed
		}
		select {
		case <-d.wake:
		case <-d.done:
		}
	}
}

// pop moves up to n frames from the ring into d.rbuf (d.rmu held) and reports whether the
// ring is closed; the caller owns the frames and must Free each.
func (d *Device) pop(n int) ([]*pbuf.Pbuf, bool) {
	batch := d.rbuf[:0]
	d.mu.Lock()
	for len(batch) < n {
		p, ok := d.ring.Pop()
		if !ok {
			break
		}
		batch = append(batch, p)
	}
	closed := d.closed
	d.mu.Unlock()
	return batch, closed
}

// Write implements tun.Device: it copies each packet bufs[i][offset:] into a receive chain
// and hands them to the stack in one DeliverPackets per batch. Empty packets are skipped;
// packets that find no receive buffer are dropped and counted, as a NIC drops them. It
// reports every packet as written (wireguard-go has nothing better to do with them), or
// os.ErrClosed after Close.
func (d *Device) Write(bufs [][]byte, offset int) (int, error) {
	d.life.RLock()
	defer d.life.RUnlock()
	if d.dead {
		return 0, os.ErrClosed
	}
	box := d.disp.Load()
	if box == nil {
		d.rxDropped.Add(uint64(len(bufs)))
		return len(bufs), nil
	}
	disp := box.d
	d.wmu.Lock()
	defer d.wmu.Unlock()
	batch := d.wbuf[:0]
	for _, b := range bufs {
		pkt := b[offset:]
		if len(pkt) == 0 {
			continue
		}
		p := disp.AllocRx(len(pkt))
		if p == nil {
			d.rxDropped.Add(1)
			continue
		}
		_ = p.CopyIn(pkt, 0) // cannot fail: p is len(pkt) long
		batch = append(batch, p)
		if len(batch) == cap(batch) {
			d.rxFrames.Add(uint64(len(batch)))
			disp.DeliverPackets(batch)
			clear(batch)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		d.rxFrames.Add(uint64(len(batch)))
		disp.DeliverPackets(batch)
		clear(batch)
	}
	d.wbuf = batch[:0]
	return len(bufs), nil
}

// Close implements tun.Device: it closes the stack (and with it every socket), unblocks
// Read, waits for a Write in progress and closes the Events channel. Idempotent.
func (d *Device) Close() error {
	var err error
	if d.closer != nil {
		err = d.closer() // the stack closes its link: shutdown runs there
	}
	d.shutdown()
	d.eventsOnce.Do(func() { close(d.events) })
	return err
}

// shutdown stops the device: the ring refuses frames and frees those it holds, Read
// returns, and deliveries in progress end before it returns. Idempotent.
func (d *Device) shutdown() {
	d.shutOnce.Do(func() {
		d.disp.Store(nil)
		d.mu.Lock()
		d.closed = true
		for p, ok := d.ring.Pop(); ok; p, ok = d.ring.Pop() {
			p.Free()
			d.txDropped.Add(1)
		}
		d.mu.Unlock()
		close(d.done)
		d.life.Lock()
		d.dead = true
		d.life.Unlock()
	})
}

// linkEP is the device as the stack sees it: a link.Endpoint carrying bare IP packets.
type linkEP Device

var (
	_ link.Endpoint    = (*linkEP)(nil)
	_ link.TxCongester = (*linkEP)(nil)
)

// TxFullIsCongestion implements link.TxCongester: the ring fills only when wireguard-go has
// stopped reading, its own queues full of 64 KiB buffers; TCP should back off, not just
// wait.
func (l *linkEP) TxFullIsCongestion() bool { return true }

// Medium implements link.Endpoint: bare IP packets.
func (l *linkEP) Medium() link.Medium { return link.MediumIP }

// MTU implements link.Endpoint.
func (l *linkEP) MTU() int { return l.mtu }

// HardwareAddr implements link.Endpoint: none.
func (l *linkEP) HardwareAddr() [6]byte { return [6]byte{} }

// Attach implements link.Endpoint. It never waits for a delivery in progress; one that
// raced with a detach reaches the old dispatcher, which drops it.
func (l *linkEP) Attach(disp link.Dispatcher) {
	if disp == nil {
		l.disp.Store(nil)
		return
	}
	l.disp.Store(&dispatcher{disp})
}

// WritePackets implements link.Endpoint: it takes ownership of every pbuf and queues them
// for Read, in order, until the ring is full (errs.WouldBlock) or closed (errs.Clsd); the
// rest are freed and counted. Frames longer than the MTU are refused (errs.Val).
func (l *linkEP) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	var err error
	n := 0
	l.mu.Lock()
	wasEmpty := l.ring.Len() == 0
	for i, p := range pkts {
		switch {
		case l.closed:
			err = errs.Clsd
		case l.ring.Full():
			err = errs.WouldBlock
		case p.TotLen() > l.mtu:
			err = errs.Val
		}
		if err != nil {
			l.mu.Unlock()
			for _, q := range pkts[i:] {
				q.Free()
			}
			l.txDropped.Add(uint64(len(pkts) - i))
			l.signal(wasEmpty && n > 0)
			return n, err
		}
		l.ring.Push(p) // cannot fail: not full
		n++
	}
	l.mu.Unlock()
	l.signal(wasEmpty && n > 0)
	return n, nil
}

// signal wakes a waiting Read (never blocks: the channel holds one wake-up).
func (l *linkEP) signal(do bool) {
	if !do {
		return
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// TxRoom implements link.TxRoomer: the free slots of the ring.
func (l *linkEP) TxRoom() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0
	}
	return l.ring.Cap() - l.ring.Len()
}

// Close implements link.Endpoint (the stack calls it when it closes): the ring frees its
// frames, Read returns os.ErrClosed and Write fails. It waits for a delivery in progress.
func (l *linkEP) Close() error {
	(*Device)(l).shutdown()
	return nil
}
