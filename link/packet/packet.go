package packet

// The link between the host and the stack:
//
//	host ──Write(bufs)──▶ AllocRx + CopyIn ──DeliverPackets(batch)──▶ stack core
//	host ◀──Read(bufs)─── CopyOut + Free ◀── ring ◀──WritePackets──── stack core
//	                          ▲ wake (cap 1)            │
//	                          └─────────────────────────┘
//
// Inbound packets cost one copy (the host's buffer into a POOL chain) and one
// DeliverPackets per Write call, so that the stack's GRO sees the whole batch. Outbound
// frames wait as pbufs in a fixed ring until Read copies them into the host's buffers,
// cutting large segments to the MTU on the way (segment.go); the stack never blocks on the
// ring (a full ring drops, as a full NIC queue does) and Read sleeps on a one-slot wake
// channel, so there is no channel operation per packet.

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/ring"
	"github.com/wispstack/wisp/wire"
)

// Config sizes a Link.
type Config struct {
	// MTU is the largest packet the stack sends and Read returns, in [68, 65535] (RFC 791's
	// minimum; IPv6 needs 1280, which the stack checks when an IPv6 address is added).
	MTU int
	// Batch is BatchSize: the most packets one Read returns (0: DefaultBatch). Write takes
	// batches of any length.
	Batch int
	// QueueLen bounds the frames queued from the stack for Read; a full queue drops, as a
	// NIC's does (0: DefaultQueueLen). The room the link reports to the stack
	// (link.TxRoomer) counts packets: a large segment takes the room of the packets Read
	// cuts it into.
	QueueLen int
	// Offload tells the stack that the link segments TCP and completes checksums
	// (link.Offloads{TxChecksum, TSO4, TSO6, GSOMax: 65535}): TCP then sends segments of up
	// to 64 KiB with one header, and Read cuts them into MTU-sized packets, completing every
	// checksum in the same pass. Without it the stack hands the link MTU-sized packets with
	// complete checksums. The host reads ordinary packets either way.
	Offload bool
}

// Defaults of Config.
const (
	DefaultBatch    = link.MaxBatch
	DefaultQueueLen = 256
)

// Link is a packet-in/packet-out link: the host writes the packets the stack receives and
// reads the packets the stack sends. Endpoint returns the same link seen from the stack.
//
// Concurrency: every method is safe for concurrent use. Close unblocks Read (os.ErrClosed)
// and makes Write fail with os.ErrClosed; the stack closing its link does the same.
type Link struct {
	mtu     int
	batch   int
	offload bool          // the stack may hand large segments and partial checksums
	done    chan struct{} // closed by Close: Read returns
	wake    chan struct{} // cap 1: a frame was queued while the ring was empty

	disp atomic.Pointer[dispatcher] // nil: detached

	// life guards the delivery path against Close: Write holds it shared while it
	// delivers, Close takes it exclusively to set dead and wait for deliveries to end.
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

	closeOnce sync.Once

	txFrames, txDropped, rxFrames, rxDropped, tooBig atomic.Uint64
	gsoFrames, gsoSegs, csumDone                     atomic.Uint64
}

// dispatcher boxes the link.Dispatcher so that it can be swapped atomically.
type dispatcher struct{ d link.Dispatcher }

