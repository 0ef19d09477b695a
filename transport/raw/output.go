package raw

import (
	"encoding/binary"
	"net/netip"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// The largest payloads ip can carry without jumbograms.
const (
	MaxPayload4 = 0xffff - wire.IPv4MinHeaderLen
	MaxPayload6 = 0xffff
)

// Send sends p to the connected peer; it takes ownership. errs.Conn if not connected.
func (c *PCB) Send(p *pbuf.Pbuf) error {
	c.assertCore()
	if !c.usable() {
		p.Free()
		return errs.Clsd
	}
	if !c.raddr.IsValid() {
		p.Free()
		return errs.Conn
	}
	return c.send(p, c.rdst)
}

// SendTo sends p to dst; it takes ownership of p whatever the result.
//
// Ping PCB: p is a whole ICMP (ICMPv6) echo request, header and data: its type must be echo
// request and its code 0 (errs.Val otherwise); the stack writes the PCB's identifier
// (choosing one first if needed) and the checksum. Raw PCB: p is the protocol payload; an
// IPv6 PCB with a checksum offset gets its checksum written there.
//
// Errors: errs.Mem (no memory, or the link queue full), errs.MsgSize (too large for one IP
// packet), errs.NetUnreach (no route), errs.NetDown (the netif is down), errs.Val (bad
// destination or message), errs.Clsd.
func (c *PCB) SendTo(p *pbuf.Pbuf, dst netip.Addr) error {
	c.assertCore()
	if !c.usable() {
		p.Free()
		return errs.Clsd
	}
	return c.send(p, dst.Unmap())
}

func (c *PCB) send(pb *pbuf.Pbuf, dst netip.Addr) error {
	if pb == nil {
		return errs.Val
	}
	p := c.p
	if !c.family(dst) || dst.IsUnspecified() {
		pb.Free()
		return errs.Val
	}
	n := pb.TotLen()
	if !c.v6 && n > MaxPayload4 || c.v6 && n > MaxPayload6 {
		pb.Free()
		return errs.MsgSize
	}
	bare := dst.WithZone("")
	o := c.OutputOptions(bare.IsMulticast())
	if bare.IsMulticast() {
		var err error
		if o.Netif, err = p.ip.GroupEgress(dst, c.MulticastNetif()); err != nil {
			pb.Free()
			return err
		}
	}
	src, err := p.ip.SendSource(c.laddr, dst, o.Netif)
	if err != nil {
		pb.Free()
		return err
	}
	if c.ping {
		if err := c.fillEcho(pb, src, bare); err != nil {
			pb.Free()
			return err
		}
	} else if c.v6 && c.csum >= 0 {
		if c.csum+2 > n {
			pb.Free()
			return errs.Val
		}
		var zero [2]byte
		_ = pb.CopyIn(zero[:], c.csum)
		s := wire.Finish(pb.Checksum(0, n, wire.PseudoHeaderChecksum(c.proto, src, bare, uint32(n))))
		var b [2]byte
		binary.BigEndian.PutUint16(b[:], s)
		_ = pb.CopyIn(b[:], c.csum)
	}
	switch err := p.ip.Output(pb, src, dst, c.proto, o); err {
	case nil, errs.Mem:
		return err
	case errs.Rte:
		return p.ip.RouteErr(bare, o.Netif)
	default:
		return err
	}
}

// fillEcho checks that pb is an echo request and writes the identifier and checksum.
func (c *PCB) fillEcho(pb *pbuf.Pbuf, src, dst netip.Addr) error {
	var h [wire.ICMPv4HeaderLen]byte // ICMP and ICMPv6 echo headers have one layout
	if pb.CopyOut(h[:], 0) < len(h) {
		return errs.Val
	}
	m := wire.ICMPv4(h[:])
	want := uint8(wire.ICMPv4EchoRequest)
	if c.v6 {
		want = wire.ICMPv6EchoRequest
	}
	if m.Type() != want || m.Code() != 0 {
		return errs.Val
	}
	if err := c.ensureIdent(); err != nil {
		return err
	}
	m.SetIdent(c.ident)
	m.SetChecksumField(0)
	_ = pb.CopyIn(h[:], 0)
	n := pb.TotLen()
	var s uint32
	if c.v6 {
		// RFC 4443 §2.3: the ICMPv6 checksum covers the pseudo-header too.
		s = wire.PseudoHeaderChecksum(wire.ProtoICMPv6, src, dst, uint32(n))
	}
	m.SetChecksumField(wire.Finish(pb.Checksum(0, n, s)))
	return pb.CopyIn(h[2:4], 2)
}
