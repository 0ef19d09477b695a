package netconn

import (
	"net"
	"os"
	"sync"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/ring"
	"github.com/wispstack/wisp/stack"
)

// dgramConn is the part UDPConn, PingConn and RawConn share: the datagram mailbox with its mutex,
// wakeup channel and deadlines, the closed and gone states, the registry link, the
// blocking receive, the checks and copy of a send, and the first half of Close. Each
// protocol keeps its PCB (core lock), its addresses and what it alone offers.
type dgramConn struct {
	s    *stack.Stack
	reg  *registry
	node node // core lock

	rmu sync.Mutex // serializes readers

	mu      sync.Mutex
	box     dgramBox
	closed  bool
	gone    bool  // the stack closed
	pendErr error // asynchronous ICMP error for the next call (UDP's Err; ping sets none)
	dl      deadlines
	rch     chan struct{}
}

// init readies c for a connection of s that holds one of r's netconns. The mailbox holds
// UDPRecvMboxSize datagrams (lwIP's raw netconns share the UDP mailbox size).
func (c *dgramConn) init(s *stack.Stack, r *registry) {
	c.s, c.reg = s, r
	c.rch = make(chan struct{}, 1)
	c.box.q = ring.NewLazy[dgram](max(s.Options().UDPRecvMboxSize, 1))
	c.dl.rd.init(&c.mu, c.rch)
	c.dl.wd.init(&c.mu, make(chan struct{}, 1))
}

// deliver queues a received datagram, or frees it when c is closed or its mailbox full.
// It takes ownership of p. Core context (a PCB's receive callback).
func (c *dgramConn) deliver(p *pbuf.Pbuf, m *Meta) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		p.Free()
		return
	}
	ok := c.box.push(p, m)
	c.mu.Unlock()
	if ok {
		wake(c.rch)
	}
}

// stackGone is the common part of stackClosed (core context): the caller has forgotten its
// PCB; the queued datagrams are freed and the reader woken.
func (c *dgramConn) stackGone() {
	c.mu.Lock()
	c.gone = true
	c.box.clear()
	c.mu.Unlock()
	wake(c.rch)
}

// takeErrLocked returns and clears the pending asynchronous error (c.mu held).
func (c *dgramConn) takeErrLocked() error {
	err := c.pendErr
	c.pendErr = nil
	return err
}

// waitDgram waits for a datagram (c.mu held on entry and on a nil return).
func (c *dgramConn) waitDgram() error {
	for {
		switch {
		case c.closed || c.gone:
			return net.ErrClosed
		case c.dl.rd.expired:
			return os.ErrDeadlineExceeded
		case c.pendErr != nil:
			return c.takeErrLocked()
		case c.box.q.Len() > 0:
			return nil
		}
		c.mu.Unlock()
		<-c.rch
		c.mu.Lock()
	}
}

// recv waits for the next datagram and dequeues it; the caller owns the chain. Errors:
// net.ErrClosed, os.ErrDeadlineExceeded, or the pending asynchronous error.
func (c *dgramConn) recv() (*pbuf.Pbuf, Meta, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.mu.Lock()
	if err := c.waitDgram(); err != nil {
		c.mu.Unlock()
		return nil, Meta{}, err
	}
	p, m := c.box.pop()
	c.mu.Unlock()
	return p, m, nil
}

// readMsg is ReadMsg: it copies the next datagram into b and frees it.
func (c *dgramConn) readMsg(b []byte) (int, Meta, error) {
	p, m, err := c.recv()
	if err != nil {
		return 0, Meta{}, err
	}
	n := p.CopyOut(b, 0)
	m.Truncated = n < p.TotLen()
	p.Free()
	return n, m, nil
}

// Read reads one datagram (from a PingConn: one echo reply message) into b; see ReadMsg.
func (c *dgramConn) Read(b []byte) (int, error) {
	n, _, err := c.readMsg(b)
	return n, err
}

