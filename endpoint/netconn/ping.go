package netconn

import (
	"net"
	"net/netip"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/raw"
)

// PingConn is an ICMP echo socket, like Linux's SOCK_DGRAM/IPPROTO_ICMP sockets and
// wireguard-go's netstack PingConn: it sends whole ICMP echo request messages (the stack
// writes the identifier and the checksum) and receives the echo replies whose identifier is
// its own. Replies wait in a mailbox of at most UDPRecvMboxSize messages (as lwIP's raw
// netconns share the UDP mailbox size); beyond, they are dropped and counted. Every method
// is safe for concurrent use.
type PingConn struct {
	dgramConn

	pcb *raw.PCB // core lock; nil once closed or the stack closed

	// Guarded by dgramConn.mu.
	laddr netip.Addr
	raddr netip.Addr
	ident uint16
}

// ListenPing opens an ICMP echo socket bound to laddr, whose family (an unspecified
// 0.0.0.0 or :: for any address) picks ICMP or ICMPv6. Errors: errs.Val (no family),
// errs.AddrNotAvail, errs.Use (no identifier free), errs.Mem (no PCB, or MempNumNetconn
// reached), errs.Clsd (the stack is closed).
func ListenPing(s *stack.Stack, laddr netip.Addr) (*PingConn, error) {
	return openPing(s, laddr, netip.Addr{})
}

// DialPing opens an ICMP echo socket connected to raddr: Write sends there and only its
// replies are received. laddr may be invalid (any); the family is raddr's, else laddr's.
func DialPing(s *stack.Stack, laddr, raddr netip.Addr) (*PingConn, error) {
	return openPing(s, laddr, raddr)
}

func openPing(s *stack.Stack, laddr, raddr netip.Addr) (*PingConn, error) {
	fam := raddr.Unmap()
	if !fam.IsValid() {
		fam = laddr.Unmap()
	}
	if !fam.IsValid() {
		return nil, errs.Val
	}
	s.Lock()
	defer s.Unlock()
	newPing := func() (*raw.PCB, error) { return s.Raw().NewPing(fam.Is6()) }
	r, pcb, err := openPCB(s, newPing, (*raw.PCB).Close, func(pcb *raw.PCB) error {
		return bindConnect(pcb, laddr, raddr, laddr.IsValid() || !raddr.IsValid())
	})
	if err != nil {
		return nil, err
	}
	c := &PingConn{pcb: pcb, laddr: pcb.LocalAddr(), raddr: pcb.RemoteAddr(), ident: pcb.Ident()}
	c.init(s, r)
	pcb.SetArg(c)
	pcb.OnRecv(pingRecv)
	r.add(&c.node, c)
	return c, nil
}

// pingRecv takes ownership of p, a whole echo reply message (core context).
func pingRecv(pcb *raw.PCB, p *pbuf.Pbuf, info *raw.RecvInfo) {
	c := pcb.Arg().(*PingConn)
	c.deliver(p, &Meta{Src: netip.AddrPortFrom(info.Src, 0), Dst: info.Dst, IfIndex: info.IfIndex,
		TTL: info.TTL, TOS: info.TOS})
}

// stackClosed implements member.
func (c *PingConn) stackClosed() {
	c.pcb = nil
	c.stackGone()
}

// ReadMsg reads one echo reply message (ICMP header included) into b; Meta.Truncated
// when b was short. Errors: os.ErrDeadlineExceeded, net.ErrClosed.
func (c *PingConn) ReadMsg(b []byte) (int, Meta, error) { return c.readMsg(b) }

// ReadFrom reads one echo reply message and returns its sender.
func (c *PingConn) ReadFrom(b []byte) (int, netip.Addr, error) {
	n, m, err := c.ReadMsg(b)
	return n, m.Src.Addr(), err
}

// WriteTo sends b, a whole ICMP echo request message (8-byte header and data; the stack
// fills in the identifier and the checksum), to dst. Errors: errs.Val (not an echo
// request, wrong family), errs.Mem (no memory or the link is full: it never blocks),
// errs.NetUnreach, errs.NetDown, errs.MsgSize, net.ErrClosed, os.ErrDeadlineExceeded.
func (c *PingConn) WriteTo(b []byte, dst netip.Addr) (int, error) {
	return c.send(b, dst, false)
}

// Write sends b to the connected peer; errs.Conn when not connected.
func (c *PingConn) Write(b []byte) (int, error) {
	return c.send(b, netip.Addr{}, true)
}

// send copies b into a new pbuf (outside the core lock) and sends it.
func (c *PingConn) send(b []byte, dst netip.Addr, connected bool) (int, error) {
	p, err := c.payload(b, 0xffff)
	if err != nil {
		return 0, err
	}
	c.s.Lock()
	defer c.s.Unlock()
	pcb := c.pcb
	if pcb == nil {
		p.Free()
		return 0, net.ErrClosed
	}
	if connected {
		err = pcb.Send(p)
	} else {
		err = pcb.SendTo(p, dst)
	}
	// The identifier is chosen at the first send when Bind did not.
	c.mu.Lock()
	c.ident = pcb.Ident()
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close closes the socket; blocked and later calls return net.ErrClosed.
func (c *PingConn) Close() error {
	return c.close(func() {
		if c.pcb != nil {
			c.pcb.Close()
			c.pcb = nil
		}
	})
}

// LocalAddr returns the bound address (invalid or unspecified: any).
func (c *PingConn) LocalAddr() netip.Addr { return locked(&c.mu, &c.laddr) }

// RemoteAddr returns the connected peer (invalid when not connected).
func (c *PingConn) RemoteAddr() netip.Addr { return locked(&c.mu, &c.raddr) }

// Ident returns the echo identifier (0 until Bind, Connect or the first send chose it).
func (c *PingConn) Ident() uint16 { return locked(&c.mu, &c.ident) }

// SetTTL sets the TTL (hop limit) of echo requests.
func (c *PingConn) SetTTL(ttl uint8) error {
	c.s.Lock()
	defer c.s.Unlock()
	if c.pcb == nil {
		return net.ErrClosed
	}
	c.pcb.SetTTL(ttl)
	return nil
}
