package netconn

import (
	"net"
	"net/netip"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/raw"
)

// RawConn is a raw IP socket of one protocol (lwIP's netconn of type NETCONN_RAW, Linux's
// SOCK_RAW without IP_HDRINCL) over transport/raw's NewRaw: it sends protocol payloads (the
// stack builds the IP header) and receives a copy of every packet of its protocol and
// family addressed to the stack, from the transport header on, in both families (an IPv4
// raw socket does not see the IPv4 header, unlike Linux's). Copies wait in a mailbox of at
// most UDPRecvMboxSize packets (and SetReadBuffer bytes), as lwIP's raw netconns share the
// UDP mailbox size; beyond, they are dropped and counted (Drops). Sends never block: a full
// link fails them with errs.Mem. Every method is safe for concurrent use.
type RawConn struct {
	dgramConn

	pcb *raw.PCB // core lock; nil once closed or the stack closed

	// Set at creation.
	v6    bool
	proto uint8

	// Guarded by dgramConn.mu.
	laddr netip.Addr
	raddr netip.Addr
}

// ListenRaw opens a raw socket of IP protocol proto bound to laddr, whose family (an
// unspecified 0.0.0.0 or :: for any address) picks IPv4 or IPv6. Errors: errs.Val (no
// family, or an IPv6 extension header as proto), errs.AddrNotAvail, errs.Mem (no PCB, or
// MempNumNetconn reached), errs.Clsd (the stack is closed).
func ListenRaw(s *stack.Stack, proto uint8, laddr netip.Addr) (*RawConn, error) {
	return openRaw(s, proto, laddr, netip.Addr{})
}

// DialRaw opens a raw socket connected to raddr: Write sends there and only its packets
// are received. laddr may be invalid (any); the family is raddr's, else laddr's. Errors
// as ListenRaw.
func DialRaw(s *stack.Stack, proto uint8, laddr, raddr netip.Addr) (*RawConn, error) {
	return openRaw(s, proto, laddr, raddr)
}

func openRaw(s *stack.Stack, proto uint8, laddr, raddr netip.Addr) (*RawConn, error) {
	fam := raddr.Unmap()
	if !fam.IsValid() {
		fam = laddr.Unmap()
	}
	if !fam.IsValid() {
		return nil, errs.Val
	}
	v6 := fam.Is6()
	s.Lock()
	defer s.Unlock()
	newRaw := func() (*raw.PCB, error) { return s.Raw().NewRaw(v6, proto) }
	r, pcb, err := openPCB(s, newRaw, (*raw.PCB).Close, func(pcb *raw.PCB) error {
		return bindConnect(pcb, laddr, raddr, laddr.IsValid() || !raddr.IsValid())
	})
	if err != nil {
		return nil, err
	}
	c := &RawConn{pcb: pcb, v6: v6, proto: proto, laddr: pcb.LocalAddr(), raddr: pcb.RemoteAddr()}
	c.init(s, r)
	pcb.SetArg(c)
	pcb.OnRecv(rawRecv)
	r.add(&c.node, c)
	return c, nil
}

// rawRecv takes ownership of p, a copy of a packet from its transport header on (core
// context).
func rawRecv(pcb *raw.PCB, p *pbuf.Pbuf, info *raw.RecvInfo) {
	c := pcb.Arg().(*RawConn)
	c.deliver(p, &Meta{Src: netip.AddrPortFrom(info.Src, 0), Dst: info.Dst, IfIndex: info.IfIndex,
		TTL: info.TTL, TOS: info.TOS})
}

// stackClosed implements member.
func (c *RawConn) stackClosed() {
	c.pcb = nil
	c.stackGone()
}

// ReadMsg reads one packet (from its transport header on) into b; Meta.Truncated when b
// was short (the rest is lost). Errors: os.ErrDeadlineExceeded, net.ErrClosed.
func (c *RawConn) ReadMsg(b []byte) (int, Meta, error) { return c.readMsg(b) }

// ReadFrom reads one packet and returns its sender.
func (c *RawConn) ReadFrom(b []byte) (int, netip.Addr, error) {
	n, m, err := c.readMsg(b)
	return n, m.Src.Addr(), err
}

// WriteTo sends b as the payload of one IP packet of the socket's protocol to dst (an
// IPv6 socket with a checksum offset gets its checksum written there). Errors: errs.Val
// (wrong family, unspecified dst, payload shorter than the checksum offset), errs.Mem (no
// memory or the link is full: it never blocks), errs.MsgSize, errs.NetUnreach,
// errs.NetDown, net.ErrClosed, os.ErrDeadlineExceeded.
func (c *RawConn) WriteTo(b []byte, dst netip.Addr) (int, error) {
	return c.send(b, dst, false)
}

// Write sends b to the connected peer; errs.Conn when not connected.
func (c *RawConn) Write(b []byte) (int, error) {
	return c.send(b, netip.Addr{}, true)
}

