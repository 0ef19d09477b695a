package main

import (
	"errors"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/internal/tcpapp"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/tcp"
)

// wconn drives one wisp connection for the benchmark goroutines, the way a socket layer
// would, and no cleverer: the raw API is called in core context (s.Callback, or inside
// wisp's callbacks), the callbacks never block and only queue data and wake the goroutine
// waiting in Read, Write or dial through a sync.Cond.
//
// Lock order: the core lock, then wconn.mu (callbacks run with the core lock held and take
// mu; the goroutines never take the core lock while holding mu).
type wconn struct {
	k   *stack.Core // the connection's core (one of the stack's: Stack.CoreFor)
	pcb *tcp.PCB    // nil once the connection is gone or closed; k's lock

	mu        sync.Mutex
	cond      sync.Cond
	rq        []*pbuf.Pbuf // received chains not yet read, from rq[rhead]; owned
	rhead     int
	roff      int // bytes of rq[rhead] already read
	eof       bool
	err       error // the connection is gone (ErrFunc)
	closed    bool  // close was called
	connected bool
	sentSeq   uint64 // bumped by SentFunc and by the retry poll
}

func newWconn(k *stack.Core) *wconn {
	w := &wconn{k: k}
	w.cond.L = &w.mu
	return w
}

// install sets the callbacks; core context. Package-level functions find the wconn through
// Arg, so installing costs no allocation.
func (w *wconn) install(c *tcp.PCB) {
	w.pcb = c
	c.SetArg(w)
	c.OnRecv(wRecv)
	c.OnSent(wSent)
	c.OnErr(wErr)
}

func wRecv(c *tcp.PCB, p *pbuf.Pbuf) {
	w := c.Arg().(*wconn)
	w.mu.Lock()
	switch {
	case w.closed:
		if p != nil {
			p.Free()
		}
	case p == nil:
		w.eof = true
	default:
		if w.rq == nil {
			// Made on the first data, so idle connections stay small; room for a deep
			// queue, so growing it does not count as an allocation per packet.
			w.rq = make([]*pbuf.Pbuf, 0, 1024)
		}
		w.rq = append(w.rq, p)
	}
	w.mu.Unlock()
	w.cond.Broadcast()
}

func wSent(c *tcp.PCB, n int) {
	w := c.Arg().(*wconn)
	w.mu.Lock()
	w.sentSeq++
	w.mu.Unlock()
	w.cond.Broadcast()
}

// wPoll retries a write that failed for lack of memory with nothing in flight.
func wPoll(c *tcp.PCB) { wSent(c, 0) }

func wErr(c *tcp.PCB, err error) {
	w := c.Arg().(*wconn)
	w.pcb = nil // freed when we return
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
	w.cond.Broadcast()
}

func wConnected(c *tcp.PCB) {
	w := c.Arg().(*wconn)
	w.mu.Lock()
	w.connected = true
	w.mu.Unlock()
	w.cond.Broadcast()
}

var errClosed = errors.New("wisp conn closed")

func wispDial(s *stack.Stack, raddr netip.AddrPort) (*wconn, error) {
	w := newWconn(nil)
	err := tcpapp.Dial(s, raddr, func(k *stack.Core, c *tcp.PCB) {
		w.k = k
		w.install(c)
	}, wConnected)
	if err != nil {
		w.pcb = nil // Dial closed it
		return nil, err
	}
	w.mu.Lock()
	for !w.connected && w.err == nil {
		w.cond.Wait()
	}
	err = w.err
	w.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return w, nil
}

// Read copies received bytes out of the queued chains, frees them and reopens the window by
// what it consumed.
func (w *wconn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	w.mu.Lock()
	for w.rhead == len(w.rq) && !w.eof && w.err == nil && !w.closed {
		w.cond.Wait()
	}
	if w.rhead == len(w.rq) {
		err := w.err
		switch {
		case w.closed:
			err = errClosed
		case w.eof:
			err = io.EOF
		}
		w.mu.Unlock()
		return 0, err
	}
	n := 0
	for n < len(b) && w.rhead < len(w.rq) {
		p := w.rq[w.rhead]
		k := p.CopyOut(b[n:], w.roff)
		n += k
		w.roff += k
		if w.roff == p.TotLen() {
			p.Free() // the allocator is safe for concurrent use
			w.rq[w.rhead] = nil
			w.rhead++
			w.roff = 0
		}
	}
	if w.rhead == len(w.rq) {
		w.rq, w.rhead = w.rq[:0], 0
	}
	w.mu.Unlock()
	w.k.Callback(func() {
		if w.pcb != nil {
			w.pcb.Recved(n)
		}
	})
	return n, nil
}

