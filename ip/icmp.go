package ip

import (
	"time"

	"github.com/wispstack/wisp/ip/frag"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

// icmpIn starts ICMP and ICMPv6 input: the message after h's headers in p is counted as
// received under st, and dropped if shorter than the 8-byte header both share (Lenerr) or,
// unless the link verified it, if its checksum fails (Chkerr; ICMPv6's covers the
// pseudo-header too, RFC 4443 §2.3). It returns the header, contiguous in p's first pbuf;
// nil when p was dropped.
func (l *Layer) icmpIn(h *Header, p *pbuf.Pbuf, st *stats.Proto) []byte {
	hl := h.HeaderLen
	mlen, ok := l.messageLen(h, p, st, wire.ICMPv4HeaderLen)
	if !ok {
		return nil
	}
	var sum uint32
	if h.Dst.Is6() {
		sum = wire.PseudoHeaderChecksum(wire.ProtoICMPv6, h.Src, h.Dst, uint32(mlen))
	}
	if p.Flags()&pbuf.FlagChecksumOK == 0 && wire.Finish(p.Checksum(hl, mlen, sum)) != 0 {
		l.dropPkt(p, &st.Chkerr)
		return nil
	}
	hb, ok := p.Header(hl + wire.ICMPv4HeaderLen)
	if !ok {
		l.dropPkt(p, &st.Lenerr)
		return nil
	}
	return hb[hl:]
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
		l.scratch = make([]byte, n) // slow path: a chained quote or ND message
	}
	return l.scratch[:p.CopyOut(l.scratch[:n], off)]
}

// SendUnreachable answers a packet no transport endpoint wanted with ICMP Destination
// Unreachable code (usually port unreachable: v4 3, v6 4). p is borrowed, positioned at the
// transport header as delivered; the IP header is still in the memory in front of it.
func (l *Layer) SendUnreachable(h *Header, p *pbuf.Pbuf, code uint8) {
	l.timers.AssertCore()
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

// reassExpired is frag's callback for a datagram that timed out after its first fragment
// arrived: RFC 792 and RFC 8200 §4.5 ask for Time Exceeded code 1 ("fragment reassembly
// time exceeded") to the source. first is borrowed, positioned at its IP header.
func (l *Layer) reassExpired(key frag.Key, first *pbuf.Pbuf) {
	n := l.NetifByIndex(first.IfIndex())
	if n == nil || !n.up {
		return
	}
	if key.V6 {
		l.icmp6Error(n, first, wire.ICMPv6TimeExceeded, wire.ICMPv6ReassemblyTimeout, 0)
	} else {
		l.icmp4Error(n, first, wire.ICMPv4TimeExceeded, wire.ICMPv4ReassemblyExceeded, 0)
	}
	l.flushLinks() // a timer runs outside any Flush; the error must not wait for the next one
}

// refuse4 answers p (at its IPv4 header; ownership taken) with an ICMP error (icmp4Error),
// then frees it and counts the drop under reason.
func (l *Layer) refuse4(n *Netif, p *pbuf.Pbuf, typ, code uint8, rest uint32, reason *uint64) {
	l.icmp4Error(n, p, typ, code, rest)
	l.dropPkt(p, reason)
}

// refuse6 answers p (at its IPv6 header; ownership taken) with an ICMPv6 error
// (icmp6Error), then frees it and counts the drop under reason.
func (l *Layer) refuse6(n *Netif, p *pbuf.Pbuf, typ, code uint8, param uint32, reason *uint64) {
	l.icmp6Error(n, p, typ, code, param)
	l.dropPkt(p, reason)
}

// quoteAlloc allocates an ICMP (ICMPv6) error message: room for its 8-byte header, then the
// first qlen bytes of p (borrowed), the invoking packet. The caller owns it; nil (counted
// in st) when out of memory.
func (l *Layer) quoteAlloc(p *pbuf.Pbuf, qlen int, st *stats.Proto) *pbuf.Pbuf {
	q, err := l.alloc.Alloc(pbuf.LayerIP, wire.ICMPv4HeaderLen+qlen, pbuf.RAM)
	if err != nil {
		st.Drop++
		st.Memerr++
		return nil
	}
	p.CopyOut(q.Payload()[wire.ICMPv4HeaderLen:], 0)
	return q
}
