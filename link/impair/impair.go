package impair

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
)

// Dir configures one direction. The zero value passes every frame untouched.
type Dir struct {
	// Seed seeds the direction's random generator.
	Seed uint64
	// Loss is the probability that a frame is lost.
	Loss float64
	// Gilbert-Elliott burst loss: each frame the channel moves from the good to the bad
	// state with PGoodToBad and back with PBadToGood; in the bad state a frame is lost with
	// LossInBad.
	PGoodToBad, PBadToGood, LossInBad float64
	// Duplicate is the probability that a frame is sent twice.
	Duplicate float64
	// Reorder is the probability that a frame is held back by ReorderDelay (default 10 ms)
	// so that later frames overtake it.
	Reorder      float64
	ReorderDelay time.Duration
	// Delay holds every frame; Jitter adds a uniform random [-Jitter, +Jitter] to it (so
	// jitter reorders too).
	Delay, Jitter time.Duration
	// Corrupt is the probability that one random bit of the frame's payload (after the link
	// header) is flipped.
	Corrupt float64
	// RateBps limits the direction to this many bits per second with a token bucket of
	// Burst bytes (default 2 × 1514); frames beyond the bucket wait in the queue.
	RateBps int64
	Burst   int
	// QueueLen bounds the frames held for delay, reordering or rate (default 1024); beyond
	// it frames are dropped.
	QueueLen int
	// MTU drops frames whose packet (frame less link header) is longer; 0 keeps the inner
	// link's.
	MTU int
}

// Config configures a Link.
type Config struct {
	TX Dir // frames written to the Link
	RX Dir // frames delivered by the inner link
	// Alloc, when set, copies TX frames that are duplicated or corrupted. Without it a TX
	// duplicate shares the frame by reference (pbuf.Ref), and a TX frame whose memory is
	// shared (a REF/ROM pbuf, or a pbuf still referenced elsewhere, like a TCP segment kept
	// for retransmission) is not corrupted (counted in CorruptSkipped).
	Alloc *pbuf.Allocator
}

// Counters counts what one direction did.
type Counters struct {
	Frames         uint64 // frames that entered
	Passed         uint64 // frames handed on (duplicates included)
	Lost           uint64 // random loss
	BurstLost      uint64 // Gilbert-Elliott loss
	Duplicated     uint64
	Reordered      uint64
	Delayed        uint64 // held for Delay/Jitter
	Corrupted      uint64
	CorruptSkipped uint64 // corruption skipped: shared memory and no Alloc
	RateQueued     uint64 // held by the rate limit
	QueueDropped   uint64 // dropped: hold queue full
	MTUDropped     uint64
	NoBuffer       uint64 // a copy could not be allocated, or RX with no dispatcher
	Refused        uint64 // TX: the inner link refused the frame
	Closed         uint64 // freed because the Link closed
}

// Link is an impaired link; it implements link.Endpoint and, towards the inner link,
// link.Dispatcher.
type Link struct {
	inner  link.Endpoint
	clk    clock.Clock
	alloc  *pbuf.Allocator
	hdr    int
	tx, rx dir
	once   sync.Once

	dmu   sync.RWMutex
	upper link.Dispatcher // guarded by dmu
}

var (
	_ link.Endpoint   = (*Link)(nil)
	_ link.Dispatcher = (*Link)(nil)
)

// New wraps inner (which the Link now owns: Close closes it) and attaches itself to it.
func New(inner link.Endpoint, clk clock.Clock, cfg Config) *Link {
	l := &Link{inner: inner, clk: clk, alloc: cfg.Alloc, hdr: inner.Medium().HeaderLen()}
	l.tx.init(l, cfg.TX, true)
	l.rx.init(l, cfg.RX, false)
	inner.Attach(l)
	return l
}

// Inner returns the wrapped link.
func (l *Link) Inner() link.Endpoint { return l.inner }

// Medium implements link.Endpoint.
func (l *Link) Medium() link.Medium { return l.inner.Medium() }

// MTU implements link.Endpoint: the inner MTU, or the TX clamp when smaller.
func (l *Link) MTU() int {
	m := l.inner.MTU()
	if c := l.tx.cfg.MTU; c > 0 && c < m {
		return c
	}
	return m
}