// retryEvery is how often a write stalled by errs.Mem with nothing in flight is retried.
const retryEvery = 50 * time.Millisecond

// Write copies b into the stack (WriteCopy) as send buffer room allows and waits for SentFunc
// when the buffer is full.
func (w *wconn) Write(b []byte) (int, error) {
	total := 0
	for total < len(b) {
		var seq uint64
		var err error
		gone := false
		w.k.Callback(func() {
			c := w.pcb
			if c == nil {
				gone = true
				return
			}
			w.mu.Lock()
			seq = w.sentSeq
			w.mu.Unlock()
			room := c.SndBuf()
			polling := false
			for room > 0 && total < len(b) {
				k := min(room, len(b)-total)
				flags := tcp.WriteCopy
				if total+k < len(b) {
					flags |= tcp.WriteMore
				}
				if err = c.Write(b[total:total+k], flags); err == nil {
					total += k
					room = c.SndBuf()
					continue
				}
				if !errors.Is(err, errs.Mem) {
					return
				}
				err = nil
				if k > 1024 {
					room = k / 2 // the queue length or the heap, not the byte count, is short
					continue
				}
				if info := c.Info(); info.Unacked == 0 && info.Unsent == 0 {
					c.OnPoll(wPoll, retryEvery) // nothing in flight: no SentFunc will come
					polling = true
				}
				break
			}
			_ = c.Output()
			if !polling {
				c.OnPoll(nil, 0)
			}
		})
		switch {
		case gone:
			return total, w.goneErr()
		case err != nil:
			return total, err
		case total == len(b):
			return total, nil
		}
		w.mu.Lock()
		for w.sentSeq == seq && w.err == nil && !w.closed {
			w.cond.Wait()
		}
		w.mu.Unlock()
	}
	return total, nil
}

func (w *wconn) goneErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	return errClosed
}

func (w *wconn) setNoDelay(on bool) {
	w.k.Callback(func() {
		if w.pcb != nil {
			w.pcb.SetNoDelay(on)
		}
	})
}

// close closes the connection (FIN after queued data) and frees what was never read.
func (w *wconn) close() error {
	var err error
	w.k.Callback(func() {
		if c := w.pcb; c != nil {
			w.pcb = nil
			err = c.Close()
		}
	})
	w.mu.Lock()
	w.closed = true
	rq := w.rq[w.rhead:]
	w.rq, w.rhead = nil, 0
	w.mu.Unlock()
	w.cond.Broadcast()
	for _, p := range rq {
		p.Free()
	}
	return err
}

// wlistener queues accepted connections for accept.
type wlistener struct {
	s *stack.Stack
	l *tcpapp.Listener

	mu     sync.Mutex
	cond   sync.Cond
	q      []*wconn
	closed bool
}

func wispListen(s *stack.Stack, addr netip.AddrPort) (*wlistener, error) {
	wl := &wlistener{s: s}
	wl.cond.L = &wl.mu
	// tcpapp.Listen listens on every core: each SYN reaches the core its connection hashes to.
	l, err := tcpapp.Listen(s, addr, 0, func(_ *tcp.Listener, c *tcp.PCB) { wl.accepted(c) })
	if err != nil {
		return nil, err
	}
	wl.l = l
	return wl, nil
}

// accepted runs in the context of the core that accepted c.
func (wl *wlistener) accepted(c *tcp.PCB) {
	w := newWconn(wl.s.CoreFor(c.LocalAddr(), c.RemoteAddr()))
	w.install(c)
	w.connected = true
	wl.mu.Lock()
	if wl.closed {
		wl.mu.Unlock()
		w.pcb = nil
		c.Abort()
		return
	}
	wl.q = append(wl.q, w)
	wl.mu.Unlock()
	wl.cond.Broadcast()
}

func (wl *wlistener) accept() (conn, error) {
	wl.mu.Lock()
	defer wl.mu.Unlock()
	for len(wl.q) == 0 && !wl.closed {
		wl.cond.Wait()
	}
	if len(wl.q) == 0 {
		return nil, errClosed
	}
	w := wl.q[0]
	wl.q[0] = nil
	wl.q = wl.q[1:]
	return w, nil
}

func (wl *wlistener) close() error {
	err := wl.l.Close()
	wl.mu.Lock()
	wl.closed = true
	q := wl.q
	wl.q = nil
	wl.mu.Unlock()
	wl.cond.Broadcast()
	for _, w := range q {
		w.close()
	}
	return err
}
