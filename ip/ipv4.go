package ip

import (
	"encoding/binary"
	"net/netip"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip/frag"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// ipInput dispatches one received IP packet by its version; it takes ownership. looped is
// set for packets this stack sent to itself.
func (l *Layer) ipInput(n *Netif, p *pbuf.Pbuf, looped bool) {
	b, ok := p.ByteAt(0)
	switch {
	case !ok:
		l.ip.Recv++
		l.dropPkt(p, &l.ip.Lenerr)
	case b>>4 == 4:
		l.input4(n, p, looped)
	case b>>4 == 6:
		l.input6(n, p, looped)
	default:
		// RFC 791 §3.1 / RFC 8200 §3: nothing but versions 4 and 6 is IP.
		l.ip.Recv++
		l.dropPkt(p, &l.ip.Err)
	}
}

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
	var bcast, mcast bool
	if c := &l.in4; c.hit(l, n, src, dst, looped) {
		// The same addresses as the last packet delivered: the checks below passed.
		bcast, mcast = c.bcast, dst.IsMulticast()
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
		if !bcast && !mcast {
			if m := l.localNetif(dst); m == nil {
				l.forward4(n, p)
				return
			}
		}
		c.set(l, n, src, dst, looped, bcast)
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
		binary.BigEndian.PutUint16(hb[6:8], 0) // flags and offset
		binary.BigEndian.PutUint16(hb[2:4], uint16(p.TotLen()))
		ip.SetChecksum()
	}
	h := &l.inHdr
	*h = Header{Src: src, Dst: dst, Proto: ip.Protocol(), TTL: ip.TTL(), TOS: ip.TOS(),
		HeaderLen: hl, Netif: n, Broadcast: bcast, Multicast: mcast}
	l.deliver(h, p)
}

// deliver hands p, positioned at the IP header (h.HeaderLen bytes), to its protocol; it
// takes ownership.
func (l *Layer) deliver(h *Header, p *pbuf.Pbuf) {
	v6 := h.Dst.Is6()
	if l.rawListen[h.Proto] > 0 && l.raw != nil && l.rawOffer(h, p) {
		return
	}
	switch {
	case !v6 && h.Proto == wire.ProtoICMP:
		l.icmp4Input(h, p)
		return
	case !v6 && h.Proto == wire.ProtoIGMP:
		l.igmpInput(h, p)
		return
	case v6 && h.Proto == wire.ProtoICMPv6:
		l.icmp6Input(h, p)
		return
	}
	if t := l.transports[h.Proto]; t != nil {
		_ = p.RemoveHeader(h.HeaderLen)
		if p.Len() == 0 && p.Next() != nil {
			// The headers filled the first pbuf (a reassembled datagram can look like
			// that): transports want their header at the start of the first pbuf.
			rest := p.Dechain()
			rest.SetFlags(p.Flags())
			rest.SetIfIndex(p.IfIndex())
			p.Free()
			p = rest
		}
		t.Input(h, p)
		return
	}
	if v6 {
		// RFC 8200 §4: an unrecognised Next Header makes the node "send an ICMP Parameter
		// Problem message ... with an ICMP Code value of 1 ... pointing to the
		// unrecognized value"; the caller stored where that field is.
		l.icmp6Error(h.Netif, p, wire.ICMPv6ParamProblem, wire.ICMPv6ParamUnknownNextHdr, uint32(h.nhOff))
		l.dropPkt(p, &l.ip6.Proterr)
		return
	}
	// RFC 1122 §3.2.2.1: a host SHOULD generate Destination Unreachable messages with code
	// 2 (Protocol Unreachable) when the designated transport protocol is not supported.
	if !h.Broadcast && !h.Multicast {
		l.icmp4Error(h.Netif, p, wire.ICMPv4DestUnreach, wire.ICMPv4ProtoUnreach, 0)
	}
	l.dropPkt(p, &l.ip.Proterr)
}

