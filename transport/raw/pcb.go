package raw

import (
	"net/netip"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// RecvInfo describes a received packet to a RecvFunc.
type RecvInfo struct {
	Src, Dst netip.Addr
	IfIndex  int
	TTL, TOS uint8 // IPv4 TTL and TOS, IPv6 hop limit and traffic class
}

// RecvFunc receives one packet. It takes ownership of p, which starts at the ICMP (or
// transport) header; info is borrowed for the call.
type RecvFunc func(c *PCB, p *pbuf.Pbuf, info *RecvInfo)

// PCB is one raw or ping endpoint (lwIP struct raw_pcb). Its methods are core context.
// After Close the PCB goes back to the pool and may be handed out again.
type PCB struct {
	p          *Proto
	next, prev *PCB

	proto    uint8
	v6       bool
	ping     bool
	hasIdent bool
	ident    uint16
	laddr    netip.Addr // zoneless; invalid or unspecified: any
	raddr    netip.Addr // zoneless; invalid: not connected
	rdst     netip.Addr // raddr as given (a zone picks the netif)
	csum     int        // IPV6_CHECKSUM offset, -1 off

	ip.SendOptions // TTL, TOS, multicast TTL, netif and loop
	mark           uint32

	recvFn RecvFunc
	arg    any
}

func (c *PCB) usable() bool { return c != nil && c.p != nil && !c.p.closed }

// family checks that a belongs to c's family.
func (c *PCB) family(a netip.Addr) bool { return a.IsValid() && a.Is6() == c.v6 }

// Bind sets the local address: only packets to it are received, and it is the source of
// sends (unspecified: any). A ping PCB also gets its identifier now if it has none
// (random, unique per family). errs.Val for the wrong family, errs.AddrNotAvail for an
// address that is not local, errs.Use if no identifier is free.
func (c *PCB) Bind(addr netip.Addr) error {
	c.assertCore()
	if !c.usable() {
		return errs.Clsd
	}
	addr = addr.Unmap()
	if addr.IsValid() && !c.family(addr) {
		return errs.Val
	}
	a := addr.WithZone("")
	if !c.p.local(a) {
		return errs.AddrNotAvail
	}
	if err := c.ensureIdent(); err != nil {
		return err
	}
	c.laddr = a
	return nil
}

// BindIdent chooses a ping PCB's echo identifier. errs.Use if another ping PCB of the
// family has it, errs.Val on a raw PCB.
func (c *PCB) BindIdent(id uint16) error {
	c.assertCore()
	if !c.usable() {
		return errs.Clsd
	}
	if !c.ping {
		return errs.Val
	}
	if c.p.identTaken(c, c.v6, id) {
		return errs.Use
	}
	c.ident, c.hasIdent = id, true
	return nil
}

// ensureIdent gives a ping PCB that has no echo identifier yet one (errs.Use when every
// one is taken); a raw PCB, or a ping PCB that has one, is left as it is.
func (c *PCB) ensureIdent() error {
	if c.ping && !c.hasIdent {
		id, ok := c.p.pickIdent(c)
		if !ok {
			return errs.Use
		}
		c.ident, c.hasIdent = id, true
	}
	return nil
}

// Ident returns a ping PCB's echo identifier (0 before one is chosen).
func (c *PCB) Ident() uint16 {
	c.assertCore()
	return c.ident
}

// Connect sets the peer: sends without a destination go there and only packets from it are
// received. errs.Val for the wrong family or an unspecified address.
func (c *PCB) Connect(addr netip.Addr) error {
	c.assertCore()
	if !c.usable() {
		return errs.Clsd
	}
	addr = addr.Unmap()
	if !c.family(addr) || addr.IsUnspecified() {
		return errs.Val
	}
	if err := c.ensureIdent(); err != nil {
		return err
	}
	c.raddr, c.rdst = addr.WithZone(""), addr
	return nil
}

// Disconnect forgets the peer.
func (c *PCB) Disconnect() {
	c.assertCore()
	c.raddr, c.rdst = netip.Addr{}, netip.Addr{}
}

// Close frees c; no callback runs afterwards.
func (c *PCB) Close() {
	c.assertCore()
	if c == nil || c.p == nil {
		return
	}
	p := c.p
	p.unlink(c)
	p.ip.RawListen(c.proto, false)
	p.pcbs.Put(c)
}

// LocalAddr returns the bound address (invalid when unbound).
func (c *PCB) LocalAddr() netip.Addr {
	c.assertCore()
	return c.laddr
}

// RemoteAddr returns the peer (invalid when not connected).
func (c *PCB) RemoteAddr() netip.Addr {
	c.assertCore()
	return c.raddr
}

// Proto returns the IP protocol of c (ICMP or ICMPv6 for a ping PCB).
func (c *PCB) Proto() uint8 {
	c.assertCore()
	return c.proto
}

// IsPing reports whether c is an echo (ping) PCB.
func (c *PCB) IsPing() bool {
	c.assertCore()
	return c.ping
}

// V6 reports whether c is an IPv6 PCB.
func (c *PCB) V6() bool {
	c.assertCore()
	return c.v6
}

// OnRecv sets the receive callback (nil: packets are not taken).
func (c *PCB) OnRecv(fn RecvFunc) {
	c.assertCore()
	c.recvFn = fn
}

// SetArg sets the value Arg returns.
func (c *PCB) SetArg(a any) {
	c.assertCore()
	c.arg = a
}

// Arg returns the value SetArg set.
func (c *PCB) Arg() any {
	c.assertCore()
	return c.arg
}

// SetChecksumOffset sets IPV6_CHECKSUM: the offset in the payload of a 16-bit checksum over
// the pseudo-header and payload that the stack writes on send and verifies on receive; -1
// switches it off. errs.Val on an IPv4 PCB, a ping PCB, an ICMPv6 PCB (always 2, RFC 3542
// §3.1), or an odd or negative offset.
func (c *PCB) SetChecksumOffset(off int) error {
	c.assertCore()
	if !c.usable() {
		return errs.Clsd
	}
	if !c.v6 || c.ping || c.proto == wire.ProtoICMPv6 || off < -1 || off > 0 && off&1 != 0 {
		return errs.Val
	}
	c.csum = off
	return nil
}

// ChecksumOffset returns the IPV6_CHECKSUM offset, -1 when off.
func (c *PCB) ChecksumOffset() int {
	c.assertCore()
	return c.csum
}

// assertCore panics in wispcheck builds unless the core lock is held (ip.Layer.AssertCore):
// every exported method of a PCB starts with it. A freed PCB (c.p nil) is not checked.
func (c *PCB) assertCore() {
	if c != nil && c.p != nil {
		c.p.ip.AssertCore()
	}
}
