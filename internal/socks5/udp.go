package socks5

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// UDPHeader is the header a SOCKS server and its client put before every datagram they
// relay for a UDP association (RFC 1928 §7):
//
//	+----+------+------+----------+----------+----------+
//	|RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |
//	+----+------+------+----------+----------+----------+
//	| 2  |  1   |  1   | Variable |    2     | Variable |
//
// Client to server, the address is the datagram's destination; server to client, the
// source it came from. Addr is kept as the wire carried it (a 4-in-6 address stays IPv6).
type UDPHeader struct {
	Frag   byte
	Addr   netip.Addr // for AtypIPv4 and AtypIPv6
	Domain string     // for AtypDomain
	Port   uint16
}

// MaxUDPHeader is the longest header: a 255-byte domain name.
const MaxUDPHeader = 4 + 1 + 255 + 2

// Append appends the header's wire form to b.
func (h UDPHeader) Append(b []byte) []byte {
	b = append(b, 0, 0, h.Frag)
	b = appendAddr(b, h.Addr, h.Domain)
	return binary.BigEndian.AppendUint16(b, h.Port)
}

// AddrPort returns the header's address and port (the zero AddrPort for a domain name).
func (h UDPHeader) AddrPort() netip.AddrPort {
	if h.Domain != "" {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(h.Addr, h.Port)
}

// ErrUDPHeader is wrapped by ParseUDPHeader's errors.
var ErrUDPHeader = errors.New("socks5: bad UDP request header")

// ParseUDPHeader parses the header at the start of a relayed datagram b and returns it and
// its length (the data is b[n:]). It allocates only for a domain name. The RSV field is
// not checked (RFC 1122 §1.2.2); FRAG is returned for the caller to judge (§7: a client
// that does not reassemble drops datagrams whose FRAG is not X'00').
func ParseUDPHeader(b []byte) (h UDPHeader, n int, err error) {
	if len(b) < 4 {
		return h, 0, fmt.Errorf("%w: %d bytes", ErrUDPHeader, len(b))
	}
	h.Frag = b[2]
	switch b[3] {
	case AtypIPv4:
		if len(b) < 4+4+2 {
			return h, 0, fmt.Errorf("%w: IPv4 header of %d bytes", ErrUDPHeader, len(b))
		}
		h.Addr = netip.AddrFrom4([4]byte(b[4:8]))
		n = 8
	case AtypIPv6:
		if len(b) < 4+16+2 {
			return h, 0, fmt.Errorf("%w: IPv6 header of %d bytes", ErrUDPHeader, len(b))
		}
		h.Addr = netip.AddrFrom16([16]byte(b[4:20]))
		n = 20
	case AtypDomain:
		if len(b) < 5 || b[4] == 0 || len(b) < 5+int(b[4])+2 {
			return h, 0, fmt.Errorf("%w: domain-name header of %d bytes", ErrUDPHeader, len(b))
		}
		n = 5 + int(b[4])
		h.Domain = string(b[5:n])
	default:
		return h, 0, fmt.Errorf("%w: address type %d", ErrUDPHeader, b[3])
	}
	h.Port = binary.BigEndian.Uint16(b[n:])
	return h, n + 2, nil
}

// ErrAssociationEnded is returned by a UDPConn's reads and writes once the server has
// closed the association's control connection (RFC 1928 §7: "A UDP association terminates
// when the TCP connection that the UDP ASSOCIATE request arrived on terminates").
var ErrAssociationEnded = errors.New("socks5: the server ended the UDP association (its TCP connection closed)")

// UDPConn is a UDP association (RFC 1928 §7): datagrams to any destination, relayed by the
// server, and the datagrams that come back. It holds the association's TCP connection open
// until Close. It is safe for concurrent use; it implements net.PacketConn.
type UDPConn struct {
	ctrl  net.Conn
	udp   *net.UDPConn // connected to the relay: the kernel keeps other sources out
	relay netip.AddrPort
	done  chan struct{} // closed when the control watcher has returned
	ended atomic.Bool   // the server closed the control connection
	once  sync.Once
	drops atomic.Uint64
}

// Associate opens a UDP association. The request names no client address (0.0.0.0:0, RFC
// 1928 §7: the client does not know it yet), so the server takes the association's
// datagrams from the address the first one comes from. Errors are as Dial's, with Op
// "associate".
func (c *Client) Associate(ctx context.Context) (*UDPConn, error) {
	req := Request{Cmd: CmdUDPAssociate, Addr: netip.IPv4Unspecified()}
	ctrl, bnd, err := c.request(ctx, req)
	if err != nil {
		return nil, &net.OpError{Op: "associate", Net: "udp", Addr: hostAddr{"tcp", c.Server}, Err: err}
	}
	relay := bnd
	if !relay.Addr().IsValid() || relay.Addr().IsUnspecified() {
		// A server bound to every address answers 0.0.0.0 (or ::): its datagrams come
		// from the address its TCP connection reached.
		relay = netip.AddrPortFrom(addrPortOf(ctrl.RemoteAddr()).Addr().Unmap(), bnd.Port())
	}
	if !relay.IsValid() || relay.Port() == 0 {
		ctrl.Close()
		return nil, &net.OpError{Op: "associate", Net: "udp", Addr: hostAddr{"tcp", c.Server},
			Err: fmt.Errorf("%w: relay address %v", ErrProtocol, bnd)}
	}
	udp, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(relay))
	if err != nil {
		ctrl.Close()
		return nil, &net.OpError{Op: "associate", Net: "udp", Addr: net.UDPAddrFromAddrPort(relay), Err: err}
	}
	u := &UDPConn{ctrl: ctrl, udp: udp, relay: relay, done: make(chan struct{})}
	go u.watch()
	return u, nil
}

