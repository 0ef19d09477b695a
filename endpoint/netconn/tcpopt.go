package netconn

import (
	"net"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/tcp"
)

// A TCP connection's options live on its PCB: each setter takes the core lock and sets
// the PCB's value, and Sockopts reads them back from there. netconn keeps only what the
// PCB does not hold: SO_LINGER (Close's business) and SO_RCVBUF (the read batching
// depends on it).
// Beyond lwIP's options, four of Linux's: TCP_MAXSEG, TCP_USER_TIMEOUT, TCP_CORK and
// TCP_NOTSENT_LOWAT.

// KeepAlive is a connection's keepalive setting: SO_KEEPALIVE, TCP_KEEPIDLE,
// TCP_KEEPINTVL and TCP_KEEPCNT.
type KeepAlive struct {
	On          bool
	Idle, Intvl time.Duration // before the first probe, between probes
	Cnt         int           // unanswered probes that end the connection
}

// TCPSockopts are a TCP connection's option values, for getsockopt. Once the PCB is gone
// (reset, timed out, closed), the ones it holds are the values it had last.
type TCPSockopts struct {
	// Held by the PCB.
	NoDelay      bool          // TCP_NODELAY
	Cork         bool          // TCP_CORK
	UserTimeout  time.Duration // TCP_USER_TIMEOUT (0: none)
	NotSentLowat int           // TCP_NOTSENT_LOWAT (0: off)
	WriteBuffer  int           // SO_SNDBUF: SetWriteBuffer's value, else what autotuning grew it to
	KeepAlive    KeepAlive     // SO_KEEPALIVE and its parameters
	TTL, TOS     uint8         // IP_TTL / IPV6_UNICAST_HOPS, IP_TOS / IPV6_TCLASS
	ReuseAddr    bool          // SO_REUSEADDR (set before bind: TCPOptions, ListenOptions)
	V6Only       bool          // IPV6_V6ONLY (likewise)

	// Kept by netconn.
	Linger     int // SO_LINGER: -1 the default graceful close, else seconds
	ReadBuffer int // SO_RCVBUF: SetReadBuffer's value, else Options.TCPWnd
}

// DefaultTCPSockopts returns the options a connection of s starts with (NoDelay on, as
// DialTCP's default and Go's).
func DefaultTCPSockopts(s *stack.Stack) TCPSockopts {
	o := s.Options()
	return TCPSockopts{NoDelay: true, WriteBuffer: o.TCPSndBuf, Linger: -1, ReadBuffer: o.TCPWnd,
		KeepAlive: KeepAlive{Idle: o.TCPKeepIdle, Intvl: o.TCPKeepIntvl, Cnt: o.TCPKeepCnt}, TTL: o.TCPTTL}
}

// readPCB sets the fields the PCB holds from p (core context).
func (o *TCPSockopts) readPCB(p *tcp.PCB) {
	o.NoDelay, o.Cork, o.UserTimeout = p.NoDelay(), p.Cork(), p.UserTimeout()
	o.NotSentLowat, o.WriteBuffer = p.NotSentLowat(), p.SndBufSize()
	k := &o.KeepAlive
	k.On, k.Idle, k.Intvl, k.Cnt = p.KeepAlive()
	o.TTL, o.TOS, o.ReuseAddr, o.V6Only = p.TTL(), p.TOS(), p.ReuseAddr(), p.V6Only()
}

// dropPCB forgets the PCB, if any (core context), keeping the option values it had for
// Sockopts.
func (c *TCPConn) dropPCB() {
	if c.pcb != nil {
		c.lastOpts.readPCB(c.pcb)
		c.pcb = nil
	}
}

