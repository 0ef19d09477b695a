package ip

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

// icmp4Input handles an ICMP message (RFC 792); p is positioned at the IP header
// (h.HeaderLen bytes) and owned.
func (l *Layer) icmp4Input(h *Header, p *pbuf.Pbuf) {
	l.icmp.Recv++
	hl := h.HeaderLen
	mlen := p.TotLen() - hl
	if mlen < wire.ICMPv4HeaderLen {
		l.dropPkt(p, &l.icmp.Lenerr)
		return
	}
	if p.Flags()&pbuf.FlagChecksumOK == 0 && wire.Finish(ChainChecksum(p, hl, mlen, 0)) != 0 {
		l.dropPkt(p, &l.icmp.Chkerr)
		return
	}
	hb, ok := p.Header(hl + wire.ICMPv4HeaderLen)
	if !ok {
		l.dropPkt(p, &l.icmp.Lenerr)
		return
	}
	m := wire.ICMPv4(hb[hl:])
	switch m.Type() {
	case wire.ICMPv4EchoRequest:
		// RFC 1122 §3.2.2.6: an echo request to a broadcast or multicast address MAY be
		// silently discarded; wisp does, as lwIP does by default.
		if h.Broadcast || h.Multicast {
			l.dropPkt(p, &l.icmp.Err)
			return
		}
		// RFC 792: "To form an echo reply message, the source and destination addresses
		// are simply reversed, the type code changed to 0, and the checksum recomputed."
		// The data, identifier and sequence number stay as received.
		old := binary.BigEndian.Uint16(hb[hl:])
		hb[hl] = wire.ICMPv4EchoReply
		binary.BigEndian.PutUint16(hb[hl+2:], wire.ChecksumUpdate16(m.Checksum(), old, binary.BigEndian.Uint16(hb[hl:])))
		_ = p.RemoveHeader(hl)
		p.SetFlags(0)
		l.icmp.Xmit++
		_ = l.output4(p, h.Dst, h.Src, wire.ProtoICMP, OutputOptions{TOS: h.TOS})
	case wire.ICMPv4EchoReply:
		if l.echoFn != nil {
			id, seq := m.Ident(), m.Seq()
			_ = p.RemoveHeader(hl + wire.ICMPv4HeaderLen)
			l.echoFn(h, id, seq, l.contiguous(p, 0, p.TotLen()))
		}
		p.Free()
	case wire.ICMPv4DestUnreach, wire.ICMPv4TimeExceeded, wire.ICMPv4ParamProblem:
		kind, mtu := ControlHostUnreachable, 0
		switch m.Type() {
		case wire.ICMPv4DestUnreach:
			switch m.Code() {
			case wire.ICMPv4NetUnreach, 6, 11: // net, net unknown, net for TOS
				kind = ControlNetUnreachable
			case wire.ICMPv4ProtoUnreach:
				kind = ControlProtoUnreachable
			case wire.ICMPv4PortUnreach:
				kind = ControlPortUnreachable
			case wire.ICMPv4FragNeeded:
				kind, mtu = ControlPacketTooBig, int(m.NextHopMTU())
			case 9, 10, wire.ICMPv4AdminProhibited:
				kind = ControlAdminProhibited
			}
		case wire.ICMPv4TimeExceeded:
			kind = ControlTimeExceeded
		default:
			kind = ControlParamProblem
		}
		l.controlInput(h, p, hl+wire.ICMPv4HeaderLen, kind, mtu)
	default:
		// RFC 1122 §3.2.2: "If an ICMP message of unknown type is received, it MUST be
		// silently discarded." Redirects, timestamps and the rest land here.
		l.dropPkt(p, &l.icmp.Proterr)
	}
}

// controlInput validates the invoking packet quoted at off and calls ControlInput of its
// transport; it takes ownership of p.
func (l *Layer) controlInput(h *Header, p *pbuf.Pbuf, off int, kind ControlKind, mtu int) {
	v6 := h.Dst.Is6()
	st := &l.icmp
	if v6 {
		st = &l.icmp6
	}
	q := l.contiguous(p, off, min(p.TotLen()-off, maxQuote))
	var ch Header
	if !v6 {
		// RFC 792: the quoted data is "the internet header plus the first 64 bits of the
		// original datagram's data".
		if len(q) < wire.IPv4MinHeaderLen || q[0]>>4 != 4 || int(q[0]&0xf)*4 < wire.IPv4MinHeaderLen ||
			len(q) < int(q[0]&0xf)*4+8 {
			l.dropPkt(p, &st.Lenerr)
			return
		}
		in := wire.IPv4(q)
		ch = Header{Src: in.Src(), Dst: in.Dst(), Proto: in.Protocol(), TTL: in.TTL(), TOS: in.TOS(),
			HeaderLen: in.HeaderLen()}
	} else {
		if len(q) < wire.IPv6HeaderLen+8 || q[0]>>4 != 6 {
			l.dropPkt(p, &st.Lenerr)
			return
		}
		in := wire.IPv6(q)
		// Find the upper layer in the quote; headers cut off by the quote end the walk.
		nh, off6 := in.NextHeader(), wire.IPv6HeaderLen
		for (nh == wire.ProtoHopByHop || nh == wire.ProtoIPv6Route || nh == wire.ProtoIPv6DstOpts ||
			nh == wire.ProtoIPv6Frag) && off6+8 <= len(q) {
			if nh == wire.ProtoIPv6Frag {
				nh, off6 = q[off6], off6+8
				continue
			}
			nh, off6 = q[off6], off6+wire.IPv6ExtHeader(q[off6:]).Len()
		}
		if off6+8 > len(q) {
			l.dropPkt(p, &st.Lenerr)
			return
		}
		ch = Header{Src: in.Src(), Dst: in.Dst(), Proto: nh, TTL: in.HopLimit(), TOS: in.TrafficClass(),
			HeaderLen: off6}
	}
	ch.Netif = h.Netif
	t := l.transports[ch.Proto]
	if t == nil || (v6 && ch.Proto == wire.ProtoICMPv6) || (!v6 && ch.Proto == wire.ProtoICMP) {
		p.Free() // nobody to tell (errors about our pings are not reported)
		return
	}
	l.ctlHdr = ch
	t.ControlInput(&l.ctlHdr, kind, mtu, q)
	p.Free()
}

