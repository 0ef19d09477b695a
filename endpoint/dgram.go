package endpoint

import (
	"io"
	"maps"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/opt"
)

// The pieces the datagram sockets share: UDPConn, IPConn and PingConn embed sockBase (the
// addresses, Write to the connected peer, Close); UDPConn and IPConn read under
// SO_RCVTIMEO, return the same recvmsg(2) control messages and flags, and share dgramSock
// (deadlines, the IP-level, buffer and timeout options). The helpers return errors
// unwrapped: each socket wraps them with its own network and addresses.

// msgReader is what the netconn datagram conns offer for reads.
type msgReader interface {
	deadliner
	ReadMsg(b []byte) (int, netconn.Meta, error)
}

// readMsg reads one datagram from c under SO_RCVTIMEO: a read that runs out of the
// per-call time fails with EAGAIN.
func (t *callTimeouts) readMsg(c msgReader, b []byte) (int, netconn.Meta, error) {
	t.arm(c, true)
	n, m, err := c.ReadMsg(b)
	return n, m, t.fix(err, true)
}

// recvControl returns what recvmsg(2) adds to the datagram m describes: oob filled with its
// IP_PKTINFO or IPV6_PKTINFO when pktinfo is on, and the flags MSG_TRUNC (the datagram was
// longer than the caller's buffer) and MSG_CTRUNC (oob was too short).
func recvControl(m *netconn.Meta, oob []byte, pktinfo bool) (oobn, flags int) {
	if m.Truncated {
		flags |= unix.MSG_TRUNC
	}
	if pktinfo {
		oobn = putPktInfo(oob, m.Dst, m.IfIndex)
		if oobn < 0 {
			oobn, flags = 0, flags|unix.MSG_CTRUNC
		}
	}
	return oobn, flags
}

// sockBase is what every datagram socket (UDPConn, IPConn, PingConn) has: its netconn conn
// as what Write and Close use, the network and addresses its errors name, and the
// methods built on them alone.
type sockBase struct {
	n       *Net
	nc      io.WriteCloser
	network string
	laddr   net.Addr
	raddr   net.Addr // the connected peer; nil when not connected
}

func (s *sockBase) err(op string, dst net.Addr, err error) error {
	return opError(op, s.network, s.laddr, dst, err)
}

// Write sends b in one datagram (an IPConn's: a protocol payload; a PingConn's: an echo
// request message) to the connected peer: EDESTADDRREQ when the socket is not connected.
func (s *sockBase) Write(b []byte) (int, error) {
	if s.raddr == nil {
		return 0, s.err("write", nil, errDestAddrReq)
	}
	n, err := s.nc.Write(b)
	return n, s.err("write", s.raddr, err)
}

// Close closes the socket (a UDP socket leaves its multicast groups); reads in progress
// return net.ErrClosed.
func (s *sockBase) Close() error { return s.err("close", nil, s.nc.Close()) }

// LocalAddr returns the local address: a *net.UDPAddr, a *net.IPAddr (0.0.0.0 or :: when
// bound to none) or a *PingAddr.
func (s *sockBase) LocalAddr() net.Addr { return s.laddr }

// RemoteAddr returns the connected peer (of LocalAddr's type), or nil.
func (s *sockBase) RemoteAddr() net.Addr { return s.raddr }

// ipNetconn is what the netconn UDP and raw conns offer for the options UDPConn and
// IPConn share.
type ipNetconn interface {
	deadliner
	SetReadBuffer(bytes int) error
	SetTTL(ttl uint8) error
	SetTOS(tos uint8) error
	SetMulticastInterface(ifIndex int) error
	SetMulticastTTL(ttl int) error
	SetMulticastLoop(on bool) error
	Sockopts() (netconn.Sockopts, error)
}

// dgramSock is what UDPConn and IPConn share: sockBase, their netconn conn again through
// the interface of its UDP and raw conns, IP_PKTINFO and SO_RCVTIMEO / SO_SNDTIMEO, and
// the methods and options built on them.
type dgramSock struct {
	sockBase
	ipc     ipNetconn
	pktinfo atomic.Bool
	timeo   callTimeouts
}

func (d *dgramSock) dgram() *dgramSock { return d }

// SetDeadline sets the deadlines of reads and writes, those in progress included.
func (d *dgramSock) SetDeadline(t time.Time) error {
	return d.err("set", nil, d.timeo.setDeadlines(d.ipc, true, true, t))
}

// SetReadDeadline sets the deadline of reads, those in progress included.
func (d *dgramSock) SetReadDeadline(t time.Time) error {
	return d.err("set", nil, d.timeo.setDeadlines(d.ipc, true, false, t))
}

// SetWriteDeadline sets the deadline of writes (which never wait for room, so it only
// matters for the checks they make).
func (d *dgramSock) SetWriteDeadline(t time.Time) error {
	return d.err("set", nil, d.timeo.setDeadlines(d.ipc, false, true, t))
}

// SetReadBuffer bounds the bytes of datagrams queued for reading (SO_RCVBUF), on top of
// the UDPRecvMboxSize datagram count.
func (d *dgramSock) SetReadBuffer(bytes int) error { return d.err("set", nil, d.setReadBuffer(bytes)) }

// SetWriteBuffer (SO_SNDBUF) is accepted for compatibility: sends are not buffered by the
// socket.
func (d *dgramSock) SetWriteBuffer(bytes int) error {
	return d.err("set", nil, d.setWriteBuffer(bytes))
}

