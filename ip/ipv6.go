package ip

import (
	"errors"
	"net/netip"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip/frag"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// input6 processes one IPv6 packet (RFC 8200); it takes ownership.
func (l *Layer) input6(n *Netif, p *pbuf.Pbuf, looped bool) {
	l.ip6.Recv++
	hb, ok := p.Header(wire.IPv6HeaderLen)
	if !ok {
		l.dropPkt(p, &l.ip6.Lenerr)
		return
	}
	ip := wire.IPv6(hb)
	tl := wire.IPv6HeaderLen + int(ip.PayloadLength())
	if tl > p.TotLen() {
		l.dropPkt(p, &l.ip6.Lenerr)
		return
	}
	if tl < p.TotLen() {
		p.Shrink(tl) // link padding
	}
	src, dst := ip.Src(), ip.Dst()
	mcast, icept := dst.IsMulticast(), false
	if c := &l.in6; c.hit(l, n, src, dst, looped) {
		icept = c.icept
	} else {
		// RFC 4291 §2.7: "Multicast addresses must not be used as source addresses";
		// §2.5.3: the loopback address "must never be sent outside a single node", nor
		// received.
		// Our own address as the source of a packet from the wire is a martian (the
		// "land" attack), as in IPv4.
		if src.IsMulticast() || !looped && (src.IsLoopback() || dst.IsLoopback() || l.localNetif(src) != nil) || dst.IsUnspecified() {
			l.dropPkt(p, &l.ip6.Err)
			return
		}
		if mcast {
			// A follower is given only what its leader accepted (neighbour discovery to
			// the solicited-node groups it joined), and joins no group of its own.
			if !n.isMember(dst) && !n.follower {
				l.dropPkt(p, &l.ip6.Err) // a group we have not joined
				return
			}
		} else if l.localNetif(dst) == nil {
			if l.findLocal(dst) != nil {
				// RFC 4862 §5.4: a packet to a tentative address "MUST be silently
				// discarded".
				l.dropPkt(p, &l.ip6.Err)
				return
			}
			if icept = !looped && n.intercepts(dst); !icept {
				l.forward6(n, p)
				return
			}
		}
		c.set(l, n, src, dst, looped, false, icept)
	}
	l.walk6(n, p, src, dst, mcast, icept, false)
}

// walk6 processes the extension headers of p and delivers it (RFC 8200 §4); it takes
// ownership. icept: dst is intercepted (Header.Intercepted); reassembled is set for the
// output of reassembly.
func (l *Layer) walk6(n *Netif, p *pbuf.Pbuf, src, dst netip.Addr, mcast, icept, reassembled bool) {
	c, err := walkChain(p)
	if err != nil {
		if c.ErrPointer == 0 {
			// The headers run past the first pbuf: links deliver the first bytes of a
			// frame contiguously, so only a malicious chain gets here.
			l.dropPkt(p, &l.ip6.Lenerr)
			return
		}
		// RFC 8200 §4: a header the node cannot parse earns a Parameter Problem.
		l.refuse6(n, p, wire.ICMPv6ParamProblem, c.ErrCode, uint32(c.ErrPointer), &l.ip6.Opterr)
		return
	}
	hb := p.Payload()
	nh, nhField, off := wire.IPv6(hb).NextHeader(), 6, wire.IPv6HeaderLen
	for nh == wire.ProtoHopByHop || nh == wire.ProtoIPv6Route || nh == wire.ProtoIPv6DstOpts {
		eh := wire.IPv6ExtHeader(hb[off:])
		switch nh {
		case wire.ProtoHopByHop, wire.ProtoIPv6DstOpts:
			if !l.options6(n, p, eh, off, mcast) {
				return
			}
		case wire.ProtoIPv6Route:
			// RFC 8200 §4.4: with Segments Left non-zero and an unrecognised Routing Type,
			// "the node must discard the packet and send an ICMP Parameter Problem, Code
			// 0, message ... pointing to the unrecognized Routing Type". wisp recognises
			// none (type 0 is deprecated by RFC 5095).
			if eh.SegmentsLeft() != 0 {
				l.refuse6(n, p, wire.ICMPv6ParamProblem, wire.ICMPv6ParamErroneousField, uint32(off+2), &l.ip6.Opterr)
				return
			}
		}
		nh, nhField, off = eh.NextHeader(), off, off+eh.Len()
	}
	if nh == wire.ProtoIPv6Frag {
		if reassembled {
			l.dropPkt(p, &l.ip6.Opterr) // a fragment of a fragment
			return
		}
		l.fragInput6(n, p, src, dst, mcast, icept, off)
		return
	}
	if nh == wire.ProtoNoNextHdr {
		p.Free() // RFC 8200 §4.7: nothing follows; not an error
		return
	}
	h := &l.inHdr
	*h = Header{Src: src, Dst: dst, Proto: nh, TTL: hb[7], TOS: wire.IPv6(hb).TrafficClass(),
		HeaderLen: off, Netif: n, Multicast: mcast, Intercepted: icept, nhOff: nhField}
	l.deliver(h, p)
}

// options6 processes the options of a Hop-by-Hop or Destination Options header at off
// (RFC 8200 §4.2). It reports false after dropping p.
func (l *Layer) options6(n *Netif, p *pbuf.Pbuf, eh wire.IPv6ExtHeader, off int, mcast bool) bool {
	it := eh.Options()
	for {
		o, ok := it.Next()
		if !ok {
			break
		}
		if o.Type == wire.IPv6OptRouterAlert {
			continue // RFC 2711: meaningful to routers only
		}
		// RFC 8200 §4.2: the two high bits of an unrecognised option's type say what to do.
		switch wire.IPv6OptionAction(o.Type) {
		case wire.IPv6OptActionSkip:
			continue
		case wire.IPv6OptActionDiscardICMP:
			l.icmp6Error(n, p, wire.ICMPv6ParamProblem, wire.ICMPv6ParamUnknownOption, uint32(off+o.Offset))
		case wire.IPv6OptActionDiscardICMPUni:
			if !mcast {
				l.icmp6Error(n, p, wire.ICMPv6ParamProblem, wire.ICMPv6ParamUnknownOption, uint32(off+o.Offset))
			}
		}
		l.dropPkt(p, &l.ip6.Opterr)
		return false
	}
	if it.Err() != nil {
		l.refuse6(n, p, wire.ICMPv6ParamProblem, wire.ICMPv6ParamErroneousField, uint32(off+it.ErrOffset()), &l.ip6.Opterr)
		return false
	}
	return true
}

// fragInput6 feeds a fragment (Fragment header at fo) to the reassembler and processes the
// datagram when complete (RFC 8200 §4.5); it takes ownership.
func (l *Layer) fragInput6(n *Netif, p *pbuf.Pbuf, src, dst netip.Addr, mcast, icept bool, fo int) {
	hb := p.Payload()
	fh := wire.IPv6Fragment(hb[fo:])
	data := p.TotLen() - fo - wire.IPv6FragmentHeaderLen
	// RFC 8200 §4.5: "If the length of a fragment ... is not a multiple of 8 octets and the
	// M flag of that fragment is 1, then that fragment must be discarded and an ICMP
	// Parameter Problem, Code 0, message should be sent ... pointing to the Payload Length
	// field of the fragment packet."
	if fh.MoreFragments() && (data == 0 || data%8 != 0) {
		l.refuse6(n, p, wire.ICMPv6ParamProblem, wire.ICMPv6ParamErroneousField, 4, &l.ip6.Lenerr)
		return
	}
	// "If the length and offset of a fragment are such that the Payload Length of the
	// packet reassembled from that fragment would exceed 65,535 octets, then that fragment
	// must be discarded and an ICMP Parameter Problem, Code 0, message should be sent ...
	// pointing to the Fragment Offset field of the fragment packet."
	if fo-wire.IPv6HeaderLen+fh.FragmentOffset()+data > 0xffff {
		l.refuse6(n, p, wire.ICMPv6ParamProblem, wire.ICMPv6ParamErroneousField, uint32(fo+2), &l.ip6.Lenerr)
		return
	}
	key := frag.Key{V6: true, Src: src, Dst: dst, ID: fh.Identification()}
	dg, hl0, err := l.reass.Input(key, p, fo+wire.IPv6FragmentHeaderLen, fh.FragmentOffset(), fh.MoreFragments())
	if err != nil || dg == nil {
		if errors.Is(err, frag.ErrMisaligned) || errors.Is(err, frag.ErrTooBig) {
			l.ip6.Drop++ // frag counted it as well; the IP record sees the drop too
			l.ip6.Lenerr++
		}
		return
	}
	// Remove the Fragment header from the offset-0 fragment's headers: find it again (its
	// position in that fragment may differ), point the preceding Next Header at what
	// followed it, and slide the headers in front of it 8 bytes forward.
	hb, ok := dg.Header(hl0)
	if !ok || hl0 < wire.IPv6HeaderLen+wire.IPv6FragmentHeaderLen {
		l.dropPkt(dg, &l.ip6.Lenerr)
		return
	}
	nh, nhField, off := wire.IPv6(hb).NextHeader(), 6, wire.IPv6HeaderLen
	for nh != wire.ProtoIPv6Frag && off+8 <= hl0 {
		eh := wire.IPv6ExtHeader(hb[off:])
		nh, nhField, off = eh.NextHeader(), off, off+eh.Len()
	}
	if nh != wire.ProtoIPv6Frag || off+wire.IPv6FragmentHeaderLen > hl0 {
		l.dropPkt(dg, &l.ip6.Opterr)
		return
	}
	// nhField is the offset of a Next Header byte, in the IPv6 header or an extension
	// header, as the walk found it; it is written as the byte it is (as nhOff is reported).
	hb[nhField] = wire.IPv6Fragment(hb[off:]).NextHeader()
	copy(hb[wire.IPv6FragmentHeaderLen:off+wire.IPv6FragmentHeaderLen], hb[:off])
	_ = dg.RemoveHeader(wire.IPv6FragmentHeaderLen)
	wire.IPv6(dg.Payload()).SetPayloadLength(uint16(dg.TotLen() - wire.IPv6HeaderLen))
	l.walk6(n, dg, src, dst, mcast, icept, true)
}

// walkChain runs wire.WalkIPv6 over the headers in p's first pbuf. WalkIPv6 wants the
// whole packet in one slice; a chained packet's Payload Length is lowered for the walk to
// what the first pbuf holds, and restored. A chain whose headers run past the first pbuf
// returns an error with ErrPointer 0.
func walkChain(p *pbuf.Pbuf) (wire.IPv6Chain, error) {
	b := p.Payload()
	ip := wire.IPv6(b)
	plen := ip.PayloadLength()
	if have := len(b) - wire.IPv6HeaderLen; have < int(plen) {
		ip.SetPayloadLength(uint16(have))
		c, err := wire.WalkIPv6(b)
		ip.SetPayloadLength(plen)
		if err != nil {
			c.ErrPointer = 0
		}
		return c, err
	}
	return wire.WalkIPv6(b[:wire.IPv6HeaderLen+int(plen)])
}

// forward6 routes a packet not addressed to this stack (RFC 8200 §3, RFC 4443) or drops it
// when forwarding is off; it takes ownership.
func (l *Layer) forward6(in *Netif, p *pbuf.Pbuf) {
	hb := p.Payload()
	ip := wire.IPv6(hb)
	src, dst := ip.Src(), ip.Dst()
	if !l.opts.IPForward || p.Flags()&(pbuf.FlagLinkBroadcast|pbuf.FlagLinkMulticast) != 0 ||
		src.IsUnspecified() {
		l.dropPkt(p, &l.ip6.Err)
		return
	}
	// RFC 4291 §2.5.6: "Routers must not forward any packets with Link-Local source or
	// destination addresses to other links."
	if dst.IsLinkLocalUnicast() || src.IsLinkLocalUnicast() {
		l.refuse6(in, p, wire.ICMPv6DestUnreach, wire.ICMPv6BeyondScope, 0, &l.ip6.Err)
		return
	}
	// RFC 8200 §3: the hop limit is decremented by each forwarding node and the packet
	// discarded when it reaches zero, with an ICMP Time Exceeded (RFC 4443 §3.3).
	if ip.HopLimit() <= 1 {
		l.refuse6(in, p, wire.ICMPv6TimeExceeded, wire.ICMPv6HopLimitExceeded, 0, &l.ip6.Err)
		return
	}
	out, nh, ok := l.lookup(dst, nil)
	if !ok {
		l.refuse6(in, p, wire.ICMPv6DestUnreach, wire.ICMPv6NoRoute, 0, &l.ip6.Rterr)
		return
	}
	// RFC 8200 §5: routers never fragment; RFC 4443 §3.2 Packet Too Big carries the MTU.
	if gso, _ := p.GSO(); gso != pbuf.GSONone && !forwardGSO(out, p, wire.IPv6HeaderLen, true) ||
		gso == pbuf.GSONone && p.TotLen() > out.mtuFor(true) {
		l.refuse6(in, p, wire.ICMPv6PacketTooBig, 0, uint32(out.mtuFor(true)), &l.ip6.Err)
		return
	}
	ip.SetHopLimit(ip.HopLimit() - 1)
	p.SetFlags(p.Flags() & pbuf.FlagChecksumPartial) // the one fact the next link needs
	l.ip6.Fw++
	l.ip6.Xmit++
	_ = l.send6(out, p, nh)
}

// output6 is Output for IPv6.
func (l *Layer) output6(p *pbuf.Pbuf, src, dst netip.Addr, proto uint8, o OutputOptions) error {
	n, nh, local, _, err := l.routeCached(dst, o.Netif)
	if err != nil {
		l.ip6.Drop++
		l.ip6.Rterr++
		p.Free()
		return errs.Rte
	}
	dst = dst.WithZone("")
	loopOnly := o.LoopOnly && dst.IsMulticast() && !local
	if loopOnly && (!o.MulticastLoop || !n.isMember(dst)) {
		p.Free() // no local member to give it to, and it must not leave
		return nil
	}
	if o.FailIfFull && !local && !loopOnly && n.full() {
		l.ip6.Drop++
		l.ip6.Memerr++
		p.Free()
		return errs.Mem
	}
	if !src.IsValid() {
		if src, err = l.SourceFor(dst, n); err != nil {
			l.ip6.Drop++
			l.ip6.Rterr++
			p.Free()
			return errs.Rte
		}
	}
	o.LoopOnly = loopOnly // send6Hdr: hop limit 0, not the default
	if loopOnly {
		o.TTL = 0
	}
	return l.send6Hdr(n, p, src.WithZone(""), dst, nh, proto, o, local || loopOnly)
}

// send6Hdr builds the IPv6 header (fragmenting if needed) and sends; it takes ownership.
// local loops the packet back instead (a local destination, or o.LoopOnly: hop limit 0).
func (l *Layer) send6Hdr(n *Netif, p *pbuf.Pbuf, src, dst, nh netip.Addr, proto uint8, o OutputOptions, local bool) error {
	hop := o.TTL
	if hop == 0 && !o.LoopOnly {
		hop = l.opts.IPDefaultTTL
		if n.hopLimit != 0 {
			hop = n.hopLimit // RFC 4861 §6.3.4: CurHopLimit from the router
		}
	}
	r := wire.IPv6Repr{TrafficClass: o.TOS, NextHeader: proto, HopLimit: hop, Src: src, Dst: dst}
	if typ, _ := p.GSO(); typ != pbuf.GSONone {
		if local {
			l.dropPkt(p, &l.ip6.Lenerr)
			return errs.Val
		}
		if l.gsoOutput(n, p, wire.IPv6HeaderLen, true, &l.ip6) == 0 {
			return errs.Val
		}
	} else if !local {
		mtu := n.mtuFor(true)
		if mtu < wire.IPv6MinMTU {
			l.ip6.Drop++
			l.ip6.Err++
			p.Free()
			return errs.Val
		}
		if wire.IPv6HeaderLen+p.TotLen() > mtu {
			if o.MulticastLoop && dst.IsMulticast() && n.isMember(dst) {
				var hb [wire.IPv6HeaderLen]byte
				r.PayloadLen = p.TotLen()
				_ = r.Emit(hb[:])
				l.loopMcast(n, hb[:], p)
			}
			// RFC 8200 §5: the source fragments packets larger than the path MTU.
			completeBeforeFragment(p, proto)
			return l.fragment6(n, p, &r, nh, mtu)
		}
	}
	if p.TotLen() > 0xffff {
		l.ip6.Drop++
		l.ip6.Lenerr++
		p.Free()
		return errs.Val
	}
	p, err := l.prepend(p, wire.IPv6HeaderLen, n)
	if err != nil {
		l.ip6.Drop++
		l.ip6.Memerr++
		return err
	}
	r.PayloadLen = p.TotLen() - wire.IPv6HeaderLen
	hb, _ := p.Header(wire.IPv6HeaderLen)
	_ = r.Emit(hb)
	l.ip6.Xmit++
	if local {
		return l.loopback(n, p)
	}
	if o.MulticastLoop && dst.IsMulticast() && n.isMember(dst) {
		l.loopMcast(n, nil, p)
	}
	return l.send6(n, p, nh)
}

// send6 hands a finished IPv6 packet to n, resolving the next hop on Ethernet; it takes
// ownership.
func (l *Layer) send6(n *Netif, p *pbuf.Pbuf, nh netip.Addr) error {
	if n.eth == nil {
		n.xmit(p)
		return nil
	}
	if nh.IsMulticast() {
		// RFC 2464 §7: 33:33 and the low 32 bits of the group.
		return n.eth.Output(p, wire.IPv6MulticastMAC(nh), uint16(wire.EtherTypeIPv6))
	}
	return l.nd.output(n, p, nh)
}

// fragment6 sends payload p as fragments of an IPv6 header r plus a Fragment header
// (RFC 8200 §4.5); it takes ownership.
func (l *Layer) fragment6(n *Netif, p *pbuf.Pbuf, r *wire.IPv6Repr, nh netip.Addr, mtu int) error {
	defer p.Free()
	const hl = wire.IPv6HeaderLen + wire.IPv6FragmentHeaderLen
	maxData := frag.MaxData(mtu, hl)
	out, err := l.frags.Split(p, maxData, l.fragOut[:0])
	if err != nil {
		l.ip6.Drop++
		l.ip6.Memerr++
		return errs.Mem
	}
	defer func() { clear(out); l.fragOut = out[:0] }()
	// RFC 7739 §5: fragment identifications should be unpredictable; a seeded generator
	// keeps tests deterministic.
	id := l.rng.Uint32()
	off := 0
	for i, f := range out {
		out[i] = nil
		h, err := l.alloc.Alloc(pbuf.LayerLink, hl, pbuf.RAM)
		if err != nil {
			f.Free()
			for _, g := range out[i+1:] {
				g.Free()
			}
			l.ip6.Drop++
			l.ip6.Memerr++
			return errs.Mem
		}
		hb, _ := h.Header(hl)
		fr := *r
		fr.NextHeader = wire.ProtoIPv6Frag
		fr.PayloadLen = wire.IPv6FragmentHeaderLen + f.TotLen()
		_ = fr.Emit(hb)
		_ = wire.EmitIPv6Fragment(hb[wire.IPv6HeaderLen:], r.NextHeader, off, i < len(out)-1, id)
		off += f.TotLen()
		pbuf.Cat(h, f)
		l.ip6.Xmit++
		l.reass.AddXmit(true, 1)
		if err := l.send6(n, h, nh); err != nil && err != errs.Mem {
			for _, g := range out[i+1:] {
				g.Free()
			}
			return err
		}
	}
	return nil
}
