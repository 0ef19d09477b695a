package endpoint

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/endpoint/netconn"
)

// GetsockoptInt reads an option (see the package's sockopt documentation): SO_REUSEADDR,
// SO_KEEPALIVE, SO_RCVBUF, SO_SNDBUF, SO_LINGER, SO_ERROR (the pending error, then
// cleared), SO_TYPE, SO_ACCEPTCONN, SO_RCVTIMEO / SO_SNDTIMEO (ms), IP_TTL, IP_TOS,
// IPV6_V6ONLY, IPV6_UNICAST_HOPS, IPV6_TCLASS, TCP_NODELAY, TCP_KEEPIDLE, TCP_KEEPINTVL,
// TCP_KEEPCNT, TCP_MAXSEG (the effective send MSS, not the value set: see MSS),
// TCP_USER_TIMEOUT (ms), TCP_CORK, TCP_NOTSENT_LOWAT (bytes).
func (c *TCPConn) GetsockoptInt(level, name int) (int, error) {
	v, err := tcpOptTable.get(c, level, name)
	return v, c.err("get", err)
}

// SetsockoptInt changes an option: SO_KEEPALIVE, SO_RCVBUF, SO_SNDBUF, SO_LINGER,
// SO_RCVTIMEO / SO_SNDTIMEO (ms), IP_TTL / IPV6_UNICAST_HOPS, IP_TOS / IPV6_TCLASS,
// TCP_NODELAY, TCP_KEEPIDLE (TCPKeepAlive), TCP_KEEPINTVL, TCP_KEEPCNT, TCP_MAXSEG ([88,
// 65495]; 0 removes the cap), TCP_USER_TIMEOUT (ms; 0 off), TCP_CORK, TCP_NOTSENT_LOWAT
// (bytes; 0 off). Negative values of the last four fail with EINVAL. TCP_MAXSEG set here
// caps what this side sends; to lower the MSS the SYN announces, set it before connect
// with Dialer.MSS. SO_REUSEADDR and IPV6_V6ONLY act at bind, which Dial and Accept have
// done: both fail with EINVAL (Linux fails IPV6_V6ONLY so, and accepts a useless
// SO_REUSEADDR; wisp does not pretend). Set them before bind with Dialer.ReuseAddr and
// ListenConfig.ReuseAddr / V6Only.
func (c *TCPConn) SetsockoptInt(level, name, v int) error {
	return c.err("set", tcpOptTable.set(c, level, name, v))
}

