package netconn

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

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
	s    *stack.Stack
	reg  *registry
	node node

	pcb *raw.PCB // core lock; nil once closed or the stack closed

	rmu sync.Mutex

	mu     sync.Mutex
	box    dgramBox
	closed bool
	gone   bool
	laddr  netip.Addr
	raddr  netip.Addr
	ident  uint16
	dl     deadlines
	rch    chan struct{}
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
	r, err := registryFor(s)
	if err != nil {
		return nil, err
	}
	if !r.reserve() {
		return nil, errs.Mem
	}
	pcb, err := s.Raw().NewPing(fam.Is6())
	if err != nil {
		r.release()
		return nil, err
	}
	if laddr.IsValid() || !raddr.IsValid() {
		err = pcb.Bind(laddr)
	}
	if err == nil && raddr.IsValid() {
		err = pcb.Connect(raddr)
	}
	if err != nil {
		pcb.Close()
		r.release()
		return nil, err
	}
	c := &PingConn{s: s, reg: r, pcb: pcb, rch: make(chan struct{}, 1),
		box:   dgramBox{max: max(s.Options().UDPRecvMboxSize, 1)},
		laddr: pcb.LocalAddr(), raddr: pcb.RemoteAddr(), ident: pcb.Ident()}
	c.dl.rd.init(&c.mu, c.rch)
	c.dl.wd.init(&c.mu, make(chan struct{}, 1))
	pcb.SetArg(c)
	pcb.OnRecv(pingRecv)
	r.add(&c.node, c)
	return c, nil
}

// pingRecv takes ownership of p, a whole echo reply message (core context).
func pingRecv(pcb *raw.PCB, p *pbuf.Pbuf, info *raw.RecvInfo) {
	c := pcb.Arg().(*PingConn)
	m := Meta{Src: netip.AddrPortFrom(info.Src, 0), Dst: info.Dst, IfIndex: info.IfIndex, TTL: info.TTL, TOS: info.TOS}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		p.Free()
		return
	}
	ok := c.box.push(p, &m)
	c.mu.Unlock()
	if ok {
		wake(c.rch)
	}
}

// stackClosed implements member.
func (c *PingConn) stackClosed() {
	c.pcb = nil
	c.mu.Lock()
	c.gone = true
	c.box.clear()
	c.mu.Unlock()
	wake(c.rch)
}

// ReadMsg reads one echo reply message (ICMP header included) into b; Meta.Truncated
// when b was short. Errors: os.ErrDeadlineExceeded, net.ErrClosed.
func (c *PingConn) ReadMsg(b []byte) (int, Meta, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.mu.Lock()
	for {
		var err error
		switch {
		case c.closed || c.gone:
			err = net.ErrClosed
		case c.dl.rd.expired:
			err = os.ErrDeadlineExceeded
		}
		if err != nil {
			c.mu.Unlock()
			return 0, Meta{}, err
		}
		if c.box.n > 0 {
			break
		}
		c.mu.Unlock()
		<-c.rch
		c.mu.Lock()
	}
	p, m := c.box.pop()
	c.mu.Unlock()
	n := p.CopyOut(b, 0)
	m.Truncated = n < p.TotLen()
	p.Free()
	return n, m, nil
}

// ReadFrom reads one echo reply message and returns its sender.
func (c *PingConn) ReadFrom(b []byte) (int, netip.Addr, error) {
	n, m, err := c.ReadMsg(b)
	return n, m.Src.Addr(), err
}

// Read reads one echo reply message.
func (c *PingConn) Read(b []byte) (int, error) {
	n, _, err := c.ReadMsg(b)
	return n, err
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

func (c *PingConn) send(b []byte, dst netip.Addr, connected bool) (int, error) {
	c.mu.Lock()
	var err error
	switch {
	case c.closed || c.gone:
		err = net.ErrClosed
	case c.dl.wd.expired:
		err = os.ErrDeadlineExceeded
	}
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if len(b) > 0xffff {
		return 0, errs.MsgSize
	}
	p, err := c.s.Allocator().Alloc(pbuf.LayerTransport, len(b), pbuf.RAM)
	if err != nil {
		return 0, errs.Mem
	}
	if err := p.CopyIn(b, 0); err != nil {
		p.Free()
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
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	c.box.clear()
	c.dl.stop()
	c.mu.Unlock()
	wake(c.rch)
	c.s.Lock()
	if c.pcb != nil {
		c.pcb.Close()
		c.pcb = nil
	}
	c.reg.remove(&c.node)
	c.s.Unlock()
	c.reg.release()
	return nil
}

// LocalAddr returns the bound address (invalid or unspecified: any).
func (c *PingConn) LocalAddr() netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.laddr
}

// RemoteAddr returns the connected peer (invalid when not connected).
func (c *PingConn) RemoteAddr() netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.raddr
}

// Ident returns the echo identifier (0 until Bind, Connect or the first send chose it).
func (c *PingConn) Ident() uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ident
}

// Drops counts replies dropped because the mailbox was full.
func (c *PingConn) Drops() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.box.drops
}

// SetDeadline sets both deadlines; the zero time clears them.
func (c *PingConn) SetDeadline(t time.Time) error { c.dl.setBoth(&c.mu, t); return nil }

// SetReadDeadline sets the deadline of reads.
func (c *PingConn) SetReadDeadline(t time.Time) error { c.dl.setRead(&c.mu, t); return nil }

// SetWriteDeadline sets the deadline of sends (which never block).
func (c *PingConn) SetWriteDeadline(t time.Time) error { c.dl.setWrite(&c.mu, t); return nil }

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
