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
	return c.send(p, c.rdst, c.rport, netip.Addr{}, 0, 0, false, int(c.seg))
}

// SendTo sends p to dst (lwIP udp_sendto). It takes ownership of p, which is the payload:
// the 8-byte header goes in its header room (allocate it at pbuf.LayerTransport) or, when
// there is none, in a RAM pbuf chained in front. An unbound PCB is bound to an ephemeral
// port first. Errors: errs.Mem (no memory, or the egress link's queue is full), errs.MsgSize
// (payload over MaxPayload4 / MaxPayload6), errs.Access (a broadcast destination without
// SetBroadcast), errs.NetUnreach (no route), errs.NetDown (the netif is down), errs.Val (bad
// destination, port 0, wrong family), errs.Use (no ephemeral port), errs.Clsd. Under
// SetSegmentSize, as Linux: errs.MsgSize (a datagram would not fit the MTU), errs.Val
// (more than MaxSegments datagrams, or SetNoChecksum on IPv4).
func (c *PCB) SendTo(p *pbuf.Pbuf, dst netip.AddrPort) error {
	c.assertCore()
	if !c.usable() {
		p.Free()
		return errs.Clsd
	}
	return c.send(p, dst.Addr(), dst.Port(), netip.Addr{}, 0, 0, true, int(c.seg))
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
	return c.sendToFrom(p, dst, src, ifIndex, int(c.seg))
}

// SendToFromSeg is SendToFrom with a UDP_SEGMENT control message: seg (0..65535, errs.Val
// otherwise) is the segment size of this send in place of SetSegmentSize's, 0 for none.
// It takes ownership of p.
func (c *PCB) SendToFromSeg(p *pbuf.Pbuf, dst netip.AddrPort, src netip.Addr, ifIndex, seg int) error {
	c.assertCore()
	if !c.usable() {
		p.Free()
		return errs.Clsd
	}
	if seg < 0 || seg > 0xffff {
		p.Free()
		c.p.fail(&c.p.st.Err)
		return errs.Val
	}
	return c.sendToFrom(p, dst, src, ifIndex, seg)
}

// sendToFrom is SendToFrom with segment size seg; it takes ownership of p.
func (c *PCB) sendToFrom(p *pbuf.Pbuf, dst netip.AddrPort, src netip.Addr, ifIndex, seg int) error {
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
	return c.send(p, dst.Addr(), dst.Port(), src, 0, ifIndex, true, seg)
}

// fail counts a refused send.
func (p *Proto) fail(reason *uint64) {
	p.st.Drop++
	*reason++
}

// SendFrom sends p from src to dst as the reply of an intercepted session (SetIntercept):
// src is any unicast address and port of dst's family — no locality check, and c needs no
// local port (it is not bound by the send) —, so a TUN proxy answers from the address the
// client sent to, or any other. It is fragmented, segmented (SetSegmentSize) and
// checksummed as any send. It takes ownership of p. Errors: errs.Val (src or dst invalid,
// unspecified, multicast, port 0, or of two families), and SendTo's.
func (c *PCB) SendFrom(p *pbuf.Pbuf, src, dst netip.AddrPort) error {
	c.assertCore()
	if !c.usable() {
		p.Free()
		return errs.Clsd
	}
	s := src.Addr().Unmap().WithZone("")
	if !s.IsValid() || s.IsUnspecified() || s.IsMulticast() || src.Port() == 0 {
		p.Free()
		c.p.fail(&c.p.st.Err)
		return errs.Val
	}
	return c.send(p, dst.Addr().Unmap(), dst.Port(), s, src.Port(), 0, false, int(c.seg))
}

