package netconn

import (
	"net"
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
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
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

	c.s.Lock()
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
			c.pcb = nil
			pcb.OnErr(nil)
			pcb.Abort()
			pcb = nil
		case linger > 0 && unread == 0:
			pcb.Shutdown(false, true)
			pcb.OnPoll(tcpPoll, lingerPoll)
		default:
			c.pcb = nil
			pcb.Close()
			pcb = nil
		}
	}
	c.s.Unlock()
	if pcb != nil {
		c.lingerWait(time.Now().Add(time.Duration(linger) * time.Second))
	}
	c.reg.release()
	// A waiter woken by the wakeups above may have lost its token to lingerWait.
	wake(c.rch)
	wake(c.wch)
	return nil
}

// lingerWait waits until the FIN is acknowledged, the connection is gone, or until, then
// closes the PCB (which finishes in the background if the time ran out, as Linux does).
func (c *TCPConn) lingerWait(until time.Time) {
	t := time.NewTimer(time.Until(until))
	defer t.Stop()
	for {
		c.s.Lock()
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
				c.pcb = nil
				pcb.Close()
			}
		}
		c.s.Unlock()
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
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.rdShut = true
	c.pending += c.freeQueueLocked()
	c.mu.Unlock()
	wake(c.rch)
	c.flushRecved()
	return nil
}

// withPCB runs fn on the PCB in core context; the error of a gone connection otherwise.
func (c *TCPConn) withPCB(fn func(p *tcp.PCB) error) error {
	c.s.Lock()
	defer c.s.Unlock()
	if c.pcb == nil {
		return c.goneErrLocked()
	}
	return fn(c.pcb)
}

// SetNoDelay turns Nagle's algorithm off (true, the default as in Go) or on.
func (c *TCPConn) SetNoDelay(on bool) error {
	return c.withPCB(func(p *tcp.PCB) error { p.SetNoDelay(on); return nil })
}

// SetKeepAlive turns keepalive probes on or off (SO_KEEPALIVE), with the parameters of
// SetKeepAliveParams or else the Options defaults.
func (c *TCPConn) SetKeepAlive(on bool) error {
	return c.withPCB(func(p *tcp.PCB) error {
		c.keepOn = on
		p.SetKeepAlive(on, c.keepIdle, c.keepIntvl, c.keepCnt)
		return nil
	})
}

// SetKeepAliveParams sets the idle time before the first probe (TCP_KEEPIDLE), the
// interval between probes (TCP_KEEPINTVL) and how many unanswered probes end the
// connection (TCP_KEEPCNT); zero keeps the current value. It does not turn keepalive on.
func (c *TCPConn) SetKeepAliveParams(idle, intvl time.Duration, cnt int) error {
	if idle < 0 || intvl < 0 || cnt < 0 {
		return errVal
	}
	return c.withPCB(func(p *tcp.PCB) error {
		if idle > 0 {
			c.keepIdle = idle
		}
		if intvl > 0 {
			c.keepIntvl = intvl
		}
		if cnt > 0 {
			c.keepCnt = cnt
		}
		if c.keepOn {
			p.SetKeepAlive(true, c.keepIdle, c.keepIntvl, c.keepCnt)
		}
		return nil
	})
}

// KeepAlive reports the keepalive setting and parameters (zero: the Options default).
func (c *TCPConn) KeepAlive() (on bool, idle, intvl time.Duration, cnt int) {
	c.s.Lock()
	defer c.s.Unlock()
	return c.keepOn, c.keepIdle, c.keepIntvl, c.keepCnt
}

// SetLinger sets what Close does (SO_LINGER): sec < 0 the default graceful background
// close, 0 a reset, sec > 0 wait up to sec seconds for the FIN to be acknowledged.
func (c *TCPConn) SetLinger(sec int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	c.linger = max(sec, -1)
	return nil
}

// SetReadBuffer caps the receive window at n bytes (SO_RCVBUF); 0 restores the default.
func (c *TCPConn) SetReadBuffer(n int) error {
	if n < 0 {
		return errVal
	}
	return c.withPCB(func(p *tcp.PCB) error {
		p.SetRcvBuf(n)
		c.mu.Lock()
		c.rcvBuf = n
		c.thresh = recvThresh(c.wnd(), c.mss)
		c.mu.Unlock()
		return nil
	})
}

// SetWriteBuffer fixes the bytes queued for sending at n (SO_SNDBUF), at most the larger of
// Options.TCPSndBuf and TCPMaxSndBuf; 0 restores the default (autotuning from TCPSndBuf).
func (c *TCPConn) SetWriteBuffer(n int) error {
	if n < 0 {
		return errVal
	}
	return c.withPCB(func(p *tcp.PCB) error {
		p.SetSndBuf(n)
		return nil
	})
}

// SetTTL sets the TTL (hop limit) of the connection's segments (IP_TTL).
func (c *TCPConn) SetTTL(ttl uint8) error {
	return c.withPCB(func(p *tcp.PCB) error { p.SetTTL(ttl); return nil })
}

// SetTOS sets the TOS (traffic class) of the connection's segments (IP_TOS).
func (c *TCPConn) SetTOS(tos uint8) error {
	return c.withPCB(func(p *tcp.PCB) error { p.SetTOS(tos); return nil })
}

// NoDelay reports whether Nagle's algorithm is off.
func (c *TCPConn) NoDelay() bool {
	c.s.Lock()
	defer c.s.Unlock()
	return c.pcb != nil && c.pcb.NoDelay()
}

// Info returns a snapshot of the connection (TCP_INFO); State CLOSED once it is gone.
func (c *TCPConn) Info() tcp.Info {
	c.s.Lock()
	defer c.s.Unlock()
	if c.pcb == nil {
		return tcp.Info{State: tcp.StateClosed}
	}
	return c.pcb.Info()
}

// Linger returns the SetLinger setting (-1: the default graceful close).
func (c *TCPConn) Linger() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.linger
}

// ReadBuffer returns the receive buffer (SO_RCVBUF): SetReadBuffer's value, else
// Options.TCPWnd.
func (c *TCPConn) ReadBuffer() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wnd()
}

// WriteBuffer returns the send buffer (SO_SNDBUF): SetWriteBuffer's value, else what
// autotuning has grown it to from Options.TCPSndBuf.
func (c *TCPConn) WriteBuffer() int {
	c.s.Lock()
	defer c.s.Unlock()
	if c.pcb == nil {
		return c.s.Options().TCPSndBuf
	}
	return c.pcb.SndBufSize()
}
