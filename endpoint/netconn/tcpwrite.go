package netconn

import (
	"net"
	"os"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/transport/tcp"
)

const (
	// writeChunk bounds the bytes copied into TCP per hold of the core lock, so a large
	// Write does not keep input processing waiting.
	writeChunk = 64 << 10
	// retryEvery is the poll interval that retries a write refused for lack of memory (no
	// sent callback may come when nothing is in flight).
	retryEvery = 50 * time.Millisecond
	// minPiece is the smallest piece a write halves down to when memory is short.
	minPiece = 128
)

// writeErrLocked is what a writer gets before trying (c.mu held): nil to go on.
func (c *TCPConn) writeErrLocked() error {
	switch {
	case c.closed:
		return net.ErrClosed
	case c.dl.wd.expired:
		return os.ErrDeadlineExceeded
	case c.gone:
		return c.err
	case c.wrShut:
		return errs.Clsd
	}
	return nil
}

func (c *TCPConn) writeErr() error {
	c.mu.Lock()
	err := c.writeErrLocked()
	c.mu.Unlock()
	if err != nil {
		return c.mapErr(err)
	}
	return nil
}

// Write copies b into TCP's send buffer, waiting for room as long as needed; it returns
// len(b) or the bytes queued before an error: os.ErrDeadlineExceeded, net.ErrClosed,
// errs.Clsd after CloseWrite, or the connection's error (errs.Rst, ...).
func (c *TCPConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n := 0
	for {
		if err := c.writeErr(); err != nil {
			return n, err
		}
		if n == len(b) {
			return n, nil
		}
		k, err := c.writeSome(b[n:])
		n += k
		if err != nil {
			return n, c.mapErr(err)
		}
		if n == len(b) {
			return n, nil
		}
		if k == 0 {
			<-c.wch // sent, poll, error, deadline or Close
		}
	}
}

// sndRoom returns the bytes pcb may queue now (core lock).
func (c *TCPConn) sndRoom(pcb *tcp.PCB) int { return pcb.SndBuf() }

// writeSome copies as much of b as TCP takes now, in one hold of the core lock.
func (c *TCPConn) writeSome(b []byte) (int, error) {
	c.k.Lock()
	defer c.k.Unlock()
	pcb := c.pcb
	if pcb == nil {
		return 0, nil // gone: the caller's next check reports why
	}
	n := 0
	for n < len(b) {
		k := min(len(b)-n, c.sndRoom(pcb), writeChunk)
		if k <= 0 {
			if n == 0 && pcb.SndQueueLen() == 0 {
				// No room with nothing queued: no sent callback will come (a full
				// buffer is reopened by one), but room the heap's fair share withholds
				// (share.go) may come back, so the poll retries.
				c.armPoll(pcb)
			}
			break
		}
		err := pcb.Write(b[n:n+k], tcp.WriteCopy)
		for err == errs.Mem && k > minPiece {
			// The heap (a buddy allocator: a piece needs a power-of-two block) or the
			// queue length is short: try a smaller piece.
			k /= 2
			err = pcb.Write(b[n:n+k], tcp.WriteCopy)
		}
		if err == errs.Mem {
			c.armPoll(pcb)
			break
		}
		if err != nil {
			return n, err
		}
		n += k
	}
	if n > 0 {
		c.disarmPoll(pcb)
		pcb.Output()
	}
	return n, nil
}

// armPoll makes the PCB's poll callback wake the writer while a write waits for memory
// (core lock).
func (c *TCPConn) armPoll(pcb *tcp.PCB) {
	if !c.polling {
		c.polling = true
		pcb.OnPoll(tcpPoll, retryEvery)
	}
}

func (c *TCPConn) disarmPoll(pcb *tcp.PCB) {
	if c.polling {
		c.polling = false
		pcb.OnPoll(nil, 0)
	}
}

// WriteRef sends b without copying: TCP references b's memory until the peer has
// acknowledged it, and WriteRef returns only when the stack no longer references any of it,
// so the caller may reuse b at once. Errors as Write. A deadline passing or Close while
// part of b is still referenced resets the connection (the stack must let go of b before
// WriteRef returns).
func (c *TCPConn) WriteRef(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n := 0
	var err error
	for n < len(b) {
		if err = c.writeErr(); err != nil {
			break
		}
		var k int
		if k, err = c.writeRefSome(b[n:]); err != nil {
			err = c.mapErr(err)
			break
		}
		n += k
		if k == 0 {
			<-c.wch
		}
	}
	// Wait until every reference is released (acknowledged, or freed with the PCB).
	for c.ref.n.Load() > 0 {
		if e := c.writeErr(); e != nil {
			if err == nil {
				err = e
			}
			c.k.Lock()
			if pcb := c.pcb; pcb != nil {
				c.dropPCB()
				pcb.OnErr(nil)
				pcb.Abort()
				c.mu.Lock()
				c.gone = true
				if c.err == nil {
					c.err = errs.Abrt
				}
				c.mu.Unlock()
			}
			c.k.Unlock()
			for c.ref.n.Load() > 0 {
				<-c.wch // the link may still hold a segment for a moment
			}
			break
		}
		<-c.wch
	}
	return n, err
}

// writeRefSome queues a REF pbuf over as much of b as TCP takes now.
func (c *TCPConn) writeRefSome(b []byte) (int, error) {
	c.k.Lock()
	defer c.k.Unlock()
	pcb := c.pcb
	if pcb == nil {
		return 0, nil
	}
	k := min(len(b), c.sndRoom(pcb))
	if k <= 0 || pcb.SndQueueLen() >= c.k.Stack().Options().TCPSndQueueLen {
		return 0, nil
	}
	c.ref.n.Add(1)
	p, err := c.k.Stack().Allocator().AllocRef(b[:k], pbuf.REF, &c.ref)
	if err != nil {
		c.ref.n.Add(-1)
		c.armPoll(pcb)
		return 0, nil
	}
	// WritePbuf takes p whatever it returns; on failure its release comes back through
	// c.ref.
	if err := pcb.WritePbuf(p, 0); err != nil {
		if err == errs.Mem {
			c.armPoll(pcb)
			return 0, nil
		}
		return 0, err
	}
	c.disarmPoll(pcb)
	pcb.Output()
	return k, nil
}

// CloseWrite sends FIN after the queued data (shutdown(SHUT_WR)); later writes fail with
// errs.Clsd, reads go on.
func (c *TCPConn) CloseWrite() error {
	if err := lockOpen(&c.mu, &c.closed); err != nil {
		return err
	}
	already := c.wrShut
	c.wrShut = true
	c.mu.Unlock()
	wake(c.wch)
	if already {
		return nil
	}
	c.k.Lock()
	defer c.k.Unlock()
	if c.pcb == nil {
		return c.goneErrLocked()
	}
	return c.pcb.Shutdown(false, true)
}

// goneErrLocked is the error of an operation that needs the PCB when it is gone (core
// lock held; takes c.mu).
func (c *TCPConn) goneErrLocked() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return net.ErrClosed
	case c.err != nil && c.err != errs.Abrt:
		return c.err
	case c.reg.closed.Load():
		return net.ErrClosed
	case c.err != nil:
		return c.err
	}
	return errs.Conn
}
