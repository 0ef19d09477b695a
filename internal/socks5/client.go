package socks5

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Method X'02' username/password (RFC 1928 §3, RFC 1929).
const MethodUserPass = 0x02

// Client dials through a SOCKS 5 server: CONNECT for TCP (Dial, DialAddrPort) and UDP
// ASSOCIATE for UDP (Associate). The zero value is not usable: Server is required. A
// Client is safe for concurrent use; every call opens its own connection to the server.
type Client struct {
	// Server is the SOCKS server's address, HOST:PORT.
	Server string
	// Username and Password, if Username is set, are offered with RFC 1929's
	// username/password method besides "no authentication".
	Username, Password string
	// DialServer reaches the server (nil: a net.Dialer).
	DialServer DialFunc
	// HandshakeTimeout bounds the connection to the server, the negotiation and the
	// server's reply — which comes after its own dial (0: DefaultClientTimeout). A
	// context deadline that comes sooner wins.
	HandshakeTimeout time.Duration
}

// DefaultClientTimeout is Client.HandshakeTimeout's default.
const DefaultClientTimeout = 30 * time.Second

// ReplyError is a server's refusal of a request: a reply other than X'00' (RFC 1928 §6).
// It unwraps to the errno of the cause it names, so that errors.Is(err,
// syscall.ECONNREFUSED) holds for a refused connection (a TUN proxy answers it with a
// RST): X'05' ECONNREFUSED, X'03' ENETUNREACH, X'04' EHOSTUNREACH, X'06' ETIMEDOUT, X'02'
// EACCES, X'07' EOPNOTSUPP, X'08' EAFNOSUPPORT; a general failure (X'01') or an unknown
// code unwraps to nothing.
type ReplyError struct{ Reply Reply }

func (e *ReplyError) Error() string { return "socks5: server replied: " + e.Reply.String() }

// Unwrap returns the errno the reply names, or nil.
func (e *ReplyError) Unwrap() error {
	if errno := e.Reply.Errno(); errno != 0 {
		return errno
	}
	return nil
}

// Errno returns the errno a reply names (see ReplyError), or 0.
func (r Reply) Errno() syscall.Errno {
	switch r {
	case NotAllowed:
		return syscall.EACCES
	case NetworkUnreachable:
		return syscall.ENETUNREACH
	case HostUnreachable:
		return syscall.EHOSTUNREACH
	case ConnectionRefused:
		return syscall.ECONNREFUSED
	case TTLExpired:
		return syscall.ETIMEDOUT
	case CommandNotSupported:
		return syscall.EOPNOTSUPP
	case AddressNotSupported:
		return syscall.EAFNOSUPPORT
	}
	return 0
}

// ErrProtocol is wrapped by the errors of a server that answers something that is not
// SOCKS 5 (or closes the connection mid-answer).
var ErrProtocol = errors.New("socks5: protocol violation by the server")

// ErrAuth is wrapped when the server accepts none of the methods offered, or refuses the
// username and password.
var ErrAuth = errors.New("socks5: authentication refused")

// hostAddr is a destination as a net.Addr, for *net.OpError.
type hostAddr struct{ network, addr string }

func (a hostAddr) Network() string { return a.network }
func (a hostAddr) String() string  { return a.addr }

// Dial connects to addr (host:port; host an IP literal or a domain name, which the server
// resolves) through the server with CONNECT. network is "tcp", "tcp4" or "tcp6" (the
// family is the server's business; it is not checked against addr). Errors are
// *net.OpError with Op "dial", wrapping a *ReplyError for a refusal, ErrProtocol for
// garbage, ErrAuth, or the error of the connection to the server (a timeout is
// os.ErrDeadlineExceeded, or the context's error).
func (c *Client) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	req, err := requestFor(CmdConnect, addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: hostAddr{network, addr}, Err: err}
	}
	return c.connect(ctx, network, req, hostAddr{network, addr})
}

// DialAddrPort connects to dst through the server with CONNECT (see Dial).
func (c *Client) DialAddrPort(ctx context.Context, dst netip.AddrPort) (net.Conn, error) {
	req := Request{Cmd: CmdConnect, Addr: dst.Addr().Unmap().WithZone(""), Port: dst.Port()}
	return c.connect(ctx, "tcp", req, net.TCPAddrFromAddrPort(dst))
}

func (c *Client) connect(ctx context.Context, network string, req Request, dst net.Addr) (net.Conn, error) {
	conn, _, err := c.request(ctx, req)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: dst, Err: err}
	}
	return conn, nil
}

// requestFor parses host:port into a request; an IP literal becomes an address, anything
// else a domain name.
func requestFor(cmd byte, addr string) (Request, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return Request{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return Request{}, fmt.Errorf("port %q: not a number in [0, 65535]", port)
	}
	req := Request{Cmd: cmd, Port: uint16(p)}
	if a, err := netip.ParseAddr(host); err == nil {
		req.Addr = a.Unmap().WithZone("")
		return req, nil
	}
	if host == "" || len(host) > 255 {
		return Request{}, fmt.Errorf("host %q: a domain name is 1 to 255 bytes", host)
	}
	req.Domain = host
	return req, nil
}