// Offloads implements link.Offloader: of the inner link's offloads only its GSO size, so
// that the stack cuts large segments in software before the impairments, which then act on
// segments as the wire carries them, and completes every checksum (a corrupted frame must
// fail it). Frames received stay as the inner link delivers them.
func (l *Link) Offloads() link.Offloads {
	if o, ok := l.inner.(link.Offloader); ok {
		return link.Offloads{GSOMax: o.Offloads().GSOMax}
	}
	return link.Offloads{}
}

// HardwareAddr implements link.Endpoint.
func (l *Link) HardwareAddr() [6]byte { return l.inner.HardwareAddr() }

// Attach implements link.Endpoint.
func (l *Link) Attach(d link.Dispatcher) {
	l.dmu.Lock()
	l.upper = d
	l.dmu.Unlock()
}

func (l *Link) dispatcher() link.Dispatcher {
	l.dmu.RLock()
	defer l.dmu.RUnlock()
	return l.upper
}

// Stats returns the counters of both directions.
func (l *Link) Stats() (tx, rx Counters) {
	l.tx.mu.Lock()
	tx = l.tx.c
	l.tx.mu.Unlock()
	l.rx.mu.Lock()
	rx = l.rx.c
	l.rx.mu.Unlock()
	return tx, rx
}

// Held returns how many frames each direction holds.
func (l *Link) Held() (tx, rx int) {
	l.tx.mu.Lock()
	tx = len(l.tx.held)
	l.tx.mu.Unlock()
	l.rx.mu.Lock()
	rx = len(l.rx.held)
	l.rx.mu.Unlock()
	return tx, rx
}

// WritePackets implements link.Endpoint; it takes ownership of every pbuf in pkts. Frames
// the impairments drop count as accepted (the wire lost them). It returns len(pkts) and the
// inner link's error for the frames passed on at once, or 0 and errs.Clsd after Close.
func (l *Link) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	return l.tx.input(pkts)
}

// TxRoom implements link.TxRoomer: the inner link's room (frames held for a delay are not
// counted against it), or math.MaxInt when the inner link does not say.
func (l *Link) TxRoom() int {
	if r, ok := l.inner.(link.TxRoomer); ok {
		return r.TxRoom()
	}
	return math.MaxInt
}

// AllocRx implements link.Dispatcher for the inner link: it forwards to the attached
// dispatcher (nil when there is none). The returned chain is owned by the caller, as
// link.Dispatcher.AllocRx says.
func (l *Link) AllocRx(n int) *pbuf.Pbuf {
	if d := l.dispatcher(); d != nil {
		return d.AllocRx(n)
	}
	return nil
}

// DeliverPackets implements link.Dispatcher for the inner link; it takes ownership.
func (l *Link) DeliverPackets(pkts []*pbuf.Pbuf) {
	l.rx.input(pkts)
}

// Close frees every held frame, stops the timers and closes the inner link. Idempotent.
func (l *Link) Close() error {
	var err error
	l.once.Do(func() {
		l.tx.close()
		l.rx.close()
		err = l.inner.Close()
	})
	return err
}

// held is a frame waiting for its release time; seq keeps equal times in arrival order.
type held struct {
	p   *pbuf.Pbuf
	at  time.Time
	seq uint64
}

// dir is one direction's state.
type dir struct {
	l   *Link
	cfg Dir
	tx  bool

	mu      sync.Mutex
	rng     *rand.Rand
	bad     bool // Gilbert-Elliott state
	tokens  float64
	last    time.Time
	held    []held // sorted by (at, seq)
	seq     uint64
	timer   clock.Timer
	armed   bool
	timerAt time.Time
	out     []*pbuf.Pbuf
	c       Counters
	closed  bool
}

func (d *dir) init(l *Link, cfg Dir, tx bool) {
	if cfg.ReorderDelay <= 0 {
		cfg.ReorderDelay = 10 * time.Millisecond
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 2 * 1514
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 1024
	}
	d.l, d.cfg, d.tx = l, cfg, tx
	d.rng = rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	d.tokens = float64(cfg.Burst)
	d.held = make([]held, 0, cfg.QueueLen)
	d.out = make([]*pbuf.Pbuf, 0, link.MaxBatch)
}

