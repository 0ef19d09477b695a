package endpoint

import (
	"net"

	"github.com/wispstack/wisp/endpoint/netconn"
)

// WrapTCPConn returns the socket-layer connection of c, a connection netconn made outside
// this package (the forwarder's intercepted connections, netconn.AdoptTCP): a net.Conn
// with CloseRead/CloseWrite, keepalive, linger and NoDelay, and errors mapped to
// syscall.Errno like every TCPConn's. Its network is "tcp"; addresses are reported as the
// connection has them (IPv4 unmapped).
func (n *Net) WrapTCPConn(c *netconn.TCPConn) *TCPConn { return n.newTCPConn("tcp", false, c) }

// OpError wraps err as the socket layer wraps its own: nil and io.EOF unchanged, anything
// else a *net.OpError whose Err is a syscall.Errno (the core's errs.* mapped once),
// os.ErrDeadlineExceeded, net.ErrClosed or a context error. For layers above endpoint (the
// forwarder) whose errors should read like a socket's.
func OpError(op, network string, src, dst net.Addr, err error) error {
	return opError(op, network, src, dst, err)
}
