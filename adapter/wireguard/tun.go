package wireguard

// The device between wireguard-go and the stack:
//
//	wireguard-go ──Write(bufs)──▶ AllocRx + CopyIn ──DeliverPackets(batch)──▶ stack core
//	wireguard-go ◀──Read(bufs)─── CopyOut + Free ◀── ring ◀──WritePackets──── stack core
//	                                  ▲ wake (cap 1)            │
//	                                  └─────────────────────────┘
//
// Inbound packets cost one copy (wireguard-go's decrypted buffer into a POOL chain) and one
// DeliverPackets per Write call, so that the stack's GRO sees the whole batch. Outbound
// frames wait as pbufs in a fixed ring until Read copies them into wireguard-go's buffers,
// cutting large segments to the MTU on the way (segment.go); the stack never blocks on the
// ring (a full ring drops, as a full NIC queue does) and Read sleeps on a one-slot wake
// channel, so there is no channel operation per packet.

import (
	"os"
	"sync"
	"sync/atomic"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/ring"
	"github.com/wispstack/wisp/wire"
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
	mtu     int
	batch   int
	offload bool // the stack may hand large segments and partial checksums (Options.NoOffload)
	events  chan tun.Event
	done    chan struct{} // closed by shutdown: Read returns
	wake    chan struct{} // cap 1: a frame was queued while the ring was empty
	closer  func() error  // closes the stack (set by CreateNetTUNWithOptions)

	disp atomic.Pointer[dispatcher] // nil: detached

	// life guards the delivery path against shutdown: Write holds it shared while it
	// delivers, shutdown takes it exclusively to set dead and wait for deliveries to end.
	life sync.RWMutex
	dead bool // guarded by life

	// The ring of frames the stack sent, oldest at head.
	mu     sync.Mutex
	ring   ring.Ring[*pbuf.Pbuf] // guarded by mu; QueueLen frames
	queued int                   // guarded by mu: the packets the ring's frames make (wireSegs)
	closed bool                  // guarded by mu: WritePackets refuses, the ring is empty

	// rmu serializes readers, so one scratch slice serves every Read. Frames popped from
	// the ring wait in rbuf[rhead:] until Read has copied them (a large segment may need
	// more buffers than one Read has); cut is the progress through rbuf[rhead] when it is
	// a large segment.
	rmu   sync.Mutex
	rbuf  []*pbuf.Pbuf // guarded by rmu
	rhead int          // guarded by rmu
	cut   cutter       // guarded by rmu

	// wmu serializes writers for the same reason.
	wmu  sync.Mutex
	wbuf []*pbuf.Pbuf // guarded by wmu

	shutOnce   sync.Once
	eventsOnce sync.Once

	txFrames, txDropped, rxFrames, rxDropped, tooBig atomic.Uint64
	gsoFrames, gsoSegs, csumDone                     atomic.Uint64
}

// dispatcher boxes the link.Dispatcher so that it can be swapped atomically.
type dispatcher struct{ d link.Dispatcher }

var _ tun.Device = (*Device)(nil)

