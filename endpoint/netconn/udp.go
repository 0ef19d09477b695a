package netconn

import (
	"net/netip"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/udp"
)

// UDPOptions configure ListenUDP and DialUDP; nil means all false.
type UDPOptions struct {
	ReuseAddr bool // SO_REUSEADDR
	V6Only    bool // IPV6_V6ONLY
	Broadcast bool // SO_BROADCAST
}

// UDPConn is a UDP socket (lwIP's netconn of type NETCONN_UDP). Received datagrams wait in
// a mailbox of at most UDPRecvMboxSize datagrams (and SetReadBuffer bytes); beyond, they
// are dropped and counted (Drops), as lwIP drops when its recvmbox is full. Sends never
// block: a full link fails them with errs.Mem. Every method is safe for concurrent use.
type UDPConn struct {
	pcbConn[*udp.PCB] // dgramConn.pendErr: an ICMP error about a connected socket's datagram

	groups []joined // core lock: multicast memberships to drop on Close

	// Guarded by dgramConn.mu.
	laddr netip.AddrPort
	raddr netip.AddrPort
}

type joined struct {
	n *ip.Netif
	g netip.Addr
}

// leave drops the membership unless its netif was removed (which freed it already: the
// netif's index may since name another netif). Core context.
func (j joined) leave(l *ip.Layer) error {
	if l.NetifByIndex(j.n.Index()) != j.n {
		return nil
	}
	return l.LeaveGroup(j.n, j.g)
}

// ListenUDP opens a UDP socket bound to laddr (port 0: ephemeral; an unspecified IPv6
// address hears both families unless V6Only). Errors: errs.Use, errs.AddrNotAvail,
// errs.Mem (no PCB, or MempNumNetconn reached), errs.Clsd (the stack is closed).
func ListenUDP(s *stack.Stack, laddr netip.AddrPort, o *UDPOptions) (*UDPConn, error) {
	return openUDP(s, laddr, netip.AddrPort{}, o, true)
}

// DialUDP opens a UDP socket connected to raddr: Write sends there, only its datagrams
// are received, and ICMP errors about them are reported (errs.Refused, ...). laddr may be
// the zero AddrPort. Errors as ListenUDP, and those of udp.PCB.Connect.
func DialUDP(s *stack.Stack, laddr, raddr netip.AddrPort, o *UDPOptions) (*UDPConn, error) {
	return openUDP(s, laddr, raddr, o, needBind(laddr))
}

func openUDP(s *stack.Stack, laddr, raddr netip.AddrPort, o *UDPOptions, bind bool) (*UDPConn, error) {
	if o == nil {
		o = &UDPOptions{}
	}
	s.Lock()
	defer s.Unlock()
	r, pcb, err := openPCB(s, s.UDP().NewPCB, (*udp.PCB).Close, func(pcb *udp.PCB) error {
		pcb.SetReuseAddr(o.ReuseAddr)
		pcb.SetV6Only(o.V6Only)
		pcb.SetBroadcast(o.Broadcast)
		return bindConnect(pcb, laddr, raddr, bind)
	})
	if err != nil {
		return nil, err
	}
	c := &UDPConn{}
	c.pcb = pcb
	c.init(s, r)
	c.laddr, c.raddr = pcb.LocalAddr(), pcb.RemoteAddr()
	pcb.SetArg(c)
	pcb.OnRecv(udpRecv)
	pcb.OnErr(udpErr)
	r.add(&c.node, c)
	return c, nil
}

// udpRecv takes ownership of p (core context).
func udpRecv(pcb *udp.PCB, p *pbuf.Pbuf, info *udp.RecvInfo) {
	c := pcb.Arg().(*UDPConn)
	c.deliver(p, &Meta{Src: info.Src, Dst: info.Dst, IfIndex: info.IfIndex, TTL: info.TTL, TOS: info.TOS})
}

// udpErr records an ICMP error about a connected PCB's datagram (core context).
func udpErr(pcb *udp.PCB, err error) {
	c := pcb.Arg().(*UDPConn)
	c.mu.Lock()
	c.pendErr = err
	c.mu.Unlock()
	wake(c.rch)
}

// stackClosed implements member.
func (c *UDPConn) stackClosed() {
	c.pcb = nil
	c.groups = nil
	c.stackGone()
}

