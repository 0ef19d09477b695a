package tcpapp

import (
	"errors"
	"net/netip"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/tcp"
)

// retryEvery is the poll interval of a connection whose write failed for lack of memory,
// or found no room with nothing queued (so no SentFunc will come to retry it); the poll
// is armed only while that lasts.
const retryEvery = 100 * time.Millisecond

// Echo listens on addr and sends back every byte each connection receives (RFC 862), until
// the peer closes; then it closes too, after the echo of the last byte. It echoes zero-copy:
// the received pbufs themselves are queued for sending. When the send buffer is full it
// keeps what it received and stops reopening the receive window until SentFunc reports
// room, so a peer that does not read its echo stalls at its window, and the stack never
// holds more than one receive window and one send buffer per connection.
//
// The caller closes the listener with CloseListener. Must not be called from core context.
func Echo(s *stack.Stack, addr netip.AddrPort) (*Listener, error) {
	qlimit := s.Options().TCPSndQueueLen
	return Listen(s, addr, 0, func(l *tcp.Listener, c *tcp.PCB) {
		e := &echoConn{c: c, qlimit: qlimit}
		c.OnRecv(e.recv)
		c.OnSent(e.sent)
		c.OnErr(e.err)
	})
}

// Discard listens on addr and frees every byte each connection receives (RFC 863),
// reopening the window at once; it closes when the peer closes. The caller closes the
// listener with CloseListener. Must not be called from core context.
func Discard(s *stack.Stack, addr netip.AddrPort) (*Listener, error) {
	return Listen(s, addr, 0, func(l *tcp.Listener, c *tcp.PCB) {
		c.OnRecv(discardRecv)
	})
}

// discardRecv takes ownership of p and frees it.
func discardRecv(c *tcp.PCB, p *pbuf.Pbuf) {
	if p == nil {
		c.Close()
		return
	}
	n := p.TotLen()
	p.Free()
	c.Recved(n)
}

// echoConn is one echo connection; core context only.
type echoConn struct {
	c       *tcp.PCB
	q       []*pbuf.Pbuf // received chains not yet queued for sending, oldest first, from q[head] (owned)
	head    int
	fin     bool // the peer closed its side
	closed  bool // c was closed or is gone
	polling bool
	qlimit  int // Options.TCPSndQueueLen
}

// recv takes ownership of p.
func (e *echoConn) recv(c *tcp.PCB, p *pbuf.Pbuf) {
	if p == nil {
		e.fin = true
	} else {
		if e.head > 0 && len(e.q) == cap(e.q) {
			// Reuse the consumed front instead of growing.
			n := copy(e.q, e.q[e.head:])
			clear(e.q[n:])
			e.q, e.head = e.q[:n], 0
		}
		e.q = append(e.q, p)
	}
	e.flush()
}

func (e *echoConn) sent(c *tcp.PCB, n int) { e.flush() }

func (e *echoConn) poll(c *tcp.PCB) {
	e.flush()
	if !e.closed {
		c.Output()
	}
}

func (e *echoConn) err(c *tcp.PCB, err error) {
	e.closed = true
	e.c = nil
	e.drop()
}

func (e *echoConn) drop() {
	for i := e.head; i < len(e.q); i++ {
		e.q[i].Free()
		e.q[i] = nil
	}
	e.q, e.head = e.q[:0], 0
}

// flush queues as much of e.q for sending as the send buffer takes, reopening the receive
// window by what it queued, and closes once the peer has closed and everything is queued.
func (e *echoConn) flush() {
	if e.closed {
		return
	}
	c := e.c
	stalled := false
	for e.head < len(e.q) {
		p := e.q[e.head]
		room, qroom := c.SndBuf(), e.qlimit-c.SndQueueLen()
		if room <= 0 || qroom <= 0 {
			// SentFunc will come when queued data is acknowledged; with nothing
			// queued (the heap's fair share is spent by other connections), only the
			// poll retries.
			stalled = c.SndQueueLen() == 0
			break
		}
		var tail *pbuf.Pbuf
		if at := prefix(p, room, qroom); at < p.TotLen() {
			if at == 0 {
				break
			}
			var err error
			if tail, err = p.Split(at); err != nil {
				stalled = true // no REF pbuf header: retry later
				break
			}
		}
		n := p.TotLen()
		// No WriteMore: the loop may stop after any write (no room, no memory), and a
		// tail held back for "more" that never comes would wait for the next SentFunc.
		// WritePbuf takes the caller's reference whatever the result; an extra one keeps
		// the chain ours if TCP refuses it for lack of memory (TCP frees its reference, the
		// first pbuf keeps ours, and Free stops there). On success TCP owns the chain and
		// the extra reference is dropped at once.
		p.Ref()
		if err := c.WritePbuf(p, 0); err != nil {
			if tail != nil {
				pbuf.Cat(p, tail)
			}
			if !errors.Is(err, errs.Mem) {
				c.Abort() // cannot send any more: err drops the queue
				return
			}
			stalled = true
			break
		}
		p.Free()
		if tail != nil {
			e.q[e.head] = tail
		} else {
			e.q[e.head] = nil
			if e.head++; e.head == len(e.q) {
				e.q, e.head = e.q[:0], 0
			}
		}
		c.Recved(n)
		if e.closed {
			return // the connection went away inside Recved's output
		}
	}
	retryPoll(c, &e.polling, stalled, e.poll)
	if e.fin && e.head == len(e.q) {
		e.closed = true
		e.c = nil
		c.Close()
	}
}

// retryPoll arms c's poll (every retryEvery) while the writer is stalled, the only retry
// when nothing is queued to bring a SentFunc, and disarms it once it is not; *armed says
// whether it is armed. Core context.
func retryPoll(c *tcp.PCB, armed *bool, stalled bool, poll tcp.PollFunc) {
	if stalled == *armed {
		return
	}
	*armed = stalled
	if stalled {
		c.OnPoll(poll, retryEvery)
	} else {
		c.OnPoll(nil, 0)
	}
}

// prefix returns how many leading bytes of chain p fit in room bytes and qroom pbufs,
// cutting at a pbuf boundary when one fits and inside the first pbuf otherwise.
func prefix(p *pbuf.Pbuf, room, qroom int) int {
	at, k := 0, 0
	for q := p; q != nil; q = q.Next() {
		if at+q.Len() > room || k+1 > qroom {
			break
		}
		at += q.Len()
		k++
	}
	if at == 0 {
		at = min(room, p.Len())
	}
	return at
}