// tcpOptTable is a TCPConn's options: the values live on the PCB, reached through netconn.
var tcpOptTable = newOptTable(
	timeoOpts(func(c *TCPConn) *callTimeouts { return &c.timeo }, (*TCPConn).deadliner),
	optTable[*TCPConn]{
		soType:       {get: constant[*TCPConn](unix.SOCK_STREAM)},
		soAcceptConn: {get: constant[*TCPConn](0)},
		soError:      {get: func(c *TCPConn) (int, error) { return soErrno(c.soError()), nil }},
		soReuseAddr:  {get: tcpGet(func(o *netconn.TCPSockopts) int { return b2i(o.ReuseAddr) }), set: afterBind[*TCPConn]},
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE}: {
			get: tcpGet(func(o *netconn.TCPSockopts) int { return b2i(o.KeepAlive.On) }),
			set: func(c *TCPConn, v int) error {
				return c.setKeepAlive(func(k *netconn.KeepAlive) { k.On = v != 0 })
			},
		},
		soRcvBuf: {
			get: tcpGet(func(o *netconn.TCPSockopts) int { return o.ReadBuffer }),
			set: tcpSet(positive, (*netconn.TCPConn).SetReadBuffer),
		},
		soSndBuf: {
			get: tcpGet(func(o *netconn.TCPSockopts) int { return o.WriteBuffer }),
			set: tcpSet(positive, (*netconn.TCPConn).SetWriteBuffer),
		},
		{unix.SOL_SOCKET, unix.SO_LINGER}: {
			get: tcpGet(func(o *netconn.TCPSockopts) int { return o.Linger }),
			set: tcpSet(nil, (*netconn.TCPConn).SetLinger),
		},
		ipTTL: {
			get: tcpGet(func(o *netconn.TCPSockopts) int { return int(o.TTL) }),
			set: func(c *TCPConn, v int) error {
				return setTTL(v, c.n.s.Options().TCPTTL, c.byteSetter((*netconn.TCPConn).SetTTL))
			},
		},
		ipTOS: {
			get: tcpGet(func(o *netconn.TCPSockopts) int { return int(o.TOS) }),
			set: func(c *TCPConn, v int) error { return setTOS(v, c.byteSetter((*netconn.TCPConn).SetTOS)) },
		},
		ipv6V6Only: {
			get: func(c *TCPConn) (int, error) {
				if !c.v6sock {
					return 0, errNoProtoOpt
				}
				return tcpGet(func(o *netconn.TCPSockopts) int { return b2i(o.V6Only) })(c)
			},
			set: func(c *TCPConn, v int) error {
				if !c.v6sock {
					return errNoProtoOpt
				}
				return errInval
			},
		},
		{unix.IPPROTO_TCP, unix.TCP_NODELAY}: {
			get: tcpGet(func(o *netconn.TCPSockopts) int { return b2i(o.NoDelay) }),
			set: tcpSet(nil, func(nc *netconn.TCPConn, v int) error { return nc.SetNoDelay(v != 0) }),
		},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE}: {
			get: tcpGet(func(o *netconn.TCPSockopts) int { return int(o.KeepAlive.Idle.Seconds()) }),
			set: keepSeconds(func(k *netconn.KeepAlive) *time.Duration { return &k.Idle }),
		},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL}: {
			get: tcpGet(func(o *netconn.TCPSockopts) int { return int(o.KeepAlive.Intvl.Seconds()) }),
			set: keepSeconds(func(k *netconn.KeepAlive) *time.Duration { return &k.Intvl }),
		},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT}: {
			get: tcpGet(func(o *netconn.TCPSockopts) int { return o.KeepAlive.Cnt }),
			set: func(c *TCPConn, v int) error {
				if v <= 0 || v > 127 {
					return errInval
				}
				return c.setKeepAlive(func(k *netconn.KeepAlive) { k.Cnt = v })
			},
		},
		{unix.IPPROTO_TCP, unix.TCP_MAXSEG}: {
			get: func(c *TCPConn) (int, error) { return c.MSS(), nil }, // the effective MSS, not the value set
			set: tcpSet(nonNegative, (*netconn.TCPConn).SetMSS),
		},
		{unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT}: {
			get: tcpGet(func(o *netconn.TCPSockopts) int { return int(o.UserTimeout.Milliseconds()) }),
			set: func(c *TCPConn, v int) error {
				d, ok := msDuration(v)
				if !ok {
					return errInval
				}
				return c.setConn(func(nc *netconn.TCPConn) error { return nc.SetUserTimeout(d) })
			},
		},
		{unix.IPPROTO_TCP, unix.TCP_CORK}: {
			get: tcpGet(func(o *netconn.TCPSockopts) int { return b2i(o.Cork) }),
			set: tcpSet(nil, func(nc *netconn.TCPConn, v int) error { return nc.SetCork(v != 0) }),
		},
		{unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT}: {
			get: tcpGet(func(o *netconn.TCPSockopts) int { return o.NotSentLowat }),
			set: tcpSet(nonNegative, (*netconn.TCPConn).SetNotSentLowat),
		},
	},
)

func positive(v int) bool    { return v > 0 }
func nonNegative(v int) bool { return v >= 0 }

// tcpGet makes a get that reads the connection's options (see sockopts) with f.
func tcpGet(f func(o *netconn.TCPSockopts) int) func(*TCPConn) (int, error) {
	return func(c *TCPConn) (int, error) {
		o := c.sockopts()
		return f(&o), nil
	}
}

// tcpSet makes a set that checks v with ok (nil: any value) and hands it to set on the
// netconn conn.
func tcpSet(ok func(v int) bool, set func(nc *netconn.TCPConn, v int) error) func(*TCPConn, int) error {
	return func(c *TCPConn, v int) error {
		if ok != nil && !ok(v) {
			return errInval
		}
		return c.setConn(func(nc *netconn.TCPConn) error { return set(nc, v) })
	}
}

