package endpoint

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/wispstack/wisp/endpoint/netconn"
)

// A Go conn has no non-blocking mode, so connect(2)'s EINPROGRESS and EALREADY have no
// natural place in Dial. StartDialTCP gives them one, honestly: it starts the handshake and
// returns at once with a conn that is still connecting and an error that errors.Is
// syscall.EINPROGRESS, as a non-blocking connect(2) does. A second Connect on that conn
// while the handshake runs fails with EALREADY; once connected, with EISCONN.
// WaitConnect (or the first Read or Write, which wait) reports how the connect ended, and
// GetsockoptInt(SOL_SOCKET, SO_ERROR) polls it without blocking.

// pendingConnect is a connect running in its own goroutine.
type pendingConnect struct {
	raddr  netip.AddrPort
	done   chan struct{} // closed when the dial has returned
	cancel context.CancelFunc
	closed atomic.Bool // Close was called

	mu     sync.Mutex
	conn   *netconn.TCPConn // set when done, nil if the connect failed
	err    error            // the connect's error, when it failed
	taken  bool             // the error was reported through SO_ERROR
	v6only bool             // the connect's IPV6_V6ONLY, reported until there is a PCB
}

// StartDialTCP starts connecting to raddr and returns without waiting, like connect(2) on
// a non-blocking socket. On success the conn is returned with an error that errors.Is
// syscall.EINPROGRESS (a *net.OpError, Op "dial"): the handshake goes on in the
// background. Errors known at once (no route, bad address) return a nil conn. Reads and
// writes on the conn wait for the handshake; Close abandons it.
func (n *Net) StartDialTCP(network string, laddr, raddr *net.TCPAddr) (*TCPConn, error) {
	f, err := parseNetwork(network, kindTCP)
	if err != nil {
		return nil, opError("dial", network, laddr, raddr, err)
	}
	la, ok1 := tcpAddrPort(laddr)
	ra, ok2 := tcpAddrPort(raddr)
	if !ok1 || !ok2 || !ra.Addr().IsValid() || !matchFamily(ra.Addr(), f) {
		return nil, opError("dial", network, laddr, raddr, errInval)
	}
	v6sock := f == fam6 || ra.Addr().Is6() && !ra.Addr().Is4In6()
	dst := ra.Addr().Unmap()
	if err := n.routeErr(dst); err != nil {
		return nil, opError("dial", network, laddr, raddr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &pendingConnect{raddr: netip.AddrPortFrom(dst, ra.Port()), done: make(chan struct{}), cancel: cancel}
	c := &TCPConn{n: n, network: network, v6sock: v6sock, pending: p, raddr: tcpAddrOf(ra, v6sock)}
	opts := &netconn.TCPOptions{NoDelay: true, V6Only: f == fam6}
	p.v6only = opts.V6Only
	go func() {
		nc, err := netconn.DialTCP(ctx, n.s, unmapAP(la), p.raddr, opts)
		c.timeo.mu.Lock()
		defer c.timeo.mu.Unlock()
		if nc != nil {
			_ = nc.SetReadDeadline(c.timeo.readDL)
			_ = nc.SetWriteDeadline(c.timeo.writeDL)
		}
		p.mu.Lock()
		p.conn, p.err = nc, err
		if p.closed.Load() && nc != nil {
			// Close came first: the conn was never handed out.
			nc.Abort()
			p.conn = nil
		}
		p.mu.Unlock()
		close(p.done)
	}()
	return c, opError("dial", network, laddr, c.raddr, errInProgress)
}

// wait blocks until the connect ends and returns the conn or the connect's error.
func (p *pendingConnect) wait(c *TCPConn) (*netconn.TCPConn, error) {
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return nil, net.ErrClosed
	}
	if p.err != nil {
		return nil, p.err
	}
	return p.conn, nil
}

// state returns, without blocking, whether the connect has ended and its conn and error.
func (p *pendingConnect) state() (done bool, conn *netconn.TCPConn, err error) {
	select {
	case <-p.done:
	default:
		return false, nil, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return true, p.conn, p.err
}

// close abandons the connect, or closes the conn it made.
func (p *pendingConnect) close() error {
	if p.closed.Swap(true) {
		return net.ErrClosed
	}
	p.cancel()
	<-p.done
	p.mu.Lock()
	conn := p.conn
	p.mu.Unlock()
	if conn != nil {
		return conn.Close()
	}
	return nil
}

// WaitConnect blocks until a connect begun by StartDialTCP has ended (or ctx is done) and
// returns its error: nil once connected. On a conn from Dial it returns nil at once.
func (c *TCPConn) WaitConnect(ctx context.Context) error {
	p := c.pending
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return c.err("dial", ctx.Err())
	}
	_, err := p.wait(c)
	return c.err("dial", err)
}

// Connect is connect(2) on a conn that already has a peer: EALREADY while the handshake
// begun by StartDialTCP is in progress, EISCONN once connected, or the error the connect
// failed with.
func (c *TCPConn) Connect(raddr *net.TCPAddr) error {
	p := c.pending
	if p == nil {
		return c.err("dial", errIsConn)
	}
	done, _, err := p.state()
	switch {
	case !done:
		return c.err("dial", errAlready)
	case err != nil:
		return c.err("dial", err)
	}
	return c.err("dial", errIsConn)
}

// soError is SO_ERROR for a pending connect: 0 while in progress or connected, the
// connect's errno once (then cleared, as the kernel does).
func (p *pendingConnect) soError() error {
	done, _, err := p.state()
	if !done || err == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.taken {
		return nil
	}
	p.taken = true
	return err
}