// send is every send; it takes ownership of pb. checkFamily is false for the connected
// peer, checked by Connect. seg is the UDP_SEGMENT of the send (0: none). sport, when not
// 0, is the source port of a SendFrom (src then set): c is not bound for it.
func (c *PCB) send(pb *pbuf.Pbuf, dst netip.Addr, dport uint16, src netip.Addr, sport uint16, ifIndex int, checkFamily bool, seg int) error {
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
	if sport == 0 {
		if c.flags&fBound == 0 {
			if err := c.bind(netip.Addr{}, 0); err != nil {
				pb.Free()
				p.fail(&p.st.Err)
				return err
			}
		}
		sport = c.lport
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
			if bare != bcast4 || ifIndex == 0 || o.Netif == nil {
				pb.Free()
				p.fail(&p.st.Rterr)
				return err
			}
			// RFC 1122 §3.2.1.3: 0.0.0.0 as a source is "only allowed ... as a source
			// address of an initialization procedure by which the host learns its own IP
			// address" (BOOTP, DHCP): a limited broadcast out of a chosen netif that has
			// no IPv4 address goes from it, as Linux sends it.
			src = netip.IPv4Unspecified()
		}
	}
	if seg == 0 {
		return c.emit(pb, src, sport, dst, dport, o, c.csumMode(dst, pb.TotLen(), o))
	}
	segs, cut, err := c.segments(pb.TotLen(), seg, dst, o)
	switch {
	case err != nil:
		pb.Free()
		return err
	case segs == 1:
		return c.emit(pb, src, sport, dst, dport, o, c.csumMode(dst, pb.TotLen(), o))
	case cut:
		return c.emitEach(pb, src, sport, dst, dport, o, seg)
	}
	return c.emit(pb, src, sport, dst, dport, o, seg)
}

// Checksum modes of emit besides a GSO segment size (> 0).
const (
	csumFull    = 0  // computed here (or none: SO_NO_CHECK on IPv4)
	csumPartial = -1 // left to the link (pbuf.FlagChecksumPartial)
)

// csumMode says how a datagram of n payload bytes to dst gets its checksum: left partial
// where the route's link completes checksums (ip.TxOffload.CsumPartial) and the datagram
// leaves whole — not looped to this host (a multicast or broadcast copy, delivered as it
// is) and not fragmented (a partial checksum covers one packet); IPv6 keeps to 1280
// bytes, as a router advertisement may lower its MTU below the netif's.
func (c *PCB) csumMode(dst netip.Addr, n int, o ip.OutputOptions) int {
	p := c.p
	bare := dst.WithZone("")
	if bare.IsMulticast() || dst.Is4() && c.flags&fNoChecksum != 0 || !p.ip.GSO(dst, wire.ProtoUDP).CsumPartial {
		return csumFull
	}
	nif := o.Netif
	if nif == nil {
		var err error
		if nif, _, err = p.ip.Lookup(dst); err != nil {
			return csumFull
		}
	}
	mtu, hl := min(nif.MTU(), wire.IPv6MinMTU), wire.IPv6HeaderLen
	if dst.Is4() {
		mtu, hl = nif.MTU(), wire.IPv4MinHeaderLen
		if bare == bcast4 || p.isBroadcast(bare, nif) {
			return csumFull
		}
	}
	if hl+wire.UDPHeaderLen+n > mtu {
		return csumFull
	}
	return csumPartial
}

// MaxSegments is how many datagrams one UDP_SEGMENT send may make: Linux's
// UDP_MAX_SEGMENTS (128 since 2024; 64 before).
const MaxSegments = 128

// segments checks a send of n payload bytes in datagrams of seg (UDP_SEGMENT) bytes as
// Linux's udp_send_skb does, and returns how many datagrams it makes; cut says they must
// be sent one by one rather than as one GSO packet: ip delivers a packet to this host as
// it is (a local destination, the looped copy of a multicast or broadcast) and does not
// take GSO packets there. Errors (counted): errs.MsgSize when the first datagram (a whole
// segment, or the payload when shorter) does not fit the egress netif's MTU, errs.Val for
// more than MaxSegments datagrams or with SO_NO_CHECK (IPv4; IPv6 always has a checksum).
func (c *PCB) segments(n, seg int, dst netip.Addr, o ip.OutputOptions) (segs int, cut bool, err error) {
	p := c.p
	bare := dst.WithZone("")
	local := p.ip.IsLocal(bare)
	nif := o.Netif
	if nif == nil && !local {
		nif, _ = p.egress(dst, 0) // the route exists: SendSource found one
	}
	hl := wire.IPv6HeaderLen
	if dst.Is4() {
		hl = wire.IPv4MinHeaderLen
	}
	// Linux since 2025: "if (hlen + min(datalen, cork->gso_size) > cork->fragsize)"
	// -EMSGSIZE (before: EINVAL, and for a shorter payload too). This host has no MTU.
	if nif != nil && !local && hl+wire.UDPHeaderLen+min(n, seg) > nif.MTU() {
		p.fail(&p.st.Lenerr)
		return 0, false, errs.MsgSize
	}
	if n > seg*MaxSegments || dst.Is4() && c.flags&fNoChecksum != 0 {
		p.fail(&p.st.Err)
		return 0, false, errs.Val
	}
	if n <= seg {
		return 1, false, nil // Linux: "only do GSO if # of segs > 1"
	}
	segs = (n + seg - 1) / seg
	cut = local || bare.IsMulticast() || bare == bcast4 || dst.Is4() && p.isBroadcast(bare, nif)
	if !cut && o.FailIfFull {
		// A packet the stack cuts in software takes a slot of the link's queue per
		// datagram: ask for them all (ip checks for one), so the send fails whole.
		if t := p.ip.GSO(dst, wire.ProtoUDP); t.GSOMax == 0 || t.Cut {
			if room, _ := p.ip.TxRoom(dst); room >= 0 && room < segs {
				p.fail(&p.st.Memerr)
				return 0, false, errs.Mem
			}
		}
	}
	return segs, cut, nil
}

