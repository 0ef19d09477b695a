package netconn

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

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
	s    *stack.Stack
	reg  *registry
	node node

	pcb    *udp.PCB // core lock; nil once closed or the stack closed
	groups []joined // core lock: multicast memberships to drop on Close

	rmu sync.Mutex // serializes readers

	mu      sync.Mutex
	box     dgramBox
	closed  bool
	gone    bool  // the stack closed
	pendErr error // asynchronous ICMP error for the next call and Err
	pktInfo bool
	laddr   netip.AddrPort
	raddr   netip.AddrPort
	dl      deadlines
	rch     chan struct{}
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
	r, err := registryFor(s)
	if err != nil {
		return nil, err
	}
	if !r.reserve() {
		return nil, errs.Mem
	}
	pcb, err := s.UDP().NewPCB()
	if err != nil {
		r.release()
		return nil, err
	}
	pcb.SetReuseAddr(o.ReuseAddr)
	pcb.SetV6Only(o.V6Only)
	pcb.SetBroadcast(o.Broadcast)
	if bind {
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
	opts := s.Options()
	c := &UDPConn{s: s, reg: r, pcb: pcb, rch: make(chan struct{}, 1),
		box: dgramBox{max: max(opts.UDPRecvMboxSize, 1)}}
	c.dl.rd.init(&c.mu, c.rch)
	c.dl.wd.init(&c.mu, make(chan struct{}, 1))
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
	m := Meta{Src: info.Src, Dst: info.Dst, IfIndex: info.IfIndex, TTL: info.TTL, TOS: info.TOS}
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
	c.mu.Lock()
	c.gone = true
	c.box.clear()
	c.mu.Unlock()
	wake(c.rch)
}

// takeErrLocked returns and clears the pending asynchronous error (c.mu held).
func (c *UDPConn) takeErrLocked() error {
	err := c.pendErr
	c.pendErr = nil
	return err
}

// waitDgram waits for a datagram (c.mu held on entry and on a nil return).
func (c *UDPConn) waitDgram() error {
	for {
		switch {
		case c.closed || c.gone:
			return net.ErrClosed
		case c.dl.rd.expired:
			return os.ErrDeadlineExceeded
		case c.pendErr != nil:
			return c.takeErrLocked()
		case c.box.n > 0:
			return nil
		}
		c.mu.Unlock()
		<-c.rch
		c.mu.Lock()
	}
}

// ReadMsg reads one datagram into b and describes it; Meta.Truncated is set (and the rest
// dropped) when b was too short. Errors: os.ErrDeadlineExceeded, net.ErrClosed, or a
// pending ICMP error (errs.Refused, errs.NetUnreach, errs.Rte, errs.MsgSize) on a connected
// socket, reported once.
func (c *UDPConn) ReadMsg(b []byte) (int, Meta, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.mu.Lock()
	if err := c.waitDgram(); err != nil {
		c.mu.Unlock()
		return 0, Meta{}, err
	}
	p, m := c.box.pop()
	c.mu.Unlock()
	n := p.CopyOut(b, 0)
	m.Truncated = n < p.TotLen()
	p.Free()
	return n, m, nil
}

// Read reads one datagram (net.Conn); see ReadMsg.
func (c *UDPConn) Read(b []byte) (int, error) {
	n, _, err := c.ReadMsg(b)
	return n, err
}

// RecvDatagram returns the next datagram without copying; the caller must Release it.
// Errors as ReadMsg.
func (c *UDPConn) RecvDatagram() (*Buf, Meta, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.mu.Lock()
	if err := c.waitDgram(); err != nil {
		c.mu.Unlock()
		return nil, Meta{}, err
	}
	p, m := c.box.pop()
	c.mu.Unlock()
	return newBuf(p, 0, nil), m, nil
}

// sendCheck is the state check of every send.
func (c *UDPConn) sendCheck() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed || c.gone:
		return net.ErrClosed
	case c.dl.wd.expired:
		return os.ErrDeadlineExceeded
	case c.pendErr != nil:
		return c.takeErrLocked()
	}
	return nil
}

// Send modes.
const (
	sendTo = iota
	sendToFrom
	sendConn
)