// input runs a batch through the impairments; it takes ownership of every pbuf.
func (d *dir) input(pkts []*pbuf.Pbuf) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		for _, p := range pkts {
			p.Free()
			d.c.Closed++
		}
		return 0, errs.Clsd
	}
	now := d.l.clk.Now()
	var err error
	for _, p := range pkts {
		d.process(p, now)
	}
	if e := d.emit(); e != nil {
		err = e
	}
	d.arm(now)
	return len(pkts), err
}

func (d *dir) chance(p float64) bool { return p > 0 && d.rng.Float64() < p }

// process decides p's fate; it takes ownership. d.mu is held.
func (d *dir) process(p *pbuf.Pbuf, now time.Time) {
	d.c.Frames++
	if d.cfg.MTU > 0 && p.TotLen()-d.l.hdr > d.cfg.MTU {
		d.c.MTUDropped++
		p.Free()
		return
	}
	if d.cfg.PGoodToBad > 0 || d.bad {
		if d.bad {
			d.bad = !d.chance(d.cfg.PBadToGood)
		} else {
			d.bad = d.chance(d.cfg.PGoodToBad)
		}
		if d.bad && d.chance(d.cfg.LossInBad) {
			d.c.BurstLost++
			p.Free()
			return
		}
	}
	if d.chance(d.cfg.Loss) {
		d.c.Lost++
		p.Free()
		return
	}
	if d.chance(d.cfg.Corrupt) {
		p = d.corrupt(p)
	}
	var dup *pbuf.Pbuf
	if d.chance(d.cfg.Duplicate) {
		dup = d.duplicate(p)
	}
	d.schedule(p, now)
	if dup != nil {
		d.c.Duplicated++
		d.schedule(dup, now)
	}
}

// corrupt flips one random bit after the link header; it takes ownership of p and returns
// the frame to send (p, or a private copy of it).
func (d *dir) corrupt(p *pbuf.Pbuf) *pbuf.Pbuf {
	n := p.TotLen() - d.l.hdr
	if n <= 0 {
		return p
	}
	if d.tx && !exclusive(p) {
		if d.l.alloc == nil {
			d.c.CorruptSkipped++
			return p
		}
		q, err := d.l.alloc.Clone(pbuf.LayerRaw, pbuf.RAM, p)
		if err != nil {
			d.c.NoBuffer++
			return p
		}
		p.Free()
		p = q
	}
	off := d.l.hdr + d.rng.IntN(n)
	b, _ := p.ByteAt(off)
	one := [1]byte{b ^ 1<<d.rng.IntN(8)}
	p.CopyIn(one[:], off)
	d.c.Corrupted++
	return p
}

// exclusive reports whether every pbuf of p is private memory only this chain references.
func exclusive(p *pbuf.Pbuf) bool {
	for q := p; q != nil; q = q.Next() {
		if q.Refs() != 1 || (q.Type() != pbuf.RAM && q.Type() != pbuf.POOL) {
			return false
		}
	}
	return true
}

// duplicate returns a second frame equal to p (the caller owns it), or nil.
func (d *dir) duplicate(p *pbuf.Pbuf) *pbuf.Pbuf {
	if d.tx {
		if d.l.alloc == nil {
			// The inner link frees each reference independently and only reads.
			p.Ref()
			return p
		}
		q, err := d.l.alloc.Clone(pbuf.LayerRaw, pbuf.RAM, p)
		if err != nil {
			d.c.NoBuffer++
			return nil
		}
		return q
	}
	up := d.l.dispatcher()
	var q *pbuf.Pbuf
	if up != nil {
		q = up.AllocRx(p.TotLen())
	}
	if q == nil || q.TotLen() < p.TotLen() {
		q.Free() // nil-safe
		d.c.NoBuffer++
		return nil
	}
	q.Shrink(p.TotLen())
	_ = pbuf.Copy(q, p)
	q.SetFlags(p.Flags())
	return q
}