// newDevice returns a device with a ring of queueLen frames and batches of batch packets,
// offering the stack offloads if offload is set.
func newDevice(mtu, batch, queueLen int, offload bool) *Device {
	d := &Device{
		mtu:     mtu,
		batch:   batch,
		offload: offload,
		events:  make(chan tun.Event, 4),
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		ring:    ring.New[*pbuf.Pbuf](queueLen),
		rbuf:    make([]*pbuf.Pbuf, 0, batch),
		wbuf:    make([]*pbuf.Pbuf, 0, batch),
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
// way out (ring full or closed, larger than wireguard-go's buffer, or a large segment or
// partial checksum Read could not make sense of), the packets wireguard-go wrote and the
// ones dropped on the way in (no receive buffer, detached). A large segment counts as the
// packets it was cut into.
func (d *Device) Stats() (tx, txDropped, rx, rxDropped uint64) {
	return d.txFrames.Load(), d.txDropped.Load() + d.tooBig.Load(), d.rxFrames.Load(), d.rxDropped.Load()
}

// OffloadStats returns the large segments (GSO frames) Read cut to the MTU, the packets it
// cut them into, and the ordinary packets whose partial checksum it completed.
func (d *Device) OffloadStats() (gsoFrames, gsoSegments, csumCompleted uint64) {
	return d.gsoFrames.Load(), d.gsoSegs.Load(), d.csumDone.Load()
}

// Read implements tun.Device: it waits until the stack has sent at least one packet and
// copies up to len(bufs) packets (at most BatchSize), each into bufs[i][offset:], setting sizes[i]. A large
// segment is cut into MTU-sized packets, continued by the next Read when bufs run out;
// partial checksums are completed. After Close it returns os.ErrClosed. A packet longer
// than its buffer is dropped and counted.
func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	// At most BatchSize packets, also when large segments could fill more of wireguard-go's
	// buffers: each packet it takes holds one of its 64 KiB buffers until sent (Options).
	bufs = bufs[:min(len(bufs), d.batch)]
	d.rmu.Lock()
	defer d.rmu.Unlock()
	for {
		if d.rhead == len(d.rbuf) {
			if closed := d.pop(len(bufs)); closed {
				return 0, os.ErrClosed
			}
			if len(d.rbuf) == 0 {
				select {
				case <-d.wake:
				case <-d.done:
				}
				continue
			}
		}
		if n := d.fill(bufs, sizes, offset); n > 0 {
			d.txFrames.Add(uint64(n))
			return n, nil
		}
	}
}

// pop moves up to n frames from the ring into d.rbuf, empty (d.rmu held), and reports
// whether the ring is closed (then it moves none).
func (d *Device) pop(n int) bool {
	batch := d.rbuf[:0]
	d.mu.Lock()
	closed := d.closed
	for len(batch) < n {
		p, ok := d.ring.Pop()
		if !ok {
			break
		}
		d.queued -= wireSegs(p)
		batch = append(batch, p)
	}
	d.mu.Unlock()
	d.rbuf, d.rhead = batch, 0
	return closed
}

// fill copies the frames waiting in d.rbuf into bufs (d.rmu held), until one or the other
// runs out, and returns the number of packets it wrote. It frees each frame it is done
// with.
func (d *Device) fill(bufs [][]byte, sizes []int, offset int) int {
	n, segs := 0, 0
	for n < len(bufs) && d.rhead < len(d.rbuf) {
		p := d.rbuf[d.rhead]
		if typ, _ := p.GSO(); typ == pbuf.GSONone {
			dst := bufs[n][offset:]
			switch tot := p.TotLen(); {
			case tot > len(dst):
				d.tooBig.Add(1)
			case p.CopyOut(dst[:tot], 0) != tot:
				d.txDropped.Add(1) // cannot happen: the chain is tot long
			case p.Flags()&pbuf.FlagChecksumPartial != 0 && !wire.CompleteChecksum(dst[:tot]):
				d.txDropped.Add(1)
			default:
				if p.Flags()&pbuf.FlagChecksumPartial != 0 {
					d.csumDone.Add(1)
				}
				sizes[n] = tot
				n++
			}
			d.release()
			continue
		}
		c := &d.cut
		if c.p == nil && !c.start(p) {
			d.txDropped.Add(1)
			d.release()
			continue
		}
		for n < len(bufs) && c.more() {
			l := c.next(bufs[n][offset:], d.mtu)
			if l == 0 {
				d.tooBig.Add(uint64(c.remaining()))
				c.stop()
				break
			}
			sizes[n] = l
			n++
			segs++
		}
		if c.p == nil || !c.more() {
			if c.p != nil {
				d.gsoFrames.Add(1)
			}
			c.stop()
			d.release()
		}
	}
	if d.rhead == len(d.rbuf) {
		d.rbuf, d.rhead = d.rbuf[:0], 0
	}
	if segs > 0 {
		d.gsoSegs.Add(uint64(segs))
	}
	return n
}

// release frees d.rbuf[d.rhead], done with, and moves on to the next frame.
func (d *Device) release() {
	d.rbuf[d.rhead].Free()
	d.rbuf[d.rhead] = nil
	d.rhead++
}

// Write implements tun.Device: it copies each packet bufs[i][offset:] into a receive chain
// and hands them to the stack in one DeliverPackets call per Write. Empty packets are skipped;
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
	if cap(d.wbuf) < len(bufs) {
		// wireguard-go's batch is the larger of its bind's and ours (its Linux bind's is
		// 128): one DeliverPackets for all of it, so that GRO sees every segment of it.
		d.wbuf = make([]*pbuf.Pbuf, 0, len(bufs))
	}
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
		d.queued = 0
		d.mu.Unlock()
		close(d.done)
		// A Read in progress ends (done is closed); the frames it left for the next Read
		// are freed here.
		d.rmu.Lock()
		for _, p := range d.rbuf[d.rhead:] {
			p.Free()
			d.txDropped.Add(1)
		}
		clear(d.rbuf)
		d.rbuf, d.rhead = d.rbuf[:0], 0
		d.cut.stop()
		d.rmu.Unlock()
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
	_ link.Offloader   = (*linkEP)(nil)
)

