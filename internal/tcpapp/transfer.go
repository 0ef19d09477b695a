package tcpapp

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"math/bits"
	"net/netip"
	"sync/atomic"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/tcp"
)

// Writes are cut into chunks of at most maxChunk bytes; while more remains, a write waits
// until the send buffer has room for a reasonable chunk rather than queueing slivers.
const maxChunk = 64 << 10

// Transfer is one connection of Send, Recv or a Server: it sends n bytes of the pattern of
// its seed, then its FIN, while it consumes and checksums every byte that arrives until the
// peer's FIN; then it closes. With n == 0 it sends nothing and sends its FIN only after the
// peer's, so a peer that stops on end of file still sends everything.
//
// Its methods are safe for concurrent use and must not be called from core context.
type Transfer struct {
	s       *stack.Stack
	k       *stack.Core // the connection's core; nil if it never had a PCB
	alloc   *pbuf.Allocator
	seed    uint64
	total   int64 // bytes to send
	minRoom int   // smallest write while more than that remains

	// Core context only.
	pcb     *tcp.PCB // nil once closed, aborted or gone
	written int64
	h       hash.Hash
	nrecv   int64
	finSent bool
	peerFin bool
	polling bool
	failErr error // the reason of an Abort this Transfer made
	local   netip.AddrPort
	remote  netip.AddrPort

	queued   atomic.Int64 // bytes handed to TCP so far
	received atomic.Int64 // bytes received so far

	done chan struct{}
	// Set before done closes.
	sum [32]byte
	err error
}

func newTransfer(s *stack.Stack, n int64, seed uint64) *Transfer {
	return &Transfer{
		s:       s,
		alloc:   s.Allocator(),
		seed:    seed,
		total:   n,
		minRoom: min(16<<10, max(s.Options().TCPSndBuf/2, 1)),
		h:       sha256.New(),
		done:    make(chan struct{}),
	}
}

// Send connects to raddr, sends n bytes of the pattern of seed and its FIN, and consumes
// and checksums what the peer sends until the peer's FIN. Errors (no route, refused, reset,
// timeout) are reported by Wait. Must not be called from core context.
func Send(s *stack.Stack, raddr netip.AddrPort, n int64, seed uint64) *Transfer {
	t := newTransfer(s, n, seed)
	t.remote = raddr
	var pcb *tcp.PCB
	err := Dial(s, raddr, func(k *stack.Core, c *tcp.PCB) { t.attach(k, c); pcb = c }, t.connected)
	if err != nil {
		t.pcb, t.k = nil, nil // Dial closed it
		t.finish(err)
		return t
	}
	t.k.Callback(func() { t.local = pcb.LocalAddr() })
	return t
}

// Recv connects to raddr and consumes and checksums what the peer sends until its FIN;
// it sends nothing, and its FIN only after the peer's. Errors are reported by Wait. Must not
// be called from core context.
func Recv(s *stack.Stack, raddr netip.AddrPort) *Transfer { return Send(s, raddr, 0, 0) }

// Wait waits until the connection has ended and returns the bytes received, their SHA-256
// and the error that ended the connection, if any (errs.Rst, errs.Refused, errs.Timeout,
// errs.Abrt, ...). If ctx ends first it returns the bytes received so far and ctx's error;
// the transfer goes on (see Abort).
func (t *Transfer) Wait(ctx context.Context) (n int64, sum [32]byte, err error) {
	select {
	case <-t.done:
		return t.received.Load(), t.sum, t.err
	case <-ctx.Done():
		return t.received.Load(), [32]byte{}, ctx.Err()
	}
}

// Done is closed when the connection has ended.
func (t *Transfer) Done() <-chan struct{} { return t.done }

// Progress returns the bytes handed to TCP and the bytes received so far.
func (t *Transfer) Progress() (queued, received int64) {
	return t.queued.Load(), t.received.Load()
}

// Abort resets the connection if it is still open; Wait then reports errs.Abrt.
func (t *Transfer) Abort() {
	if t.k == nil {
		return
	}
	t.k.Callback(func() {
		if t.pcb != nil {
			t.failErr = errs.Abrt
			t.pcb.Abort()
		}
	})
}

// Info returns a snapshot of the connection (for logs when a transfer stalls); false once
// the connection has ended or been handed back to the stack.
func (t *Transfer) Info() (info tcp.Info, ok bool) {
	if t.k == nil {
		return info, false
	}
	t.k.Callback(func() {
		if t.pcb != nil {
			info, ok = t.pcb.Info(), true
		}
	})
	return info, ok
}