// request connects to the server, negotiates, sends req and reads the reply. On success
// it returns the connection (deadlines cleared) and the reply's BND address.
func (c *Client) request(ctx context.Context, req Request) (conn net.Conn, bnd netip.AddrPort, err error) {
	timeout := c.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultClientTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dial := c.DialServer
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	sc, err := dial(ctx, "tcp", c.Server)
	if err != nil {
		return nil, bnd, err
	}
	conn = sc // the AfterFunc below holds sc: conn is a result, nil on failure
	// The context bounds the whole exchange: its deadline is the connection's, and a
	// cancellation breaks a blocked read at once.
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = sc.SetDeadline(time.Unix(1, 0)) })
	bnd, err = c.exchange(conn, req)
	if !stop() && err == nil {
		err = ctx.Err() // ended as the reply came: the deadline is in the past now
	}
	if err != nil {
		conn.Close()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The connection's deadline is the context's: once it has passed, the
			// context is done (or about to be), and its error says which bound it was.
			if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
				<-ctx.Done()
			}
			if cerr := ctx.Err(); cerr != nil {
				err = fmt.Errorf("%w (%w)", err, cerr)
			}
		}
		return nil, bnd, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, bnd, nil
}

// exchange negotiates, sends req and reads the reply.
func (c *Client) exchange(conn net.Conn, req Request) (netip.AddrPort, error) {
	if err := c.negotiate(conn); err != nil {
		return netip.AddrPort{}, err
	}
	if _, err := conn.Write(req.Append(nil)); err != nil {
		return netip.AddrPort{}, err
	}
	rep, bnd, err := ReadReply(conn)
	if err != nil {
		return bnd, err
	}
	if rep != Succeeded {
		return bnd, &ReplyError{Reply: rep}
	}
	return bnd, nil
}

// negotiate sends the greeting (RFC 1928 §3) and runs the method the server picks.
func (c *Client) negotiate(conn net.Conn) error {
	greet := []byte{Version, 1, MethodNoAuth}
	if c.Username != "" {
		greet = []byte{Version, 2, MethodNoAuth, MethodUserPass}
	}
	if _, err := conn.Write(greet); err != nil {
		return err
	}
	var sel [2]byte
	if _, err := io.ReadFull(conn, sel[:]); err != nil {
		return garbage(err, "method selection")
	}
	if sel[0] != Version {
		return fmt.Errorf("%w: method selection of version %d, not 5", ErrProtocol, sel[0])
	}
	switch {
	case sel[1] == MethodNoAuth:
		return nil
	case sel[1] == MethodUserPass && c.Username != "":
		return c.userPass(conn)
	case sel[1] == MethodNoAcceptable:
		return fmt.Errorf("%w: the server accepts none of the methods offered (%v)", ErrAuth, greet[2:])
	}
	return fmt.Errorf("%w: the server picked method %d, which was not offered", ErrProtocol, sel[1])
}

// userPass runs RFC 1929's subnegotiation:
//
//	+----+------+----------+------+----------+
//	|VER | ULEN |  UNAME   | PLEN |  PASSWD  |
//	+----+------+----------+------+----------+
//	| 1  |  1   | 1 to 255 |  1   | 1 to 255 |
func (c *Client) userPass(conn net.Conn) error {
	if len(c.Username) > 255 || len(c.Password) > 255 {
		return fmt.Errorf("%w: username and password are at most 255 bytes each", ErrAuth)
	}
	b := append([]byte{1, byte(len(c.Username))}, c.Username...)
	b = append(append(b, byte(len(c.Password))), c.Password...)
	if _, err := conn.Write(b); err != nil {
		return err
	}
	var st [2]byte
	if _, err := io.ReadFull(conn, st[:]); err != nil {
		return garbage(err, "authentication status")
	}
	if st[0] != 1 {
		return fmt.Errorf("%w: authentication status of version %d, not 1", ErrProtocol, st[0])
	}
	// RFC 1929 §2: "A STATUS field of X'00' indicates success."
	if st[1] != 0 {
		return fmt.Errorf("%w: username/password status %d", ErrAuth, st[1])
	}
	return nil
}

// garbage names a stream that ended mid-answer as a protocol violation; other errors (a
// timeout, a reset) stay what they are.
func garbage(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: connection closed in the %s", ErrProtocol, what)
	}
	return err
}

// ReadReply reads one reply (RFC 1928 §6) and returns its REP and BND.ADDR:BND.PORT (a
// domain-name BND.ADDR is read and given as the zero address). It reads exactly the
// reply's bytes. A reply that is not SOCKS 5 is an error wrapping ErrProtocol.
func ReadReply(r io.Reader) (Reply, netip.AddrPort, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, netip.AddrPort{}, garbage(err, "reply")
	}
	if hdr[0] != Version {
		return 0, netip.AddrPort{}, fmt.Errorf("%w: reply of version %d, not 5", ErrProtocol, hdr[0])
	}
	rep := Reply(hdr[1])
	var buf [255 + 2]byte
	var a netip.Addr
	var n int
	switch hdr[3] {
	case AtypIPv4:
		n = 4
	case AtypIPv6:
		n = 16
	case AtypDomain:
		if _, err := io.ReadFull(r, buf[:1]); err != nil {
			return rep, netip.AddrPort{}, garbage(err, "reply")
		}
		n = int(buf[0])
	default:
		if rep != Succeeded {
			// Some servers send a failure without a valid address: the code is what counts.
			return rep, netip.AddrPort{}, nil
		}
		return rep, netip.AddrPort{}, fmt.Errorf("%w: reply with address type %d", ErrProtocol, hdr[3])
	}
	if _, err := io.ReadFull(r, buf[:n+2]); err != nil {
		if rep != Succeeded {
			return rep, netip.AddrPort{}, nil
		}
		return rep, netip.AddrPort{}, garbage(err, "reply")
	}
	switch hdr[3] {
	case AtypIPv4:
		a = netip.AddrFrom4([4]byte(buf[:4]))
	case AtypIPv6:
		a = netip.AddrFrom16([16]byte(buf[:16])).Unmap()
	}
	return rep, netip.AddrPortFrom(a, binary.BigEndian.Uint16(buf[n:])), nil
}