// byteSetter makes the set of setTTL and setTOS: set on the netconn conn.
func (c *TCPConn) byteSetter(set func(nc *netconn.TCPConn, v uint8) error) func(uint8) error {
	return func(v uint8) error { return c.setConn(func(nc *netconn.TCPConn) error { return set(nc, v) }) }
}

// keepSeconds makes the set of TCP_KEEPIDLE or TCP_KEEPINTVL (seconds), field's.
func keepSeconds(field func(k *netconn.KeepAlive) *time.Duration) func(*TCPConn, int) error {
	return func(c *TCPConn, v int) error {
		d, ok := seconds(v)
		if !ok {
			return errInval
		}
		return c.setKeepAlive(func(k *netconn.KeepAlive) { *field(k) = d })
	}
}

// deadliner returns the conn SO_RCVTIMEO and SO_SNDTIMEO apply to (nil while a
// StartDialTCP connect is in progress: it takes them when it ends).
func (c *TCPConn) deadliner() deadliner {
	if nc := c.currentConn(); nc != nil {
		return nc
	}
	return nil
}

// soError is SO_ERROR: the connect's error for a StartDialTCP conn, else the pending
// asynchronous error of the connection.
func (c *TCPConn) soError() error {
	if p := c.pending; p != nil {
		if err := p.soError(); err != nil {
			return err
		}
		done, nc, _ := p.state()
		if !done || nc == nil {
			return nil
		}
		return nc.Err()
	}
	return c.conn.Err()
}

// soErrno is the int SO_ERROR reports for err.
func soErrno(err error) int {
	if err == nil {
		return 0
	}
	if e, ok := errnoOf(err).(unix.Errno); ok {
		return int(e)
	}
	return int(unix.EIO)
}

// GetsockoptTimeval reads SO_RCVTIMEO or SO_SNDTIMEO as a struct timeval.
func (c *TCPConn) GetsockoptTimeval(level, name int) (*unix.Timeval, error) {
	if level != unix.SOL_SOCKET || name != unix.SO_RCVTIMEO && name != unix.SO_SNDTIMEO {
		return nil, c.err("get", errNoProtoOpt)
	}
	return durationTimeval(c.timeo.get(name == unix.SO_RCVTIMEO)), nil
}

// SetsockoptTimeval sets SO_RCVTIMEO or SO_SNDTIMEO from a struct timeval (zero: none).
func (c *TCPConn) SetsockoptTimeval(level, name int, tv *unix.Timeval) error {
	if level != unix.SOL_SOCKET || name != unix.SO_RCVTIMEO && name != unix.SO_SNDTIMEO {
		return c.err("set", errNoProtoOpt)
	}
	d, ok := timevalDuration(tv)
	if !ok {
		return c.err("set", errInval)
	}
	c.timeo.set(c.deadliner(), name == unix.SO_RCVTIMEO, d)
	return nil
}

// GetsockoptLinger reads SO_LINGER as a struct linger.
func (c *TCPConn) GetsockoptLinger(level, name int) (*unix.Linger, error) {
	if level != unix.SOL_SOCKET || name != unix.SO_LINGER {
		return nil, c.err("get", errNoProtoOpt)
	}
	if sec := c.sockopts().Linger; sec >= 0 {
		return &unix.Linger{Onoff: 1, Linger: int32(sec)}, nil
	}
	return &unix.Linger{}, nil
}

// SetsockoptLinger sets SO_LINGER from a struct linger (Onoff 0: the default graceful
// close).
func (c *TCPConn) SetsockoptLinger(level, name int, l *unix.Linger) error {
	if level != unix.SOL_SOCKET || name != unix.SO_LINGER {
		return c.err("set", errNoProtoOpt)
	}
	if l == nil || l.Linger < 0 {
		return c.err("set", errInval)
	}
	sec := -1
	if l.Onoff != 0 {
		sec = int(l.Linger)
	}
	return c.SetLinger(sec)
}
