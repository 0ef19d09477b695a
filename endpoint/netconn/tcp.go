package netconn

import (
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/ring"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/tcp"
)

// TCPConn is a TCP connection (lwIP's netconn of type NETCONN_TCP). Every method is safe
// for concurrent use; concurrent Reads (and concurrent Writes) are served one at a time.
//
// Receive side: the PCB's RecvFunc queues the chains it is given in a ring (rq) that grows
// on demand up to TCPRecvMboxSize slots (beyond that, chains are concatenated onto the
// last one); the receive window bounds the bytes. Read copies out and frees; the bytes it
// consumed are returned to TCP (Recved) once they reach a quarter window, not per Read.
type TCPConn struct {
	s    *stack.Stack
	k    *stack.Core // the core the connection lives on (Stack.CoreFor)
	reg  *registry
	node node // registry list (registry lock)

	// Core lock (k's).
	pcb      *tcp.PCB    // nil once the PCB is gone (error, abort, stack closed) or given to the stack by Close
	polling  bool        // a poll is armed to retry a write that failed for lack of memory
	lastOpts TCPSockopts // the PCB's options when it went away (dropPCB)

	ref refOwner // WriteRef's pbuf owner; its count is atomic

	rmu, wmu sync.Mutex // serialize readers, writers

	mu        sync.Mutex            // guards the fields below; taken after the core lock, never before it
	rq        ring.Ring[*pbuf.Pbuf] // received chains, at most TCPRecvMboxSize
	roff      int                   // bytes of the oldest chain already read
	rbytes    int                   // bytes queued
	pending   int                   // bytes consumed (read, or released Bufs) not yet given back to TCP
	thresh    int                   // pending at which Recved is called
	mss       int                   // the connection's MSS, for thresh
	rcvBuf    int                   // SetReadBuffer; 0 default
	fin       bool                  // the peer's FIN arrived
	rdShut    bool                  // CloseRead
	wrShut    bool                  // CloseWrite
	closed    bool                  // Close or Abort
	connected bool
	gone      bool  // the PCB is gone (err holds why)
	err       error // why the connection is gone: returned by every later call
	soErr     error // pending asynchronous error (Err, SO_ERROR); cleared when read
	linger    int   // SetLinger; <0 default
	laddr     netip.AddrPort
	raddr     netip.AddrPort
	dl        deadlines
	rch, wch  chan struct{}

	onClose func() // AdoptTCP's hook: runs once, at the end of Close
}

// refOwner is the pbuf.Releaser of WriteRef's REF pbufs.
type refOwner struct {
	c *TCPConn
	n atomic.Int32 // REF pbufs the stack still holds
}

// Release implements pbuf.Releaser; it runs in whichever goroutine freed the pbuf.
func (r *refOwner) Release() {
	if r.n.Add(-1) == 0 {
		wake(r.c.wch)
	}
}

// newTCPConn makes the connection object for pcb (core context); the caller has reserved a
// netconn and links it into the registry.
func newTCPConn(k *stack.Core, r *registry, pcb *tcp.PCB) *TCPConn {
	s := k.Stack()
	o := s.Options()
	c := &TCPConn{k: k, reg: r, pcb: pcb, linger: -1, rq: ring.NewLazy[*pbuf.Pbuf](max(o.TCPRecvMboxSize, 1)),
		rch: make(chan struct{}, 1), wch: make(chan struct{}, 1)}
	c.ref.c = c
	c.dl.rd.init(&c.mu, c.rch)
	c.dl.wd.init(&c.mu, c.wch)
	c.mss = o.TCPMSS
	c.thresh = recvThresh(o.TCPWnd, c.mss)
	pcb.SetArg(c)
	pcb.OnRecv(tcpRecv)
	pcb.OnSent(tcpSent)
	pcb.OnErr(tcpErr)
	r.add(&c.node, c)
	return c
}

// recvThresh is how many consumed bytes are returned to TCP at once: a quarter window (at
// most 64 KiB), so the peer is never stalled by the batching (it stalls only when the
// window is nearly closed, and then three quarters of it wait here), or every byte when the
// window is smaller than two segments. A reader about to sleep returns everything anyway.
func recvThresh(wnd, mss int) int {
	if wnd < 2*mss {
		return 1
	}
	// TCP counts a reader as moving (share.go) from the first bytes it gets back, and until
	// then keeps the receive reserve from it: a fresh transfer must not wait 256 KiB.
	return min(max(wnd/4, 1), 64<<10)
}