// Sockopts returns the connection's options.
func (c *TCPConn) Sockopts() TCPSockopts {
	c.k.Lock()
	defer c.k.Unlock()
	o := c.lastOpts
	if c.pcb != nil {
		o.readPCB(c.pcb)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	o.Linger, o.ReadBuffer = c.linger, c.wnd()
	return o
}

// withPCB runs fn on the PCB in core context; the error of a gone connection otherwise.
func (c *TCPConn) withPCB(fn func(p *tcp.PCB) error) error {
	c.k.Lock()
	defer c.k.Unlock()
	if c.pcb == nil {
		return c.goneErrLocked()
	}
	return fn(c.pcb)
}

// setPCB is withPCB for a setter that cannot fail.
func (c *TCPConn) setPCB(set func(p *tcp.PCB)) error {
	return c.withPCB(func(p *tcp.PCB) error { set(p); return nil })
}

// SetNoDelay turns Nagle's algorithm off (true, the default as in Go) or on.
func (c *TCPConn) SetNoDelay(on bool) error {
	return c.setPCB(func(p *tcp.PCB) { p.SetNoDelay(on) })
}

// SetKeepAlive sets keepalive (SO_KEEPALIVE and its parameters). Errors: errs.Val for a
// parameter not above 0.
func (c *TCPConn) SetKeepAlive(k KeepAlive) error {
	if !k.valid() {
		return errs.Val
	}
	return c.ChangeKeepAlive(func(cur *KeepAlive) { *cur = k })
}

// ChangeKeepAlive changes the keepalive setting in one step: change gets the current one
// (in core context: it must not call into the connection) and edits it. Errors: errs.Val,
// and nothing changes, when a parameter ends up not above 0.
func (c *TCPConn) ChangeKeepAlive(change func(k *KeepAlive)) error {
	return c.withPCB(func(p *tcp.PCB) error {
		var k KeepAlive
		k.On, k.Idle, k.Intvl, k.Cnt = p.KeepAlive()
		change(&k)
		if !k.valid() {
			return errs.Val
		}
		p.SetKeepAlive(k.On, k.Idle, k.Intvl, k.Cnt)
		return nil
	})
}

func (k *KeepAlive) valid() bool { return k.Idle > 0 && k.Intvl > 0 && k.Cnt > 0 }

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
		return errs.Val
	}
	return c.setPCB(func(p *tcp.PCB) {
		p.SetRcvBuf(n)
		c.mu.Lock()
		c.rcvBuf = n
		c.thresh = recvThresh(c.wnd(), c.mss)
		c.mu.Unlock()
	})
}

// SetWriteBuffer fixes the bytes queued for sending at n (SO_SNDBUF), at most the larger of
// Options.TCPSndBuf and TCPMaxSndBuf; 0 restores the default (autotuning from TCPSndBuf).
func (c *TCPConn) SetWriteBuffer(n int) error {
	if n < 0 {
		return errs.Val
	}
	return c.setPCB(func(p *tcp.PCB) { p.SetSndBuf(n) })
}

// SetTTL sets the TTL (hop limit) of the connection's segments (IP_TTL).
func (c *TCPConn) SetTTL(ttl uint8) error {
	return c.setPCB(func(p *tcp.PCB) { p.SetTTL(ttl) })
}

// SetTOS sets the TOS (traffic class) of the connection's segments (IP_TOS).
func (c *TCPConn) SetTOS(tos uint8) error {
	return c.setPCB(func(p *tcp.PCB) { p.SetTOS(tos) })
}

// SetMSS caps the send MSS at n bytes (TCP_MAXSEG; 0 removes the cap). On a connection
// the cap applies to the segments sent from now on; before connecting (TCPOptions.MSS) it
// also lowers the MSS announced in the SYN. Errors: errs.Val outside [88, 65495].
func (c *TCPConn) SetMSS(n int) error {
	if n < 0 {
		return errs.Val
	}
	return c.withPCB(func(p *tcp.PCB) error { return p.SetMSS(n) })
}

// MSS returns the effective send MSS (TCP_MAXSEG): the payload bytes per segment, less
// the TCP options each carries (timestamps). Once the connection is gone, the MSS it had
// when it was established.
func (c *TCPConn) MSS() int {
	c.k.Lock()
	defer c.k.Unlock()
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
		return errs.Val
	}
	return c.setPCB(func(p *tcp.PCB) { p.SetUserTimeout(d) })
}

// SetCork holds partial segments back while on (TCP_CORK): only full-sized segments leave,
// and a partial one after 200 ms at most, as on Linux. Turning it off sends what was held
// at once.
func (c *TCPConn) SetCork(on bool) error {
	return c.setPCB(func(p *tcp.PCB) { p.SetCork(on) })
}

// SetNotSentLowat sets TCP_NOTSENT_LOWAT: Write waits while n or more bytes it queued are
// not yet sent, so that data is queued shortly before it can go out (the chunk that
// crosses the mark is queued whole, up to 64 KiB, as Linux queues a whole skb). The PCB
// wakes the writer through the sent callback when unsent bytes fall below n. 0 turns the
// limit off (the send buffer alone bounds Write). Errors: errs.Val for a negative n.
func (c *TCPConn) SetNotSentLowat(n int) error {
	if n < 0 {
		return errs.Val
	}
	return c.setPCB(func(p *tcp.PCB) { p.SetNotSentLowat(n) })
}

// Info returns a snapshot of the connection (TCP_INFO); State CLOSED once it is gone.
func (c *TCPConn) Info() tcp.Info {
	c.k.Lock()
	defer c.k.Unlock()
	if c.pcb == nil {
		return tcp.Info{State: tcp.StateClosed}
	}
	return c.pcb.Info()
}
