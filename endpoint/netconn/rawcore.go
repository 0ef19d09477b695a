package netconn

import (
	"net/netip"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/raw"
)

// rawCore is the part PingConn and RawConn share on top of dgramConn: a transport/raw PCB
// and its addresses, the open path, the receive callback, the stack-close hook, ReadMsg,
// ReadFrom, Write, WriteTo and the send behind them, and Close. Each type keeps what it alone has:
// ping's echo identifier, raw's protocol, family and options.
type rawCore struct {
	pcbConn[*raw.PCB]

	// Set at creation.
	maxLen    int     // the longest payload a send takes
	pingIdent *uint16 // PingConn's identifier, refreshed at open and after each send; nil on a RawConn

	// Guarded by dgramConn.mu.
	laddr netip.Addr
	raddr netip.Addr
}

// rawFamily returns whether a socket opened with laddr and raddr is an IPv6 one: raddr's
// family, else laddr's; errs.Val when neither is valid.
func rawFamily(laddr, raddr netip.Addr) (v6 bool, err error) {
	fam := raddr.Unmap()
	if !fam.IsValid() {
		fam = laddr.Unmap()
	}
	if !fam.IsValid() {
		return false, errs.Val
	}
	return fam.Is6(), nil
}

// open makes c's PCB with newPCB, binds it to laddr (when valid, or when raddr is not),
// connects it to raddr (when valid), and links c into the stack's registry. Errors: those
// of openPCB and of the PCB's Bind and Connect.
func (c *rawCore) open(s *stack.Stack, laddr, raddr netip.Addr, newPCB func() (*raw.PCB, error)) error {
	s.Lock()
	defer s.Unlock()
	r, pcb, err := openPCB(s, newPCB, (*raw.PCB).Close, func(pcb *raw.PCB) error {
		return bindConnect(pcb, laddr, raddr, laddr.IsValid() || !raddr.IsValid())
	})
	if err != nil {
		return err
	}
	c.pcb, c.laddr, c.raddr = pcb, pcb.LocalAddr(), pcb.RemoteAddr()
	if c.pingIdent != nil {
		*c.pingIdent = pcb.Ident()
	}
	c.init(s, r)
	pcb.SetArg(c)
	pcb.OnRecv(rawRecv)
	r.add(&c.node, c)
	return nil
}

// rawRecv takes ownership of p: a whole echo reply message on a ping PCB, a copy of a
// packet from its transport header on on a raw one (core context).
func rawRecv(pcb *raw.PCB, p *pbuf.Pbuf, info *raw.RecvInfo) {
	c := pcb.Arg().(*rawCore)
	c.deliver(p, &Meta{Src: netip.AddrPortFrom(info.Src, 0), Dst: info.Dst, IfIndex: info.IfIndex,
		TTL: info.TTL, TOS: info.TOS})
}

// stackClosed implements member.
func (c *rawCore) stackClosed() {
	c.pcb = nil
	c.stackGone()
}

// ReadMsg reads one message into b: a PingConn's echo reply message (ICMP header
// included), a RawConn's packet from its transport header on; Meta.Truncated when b was
// short (the rest is lost). Errors: os.ErrDeadlineExceeded, net.ErrClosed.
func (c *rawCore) ReadMsg(b []byte) (int, Meta, error) { return c.readMsg(b) }

// ReadFrom reads one message (see ReadMsg) and returns its sender.
func (c *rawCore) ReadFrom(b []byte) (int, netip.Addr, error) {
	n, m, err := c.readMsg(b)
	return n, m.Src.Addr(), err
}

// Write sends b to the connected peer; errs.Conn when not connected.
func (c *rawCore) Write(b []byte) (int, error) {
	return c.send(b, netip.Addr{}, true)
}

// WriteTo sends b to dst. A PingConn's b is a whole ICMP echo request message (8-byte
// header and data; the stack fills in the identifier and the checksum); a RawConn's, the
// payload of one IP packet of the socket's protocol (an IPv6 socket with a checksum offset
// gets its checksum written there). Errors: errs.Val (not an echo request, wrong family,
// unspecified dst, payload shorter than the checksum offset), errs.Mem (no memory or the
// link is full: it never blocks), errs.MsgSize, errs.NetUnreach, errs.NetDown,
// net.ErrClosed, os.ErrDeadlineExceeded.
func (c *rawCore) WriteTo(b []byte, dst netip.Addr) (int, error) {
	return c.send(b, dst, false)
}

// send copies b into a new pbuf (outside the core lock) and sends it to dst, or to the
// connected peer when connected.
func (c *rawCore) send(b []byte, dst netip.Addr, connected bool) (int, error) {
	return c.sendWith(b, c.maxLen, func(pcb *raw.PCB, p *pbuf.Pbuf) (err error) {
		if connected {
			err = pcb.Send(p)
		} else {
			err = pcb.SendTo(p, dst)
		}
		if c.pingIdent != nil {
			// A ping PCB chooses its identifier at the first send when Bind did not.
			c.mu.Lock()
			*c.pingIdent = pcb.Ident()
			c.mu.Unlock()
		}
		return err
	})
}

// Close closes the socket and frees the queued messages; blocked and later calls return
// net.ErrClosed. A second Close returns net.ErrClosed.
func (c *rawCore) Close() error {
	return c.close(c.closePCB)
}

// LocalAddr returns the bound address (invalid or unspecified: any).
func (c *rawCore) LocalAddr() netip.Addr { return locked(&c.mu, &c.laddr) }

// RemoteAddr returns the connected peer (invalid when not connected).
func (c *rawCore) RemoteAddr() netip.Addr { return locked(&c.mu, &c.raddr) }