// New returns a link configured by c, detached until the stack attaches its Endpoint.
func New(c Config) (*Link, error) {
	if c.MTU < 68 || c.MTU > 65535 {
		// RFC 791: "Every internet module must be able to forward a datagram of 68 octets
		// without further fragmentation" (larger datagrams are fragmented to fit).
		return nil, fmt.Errorf("packet: MTU %d out of range [68, 65535]", c.MTU)
	}
	if c.Batch < 0 || c.QueueLen < 0 {
		return nil, fmt.Errorf("packet: negative Batch (%d) or QueueLen (%d)", c.Batch, c.QueueLen)
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.QueueLen == 0 {
		c.QueueLen = DefaultQueueLen
	}
	return &Link{
		mtu:     c.MTU,
		batch:   c.Batch,
		offload: c.Offload,
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		ring:    ring.New[*pbuf.Pbuf](c.QueueLen),
		rbuf:    make([]*pbuf.Pbuf, 0, c.Batch),
		wbuf:    make([]*pbuf.Pbuf, 0, c.Batch),
	}, nil
}

// MTU returns the largest packet Read returns (as Config.MTU).
func (l *Link) MTU() int { return l.mtu }

// BatchSize returns the most packets one Read returns (wireguard-go's tun.Device
// BatchSize: the batch a host allocates buffers for).
func (l *Link) BatchSize() int { return l.batch }

// Endpoint returns the link as the stack sees it, for stack.AddNetif (MediumIP).
func (l *Link) Endpoint() link.Endpoint { return (*linkEP)(l) }

// Stats returns the packets the stack sent (read by the host), the ones dropped on the
// way out (ring full or closed, larger than the host's buffer, or a large segment or
// partial checksum Read could not make sense of), the packets the host wrote and the
// ones dropped on the way in (no receive buffer, detached). A large segment counts as the
// packets it was cut into.
func (l *Link) Stats() (tx, txDropped, rx, rxDropped uint64) {
	return l.txFrames.Load(), l.txDropped.Load() + l.tooBig.Load(), l.rxFrames.Load(), l.rxDropped.Load()
}

// OffloadStats returns the large segments (GSO frames) Read cut to the MTU, the packets it
// cut them into, and the ordinary packets whose partial checksum it completed.
func (l *Link) OffloadStats() (gsoFrames, gsoSegments, csumCompleted uint64) {
	return l.gsoFrames.Load(), l.gsoSegs.Load(), l.csumDone.Load()
}

// Read waits until the stack has sent at least one packet and copies up to len(bufs)
// packets (at most BatchSize), each into bufs[i][offset:], setting sizes[i]; it returns
// how many. A large segment is cut into MTU-sized packets, continued by the next Read when
// bufs run out; partial checksums are completed. After Close it returns os.ErrClosed. A
// packet longer than its buffer is dropped and counted.
func (l *Link) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	// At most BatchSize packets, also when large segments could fill more of the host's
	// buffers: wireguard-go, for one, holds a 64 KiB buffer per packet until it is sent.
	bufs = bufs[:min(len(bufs), l.batch)]
	l.rmu.Lock()
	defer l.rmu.Unlock()
	for {
		if l.rhead == len(l.rbuf) {
			if closed := l.pop(len(bufs)); closed {
				return 0, os.ErrClosed
			}
			if len(l.rbuf) == 0 {
				select {
				case <-l.wake:
				case <-l.done:
				}
				continue
			}
		}
		if n := l.fill(bufs, sizes, offset); n > 0 {
			l.txFrames.Add(uint64(n))
			return n, nil
		}
	}
}

// pop moves up to n frames from the ring into l.rbuf, empty (l.rmu held), and reports
// whether the ring is closed (then it moves none).
func (l *Link) pop(n int) bool {
	batch := l.rbuf[:0]
	l.mu.Lock()
	closed := l.closed
	for len(batch) < n {
		p, ok := l.ring.Pop()
		if !ok {
			break
		}
		l.queued -= wireSegs(p)
		batch = append(batch, p)
	}
	l.mu.Unlock()
	l.rbuf, l.rhead = batch, 0
	return closed
}