// setMSSLocked records the connection's MSS once known and recomputes thresh (c.mu held).
func (c *TCPConn) setMSSLocked(mss int) {
	if mss > 0 {
		c.mss = mss
		c.thresh = recvThresh(c.wnd(), mss)
	}
}

// wnd is the receive buffer the threshold is a quarter of (c.mu held).
func (c *TCPConn) wnd() int {
	if c.rcvBuf > 0 {
		return c.rcvBuf
	}
	return c.k.Stack().Options().TCPWnd
}

// Core-context callbacks. None blocks: each updates the mailbox under c.mu and wakes.

// tcpRecv takes ownership of p.
func tcpRecv(pcb *tcp.PCB, p *pbuf.Pbuf) {
	c := pcb.Arg().(*TCPConn)
	c.mu.Lock()
	if p == nil {
		c.fin = true
		c.mu.Unlock()
		wake(c.rch)
		return
	}
	if c.rdShut || c.closed {
		// Nobody will read it (CloseRead): consume it at once, as lwIP's tcp_recv_null.
		n := p.TotLen()
		c.mu.Unlock()
		p.Free()
		pcb.Recved(n)
		return
	}
	c.rbytes += p.TotLen()
	c.push(p)
	c.mu.Unlock()
	wake(c.rch)
}

func tcpSent(pcb *tcp.PCB, n int) { wake(pcb.Arg().(*TCPConn).wch) }

func tcpPoll(pcb *tcp.PCB) { wake(pcb.Arg().(*TCPConn).wch) }

func tcpConnected(pcb *tcp.PCB) {
	c := pcb.Arg().(*TCPConn)
	c.mu.Lock()
	c.connected = true
	c.laddr, c.raddr = pcb.LocalAddr(), pcb.RemoteAddr()
	c.setMSSLocked(pcb.Info().MSS)
	c.mu.Unlock()
	wake(c.wch)
}

// tcpErr: the PCB is gone (freed when this returns).
func tcpErr(pcb *tcp.PCB, err error) {
	c := pcb.Arg().(*TCPConn)
	c.dropPCB()
	c.polling = false
	c.mu.Lock()
	c.gone = true
	if c.err == nil {
		c.err = err
	}
	if err != errs.Clsd {
		c.soErr = err
	}
	c.mu.Unlock()
	wake(c.rch)
	wake(c.wch)
}

// stackClosed implements member (core context): the stack frees the PCB itself.
func (c *TCPConn) stackClosed() {
	c.dropPCB()
	c.mu.Lock()
	c.gone = true
	c.err = net.ErrClosed
	c.freeQueueLocked()
	c.mu.Unlock()
	wake(c.rch)
	wake(c.wch)
}

// push appends chain p to the ring (c.mu held); a full ring concatenates it onto the
// newest chain. Ownership of p passes to the ring.
func (c *TCPConn) push(p *pbuf.Pbuf) {
	if !c.rq.Push(p) {
		pbuf.Cat(*c.rq.Back(), p)
	}
}

// pop removes the head chain (c.mu held, the ring not empty); the caller owns it.
func (c *TCPConn) pop() *pbuf.Pbuf {
	p, _ := c.rq.Pop()
	c.roff = 0
	return p
}

// freeQueueLocked frees everything queued and returns how many bytes it held (c.mu held).
func (c *TCPConn) freeQueueLocked() int {
	n := c.rbytes
	for c.rq.Len() > 0 {
		c.pop().Free()
	}
	c.rbytes = 0
	return n
}

// readLocked copies queued bytes into b (c.mu held), freeing what it consumed.
func (c *TCPConn) readLocked(b []byte) int {
	n := 0
	for n < len(b) && c.rq.Len() > 0 {
		p := *c.rq.Front()
		k := p.CopyOut(b[n:], c.roff)
		n += k
		c.roff += k
		if c.roff >= p.TotLen() {
			c.pop().Free()
			continue
		}
		// Free the pbufs read in full, so the next copy does not walk them again.
		for p.Len() <= c.roff {
			rest := p.Dechain()
			c.roff -= p.Len()
			p.Free()
			p = rest
		}
		*c.rq.Front() = p
	}
	c.rbytes -= n
	c.pending += n
	return n
}

// readErr is what a reader gets when nothing is queued (c.mu held): nil to wait.
func (c *TCPConn) readErrLocked() error {
	switch {
	case c.closed:
		return net.ErrClosed
	case c.fin || c.rdShut:
		return io.EOF
	case c.gone:
		return c.err
	}
	return nil
}