// schedule passes p on now or holds it until its release time; it takes ownership.
func (d *dir) schedule(p *pbuf.Pbuf, now time.Time) {
	at := now
	rateWait, size := false, float64(p.TotLen())
	if r := d.cfg.RateBps; r > 0 {
		bytesPerSec := float64(r) / 8
		d.tokens = min(float64(d.cfg.Burst), d.tokens+now.Sub(d.last).Seconds()*bytesPerSec)
		d.last = now
		if d.tokens < size {
			// Wait until the bucket has refilled the deficit; later frames queue behind
			// (the bucket goes negative).
			at = at.Add(time.Duration((size - d.tokens) / bytesPerSec * float64(time.Second)))
			rateWait = true
		}
		d.tokens -= size
	}
	if d.cfg.Delay > 0 || d.cfg.Jitter > 0 {
		delay := d.cfg.Delay
		if j := int64(d.cfg.Jitter); j > 0 {
			delay += time.Duration(d.rng.Int64N(2*j+1) - j)
		}
		if delay > 0 {
			at = at.Add(delay)
			d.c.Delayed++
		}
	}
	if d.chance(d.cfg.Reorder) {
		at = at.Add(d.cfg.ReorderDelay)
		d.c.Reordered++
	}
	if !at.After(now) {
		d.pass(p)
		return
	}
	if len(d.held) == cap(d.held) {
		d.c.QueueDropped++
		p.Free()
		if d.cfg.RateBps > 0 {
			d.tokens += size // a dropped frame never uses the link
		}
		return
	}
	if rateWait {
		d.c.RateQueued++
	}
	d.seq++
	h := held{p: p, at: at, seq: d.seq}
	i := len(d.held)
	d.held = append(d.held, h)
	for i > 0 && d.held[i-1].at.After(at) {
		d.held[i] = d.held[i-1]
		i--
	}
	d.held[i] = h
}

// pass queues p for emit, emitting first when the batch is full.
func (d *dir) pass(p *pbuf.Pbuf) {
	if len(d.out) == cap(d.out) {
		d.emit()
	}
	d.out = append(d.out, p)
	d.c.Passed++
}

// emit hands d.out on: to the inner link (TX) or the dispatcher (RX). d.mu is held, so
// frames leave in order.
func (d *dir) emit() error {
	if len(d.out) == 0 {
		return nil
	}
	var err error
	if d.tx {
		var n int
		n, err = d.l.inner.WritePackets(d.out)
		d.c.Refused += uint64(len(d.out) - n)
	} else if up := d.l.dispatcher(); up != nil {
		up.DeliverPackets(d.out)
	} else {
		for _, p := range d.out {
			p.Free()
		}
		d.c.NoBuffer += uint64(len(d.out))
	}
	clear(d.out)
	d.out = d.out[:0]
	return err
}

// arm points the clock timer at the earliest held frame. d.mu is held.
func (d *dir) arm(now time.Time) {
	if len(d.held) == 0 {
		if d.armed {
			d.timer.Stop()
			d.armed = false
		}
		return
	}
	first := d.held[0].at
	if d.armed && d.timerAt.Equal(first) {
		return
	}
	d.timerAt, d.armed = first, true
	if d.timer == nil {
		d.timer = d.l.clk.AfterFunc(first.Sub(now), d.fire)
	} else {
		d.timer.Reset(first.Sub(now))
	}
}

// fire releases due frames; it runs in the clock's goroutine.
func (d *dir) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.armed = false
	now := d.l.clk.Now()
	k := 0
	for k < len(d.held) && !d.held[k].at.After(now) {
		d.pass(d.held[k].p)
		k++
	}
	n := copy(d.held, d.held[k:])
	clear(d.held[n:])
	d.held = d.held[:n]
	d.emit()
	d.arm(now)
}

func (d *dir) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.timer != nil {
		d.timer.Stop()
	}
	d.armed = false
	for i := range d.held {
		d.held[i].p.Free()
		d.c.Closed++
	}
	clear(d.held)
	d.held = d.held[:0]
}
