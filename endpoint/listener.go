package endpoint

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/wispstack/wisp/endpoint/netconn"
)

// TCPListener is a TCP listener: a net.Listener with AcceptTCP and SetDeadline, as
// *net.TCPListener. Every method is safe for concurrent use; Close unblocks Accept.
type TCPListener struct {
	n       *Net
	l       *netconn.TCPListener
	network string
	v6sock  bool
	addr    *net.TCPAddr
	ka      Dialer // keep-alive settings applied to accepted conns

	mu        sync.Mutex
	reuseAddr bool
	v6only    bool
	mss       int // TCP_MAXSEG (ListenConfig.MSS); the PCB gives it to accepted conns
}

// listenTCP listens on laddr; an invalid address means every local address (dual-stack on
// "tcp").
func (n *Net) listenTCP(network string, f family, laddr netip.AddrPort, bo bindOpts) (*TCPListener, error) {
	a := laddr.Addr()
	v6sock := f == fam6 || f == famAny && (!a.IsValid() || a.Is6() && !a.Is4In6())
	if bo.mss < 0 {
		return nil, opError("listen", network, nil, tcpAddrOf(laddr, v6sock), errInval)
	}
	// TCP listeners always have SO_REUSEADDR, as package net gives them on Linux: a server
	// listens again on its port while its old connections finish.
	o := &netconn.ListenOptions{V6Only: f == fam6 || bo.v6only && v6sock, ReuseAddr: true, MSS: bo.mss}
	switch {
	case !a.IsValid():
		a = wildcard(f) // "::" without V6Only listens on both families
	case f != fam6:
		a = a.Unmap()
	}
	la := tcpAddrOf(netip.AddrPortFrom(a, laddr.Port()), v6sock)
	l, err := netconn.ListenTCP(n.s, netip.AddrPortFrom(a, laddr.Port()), o)
	if err != nil {
		return nil, opError("listen", network, nil, la, err)
	}
	tl := &TCPListener{n: n, l: l, network: network, v6sock: v6sock, v6only: o.V6Only, reuseAddr: o.ReuseAddr, mss: o.MSS}
	tl.addr = tcpAddrOf(l.Addr(), v6sock)
	return tl, nil
}

// ListenTCP listens as net.ListenTCP: network "tcp", "tcp4" or "tcp6"; laddr nil or with
// a nil IP listens on every address (dual-stack on "tcp"), port 0 picks a free port.
func (n *Net) ListenTCP(network string, laddr *net.TCPAddr) (*TCPListener, error) {
	f, err := parseNetwork(network, kindTCP)
	if err != nil {
		return nil, opError("listen", network, nil, laddr, err)
	}
	la, ok := tcpAddrPort(laddr)
	if !ok || la.Addr().IsValid() && !matchFamily(la.Addr(), f) {
		return nil, opError("listen", network, nil, laddr, errInval)
	}
	return n.listenTCP(network, f, la, bindOpts{})
}

// ListenTCPAddrPort listens on laddr ("tcp4" or "tcp6" by its family; an invalid address
// listens dual-stack), as wireguard-go's netstack Net.ListenTCPAddrPort.
func (n *Net) ListenTCPAddrPort(laddr netip.AddrPort) (*TCPListener, error) {
	network, f := "tcp", famAny
	switch a := laddr.Addr(); {
	case a.Is4() || a.Is4In6():
		network, f = "tcp4", fam4
	case a.Is6() && !a.IsUnspecified():
		network, f = "tcp6", fam6
	}
	return n.listenTCP(network, f, laddr, bindOpts{})
}

// Accept waits for the next connection (a *TCPConn).
func (l *TCPListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AcceptTCP waits for the next connection.
func (l *TCPListener) AcceptTCP() (*TCPConn, error) {
	nc, err := l.l.Accept()
	if err != nil {
		return nil, opError("accept", l.network, nil, l.addr, err)
	}
	c := l.n.newTCPConn(l.network, l.v6sock, nc) // its PCB has the listener's bind-time options, as on Linux
	if l.ka.KeepAlive >= 0 || l.ka.KeepAliveConfig.Enable {
		l.ka.keepAlive(c)
	}
	return c, nil
}

// Close stops listening; connections not yet accepted are reset. Accept calls in progress
// return net.ErrClosed.
func (l *TCPListener) Close() error {
	return opError("close", l.network, nil, l.addr, l.l.Close())
}

// Shutdown is Close, for code written against gVisor's gonet.TCPListener.
func (l *TCPListener) Shutdown() { _ = l.Close() }

// Addr returns the listening address (a *net.TCPAddr).
func (l *TCPListener) Addr() net.Addr { return l.addr }

// SetDeadline sets the deadline of Accept calls (zero: none).
func (l *TCPListener) SetDeadline(t time.Time) error {
	return opError("set", l.network, nil, l.addr, l.l.SetDeadline(t))
}