// Offloads implements link.Offloader: with offloads on, the device completes checksums
// and cuts TCP segments of up to 64 KiB itself, on Read; with Options.NoOffload, nothing
// (the zero value: MTU-sized frames with complete checksums, as before offloads).
func (l *linkEP) Offloads() link.Offloads {
	if !l.offload {
		return link.Offloads{}
	}
	return link.Offloads{TxChecksum: true, TSO4: true, TSO6: true, GSOMax: gsoMax}
}

// gsoMax is the largest GSO frame the device takes, IP header included.
const gsoMax = 0xffff

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
// rest are freed and counted. Frames longer than the MTU are refused (errs.Val), but for
// TCP GSO frames of up to 64 KiB when offloads are on.
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
		case p.TotLen() > l.mtu && !l.takesGSO(p):
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
		l.queued += wireSegs(p)
		n++
	}
	l.mu.Unlock()
	l.signal(wasEmpty && n > 0)
	return n, nil
}

// takesGSO reports whether p is a large segment the device cuts on Read.
func (l *linkEP) takesGSO(p *pbuf.Pbuf) bool {
	typ, _ := p.GSO()
	return l.offload && (typ == pbuf.GSOTCPv4 || typ == pbuf.GSOTCPv6) && p.TotLen() <= gsoMax
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

// TxRoom implements link.TxRoomer: the packets the ring has room for, QueueLen less those
// its frames will be cut into. A large segment is one frame but fills the room of the
// packets it makes: the ring holds as many bytes as without offloads, so that it still fills,
// and tells TCP of congestion, once wireguard-go's queues are full. WritePackets still takes
// frames while the ring has slots (a large segment sent into the last room is not dropped).
func (l *linkEP) TxRoom() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0
	}
	return max(min(l.ring.Cap()-l.ring.Len(), l.ring.Cap()-l.queued), 0)
}

// wireSegs is the number of packets frame p becomes on Read (for a malformed large
// segment, which Read drops, a number all the same).
func wireSegs(p *pbuf.Pbuf) int {
	typ, size := p.GSO()
	if typ == pbuf.GSONone {
		return 1
	}
	ip := wire.IPv6HeaderLen
	if typ != pbuf.GSOTCPv6 {
		b, _ := p.ByteAt(0)
		ip = int(b&0x0f) * 4
	}
	b, _ := p.ByteAt(ip + 12) // the TCP data offset
	return max((p.TotLen()-ip-int(b>>4)*4+size-1)/size, 1)
}

// Close implements link.Endpoint (the stack calls it when it closes): the ring frees its
// frames, Read returns os.ErrClosed and Write fails. It waits for a delivery in progress.
func (l *linkEP) Close() error {
	(*Device)(l).shutdown()
	return nil
}
