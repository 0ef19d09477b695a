package endpoint

import (
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/endpoint/netconn"
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

// The typed setters of net.TCPConn (and wisp's own) set their option through the same
// table entry as SetsockoptInt; the getters read the connection's options from netconn.

// SetNoDelay turns Nagle's algorithm off (true, the default as in Go) or on.
func (c *TCPConn) SetNoDelay(noDelay bool) error {
	return c.SetsockoptInt(unix.IPPROTO_TCP, unix.TCP_NODELAY, b2i(noDelay))
}

// SetKeepAlive turns keep-alive probes on or off (with the current idle, interval and
// count).
func (c *TCPConn) SetKeepAlive(on bool) error {
	return c.err("set", c.setKeepAlive(func(k *netconn.KeepAlive) { k.On = on }))
}

// SetKeepAlivePeriod sets the idle time before the first probe and the interval between
// probes, as Go does on Linux.
func (c *TCPConn) SetKeepAlivePeriod(d time.Duration) error {
	if d <= 0 {
		return c.err("set", errInval)
	}
	return c.err("set", c.setKeepAlive(func(k *netconn.KeepAlive) { k.Idle, k.Intvl = d, d }))
}

// SetKeepAliveConfig configures keep-alive as net.TCPConn.SetKeepAliveConfig: zero fields
// take Go's defaults (15 s, 15 s, 9), negative fields leave the value unchanged.
func (c *TCPConn) SetKeepAliveConfig(cfg net.KeepAliveConfig) error {
	return c.err("set", c.setKeepAlive(func(k *netconn.KeepAlive) {
		k.On = cfg.Enable
		k.Idle = keepValue(cfg.Idle, k.Idle, goKeepIdle)
		k.Intvl = keepValue(cfg.Interval, k.Intvl, goKeepIntvl)
		k.Cnt = keepValue(cfg.Count, k.Cnt, goKeepCnt)
	}))
}

// keepValue is a net.KeepAliveConfig field applied to cur: 0 means Go's default def,
// negative leaves cur.
func keepValue[T time.Duration | int](v, cur, def T) T {
	switch {
	case v == 0:
		return def
	case v > 0:
		return v
	}
	return cur
}

// setKeepAlive changes the connection's keep-alive setting with change; the error is not
// wrapped.
func (c *TCPConn) setKeepAlive(change func(k *netconn.KeepAlive)) error {
	return c.setConn(func(nc *netconn.TCPConn) error { return nc.ChangeKeepAlive(change) })
}

// SetLinger sets what Close does with unsent data, as net.TCPConn.SetLinger: negative (the
// default) closes gracefully in the background; 0 resets the connection (RST) and discards
// unsent data; positive makes Close wait up to sec seconds for the data and FIN to be
// acknowledged.
func (c *TCPConn) SetLinger(sec int) error {
	return c.SetsockoptInt(unix.SOL_SOCKET, unix.SO_LINGER, sec)
}

// SetReadBuffer sets the receive buffer (the TCP window) in bytes.
func (c *TCPConn) SetReadBuffer(bytes int) error {
	return c.SetsockoptInt(unix.SOL_SOCKET, unix.SO_RCVBUF, bytes)
}

// SetWriteBuffer sets the send buffer in bytes.
func (c *TCPConn) SetWriteBuffer(bytes int) error {
	return c.SetsockoptInt(unix.SOL_SOCKET, unix.SO_SNDBUF, bytes)
}

// SetMSS caps the segments this side sends at n payload bytes (TCP_MAXSEG; 0 removes
// the cap): n in [88, 65495], else EINVAL. To lower the MSS the SYN announces to the peer
// as well, set it before connecting or listening (Dialer.MSS, ListenConfig.MSS).
func (c *TCPConn) SetMSS(n int) error {
	return c.SetsockoptInt(unix.IPPROTO_TCP, unix.TCP_MAXSEG, n)
}

// linuxDefaultMSS is what Linux reports as TCP_MAXSEG before a connection has an MSS and
// without one set (TCP_MSS_DEFAULT, RFC 879's 536).
const linuxDefaultMSS = 536

// MSS returns TCP_MAXSEG: the effective send MSS (payload bytes per segment, less the TCP
// options each carries); 536, as Linux, while a StartDialTCP connect is in progress.
func (c *TCPConn) MSS() int {
	if nc := c.currentConn(); nc != nil {
		return nc.MSS()
	}
	return linuxDefaultMSS
}

// SetUserTimeout bounds how long sent data may stay unacknowledged (TCP_USER_TIMEOUT,
// RFC 5482): past it the connection is dropped and calls fail with ETIMEDOUT. 0 (the
// default) leaves it to the retransmission count; negative is EINVAL. (GetsockoptInt
// reports it in whole milliseconds, as Linux takes it.)
func (c *TCPConn) SetUserTimeout(d time.Duration) error {
	if d < 0 {
		return c.err("set", errInval)
	}
	return c.err("set", c.setConn(func(nc *netconn.TCPConn) error { return nc.SetUserTimeout(d) }))
}

// UserTimeout returns the SetUserTimeout setting (0: none).
func (c *TCPConn) UserTimeout() time.Duration { return c.sockopts().UserTimeout }

// SetCork holds partial segments back while on (TCP_CORK), so that several small writes
// leave as full segments (a partial one waits 200 ms at most, as on Linux); turning it off
// sends what was held at once.
func (c *TCPConn) SetCork(on bool) error {
	return c.SetsockoptInt(unix.IPPROTO_TCP, unix.TCP_CORK, b2i(on))
}

// Cork reports whether SetCork holds partial segments back.
func (c *TCPConn) Cork() bool { return c.sockopts().Cork }

// SetNotSentLowat limits the bytes written and not yet sent to about n (TCP_NOTSENT_LOWAT):
// Write blocks while n or more are unsent (the piece that crosses the mark, 64 KiB at
// most, is queued whole, as Linux queues a whole skb), so data is queued shortly before it
// can go out rather than up to the whole send buffer. 0 (the default) turns the limit
// off; negative is EINVAL.
func (c *TCPConn) SetNotSentLowat(n int) error {
	return c.SetsockoptInt(unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, n)
}

// NotSentLowat returns the SetNotSentLowat setting (0: off).
func (c *TCPConn) NotSentLowat() int { return c.sockopts().NotSentLowat }

// Info returns a snapshot of the connection's TCP state (Linux's TCP_INFO).
func (c *TCPConn) Info() tcp.Info {
	nc, err := c.ready()
	if err != nil {
		return tcp.Info{}
	}
	return nc.Info()
}

// setConn runs set on the netconn conn, waiting for a StartDialTCP connect to finish; the
// error is not wrapped.
func (c *TCPConn) setConn(set func(nc *netconn.TCPConn) error) error {
	nc, err := c.ready()
	if err != nil {
		return err
	}
	return set(nc)
}

// currentConn returns the netconn conn without waiting: nil while a StartDialTCP connect
// is in progress, or after it failed.
func (c *TCPConn) currentConn() *netconn.TCPConn {
	if c.pending == nil {
		return c.conn
	}
	if done, nc, _ := c.pending.state(); done {
		return nc
	}
	return nil
}

// sockopts returns the connection's options as netconn reports them, or those a new
// connection starts with while it has no netconn conn (setsockopt waits for the connect,
// so none was set; IPV6_V6ONLY is the connect's).
func (c *TCPConn) sockopts() netconn.TCPSockopts {
	if nc := c.currentConn(); nc != nil {
		return nc.Sockopts()
	}
	o := netconn.DefaultTCPSockopts(c.n.s)
	o.V6Only = c.pending.v6only
	return o
}
