package udp

import (
	"net/netip"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// The largest payloads: a 65535-byte IPv4 datagram less 20 bytes of IP header and 8 of
// UDP; an IPv6 payload of 65535 bytes less 8 (jumbograms are not supported).
const (
	MaxPayload4 = 0xffff - wire.IPv4MinHeaderLen - wire.UDPHeaderLen
	MaxPayload6 = 0xffff - wire.UDPHeaderLen
)

var bcast4 = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// Send sends p to the connected peer (lwIP udp_send). It takes ownership of p. errs.Conn if
// c is not connected; otherwise as SendTo.
func (c *PCB) Send(p *pbuf.Pbuf) error {
	c.assertCore()
	if !c.usable() {
		p.Free()
		return errs.Clsd
	}
	if c.flags&fConnected == 0 {
		p.Free()
		return errs.Conn
	}
	return c.send(p, c.rdst, c.rport, netip.Addr{}, 0, false)
}

// SendTo sends p to dst (lwIP udp_sendto). It takes ownership of p, which is the payload:
// the 8-byte header goes in its header room (allocate it at pbuf.LayerTransport) or, when
// there is none, in a RAM pbuf chained in front. An unbound PCB is bound to an ephemeral
// port first. Errors: errs.Mem (no memory, or the egress link's queue is full), errs.MsgSize
// (payload over MaxPayload4 / MaxPayload6), errs.Access (a broadcast destination without
// SetBroadcast), errs.NetUnreach (no route), errs.NetDown (the netif is down), errs.Val (bad
// destination, port 0, wrong family), errs.Use (no ephemeral port), errs.Clsd.
func (c *PCB) SendTo(p *pbuf.Pbuf, dst netip.AddrPort) error {
	c.assertCore()
	if !c.usable() {
		p.Free()
		return errs.Clsd
	}
	return c.send(p, dst.Addr(), dst.Port(), netip.Addr{}, 0, true)
}

// SendToFrom is SendTo with an IP_PKTINFO choice: src (when valid) is the source address,
// which must be local (errs.AddrNotAvail otherwise), and ifIndex (when not 0) the egress
// netif. It takes ownership of p.
func (c *PCB) SendToFrom(p *pbuf.Pbuf, dst netip.AddrPort, src netip.Addr, ifIndex int) error {
	c.assertCore()
	if !c.usable() {
		p.Free()
		return errs.Clsd
	}
	if src.IsValid() {
		s := src.Unmap().WithZone("")
		if s.IsUnspecified() {
			src = netip.Addr{}
		} else if !c.p.ip.IsLocal(s) {
			p.Free()
			c.p.fail(&c.p.st.Err)
			return errs.AddrNotAvail
		} else {
			src = s
		}
	}
	return c.send(p, dst.Addr(), dst.Port(), src, ifIndex, true)
}

// fail counts a refused send.
func (p *Proto) fail(reason *uint64) {
	p.st.Drop++
	*reason++
}

// send is every send; it takes ownership of pb. checkFamily is false for the connected
// peer, checked by Connect.
func (c *PCB) send(pb *pbuf.Pbuf, dst netip.Addr, dport uint16, src netip.Addr, ifIndex int, checkFamily bool) error {
	p := c.p
	if pb == nil {
		return errs.Val
	}
	mapped := dst.Is4In6()
	dst = dst.Unmap()
	if !dst.IsValid() || dst.IsUnspecified() || dport == 0 {
		pb.Free()
		p.fail(&p.st.Err)
		return errs.Val
	}
	if checkFamily {
		if err := c.familyOK(dst, mapped); err != nil {
			pb.Free()
			p.fail(&p.st.Err)
			return err
		}
	}
	if src.IsValid() && src.Is4() != dst.Is4() {
		pb.Free()
		p.fail(&p.st.Err)
		return errs.Val
	}
	limit := MaxPayload6
	if dst.Is4() {
		limit = MaxPayload4
	}
	if pb.TotLen() > limit {
		pb.Free()
		p.fail(&p.st.Lenerr)
		return errs.MsgSize
	}
	bare := dst.WithZone("")
	o := c.OutputOptions(dst.IsMulticast()) // the limited broadcast goes with the unicast TTL
	if (dst.IsMulticast() || bare == bcast4) && ifIndex == 0 {
		ifIndex = c.MulticastNetif()
	}
	// SO_BROADCAST: Linux refuses a broadcast destination with EACCES unless it is set.
	if dst.Is4() && c.flags&fBroadcast == 0 && (bare == bcast4 || p.isBroadcast(bare, nil)) {
		pb.Free()
		p.fail(&p.st.Err)
		return errs.Access
	}
	if c.flags&fBound == 0 {
		if err := c.bind(netip.Addr{}, 0); err != nil {
			pb.Free()
			p.fail(&p.st.Err)
			return err
		}
	}
	if ifIndex != 0 || dst.IsMulticast() || bare == bcast4 {
		n, err := p.egress(dst, ifIndex)
		if err != nil {
			pb.Free()
			p.fail(&p.st.Rterr)
			return err
		}
		o.Netif = n
	}
	if !src.IsValid() {
		var err error
		if src, err = p.ip.SendSource(c.laddr, dst, o.Netif); err != nil {
			pb.Free()
			p.fail(&p.st.Rterr)
			return err
		}
	}
	pb, err := p.header(pb)
	if err != nil {
		p.fail(&p.st.Memerr)
		return err
	}
	ulen := pb.TotLen()
	hb := wire.UDP(pb.Payload())
	r := wire.UDPRepr{SrcPort: c.lport, DstPort: dport, PayloadLen: ulen - wire.UDPHeaderLen}
	_ = r.EmitHeader(hb) // the length was checked against MaxPayload above
	if dst.Is6() || c.flags&fNoChecksum == 0 {
		hb.SetChecksumField(wire.UDPChecksum(ip.ChainChecksum(pb, 0, ulen,
			wire.PseudoHeaderChecksum(wire.ProtoUDP, src, bare, uint32(ulen)))))
	}
	switch err := p.ip.Output(pb, src, dst, wire.ProtoUDP, o); err {
	case nil:
		p.st.Xmit++
		return nil
	case errs.Rte:
		p.fail(&p.st.Rterr)
		return p.ip.RouteErr(dst, o.Netif)
	case errs.Mem:
		p.fail(&p.st.Memerr)
		return err
	default:
		p.fail(&p.st.Err)
		return err
	}
}

// header puts the UDP header in front of payload pb (owned): in its header room, else in
// a RAM pbuf chained in front. It returns the datagram; on errs.Mem pb is freed.
func (p *Proto) header(pb *pbuf.Pbuf) (*pbuf.Pbuf, error) {
	if pb.Type() != pbuf.REF && pb.Type() != pbuf.ROM && pb.HeaderRoom() >= wire.UDPHeaderLen &&
		pb.AddHeader(wire.UDPHeaderLen) == nil {
		return pb, nil
	}
	h, err := p.alloc.Alloc(pbuf.LayerIP, wire.UDPHeaderLen, pbuf.RAM)
	if err != nil {
		pb.Free()
		return nil, errs.Mem
	}
	h.SetFlags(pb.Flags())
	if pb.TotLen() == 0 {
		pb.Free()
	} else {
		pbuf.Cat(h, pb)
	}
	return h, nil
}

// egress returns the netif a send to dst leaves by: ifIndex's when set; for multicast and
// the limited broadcast, ip.NetifForGroup's choice (the route's netif, else the first up
// netif with an address of dst's family, as Linux's IP_MULTICAST_IF default amounts to on
// a host with one link); for unicast the route's (nil for a local address: ip loops it).
func (p *Proto) egress(dst netip.Addr, ifIndex int) (*ip.Netif, error) {
	bare := dst.WithZone("")
	if ifIndex == 0 && !bare.IsMulticast() && bare != bcast4 {
		n, _, err := p.ip.Lookup(dst)
		if err != nil {
			if p.ip.IsLocal(bare) {
				return nil, nil
			}
			return nil, p.ip.RouteErr(dst, nil)
		}
		return n, nil
	}
	return p.ip.GroupEgress(dst, ifIndex)
}

// isBroadcast reports whether IPv4 a is a broadcast address of n (nil: of the netif the
// route to a uses).
func (p *Proto) isBroadcast(a netip.Addr, n *ip.Netif) bool { return p.ip.IsBroadcast(a, n) }