// send copies b into a new pbuf (outside the core lock) and sends it.
func (c *UDPConn) send(b []byte, mode int, dst netip.AddrPort, src netip.Addr, ifIndex int) (int, error) {
	if err := c.sendCheck(); err != nil {
		return 0, err
	}
	if len(b) > udp.MaxPayload6 {
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
	switch mode {
	case sendTo:
		err = pcb.SendTo(p, dst)
	case sendToFrom:
		err = pcb.SendToFrom(p, dst, src, ifIndex)
	default:
		err = pcb.Send(p)
	}
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

// WriteTo sends b as one datagram to dst. Errors: errs.Mem (no memory, or the link's queue
// is full: it never blocks), errs.MsgSize, errs.Access (broadcast without SetBroadcast),
// errs.NetUnreach, errs.NetDown, errs.Val, net.ErrClosed, os.ErrDeadlineExceeded.
func (c *UDPConn) WriteTo(b []byte, dst netip.AddrPort) (int, error) {
	return c.send(b, sendTo, dst, netip.Addr{}, 0)
}

// WriteToFrom is WriteTo with IP_PKTINFO: src (when valid) the source address, ifIndex
// (when not 0) the egress netif.
func (c *UDPConn) WriteToFrom(b []byte, dst netip.AddrPort, src netip.Addr, ifIndex int) (int, error) {
	return c.send(b, sendToFrom, dst, src, ifIndex)
}

// Write sends b to the connected peer; errs.Conn when not connected.
func (c *UDPConn) Write(b []byte) (int, error) {
	return c.send(b, sendConn, netip.AddrPort{}, netip.Addr{}, 0)
}

// Close closes the socket, leaves its multicast groups and frees queued datagrams; blocked
// and later calls return net.ErrClosed. A second Close returns net.ErrClosed.
func (c *UDPConn) Close() error {
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
		l := c.s.IP()
		for _, j := range c.groups {
			_ = j.leave(l)
		}
		c.groups = nil
		c.pcb.Close()
		c.pcb = nil
	}
	c.reg.remove(&c.node)
	c.s.Unlock()
	c.reg.release()
	return nil
}

// LocalAddr returns the bound address and port.
func (c *UDPConn) LocalAddr() netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.laddr
}

// RemoteAddr returns the connected peer (invalid when not connected).
func (c *UDPConn) RemoteAddr() netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.raddr
}

// Buffered returns the size of the next datagram (FIONREAD on a Linux UDP socket), 0 if
// none is queued.
func (c *UDPConn) Buffered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.box.next()
}

// Queued returns the datagrams and bytes waiting in the mailbox.
func (c *UDPConn) Queued() (datagrams, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.box.n, c.box.bytes
}

// Drops counts datagrams dropped because the mailbox was full.
func (c *UDPConn) Drops() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.box.drops
}

// Err returns and clears the pending asynchronous error (SO_ERROR).
func (c *UDPConn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.takeErrLocked()
}

// SetDeadline, SetReadDeadline and SetWriteDeadline are net.Conn's. Sends never block, so
// the write deadline only makes them fail once passed.
func (c *UDPConn) SetDeadline(t time.Time) error { c.dl.setBoth(&c.mu, t); return nil }

// SetReadDeadline sets the deadline of ReadMsg, Read and RecvDatagram.
func (c *UDPConn) SetReadDeadline(t time.Time) error { c.dl.setRead(&c.mu, t); return nil }

// SetWriteDeadline sets the deadline of the sends.
func (c *UDPConn) SetWriteDeadline(t time.Time) error { c.dl.setWrite(&c.mu, t); return nil }

// SetReadBuffer bounds the bytes of queued datagrams (SO_RCVBUF), on top of the
// UDPRecvMboxSize count; 0 removes the bound. A datagram always fits an empty mailbox.
func (c *UDPConn) SetReadBuffer(n int) error {
	if n < 0 {
		return errVal
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.box.maxB = n
	return nil
}

// SetPktInfo records whether the socket layer should report IP_PKTINFO (Meta always
// carries it); PktInfo reads it back.
func (c *UDPConn) SetPktInfo(on bool) {
	c.mu.Lock()
	c.pktInfo = on
	c.mu.Unlock()
}

// PktInfo reports the SetPktInfo setting.
func (c *UDPConn) PktInfo() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pktInfo
}