// maxQuote is the most of an invoking packet an ICMPv6 error carries: RFC 4443 §2.4(c), "as
// much of invoking packet as possible without the ICMPv6 packet exceeding the minimum IPv6
// MTU" (1280 - 40 - 8).
const maxQuote = wire.IPv6MinMTU - wire.IPv6HeaderLen - wire.ICMPv6HeaderLen

// contiguous returns n bytes of p from off as one slice: p's memory when they sit in one
// pbuf, else a copy in the layer's scratch buffer (at most its size). Borrowed until the
// next call.
func (l *Layer) contiguous(p *pbuf.Pbuf, off, n int) []byte {
	q, o := p.Skip(off)
	if q == nil || n <= 0 {
		return nil
	}
	if o+n <= q.Len() {
		return q.Payload()[o : o+n]
	}
	if n > len(l.scratch) {
		l.scratch = make([]byte, min(n, 0xffff)) // slow path: chained echo data
	}
	return l.scratch[:p.CopyOut(l.scratch[:n], off)]
}

// icmp4Error sends an ICMP error about p (borrowed, positioned at its IPv4 header) back to
// its source, unless RFC 1122 §3.2.2 forbids it, and subject to the rate limit. rest is
// the next-hop MTU of a Fragmentation Needed or the pointer of a Parameter Problem.
func (l *Layer) icmp4Error(n *Netif, p *pbuf.Pbuf, typ, code uint8, rest uint32) {
	var hb [wire.IPv4MinHeaderLen]byte
	if p.CopyOut(hb[:], 0) < len(hb) {
		return
	}
	ip := wire.IPv4(hb[:])
	src, dst := ip.Src(), ip.Dst()
	hl := ip.HeaderLen()
	// RFC 1122 §3.2.2: "An ICMP error message MUST NOT be sent as the result of receiving:
	// an ICMP error message, or a datagram destined to an IP broadcast or IP multicast
	// address, or a datagram sent as a link-layer broadcast, or a non-initial fragment, or
	// a datagram whose source address does not define a single host".
	if p.Flags()&(pbuf.FlagLinkBroadcast|pbuf.FlagLinkMulticast) != 0 || dst.IsMulticast() ||
		n.isBroadcast4(dst) || ip.FragmentOffset() != 0 ||
		src.IsUnspecified() || src.IsMulticast() || src == broadcast4 || isClassE(src) || n.isBroadcast4(src) {
		return
	}
	if ip.Protocol() == wire.ProtoICMP {
		t, ok := p.ByteAt(hl)
		if !ok || wire.ICMPv4([]byte{t, 0, 0, 0}).IsError() || !knownICMP4(t) {
			return
		}
	}
	if !l.icmpAllow(&l.icmp) {
		return
	}
	// RFC 1812 §4.3.2.3: quote as much of the datagram as fits in 576 bytes.
	qlen := min(p.TotLen(), 576-wire.IPv4MinHeaderLen-wire.ICMPv4HeaderLen)
	q, err := l.alloc.Alloc(pbuf.LayerIP, wire.ICMPv4HeaderLen+qlen, pbuf.RAM)
	if err != nil {
		l.icmp.Drop++
		l.icmp.Memerr++
		return
	}
	b := q.Payload()
	p.CopyOut(b[wire.ICMPv4HeaderLen:], 0)
	r := wire.ICMPv4Repr{Type: typ, Code: code, NextHopMTU: uint16(rest), Pointer: uint8(rest), PayloadLen: qlen}
	_ = r.Emit(b)
	l.icmp.Xmit++
	var from netip.Addr
	if l.localNetif(dst) != nil {
		from = dst
	}
	_ = l.output4(q, from, src, wire.ProtoICMP, OutputOptions{})
}

