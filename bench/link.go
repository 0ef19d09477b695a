package main

// The shared link: the one wire every userspace engine runs over, so that the engines, not
// the links, are compared.
//
//	stack A ─WritePackets─▶ [bounded queue A→B] ─delivery goroutine─▶ (loss) ─▶ [delay line] ─▶ B receives
//	stack A ◀── receives ── [delay line] ◀── (loss) ◀─delivery goroutine─ [bounded queue B→A] ◀─ stack B
//
// What wireguard-go's netstack TUN and Tailscale's link endpoint do: raw IP packets, a bounded
// queue per direction (QueueLen, 512 like Tailscale's), one delivery goroutine per direction
// that takes up to 64 packets at a time. A full queue drops the packet (the sender's TCP sees a
// loss), as a TUN's would.
//
// One copy per packet: the queue holds the sender's own packet (a gVisor PacketBuffer
// reference, a wisp pbuf chain) and the receiving engine copies it into its own memory at
// delivery (a new gVisor buffer; a wisp POOL chain from its AllocRx), after which the sender's
// packet is released. Every engine pays exactly that one copy.
//
// Impairment (the loss/delay matrix): loss is decided per packet at delivery by a seeded
// generator per direction, so every engine meets the same sequence of decisions. Delay holds
// the packet in link memory (a copy, then a second copy into the receiver when it is due): a
// real network, not the sender, holds packets in flight, and holding them in a stack's pools
// would charge one engine's pools and not another's heap. The delay line has a goroutine of
// its own (delay.go) that delivers due packets, so the queue keeps draining onto the wire
// while a burst is delivered. Delayed links therefore cost every engine two copies per packet
// instead of one; the matrix is about loss recovery, not copies.

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wispstack/wisp/pbuf"
)

// linkConfig describes the shared link.
type linkConfig struct {
	MTU      int
	QueueLen int // per direction; default 512
	Impair   impairment
}

// impairment is applied identically in both directions (each with its own generator).
type impairment struct {
	Loss  float64       // probability that a packet is lost, per direction
	Delay time.Duration // one-way delay (RTT is twice this)
	Seed  uint64
}

func (i impairment) active() bool { return i.Loss > 0 || i.Delay > 0 }

const (
	defaultQueueLen = 512
	maxBatch        = 64
	// delayLineLen bounds the packets in flight on a delayed link per direction: 16384
	// packets of 1500 bytes in 25 ms is 7.8 Gbit/s, far beyond what any engine reaches
	// through the delay.
	delayLineLen = 16384
)

// frame is one packet on the link: views of its bytes and the sender's handle to release.
type frame struct {
	parts [][]byte  // views of the packet, in order (the sender's memory, or the link's)
	size  int       // total bytes
	owner any       // the sender's packet (a pointer), released once the receiver copied it
	at    time.Time // delay line: when the packet is due
	buf   []byte    // delay line: the link memory holding the packet
	// The large-segment variant: a GSO packet crosses the link whole, with the sender's
	// segmentation request (type and segment payload size), as a virtio-net header
	// carries it. linkCsum: the sender left the transport checksum to the link (partial);
	// the link completes it, the work a NIC does (gVisor's side when it writes, wisp's
	// when it delivers), and the receiver takes it as verified.
	gso      pbuf.GSOType
	gsoSize  int
	linkCsum bool
}

// maxGSOFrame is the largest GSO packet the link carries (an IPv4 total length).
const maxGSOFrame = 0xffff

// peer is one engine's side of the link.
type peer interface {
	// release frees a packet this side wrote, once the link is done with it.
	release(owner any)
	// deliver copies every frame into this side's memory (the one copy) and hands them to
	// its stack as one batch. The frames' parts are borrowed: deliver must not keep them.
	deliver(frames []frame)
}

// linkStats counts one direction.
type linkStats struct {
	Packets  atomic.Uint64 // delivered to the receiver
	Bytes    atomic.Uint64
	Full     atomic.Uint64 // dropped: queue full
	Lost     atomic.Uint64 // dropped by the impairment
	TooLarge atomic.Uint64 // dropped: larger than the MTU (and not a GSO packet)
	GSO      atomic.Uint64 // delivered GSO packets (large-segment variant), in Packets too
}

// direction is one way of the shared link.
type direction struct {
	cfg    linkConfig
	from   peer // the writer: releases its packets
	to     peer // the receiver
	rng    *rand.Rand
	signal chan struct{}
	done   chan struct{}
	wg     sync.WaitGroup
	stats  linkStats

	mu     sync.Mutex
	ring   []frame // guarded by mu
	head   int     // guarded by mu
	n      int     // guarded by mu
	closed bool    // guarded by mu

	batch []frame    // owned by the delivery goroutine
	line  *delayLine // the wire's delay, when the impairment has one
}

// link is a pair of directions: ab carries what side a writes to side b.
type sharedLink struct {
	ab, ba *direction
}

// newLink joins a and b. Nothing moves until start.
func newLink(cfg linkConfig, a, b peer) *sharedLink {
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = defaultQueueLen
	}
	return &sharedLink{ab: newDirection(cfg, a, b, 1), ba: newDirection(cfg, b, a, 2)}
}

// maxParts is the parts room every frame slot starts with: a 64 KiB segment may reference
// several send-queue records, and a slot that had to grow would count as an allocation
// against the engine whose frames it carries.
const maxParts = 32

