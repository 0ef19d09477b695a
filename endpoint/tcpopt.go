package endpoint

import (
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/transport/tcp"
)

// TCPKeepAlive is lwIP's TCP_KEEPALIVE option name, an alias of TCP_KEEPIDLE here (both
// in seconds), for code written against ESP-IDF's sockets.
const TCPKeepAlive = unix.TCP_KEEPIDLE

// Go's keep-alive defaults (net.KeepAliveConfig): 15 s idle, 15 s between probes, 9 probes.
const (
	goKeepIdle  = 15 * time.Second
	goKeepIntvl = 15 * time.Second
	goKeepCnt   = 9
)

// SetNoDelay turns Nagle's algorithm off (true, the default as in Go) or on.
func (c *TCPConn) SetNoDelay(noDelay bool) error {
	nc, err := c.ready()
	if err == nil {
		err = nc.SetNoDelay(noDelay)
	}
	if err == nil {
		c.opts.mu.Lock()
		c.opts.noDelay = noDelay
		c.opts.mu.Unlock()
	}
	return c.err("set", err)
}

// SetKeepAlive turns keep-alive probes on or off (with the current idle, interval and
// count).
func (c *TCPConn) SetKeepAlive(on bool) error {
	return c.setKeepAlive(func(o *keepVals) { o.on = on })
}

// SetKeepAlivePeriod sets the idle time before the first probe and the interval between
// probes, as Go does on Linux.
func (c *TCPConn) SetKeepAlivePeriod(d time.Duration) error {
	if d <= 0 {
		return c.err("set", errInval)
	}
	return c.setKeepAlive(func(o *keepVals) { o.idle, o.intvl = d, d })
}

// SetKeepAliveConfig configures keep-alive as net.TCPConn.SetKeepAliveConfig: zero fields
// take Go's defaults (15 s, 15 s, 9), negative fields leave the value unchanged.
func (c *TCPConn) SetKeepAliveConfig(cfg net.KeepAliveConfig) error {
	return c.setKeepAlive(func(o *keepVals) {
		o.on = cfg.Enable
		switch {
		case cfg.Idle == 0:
			o.idle = goKeepIdle
		case cfg.Idle > 0:
			o.idle = cfg.Idle
		}
		switch {
		case cfg.Interval == 0:
			o.intvl = goKeepIntvl
		case cfg.Interval > 0:
			o.intvl = cfg.Interval
		}
		switch {
		case cfg.Count == 0:
			o.cnt = goKeepCnt
		case cfg.Count > 0:
			o.cnt = cfg.Count
		}
	})
}

func (c *TCPConn) setKeepAlive(change func(o *keepVals)) error {
	nc, err := c.ready()
	if err != nil {
		return c.err("set", err)
	}
	c.opts.mu.Lock()
	defer c.opts.mu.Unlock()
	o := c.opts.ka
	change(&o)
	if o.idle <= 0 || o.intvl <= 0 || o.cnt <= 0 {
		return c.err("set", errInval)
	}
	if o.on {
		err = nc.SetKeepAliveParams(o.idle, o.intvl, o.cnt)
	}
	if err == nil {
		err = nc.SetKeepAlive(o.on)
	}
	if err == nil {
		c.opts.ka = o
	}
	return c.err("set", err)
}

// keepVals are a conn's keep-alive settings.
type keepVals struct {
	on          bool
	idle, intvl time.Duration
	cnt         int
}

// SetLinger sets what Close does with unsent data, as net.TCPConn.SetLinger: negative (the
// default) closes gracefully in the background; 0 resets the connection (RST) and discards
// unsent data; positive makes Close wait up to sec seconds for the data and FIN to be
// acknowledged.
func (c *TCPConn) SetLinger(sec int) error {
	nc, err := c.ready()
	if err == nil {
		err = nc.SetLinger(sec)
	}
	if err == nil {
		c.opts.mu.Lock()
		c.opts.linger = sec
		c.opts.mu.Unlock()
	}
	return c.err("set", err)
}

// SetReadBuffer sets the receive buffer (the TCP window) in bytes.
func (c *TCPConn) SetReadBuffer(bytes int) error {
	if bytes <= 0 {
		return c.err("set", errInval)
	}
	nc, err := c.ready()
	if err == nil {
		err = nc.SetReadBuffer(bytes)
	}
	if err == nil {
		c.opts.mu.Lock()
		c.opts.rcvBuf = bytes
		c.opts.mu.Unlock()
	}
	return c.err("set", err)
}

