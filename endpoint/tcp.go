package endpoint

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/errs"
)

// TCPConn is a TCP connection: a net.Conn with the methods of *net.TCPConn that make sense
// without a file descriptor (no SyscallConn, File or MultipathTCP). Every method is safe for
// concurrent use; Close unblocks every Read and Write in progress.
type TCPConn struct {
	n       *Net
	network string
	v6sock  bool // an AF_INET6 socket: IPv4 addresses are reported v4-mapped

	// conn is set once connected; nil only while a StartDialTCP connect is in progress.
	conn    *netconn.TCPConn
	pending *pendingConnect

	laddr, raddr *net.TCPAddr
	timeo        callTimeouts
	resetShown   atomic.Bool // a Read or Write reported ECONNRESET (see afterReset)
}

func (n *Net) newTCPConn(network string, v6sock bool, c *netconn.TCPConn) *TCPConn {
	tc := &TCPConn{n: n, network: network, v6sock: v6sock, conn: c}
	tc.setAddrs()
	return tc
}

func (c *TCPConn) setAddrs() {
	c.laddr = tcpAddrOf(c.conn.LocalAddr(), c.v6sock)
	c.raddr = tcpAddrOf(c.conn.RemoteAddr(), c.v6sock)
}

func (c *TCPConn) err(op string, err error) error {
	return opError(op, c.network, c.laddr, c.raddr, err)
}

// Read reads data; io.EOF once the peer has closed its side and everything was read.
func (c *TCPConn) Read(b []byte) (int, error) {
	nc, err := c.ready()
	if err != nil {
		return 0, c.err("read", err)
	}
	c.timeo.arm(nc, true)
	n, err := nc.Read(b)
	if err != nil {
		if err = c.afterReset(err, false); err == io.EOF {
			return n, err
		}
		return n, c.err("read", c.timeo.fix(err, true))
	}
	return n, nil
}

// Write writes b, blocking while the send buffer is full.
func (c *TCPConn) Write(b []byte) (int, error) {
	nc, err := c.ready()
	if err != nil {
		return 0, c.err("write", err)
	}
	c.timeo.arm(nc, false)
	n, err := nc.Write(b)
	if err != nil {
		return n, c.err("write", c.timeo.fix(writeErrno(c.afterReset(err, true)), false))
	}
	return n, nil
}

// afterReset maps the error of a call on a connection the peer reset as Linux does: the
// reset is reported once (ECONNRESET: the pending error is cleared when a call returns
// it); afterwards reads see end of file and writes EPIPE.
func (c *TCPConn) afterReset(err error, write bool) error {
	if !errors.Is(err, errs.Rst) || c.resetShown.CompareAndSwap(false, true) {
		return err
	}
	if write {
		return syscall.EPIPE
	}
	return io.EOF
}

// writeErrno maps a write's error: errs.Clsd, which netconn reports once the sending side
// is shut down (CloseWrite, or the connection ended after it), is EPIPE, as Linux's
// tcp_sendmsg reports it (sk_stream_error), where lwIP's err_to_errno says ENOTCONN.
func writeErrno(err error) error {
	if err == errs.Clsd {
		return syscall.EPIPE
	}
	return err
}

// Close closes the connection (gracefully, or with RST after SetLinger(0)); it unblocks
// Read and Write calls in progress.
func (c *TCPConn) Close() error {
	if p := c.pending; p != nil {
		return c.err("close", p.close())
	}
	return c.err("close", c.conn.Close())
}

// CloseRead shuts down the reading side.
func (c *TCPConn) CloseRead() error {
	nc, err := c.ready()
	if err == nil {
		err = nc.CloseRead()
	}
	return c.err("close", err)
}

// CloseWrite shuts down the writing side (sends FIN).
func (c *TCPConn) CloseWrite() error {
	nc, err := c.ready()
	if err == nil {
		err = nc.CloseWrite()
	}
	return c.err("close", err)
}