// send copies b into a new pbuf (outside the core lock) and sends it.
func (c *RawConn) send(b []byte, dst netip.Addr, connected bool) (int, error) {
	maxLen := raw.MaxPayload4
	if c.v6 {
		maxLen = raw.MaxPayload6
	}
	p, err := c.payload(b, maxLen)
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
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close closes the socket and frees the queued packets; blocked and later calls return
// net.ErrClosed. A second Close returns net.ErrClosed.
func (c *RawConn) Close() error {
	return c.close(func() {
		if c.pcb != nil {
			c.pcb.Close()
			c.pcb = nil
		}
	})
}

// LocalAddr returns the bound address (invalid or unspecified: any).
func (c *RawConn) LocalAddr() netip.Addr { return locked(&c.mu, &c.laddr) }

// RemoteAddr returns the connected peer (invalid when not connected).
func (c *RawConn) RemoteAddr() netip.Addr { return locked(&c.mu, &c.raddr) }

// Proto returns the IP protocol of the socket.
func (c *RawConn) Proto() uint8 { return c.proto }

// V6 reports whether the socket is an IPv6 one.
func (c *RawConn) V6() bool { return c.v6 }

// Buffered returns the size of the next queued packet, 0 if none.
func (c *RawConn) Buffered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.box.next()
}

// SetReadBuffer bounds the bytes of queued packets (SO_RCVBUF), on top of the
// UDPRecvMboxSize count; 0 removes the bound. A packet always fits an empty mailbox.
func (c *RawConn) SetReadBuffer(n int) error {
	if n < 0 {
		return errVal
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.box.maxB = n
	return nil
}

// withPCB runs fn on the PCB in core context; net.ErrClosed once closed.
func (c *RawConn) withPCB(fn func(p *raw.PCB) error) error {
	c.s.Lock()
	defer c.s.Unlock()
	if c.pcb == nil {
		return net.ErrClosed
	}
	return fn(c.pcb)
}

// SetTTL sets the TTL (hop limit) of unicast sends (IP_TTL, IPV6_UNICAST_HOPS); 0: the
// stack's default.
func (c *RawConn) SetTTL(ttl uint8) error {
	return c.withPCB(func(p *raw.PCB) error { p.SetTTL(ttl); return nil })
}

// SetTOS sets the TOS (traffic class) of sends (IP_TOS, IPV6_TCLASS).
func (c *RawConn) SetTOS(tos uint8) error {
	return c.withPCB(func(p *raw.PCB) error { p.SetTOS(tos); return nil })
}

// SetChecksumOffset sets IPV6_CHECKSUM (RFC 3542 §3.1): the offset in the payload of a
// 16-bit checksum the stack writes on send and verifies on receive; -1 turns it off.
// errs.Val on an IPv4 or ICMPv6 socket (ICMPv6's is always 2) or for an odd offset.
func (c *RawConn) SetChecksumOffset(off int) error {
	return c.withPCB(func(p *raw.PCB) error { return p.SetChecksumOffset(off) })
}

// SetMulticastInterface picks the netif multicast sends leave by (IP_MULTICAST_IF,
// IPV6_MULTICAST_IF); 0 lets the route decide. errs.Val for an unknown netif.
func (c *RawConn) SetMulticastInterface(ifIndex int) error {
	return c.withPCB(func(p *raw.PCB) error {
		if ifIndex < 0 || ifIndex > 0 && c.s.IP().NetifByIndex(ifIndex) == nil {
			return errs.Val
		}
		p.SetMulticastNetif(ifIndex)
		return nil
	})
}

// SetMulticastTTL sets the TTL (hop limit) of multicast sends, 0..255 (default 1); 0
// keeps them on this host (local members only, with SetMulticastLoop on), as Linux does.
func (c *RawConn) SetMulticastTTL(ttl int) error {
	if ttl < 0 || ttl > 255 {
		return errs.Val
	}
	return c.withPCB(func(p *raw.PCB) error { p.SetMulticastTTL(uint8(ttl)); return nil })
}

// SetMulticastLoop sets whether multicast sends are looped back to this stack (default
// on).
func (c *RawConn) SetMulticastLoop(on bool) error {
	return c.withPCB(func(p *raw.PCB) error { p.SetMulticastLoop(on); return nil })
}

// RawSockopts is a snapshot of a raw socket's options, for getsockopt.
type RawSockopts struct {
	TTL, TOS, MulticastTTL uint8 // TTL 0: the stack's default
	MulticastLoop          bool
	MulticastInterface     int
	ChecksumOffset         int // IPV6_CHECKSUM, -1 off
	ReadBuffer             int // SetReadBuffer's bound, 0 none
}

// Sockopts returns the socket's options; net.ErrClosed once closed.
func (c *RawConn) Sockopts() (RawSockopts, error) {
	var o RawSockopts
	err := c.withPCB(func(p *raw.PCB) error {
		o = RawSockopts{TTL: p.TTL(), TOS: p.TOS(), MulticastTTL: p.MulticastTTL(),
			MulticastLoop: p.MulticastLoop(), MulticastInterface: p.MulticastNetif(),
			ChecksumOffset: p.ChecksumOffset()}
		return nil
	})
	c.mu.Lock()
	o.ReadBuffer = c.box.maxB
	c.mu.Unlock()
	return o, err
}
