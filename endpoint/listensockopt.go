package endpoint

import (
	"golang.org/x/sys/unix"
)

// GetsockoptInt reads an option of the listening socket: SO_ACCEPTCONN (1), SO_TYPE,
// SO_REUSEADDR, SO_ERROR (0), IPV6_V6ONLY, TCP_MAXSEG (ListenConfig.MSS, else 536 as
// Linux).
func (l *TCPListener) GetsockoptInt(level, name int) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch (optKey{level, name}) {
	case optKey{unix.SOL_SOCKET, unix.SO_ACCEPTCONN}:
		return 1, nil
	case optKey{unix.SOL_SOCKET, unix.SO_TYPE}:
		return unix.SOCK_STREAM, nil
	case optKey{unix.SOL_SOCKET, unix.SO_REUSEADDR}:
		return b2i(l.reuseAddr), nil
	case optKey{unix.SOL_SOCKET, unix.SO_ERROR}:
		return 0, nil
	case optKey{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY}:
		if l.v6sock {
			return b2i(l.v6only), nil
		}
	case optKey{unix.IPPROTO_TCP, unix.TCP_MAXSEG}:
		if l.mss > 0 {
			return l.mss, nil
		}
		return linuxDefaultMSS, nil
	}
	return 0, opError("get", l.network, nil, l.addr, errNoProtoOpt)
}

// SetsockoptInt on a listener: the options that matter (SO_REUSEADDR, IPV6_V6ONLY) act at
// bind, which Listen has done, so they fail with EINVAL (as Linux answers IPV6_V6ONLY
// on a bound socket). Set them before bind with ListenConfig.ReuseAddr and V6Only, and
// TCP_MAXSEG (which Linux takes on a listener too) with ListenConfig.MSS.
func (l *TCPListener) SetsockoptInt(level, name, v int) error {
	if _, err := l.GetsockoptInt(level, name); err != nil {
		return opError("set", l.network, nil, l.addr, errNoProtoOpt)
	}
	return opError("set", l.network, nil, l.addr, errInval)
}