// SetWriteBuffer sets the send buffer in bytes.
func (c *TCPConn) SetWriteBuffer(bytes int) error {
	if bytes <= 0 {
		return c.err("set", errInval)
	}
	nc, err := c.ready()
	if err == nil {
		err = nc.SetWriteBuffer(bytes)
	}
	if err == nil {
		c.opts.mu.Lock()
		c.opts.sndBuf = bytes
		c.opts.mu.Unlock()
	}
	return c.err("set", err)
}

// SetMSS caps the segments this side sends at n payload bytes (TCP_MAXSEG; 0 removes
// the cap): n in [88, 65495], else EINVAL. To lower the MSS the SYN announces to the peer
// as well, set it before connecting or listening (Dialer.MSS, ListenConfig.MSS).
func (c *TCPConn) SetMSS(n int) error {
	nc, err := c.ready()
	if err == nil {
		err = nc.SetMSS(n)
	}
	return c.err("set", err)
}

// linuxDefaultMSS is what Linux reports as TCP_MAXSEG before a connection has an MSS and
// without one set (TCP_MSS_DEFAULT, RFC 879's 536).
const linuxDefaultMSS = 536

// MSS returns TCP_MAXSEG: the effective send MSS (payload bytes per segment, less the TCP
// options each carries); 536, as Linux, while a StartDialTCP connect is in progress.
func (c *TCPConn) MSS() int {
	if p := c.pending; p != nil {
		if done, nc, _ := p.state(); done && nc != nil {
			return nc.MSS()
		}
		return linuxDefaultMSS
	}
	return c.conn.MSS()
}

// SetUserTimeout bounds how long sent data may stay unacknowledged (TCP_USER_TIMEOUT,
// RFC 5482): past it the connection is dropped and calls fail with ETIMEDOUT. 0 (the
// default) leaves it to the retransmission count; negative is EINVAL. (GetsockoptInt
// reports it in whole milliseconds, as Linux takes it.)
func (c *TCPConn) SetUserTimeout(d time.Duration) error {
	if d < 0 {
		return c.err("set", errInval)
	}
	nc, err := c.ready()
	if err == nil {
		err = nc.SetUserTimeout(d)
	}
	if err == nil {
		c.opts.mu.Lock()
		c.opts.userTimeout = d
		c.opts.mu.Unlock()
	}
	return c.err("set", err)
}

// UserTimeout returns the SetUserTimeout setting (0: none).
func (c *TCPConn) UserTimeout() time.Duration {
	c.opts.mu.Lock()
	defer c.opts.mu.Unlock()
	return c.opts.userTimeout
}

// SetCork holds partial segments back while on (TCP_CORK), so that several small writes
// leave as full segments (a partial one waits 200 ms at most, as on Linux); turning it off
// sends what was held at once.
func (c *TCPConn) SetCork(on bool) error {
	nc, err := c.ready()
	if err == nil {
		err = nc.SetCork(on)
	}
	if err == nil {
		c.opts.mu.Lock()
		c.opts.cork = on
		c.opts.mu.Unlock()
	}
	return c.err("set", err)
}

// Cork reports whether SetCork holds partial segments back.
func (c *TCPConn) Cork() bool {
	c.opts.mu.Lock()
	defer c.opts.mu.Unlock()
	return c.opts.cork
}

// SetNotSentLowat limits the bytes written and not yet sent to about n (TCP_NOTSENT_LOWAT):
// Write blocks while n or more are unsent (the piece that crosses the mark, 64 KiB at
// most, is queued whole, as Linux queues a whole skb), so data is queued shortly before it
// can go out rather than up to the whole send buffer. 0 (the default) turns the limit
// off; negative is EINVAL.
func (c *TCPConn) SetNotSentLowat(n int) error {
	if n < 0 {
		return c.err("set", errInval)
	}
	nc, err := c.ready()
	if err == nil {
		err = nc.SetNotSentLowat(n)
	}
	if err == nil {
		c.opts.mu.Lock()
		c.opts.notSentLowat = n
		c.opts.mu.Unlock()
	}
	return c.err("set", err)
}

// NotSentLowat returns the SetNotSentLowat setting (0: off).
func (c *TCPConn) NotSentLowat() int {
	c.opts.mu.Lock()
	defer c.opts.mu.Unlock()
	return c.opts.notSentLowat
}

// Info returns a snapshot of the connection's TCP state (Linux's TCP_INFO).
func (c *TCPConn) Info() tcp.Info {
	nc, err := c.ready()
	if err != nil {
		return tcp.Info{}
	}
	return nc.Info()
}
