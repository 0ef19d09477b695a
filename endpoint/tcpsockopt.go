package endpoint

import (
	"time"

	"golang.org/x/sys/unix"
)

// GetsockoptInt reads an option (see the package's sockopt documentation): SO_REUSEADDR,
// SO_KEEPALIVE, SO_RCVBUF, SO_SNDBUF, SO_ERROR (the pending error, then cleared), SO_TYPE,
// SO_ACCEPTCONN, SO_RCVTIMEO / SO_SNDTIMEO (ms), IP_TTL, IP_TOS, IPV6_V6ONLY,
// IPV6_UNICAST_HOPS, IPV6_TCLASS, TCP_NODELAY, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT,
// TCP_MAXSEG (the effective send MSS, not the value set: see MSS), TCP_USER_TIMEOUT (ms),
// TCP_CORK, TCP_NOTSENT_LOWAT (bytes).
func (c *TCPConn) GetsockoptInt(level, name int) (int, error) {
	v, err := c.getInt(level, name)
	return v, c.err("get", err)
}

func (c *TCPConn) getInt(level, name int) (int, error) {
	if level == unix.IPPROTO_TCP && name == unix.TCP_MAXSEG {
		return c.MSS(), nil // the PCB's effective MSS, not the value set
	}
	o := &c.opts
	o.mu.Lock()
	defer o.mu.Unlock()
	switch (optKey{level, name}) {
	case optKey{unix.SOL_SOCKET, unix.SO_TYPE}:
		return unix.SOCK_STREAM, nil
	case optKey{unix.SOL_SOCKET, unix.SO_ACCEPTCONN}:
		return 0, nil
	case optKey{unix.SOL_SOCKET, unix.SO_REUSEADDR}:
		return b2i(o.reuseAddr), nil
	case optKey{unix.SOL_SOCKET, unix.SO_KEEPALIVE}:
		return b2i(o.ka.on), nil
	case optKey{unix.SOL_SOCKET, unix.SO_RCVBUF}:
		return o.rcvBuf, nil
	case optKey{unix.SOL_SOCKET, unix.SO_SNDBUF}:
		return o.sndBuf, nil
	case optKey{unix.SOL_SOCKET, unix.SO_RCVTIMEO}:
		return int(c.timeo.get(true).Milliseconds()), nil
	case optKey{unix.SOL_SOCKET, unix.SO_SNDTIMEO}:
		return int(c.timeo.get(false).Milliseconds()), nil
	case optKey{unix.SOL_SOCKET, unix.SO_LINGER}:
		return o.linger, nil
	case optKey{unix.SOL_SOCKET, unix.SO_ERROR}:
		return soErrno(c.soError()), nil
	case optKey{unix.IPPROTO_IP, unix.IP_TTL}, optKey{unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS}:
		return o.ttl, nil
	case optKey{unix.IPPROTO_IP, unix.IP_TOS}, optKey{unix.IPPROTO_IPV6, unix.IPV6_TCLASS}:
		return o.tos, nil
	case optKey{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY}:
		if !c.v6sock {
			return 0, errNoProtoOpt
		}
		return b2i(o.v6only), nil
	case optKey{unix.IPPROTO_TCP, unix.TCP_NODELAY}:
		return b2i(o.noDelay), nil
	case optKey{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE}:
		return int(o.ka.idle.Seconds()), nil
	case optKey{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL}:
		return int(o.ka.intvl.Seconds()), nil
	case optKey{unix.IPPROTO_TCP, unix.TCP_KEEPCNT}:
		return o.ka.cnt, nil
	case optKey{unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT}:
		return int(o.userTimeout.Milliseconds()), nil
	case optKey{unix.IPPROTO_TCP, unix.TCP_CORK}:
		return b2i(o.cork), nil
	case optKey{unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT}:
		return o.notSentLowat, nil
	}
	return 0, errNoProtoOpt
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

// SetsockoptInt changes an option: SO_KEEPALIVE, SO_RCVBUF, SO_SNDBUF, SO_RCVTIMEO /
// SO_SNDTIMEO (ms), IP_TTL / IPV6_UNICAST_HOPS, IP_TOS / IPV6_TCLASS, TCP_NODELAY,
// TCP_KEEPIDLE (TCPKeepAlive), TCP_KEEPINTVL, TCP_KEEPCNT, TCP_MAXSEG ([88, 65495]; 0
// removes the cap), TCP_USER_TIMEOUT (ms; 0 off), TCP_CORK, TCP_NOTSENT_LOWAT (bytes; 0
// off). Negative values of the last four fail with EINVAL. TCP_MAXSEG set here caps what
// this side sends; to lower the MSS the SYN announces, set it before connect with
// Dialer.MSS. SO_REUSEADDR and IPV6_V6ONLY act at bind, which Dial and Accept have done:
// both fail with EINVAL (Linux fails IPV6_V6ONLY so, and accepts a useless SO_REUSEADDR;
// wisp does not pretend). Set them before bind with Dialer.ReuseAddr and
// ListenConfig.ReuseAddr / V6Only.
func (c *TCPConn) SetsockoptInt(level, name, v int) error {
	return c.err("set", c.setInt(level, name, v))
}

func (c *TCPConn) setInt(level, name, v int) error {
	switch (optKey{level, name}) {
	case optKey{unix.SOL_SOCKET, unix.SO_KEEPALIVE}:
		return c.setKeepAliveRaw(func(o *keepVals) { o.on = v != 0 })
	case optKey{unix.SOL_SOCKET, unix.SO_RCVBUF}:
		return unwrap(c.SetReadBuffer(v))
	case optKey{unix.SOL_SOCKET, unix.SO_SNDBUF}:
		return unwrap(c.SetWriteBuffer(v))
	case optKey{unix.SOL_SOCKET, unix.SO_RCVTIMEO}, optKey{unix.SOL_SOCKET, unix.SO_SNDTIMEO}:
		d, ok := msDuration(v)
		if !ok {
			return errInval
		}
		c.setTimeo(name == unix.SO_RCVTIMEO, d)
		return nil
	case optKey{unix.SOL_SOCKET, unix.SO_REUSEADDR}:
		return errInval
	case optKey{unix.SOL_SOCKET, unix.SO_LINGER}:
		return unwrap(c.SetLinger(v))
	case optKey{unix.IPPROTO_IP, unix.IP_TTL}, optKey{unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS}:
		if !checkTTL(v) {
			return errInval
		}
		if v == -1 {
			v = int(c.n.s.Options().TCPTTL)
		}
		return c.setByte(v, true)
	case optKey{unix.IPPROTO_IP, unix.IP_TOS}, optKey{unix.IPPROTO_IPV6, unix.IPV6_TCLASS}:
		if v < -1 || v > 255 {
			return errInval
		}
		return c.setByte(max(v, 0), false)
	case optKey{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY}:
		if !c.v6sock {
			return errNoProtoOpt
		}
		return errInval
	case optKey{unix.IPPROTO_TCP, unix.TCP_NODELAY}:
		return unwrap(c.SetNoDelay(v != 0))
	case optKey{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE}, optKey{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL}:
		d, ok := seconds(v)
		if !ok {
			return errInval
		}
		return c.setKeepAliveRaw(func(o *keepVals) {
			if name == unix.TCP_KEEPIDLE {
				o.idle = d
			} else {
				o.intvl = d
			}
		})
	case optKey{unix.IPPROTO_TCP, unix.TCP_KEEPCNT}:
		if v <= 0 || v > 127 {
			return errInval
		}
		return c.setKeepAliveRaw(func(o *keepVals) { o.cnt = v })
	case optKey{unix.IPPROTO_TCP, unix.TCP_MAXSEG}:
		if v < 0 {
			return errInval
		}
		return unwrap(c.SetMSS(v))
	case optKey{unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT}:
		d, ok := msDuration(v)
		if !ok {
			return errInval
		}
		return unwrap(c.SetUserTimeout(d))
	case optKey{unix.IPPROTO_TCP, unix.TCP_CORK}:
		return unwrap(c.SetCork(v != 0))
	case optKey{unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT}:
		return unwrap(c.SetNotSentLowat(v))
	}
	return errNoProtoOpt
}

func (c *TCPConn) setKeepAliveRaw(change func(o *keepVals)) error {
	return unwrap(c.setKeepAlive(change))
}

func (c *TCPConn) setByte(v int, ttl bool) error {
	nc, err := c.ready()
	if err != nil {
		return err
	}
	if ttl {
		err = nc.SetTTL(uint8(v))
	} else {
		err = nc.SetTOS(uint8(v))
	}
	if err == nil {
		c.opts.mu.Lock()
		if ttl {
			c.opts.ttl = v
		} else {
			c.opts.tos = v
		}
		c.opts.mu.Unlock()
	}
	return err
}

func (c *TCPConn) setTimeo(read bool, d time.Duration) {
	var dl deadliner
	if c.pending == nil {
		dl = c.conn
	} else if done, nc, _ := c.pending.state(); done && nc != nil {
		dl = nc
	}
	c.timeo.set(dl, read, d)
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
	c.setTimeo(name == unix.SO_RCVTIMEO, d)
	return nil
}

// GetsockoptLinger reads SO_LINGER as a struct linger.
func (c *TCPConn) GetsockoptLinger(level, name int) (*unix.Linger, error) {
	if level != unix.SOL_SOCKET || name != unix.SO_LINGER {
		return nil, c.err("get", errNoProtoOpt)
	}
	c.opts.mu.Lock()
	defer c.opts.mu.Unlock()
	if c.opts.linger < 0 {
		return &unix.Linger{}, nil
	}
	return &unix.Linger{Onoff: 1, Linger: int32(c.opts.linger)}, nil
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