// knownICMP4 reports whether t is an ICMP informational type an error may be sent about
// (echo, timestamp); anything else is treated like an error (RFC 1122 §3.2.2).
func knownICMP4(t uint8) bool {
	return t == wire.ICMPv4EchoRequest || t == wire.ICMPv4EchoReply || t == wire.ICMPv4Timestamp ||
		t == wire.ICMPv4TimestampReply
}

// SendUnreachable answers a packet no transport endpoint wanted with ICMP Destination
// Unreachable code (usually port unreachable: v4 3, v6 4). p is borrowed, positioned at the
// transport header as delivered; the IP header is still in the memory in front of it.
func (l *Layer) SendUnreachable(h *Header, p *pbuf.Pbuf, code uint8) {
	if l.closed || h == nil || p == nil || h.Broadcast || h.Multicast || p.AddHeader(h.HeaderLen) != nil {
		return
	}
	if h.Dst.Is4() {
		l.icmp4Error(h.Netif, p, wire.ICMPv4DestUnreach, code, 0)
	} else {
		l.icmp6Error(h.Netif, p, wire.ICMPv6DestUnreach, code, 0)
	}
	_ = p.RemoveHeader(h.HeaderLen)
}

// icmpAllow takes a token from the ICMP error bucket: Options.ICMPRateLimit tokens per
// second, at most Options.ICMPRateBurst saved (RFC 4443 §2.4(f) "an IPv6 node MUST limit
// the rate of ICMPv6 error messages it originates"; RFC 1812 §4.3.2.8 for IPv4). A refusal
// is counted in st (Drop, Err) and in RateLimited.
func (l *Layer) icmpAllow(rec *stats.Proto) bool {
	if l.opts.ICMPRateLimit > 0 {
		now := l.now()
		per := int64(1e9) / int64(l.opts.ICMPRateLimit)
		if per <= 0 {
			per = 1
		}
		if k := int64(now.Sub(l.icmpLast)) / per; k > 0 {
			l.icmpTokens = int(min(int64(l.icmpTokens)+k, int64(l.opts.ICMPRateBurst)))
			l.icmpLast = l.icmpLast.Add(time.Duration(k * per))
			if l.icmpTokens >= l.opts.ICMPRateBurst {
				l.icmpLast = now
			}
		}
	} else if l.opts.ICMPRateLimit < 0 {
		return true
	}
	if l.icmpTokens <= 0 {
		l.rateLimited++
		rec.Drop++
		rec.Err++
		return false
	}
	l.icmpTokens--
	return true
}

// SendEcho sends an ICMP or ICMPv6 echo request (by the family of dst) carrying data.
func (l *Layer) SendEcho(src, dst netip.Addr, id, seq uint16, data []byte, o OutputOptions) error {
	if l.closed {
		return errs.Clsd
	}
	dst, src = dst.Unmap(), src.Unmap()
	p, err := l.alloc.Alloc(pbuf.LayerIP, wire.ICMPv4HeaderLen+len(data), pbuf.RAM)
	if err != nil {
		return errs.Mem
	}
	if err := p.CopyIn(data, wire.ICMPv4HeaderLen); err != nil {
		p.Free()
		return errs.Val
	}
	var hdr [wire.ICMPv4HeaderLen]byte
	if dst.Is4() {
		binary.BigEndian.PutUint16(hdr[4:], id)
		binary.BigEndian.PutUint16(hdr[6:], seq)
		hdr[0] = wire.ICMPv4EchoRequest
		_ = p.CopyIn(hdr[:], 0)
		sum := ChainChecksum(p, 0, p.TotLen(), 0)
		binary.BigEndian.PutUint16(hdr[2:], wire.Finish(sum))
		_ = p.CopyIn(hdr[:4], 0)
		l.icmp.Xmit++
		return l.output4(p, src, dst, wire.ProtoICMP, o)
	}
	if !dst.Is6() {
		p.Free()
		return errs.Val
	}
	n, _, _, err := l.route(dst, o.Netif)
	if err != nil {
		p.Free()
		l.ip6.Drop++
		l.ip6.Rterr++
		return errs.Rte
	}
	if !src.IsValid() {
		if src, err = l.SourceFor(dst.WithZone(""), n); err != nil {
			p.Free()
			l.ip6.Drop++
			l.ip6.Rterr++
			return errs.Rte
		}
	}
	binary.BigEndian.PutUint16(hdr[4:], id)
	binary.BigEndian.PutUint16(hdr[6:], seq)
	hdr[0] = wire.ICMPv6EchoRequest
	_ = p.CopyIn(hdr[:], 0)
	sum := ChainChecksum(p, 0, p.TotLen(), wire.PseudoHeaderChecksum(wire.ProtoICMPv6, src, dst.WithZone(""), uint32(p.TotLen())))
	binary.BigEndian.PutUint16(hdr[2:], wire.Finish(sum))
	_ = p.CopyIn(hdr[:4], 0)
	l.icmp6.Xmit++
	return l.output6(p, src, dst, wire.ProtoICMPv6, o)
}
