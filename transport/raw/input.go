package raw

import (
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// RawInput implements ip.Raw: p starts at the transport header and is borrowed unless
// RawInput returns true (eaten). Raw PCBs of the protocol get copies first (as Linux's
// raw_local_deliver runs before the protocol), then a ping PCB may eat an echo reply.
func (p *Proto) RawInput(h *ip.Header, pb *pbuf.Pbuf) bool {
	p.ip.AssertCore()
	if p.closed {
		return false
	}
	v6 := h.Dst.Is6()
	if p.copyRaw(h, pb, v6) && !handled(h.Proto, v6) {
		// Nobody else implements this protocol: the raw PCBs had it, so it is no
		// "protocol unreachable".
		pb.Free()
		return true
	}
	if (!v6 && h.Proto == wire.ProtoICMP) || (v6 && h.Proto == wire.ProtoICMPv6) {
		return p.pingInput(h, pb, v6)
	}
	return false
}

// handled reports whether ip or a transport of the stack processes proto.
func handled(proto uint8, v6 bool) bool {
	switch proto {
	case wire.ProtoTCP, wire.ProtoUDP:
		return true
	case wire.ProtoICMP, wire.ProtoIGMP:
		return !v6
	case wire.ProtoICMPv6:
		return v6
	}
	return false
}

// accepts reports whether c's address filters let a packet described by h through.
func (c *PCB) accepts(h *ip.Header) bool {
	if c.laddr.IsValid() && !c.laddr.IsUnspecified() && c.laddr != h.Dst.WithZone("") {
		return false
	}
	return !c.raddr.IsValid() || c.raddr == h.Src.WithZone("")
}

// copyRaw gives a copy of pb to every raw PCB of h's protocol and family; it reports
// whether one received it. pb is borrowed.
func (p *Proto) copyRaw(h *ip.Header, pb *pbuf.Pbuf, v6 bool) bool {
	p.mark++
	if p.mark == 0 {
		p.mark = 1
	}
	mark := p.mark
	n := 0
	for c := p.head; c != nil; c = c.next {
		if !c.ping && c.proto == h.Proto && c.v6 == v6 && c.recvFn != nil && c.accepts(h) {
			c.mark = mark
			n++
		}
	}
	if n == 0 {
		return false
	}
	got := false
	for {
		var c *PCB
		for o := p.head; o != nil; o = o.next {
			if o.mark == mark {
				c = o
				break
			}
		}
		if c == nil {
			return got
		}
		c.mark = 0
		if v6 && c.csum >= 0 && !p.validSum6(h, pb, c.csum) {
			continue // RFC 3542 §3.1: a packet with a bad checksum is not delivered
		}
		q, err := p.alloc.Clone(pbuf.LayerRaw, pbuf.POOL, pb)
		if err != nil {
			continue
		}
		got = true
		p.deliver(c, q, h)
	}
}

// validSum6 verifies the checksum at off of an IPv6 packet's payload pb over the
// pseudo-header (RFC 8200 §8.1); off < 0 checks nothing.
func (p *Proto) validSum6(h *ip.Header, pb *pbuf.Pbuf, off int) bool {
	if off < 0 {
		return true
	}
	n := pb.TotLen()
	if off+2 > n {
		return false
	}
	if pb.Flags()&pbuf.FlagChecksumOK != 0 {
		return true
	}
	s := wire.PseudoHeaderChecksum(h.Proto, h.Src, h.Dst, uint32(n))
	return wire.Finish(pb.Checksum(0, n, s)) == 0
}

// pingInput lets the ping PCB whose identifier an echo reply carries eat it.
func (p *Proto) pingInput(h *ip.Header, pb *pbuf.Pbuf, v6 bool) bool {
	b, ok := pb.Header(wire.ICMPv4HeaderLen)
	if !ok {
		return false
	}
	typ := uint8(wire.ICMPv4EchoReply)
	if v6 {
		typ = wire.ICMPv6EchoReply
	}
	m := wire.ICMPv4(b) // echo replies of both families share the first 8 bytes' layout
	if m.Type() != typ || m.Code() != 0 {
		return false
	}
	id := m.Ident()
	var c *PCB
	for o := p.head; o != nil; o = o.next {
		if o.ping && o.v6 == v6 && o.hasIdent && o.ident == id && o.accepts(h) {
			c = o
			break
		}
	}
	if c == nil || c.recvFn == nil {
		return false
	}
	// ip checks the checksum after the raw hook: a reply the PCB takes is checked here
	// (RFC 792; RFC 4443 §2.3 with the pseudo-header).
	if pb.Flags()&pbuf.FlagChecksumOK == 0 {
		n := pb.TotLen()
		var s uint32
		if v6 {
			s = wire.PseudoHeaderChecksum(wire.ProtoICMPv6, h.Src, h.Dst, uint32(n))
		}
		if wire.Finish(pb.Checksum(0, n, s)) != 0 {
			return false // ip counts and drops it
		}
	}
	p.deliver(c, pb, h)
	return true
}

// deliver hands pb (owned) to c.
func (p *Proto) deliver(c *PCB, pb *pbuf.Pbuf, h *ip.Header) {
	p.info = RecvInfo{Src: h.Src.WithZone(""), Dst: h.Dst.WithZone(""), TTL: h.TTL, TOS: h.TOS}
	if h.Netif != nil {
		p.info.IfIndex = h.Netif.Index()
	}
	c.recvFn(c, pb, &p.info)
}
