package ip

import (
	"net/netip"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip/frag"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// input4 processes one IPv4 packet (RFC 791 §3.2, RFC 1122 §3.2.1); it takes ownership.
func (l *Layer) input4(n *Netif, p *pbuf.Pbuf, looped bool) {
	l.ip.Recv++
	hb, ok := p.Header(wire.IPv4MinHeaderLen)
	if !ok {
		l.dropPkt(p, &l.ip.Lenerr)
		return
	}
	ip := wire.IPv4(hb)
	hl := ip.HeaderLen()
	// RFC 1122 §3.2.1.1-2: silently discard a datagram with a bad version (checked by the
	// caller), header length or checksum.
	if hl < wire.IPv4MinHeaderLen {
		l.dropPkt(p, &l.ip.Lenerr)
		return
	}
	if hb, ok = p.Header(hl); !ok {
		l.dropPkt(p, &l.ip.Lenerr)
		return
	}
	ip = wire.IPv4(hb)
	if p.Flags()&pbuf.FlagChecksumOK == 0 && wire.Finish(wire.Checksum(hb, 0)) != 0 {
		l.dropPkt(p, &l.ip.Chkerr)
		return
	}
	tl := int(ip.TotalLength())
	if tl < hl || tl > p.TotLen() {
		l.dropPkt(p, &l.ip.Lenerr)
		return
	}
	if tl < p.TotLen() {
		// Link padding (Ethernet's 60-byte minimum) after Total Length is not data.
		p.Shrink(tl)
	}
	src, dst := ip.Src(), ip.Dst()
	var bcast, mcast, icept bool
	if c := &l.in4; c.hit(l, n, src, dst, looped) {
		// The same addresses as the last packet delivered: the checks below passed.
		bcast, mcast, icept = c.bcast, dst.IsMulticast(), c.icept
	} else {
		// RFC 1122 §3.2.1.3: a source that is a broadcast or multicast address (or class
		// E) "MUST be silently discarded"; loopback addresses "MUST NOT appear outside a
		// host".
		// A packet from the wire with one of our own addresses as its source is a
		// martian too (the "land" attack: Linux drops it), never ours to answer.
		if src == broadcast4 || src.IsMulticast() || isClassE(src) || n.isBroadcast4(src) ||
			!looped && (src.IsLoopback() || dst.IsLoopback() || l.localNetif(src) != nil) {
			l.dropPkt(p, &l.ip.Err)
			return
		}
		bcast = n.isBroadcast4(dst)
		mcast = dst.IsMulticast()
		if mcast && !n.isMember(dst) {
			// RFC 1112 §6.2: a host delivers multicast datagrams only for groups its
			// interface belongs to (224.0.0.1 always).
			l.dropPkt(p, &l.ip.Err)
			return
		}
		accepted := false
		if !bcast && !mcast {
			if m := l.localNetif(dst); m == nil {
				if icept = !looped && n.intercepts(dst); !icept {
					// A DHCP reply to the offered address (SetAcceptUDPPort); never
					// cached, as it depends on the port.
					if accepted = !looped && n.acceptsUDP(ip, p, hl); !accepted {
						l.forward4(n, p)
						return
					}
				}
			}
		}
		if !accepted {
			c.set(l, n, src, dst, looped, bcast, icept)
		}
	}
	if ip.IsFragment() {
		// RFC 791 §3.2: fragments are reassembled at the destination.
		key := frag.Key{Src: src, Dst: dst, ID: uint32(ip.ID()), Proto: ip.Protocol()}
		dg, hl0, err := l.reass.Input(key, p, hl, ip.FragmentOffset(), ip.MoreFragments())
		if err != nil || dg == nil {
			return // held or dropped (frag counts it)
		}
		p, hl = dg, hl0
		hb, _ = p.Header(hl)
		ip = wire.IPv4(hb)
		ip.SetFragment(false, false, 0)
		ip.SetTotalLength(uint16(p.TotLen()))
		ip.SetChecksum()
	}
	h := &l.inHdr
	*h = Header{Src: src, Dst: dst, Proto: ip.Protocol(), TTL: ip.TTL(), TOS: ip.TOS(),
		HeaderLen: hl, Netif: n, Broadcast: bcast, Multicast: mcast, Intercepted: icept}
	l.deliver(h, p)
}

// forward4 routes a packet not addressed to this stack (RFC 1812 §5.2) or drops it when
// forwarding is off; it takes ownership of p.
func (l *Layer) forward4(in *Netif, p *pbuf.Pbuf) {
	hb, _ := p.Header(wire.IPv4MinHeaderLen)
	ip := wire.IPv4(hb)
	dst := ip.Dst()
	// RFC 1122 §3.2.1.3: a host discards datagrams not addressed to it.
	if !l.opts.IPForward || p.Flags()&(pbuf.FlagLinkBroadcast|pbuf.FlagLinkMulticast) != 0 ||
		dst.IsUnspecified() || isClassE(dst) || dst.IsLinkLocalUnicast() || ip.Src().IsUnspecified() {
		l.dropPkt(p, &l.ip.Err)
		return
	}
	// RFC 1812 §5.3.1: a datagram whose TTL would reach zero is discarded with an ICMP Time
	// Exceeded.
	if ip.TTL() <= 1 {
		l.refuse4(in, p, wire.ICMPv4TimeExceeded, wire.ICMPv4TTLExceeded, 0, &l.ip.Err)
		return
	}
	out, nh, ok := l.lookup(dst, nil)
	if !ok {
		l.refuse4(in, p, wire.ICMPv4DestUnreach, wire.ICMPv4NetUnreach, 0, &l.ip.Rterr)
		return
	}
	if out.isBroadcast4(dst) {
		l.dropPkt(p, &l.ip.Err) // directed broadcasts are not forwarded (RFC 2644)
		return
	}
	gso, _ := p.GSO()
	if gso != pbuf.GSONone && !forwardGSO(out, p, ip.HeaderLen(), false) ||
		gso == pbuf.GSONone && p.TotLen() > out.mtu && ip.DontFragment() {
		// RFC 1191 §4: "Fragmentation needed and DF set" carries the next-hop MTU. (A
		// coalesced packet whose segments do not fit is refused the same way: the segments
		// a sender cuts from it carry DF, or it would not have been coalesced.)
		l.refuse4(in, p, wire.ICMPv4DestUnreach, wire.ICMPv4FragNeeded, uint32(out.mtu), &l.ip.Err)
		return
	}
	ip.SetTTL(ip.TTL() - 1)
	p.SetFlags(p.Flags() & pbuf.FlagChecksumPartial) // the one fact the next link needs
	l.ip.Fw++
	if gso == pbuf.GSONone && p.TotLen() > out.mtu {
		var r wire.IPv4Repr
		r.TOS, r.ID, r.TTL, r.Protocol, r.Src, r.Dst = ip.TOS(), ip.ID(), ip.TTL(), ip.Protocol(), ip.Src(), dst
		base, more := ip.FragmentOffset(), ip.MoreFragments()
		_ = p.RemoveHeader(ip.HeaderLen())
		_ = l.fragment4(out, p, &r, nh, base, more)
		return
	}
	l.ip.Xmit++
	_ = l.send4(out, p, nh, netip.Addr{})
}

// output4 is Output for IPv4.
func (l *Layer) output4(p *pbuf.Pbuf, src, dst netip.Addr, proto uint8, o OutputOptions) error {
	n, nh, local, bcast, err := l.routeCached(dst, o.Netif)
	if err != nil {
		l.ip.Drop++
		l.ip.Rterr++
		p.Free()
		return errs.Rte
	}
	loopOnly := o.LoopOnly && dst.IsMulticast() && !local
	if loopOnly && (!o.MulticastLoop || !n.isMember(dst)) {
		p.Free() // no local member to give it to, and it must not leave
		return nil
	}
	if o.FailIfFull && !local && !loopOnly && n.full() {
		l.ip.Drop++
		l.ip.Memerr++
		p.Free()
		return errs.Mem
	}
	if bcast {
		nh = broadcast4 // ethernet maps only the limited broadcast
	}
	if !src.IsValid() {
		if src, err = l.SourceFor(dst, n); err != nil {
			l.ip.Drop++
			l.ip.Rterr++
			p.Free()
			return errs.Rte
		}
	}
	ttl := o.TTL
	switch {
	case loopOnly:
		ttl = 0 // what Linux's looped copy carries
	case ttl == 0:
		ttl = l.opts.IPDefaultTTL
	}
	r := wire.IPv4Repr{TOS: o.TOS, ID: l.ip4ID, DontFragment: o.DontFragment, TTL: ttl,
		Protocol: proto, Src: src, Dst: dst}
	l.ip4ID++
	if typ, _ := p.GSO(); typ != pbuf.GSONone {
		// Each segment cut from it takes the next ID (Linux's TSO does the same).
		segs := 0
		if !local && !loopOnly {
			segs = l.gsoOutput(n, p, wire.IPv4MinHeaderLen, false, &l.ip)
		} else {
			l.dropPkt(p, &l.ip.Lenerr)
		}
		if segs == 0 {
			return errs.Val
		}
		l.ip4ID += uint16(segs - 1)
	} else if !local && !loopOnly && wire.IPv4MinHeaderLen+p.TotLen() > n.mtu {
		if o.DontFragment {
			l.ip.Drop++
			l.ip.Lenerr++
			p.Free()
			return errs.Val // message too long
		}
		if o.MulticastLoop && dst.IsMulticast() && n.isMember(dst) {
			var hb [wire.IPv4MinHeaderLen]byte
			r.PayloadLen = p.TotLen()
			_ = r.Emit(hb[:])
			l.loopMcast(n, hb[:], p)
		}
		completeBeforeFragment(p, proto)
		return l.fragment4(n, p, &r, nh, 0, false)
	}
	if wire.IPv4MinHeaderLen+p.TotLen() > 0xffff {
		l.ip.Drop++
		l.ip.Lenerr++
		p.Free()
		return errs.Val
	}
	p, err = l.prepend(p, wire.IPv4MinHeaderLen, n)
	if err != nil {
		l.ip.Drop++
		l.ip.Memerr++
		return err
	}
	r.PayloadLen = p.TotLen() - wire.IPv4MinHeaderLen
	hb, _ := p.Header(wire.IPv4MinHeaderLen)
	_ = r.Emit(hb)
	l.ip.Xmit++
	if local || loopOnly {
		return l.loopback(n, p)
	}
	if o.MulticastLoop && dst.IsMulticast() && n.isMember(dst) {
		l.loopMcast(n, nil, p)
	}
	return l.send4(n, p, nh, src)
}

// send4 hands a finished IPv4 packet to n; it takes ownership.
func (l *Layer) send4(n *Netif, p *pbuf.Pbuf, nh, src netip.Addr) error {
	if n.eth == nil {
		n.xmit(p)
		return nil
	}
	if !src.IsValid() || src.Is6() {
		src, _ = l.SourceFor(nh, n)
	}
	return n.eth.OutputIPv4(p, nh, src)
}

// fragment4 sends the IPv4 payload p (borrowed and then freed: it takes ownership) as
// fragments of at most n's MTU, each with a copy of header r whose offset and MF flag are
// set (RFC 791 §3.2, "fragmentation procedure"). base and more describe p's own place when
// p is itself a fragment being forwarded.
func (l *Layer) fragment4(n *Netif, p *pbuf.Pbuf, r *wire.IPv4Repr, nh netip.Addr, base int, more bool) error {
	defer p.Free()
	maxData := frag.MaxData(n.mtu, wire.IPv4MinHeaderLen)
	out, err := l.frags.Split(p, maxData, l.fragOut[:0])
	if err != nil {
		l.ip.Drop++
		l.ip.Memerr++
		return errs.Mem
	}
	defer func() { clear(out); l.fragOut = out[:0] }()
	off := base
	for i, f := range out {
		out[i] = nil
		h, err := l.alloc.Alloc(pbuf.LayerLink, wire.IPv4MinHeaderLen, pbuf.RAM)
		if err != nil {
			f.Free()
			for _, g := range out[i+1:] {
				g.Free()
			}
			l.ip.Drop++
			l.ip.Memerr++
			return errs.Mem
		}
		fr := *r
		fr.Options = nil
		fr.FragmentOffset = off
		fr.MoreFragments = more || i < len(out)-1
		fr.PayloadLen = f.TotLen()
		off += f.TotLen()
		hb, _ := h.Header(wire.IPv4MinHeaderLen)
		_ = fr.Emit(hb)
		pbuf.Cat(h, f)
		l.ip.Xmit++
		l.reass.AddXmit(false, 1)
		if err := l.send4(n, h, nh, r.Src); err != nil && err != errs.Mem {
			for _, g := range out[i+1:] {
				g.Free()
			}
			return err
		}
	}
	return nil
}

func isClassE(a netip.Addr) bool { return a.Is4() && a.As4()[0] >= 240 && a != broadcast4 }