// ReadMsg reads one datagram into b and describes it; Meta.Truncated is set (and the rest
// dropped) when b was too short. Errors: os.ErrDeadlineExceeded, net.ErrClosed, or a
// pending ICMP error (errs.Refused, errs.NetUnreach, errs.Rte, errs.MsgSize) on a connected
// socket, reported once.
func (c *UDPConn) ReadMsg(b []byte) (int, Meta, error) { return c.readMsg(b) }

// RecvDatagram returns the next datagram without copying; the caller must Release it.
// Errors as ReadMsg.
func (c *UDPConn) RecvDatagram() (*Buf, Meta, error) {
	p, m, err := c.recv()
	if err != nil {
		return nil, Meta{}, err
	}
	return newBuf(p, 0, nil), m, nil
}

// Send modes.
const (
	sendTo = iota
	sendToFrom
	sendConn
)

// send copies b into a new pbuf (outside the core lock) and sends it; seg >= 0 is a
// UDP_SEGMENT for this send (sendToFrom only), -1 the socket's.
func (c *UDPConn) send(b []byte, mode int, dst netip.AddrPort, src netip.Addr, ifIndex, seg int) (int, error) {
	return c.sendWith(b, udp.MaxPayload6, func(pcb *udp.PCB, p *pbuf.Pbuf) error {
		switch {
		case mode == sendTo:
			return pcb.SendTo(p, dst)
		case mode == sendToFrom && seg >= 0:
			return pcb.SendToFromSeg(p, dst, src, ifIndex, seg)
		case mode == sendToFrom:
			return pcb.SendToFrom(p, dst, src, ifIndex)
		}
		return pcb.Send(p)
	})
}

// WriteTo sends b as one datagram to dst. Errors: errs.Mem (no memory, or the link's queue
// is full: it never blocks), errs.MsgSize, errs.Access (broadcast without SetBroadcast),
// errs.NetUnreach, errs.NetDown, errs.Val, net.ErrClosed, os.ErrDeadlineExceeded.
func (c *UDPConn) WriteTo(b []byte, dst netip.AddrPort) (int, error) {
	return c.send(b, sendTo, dst, netip.Addr{}, 0, -1)
}

// WriteToFrom is WriteTo with IP_PKTINFO: src (when valid) the source address, ifIndex
// (when not 0) the egress netif.
func (c *UDPConn) WriteToFrom(b []byte, dst netip.AddrPort, src netip.Addr, ifIndex int) (int, error) {
	return c.send(b, sendToFrom, dst, src, ifIndex, -1)
}

// WriteToFromSeg is WriteToFrom with a UDP_SEGMENT control message: b leaves as datagrams
// of seg bytes (0: as one datagram), whatever SetSegmentSize set. errs.Val for seg outside
// 0..65535; the other errors as SetSegmentSize says.
func (c *UDPConn) WriteToFromSeg(b []byte, dst netip.AddrPort, src netip.Addr, ifIndex, seg int) (int, error) {
	if seg < 0 {
		return 0, errs.Val
	}
	return c.send(b, sendToFrom, dst, src, ifIndex, seg)
}

// Write sends b to the connected peer; errs.Conn when not connected.
func (c *UDPConn) Write(b []byte) (int, error) {
	return c.send(b, sendConn, netip.AddrPort{}, netip.Addr{}, 0, -1)
}

// Close closes the socket, leaves its multicast groups and frees queued datagrams; blocked
// and later calls return net.ErrClosed. A second Close returns net.ErrClosed.
func (c *UDPConn) Close() error {
	return c.close(func() {
		if c.pcb != nil {
			l := c.s.IP()
			for _, j := range c.groups {
				_ = j.leave(l)
			}
			c.groups = nil
		}
		c.closePCB()
	})
}

// LocalAddr returns the bound address and port.
func (c *UDPConn) LocalAddr() netip.AddrPort { return locked(&c.mu, &c.laddr) }

// RemoteAddr returns the connected peer (invalid when not connected).
func (c *UDPConn) RemoteAddr() netip.AddrPort { return locked(&c.mu, &c.raddr) }

// Buffered returns the size of the next datagram (FIONREAD on a Linux UDP socket), 0 if
// none is queued.
func (c *UDPConn) Buffered() int { return c.buffered() }

// Queued returns the datagrams and bytes waiting in the mailbox.
func (c *UDPConn) Queued() (datagrams, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.box.q.Len(), c.box.bytes
}

// Err returns and clears the pending asynchronous error (SO_ERROR).
func (c *UDPConn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.takeErrLocked()
}