// Abort resets the connection at once (RST), freeing it.
func (c *TCPConn) Abort() {
	if p := c.pending; p != nil {
		if done, nc, _ := p.state(); done && nc != nil {
			nc.Abort()
		}
		_ = p.close()
		return
	}
	c.conn.Abort()
}

// LocalAddr returns the local address (a *net.TCPAddr).
func (c *TCPConn) LocalAddr() net.Addr {
	if p := c.pending; p != nil {
		if done, nc, _ := p.state(); done && nc != nil {
			return tcpAddrOf(nc.LocalAddr(), c.v6sock)
		}
		return nil
	}
	return c.laddr
}

// RemoteAddr returns the peer's address (a *net.TCPAddr).
func (c *TCPConn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline sets the read and write deadlines (zero: none).
func (c *TCPConn) SetDeadline(t time.Time) error { return c.setDeadlines(true, true, t) }

func (c *TCPConn) setDeadlines(read, write bool, t time.Time) error {
	if c.pending == nil {
		return c.err("set", c.timeo.setDeadlines(c.conn, read, write, t))
	}
	// A connecting conn records the deadlines; the connect applies them when it publishes
	// the conn, under the same lock, so none is lost.
	c.timeo.mu.Lock()
	defer c.timeo.mu.Unlock()
	done, nc, err := c.pending.state()
	if done && nc == nil {
		return c.err("set", err)
	}
	if read {
		c.timeo.readDL = t
	}
	if write {
		c.timeo.writeDL = t
	}
	if nc != nil {
		if read {
			_ = nc.SetReadDeadline(t)
		}
		if write {
			_ = nc.SetWriteDeadline(t)
		}
	}
	return nil
}

// SetReadDeadline sets the deadline of Read calls, those in progress included.
func (c *TCPConn) SetReadDeadline(t time.Time) error { return c.setDeadlines(true, false, t) }

// SetWriteDeadline sets the deadline of Write calls, those in progress included.
func (c *TCPConn) SetWriteDeadline(t time.Time) error { return c.setDeadlines(false, true, t) }

// Buffered returns the bytes that can be read now without blocking (FIONREAD).
func (c *TCPConn) Buffered() int {
	nc, err := c.ready()
	if err != nil {
		return 0
	}
	return nc.Buffered()
}

// ReadFrom copies r into the connection until EOF (io.Copy's fast path: no intermediate
// allocation per call beyond one pooled buffer).
func (c *TCPConn) ReadFrom(r io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(writerOnly{c}, r, *bp)
}

// WriteTo copies the connection into w until EOF without an intermediate copy: each
// received pbuf is handed to w as it sits in stack memory (io.Copy's fast path).
func (c *TCPConn) WriteTo(w io.Writer) (int64, error) {
	nc, err := c.ready()
	if err != nil {
		return 0, c.err("read", err)
	}
	// A received chain is many pbufs (a 64 KiB GRO segment is 32 POOL buffers): they go to
	// w in one net.Buffers write, which a kernel socket makes one writev, not one write
	// each. The two slice headers come from a pool, so nothing is allocated per chain.
	base, work := writeToBufs.Get().(*net.Buffers), writeToBufs.Get().(*net.Buffers)
	defer func() {
		clear((*base)[:cap(*base)])
		*base, *work = (*base)[:0], nil
		writeToBufs.Put(base)
		writeToBufs.Put(work)
	}()
	var total int64
	for {
		c.timeo.arm(nc, true)
		buf, err := nc.Recv()
		if err != nil {
			err = c.afterReset(err, false)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, c.err("read", c.timeo.fix(err, true))
		}
		views := append((*base)[:0], buf.Bytes()...)
		*base, *work = views[:0], views
		n := int64(buf.Len())
		m, werr := work.WriteTo(w)
		total += m
		if werr == nil && m < n {
			werr = io.ErrShortWrite
		}
		buf.Release()
		if werr != nil {
			return total, werr
		}
	}
}

// writeToBufs holds the slice headers of WriteTo's vectored writes.
var writeToBufs = sync.Pool{New: func() any { return new(net.Buffers) }}

type writerOnly struct{ io.Writer }

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// ready returns the netconn conn, waiting for a StartDialTCP connect to finish.
func (c *TCPConn) ready() (*netconn.TCPConn, error) {
	if c.pending == nil {
		return c.conn, nil
	}
	return c.pending.wait(c)
}

// dialTCP connects to raddr from laddr (zero: chosen by the route).
func (n *Net) dialTCP(ctx context.Context, network string, f family, laddr, raddr netip.AddrPort, bo bindOpts) (*TCPConn, error) {
	v6sock := f == fam6 || raddr.Addr().Is6() && !raddr.Addr().Is4In6()
	ra := tcpAddrOf(raddr, v6sock)
	var la net.Addr
	if laddr.IsValid() {
		la = tcpAddrOf(laddr, v6sock)
	}
	dst := raddr.Addr().Unmap()
	if err := n.routeErr(dst); err != nil {
		return nil, opError("dial", network, la, ra, err)
	}
	if bo.mss < 0 {
		return nil, opError("dial", network, la, ra, errInval)
	}
	o := &netconn.TCPOptions{NoDelay: true, V6Only: f == fam6, ReuseAddr: bo.reuseAddr, MSS: bo.mss}
	c, err := netconn.DialTCP(ctx, n.s, unmapAP(laddr), netip.AddrPortFrom(dst, raddr.Port()), o)
	if err != nil {
		return nil, opError("dial", network, la, ra, err)
	}
	return n.newTCPConn(network, v6sock, c), nil
}

func unmapAP(ap netip.AddrPort) netip.AddrPort {
	if !ap.Addr().Is4In6() {
		return ap
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// DialTCP connects as net.DialTCP: network "tcp", "tcp4" or "tcp6"; laddr may be nil.
func (n *Net) DialTCP(network string, laddr, raddr *net.TCPAddr) (*TCPConn, error) {
	return n.DialContextTCP(context.Background(), network, laddr, raddr)
}

// DialContextTCP is DialTCP with a context bounding the connect.
func (n *Net) DialContextTCP(ctx context.Context, network string, laddr, raddr *net.TCPAddr) (*TCPConn, error) {
	f, err := parseNetwork(network, kindTCP)
	if err != nil {
		return nil, opError("dial", network, laddr, raddr, err)
	}
	if raddr == nil {
		return nil, opError("dial", network, laddr, nil, errMissingAddr)
	}
	la, ok1 := tcpAddrPort(laddr)
	ra, ok2 := tcpAddrPort(raddr)
	if !ok1 || !ok2 || !ra.Addr().IsValid() {
		return nil, opError("dial", network, laddr, raddr, errInval)
	}
	if !matchFamily(ra.Addr(), f) {
		return nil, opError("dial", network, laddr, raddr, errAFNoSupport)
	}
	return n.dialTCP(ctx, network, f, la, ra, bindOpts{})
}

// DialTCPAddrPort connects to raddr ("tcp4" or "tcp6" by its family), as wireguard-go's
// netstack Net.DialTCPAddrPort.
func (n *Net) DialTCPAddrPort(raddr netip.AddrPort) (*TCPConn, error) {
	return n.DialContextTCPAddrPort(context.Background(), raddr)
}

// DialContextTCPAddrPort is DialTCPAddrPort with a context bounding the connect.
func (n *Net) DialContextTCPAddrPort(ctx context.Context, raddr netip.AddrPort) (*TCPConn, error) {
	network, f := "tcp4", fam4
	if raddr.Addr().Is6() && !raddr.Addr().Is4In6() {
		network, f = "tcp6", fam6
	}
	return n.dialTCP(ctx, network, f, netip.AddrPort{}, raddr, bindOpts{})
}