// State describes where the transfer stands, for the message of a test that it fails:
// the bytes queued and received, and the connection's Info while it is open.
func (t *Transfer) State() string {
	q, r := t.Progress()
	info, ok := t.Info()
	return fmt.Sprintf("queued %d, received %d; open %v %+v", q, r, ok, info)
}

// String names the transfer's endpoints, for logs.
func (t *Transfer) String() string {
	return fmt.Sprintf("%v→%v", t.local, t.remote)
}

// attach installs t's callbacks on c, a PCB of core k (k's context).
func (t *Transfer) attach(k *stack.Core, c *tcp.PCB) {
	t.k = k
	t.pcb = c
	c.OnRecv(t.recv)
	c.OnSent(t.sent)
	c.OnErr(t.gone)
}

func (t *Transfer) connected(c *tcp.PCB) {
	t.fill()
}

// recv takes ownership of p.
func (t *Transfer) recv(c *tcp.PCB, p *pbuf.Pbuf) {
	if p == nil {
		t.peerFin = true
		t.maybeDone()
		return
	}
	n := p.TotLen()
	for q := p; q != nil; q = q.Next() {
		t.h.Write(q.Payload())
	}
	p.Free()
	t.nrecv += int64(n)
	t.received.Store(t.nrecv)
	c.Recved(n)
}

func (t *Transfer) sent(c *tcp.PCB, n int) {
	t.fill()
}

func (t *Transfer) poll(c *tcp.PCB) {
	t.fill()
	if t.pcb != nil {
		c.Output()
	}
}

// gone is the ErrFunc: c is already freed.
func (t *Transfer) gone(c *tcp.PCB, err error) {
	t.pcb = nil
	if t.failErr != nil {
		err = t.failErr
	}
	t.finish(err)
}

// fill queues pattern bytes while the send buffer has room, then the FIN.
func (t *Transfer) fill() {
	c := t.pcb
	if c == nil {
		return
	}
	stalled := false
	for t.written < t.total {
		rem := t.total - t.written
		room := c.SndBuf()
		k := int(min(rem, maxChunk, int64(room)))
		if int64(k) < rem && k > 0 {
			// Not the last piece: a power of two fills the buddy heap's blocks exactly.
			k = 1 << (bits.Len(uint(k)) - 1)
		}
		if k <= 0 || (int64(k) < rem && k < t.minRoom) {
			// SentFunc will come when queued data is acknowledged; with nothing queued
			// (the heap's fair share is spent by other connections) only the poll
			// retries.
			stalled = c.SndQueueLen() == 0
			break
		}
		// Pattern bytes are generated straight into stack memory, which TCP then takes.
		p, err := t.alloc.Alloc(pbuf.LayerRaw, k, pbuf.RAM)
		if err != nil {
			stalled = true
			break
		}
		off := t.written
		for q := p; q != nil; q = q.Next() {
			FillPattern(q.Payload(), t.seed, off)
			off += int64(q.Len())
		}
		// No WriteMore: the loop may stop after any write, waiting for SentFunc, and a tail
		// held back for "more" would wait with it.
		if err := c.WritePbuf(p, 0); err != nil {
			if errors.Is(err, errs.Mem) {
				stalled = true // the pattern is regenerated on the retry
				break
			}
			t.abort(err)
			return
		}
		t.written += int64(k)
		t.queued.Store(t.written)
	}
	retryPoll(c, &t.polling, stalled, t.poll)
	if t.written == t.total && t.total > 0 && !t.finSent {
		t.finSent = true
		if err := c.Shutdown(false, true); err != nil {
			t.abort(err)
			return
		}
		if t.pcb == nil {
			return // gone while sending the FIN
		}
	}
	t.maybeDone()
}

// maybeDone closes the connection once everything is queued and the peer has closed.
func (t *Transfer) maybeDone() {
	c := t.pcb
	if c == nil || !t.peerFin || t.written < t.total {
		return
	}
	t.pcb = nil
	t.finish(c.Close())
}

// abort resets the connection because of err.
func (t *Transfer) abort(err error) {
	t.failErr = err
	t.pcb.Abort() // calls gone
}

// finish records the outcome once (core context).
func (t *Transfer) finish(err error) {
	select {
	case <-t.done:
		return
	default:
	}
	t.h.Sum(t.sum[:0])
	t.err = err
	close(t.done)
}
