package endpoint

import (
	"io"
	"net"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/endpoint/netconn"
)

// The pieces the datagram sockets share: UDPConn and IPConn read under SO_RCVTIMEO, return
// the same recvmsg(2) control messages and flags, and handle the timeout and buffer options
// alike; they and PingConn send to the connected peer alike. Errors come back unwrapped:
// each socket wraps them with its own network and addresses.

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

// writeConnected sends b with w's Write when the socket is connected (raddr, its peer, is
// not nil): EDESTADDRREQ when it is not.
func writeConnected(w io.Writer, b []byte, raddr net.Addr) (int, error) {
	if raddr == nil {
		return 0, errDestAddrReq
	}
	return w.Write(b)
}

// bufSetter is what a datagram socket offers for SO_RCVBUF and SO_SNDBUF (its own setters,
// whose wrapped errors setDgramOpt unwraps).
type bufSetter interface {
	SetReadBuffer(bytes int) error
	SetWriteBuffer(bytes int) error
}

// setDgramOpt sets the options every datagram socket sets alike: SO_RCVTIMEO and
// SO_SNDTIMEO (ms) in t, applied to d, and SO_RCVBUF and SO_SNDBUF through s. handled is
// false for any other option.
func setDgramOpt(t *callTimeouts, d deadliner, s bufSetter, level, name, v int) (handled bool, err error) {
	switch (optKey{level, name}) {
	case optKey{unix.SOL_SOCKET, unix.SO_RCVTIMEO}, optKey{unix.SOL_SOCKET, unix.SO_SNDTIMEO}:
		timeout, ok := msDuration(v)
		if !ok {
			return true, errInval
		}
		t.set(d, name == unix.SO_RCVTIMEO, timeout)
		return true, nil
	case optKey{unix.SOL_SOCKET, unix.SO_RCVBUF}:
		return true, unwrap(s.SetReadBuffer(v))
	case optKey{unix.SOL_SOCKET, unix.SO_SNDBUF}:
		return true, unwrap(s.SetWriteBuffer(v))
	}
	return false, nil
}

// getDgramOpt reads the options every datagram socket reports alike, before it asks its
// conn: SO_RCVTIMEO and SO_SNDTIMEO (ms) from t. handled is false for any other option.
func getDgramOpt(t *callTimeouts, level, name int) (v int, handled bool) {
	switch (optKey{level, name}) {
	case optKey{unix.SOL_SOCKET, unix.SO_RCVTIMEO}:
		return int(t.get(true).Milliseconds()), true
	case optKey{unix.SOL_SOCKET, unix.SO_SNDTIMEO}:
		return int(t.get(false).Milliseconds()), true
	}
	return 0, false
}

// mcastTTL checks an IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS value: 0..255, -1 for the
// default, 1.
func mcastTTL(v int) (int, bool) {
	if v == -1 {
		v = 1
	}
	return v, v >= 0 && v <= 255
}
