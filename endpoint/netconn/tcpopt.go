package netconn

import (
	"time"

	"github.com/wispstack/wisp/transport/tcp"
)

// The TCP-level options Linux has and lwIP does not: TCP_MAXSEG, TCP_USER_TIMEOUT, TCP_CORK
// and TCP_NOTSENT_LOWAT. Each is the PCB's; these methods take the core lock to reach it.

// SetMSS caps the send MSS at n bytes (TCP_MAXSEG; 0 removes the cap). On a connection
// the cap applies to the segments sent from now on; before connecting (TCPOptions.MSS) it
// also lowers the MSS announced in the SYN. Errors: errs.Val outside [88, 65495].
func (c *TCPConn) SetMSS(n int) error {
	if n < 0 {
		return errVal
	}
	return c.withPCB(func(p *tcp.PCB) error { return p.SetMSS(n) })
}

// MSS returns the effective send MSS (TCP_MAXSEG): the payload bytes per segment, less
// the TCP options each carries (timestamps). Once the connection is gone, the MSS it had
// when it was established.
func (c *TCPConn) MSS() int {
	c.s.Lock()
	defer c.s.Unlock()
	if c.pcb != nil {
		return c.pcb.MSS()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mss
}

// SetUserTimeout bounds how long sent data may stay unacknowledged before the connection
// is dropped with errs.Timeout (TCP_USER_TIMEOUT, RFC 5482); 0 leaves it to the
// retransmission count (Options.TCPMaxRtx). Errors: errs.Val for a negative d.
func (c *TCPConn) SetUserTimeout(d time.Duration) error {
	if d < 0 {
		return errVal
	}
	return c.withPCB(func(p *tcp.PCB) error { p.SetUserTimeout(d); return nil })
}

// UserTimeout returns the SetUserTimeout setting (0: none).
func (c *TCPConn) UserTimeout() time.Duration {
	c.s.Lock()
	defer c.s.Unlock()
	if c.pcb == nil {
		return 0
	}
	return c.pcb.UserTimeout()
}

// SetCork holds partial segments back while on (TCP_CORK): only full-sized segments leave,
// and a partial one after 200 ms at most, as on Linux. Turning it off sends what was held
// at once.
func (c *TCPConn) SetCork(on bool) error {
	return c.withPCB(func(p *tcp.PCB) error { p.SetCork(on); return nil })
}

// Cork reports whether SetCork holds partial segments back.
func (c *TCPConn) Cork() bool {
	c.s.Lock()
	defer c.s.Unlock()
	return c.pcb != nil && c.pcb.Cork()
}

// SetNotSentLowat sets TCP_NOTSENT_LOWAT: Write waits while n or more bytes it queued are
// not yet sent, so that data is queued shortly before it can go out (the chunk that
// crosses the mark is queued whole, up to 64 KiB, as Linux queues a whole skb). The PCB
// wakes the writer through the sent callback when unsent bytes fall below n. 0 turns the
// limit off (the send buffer alone bounds Write). Errors: errs.Val for a negative n.
func (c *TCPConn) SetNotSentLowat(n int) error {
	if n < 0 {
		return errVal
	}
	return c.withPCB(func(p *tcp.PCB) error { p.SetNotSentLowat(n); return nil })
}

// NotSentLowat returns the SetNotSentLowat setting (0: off).
func (c *TCPConn) NotSentLowat() int {
	c.s.Lock()
	defer c.s.Unlock()
	if c.pcb == nil {
		return 0
	}
	return c.pcb.NotSentLowat()
}