// emitEach sends payload pb (owned) as datagrams of seg bytes, each a header in front of
// a view of pb: a UDP_SEGMENT send to this host. It stops at the first error.
func (c *PCB) emitEach(pb *pbuf.Pbuf, src netip.Addr, sport uint16, dst netip.Addr, dport uint16, o ip.OutputOptions, seg int) error {
	p := c.p
	defer pb.Free()
	total := pb.TotLen()
	for off := 0; off < total; off += seg {
		v, err := p.alloc.RefRange(nil, pb, off, min(seg, total-off))
		if err != nil {
			p.fail(&p.st.Memerr)
			return errs.Mem
		}
		if err := c.emit(v, src, sport, dst, dport, o, csumFull); err != nil {
			return err
		}
	}
	return nil
}

// emit puts the UDP header (source port sport) in front of payload pb (owned) and hands
// the datagram to ip.
// seg > 0 makes it a GSO packet of datagrams of seg bytes: the checksum is left partial
// (pbuf.FlagChecksumPartial: the pseudo-header sum with the whole length, folded, not
// complemented), and the link or ip's software GSO finishes each datagram's. seg is
// csumPartial for an ordinary datagram whose checksum the link finishes, csumFull for one
// whose checksum is computed here.
func (c *PCB) emit(pb *pbuf.Pbuf, src netip.Addr, sport uint16, dst netip.Addr, dport uint16, o ip.OutputOptions, seg int) error {
	p := c.p
	pb, err := p.header(pb)
	if err != nil {
		p.fail(&p.st.Memerr)
		return err
	}
	bare := dst.WithZone("")
	ulen := pb.TotLen()
	hb := wire.UDP(pb.Payload())
	r := wire.UDPRepr{SrcPort: sport, DstPort: dport, PayloadLen: ulen - wire.UDPHeaderLen}
	_ = r.EmitHeader(hb) // the length was checked against MaxPayload above
	datagrams := uint64(1)
	switch {
	case seg > 0 || seg == csumPartial:
		hb.SetChecksumField(wire.Fold(wire.PseudoHeaderChecksum(wire.ProtoUDP, src, bare, uint32(ulen))))
		pb.SetFlags(pb.Flags() | pbuf.FlagChecksumPartial)
		if seg > 0 {
			pb.SetGSO(pbuf.GSOUDPL4, seg)
			datagrams = uint64((ulen - wire.UDPHeaderLen + seg - 1) / seg)
		}
	case dst.Is6() || c.flags&fNoChecksum == 0:
		hb.SetChecksumField(wire.UDPChecksum(pb.Checksum(0, ulen,
			wire.PseudoHeaderChecksum(wire.ProtoUDP, src, bare, uint32(ulen)))))
	}
	switch err := p.ip.Output(pb, src, dst, wire.ProtoUDP, o); err {
	case nil:
		p.st.Xmit += datagrams
		return nil
	case errs.Rte:
		p.fail(&p.st.Rterr)
		return p.ip.RouteErr(dst, o.Netif)
	case errs.Mem:
		p.fail(&p.st.Memerr)
		return err
	case errs.Val:
		if seg > 0 {
			// ip refuses a GSO packet whose datagrams do not fit the MTU (an IPv6 MTU
			// from a router advertisement may be below the netif's).
			p.fail(&p.st.Lenerr)
			return errs.MsgSize
		}
		fallthrough
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