func newDirection(cfg linkConfig, from, to peer, stream uint64) *direction {
	d := &direction{
		cfg:    cfg,
		from:   from,
		to:     to,
		rng:    rand.New(rand.NewPCG(cfg.Impair.Seed, stream)),
		signal: make(chan struct{}, 1),
		done:   make(chan struct{}),
		ring:   make([]frame, cfg.QueueLen),
		batch:  make([]frame, maxBatch),
	}
	for i := range d.ring {
		d.ring[i].parts = make([][]byte, 0, maxParts)
	}
	for i := range d.batch {
		d.batch[i].parts = make([][]byte, 0, maxParts)
	}
	if cfg.Impair.Delay > 0 {
		d.line = newDelayLine(d)
	}
	return d
}

// start starts both delivery goroutines.
func (l *sharedLink) start() {
	l.ab.start()
	l.ba.start()
}

// close stops both directions and releases every packet they hold.
func (l *sharedLink) close() {
	l.ab.close()
	l.ba.close()
}

func (d *direction) start() {
	d.wg.Add(1)
	go d.run()
	if d.line != nil {
		d.wg.Add(1)
		go d.line.run()
	}
}

// lock, slot and unlock let a writer queue a batch under one hold of the mutex without
// allocating: slot returns the next free frame (nil when the queue is full, counted), which
// the writer fills; unlock wakes the delivery goroutine. gso says the packet is a GSO
// packet (the large-segment variant), which may exceed the MTU up to maxGSOFrame; the
// writer sets the frame's gso fields.
func (d *direction) lock() { d.mu.Lock() }

func (d *direction) slot(size int, gso bool) *frame {
	switch {
	case d.closed:
		return nil
	case size > d.cfg.MTU && (!gso || size > maxGSOFrame):
		d.stats.TooLarge.Add(1)
		return nil
	case d.n == len(d.ring):
		d.stats.Full.Add(1)
		return nil
	}
	f := &d.ring[(d.head+d.n)%len(d.ring)]
	d.n++
	f.parts = f.parts[:0]
	f.size = size
	f.gso, f.gsoSize, f.linkCsum = pbuf.GSONone, 0, false
	return f
}

func (d *direction) unlock() {
	d.mu.Unlock()
	select {
	case d.signal <- struct{}{}:
	default:
	}
}

// take moves up to maxBatch frames into d.batch, swapping frames so both keep their parts
// slices' capacity.
func (d *direction) take() int {
	d.mu.Lock()
	k := min(d.n, len(d.batch))
	for i := 0; i < k; i++ {
		d.batch[i], d.ring[d.head] = d.ring[d.head], d.batch[i]
		d.ring[d.head].owner = nil
		d.head = (d.head + 1) % len(d.ring)
	}
	d.n -= k
	d.mu.Unlock()
	return k
}

// run is the delivery goroutine: it drains the queue in batches and delivers them (or, on a
// delayed link, puts them on the wire: the delay line's goroutine delivers them when due).
func (d *direction) run() {
	defer d.wg.Done()
	for {
		select {
		case <-d.done:
			return
		case <-d.signal:
		}
		for {
			k := d.take()
			if k == 0 {
				break
			}
			d.pass(d.batch[:k])
		}
	}
}

// pass applies the impairment to a batch and delivers what is not lost or delayed.
func (d *direction) pass(b []frame) {
	imp := d.cfg.Impair
	if !imp.active() {
		d.to.deliver(b)
		d.count(b)
		for i := range b {
			d.from.release(b[i].owner)
			b[i].owner = nil
		}
		return
	}
	k := 0
	for i := range b {
		f := &b[i]
		if imp.Loss > 0 && d.rng.Float64() < imp.Loss {
			d.stats.Lost.Add(1)
			d.from.release(f.owner)
			f.owner = nil
			continue
		}
		if d.line != nil {
			d.line.push(f)
			d.from.release(f.owner)
			f.owner = nil
			continue
		}
		// Swap, not copy: every frame keeps a parts slice of its own.
		b[k], b[i] = b[i], b[k]
		k++
	}
	if kept := b[:k]; len(kept) > 0 {
		d.to.deliver(kept)
		d.count(kept)
		for i := range kept {
			d.from.release(kept[i].owner)
		}
	}
	for i := range b {
		b[i].owner = nil
	}
}

func (d *direction) count(b []frame) {
	var n, g uint64
	for i := range b {
		n += uint64(b[i].size)
		if b[i].gso != pbuf.GSONone {
			g++
		}
	}
	if g > 0 {
		d.stats.GSO.Add(g)
	}
	d.stats.Packets.Add(uint64(len(b)))
	d.stats.Bytes.Add(n)
}

// close stops the delivery goroutine and releases every queued packet.
func (d *direction) close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	d.mu.Unlock()
	close(d.done)
	d.wg.Wait()
	d.mu.Lock()
	for ; d.n > 0; d.n-- {
		f := &d.ring[d.head]
		d.from.release(f.owner)
		f.owner = nil
		d.head = (d.head + 1) % len(d.ring)
	}
	d.mu.Unlock()
}

// summary describes both directions for the progress log.
func (l *sharedLink) summary() string {
	f := func(d *direction) string {
		return fmt.Sprintf("%d pkts (%d GSO) %d MB, %d queue-full, %d lost, %d too large",
			d.stats.Packets.Load(), d.stats.GSO.Load(), d.stats.Bytes.Load()>>20, d.stats.Full.Load(), d.stats.Lost.Load(), d.stats.TooLarge.Load())
	}
	return "A→B " + f(l.ab) + "; B→A " + f(l.ba)
}