// SetTTL sets the TTL (hop limit) of unicast sends (IP_TTL / IPV6_UNICAST_HOPS; -1: the
// default).
func (d *dgramSock) SetTTL(ttl int) error { return d.err("set", nil, d.setTTL(ttl)) }

// SetTOS sets the TOS / traffic class byte (IP_TOS / IPV6_TCLASS).
func (d *dgramSock) SetTOS(tos int) error { return d.err("set", nil, d.setTOS(tos)) }

func (d *dgramSock) setReadBuffer(v int) error {
	if v <= 0 {
		return errInval
	}
	return d.ipc.SetReadBuffer(v)
}

func (d *dgramSock) setWriteBuffer(v int) error {
	if v <= 0 {
		return errInval
	}
	return nil
}

func (d *dgramSock) setTTL(v int) error {
	return setTTL(v, d.n.s.Options().IPDefaultTTL, d.ipc.SetTTL)
}

func (d *dgramSock) setTOS(v int) error { return setTOS(v, d.ipc.SetTOS) }

// dgramOpts are the options UDPConn and IPConn share. Their values live on the PCB, read
// and set through netconn, but IP_PKTINFO and the timeouts, which the socket keeps.
func dgramOpts[S interface{ dgram() *dgramSock }]() optTable[S] {
	pcbGet := func(f func(o *netconn.Sockopts, so *opt.Options) int) func(S) (int, error) {
		return func(c S) (int, error) {
			d := c.dgram()
			o, err := d.ipc.Sockopts()
			if err != nil {
				return 0, err
			}
			so := d.n.s.Options()
			return f(&o, &so), nil
		}
	}
	t := timeoOpts(func(c S) *callTimeouts { return &c.dgram().timeo }, func(c S) deadliner { return c.dgram().ipc })
	maps.Copy(t, optTable[S]{
		soAcceptConn: {get: constant[S](0)},
		soReuseAddr: {
			get: pcbGet(func(o *netconn.Sockopts, _ *opt.Options) int { return b2i(o.ReuseAddr) }),
			set: afterBind[S],
		},
		soRcvBuf: {
			get: pcbGet(func(o *netconn.Sockopts, so *opt.Options) int {
				if o.ReadBuffer > 0 {
					return o.ReadBuffer
				}
				return so.UDPRecvMboxSize * so.PbufPoolBufSize
			}),
			set: onDgram[S]((*dgramSock).setReadBuffer),
		},
		soSndBuf: {
			get: constant[S](65535), // sends are not buffered: report the largest datagram
			set: onDgram[S]((*dgramSock).setWriteBuffer),
		},
		ipTTL: {
			get: pcbGet(func(o *netconn.Sockopts, so *opt.Options) int { return reportTTL(o.TTL, so) }),
			set: onDgram[S]((*dgramSock).setTTL),
		},
		ipTOS: {
			get: pcbGet(func(o *netconn.Sockopts, _ *opt.Options) int { return int(o.TOS) }),
			set: onDgram[S]((*dgramSock).setTOS),
		},
		{unix.IPPROTO_IP, unix.IP_PKTINFO}: {
			get: func(c S) (int, error) { return b2i(c.dgram().pktinfo.Load()), nil },
			set: func(c S, v int) error { c.dgram().pktinfo.Store(v != 0); return nil },
		},
		{unix.IPPROTO_IP, unix.IP_MULTICAST_IF}: {
			get: pcbGet(func(o *netconn.Sockopts, _ *opt.Options) int { return o.MulticastInterface }),
			set: func(c S, v int) error {
				if v < 0 {
					return errInval
				}
				return c.dgram().ipc.SetMulticastInterface(v)
			},
		},
		{unix.IPPROTO_IP, unix.IP_MULTICAST_TTL}: {
			get: pcbGet(func(o *netconn.Sockopts, _ *opt.Options) int { return int(o.MulticastTTL) }),
			set: func(c S, v int) error {
				v, ok := mcastTTL(v)
				if !ok {
					return errInval
				}
				return c.dgram().ipc.SetMulticastTTL(v)
			},
		},
		{unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP}: {
			get: pcbGet(func(o *netconn.Sockopts, _ *opt.Options) int { return b2i(o.MulticastLoop) }),
			set: func(c S, v int) error { return c.dgram().ipc.SetMulticastLoop(v != 0) },
		},
	})
	return t
}

// onDgram makes the set of a shared option from the dgramSock method that sets it.
func onDgram[S interface{ dgram() *dgramSock }](set func(d *dgramSock, v int) error) func(S, int) error {
	return func(c S, v int) error { return set(c.dgram(), v) }
}

// reportTTL is the IP_TTL of a PCB whose TTL is ttl: a raw or ping PCB's 0 stands for the
// stack's default.
func reportTTL(ttl uint8, so *opt.Options) int {
	if ttl == 0 {
		return int(so.IPDefaultTTL)
	}
	return int(ttl)
}

// setTTL checks an IP_TTL value (-1: the default, def) and sets it with set.
func setTTL(v int, def uint8, set func(ttl uint8) error) error {
	if !checkTTL(v) {
		return errInval
	}
	if v == -1 {
		return set(def)
	}
	return set(uint8(v))
}

// mcastTTL checks an IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS value: 0..255, -1 for the
// default, 1.
func mcastTTL(v int) (int, bool) {
	if v == -1 {
		v = 1
	}
	return v, v >= 0 && v <= 255
}