// Read reads queued data, waiting for some. It returns io.EOF once the peer has closed its
// side and everything before the FIN has been read; os.ErrDeadlineExceeded when the read
// deadline passes; net.ErrClosed after Close; the connection's error (errs.Rst,
// errs.Timeout, errs.Abrt, ...) when it is gone.
func (c *TCPConn) Read(b []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.mu.Lock()
	if err := c.waitRead(len(b) == 0); err != nil {
		return 0, err
	}
	if c.rbytes == 0 { // a zero-length Read
		c.mu.Unlock()
		return 0, nil
	}
	n := c.readLocked(b)
	flush := c.pending >= c.thresh
	c.mu.Unlock()
	if flush {
		c.flushRecved()
	}
	return n, nil
}

// Recv returns the oldest queued chain without copying, waiting for one; errors as Read.
// The caller must Release the Buf; the receive window reopens by its length only then.
func (c *TCPConn) Recv() (*Buf, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.mu.Lock()
	if err := c.waitRead(false); err != nil {
		return nil, err
	}
	off := c.roff
	p := c.pop()
	b := newBuf(p, off, c)
	c.rbytes -= b.n
	c.mu.Unlock()
	return b, nil
}

// waitRead waits until data is queued, or with noWait returns at once when the connection
// is still readable; c.mu is held on entry and on a nil return. The errors are Read's (c.mu
// released).
func (c *TCPConn) waitRead(noWait bool) error {
	for {
		var err error
		switch {
		case c.closed:
			err = net.ErrClosed
		case c.dl.rd.expired:
			err = os.ErrDeadlineExceeded
		case c.rbytes > 0 || noWait:
			return nil
		default:
			err = c.readErrLocked()
		}
		if err != nil {
			c.mu.Unlock()
			return c.mapErr(err)
		}
		c.waitData()
	}
}

// consumed records n bytes released by a Buf.
func (c *TCPConn) consumed(n int) {
	c.mu.Lock()
	c.pending += n
	flush := c.pending >= c.thresh && !c.gone
	c.mu.Unlock()
	if flush {
		c.flushRecved()
	}
}

// flushRecved gives consumed bytes back to TCP, reopening the window. Not in core context.
func (c *TCPConn) flushRecved() {
	c.mu.Lock()
	n := c.pending
	c.pending = 0
	c.mu.Unlock()
	if n == 0 {
		return
	}
	c.k.Lock()
	if c.pcb != nil {
		c.pcb.Recved(n)
	}
	c.k.Unlock()
}

// waitData waits for the reader's next wake-up (c.mu held on entry and on return). Bytes
// consumed but not yet given back to TCP are given back first, whatever the batching
// threshold: under memory pressure TCP may have granted this connection a window smaller
// than the threshold (its fair share), and a reader that sleeps on a closed window it
// consumed would wait forever.
func (c *TCPConn) waitData() {
	flush := c.pending > 0 && !c.gone
	c.mu.Unlock()
	if flush {
		c.flushRecved()
	}
	<-c.rch
	c.mu.Lock()
}

// mapErr turns errs.Abrt into net.ErrClosed when the abort came from the stack's Close.
func (c *TCPConn) mapErr(err error) error {
	if err == errs.Abrt && c.reg.isClosed() {
		return net.ErrClosed
	}
	return err
}

// Buffered returns how many bytes Read can return now without waiting (FIONREAD).
func (c *TCPConn) Buffered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rbytes
}

// LocalAddr returns the local address and port (they stay known after the connection is
// gone).
func (c *TCPConn) LocalAddr() netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.laddr
}

// RemoteAddr returns the peer's address and port.
func (c *TCPConn) RemoteAddr() netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.raddr
}

// SetDeadline sets both deadlines (net.Conn); the zero time clears them. Waiting calls
// re-evaluate at once.
func (c *TCPConn) SetDeadline(t time.Time) error { c.dl.setBoth(&c.mu, t); return nil }

// SetReadDeadline sets the deadline of Read and Recv.
func (c *TCPConn) SetReadDeadline(t time.Time) error { c.dl.setRead(&c.mu, t); return nil }

// SetWriteDeadline sets the deadline of Write and WriteRef.
func (c *TCPConn) SetWriteDeadline(t time.Time) error { c.dl.setWrite(&c.mu, t); return nil }

// Err returns the pending asynchronous error (SO_ERROR) and clears it: errs.Rst,
// errs.Timeout, errs.Abrt, errs.Refused, errs.Rte; nil when there is none.
func (c *TCPConn) Err() error {
	c.mu.Lock()
	err := c.soErr
	c.soErr = nil
	c.mu.Unlock()
	if err != nil {
		return c.mapErr(err)
	}
	return nil
}