// payload checks that a send may go on and copies b, at most maxLen bytes, into a new pbuf
// chain, outside the core lock; the caller owns the chain. Errors: net.ErrClosed,
// os.ErrDeadlineExceeded, the pending asynchronous error, errs.MsgSize, errs.Mem.
func (c *dgramConn) payload(b []byte, maxLen int) (*pbuf.Pbuf, error) {
	c.mu.Lock()
	var err error
	switch {
	case c.closed || c.gone:
		err = net.ErrClosed
	case c.dl.wd.expired:
		err = os.ErrDeadlineExceeded
	case c.pendErr != nil:
		err = c.takeErrLocked()
	}
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if len(b) > maxLen {
		return nil, errs.MsgSize
	}
	p, err := c.s.Allocator().Alloc(pbuf.LayerTransport, len(b), pbuf.RAM)
	if err != nil {
		return nil, errs.Mem
	}
	if err := p.CopyIn(b, 0); err != nil {
		p.Free()
		return nil, err
	}
	return p, nil
}

// close is Close: the first call marks c closed, frees the queued datagrams, stops the
// deadline timers and wakes the reader, then runs closePCB in core context (it releases
// the protocol's PCB, if the stack has not freed it already) and gives the netconn back.
// A second call returns net.ErrClosed.
func (c *dgramConn) close(closePCB func()) error {
	if err := lockOpen(&c.mu, &c.closed); err != nil {
		return err
	}
	c.closed = true
	c.box.clear()
	c.dl.stop()
	c.mu.Unlock()
	wake(c.rch)
	c.s.Lock()
	closePCB()
	c.reg.remove(&c.node)
	c.s.Unlock()
	c.reg.release()
	return nil
}

// buffered is Buffered: the size of the next queued datagram, 0 if none.
func (c *dgramConn) buffered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.box.next()
}

// knownNetif reports whether ifIndex is 0 (let the route decide) or names a netif of the
// stack: the check of SetMulticastInterface (core context).
func (c *dgramConn) knownNetif(ifIndex int) bool {
	return ifIndex == 0 || ifIndex > 0 && c.s.IP().NetifByIndex(ifIndex) != nil
}

// Drops counts datagrams (a PingConn's: echo replies) dropped because the mailbox was full.
func (c *dgramConn) Drops() uint64 { return locked(&c.mu, &c.box.drops) }

// SetDeadline sets both deadlines (net.Conn's); the zero time clears them. Sends never
// block, so the write deadline only makes them fail once passed.
func (c *dgramConn) SetDeadline(t time.Time) error { c.dl.setBoth(&c.mu, t); return nil }

// SetReadDeadline sets the deadline of every read (ReadMsg, Read, and UDP's RecvDatagram
// or ping's ReadFrom).
func (c *dgramConn) SetReadDeadline(t time.Time) error { c.dl.setRead(&c.mu, t); return nil }

// SetWriteDeadline sets the deadline of the sends (which never block).
func (c *dgramConn) SetWriteDeadline(t time.Time) error { c.dl.setWrite(&c.mu, t); return nil }

// lockOpen locks mu and returns nil while the connection is open; once *closed (a field mu
// guards) it unlocks mu and returns net.ErrClosed: the start of Close, CloseRead and
// CloseWrite.
func lockOpen(mu *sync.Mutex, closed *bool) error {
	mu.Lock()
	if *closed {
		mu.Unlock()
		return net.ErrClosed
	}
	return nil
}

// locked returns *v read under mu: the connections' getters of fields their mutex guards.
func locked[T any](mu *sync.Mutex, v *T) T {
	mu.Lock()
	defer mu.Unlock()
	return *v
}

// binder is a datagram PCB (udp.PCB with netip.AddrPort, raw.PCB with netip.Addr).
type binder[A any] interface {
	Bind(A) error
	Connect(A) error
}

// bindConnect binds pcb to laddr when bind is set, then connects it to raddr when raddr is
// valid: the setup ListenUDP, DialUDP, ListenPing, DialPing, ListenRaw
// and DialRaw share (core context).
func bindConnect[A interface{ IsValid() bool }](pcb binder[A], laddr, raddr A, bind bool) error {
	if bind {
		if err := pcb.Bind(laddr); err != nil {
			return err
		}
	}
	if raddr.IsValid() {
		return pcb.Connect(raddr)
	}
	return nil
}

// QueueStats reports what the mailbox holds for stack.Conns (stack.QueueStater): the bytes
// and datagrams queued (a datagram is one received chain), no heap, and the datagrams
// dropped when it was full. Core context calls it; it takes the connection's mutex, in the
// core → connection order delivery uses.
func (c *dgramConn) QueueStats() (bytes, pbufs, heap int, drops uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.box.bytes, c.box.q.Len(), 0, c.box.drops
}
