package netconn

import (
	"net"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/transport/raw"
	"github.com/wispstack/wisp/transport/udp"
)

// ipPCB is what a UDP and a raw PCB share: Close and the IP-level options.
type ipPCB interface {
	*udp.PCB | *raw.PCB
	Close()
	SetTTL(ttl uint8)
	TTL() uint8
	SetTOS(tos uint8)
	TOS() uint8
	SetMulticastNetif(ifIndex int)
	MulticastNetif() int
	SetMulticastTTL(ttl uint8)
	MulticastTTL() uint8
	SetMulticastLoop(on bool)
	MulticastLoop() bool
}

// pcbConn is a dgramConn with its PCB: what UDPConn and the raw conns share about it (the
// send, the IP-level options and their Sockopts). The options live on the PCB: each setter
// takes the core lock to set it there, and Sockopts reads them back.
type pcbConn[P ipPCB] struct {
	dgramConn

	pcb P // core lock; nil once closed or the stack closed
}

// withPCB runs fn on the PCB in core context; net.ErrClosed once closed.
func (c *pcbConn[P]) withPCB(fn func(p P) error) error {
	c.s.Lock()
	defer c.s.Unlock()
	if c.pcb == nil {
		return net.ErrClosed
	}
	return fn(c.pcb)
}

// setPCB is withPCB for a setter that cannot fail.
func (c *pcbConn[P]) setPCB(set func(p P)) error {
	return c.withPCB(func(p P) error { set(p); return nil })
}

// closePCB closes the PCB unless the stack has freed it already (core context).
func (c *pcbConn[P]) closePCB() {
	if c.pcb != nil {
		c.pcb.Close()
		c.pcb = nil
	}
}

// sendWith copies b (at most maxLen bytes) into a new pbuf outside the core lock and hands
// it to send, which takes ownership of it, in core context. It returns len(b) or send's
// error.
func (c *pcbConn[P]) sendWith(b []byte, maxLen int, send func(p P, pkt *pbuf.Pbuf) error) (int, error) {
	pkt, err := c.payload(b, maxLen)
	if err != nil {
		return 0, err
	}
	c.s.Lock()
	defer c.s.Unlock()
	if c.pcb == nil {
		pkt.Free()
		return 0, net.ErrClosed
	}
	if err := send(c.pcb, pkt); err != nil {
		return 0, err
	}
	return len(b), nil
}

// SetTTL sets the TTL (hop limit) of unicast sends (IP_TTL, IPV6_UNICAST_HOPS); on a raw
// or ping socket 0 means the stack's default.
func (c *pcbConn[P]) SetTTL(ttl uint8) error {
	return c.setPCB(func(p P) { p.SetTTL(ttl) })
}

// SetTOS sets the TOS (traffic class) of sends (IP_TOS, IPV6_TCLASS).
func (c *pcbConn[P]) SetTOS(tos uint8) error {
	return c.setPCB(func(p P) { p.SetTOS(tos) })
}

// SetMulticastInterface picks the netif multicast sends leave by (IP_MULTICAST_IF,
// IPV6_MULTICAST_IF); 0 lets the route decide. errs.Val for an unknown netif.
func (c *pcbConn[P]) SetMulticastInterface(ifIndex int) error {
	return c.withPCB(func(p P) error {
		if !c.knownNetif(ifIndex) {
			return errs.Val
		}
		p.SetMulticastNetif(ifIndex)
		return nil
	})
}

// SetMulticastTTL sets the TTL (hop limit) of multicast sends (IP_MULTICAST_TTL,
// IPV6_MULTICAST_HOPS), 0..255; default 1. 0 keeps them on this host, as Linux does: they
// reach local members when SetMulticastLoop is on (the default) and are never sent on the
// link. errs.Val out of range.
func (c *pcbConn[P]) SetMulticastTTL(ttl int) error {
	if ttl < 0 || ttl > 255 {
		return errs.Val
	}
	return c.setPCB(func(p P) { p.SetMulticastTTL(uint8(ttl)) })
}

// SetMulticastLoop sets whether multicast sends are looped back to local members
// (IP_MULTICAST_LOOP, IPV6_MULTICAST_LOOP); default on.
func (c *pcbConn[P]) SetMulticastLoop(on bool) error {
	return c.setPCB(func(p P) { p.SetMulticastLoop(on) })
}

// Sockopts are a UDP, raw or ping socket's options, for getsockopt: read from its PCB
// (ReadBuffer from its mailbox). The fields of another kind of socket are zero.
type Sockopts struct {
	TTL, TOS, MulticastTTL uint8 // TTL 0 (raw, ping): the stack's default
	MulticastLoop          bool
	MulticastInterface     int
	ReadBuffer             int // SetReadBuffer's bound, 0 none

	ReuseAddr, Broadcast, NoChecksum, V6Only bool // UDP

	ChecksumOffset int // raw: IPV6_CHECKSUM, -1 off
}

// Sockopts returns the socket's options; net.ErrClosed once closed.
func (c *pcbConn[P]) Sockopts() (Sockopts, error) {
	var o Sockopts
	err := c.withPCB(func(p P) error {
		o = Sockopts{TTL: p.TTL(), TOS: p.TOS(), MulticastTTL: p.MulticastTTL(),
			MulticastLoop: p.MulticastLoop(), MulticastInterface: p.MulticastNetif()}
		switch p := any(p).(type) {
		case *udp.PCB:
			o.ReuseAddr, o.Broadcast, o.NoChecksum, o.V6Only = p.ReuseAddr(), p.Broadcast(), p.NoChecksum(), p.V6Only()
		case *raw.PCB:
			o.ChecksumOffset = p.ChecksumOffset()
		}
		return nil
	})
	c.mu.Lock()
	o.ReadBuffer = c.box.maxB
	c.mu.Unlock()
	return o, err
}

// SetReadBuffer bounds the bytes of queued datagrams (SO_RCVBUF), on top of the
// UDPRecvMboxSize count; 0 removes the bound. A datagram always fits an empty mailbox.
func (c *pcbConn[P]) SetReadBuffer(n int) error {
	if n < 0 {
		return errs.Val
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.box.maxB = n
	return nil
}