// rawOffer offers p (at its IP header) to the raw hook positioned at the transport header,
// and restores the IP header when the hook did not eat it. It reports whether p was eaten:
// then the hook owns p; otherwise p stays the caller's.
func (l *Layer) rawOffer(h *Header, p *pbuf.Pbuf) bool {
	if p.Len() < h.HeaderLen {
		return false // headers spread over pbufs (reassembled): not offered
	}
	_ = p.RemoveHeader(h.HeaderLen)
	if l.raw.RawInput(h, p) {
		return true
	}
	_ = p.AddHeader(h.HeaderLen)
	return false
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
		l.icmp4Error(in, p, wire.ICMPv4TimeExceeded, wire.ICMPv4TTLExceeded, 0)
		l.dropPkt(p, &l.ip.Err)
		return
	}
	out, nh, ok := l.lookup(dst, nil)
	if !ok {
		l.icmp4Error(in, p, wire.ICMPv4DestUnreach, wire.ICMPv4NetUnreach, 0)
		l.dropPkt(p, &l.ip.Rterr)
		return
	}
	if out.isBroadcast4(dst) {
		l.dropPkt(p, &l.ip.Err) // directed broadcasts are not forwarded (RFC 2644)
		return
	}
	if p.TotLen() > out.mtu && ip.DontFragment() {
		// RFC 1191 §4: "Fragmentation needed and DF set" carries the next-hop MTU.
		l.icmp4Error(in, p, wire.ICMPv4DestUnreach, wire.ICMPv4FragNeeded, uint32(out.mtu))
		l.dropPkt(p, &l.ip.Err)
		return
	}
	ip.SetTTL(ip.TTL() - 1)
	p.SetFlags(0)
	l.ip.Fw++
	if p.TotLen() > out.mtu {
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

// Output sends a transport packet; it takes ownership of p, whatever it returns. p's first
// pbuf should have pbuf.LayerIP header room (else a RAM header pbuf is chained in front).
// An invalid src is chosen with SourceFor. A packet larger than the MTU is fragmented (IPv4
// unless DontFragment, which fails with errs.Val; IPv6 always, RFC 8200 §5). A local
// destination is looped back and delivered at Flush. errs.Rte without a route, errs.Mem on
// exhaustion.
func (l *Layer) Output(p *pbuf.Pbuf, src, dst netip.Addr, proto uint8, o OutputOptions) error {
	if p == nil {
		return errs.Val
	}
	if l.closed {
		p.Free()
		return errs.Clsd
	}
	dst, src = dst.Unmap(), src.Unmap()
	switch {
	case dst.Is4():
		return l.output4(p, src, dst, proto, o)
	case dst.Is6():
		return l.output6(p, src, dst, proto, o)
	}
	p.Free()
	return errs.Val
}

// OutputOptions are the per-packet choices of Output.
type OutputOptions struct {
	TTL          uint8 // 0: Options.IPDefaultTTL (IPv6: the router-advertised hop limit)
	TOS          uint8 // IPv4 TOS / IPv6 traffic class
	DontFragment bool  // IPv4: set DF and fail rather than fragment
	// Netif forces the egress netif (SO_BINDTODEVICE, IP_MULTICAST_IF).
	Netif *Netif
	// FailIfFull makes Output fail with errs.Mem, dropping p and counting Memerr, when the
	// egress link's transmit queue has no room (link.TxRoomer): a datagram sender hears
	// ENOMEM, as esp-lwip's UDP does, instead of the frame being dropped at flush.
	FailIfFull bool
	// MulticastLoop delivers a copy of a multicast packet to this stack too when the
	// egress netif is a member of the group (IP_MULTICAST_LOOP, IPV6_MULTICAST_LOOP).
	MulticastLoop bool
	// LoopOnly keeps a multicast packet on this host: IP_MULTICAST_TTL 0 /
	// IPV6_MULTICAST_HOPS 0 on Linux. Nothing goes on the link; with MulticastLoop and
	// the egress netif a member, the packet (TTL / hop limit 0 in its header, TTL ignored,
	// never fragmented) is delivered locally at Flush; otherwise it is dropped without
	// error or counter, as Linux does. Unicast and broadcast destinations ignore it.
	LoopOnly bool
}

// routeCached is route through the family's one-entry cache; bcast reports (IPv4) that dst
// is a broadcast address of n.
func (l *Layer) routeCached(dst netip.Addr, force *Netif) (n *Netif, nh netip.Addr, local, bcast bool, err error) {
	c := &l.route4
	if dst.Is6() {
		c = &l.route6
	}
	if c.valid && c.gen == l.gen && c.dst == dst && c.force == force {
		return c.n, c.nh, c.local, c.bcast, nil
	}
	n, nh, local, err = l.route(dst, force)
	if err != nil {
		return nil, nh, false, false, err
	}
	bcast = dst.Is4() && n.isBroadcast4(dst)
	*c = routeCache{gen: l.gen, dst: dst, force: force, n: n, nh: nh, local: local, bcast: bcast, valid: true}
	return n, nh, local, bcast, nil
}

// route picks the egress for dst: a local address loops back; o.Netif forces the netif.
func (l *Layer) route(dst netip.Addr, force *Netif) (n *Netif, nh netip.Addr, local bool, err error) {
	if m := l.localNetif(dst.WithZone("")); m != nil {
		return m, dst.WithZone(""), true, nil
	}
	if force != nil {
		if force.l != l || !force.up {
			return nil, nh, false, errs.Rte
		}
		d := dst.WithZone("")
		if m, gw, ok := l.lookup(d, force); ok && !d.IsMulticast() && d != broadcast4 {
			return m, gw, false, nil
		}
		return force, d, false, nil
	}
	n, nh, err = l.Lookup(dst)
	return n, nh, false, err
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
	if !local && !loopOnly && wire.IPv4MinHeaderLen+p.TotLen() > n.mtu {
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

// prepend makes room for an hl-byte header in front of p (plus the link header of n): in
// p's header room, or in a new RAM pbuf chained in front. It takes ownership of p and
// returns the chain whose first pbuf starts with the hl header bytes.
func (l *Layer) prepend(p *pbuf.Pbuf, hl int, n *Netif) (*pbuf.Pbuf, error) {
	if p.HeaderRoom() >= hl+n.medium.HeaderLen() && p.Type() != pbuf.REF && p.AddHeader(hl) == nil {
		return p, nil
	}
	h, err := l.alloc.Alloc(pbuf.LayerLink, hl, pbuf.RAM)
	if err != nil {
		p.Free()
		return nil, errs.Mem
	}
	h.SetFlags(p.Flags())
	if p.TotLen() == 0 {
		p.Free()
	} else {
		pbuf.Cat(h, p)
	}
	return h, nil
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