// watch waits for the control connection to end (the server sends nothing on it after the
// reply) and then ends the association.
func (u *UDPConn) watch() {
	defer close(u.done)
	_, _ = io.Copy(io.Discard, u.ctrl)
	u.ended.Store(true)
	u.udp.Close()
}

// Relay returns the address the server relays datagrams from.
func (u *UDPConn) Relay() netip.AddrPort { return u.relay }

// Drops returns how many datagrams from the relay were dropped: a bad header, a fragment,
// a domain-name source.
func (u *UDPConn) Drops() uint64 { return u.drops.Load() }

var udpBufs = sync.Pool{New: func() any { b := make([]byte, 0, MaxUDPHeader+65536); return &b }}

// WriteToAddrPort sends b to dst through the relay.
func (u *UDPConn) WriteToAddrPort(b []byte, dst netip.AddrPort) (int, error) {
	return u.write(b, UDPHeader{Addr: dst.Addr().Unmap().WithZone(""), Port: dst.Port()})
}

// WriteTo sends b to addr through the relay: a *net.UDPAddr, or any net.Addr whose String
// is host:port (a domain name is resolved by the server).
func (u *UDPConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok {
		return u.WriteToAddrPort(b, ua.AddrPort())
	}
	req, err := requestFor(0, addr.String())
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: err}
	}
	return u.write(b, UDPHeader{Addr: req.Addr, Domain: req.Domain, Port: req.Port})
}

func (u *UDPConn) write(b []byte, h UDPHeader) (int, error) {
	bp := udpBufs.Get().(*[]byte)
	defer udpBufs.Put(bp)
	buf := append(h.Append((*bp)[:0]), b...)
	*bp = buf[:0]
	if _, err := u.udp.Write(buf); err != nil {
		return 0, u.wrap(err)
	}
	return len(b), nil
}

// ReadFromAddrPort reads the next datagram relayed back and returns its length and the
// address it came from. Datagrams that cannot be parsed, fragments and domain-name sources
// are dropped (counted in Drops). b is also the receive buffer: the header is read into it
// and the data moved to its start, so give room for both.
func (u *UDPConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, err := u.udp.Read(b)
		if err != nil {
			return 0, netip.AddrPort{}, u.wrap(err)
		}
		h, hn, err := ParseUDPHeader(b[:n])
		if err != nil || h.Frag != 0 || h.Domain != "" {
			u.drops.Add(1)
			continue
		}
		return copy(b, b[hn:n]), netip.AddrPortFrom(h.Addr.Unmap(), h.Port), nil
	}
}

// ReadFrom is ReadFromAddrPort with a *net.UDPAddr.
func (u *UDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := u.ReadFromAddrPort(b)
	if err != nil {
		return 0, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

func (u *UDPConn) wrap(err error) error {
	if u.ended.Load() && errors.Is(err, net.ErrClosed) {
		return &net.OpError{Op: "read", Net: "udp", Addr: net.UDPAddrFromAddrPort(u.relay), Err: ErrAssociationEnded}
	}
	return err
}

// Close ends the association: it closes the TCP connection (the server then frees its
// relay) and the UDP socket, and waits for the watcher.
func (u *UDPConn) Close() error {
	var err error
	u.once.Do(func() {
		err = u.ctrl.Close()
		u.udp.Close()
		<-u.done
	})
	return err
}

// LocalAddr returns the UDP socket's address.
func (u *UDPConn) LocalAddr() net.Addr { return u.udp.LocalAddr() }

// SetDeadline sets the UDP socket's read and write deadlines.
func (u *UDPConn) SetDeadline(t time.Time) error { return u.udp.SetDeadline(t) }

// SetReadDeadline sets the UDP socket's read deadline.
func (u *UDPConn) SetReadDeadline(t time.Time) error { return u.udp.SetReadDeadline(t) }

// SetWriteDeadline sets the UDP socket's write deadline.
func (u *UDPConn) SetWriteDeadline(t time.Time) error { return u.udp.SetWriteDeadline(t) }
