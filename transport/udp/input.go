package udp

import (
	"net/netip"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// Input takes ownership of p, which starts at the UDP header; h is borrowed (ip.Transport).
func (p *Proto) Input(h *ip.Header, pb *pbuf.Pbuf) {
	p.ip.AssertCore()
	p.st.Recv++
	if p.closed {
		p.drop(pb, &p.st.Err)
		return
	}
	b, ok := pb.Header(wire.UDPHeaderLen)
	if !ok {
		p.drop(pb, &p.st.Lenerr)
		return
	}
	u := wire.UDP(b)
	ulen := int(u.Length())
	// RFC 768: "Length is the length in octets of this user datagram including this
	// header and the data" — at least 8, and no more than IP delivered.
	if ulen < wire.UDPHeaderLen || ulen > pb.TotLen() {
		p.drop(pb, &p.st.Lenerr)
		return
	}
	// A partial checksum (a coalesced or looped packet) was never on a wire: the link
	// that says so vouches for the bytes, as Linux takes CHECKSUM_PARTIAL.
	if pb.Flags()&(pbuf.FlagChecksumOK|pbuf.FlagChecksumPartial) == 0 {
		if u.Checksum() == 0 {
			// RFC 768: "An all zero transmitted checksum value means that the transmitter
			// generated no checksum". RFC 8200 §8.1: "IPv6 receivers must discard UDP
			// packets containing a zero checksum".
			if h.Dst.Is6() {
				p.drop(pb, &p.st.Chkerr)
				return
			}
		} else if wire.Finish(pb.Checksum(0, ulen,
			wire.PseudoHeaderChecksum(wire.ProtoUDP, h.Src, h.Dst, uint32(ulen)))) != 0 {
			p.drop(pb, &p.st.Chkerr)
			return
		}
	}
	if typ, size := pb.GSO(); typ == pbuf.GSOUDPL4 && ulen-wire.UDPHeaderLen > size {
		// Coalesced datagrams (USO or UDP GRO on the link): each counts as received.
		p.st.Recv += uint64((ulen-wire.UDPHeaderLen+size-1)/size) - 1
	}
	sport, dport := u.SrcPort(), u.DstPort()
	src, dst := h.Src.WithZone(""), h.Dst.WithZone("")
	if h.Intercepted {
		// Never an ordinary PCB's, even one bound to a wildcard on that port: the datagram
		// is the intercept receiver's, or nobody's (port unreachable from dst, as below).
		if c := p.icept; c != nil {
			p.deliver(c, trim(pb, ulen), h, src, sport, dport)
			return
		}
		p.unreachable(h, pb, dst)
		return
	}
	if h.Broadcast || h.Multicast {
		p.deliverAll(h, pb, ulen, src, sport, dst, dport)
		return
	}
	c := p.lookup(src, sport, dst, dport)
	if c == nil {
		p.unreachable(h, pb, dst)
		return
	}
	pb = trim(pb, ulen)
	p.deliver(c, pb, h, src, sport, dport)
}

// unreachable answers a datagram nobody wants (pb, owned, at its UDP header) and drops it.
func (p *Proto) unreachable(h *ip.Header, pb *pbuf.Pbuf, dst netip.Addr) {
	// RFC 1122 §4.1.3.1: "If a datagram arrives addressed to a UDP port for which
	// there is no pending LISTEN call, UDP SHOULD send an ICMP Port Unreachable
	// message." ip refuses for broadcasts, multicasts and the other RFC 1122 §3.2.2
	// cases, and rate-limits.
	code := uint8(wire.ICMPv4PortUnreach)
	if dst.Is6() {
		code = wire.ICMPv6PortUnreach
	}
	p.ip.SendUnreachable(h, pb, code)
	p.drop(pb, &p.st.Proterr)
}

// SetIntercept makes c (a PCB from NewPCB, never bound) the receiver of every intercepted
// datagram (ip.Header.Intercepted): its RecvFunc gets them with info.Dst and info.DstPort
// the intercepted destination and info.Intercepted set, and answers with SendFrom. nil
// turns it off; closing c does too. Without one, an intercepted datagram gets an ICMP port
// unreachable, as a datagram to a local port nobody listens on. Ordinary PCBs never see
// intercepted datagrams, even one bound to a wildcard address on the port.
func (p *Proto) SetIntercept(c *PCB) {
	p.ip.AssertCore()
	if p.closed || c != nil && c.p != p {
		return
	}
	p.icept = c
}

// Intercepting returns the PCB SetIntercept set (nil: none).
func (p *Proto) Intercepting() *PCB {
	p.ip.AssertCore()
	return p.icept
}

// drop frees p and counts a drop under reason.
func (p *Proto) drop(pb *pbuf.Pbuf, reason *uint64) {
	if pb != nil {
		pb.Free()
	}
	p.st.Drop++
	*reason++
}

// trim cuts the datagram to its Length (IP may carry more) and removes the UDP header. A
// first pbuf left empty is dropped from the chain so the payload starts in the first pbuf.
// It takes ownership and returns the payload chain.
func trim(pb *pbuf.Pbuf, ulen int) *pbuf.Pbuf {
	if ulen < pb.TotLen() {
		pb.Shrink(ulen)
	}
	_ = pb.RemoveHeader(wire.UDPHeaderLen)
	if pb.Len() == 0 && pb.Next() != nil {
		rest := pb.Dechain()
		rest.CopyMeta(pb)
		pb.Free()
		pb = rest
	}
	return pb
}

// matchLocal reports whether c's local address receives a datagram to dst.
func (c *PCB) matchLocal(dst netip.Addr) bool {
	if isWild(c.laddr) {
		return families(c.laddr, c.flags&fV6Only != 0)&fam(dst) != 0
	}
	return c.laddr == dst
}

func fam(a netip.Addr) uint8 {
	if a.Is4() {
		return 1
	}
	return 2
}

// matchRemote reports whether c accepts a datagram from src:sport.
func (c *PCB) matchRemote(src netip.Addr, sport uint16) bool {
	return c.flags&fConnected == 0 || c.raddr == src && c.rport == sport
}

// lookup finds the PCB for a unicast datagram: a connected PCB whose 4-tuple matches beats
// one bound to the destination address, which beats a wildcard.
func (p *Proto) lookup(src netip.Addr, sport uint16, dst netip.Addr, dport uint16) *PCB {
	var best *PCB
	score := 0
	for c := *p.bucket(dport); c != nil; c = c.hnext {
		if c.lport != dport || !c.matchLocal(dst) || !c.matchRemote(src, sport) {
			continue
		}
		s := 1
		if c.flags&fConnected != 0 {
			return c
		}
		if !isWild(c.laddr) {
			s = 2
		}
		if s > score {
			best, score = c, s
		}
	}
	return best
}

// deliverAll gives a broadcast or multicast datagram to every PCB that matches (Linux
// semantics), a copy to each but the last. It takes ownership of pb.
func (p *Proto) deliverAll(h *ip.Header, pb *pbuf.Pbuf, ulen int, src netip.Addr, sport uint16, dst netip.Addr, dport uint16) {
	p.mark++
	if p.mark == 0 {
		p.mark = 1
	}
	mark := p.mark
	n := 0
	for c := *p.bucket(dport); c != nil; c = c.hnext {
		if c.lport == dport && c.matchLocal(dst) && c.matchRemote(src, sport) {
			c.mark = mark
			n++
		}
	}
	if n == 0 {
		p.drop(pb, &p.st.Proterr)
		return
	}
	pb = trim(pb, ulen)
	// A callback may close or bind PCBs: look the next marked one up afresh each time. A
	// closed PCB is zeroed, so it loses its mark.
	for n > 0 {
		var c *PCB
		for o := *p.bucket(dport); o != nil; o = o.hnext {
			if o.mark == mark {
				c = o
				break
			}
		}
		if c == nil {
			break
		}
		c.mark = 0
		n--
		if n == 0 {
			p.deliver(c, pb, h, src, sport, dport)
			return
		}
		q, err := p.alloc.Clone(pbuf.LayerRaw, pbuf.POOL, pb)
		if err != nil {
			p.st.Drop++
			p.st.Memerr++
			continue
		}
		p.deliver(c, q, h, src, sport, dport)
	}
	pb.Free()
}

// deliver hands the payload pb (owned) to c's callback.
func (p *Proto) deliver(c *PCB, pb *pbuf.Pbuf, h *ip.Header, src netip.Addr, sport, dport uint16) {
	if c.recvFn == nil {
		pb.Free()
		return
	}
	p.info = RecvInfo{
		Src: netip.AddrPortFrom(c.report(src), sport), Dst: c.report(h.Dst.WithZone("")), DstPort: dport,
		TTL: h.TTL, TOS: h.TOS, Broadcast: h.Broadcast, Multicast: h.Multicast, Intercepted: h.Intercepted,
	}
	if h.Netif != nil {
		p.info.IfIndex = h.Netif.Index()
	}
	if typ, size := pb.GSO(); typ != pbuf.GSONone {
		if typ == pbuf.GSOUDPL4 && pb.TotLen() > size {
			p.deliverSegs(c, pb, size)
			return
		}
		pb.SetGSO(pbuf.GSONone, 0)
	}
	c.recvFn(c, pb, &p.info)
}

// deliverSegs hands c the datagrams a GSO packet's payload pb (owned) holds, size bytes
// each but the last, as zero-copy views of it: Linux's udp_rcv_segment for a socket
// without UDP_GRO. A callback that closes a PCB ends the delivery (the PCB may have been
// handed out again): the datagrams left count as dropped (Err), as do those that get no
// view (Memerr: no PBUF header).
func (p *Proto) deliverSegs(c *PCB, pb *pbuf.Pbuf, size int) {
	defer pb.Free()
	pb.SetGSO(pbuf.GSONone, 0)
	closes := p.closes
	total := pb.TotLen()
	for off := 0; off < total; off += size {
		if p.closes != closes || c.recvFn == nil {
			left := uint64((total - off + size - 1) / size)
			p.st.Drop += left
			p.st.Err += left
			return
		}
		v, err := p.alloc.RefRange(nil, pb, off, min(size, total-off))
		if err != nil {
			p.st.Drop++
			p.st.Memerr++
			continue
		}
		v.CopyMeta(pb)
		c.recvFn(c, v, &p.info)
	}
}

// ControlInput reports an ICMP error about a datagram we sent to the connected PCB that
// sent it (ip.Transport); unconnected PCBs are not told, as on Linux without IP_RECVERR.
// quoted is borrowed: the quoted IP header (h.HeaderLen bytes) and the UDP header.
func (p *Proto) ControlInput(h *ip.Header, k ip.ControlKind, mtu int, quoted []byte) {
	p.ip.AssertCore()
	if p.closed || len(quoted) < h.HeaderLen+wire.UDPHeaderLen {
		return
	}
	var err error
	switch k {
	case ip.ControlPortUnreachable, ip.ControlProtoUnreachable:
		err = errs.Refused
	case ip.ControlNetUnreachable:
		err = errs.NetUnreach
	case ip.ControlHostUnreachable, ip.ControlAdminProhibited:
		err = errs.Rte
	case ip.ControlPacketTooBig:
		err = errs.MsgSize
	default:
		return // time exceeded, parameter problem: transient, not reported
	}
	u := wire.UDP(quoted[h.HeaderLen:])
	sport, dport := u.SrcPort(), u.DstPort()
	local, remote := h.Src.Unmap().WithZone(""), h.Dst.Unmap().WithZone("")
	for c := *p.bucket(sport); c != nil; c = c.hnext {
		if c.lport == sport && c.flags&fConnected != 0 && c.raddr == remote && c.rport == dport &&
			c.matchLocal(local) {
			if c.errFn != nil {
				c.errFn(c, err)
			}
			return
		}
	}
}
