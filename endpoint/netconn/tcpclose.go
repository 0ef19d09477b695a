package netconn

import (
	"time"

	"github.com/wispstack/wisp/transport/tcp"
)

// lingerPoll is how often a lingering Close checks whether its FIN was acknowledged (an
// ACK of the FIN alone makes no sent callback).
const lingerPoll = 10 * time.Millisecond

// Close closes the connection and releases its netconn. Blocked and later calls on c
// return net.ErrClosed. By default the close is graceful and happens in the background:
// queued data is sent, then FIN, and the PCB lives on in the stack until the exchange ends
// (or the stack closes). Data received and not read makes it a reset instead (RFC 1122
// §4.2.2.13, as every kernel does). SetLinger(0) makes Close reset the connection;
// SetLinger(n > 0) makes it wait up to n seconds for the FIN to be acknowledged. A second
// Close returns net.ErrClosed.
func (c *TCPConn) Close() error {
	if err := lockOpen(&c.mu, &c.closed); err != nil {
		return err
	}
	c.closed = true
	unread := c.freeQueueLocked()
	pending := c.pending
	c.pending = 0
	linger := c.linger
	c.dl.stop()
	c.mu.Unlock()
	wake(c.rch)
	wake(c.wch)

	c.k.Lock()
	c.reg.remove(&c.node)
	pcb := c.pcb
	if pcb != nil {
		if pending > 0 {
			pcb.Recved(pending)
		}
		switch {
		case c.pcb == nil:
			// Recved's output found the connection gone.
			pcb = nil
		case linger == 0 || c.ref.n.Load() > 0:
			// SO_LINGER 0, or WriteRef still needs its memory back now: reset.
			c.dropPCB()
			pcb.OnErr(nil)
			pcb.Abort()
			pcb = nil
		case linger > 0 && unread == 0:
			pcb.Shutdown(false, true)
			pcb.OnPoll(tcpPoll, lingerPoll)
		default:
			c.dropPCB()
			pcb.Close()
			pcb = nil
		}
	}
	c.k.Unlock()
	if pcb != nil {
		c.lingerWait(time.Now().Add(time.Duration(linger) * time.Second))
	}
	c.reg.release()
	// A waiter woken by the wakeups above may have lost its token to lingerWait.
	wake(c.rch)
	wake(c.wch)
	if c.onClose != nil {
		c.onClose()
	}
	return nil
}

// lingerWait waits until the FIN is acknowledged, the connection is gone, or until, then
// closes the PCB (which finishes in the background if the time ran out, as Linux does).
func (c *TCPConn) lingerWait(until time.Time) {
	t := time.NewTimer(time.Until(until))
	defer t.Stop()
	for {
		c.k.Lock()
		pcb := c.pcb
		done := pcb == nil
		if !done {
			switch pcb.State() {
			case tcp.StateFinWait2, tcp.StateTimeWait, tcp.StateClosed:
				done = true
			}
			if !done && !time.Now().Before(until) {
				done = true
			}
			if done {
				c.dropPCB()
				pcb.Close()
			}
		}
		c.k.Unlock()
		if done {
			return
		}
		select {
		case <-c.wch:
		case <-t.C:
		}
	}
}

// Abort resets the connection (RST) and releases it, as Close after SetLinger(0).
func (c *TCPConn) Abort() {
	c.mu.Lock()
	c.linger = 0
	c.mu.Unlock()
	c.Close()
}

// CloseRead stops receiving (shutdown(SHUT_RD)): queued data is dropped, Read returns
// io.EOF, and data that still arrives is consumed and dropped (no reset, as Linux).
func (c *TCPConn) CloseRead() error {
	if err := lockOpen(&c.mu, &c.closed); err != nil {
		return err
	}
	c.rdShut = true
	c.pending += c.freeQueueLocked()
	c.mu.Unlock()
	wake(c.rch)
	c.flushRecved()
	return nil
}