// fill copies the frames waiting in l.rbuf into bufs (l.rmu held), until one or the other
// runs out, and returns the number of packets it wrote. It frees each frame it is done
// with.
func (l *Link) fill(bufs [][]byte, sizes []int, offset int) int {
	n, segs := 0, 0
	for n < len(bufs) && l.rhead < len(l.rbuf) {
		p := l.rbuf[l.rhead]
		if typ, _ := p.GSO(); typ == pbuf.GSONone {
			dst := bufs[n][offset:]
			switch tot := p.TotLen(); {
			case tot > len(dst):
				l.tooBig.Add(1)
			case p.CopyOut(dst[:tot], 0) != tot:
				l.txDropped.Add(1) // cannot happen: the chain is tot long
			case p.Flags()&pbuf.FlagChecksumPartial != 0 && !wire.CompleteChecksum(dst[:tot]):
				l.txDropped.Add(1)
			default:
				if p.Flags()&pbuf.FlagChecksumPartial != 0 {
					l.csumDone.Add(1)
				}
				sizes[n] = tot
				n++
			}
			l.release()
			continue
		}
		c := &l.cut
		if c.p == nil && !c.start(p) {
			l.txDropped.Add(1)
			l.release()
			continue
		}
		for n < len(bufs) && c.more() {
			k := c.next(bufs[n][offset:], l.mtu)
			if k == 0 {
				l.tooBig.Add(uint64(c.remaining()))
				c.stop()
				break
			}
			sizes[n] = k
			n++
			segs++
		}
		if c.p == nil || !c.more() {
			if c.p != nil {
				l.gsoFrames.Add(1)
			}
			c.stop()
			l.release()
		}
	}
	if l.rhead == len(l.rbuf) {
		l.rbuf, l.rhead = l.rbuf[:0], 0
	}
	if segs > 0 {
		l.gsoSegs.Add(uint64(segs))
	}
	return n
}

// release frees l.rbuf[l.rhead], done with, and moves on to the next frame.
func (l *Link) release() {
	l.rbuf[l.rhead].Free()
	l.rbuf[l.rhead] = nil
	l.rhead++
}

// Write copies each packet bufs[i][offset:] into a receive chain and hands them to the
// stack in one DeliverPackets call per Write, so that the stack's GRO sees the whole
// batch (of any length, BatchSize or not). Empty packets are skipped; packets that find no
// receive buffer, or no stack attached, are dropped and counted, as a NIC drops them. It
// reports every packet as written, or os.ErrClosed after Close.
func (l *Link) Write(bufs [][]byte, offset int) (int, error) {
	l.life.RLock()
	defer l.life.RUnlock()
	if l.dead {
		return 0, os.ErrClosed
	}
	box := l.disp.Load()
	if box == nil {
		l.rxDropped.Add(uint64(len(bufs)))
		return len(bufs), nil
	}
	disp := box.d
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if cap(l.wbuf) < len(bufs) {
		// wireguard-go's batch is the larger of its bind's and ours (its Linux bind's is
		// 128): one DeliverPackets for all of it, so that GRO sees every segment of it.
		l.wbuf = make([]*pbuf.Pbuf, 0, len(bufs))
	}
	batch := l.wbuf[:0]
	for _, b := range bufs {
		pkt := b[offset:]
		if len(pkt) == 0 {
			continue
		}
		p := disp.AllocRx(len(pkt))
		if p == nil {
			l.rxDropped.Add(1)
			continue
		}
		_ = p.CopyIn(pkt, 0) // cannot fail: p is len(pkt) long
		batch = append(batch, p)
	}
	if len(batch) > 0 {
		l.rxFrames.Add(uint64(len(batch)))
		disp.DeliverPackets(batch)
		clear(batch)
	}
	l.wbuf = batch[:0]
	return len(bufs), nil
}

// Close stops the link: the ring refuses frames and frees those it holds, Read returns
// os.ErrClosed, Write fails with os.ErrClosed, and a delivery in progress ends before
// Close returns. It does not close the stack (whose netif then only drops what it sends).
// Idempotent; the stack calls it too, through the Endpoint, when it closes.
func (l *Link) Close() error {
	l.closeOnce.Do(func() {
		l.disp.Store(nil)
		l.mu.Lock()
		l.closed = true
		for p, ok := l.ring.Pop(); ok; p, ok = l.ring.Pop() {
			p.Free()
			l.txDropped.Add(1)
		}
		l.queued = 0
		l.mu.Unlock()
		close(l.done)
		// A Read in progress ends (done is closed); the frames it left for the next Read
		// are freed here.
		l.rmu.Lock()
		for _, p := range l.rbuf[l.rhead:] {
			p.Free()
			l.txDropped.Add(1)
		}
		clear(l.rbuf)
		l.rbuf, l.rhead = l.rbuf[:0], 0
		l.cut.stop()
		l.rmu.Unlock()
		l.life.Lock()
		l.dead = true
		l.life.Unlock()
	})
	return nil
}
